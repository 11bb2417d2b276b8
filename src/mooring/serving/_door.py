"""The door: mooring's HTTP/1.1 server protocol, with admission control and read limits.

Overload has to be refused where it is cheapest, before the body is parsed and the app
runs. So the door is an :class:`asyncio.Protocol` of its own on httptools' public parser
(:class:`httptools.HttpRequestParser`), served by :mod:`mooring.serving._server`; it runs
the app over ASGI, and plain predictions through :mod:`mooring.serving._fastpath`.

* **One request at a time.** The parser is handed bytes only up to the end of the
  current request (the header block up to its blank line, then exactly the
  ``Content-Length`` of body, a chunked body line by line). Once a request is complete
  nothing more is parsed until it is answered: what the client sends meanwhile (a
  pipeline) stays as bytes, consumed by offset, never copied per answer; past
  :data:`HELD_BYTES` the socket is not read and the rest waits in the kernel. Memory per
  connection: one request and ``HELD_BYTES`` plus one read, whatever the client sends.
* **Admission once the body is complete.** The counts are the
  :class:`~mooring.serving._admission.Admission` the door shares with gRPC. At most
  ``max_in_flight`` predictions (the routes :mod:`mooring.serving._routes` marks) hold
  an inference permit at once, and a request takes one only when its whole body has
  arrived: a client trickling its body cannot hold a permit. While its body arrives a
  prediction counts as *receiving* (at most
  ``max_receiving``; past it ``503`` and close). A prediction that finds every permit
  taken is answered ``503`` with ``Retry-After`` (no task, written straight to the
  socket). Health, metadata, metrics and admin requests are never shed.
* **Pipelining yields to predictions.** While predictions are in the model, a
  connection's next pipelined request waits :data:`PIPELINE_YIELD_S` before it is
  parsed, so a client pipelining as fast as it can does not keep the event loop (and the
  GIL) from the model's thread; with no prediction pending it is parsed at once.
* **Pipelining yields a quarter of the permits.** A request already waiting in the held
  bytes is parsed right after its predecessor's answer, before any other connection is
  read, and would take the permit just freed: such requests are refused (and parked) once
  three quarters of ``max_in_flight`` are taken.
* **A refusal parks its connection.** After a 503 that keeps the connection, nothing
  more is read from it for ``Retry-After`` seconds: a client that retries at once waits
  in the kernel, so a retry storm costs one refusal per connection and second.
* **The deadline starts at arrival.** When a request's bytes were read from the socket
  goes into the ASGI scope (:data:`ARRIVED`) and the fast path's request; the app counts
  ``deadline_ms`` from it, so time held behind a pipelined request counts. Time in the
  kernel's buffer before the read is not visible to the server. The time a body takes
  to come over the socket is the client's, bounded by the read timeouts: it moves the
  arrival on, so a body uploaded within the limits is not answered 504 for its upload.
* **Read timeouts.** Headers within ``header_timeout_s`` of their first byte (or of the
  connection's opening), the body at ``min_body_rate_bytes_s`` or faster after
  ``body_grace_s`` (each byte that came earns its time, whatever the length declared: a
  large ``Content-Length`` buys nothing before its bytes arrive), and within
  ``body_timeout_s`` in any case: else ``408`` and close. An idle connection closes
  after ``keep_alive_s``. Which timer runs in each :class:`ConnectionState`, and what its
  end does, is the one table of :mod:`mooring.serving._door_states`. Past
  ``max_connections`` the oldest connection with nothing under way is closed to make
  room; only when every one is in a request: ``503``.
* **Request hygiene.** An HTTP/1.1 request without exactly one ``Host``, or with one
  that is not ``host[:port]``, is answered ``400`` (RFC 9112 §3.2); a
  ``Transfer-Encoding`` other than ``chunked`` alone ``501`` (§6.1); both lengths, or
  chunked not last, ``400`` (request smuggling shapes); a header block past
  :data:`HEAD_LIMIT` ``431``; a chunked body whose framing (chunk-size
  lines, line ends, trailers) exceeds its data by :data:`CHUNK_FRAMING` ``400``; a chunk
  whose size takes the body past ``body_limit_bytes`` ``413`` at its size line. Each
  closes the connection. A trailer's fields are read, never added to the request's
  headers.
* **A client that leaves is no error.** The answer of a request whose client left is
  dropped; a prediction whose body never completed is counted as the client's (499).

Examples:
    >>> door = Door(DoorLimits(max_in_flight=32))
    >>> server = await loop.create_server(door.factory(app), "127.0.0.1", 8501)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools

from mooring.config import ServingConfig
from mooring.serving._admission import Admission
from mooring.serving._door_answers import (
    UPGRADE_CHUNKED,
    chunk_too_large,
    plain,
    refusal_body,
    too_large_head,
    too_much_framing,
    too_slow,
)
from mooring.serving._door_cycle import ARRIVED, Cycle
from mooring.serving._door_framing import (
    MALFORMED,
    Request,
    chunk_size,
    head_end,
    line_end,
    malformed,
    scan,
)
from mooring.serving._door_states import ConnectionState, Expiry, Timer, check, deadline
from mooring.serving._fastpath import FastPath, FastRequest, head, plain_500
from mooring.serving._routes import is_prediction

__all__ = ["ARRIVED", "HEAD_LIMIT", "HELD_BYTES", "Door", "DoorLimits"]

log = logging.getLogger("mooring.serving")

# Unparsed bytes a connection may hold (read, waiting behind its unanswered request)
# before its socket is no longer read: with one read on top (uvloop reads up to 256 KiB),
# what a pipelining client costs in memory.
HELD_BYTES = 64 * 1024
# The largest header block (request line and headers) read before 431.
HEAD_LIMIT = 64 * 1024
# A chunked body's framing (chunk-size lines, line ends, trailers) may exceed the data
# it carries by this much before 400: 1-byte chunks or a trailer flood cost a parse each.
CHUNK_FRAMING = 64 * 1024
# What a chunked prediction body holds of the door's body budget at its headers; it grows
# by as much again each time its data passes it, within the budget (else 503 and close).
CHUNKED_RESERVE = 64 * 1024
# How long a connection's next pipelined request waits while predictions are in the model
# (seconds). A pipelining client keeps the event loop busy without a pause, and the model's
# thread then waits for the GIL and a core at every hand-back: one connection pipelining
# 65,000 health checks raised other clients' prediction p50 from 1.3 ms to 60-120 ms.
# Waiting this long before each of its requests lets the loop idle (and the model run)
# while predictions are pending; with none pending the pipeline runs at full speed.
PIPELINE_YIELD_S = 0.001
# How often the read timeouts are checked (seconds): their resolution.
SWEEP_S = 0.25

# Where a connection is (mooring.serving._door_states: its timers and moves), by identity.
_NEW = ConnectionState.NEW
_OPEN = ConnectionState.OPEN
_HEAD = ConnectionState.HEAD
_BODY = ConnectionState.BODY
_DISPATCHED = ConnectionState.DISPATCHED
_IDLE = ConnectionState.IDLE
_PARKED = ConnectionState.PARKED
_NO_TIMER = Timer.NONE
_HEADER_TIMER = Timer.HEADER
_BODY_TIMER = Timer.BODY


@dataclass(frozen=True)
class DoorLimits:
    """The door's limits (``[serving]`` in :meth:`from_config`)."""

    max_in_flight: int = 32
    max_connections: int = 4096
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    retry_after_s: int = 1
    # The largest body read: above it the app refuses the request (413) from its headers,
    # or from the bytes past the limit, and the connection closes.
    body_limit_bytes: int = 4 * 1024 * 1024
    max_receiving: int = 256
    # Bytes of prediction bodies held at once, from their headers to their answer.
    body_budget_bytes: int = 32 * 1024 * 1024
    min_body_rate_bytes_s: float = 1024.0  # 0: off (body_timeout_s alone)
    body_grace_s: float = 2.0

    def admission(self) -> Admission:
        """A new :class:`~mooring.serving._admission.Admission` with these limits."""
        return Admission(
            max_in_flight=self.max_in_flight,
            max_receiving=self.max_receiving,
            body_budget_bytes=self.body_budget_bytes,
        )

    @classmethod
    def from_config(cls, cfg: ServingConfig) -> DoorLimits:
        return cls(
            max_in_flight=cfg.max_in_flight,
            max_connections=cfg.max_connections,
            header_timeout_s=cfg.header_timeout_s,
            body_timeout_s=cfg.body_timeout_s,
            keep_alive_s=cfg.keep_alive_s,
            body_limit_bytes=cfg.body_limit_bytes,
            max_receiving=cfg.max_receiving,
            body_budget_bytes=cfg.body_budget_bytes,
            min_body_rate_bytes_s=cfg.min_body_rate_bytes_s,
            body_grace_s=cfg.body_grace_s,
            retry_after_s=cfg.retry_after_s,
        )


class Door:
    """What every connection of one process shares: the admission (shared with gRPC),
    the connections (for the read timeouts and shutdown) and the fast path."""

    def __init__(
        self, limits: DoorLimits | None = None, admission: Admission | None = None
    ) -> None:
        self.limits = limits or DoorLimits()
        #: Permits, receiving count and body budget (:mod:`mooring.serving._admission`);
        #: its ``on_refused`` also hears the door's own refusals (connections, read_timeout).
        self.admission = admission or self.limits.admission()
        #: Open connections, oldest first (a dict for its order).
        self.connections: dict[_Connection, None] = {}
        #: The requests being answered (their tasks), held until they end.
        self.tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._refusals: dict[tuple[str, bool], bytes] = {}
        self._closing = False
        #: What the app's lifespan put in its scope's ``state`` (copied into each request's).
        self.lifespan_state: dict[str, Any] = {}
        #: The app's side of the fast path (:mod:`mooring.serving._fastpath`); None: every
        #: request goes through ASGI.
        self.fast: FastPath | None = None

    def factory(self, app: Any) -> Callable[[], asyncio.Protocol]:
        """The protocol factory of ``loop.create_server`` serving ``app`` (ASGI)."""
        return lambda: _Connection(self, app)

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

    def count(self, reason: str) -> None:
        self.admission.count(reason)

    # -- shutdown (mooring.serving._server) -------------------------------------------------
    def shutdown(self) -> None:
        """Stop taking requests: idle connections close now, the others after the answer
        of the request they are in."""
        self._closing = True
        for connection in list(self.connections):
            connection.shutdown()

    def reclaim_idle(self) -> bool:
        """Close the oldest connection with nothing under way (none of a request read, no
        answer owed, not parked) to make room for a new one: idle sockets, however many,
        never keep a client with a request out. False: every connection is in a request.

        >>> Door().reclaim_idle()
        False
        """
        for connection in self.connections:
            if connection.reclaimable():
                connection._close()
                self.connections.pop(connection, None)
                return True
        return False

    def busy(self) -> int:
        """Connections still in a request (its body arriving, or its answer not written)."""
        return sum(1 for c in self.connections if c.state is _BODY or c.state is _DISPATCHED)

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
            due = connection.deadline
            if due is not None and due < now:
                connection.timed_out(now)
        self._sweeper = loop.call_later(SWEEP_S, self._sweep, loop) if self.connections else None


class _StopError(Exception):
    """Raised in a parser callback: the connection was answered and closes (or a second
    request began in the bytes of one)."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection behind the door."""

    def __init__(self, door: Door, app: Any) -> None:
        self.door = door
        self.admission = door.admission
        self.limits = door.limits
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int | None] | None = None
        # Bytes read but not yet parsed, consumed from off on; read_at: when the oldest of
        # them were read (a request's arrival); tail: the last bytes fed (a blank line or a
        # line's end may straddle two reads).
        self.buf = b""
        self.off = 0
        self.read_at = 0.0
        self.tail = b""
        self.state = _NEW
        self.req = Request(False)
        self.head_bytes = 0  # the head's bytes; of a chunked body: every byte fed
        # A chunked body's current line (its first 32 bytes), for its chunk size.
        self.line = b""
        self.line_done = True
        self.body_bytes = 0  # a chunked body's data bytes (head_bytes less them: framing)
        self.paused = False
        self.parked: asyncio.TimerHandle | None = None
        self.ending = False  # close after the current answer
        self.closed = False
        self.resuming = False  # parsing bytes held while the last request was answered
        # The body of a request with Upgrade: the parser stops at its headers, so the door
        # reads its Content-Length itself (the connection then closes).
        self.upgrading = False
        # When the state's timer runs out (set by transition() alone, from the table).
        self.deadline: float | None = None
        self.body_at = 0.0  # when the current body's headers arrived
        self.lost: asyncio.Future[None] | None = None
        self.drained: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Both addresses from the transport's extra info, not through a socket object: its
        # getsockname()/getpeername() release the GIL, and under a burst of connections each
        # release waited for the batch thread to hand it back.
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        door = self.door
        full = len(door.connections) >= self.limits.max_connections
        if door._closing or (full and not door.reclaim_idle()):
            door.count("connections")
            self.transport.write(door.refusal("connections", True))
            self._close()
            return
        self.transition(_OPEN)
        door._watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.door.connections.pop(self, None)
        self.buf = b""
        if self.parked is not None:
            self.parked.cancel()
            self.parked = None
        req = self.req
        state = self.state
        if (state is _HEAD or state is _BODY) and req.receiving:
            req.receiving = False
            self.admission.stop_receiving()
            self._count_lost(req)
        elif state is _DISPATCHED:
            req.disconnected = True
        if state is not _DISPATCHED:  # else the app has it, and _done lets it go
            req.parts.clear()
            self._unreserve(req)
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
        if self.closed:
            return
        if self.off < len(self.buf):
            self.buf = self.buf[self.off :] + data  # the held bytes keep their read time
        else:
            self.buf = data
            self.read_at = time.monotonic()
        self.off = 0
        if self._holding():
            if self._full():
                self._pause()
            return
        self._consume()

    def reclaimable(self) -> bool:
        """Nothing of a request read or owed: closing it loses nothing the client sent."""
        state = self.state
        return (
            (state is _OPEN or state is _IDLE)
            and self.off >= len(self.buf)
            and self.parked is None
            and not self.closed
        )

    # -- shutdown -------------------------------------------------------------------------
    def shutdown(self) -> None:
        if self.closed:
            return
        if self.state is _BODY or self.state is _DISPATCHED:
            self.ending = True
        else:
            self._close()

    def abort(self) -> None:
        if not self.closed:
            self.req.disconnected = True
            self._close()

    # -- reading ----------------------------------------------------------------------------
    def _holding(self) -> bool:
        """Parse nothing now: a request is being answered, the connection is parked, or it
        ends and no request is under way (one whose body is arriving is read to its end).
        What arrives meanwhile is held as bytes (up to :data:`HELD_BYTES`)."""
        state = self.state
        return (
            state is _DISPATCHED
            or self.parked is not None
            or (self.ending and state is not _BODY and state is not _DISPATCHED)
        )

    def _pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def _consume(self) -> None:
        """Parse the held bytes up to the end of one request (then it is answered)."""
        buf = self.buf
        while not self.closed and not self._holding() and self.off < len(buf):
            off = self.off
            if self.state is not _BODY:  # (not DISPATCHED: _holding)
                stop = head_end(buf, off, self.tail)
                if stop < 0:
                    self.head_bytes += len(buf) - off
                    stop = len(buf)
                else:
                    self.head_bytes += stop - off
                if self.head_bytes > HEAD_LIMIT:
                    self._reject(b"431 Request Header Fields Too Large", too_large_head())
                    return
            elif self.req.declared >= 0:
                stop = off + min(self.req.declared - self.req.got, len(buf) - off)
            else:
                stop = line_end(buf, off, self.tail)
                self.head_bytes += stop - off
                self._chunk_line(buf, off, stop)
            if stop <= off:
                break
            self._feed(buf, off, stop)
            self.off = stop
            if self.state is _BODY and self.head_bytes - 2 * self.body_bytes > CHUNK_FRAMING:
                # Chunk-size lines, their line ends and trailers past 64 KiB more than the
                # data they carry: tiny chunks or a trailer flood, each costing a parse.
                self._reject(b"400 Bad Request", too_much_framing())
                return
        if self.off >= len(self.buf):
            self.buf, self.off = b"", 0
        if self.paused and not self.closed and not self._full():
            self.paused = False
            self.transport.resume_reading()

    def _full(self) -> bool:
        """Read nothing more of the socket: parked, ending, or :data:`HELD_BYTES` held.

        Below the cap a connection whose request is being answered is still read, so a
        client that leaves is seen (a paused socket reports no end) and its answer is not
        computed for nobody; past it the rest waits in the kernel.
        """
        if self.parked is not None or (self.ending and self.state is not _BODY):
            return True
        return self.state is _DISPATCHED and len(self.buf) - self.off >= HELD_BYTES

    def _chunk_line(self, buf: bytes, off: int, stop: int) -> None:
        """Keep the start of the chunked body's current line: a chunk-size line ends in
        the piece fed next, and :meth:`on_chunk_header` reads its size there."""
        if self.line_done:
            self.line = buf[off : min(stop, off + 32)]
        elif len(self.line) < 32:
            self.line += buf[off : min(stop, off + 32 - len(self.line))]
        self.line_done = buf[stop - 1 : stop] == b"\n"

    def _feed(self, buf: bytes, start: int, stop: int) -> None:
        piece = memoryview(buf)[start:stop]
        if self.upgrading:
            self._upgrade_body(piece)
            return
        self.tail = bytes(piece[-3:]) if stop - start >= 3 else (self.tail + bytes(piece))[-3:]
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            # An upgrade (websocket, h2c, CONNECT) is not served: the request is answered
            # as plain HTTP (RFC 9110 §7.8 lets a server ignore Upgrade), its body read by
            # the door, then the connection closes (the parser reads no further).
            self.req.keep_alive = False
            self.ending = True
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _StopError) and not self.closed:
                log.exception("a request could not be read")
                self._reject(b"400 Bad Request", MALFORMED)
        except httptools.HttpParserError as exc:
            self._reject(b"400 Bad Request", malformed(str(exc)))

    # -- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.state is _DISPATCHED:
            raise _StopError  # a second request in one request's bytes (bare LF line ends)
        self.transition(_HEAD)
        self.req = Request(self.resuming)

    def on_url(self, url: bytes) -> None:
        self.req.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.state is _BODY:
            return  # a chunked body's trailer: counted as framing, never a request header
        self.req.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        req = self.req
        parser = self.parser
        req.method = parser.get_method()
        req.version = parser.get_http_version()
        req.keep_alive = parser.should_keep_alive()
        refusal = scan(req)
        now = time.monotonic()
        req.arrived = min(self.read_at, now)
        if refusal is not None:
            self._reject(*refusal)
            raise _StopError
        self.transition(_BODY, now)
        self.head_bytes = self.body_bytes = 0
        self.line_done = True
        limits = self.limits
        door = self.door
        if req.declared < 0 and parser.should_upgrade():
            # The parser stops at an Upgrade request's headers; a chunked body after them
            # is not read.
            self._reject(b"400 Bad Request", UPGRADE_CHUNKED)
            raise _StopError
        if is_prediction(req.method, req.url):
            req.prediction = True
            req.path = req.url.split(b"?", 1)[0].decode("latin-1")
            # What its body will hold: a chunked one a first share, grown as it comes; one
            # past the limit is refused from its headers, unread.
            size = CHUNKED_RESERVE if req.declared < 0 else req.declared
            size = 0 if size > limits.body_limit_bytes else size
            admission = self.admission
            why = admission.refusal(size, self._permits(req))
            if why is not None:
                req.refused = why  # answered once its body is read (skipped)
                if req.expect or req.declared < 0 or req.declared > limits.body_limit_bytes:
                    self._refuse(why, close=True)
                    raise _StopError
                return
            if not admission.start_receiving(size):
                self._refuse("receiving", close=True)
                raise _StopError
            req.receiving = True
            req.reserved = size
            req.fast = (
                door.fast is not None
                and 0 <= req.declared <= limits.body_limit_bytes
                and not req.expect
                and b"%" not in req.url
                and door.fast.takes(req.path)
            )
        if req.declared > limits.body_limit_bytes:
            # Refused by the app from its headers (413); the body is not read.
            req.keep_alive = False
            self.ending = True
            self._complete()
            raise _StopError
        if req.expect:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self.req
        self.body_bytes += len(body)
        req.got += len(body)  # a refused body's too: it is fed up to its end, not past it
        if req.refused is not None:
            return
        req.parts.append(body)
        limits = self.limits
        if req.declared < 0 and req.got > limits.body_limit_bytes:
            # A chunked body past the limit: the app refuses it (413) from what came.
            req.keep_alive = False
            self.ending = True
            self._complete()
            raise _StopError
        if req.got > req.reserved:  # a chunked body past its share of the budget
            grown = req.got + CHUNKED_RESERVE
            if not self.admission.grow(req.reserved, grown):
                self._refuse_midway("body_bytes")
                raise _StopError
            req.reserved = grown
        # Each byte earns time at the minimum rate: counted when the deadline is reached
        # (timed_out), not here for each piece.

    def on_chunk_header(self) -> None:
        """A chunk that would take the body past ``body_limit_bytes`` is refused now (413),
        not waited for (a size of ``ffffffffffffffff`` would hold the read to its timeout)."""
        req = self.req
        size = chunk_size(self.line)
        if size is None:
            return  # the parser refuses the line
        limit = self.limits.body_limit_bytes
        if req.refused is None and size > limit - req.got:
            self._reject(b"413 Content Too Large", chunk_too_large(size, limit))
            raise _StopError

    def on_message_complete(self) -> None:
        self.tail = b""  # the next request's head is searched afresh
        if self.state is not _BODY:
            return
        req = self.req
        if self.parser.should_upgrade() and req.got < req.declared:
            self.upgrading = True  # its body follows, unparsed: _upgrade_body reads it
            return
        self._complete()

    def _upgrade_body(self, piece: memoryview) -> None:
        """Bytes of an Upgrade request's body (the parser stopped at its headers)."""
        try:
            self.on_body(bytes(piece))
        except _StopError:
            return
        req = self.req
        if self.state is _BODY and req.got >= req.declared:
            self.upgrading = False
            self._complete()

    def _permits(self, req: Request) -> int:
        """The permits a prediction may find taken and still be admitted: all but a quarter
        for one sent before its predecessor was answered."""
        admission = self.admission
        return admission.pipelined_permits if req.pipelined else admission.max_in_flight

    # -- answering --------------------------------------------------------------------------
    def _complete(self) -> None:
        """The request is read (or refused from what was read): admit it and answer it."""
        req = self.req
        door = self.door
        admission = self.admission
        self.transition(_DISPATCHED)
        if req.got:  # its body's time on the wire: the read timeouts', not the deadline's
            req.arrived += max(time.monotonic() - self.body_at, 0.0)
        if req.receiving:
            req.receiving = False
            admission.stop_receiving()
        if req.reserved > req.got:  # a chunked body's share past its data
            admission.give_back(req.reserved - req.got)
            req.reserved = req.got
        if req.refused is not None:
            self._refuse(req.refused, close=not req.keep_alive)
            return
        if req.prediction:
            if not admission.take_permit(self._permits(req)):
                self._unreserve(req)
                self._refuse("in_flight", close=not req.keep_alive)
                return
            req.permit = True
        # The door holds the task until it ends (the loop keeps only a weak reference), also
        # past the answer: an app may go on after its last body message.
        task = asyncio.get_running_loop().create_task(
            self._fast(req) if req.fast else self._asgi(req)
        )
        door.tasks.add(task)
        task.add_done_callback(door.tasks.discard)

    def _refuse(self, why: str, *, close: bool) -> None:
        """Answer 503 + Retry-After at once; keep-alive connections are parked."""
        door = self.door
        door.count(why)
        self.transport.write(door.refusal(why, close))
        if close:
            self._close()
            return
        self._park()

    def _refuse_midway(self, why: str) -> None:
        """Refuse a prediction whose body is arriving: 503 + Retry-After, and close (the
        rest of its body is not read)."""
        req = self.req
        if req.receiving:
            req.receiving = False
            self.admission.stop_receiving()
        self._unreserve(req)
        req.parts.clear()
        self.door.count(why)
        self.transport.write(self.door.refusal(why, True))
        self._close()

    def _release(self, req: Request) -> None:
        if req.permit:
            req.permit = False
            self.admission.drop_permit()
        self._unreserve(req)

    def _unreserve(self, req: Request) -> None:
        if req.reserved:
            self.admission.give_back(req.reserved)
            req.reserved = 0

    def _done(self, req: Request, keep_alive: bool) -> None:
        """The answer is written: go on with what this connection sent (or close)."""
        self._release(req)
        # The body is not needed again; an idle keep-alive connection (or a closed one
        # still in a reference cycle with its transport) would otherwise keep it.
        req.parts.clear()
        if self.closed:
            return
        self.transition(_IDLE)
        if not keep_alive or self.ending:
            self._close()
            return
        if self.off < len(self.buf) and self.admission.in_flight:
            # A pipelined request while predictions are in the model: it waits its turn
            # (see PIPELINE_YIELD_S), reading paused meanwhile as for a refusal.
            self.parked = asyncio.get_running_loop().call_later(PIPELINE_YIELD_S, self._unyield)
            return
        self._resume()

    def _unyield(self) -> None:
        self.parked = None
        if not self.closed:
            self._resume()

    def _resume(self) -> None:
        """Parse what is held, from where it stopped (then read the socket again)."""
        self.resuming = True
        try:
            self._consume()
        finally:
            self.resuming = False

    def _park(self) -> None:
        """After a refusal: read nothing of this connection for ``retry_after_s``. A client
        that retries at once waits there, at the cost of a timer; one that honours
        Retry-After finds the connection read again."""
        self.transition(_PARKED)
        self._pause()
        self.parked = asyncio.get_running_loop().call_later(self.limits.retry_after_s, self._unpark)

    def _unpark(self) -> None:
        self.parked = None
        if self.closed:
            return
        self.transition(_OPEN)  # its next request begins as on a new connection
        self._resume()

    async def _fast(self, req: Request) -> None:
        """A plain prediction answered by the app's fast path, in one write."""
        fast = self.door.fast
        keep = req.keep_alive
        client = self.client[0] if self.client else None
        try:
            if fast is None:
                raise RuntimeError("the fast path was turned off with a request on it")
            request = FastRequest(req.path, req.headers, req.body, req.arrived, client)
            answer = await fast.serve(request)
            keep = keep and not self.ending
            data = head(answer, keep_alive=keep) + answer.body
        except Exception:  # the app answers every error it knows; this is the last guard
            log.exception("a prediction failed outside its handler")
            keep = False
            data = plain_500(keep_alive=False)
        self._release(req)
        if not req.disconnected and not self.closed:
            self.transport.write(data)
        self._done(req, keep)

    def _count_lost(self, req: Request) -> None:
        """A prediction whose client left before its body arrived: counted as the client's."""
        fast = self.door.fast
        if fast is None or not req.prediction:
            return
        client = self.client[0] if self.client else None
        try:
            fast.lost(FastRequest(req.path, req.headers, b"", req.arrived, client))
        except Exception:
            log.exception("a request whose client left was not counted")

    async def _asgi(self, req: Request) -> None:
        """Run the app on a request read whole (:class:`~mooring.serving._door_cycle.Cycle`)."""
        await Cycle(self, req).run(self.app)

    # -- closing and timeouts ---------------------------------------------------------------
    def _close(self) -> None:
        self.closed = True  # its deadline no longer counts (timed_out)
        if self.parked is not None:
            self.parked.cancel()
            self.parked = None
        self.transport.close()

    def _reject(self, status: bytes, body: bytes) -> None:
        """Answer a malformed request ``status`` and close; nothing more is read."""
        if self.closed:
            return
        req = self.req
        if req.receiving:  # a prediction cut off before its body arrived: the client's
            req.receiving = False
            self.admission.stop_receiving()
            self._count_lost(req)
        if self.state is not _DISPATCHED:
            self._unreserve(req)
        self.transport.write(plain(status, body, close=True))
        self._close()

    def transition(self, new: ConnectionState, now: float = 0.0) -> None:
        """Move to ``new`` if the table (:mod:`mooring.serving._door_states`) allows it,
        and set the deadline its timer gives: the one place the deadline is set. ``now``
        (``time.monotonic()``) when the caller has it; a header timer already running
        (``OPEN`` → ``HEAD``) keeps counting from the connection's opening.

        >>> connection.transition(_HEAD)  # doctest: +SKIP
        """
        old = self.state
        if new not in old.rule.next:
            check(old, new)  # raises, saying which move
        self.state = new
        timer = new.rule.timer
        if timer is _NO_TIMER:
            self.deadline = None
            return
        if timer is _HEADER_TIMER and old.rule.timer is _HEADER_TIMER:
            return
        now = now or time.monotonic()
        if timer is not _BODY_TIMER:
            self.deadline = deadline(timer, self.limits, now, now, 0)
            return
        if old is not _BODY:
            self.body_at = now
        req = self.req
        earned = req.got if req.refused is None else 0  # a refused body earns nothing
        self.deadline = deadline(timer, self.limits, now, self.body_at, earned)

    def timed_out(self, now: float) -> None:
        """The deadline passed (``now``): a body's bytes that came since earned it time;
        else the state's expiry, 408 and close or, an idle keep-alive, close quietly."""
        if self.closed:
            return
        state = self.state
        if state is _BODY:
            self.transition(_BODY, now)
            if self.deadline is not None and self.deadline >= now:
                return
        expiry = state.rule.expiry
        if expiry is Expiry.NONE:
            return
        if expiry is Expiry.CLOSE:
            self._close()
            return
        self.door.count("read_timeout")
        log.info("closing a connection from %s: its request was read too slowly", self.client)
        self._reject(b"408 Request Timeout", too_slow(self.limits))


def _address(info: Any) -> tuple[str, int | None] | None:
    """A socket address as the ASGI scope has it: (host, port), or (path, None)."""
    if isinstance(info, list | tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:
        return (info, None)
    return None
