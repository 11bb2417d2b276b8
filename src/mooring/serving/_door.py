"""The door: mooring's HTTP/1.1 server protocol, with admission control and read limits.

Overload has to be refused where it is cheapest, before the body is parsed and the app
runs, so the door is a protocol of its own on httptools' public parser, in two halves:
each connection's :class:`~mooring.serving._door_core.Core` decides everything from its
bytes, events and their times, with no I/O (one request parsed at a time, admission,
read timeouts from the table of :mod:`mooring.serving._door_states`, request hygiene);
this module's :class:`asyncio.Protocol`, served by :mod:`mooring.serving._server`, does
what it decides: it writes, pauses and closes, keeps the one timer a wait asks for,
sweeps the read deadlines every :data:`SWEEP_S`, and runs each request read whole, a
plain prediction through the app's :class:`FastPath` (no ASGI scope, messages or
Starlette request; the answer written in one piece), anything else through ASGI
(:mod:`mooring.serving._door_cycle`). What a client sees of it, every limit and its
answer, is in ``docs/concepts/serving.md`` ("Overload is refused at the door").

Examples:
    >>> door = Door(ServingConfig(max_in_flight=32))
    >>> server = await loop.create_server(door.factory(app), "127.0.0.1", 8501)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mooring.config import ServingConfig
from mooring.serving._admission import Admission
from mooring.serving._door_answers import INTERNAL_ERROR, date_header, refusal
from mooring.serving._door_core import (
    CLOSE,
    PAUSE,
    RESUME,
    Core,
    Decision,
    Dispatch,
    Lost,
    Wait,
    Write,
)
from mooring.serving._door_cycle import ARRIVED, Cycle
from mooring.serving._door_framing import Request
from mooring.serving._door_states import HEAD_LIMIT, HELD_BYTES, ConnectionState, Timer
from mooring.serving._routes import NO_ROUTES, Routes

__all__ = ["ARRIVED", "HEAD_LIMIT", "HELD_BYTES", "Door", "FastPath"]

log = logging.getLogger("mooring.serving")

# How often the read timeouts are checked (seconds): their resolution.
SWEEP_S = 0.25

_DISPATCHED = ConnectionState.DISPATCHED
_BODY_TIMER = Timer.BODY


class FastAnswer(Protocol):
    """What the door reads of the app's answer (an :class:`~mooring.serving._http.Answer`)."""

    @property
    def status_code(self) -> int: ...

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]: ...

    @property
    def body(self) -> bytes | memoryview: ...


class FastPath(Protocol):
    """The app's side of the door's road for a plain prediction (a ``Content-Length``
    body within ``body_limit_bytes``, no ``Expect``): the answer to the request the door
    read, and the count of one whose client left before its body arrived (499)."""

    async def serve(self, req: Request, client: str | None) -> FastAnswer: ...

    def lost(self, req: Request, client: str | None) -> None: ...


class Door:
    """What every connection of one process shares: the admission (shared with gRPC),
    the connections (for the read timeouts and shutdown) and the fast path."""

    def __init__(
        self,
        limits: ServingConfig | None = None,
        admission: Admission | None = None,
        routes: Routes = NO_ROUTES,
    ) -> None:
        #: The limits (``[serving]``): the door reads its own and shares the admission's.
        self.limits = limits or ServingConfig()
        #: Permits, receiving count and body budget (:mod:`mooring.serving._admission`);
        #: its ``on_refused`` also hears the door's own refusals (connections, read_timeout).
        self.admission = admission or Admission.of(self.limits)
        #: The app's route table, whose predictions the door admits and may read itself
        #: (:data:`~mooring.serving._routes.NO_ROUTES`: none, every request through ASGI).
        self.routes = routes
        #: Open connections, the longest quiet first: in the order they were made or last
        #: answered (a dict for its order; moved to its end in O(1)).
        self.connections: dict[_Connection, None] = {}
        #: The requests being answered (their tasks), held until they end.
        self.tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closing = False
        #: What the app's lifespan put in its scope's ``state`` (copied into each request's).
        self.lifespan_state: dict[str, Any] = {}
        #: The app's side of a plain prediction's road; None: every request goes through ASGI.
        self.fast: FastPath | None = None

    def factory(self, app: Any) -> Callable[[], asyncio.Protocol]:
        """The protocol factory of ``loop.create_server`` serving ``app`` (ASGI)."""
        return lambda: _Connection(self, app)

    # -- shutdown (mooring.serving._server) -------------------------------------------------
    def shutdown(self) -> None:
        """Stop taking requests: idle connections close now, the others after the answer
        of the request they are in."""
        self._closing = True
        for connection in list(self.connections):
            connection.shutdown()

    def reclaim_idle(self) -> bool:
        """Close the connection quiet the longest with nothing under way (none of a request
        read, no answer owed, not parked) to make room for a new one: idle sockets, however
        many, never keep a client with a request out, and a keep-alive client that was
        answered since they connected keeps its connection (ordered by connection age, a
        busy client's old connection was closed first). False: every connection is in a
        request.

        >>> Door().reclaim_idle()
        False
        """
        for connection in self.connections:
            if connection.core.reclaimable():
                connection.abort()
                self.connections.pop(connection, None)
                return True
        return False

    def reclaim_body(self, now: float, keep: Core | None) -> bool:
        """Cut the prediction body furthest behind ``min_body_rate_bytes_s``
        (:meth:`Core.behind <mooring.serving._door_core.Core.behind>`; 408) to make room
        for another request: bodies trickling in, however many, never keep a client with a
        request out. False: none is behind (``keep``, the one asking, is never cut).

        >>> Door().reclaim_body(0.0, None)
        False
        """
        furthest, late = None, 0.0
        for connection in self.connections:
            core = connection.core
            if core is not keep:
                behind = core.behind(now)
                if behind is not None and behind > late:
                    furthest, late = connection, behind
        if furthest is None:
            return False
        furthest.act(furthest.core.cut(now))
        return True

    def busy(self) -> int:
        """Connections still in a request (its body arriving, or its answer not written)."""
        return sum(
            1
            for c in self.connections
            if c.core.state.rule.timer is _BODY_TIMER or c.core.state is _DISPATCHED
        )

    def close_all(self) -> None:
        """Close every connection, answered or not (the end of a graceful shutdown)."""
        for connection in list(self.connections):
            connection.abort()

    # -- the read timeouts ----------------------------------------------------------------
    def _watch(self, connection: _Connection) -> None:
        self.connections[connection] = None
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(SWEEP_S, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for connection in list(self.connections):
            due = connection.core.deadline
            if due is not None and due < now:
                connection.act(connection.core.expire(now))
        self._sweeper = loop.call_later(SWEEP_S, self._sweep, loop) if self.connections else None


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection behind the door: the asyncio side of its
    :class:`~mooring.serving._door_core.Core`, which decides; this reads, writes, runs
    the app and keeps the one timer a :class:`~mooring.serving._door_core.Wait` asks for."""

    def __init__(self, door: Door, app: Any) -> None:
        self.door = door
        self.limits = door.limits
        self.app = app
        self.core = Core(door.admission, door.limits, door.reclaim_body, door.routes)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int | None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] | None = None
        self.drained: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        return self.core.closed

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Both addresses from the transport's extra info, not through a socket object: its
        # getsockname()/getpeername() release the GIL, and under a burst of connections each
        # release waited for the batch thread to hand it back.
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self.core.peer = self.client
        door = self.door
        full = len(door.connections) >= self.limits.max_connections
        if door._closing or (full and not door.reclaim_idle()):
            door.admission.count("connections")
            self.transport.write(refusal(self.limits, "connections", True))
            self.abort()
            return
        self.core.open(time.monotonic())
        door._watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.door.connections.pop(self, None)
        self._cancel_timer()
        self.act(self.core.lost())
        for waiter in (self.lost, self.drained):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        if self.drained is None:
            self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def data_received(self, data: bytes) -> None:
        self.act(self.core.receive(data, time.monotonic()))

    def eof_received(self) -> bool:
        """The client half-closed: the socket stays open for the answers still owed."""
        self.act(self.core.eof(time.monotonic()))
        return not self.core.closed

    # -- what the core decided ------------------------------------------------------------
    def act(self, decisions: Sequence[Decision]) -> None:
        """Do what the core decided, in order."""
        for decision in decisions:
            kind = type(decision)
            if kind is Dispatch:
                req = decision.req  # type: ignore[union-attr]
                # The door holds the task until it ends (the loop keeps only a weak
                # reference), also past the answer: an app may go on after its last body.
                task = asyncio.get_running_loop().create_task(
                    self._fast(req)
                    if req.fast and self.door.fast is not None
                    else Cycle(self, req).run(self.app)
                )
                self.door.tasks.add(task)
                task.add_done_callback(self.door.tasks.discard)
            elif kind is Write:
                self.transport.write(decision.data)  # type: ignore[union-attr]
            elif decision is CLOSE:
                self._cancel_timer()
                self.transport.close()
            elif decision is PAUSE:
                self.transport.pause_reading()
            elif decision is RESUME:
                self.transport.resume_reading()
            elif kind is Wait:
                seconds = decision.seconds  # type: ignore[union-attr]
                self.timer = asyncio.get_running_loop().call_later(seconds, self._wake)
            elif kind is Lost:
                self._count_lost(decision.req)  # type: ignore[union-attr]

    def _wake(self) -> None:
        self.timer = None
        self.act(self.core.wake(time.monotonic()))

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _done(self, req: Request, whole: bool) -> None:
        """The answer is written (``whole``: to its end): the core goes on with what this
        connection sent, and the connection becomes the last the door reclaims
        (:meth:`Door.reclaim_idle`)."""
        self.act(self.core.answered(req, time.monotonic(), whole=whole))
        connections = self.door.connections
        if connections.pop(self, False) is None:  # still open: to the end, O(1)
            connections[self] = None

    def shutdown(self) -> None:
        self.act(self.core.shutdown())

    def abort(self) -> None:
        self.act(self.core.close())

    # -- answering --------------------------------------------------------------------------
    async def _fast(self, req: Request) -> None:
        """A plain prediction answered by the app's :class:`FastPath`, in one write."""
        fast = self.door.fast
        try:
            if fast is None:
                raise RuntimeError("the fast path was turned off with a request on it")
            answer = await fast.serve(req, self.client[0] if self.client else None)
            # Framed after: a shutdown or half-close meanwhile makes it the last.
            head = self.core.head(req, answer.status_code, answer.raw_headers, date_header())
            data = head + answer.body
            whole = True
        except Exception:  # the app answers every error it knows; this is the last guard
            log.exception("a prediction failed outside its handler")
            whole = False
            data = INTERNAL_ERROR
        self.core.release(req)
        if not req.disconnected and not self.core.closed:
            self.transport.write(data)
        self._done(req, whole)

    def _count_lost(self, req: Request) -> None:
        """A prediction whose client left before its body arrived: counted as the client's."""
        fast = self.door.fast
        if fast is not None:
            try:
                fast.lost(req, self.client[0] if self.client else None)
            except Exception:
                log.exception("a request whose client left was not counted")


def _address(info: Any) -> tuple[str, int | None] | None:
    """A socket address as the ASGI scope has it: (host, port), or (path, None)."""
    if isinstance(info, list | tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:
        return (info, None)
    return None
