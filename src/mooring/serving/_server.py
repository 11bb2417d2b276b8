"""The HTTP server: the app's lifespan, the listening sockets, the door, a graceful stop.

:class:`Server` runs an ASGI app (a mooring serving app, or any other) behind its
:class:`~mooring.serving._door.Door` on uvloop where it is installed: the app's
lifespan starts (its models settle) before the port is listened on, so the kernel sends
no connection to a worker that cannot answer it. With ``memory_ceiling``, the app's
memory ceiling (:mod:`mooring.serving._memory`) limits this process once it has
started, and a worker whose run kept too much of it stops as if signalled (its
supervisor starts another). ``SIGINT``/``SIGTERM`` (or
:attr:`Server.should_exit`) stop it: listening ends, idle connections close, requests
under way are answered for up to ``graceful_s``, then the lifespan shuts down. A second
signal skips the wait.

Examples:
    >>> Server(build_app(...), host="127.0.0.1", port=8501).run()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from mooring.errors import UsageError
from mooring.serving._admission import Admission
from mooring.serving._door import Door
from mooring.serving._memory import MemoryCeiling, use_system_allocator

__all__ = ["Server"]

log = logging.getLogger("mooring.serving")

#: How often the stop flag is looked at (seconds).
_TICK_S = 0.1


class Server:
    """Serve ``app`` on ``host:port`` (or on the given sockets) until told to stop.

    The door is ``door``, or the app's (``app.state.mooring.door``), else a new one with
    ``admission`` when given. ``on_listening`` runs on the server's loop once the port is
    listened on (the banner of ``mooring serve``). :attr:`started` turns true then;
    setting :attr:`should_exit` stops the server from any thread.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8501,
        door: Door | None = None,
        admission: Admission | None = None,
        graceful_s: float = 30.0,
        backlog: int = 2048,
        on_listening: Callable[[], Coroutine[Any, Any, None]] | None = None,
        memory_ceiling: bool = False,
    ) -> None:
        self.app = app
        self.memory_ceiling = memory_ceiling
        self.host = host
        self.port = port
        state = getattr(getattr(app, "state", None), "mooring", None)
        if door is None:
            door = state.door if state is not None else Door(admission=admission)
        self.door = door
        #: What the door (and a gRPC server on this loop) admits predictions through.
        self.admission = door.admission
        self.graceful_s = graceful_s
        self.backlog = backlog
        self.on_listening = on_listening
        self.started = False
        self.should_exit = False
        self.force_exit = False
        self._announcing: asyncio.Task[None] | None = None
        if memory_ceiling and self._memory() is not None:
            use_system_allocator()  # a refused allocation fails at once (before any load)
        #: Why the process retires (its memory ceiling), once it does.
        self.retired: str | None = None

    def run(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Serve until stopped, on a new event loop (uvloop where installed)."""
        try:
            import uvloop

            factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
        except ImportError:  # pragma: no cover - uvloop is installed wherever it can be
            factory = None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(self.serve(sockets))

    async def serve(self, sockets: Sequence[socket.socket] | None = None) -> None:
        """Serve on the running loop until stopped (see the module's docstring)."""
        loop = asyncio.get_running_loop()
        restore = self._install_signals(loop)
        lifespan = _Lifespan(self.app, self.door.lifespan_state)
        memory = self._memory()
        try:
            await lifespan.startup()
            if memory is not None:
                # A worker has a supervisor to replace it; a server alone only warns.
                worker = getattr(self.app.state.mooring, "worker", None)
                memory.start(self._retire if worker is not None else None)
            listeners = await self._listen(loop, sockets)
            self.started = True
            if self.on_listening is not None:
                self._announcing = loop.create_task(self.on_listening())
            while not self.should_exit:
                await asyncio.sleep(_TICK_S)
            for listener in listeners:
                listener.close()
            await self._drain()
            for listener in listeners:
                await listener.wait_closed()
        finally:
            await lifespan.shutdown()
            if memory is not None:
                memory.stop()
            restore()

    def _memory(self) -> MemoryCeiling | None:
        """The app's memory ceiling, when this server bounds its process with it."""
        if not self.memory_ceiling:
            return None
        state = getattr(getattr(self.app, "state", None), "mooring", None)
        memory = getattr(state, "memory", None)
        if not isinstance(memory, MemoryCeiling) or memory.headroom is None:
            return None
        return memory

    def _retire(self, why: str) -> None:
        """Stop taking connections and stop once what is under way is answered (from
        any thread): the process kept too much memory and its supervisor replaces it."""
        self.retired = why
        self.should_exit = True

    async def _listen(
        self, loop: asyncio.AbstractEventLoop, sockets: Sequence[socket.socket] | None
    ) -> list[asyncio.AbstractServer]:
        factory = self.door.factory(self.app)
        if sockets:
            return [
                await loop.create_server(factory, sock=sock, backlog=self.backlog)
                for sock in sockets
            ]
        try:
            return [
                await loop.create_server(
                    factory, self.host, self.port, backlog=self.backlog, reuse_address=True
                )
            ]
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            # Free when `mooring serve` started (its preflight checks), taken while the
            # model loaded.
            raise UsageError(
                f"port {self.port} on {self.host} is in use (taken while the model loaded); "
                "pass --port N or stop what listens there"
            ) from exc

    async def _drain(self) -> None:
        """Answer the requests under way (up to ``graceful_s``), then close every connection."""
        door = self.door
        door.shutdown()
        until = time.monotonic() + self.graceful_s
        while door.busy() and not self.force_exit and time.monotonic() < until:
            await asyncio.sleep(_TICK_S / 5)
        if door.busy():
            log.warning("stopping with %d requests unanswered", door.busy())
        door.close_all()
        await asyncio.sleep(0)  # let the transports report their close

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """SIGINT/SIGTERM stop the server (a second one at once); a no-op off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        signals = (signal.SIGINT, signal.SIGTERM)
        try:
            for sig in signals:
                loop.add_signal_handler(sig, self._signalled)
        except NotImplementedError:  # pragma: no cover - Windows
            return lambda: None

        def restore() -> None:
            for sig in signals:
                loop.remove_signal_handler(sig)

        return restore

    def _signalled(self) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


class _Lifespan:
    """The ASGI lifespan protocol (startup, then shutdown) run for an app.

    An app that does not speak it (it raises on the ``lifespan`` scope before asking for
    a message) is served without one; an app whose startup fails raises its error here.
    """

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.failure: str | None = None
        self.supported = True
        self.asked = False
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        starting = asyncio.ensure_future(self.started.wait())
        await asyncio.wait({starting, self.task}, return_when=asyncio.FIRST_COMPLETED)
        starting.cancel()
        if self.task.done():
            error = self.task.exception()
            if error is not None and self.asked:
                raise error
            if error is not None or not self.started.is_set():
                self.supported = False  # no lifespan: serve without
                return
        if self.failure is not None:
            await self.task  # the app raises its own error after reporting it
            raise RuntimeError(f"the app's startup failed: {self.failure}")

    async def shutdown(self) -> None:
        task = self.task
        if task is None or task.done() or not self.supported:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        stopping = asyncio.ensure_future(self.stopped.wait())
        await asyncio.wait({stopping, task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        await self.app(scope, self._receive, self._send)

    async def _receive(self) -> dict[str, Any]:
        self.asked = True
        return await self.inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self.started.set()
        elif kind == "lifespan.startup.failed":
            self.failure = str(message.get("message", ""))
            self.started.set()
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            self.stopped.set()
