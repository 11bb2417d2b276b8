"""The door: admission control, pipelining and read timeouts, before a request reaches the app.

Overload has to be refused where it is cheapest, before the body is read and parsed:
by the time the app's handler runs, the event loop has already paid for the request.
So the door is uvicorn's HTTP protocol (httptools) with these guarantees added:

* **Admission once the body is complete.** At most ``max_in_flight`` predictions (the
  routes :mod:`mooring.serving._routes` marks) hold an inference slot at once, and a
  request takes one only when its whole body has arrived: a client trickling its body
  cannot hold a slot. While its body arrives a prediction is counted as *receiving*
  (at most ``max_receiving``; past it a new one is answered ``503`` and its connection
  closed). A request that finds every slot taken is answered ``503`` with
  ``Retry-After``: at its headers when the slots are already full then (written
  straight to the socket, no task, its body skipped as it arrives), else when its body
  completes. Health, metadata, metrics and admin requests are never shed, so probes
  keep answering under overload.
* **Pipelining yields a quarter of the slots.** A request sent before its predecessor
  was answered is parsed right after that answer, before any other connection is
  read, and would take the slot just freed: such requests are refused (and parked)
  once three quarters of ``max_in_flight`` are taken, so pipelining clients cannot
  hold every slot while others are refused.
* **A refusal parks its connection.** After a 503 that keeps the connection, nothing
  more is read from it for ``Retry-After`` seconds: a client that retries at once
  waits in the kernel, so a retry storm costs one refusal per connection and second
  instead of as many as the clients can send, and the slots go to work.
* **The deadline starts at arrival.** The time a request's bytes were read from the
  socket goes into the ASGI scope (:data:`ARRIVED`); the app measures ``deadline_ms``
  from it, so time spent reading the body or held behind a pipelined request counts
  (and a request whose deadline passed so is answered 504 without reaching the model,
  counted as shed load). Time in the kernel's buffer before the read is not visible
  to the server; the door keeps it short by reading a connection again as soon as its
  earlier requests are answered.
* **Bounded pipelining.** While a connection has a complete request unanswered, what
  it sends is held as bytes, not parsed (consumed from an offset, never copied per
  answer); past :data:`HELD_BYTES` held its socket is not read and the rest waits in
  the kernel (below it the socket is read on, so a client that leaves is seen).
  Bytes are parsed in slices, so one read cannot turn into thousands of queued
  requests; past ``max_pipelined`` parsed-and-waiting requests the connection is
  answered up to there and closed. Memory per connection is bounded by configuration,
  whatever the client sends: ``HELD_BYTES`` and one read, and ``max_pipelined``
  requests.
* **Read timeouts.** A request's headers must arrive within ``header_timeout_s`` of
  its first byte (or of the connection's opening), and its body at
  ``min_body_rate_bytes_s`` or faster after a grace of ``body_grace_s`` (its declared
  length at that rate; a chunked body's deadline follows the bytes received so far),
  and within ``body_timeout_s`` of its headers in any case; otherwise the connection
  is closed (with a 408 when no answer is under way). Connections past
  ``max_connections`` are answered 503 and closed.
* **Request hygiene.** As a request's headers complete, before admission: an HTTP/1.1
  request without a ``Host`` header, or any with more than one, is answered ``400``
  (RFC 9112 §3.2); a ``Transfer-Encoding`` other than ``chunked`` alone is answered
  ``501`` (RFC 9112 §6.1). Both close the connection (in turn, behind the answers of
  its earlier requests). One pass over the headers does these checks and reads the
  ``Content-Length`` the door needs anyway.
* **A client that leaves is no error.** When a connection is lost, every request of it
  still unanswered (the one being answered, and those pipelined behind it) is marked
  disconnected, so its answer is dropped instead of written to a closed socket.

It also writes a prediction's answer in one piece: uvicorn writes an answer's head
when the app sends it and the body after, two writes (two ``send`` system calls) for
every answer; the door holds the head of an inference answer and writes it with the
first bytes of the body (:class:`_Coalescing`).

Why not uvicorn's own ``limit_concurrency``: it counts connections as well as tasks
(idle keep-alive connections trigger it), answers through a task per refused
request, and neither bounds pipelining nor times out a partial header.

Example:
    >>> door = Door(DoorLimits(max_in_flight=32))
    >>> config = uvicorn.Config(app, http=door.protocol())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import httptools
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mooring.config import ServingConfig
from mooring.serving._door_answers import (
    BOTH_LENGTHS,
    CHUNKED_NOT_LAST,
    QueuedRefusal,
    bad_host,
    plain,
    refusal_body,
    too_slow,
    unknown_coding,
)
from mooring.serving._fastpath import FastPath, FastRequest
from mooring.serving._routes import is_prediction

__all__ = ["ARRIVED", "Door", "DoorLimits", "server_config"]

log = logging.getLogger("mooring.serving")

#: Scope key holding the request's arrival time (``time.monotonic()``, headers parsed).
ARRIVED = "mooring.arrived"

# Bytes handed to the parser at once outside a request's body: one slice holds at most
# 14 requests (the shortest is 18 bytes), so pipelining queues fewer than max_pipelined's
# default per slice. A body is handed over whole (its Content-Length), plus one slice.
SLICE = 256
# Unparsed bytes a connection may hold (read, waiting behind its unanswered request)
# before its socket is no longer read: with one read on top (uvloop reads up to 256 KiB),
# what a pipelining client costs in memory.
HELD_BYTES = 64 * 1024
# How often the read timeouts are checked (seconds): their resolution.
SWEEP_S = 0.25


@dataclass(frozen=True)
class DoorLimits:
    """The door's limits (``[serving]`` in :meth:`from_config`)."""

    max_in_flight: int = 32
    max_connections: int = 4096
    max_pipelined: int = 16
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    retry_after_s: int = 1
    # The largest body the door reads itself for the fast path (larger: through ASGI,
    # which refuses it with 413).
    body_limit_bytes: int = 4 * 1024 * 1024
    max_receiving: int = 256
    min_body_rate_bytes_s: float = 1024.0  # 0: off (body_timeout_s alone)
    body_grace_s: float = 2.0

    @classmethod
    def from_config(cls, cfg: ServingConfig) -> DoorLimits:
        return cls(
            max_in_flight=cfg.max_in_flight,
            max_connections=cfg.max_connections,
            max_pipelined=cfg.max_pipelined,
            header_timeout_s=cfg.header_timeout_s,
            body_timeout_s=cfg.body_timeout_s,
            body_limit_bytes=cfg.body_limit_bytes,
            max_receiving=cfg.max_receiving,
            min_body_rate_bytes_s=cfg.min_body_rate_bytes_s,
            body_grace_s=cfg.body_grace_s,
            retry_after_s=cfg.retry_after_s,
        )


def server_config(app: Any, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for a mooring app (``build_app``): its door, its keep-alive.

    Example:
        >>> uvicorn.Server(server_config(app, host="127.0.0.1", port=8501)).run()  # doctest: +SKIP
    """
    state = app.state.mooring
    options.setdefault("log_level", "warning")
    options.setdefault("access_log", False)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=state.door.protocol(),
        timeout_keep_alive=state.serving.keep_alive_s,
        **options,
    )


class Door:
    """The process-wide admission count and the shed counters, shared by every connection."""

    def __init__(self, limits: DoorLimits | None = None) -> None:
        self.limits = limits or DoorLimits()
        self.in_flight = 0
        #: Predictions whose body is still arriving (not yet holding a slot).
        self.receiving = 0
        #: Called with the reason of each refusal: in_flight, receiving, connections,
        #: read_timeout.
        self.on_refused: Callable[[str], None] | None = None
        self._connections: weakref.WeakSet[_DoorProtocol] = weakref.WeakSet()
        self._sweeper: asyncio.TimerHandle | None = None
        self._refusals: dict[tuple[str, bool], bytes] = {}
        #: The app's side of the fast path (:mod:`mooring.serving._fastpath`); None: every
        #: request goes through ASGI.
        self.fast: FastPath | None = None

    def protocol(self) -> type[asyncio.Protocol]:
        """uvicorn's ``http=`` class for this door (one door per server)."""
        return type("MooringHttpProtocol", (_DoorProtocol,), {"door": self})

    def refusal(self, why: str, close: bool) -> bytes:
        """The whole 503 answer for ``why``, built once (it is written thousands of times a
        second under overload)."""
        key = (why, close)
        answer = self._refusals.get(key)
        if answer is None:
            body = refusal_body(self.limits, why)
            answer = plain(
                b"503 Service Unavailable", body, close=close, retry_after=self.limits.retry_after_s
            )
            self._refusals[key] = answer
        return answer

    def try_admit(self) -> bool:
        """Admit one inference request that arrives by another road than HTTP/1.1 (gRPC).

        True: admitted, counted in :attr:`in_flight` until :meth:`release`. False: the
        server is at ``max_in_flight``; the refusal is counted (reason ``in_flight``) and
        the caller answers "unavailable", as the door answers 503.

        Example:
            >>> door = Door(DoorLimits(max_in_flight=1))
            >>> door.try_admit(), door.try_admit()
            (True, False)
            >>> door.release(); door.in_flight
            0
        """
        if self.in_flight >= self.limits.max_in_flight:
            self.count("in_flight")
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """Free the slot of a request admitted by :meth:`try_admit` (once it is answered)."""
        self.in_flight -= 1

    def count(self, reason: str) -> None:
        if self.on_refused is not None:
            self.on_refused(reason)

    def watch(self, connection: _DoorProtocol, loop: asyncio.AbstractEventLoop) -> None:
        self._connections.add(connection)
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP_S, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for connection in list(self._connections):
            deadline = connection.read_deadline
            if deadline is not None and deadline < now:
                connection.read_timed_out()
        self._sweeper = loop.call_later(SWEEP_S, self._sweep, loop) if self._connections else None


class _Flow(FlowControl):
    """uvicorn's flow control, that reads on only when the door would.

    uvicorn resumes reading wherever a request might need more bytes: after every answer,
    and each time the app asks for the body, even one already complete. Each resumption
    would read one more buffer of a pipelining client into memory; here it is a no-op
    while the connection holds :data:`HELD_BYTES` unparsed (or is parked or ending).
    """

    def __init__(self, transport: asyncio.Transport, protocol: _DoorProtocol) -> None:
        super().__init__(transport)
        self.protocol = protocol

    def resume_reading(self) -> None:
        if self.read_paused and not self.protocol._full():
            super().resume_reading()


class _Answered:
    """Stands in for uvicorn's request cycle of a request the door answered itself.

    ``response_complete`` makes uvicorn's parser callbacks skip its body.
    """

    response_complete = True
    disconnected = False
    keep_alive = True
    more_body = False

    class message_event:  # noqa: N801 - mirrors the one asyncio.Event method uvicorn calls
        @staticmethod
        def set() -> None:
            return None


_ANSWERED = _Answered()


def _address(info: Any) -> tuple[str, int | None] | None:
    """A socket address as uvicorn puts it in the scope: (host, port), or (path, None)."""
    if isinstance(info, list | tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:
        return (info, None)
    return None


class _DoorProtocol(HttpToolsProtocol):
    door: Door

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvicorn's connection_made, with both addresses read from the transport's extra
        # info instead of through a socket object: its getsockname()/getpeername() release
        # the GIL, and under a burst of new connections each release waited for the batch
        # thread to hand the GIL back (a fifth of the event loop's time in a burst of 400
        # connections, and the slowest 503s, measured with py-spy).
        self.connections.add(self)
        self.transport = transport
        self.flow = _Flow(transport, self)
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = cast("tuple[str, int] | None", _address(transport.get_extra_info("peername")))
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        limits = self.door.limits
        self._app = self.app
        # Bytes read but not yet parsed (at most one read: reading pauses while they are
        # held), consumed from _held_at on, never copied per answer; _read_at: when the
        # bytes being parsed were read from the socket (a request's arrival).
        self._held = b""
        self._held_at = 0
        self._read_at = 0.0
        # Refused: nothing more is read from this connection until Retry-After has passed.
        self._parked: asyncio.TimerHandle | None = None
        # Parsing bytes held while an earlier request was unanswered (a pipeline).
        self._from_held = False
        self.park_after = False
        self._reading = False
        self._body_left = 0
        # The body's clock: when its headers arrived, and for a chunked body (whose deadline
        # follows what it sent) the bytes received so far (-1: a declared length).
        self._body_at = 0.0
        self._body_got = -1
        self._refuse_all = len(self.connections) > limits.max_connections
        self._coalescing = _Coalescing(transport)
        self._overflowed = False
        # The last request was refused and the connection ends with its answer: no more read.
        self._ending = False
        # This connection's requests through ASGI not yet answered, in order (the one being
        # answered first): marked disconnected if the connection is lost.
        self._unanswered: deque[Any] = deque()
        self.read_deadline: float | None = time.monotonic() + limits.header_timeout_s
        self.door.watch(self, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        # uvicorn marks only the connection's last request (self.cycle) disconnected: one
        # answering ahead of pipelined ones would write to the closed socket (uvloop raises,
        # and uvicorn logs the app's traceback).
        for cycle in self._unanswered:
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self._unanswered.clear()
        self.pipeline.clear()
        self._held = b""
        self._held_at = 0
        if self._parked is not None:
            self._parked.cancel()
            self._parked = None
        self.read_deadline = None
        super().connection_lost(exc)

    # -- reading ---------------------------------------------------------------
    def _holding(self) -> bool:
        """Parse nothing more: requests of this connection wait, or its last one is complete
        and unanswered. (A request still arriving alone is parsed on: its body is needed.)
        What arrives meanwhile is held as bytes, up to :meth:`_full`."""
        cycle = self.cycle
        return (
            self._overflowed
            or self._ending
            or self._parked is not None
            or bool(self.pipeline)
            or (cycle is not None and not cycle.more_body and not cycle.response_complete)
        )

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        now = time.monotonic()
        if self._holding():
            if self._held_at < len(self._held):  # behind what is held already (< HELD_BYTES)
                data = self._held[self._held_at :] + data
            else:
                self._read_at = now
            self._hold(data, 0)
            return
        self._read_at = now
        self._feed(data, 0)

    def _full(self) -> bool:
        """Read nothing more of the socket: parked, ending, or :data:`HELD_BYTES` held.

        Below the cap a connection with requests held is still read, so a client that
        leaves is seen (a paused socket reports no end) and its answer is not computed
        for nobody; past it the rest waits in the kernel.
        """
        if self._parked is not None or self._overflowed or self._ending:
            return True
        return len(self._held) - self._held_at >= HELD_BYTES and self._holding()

    def _hold(self, data: bytes, start: int) -> None:
        self._held = data
        self._held_at = start
        if self._full():
            self.flow.pause_reading()
        # The clock of a request begun in these bytes restarts when they are parsed.
        self.read_deadline = None

    def _feed(self, data: bytes, start: int) -> None:
        view = memoryview(data)
        while start < len(view):
            if self.transport.is_closing():
                return
            if self._holding():
                self._hold(data, start)
                return
            end = start + SLICE + self._body_left
            try:
                self.parser.feed_data(view[start:end])
            except httptools.HttpParserError as exc:
                self._malformed(str(exc))
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            start = end

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        self.read_deadline = time.monotonic() + self.door.limits.header_timeout_s

    def on_body(self, body: bytes) -> None:
        self._body_left = max(0, self._body_left - len(body))
        cycle: Any = self.cycle
        if type(cycle) is FastRequest:
            cycle.parts.append(body)  # read whole: no high-water pause, nothing consumes it
            return
        if self._body_got >= 0:  # chunked: each byte earns time at the minimum rate
            self._body_got += len(body)
            limits = self.door.limits
            allowed = limits.body_grace_s + self._body_got / limits.min_body_rate_bytes_s
            self.read_deadline = self._body_at + min(allowed, limits.body_timeout_s)
        super().on_body(body)

    def _body_deadline(self, now: float, declared: int) -> float:
        """When the body of a request whose headers arrived ``now`` must be complete."""
        limits = self.door.limits
        self._body_at = now
        rate = limits.min_body_rate_bytes_s
        if rate <= 0:
            self._body_got = -1
            return now + limits.body_timeout_s
        self._body_got = 0 if declared < 0 else -1
        allowed = limits.body_grace_s + max(declared, 0) / rate
        return now + min(allowed, limits.body_timeout_s)

    # -- the fast path (mooring.serving._fastpath) ----------------------------------------
    def _fast(self, arrived: float, declared: int) -> FastRequest | None:
        """The request as the door reads it itself, where it is plain enough (else None).

        ``declared``: its Content-Length, or -1 where it has none usable (see :meth:`_scan`).
        """
        if self.door.fast is None or self.expect_100_continue or self.root_path:
            return None
        if declared < 0 or declared > self.door.limits.body_limit_bytes:
            return None
        raw = self.url.split(b"?", 1)[0]
        if b"%" in raw:
            return None
        path = raw.decode("latin-1")
        if not self.door.fast.takes(path):
            return None
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        client = self.client[0] if self.client else None
        return FastRequest(self, path, self.headers, arrived, keep_alive, client)

    def on_headers_complete(self) -> None:
        declared, refusal = self._scan()
        if self._overflowed or self._ending:
            self.cycle = _ANSWERED  # type: ignore[assignment]
            return
        now = time.monotonic()
        # Arrived when its bytes were read: a request held behind others has waited.
        arrived = min(self._read_at, now)
        limits = self.door.limits
        self.read_deadline = self._body_deadline(now, declared)
        cast("dict[str, Any]", self.scope)[ARRIVED] = arrived
        cycle = self.cycle
        pending = cycle is not None and not cycle.response_complete
        if refusal is not None:
            self._reject(*refusal, pending=pending)
            return
        if pending and len(self.pipeline) >= limits.max_pipelined:
            # Past the cap: answer what is queued, then close; nothing more is read.
            self._overflowed = True
            cycle.keep_alive = False
            self.cycle = _ANSWERED  # type: ignore[assignment]
            return
        if self._refuse_all:
            self._refuse("connections", pending, close=True)
            return
        upgrade = self.parser.should_upgrade()
        app = self._app
        if not upgrade and is_prediction(self.parser.get_method(), self.url):
            routed = self._prediction(arrived, declared, pending)
            if routed is None:
                return
            app = routed
        self.app = app
        try:
            super().on_headers_complete()
        finally:
            self.app = self._app
        self._track(self.cycle)
        if app is not self._app:
            # An admitted inference request's answer: its head goes out with its body.
            self.cycle.transport = self._coalescing  # type: ignore[assignment]

    def _prediction(self, arrived: float, declared: int, pending: bool) -> Any:
        """The app a prediction's headers lead to, or None where the door answered it or
        reads it itself (the fast path). It takes an inference slot once its body is
        complete; a request that finds every slot taken already is refused now, cheaply."""
        door = self.door
        limits = door.limits
        if pending:
            # Waits behind this connection's unanswered request: read, then admitted.
            return partial(self._receive_then_admit, declared, True)
        # A request read from held bytes (sent before its predecessor was answered) would
        # take the slot its predecessor just freed before any other connection is read:
        # pipelined requests get all but a quarter of the slots.
        limit = limits.max_in_flight - (limits.max_in_flight // 4 if self._from_held else 0)
        if door.in_flight >= limit:
            self._refuse("in_flight", pending, close=False)
            return None
        if door.receiving >= limits.max_receiving:
            self._refuse("receiving", pending, close=True)
            return None
        fast = self._fast(arrived, declared)
        if fast is not None:  # read and answered by the door (fastpath.py)
            door.receiving += 1  # until its body is complete: FastRequest.set
            self.cycle = fast  # type: ignore[assignment]
            return None
        return partial(self._receive_then_admit, declared, self._from_held)

    async def _receive_then_admit(
        self, declared: int, pipelined: bool, scope: Any, receive: Any, send: Any
    ) -> None:
        """A prediction through ASGI: its body read whole (counted receiving), then admitted
        (or refused 503), then the app run on the body replayed.

        A body past ``body_limit_bytes`` is read only up to there, and a declared one is not
        read at all: the app refuses it (413) from what it replays, as it would have.
        """
        door = self.door
        limits = door.limits
        messages: list[Any] = []
        if declared <= limits.body_limit_bytes:
            door.receiving += 1
            try:
                messages = await _buffered(receive, limits.body_limit_bytes)
            finally:
                door.receiving -= 1
            if messages[-1]["type"] != "http.request":  # the client left: the app counts it
                await self._app(scope, _replaying(messages, receive), send)
                return
        # A pipelined one (sent before its predecessor was answered) leaves a quarter of
        # the slots to other connections.
        limit = limits.max_in_flight - (limits.max_in_flight // 4 if pipelined else 0)
        if door.in_flight >= limit:
            door.count("in_flight")
            self.park_after = True
            await QueuedRefusal(refusal_body(limits, "in_flight"), limits.retry_after_s)(
                scope, receive, send
            )
            return
        door.in_flight += 1
        await self._run_admitted(scope, _replaying(messages, receive), send)

    async def _run_admitted(self, scope: Any, receive: Any, send: Any) -> None:
        # The slot is free once the answer is written (the next pipelined request may start
        # before this task ends), or when the app ends without one.
        held = True

        async def sending(message: Any) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                coalescing.armed = True
                try:
                    await send(message)
                finally:
                    coalescing.armed = False
                return
            if held and message["type"] == "http.response.body" and not message.get("more_body"):
                held = False
                self.door.in_flight -= 1
            await send(message)

        coalescing = self._coalescing

        try:
            await self._app(scope, receive, sending)
        finally:
            if held:
                self.door.in_flight -= 1

    def _scan(self) -> tuple[int, tuple[bytes, bytes] | None]:
        """One pass over the request's headers, for everything the door reads of them.

        Sets :attr:`_body_left` (how much body to hand the parser at once) and returns the
        Content-Length the fast path may use (-1: none, repeated or not a number, or a
        chunked body) and the refusal the request gets, if any: ``(status, body)``.
        """
        declared = -1
        hosts = 0
        coding: bytes | None = None
        for name, value in self.headers:
            if name == b"content-length":
                declared = int(value) if declared == -1 and value.isdigit() else -2
            elif name == b"host":
                hosts += 1
            elif name == b"transfer-encoding":
                coding = value if coding is None else coding + b", " + value
        if coding is not None:
            self._body_left = SLICE * 16  # chunked: read on in larger slices
            if coding.strip().lower() != b"chunked":
                return -1, (b"501 Not Implemented", unknown_coding(coding))
            declared = -1
        else:
            self._body_left = declared if declared > 0 else 0
        if hosts != 1 and (hosts > 1 or self.parser.get_http_version() != "1.0"):
            return -1, (b"400 Bad Request", bad_host(hosts))
        return (declared if declared >= 0 else -1), None

    def _reject(self, status: bytes, body: bytes, *, pending: bool) -> None:
        """Answer a malformed request ``status`` and close: now, or in turn behind this
        connection's unanswered one. Nothing more of the connection is read."""
        self._ending = True
        if pending:
            self._queue(QueuedRefusal(body, None, close=True, status=int(status[:3])))
            return
        self.cycle = _ANSWERED  # type: ignore[assignment]
        self.transport.write(plain(status, body, close=True))
        self.transport.close()

    def _malformed(self, reason: str) -> None:
        """The parser refused the bytes: 400 and close (a smuggling shape said as such)."""
        if self.transport.is_closing():  # answered already, as its headers completed
            return
        if "Transfer-Encoding" in reason:
            body = BOTH_LENGTHS if "Content-Length" in reason else CHUNKED_NOT_LAST
            self.transport.write(plain(b"400 Bad Request", body, close=True))
            self.transport.close()
            return
        self.send_400_response("Invalid HTTP request received.")

    def _queue(self, answer: QueuedRefusal) -> None:
        """HTTP/1.1 answers in order: run a small answering app behind the running one."""
        self.app = answer
        try:
            super().on_headers_complete()
        finally:
            self.app = self._app
        self._track(self.cycle)

    def _track(self, cycle: Any) -> None:
        """Keep a request going through ASGI until it is answered (for connection_lost)."""
        unanswered = self._unanswered
        while unanswered and unanswered[0].response_complete:
            unanswered.popleft()
        unanswered.append(cycle)

    def on_message_complete(self) -> None:
        self._body_left = 0
        self._reading = False
        self.read_deadline = None
        super().on_message_complete()

    def _refuse(self, why: str, pending: bool, *, close: bool) -> None:
        """Answer 503 + Retry-After now, or in turn behind this connection's unanswered one."""
        self.door.count(why)
        retry = self.door.limits.retry_after_s
        close = close or self.expect_100_continue or not self.parser.should_keep_alive()
        if pending:
            self._queue(QueuedRefusal(refusal_body(self.door.limits, why), retry, close=close))
            return
        self.cycle = _ANSWERED  # type: ignore[assignment]
        self.transport.write(self.door.refusal(why, close))
        if close:
            self.transport.close()
        else:
            self._park()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self._overflowed and not self.pipeline:
            self.transport.close()
            return
        if self.park_after:  # answered a refusal through ASGI
            self.park_after = False
            self._park()
            return
        if self._holding():
            if self._full():
                self.flow.pause_reading()
            return
        self._resume()

    def _resume(self) -> None:
        """Parse what is held, from where it stopped (then read the socket again)."""
        if self._reading and self.read_deadline is None:
            now = time.monotonic()
            self._body_at = now  # a held body's clock restarts with its reading
            self.read_deadline = now + self.door.limits.header_timeout_s
        if self._held_at < len(self._held):
            data, start = self._held, self._held_at
            self._held, self._held_at = b"", 0
            self._from_held = True
            try:
                self._feed(data, start)  # pauses reading again where it holds HELD_BYTES
            finally:
                self._from_held = False
        if self.flow.read_paused and not self.transport.is_closing():
            self.flow.resume_reading()  # a no-op while full (_Flow)

    def _park(self) -> None:
        """After a refusal: read nothing of this connection for ``retry_after_s``. A client
        that retries at once waits there, at the cost of a timer, so a retry storm is
        refused at most once per connection and Retry-After instead of as fast as it
        sends; one that honours Retry-After finds the connection read again."""
        self.flow.pause_reading()
        self.read_deadline = None
        self._parked = self.loop.call_later(self.door.limits.retry_after_s, self._unpark)

    def _unpark(self) -> None:
        self._parked = None
        if self.transport.is_closing():
            return
        if not self._reading and self.read_deadline is None:
            # Idle again: its next request must begin as on a new connection.
            self.read_deadline = time.monotonic() + self.door.limits.header_timeout_s
        self._resume()

    # -- timeouts ------------------------------------------------------------------
    def _unanswered_body(self, cycle: Any) -> bool:
        """The request whose body is arriving has no answer under way, nor any before it."""
        if not cycle.more_body or cycle.response_started:
            return False
        return all(c is cycle or c.response_complete for c in self._unanswered)

    def read_timed_out(self) -> None:
        """Headers or body too slow: close, with a 408 when no answer is under way."""
        self.read_deadline = None
        if self.transport.is_closing():
            return
        self.door.count("read_timeout")
        cycle = self.cycle
        if cycle is None or cycle.response_complete or self._unanswered_body(cycle):
            self.transport.write(
                plain(b"408 Request Timeout", too_slow(self.door.limits), close=True)
            )
        log.info("closing a connection from %s: its request was read too slowly", self.client)
        self.transport.close()


async def _buffered(receive: Any, limit: int) -> list[Any]:
    """A request's ASGI messages up to the end of its body, its client leaving, or past
    ``limit`` bytes (the app refuses that from them)."""
    messages: list[Any] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return messages


def _replaying(messages: list[Any], receive: Any) -> Any:
    """A ``receive`` that gives ``messages`` first, then goes on with ``receive``."""
    queue = deque(messages)

    async def replay() -> Any:
        if queue:
            return queue.popleft()
        return await receive()

    return replay


class _Coalescing:
    """A connection's transport as an inference answer's cycle sees it: the answer's head
    is held and written with the first bytes of its body, one write instead of two.

    Armed by the door while the app's ``http.response.start`` is sent, so only the head
    is held (not the ``100 Continue`` that uvicorn writes when the app first reads).
    A close writes a held head first, as uvicorn would have. Measured with ``strace -c``
    on a ``--workers 1`` server under ``wrk`` (single rows): 2.5 ``write`` calls a request
    before, 1.25 after.
    """

    __slots__ = ("armed", "head", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.armed = False  # the next write is a head, to hold
        self.head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self.armed:
            self.armed = False
            self.head = data
            return
        head = self.head
        if head is not None:
            self.head = None
            data = head + data
        self.transport.write(data)

    def flush(self) -> None:
        head = self.head
        if head is not None:
            self.head = None
            if not self.transport.is_closing():  # the client may be gone
                self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)
