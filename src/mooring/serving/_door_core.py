"""The door's HTTP/1.1 core: one connection's bytes and events in, decisions out, no I/O.

A :class:`Core` is fed what happens to its connection, each with the time it happened:
bytes read (:meth:`~Core.receive`), an answer written (:meth:`~Core.answered`), a wait
over (:meth:`~Core.wake`), a read timer run out (:meth:`~Core.expire`), the client gone
(:meth:`~Core.lost`). It parses with httptools, moves through the states of
:mod:`mooring.serving._door_states`, takes and gives back what the shared
:class:`~mooring.serving._admission.Admission` counts, and returns what the connection
must do, in order: :class:`Write` bytes, :class:`Dispatch` a request read whole to the
app, :class:`Wait` (read nothing for a while), :data:`PAUSE` or :data:`RESUME` reading
the socket, :data:`CLOSE`, or count a prediction whose client left (:class:`Lost`). It
never reads a socket, writes one, starts a task or looks at a clock: the asyncio side
(:mod:`mooring.serving._door`) does what it is told, and the tests drive a core with
bytes and times alone (``tests/serving/test_door_core.py``). It frames the answers too
(:meth:`~Core.head`, :meth:`~Core.body`): whether the connection is kept after an answer
is decided by :meth:`Core.keeps` alone. Its neighbours are narrow: the shared
:class:`~mooring.serving._admission.Admission`, the ``[serving]`` limits, and a callable
that cuts another connection's body when a new one finds no room (the door's
``reclaim_body``), and the app's route table, which says which requests are predictions.

Examples:
    >>> from mooring.config import ServingConfig
    >>> from mooring.serving._admission import Admission
    >>> limits = ServingConfig()
    >>> core = Core(Admission.of(limits), limits)
    >>> core.open(0.0)
    >>> request = b"GET /v2/health/live HTTP/1.1\\r\\nhost: a\\r\\n\\r\\n"
    >>> [type(d).__name__ for d in core.receive(request, 0.0)]
    ['Dispatch']
    >>> core.head(core.req, 200, [(b"content-length", b"2")], b"").split(b"\\r\\n")[:2]
    [b'HTTP/1.1 200 OK', b'content-length: 2']
    >>> core.answered(core.req, 0.1), core.state.name
    ((), 'IDLE')
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httptools

from mooring.serving._admission import SMALL_BODY
from mooring.serving._door_answers import (
    MALFORMED,
    TOO_LARGE_HEAD,
    TOO_MUCH_FRAMING,
    UPGRADE_CHUNKED,
    chunk_too_large,
    plain,
    refusal,
    status_line,
    too_many_chunks,
    too_slow,
)
from mooring.serving._door_framing import Request, chunk_size, head_end, line_end, malformed, scan
from mooring.serving._door_states import (
    CHUNK_FRAMING,
    CHUNK_MIN_AVG,
    CHUNKS_FREE,
    HEAD_LIMIT,
    HELD_BYTES,
    ConnectionState,
    Expiry,
    Reading,
    Timer,
    check,
    deadline,
)
from mooring.serving._routes import NO_ROUTES, Match, Routes

if TYPE_CHECKING:
    from mooring.config import ServingConfig
    from mooring.serving._admission import Admission

#: Cuts the body of another connection furthest behind the minimum rate, to make room at
#: ``now`` for the asking core's request (never the asker's own); False: none to cut.
Reclaim = Callable[[float, "Core"], bool]

__all__ = [
    "CLOSE",
    "PAUSE",
    "RESUME",
    "Core",
    "Decision",
    "Dispatch",
    "Lost",
    "Reclaim",
    "Wait",
    "Write",
]

log = logging.getLogger("mooring.serving")

# What a prediction body holds of the door's body budget at its headers (at most its
# declared length); it grows by as much again each time its data passes it, within the
# budget. A body is held by what has arrived, not by what it declares: eight bodies
# declaring 4 MiB and sending a byte do not fill a 32 MiB budget.
BODY_SHARE = 64 * 1024
# How long a connection's next pipelined request waits while predictions are in the model
# (seconds). A pipelining client keeps the event loop busy without a pause, and the model's
# thread then waits for the GIL and a core at every hand-back: one connection pipelining
# 65,000 health checks raised other clients' prediction p50 from 1.3 ms to 60-120 ms.
# Waiting this long before each of its requests lets the loop idle (and the model run)
# while predictions are pending; with none pending the pipeline runs at full speed.
PIPELINE_YIELD_S = 0.001
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(slots=True)
class Write:
    """Write ``data`` to the socket."""

    data: bytes


@dataclass(slots=True)
class Dispatch:
    """``req`` is read whole and admitted: the app answers it, then :meth:`Core.answered`."""

    req: Request


@dataclass(slots=True)
class Wait:
    """Call :meth:`Core.wake` in ``seconds`` (a refusal's park, a pipeline's yield)."""

    seconds: float


@dataclass(slots=True)
class Lost:
    """A prediction's client left before its body arrived: count it as the client's (499)."""

    req: Request


class Signal(enum.Enum):
    """What the socket does next: stop reading, read again, close (cancelling a wait)."""

    PAUSE = "pause reading"
    RESUME = "resume reading"
    CLOSE = "close"


PAUSE = Signal.PAUSE
RESUME = Signal.RESUME
CLOSE = Signal.CLOSE

Decision = Write | Dispatch | Wait | Lost | Signal

_NOTHING: tuple[Decision, ...] = ()

# Where a connection is, what it reads and its timer (mooring.serving._door_states), as
# module globals: compared by identity on every event.
_S, _R, _T = ConnectionState, Reading, Timer
_NEW, _OPEN, _HEAD, _BODY, _DISPATCHED = _S.NEW, _S.OPEN, _S.HEAD, _S.BODY, _S.DISPATCHED
_RAW_BODY = _S.RAW_BODY
_IDLE, _YIELDING, _PARKED, _CLOSED = _S.IDLE, _S.YIELDING, _S.PARKED, _S.CLOSED
_READ_HEAD, _HOLD, _PAUSE = _R.HEAD, _R.HOLD, _R.PAUSE
_NO_TIMER, _HEADER_TIMER, _BODY_TIMER = _T.NONE, _T.HEADER, _T.BODY


def _never(now: float, keep: Core) -> bool:
    """No other connection to reclaim (a core on its own)."""
    return False


class _StopError(Exception):
    """Raised in a parser callback: the connection was answered and closes (or a second
    request began in the bytes of one)."""


class Core:
    """One HTTP/1.1 connection's reading and admission, fed events and the time."""

    __slots__ = (
        "admission",
        "body_at",
        "body_bytes",
        "buf",
        "chunks",
        "deadline",
        "head_bytes",
        "last",
        "limits",
        "line",
        "line_done",
        "now",
        "off",
        "out",
        "parser",
        "paused",
        "peer",
        "read_at",
        "reclaim",
        "req",
        "resuming",
        "routes",
        "sent_all",
        "state",
        "tail",
    )

    def __init__(
        self,
        admission: Admission,
        limits: ServingConfig,
        reclaim: Reclaim = _never,
        routes: Routes = NO_ROUTES,
    ) -> None:
        self.admission = admission
        self.limits = limits
        self.reclaim = reclaim
        self.routes = routes  # its predictions are admitted (and may take the fast path)
        self.parser = httptools.HttpRequestParser(self)
        self.out: list[Decision] = []
        self.now = 0.0  # the time of the event being handled
        self.peer: object = None  # the client's address, for the log
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
        self.chunks = 0  # a chunked body's chunks so far (CHUNKS_FREE, CHUNK_MIN_AVG)
        self.paused = False  # the socket is not read
        self.sent_all = False  # the client half-closed: nothing more will arrive
        self.resuming = False  # parsing bytes held while the last request was answered
        # The request under way is the connection's last (keeps()): the server is shutting
        # down, or what follows it cannot be read (its body left unread, or the parser
        # stopped at an Upgrade).
        self.last = False
        # When the state's timer runs out (set by transition() alone, from the table).
        self.deadline: float | None = None
        self.body_at = 0.0  # when the current body's headers arrived

    @property
    def closed(self) -> bool:
        """Nothing more is read or written (:attr:`ConnectionState.CLOSED`)."""
        return self.state is _CLOSED

    def _take(self) -> Sequence[Decision]:
        out = self.out
        if not out:
            return _NOTHING
        self.out = []
        return out

    # -- events -----------------------------------------------------------------------------
    def open(self, now: float) -> None:
        """The connection is made: its header timer starts."""
        self.transition(_OPEN, now)

    def receive(self, data: bytes, now: float) -> Sequence[Decision]:
        """Bytes read from the socket at ``now``."""
        if self.closed:
            return _NOTHING
        self.now = now
        if self.off < len(self.buf):
            self.buf = self.buf[self.off :] + data  # the held bytes keep their read time
        else:
            self.buf = data
            self.read_at = now
        self.off = 0
        if self._holding():
            if self._full():
                self._pause()
            return self._take()
        self._consume()
        return self._take()

    def answered(self, req: Request, now: float, *, whole: bool = True) -> Sequence[Decision]:
        """``req``'s answer is written (framed by :meth:`head`; ``whole``: to its end, else
        cut short and the connection closes): go on with what the connection sent, or
        close where :meth:`keeps` says so."""
        self.now = now
        self.release(req)
        # The body is not needed again; an idle keep-alive connection (or a closed one
        # still in a reference cycle with its transport) would otherwise keep it.
        req.parts.clear()
        if self.closed:
            return _NOTHING
        self.transition(_IDLE, now)
        if not whole or not self.keeps(req):
            self._close()
        elif self.off < len(self.buf) and self.admission.in_flight:
            # A pipelined request while predictions are in the model: it waits its turn
            # (see PIPELINE_YIELD_S), reading paused meanwhile as for a refusal.
            self.transition(_YIELDING)
            self.out.append(Wait(PIPELINE_YIELD_S))
        else:
            self._resume()
        return self._take()

    def wake(self, now: float) -> Sequence[Decision]:
        """A :class:`Wait` is over: a parked connection is read again, from ``OPEN``."""
        state = self.state
        if state is not _PARKED and state is not _YIELDING:
            return _NOTHING  # closed meanwhile
        self.now = now
        # A parked connection's next request begins as on a new connection.
        self.transition(_OPEN if state is _PARKED else _IDLE, now)
        self._resume()
        return self._take()

    def expire(self, now: float) -> Sequence[Decision]:
        """The deadline passed (``now``): a body's bytes that came since earned it time;
        else the state's expiry, 408 and close or, an idle keep-alive, close quietly."""
        if self.closed:
            return _NOTHING
        self.now = now
        state = self.state
        if state.rule.timer is _BODY_TIMER:
            self.transition(state, now)
            if self.deadline is not None and self.deadline >= now:
                return _NOTHING
        expiry = state.rule.expiry
        if expiry is Expiry.CLOSE:
            self._close()
        elif expiry is Expiry.REFUSE:
            self._too_slow()
        return self._take()

    def _too_slow(self) -> None:
        self.admission.count("read_timeout")
        log.info("closing a connection from %s: its request was read too slowly", self.peer)
        self._reject(b"408 Request Timeout", too_slow(self.limits))

    def eof(self, now: float) -> Sequence[Decision]:
        """The client half-closed (sent its last byte): what it sent whole is answered,
        then the connection closes; a request cut short is its client's, as when it leaves."""
        if self.closed:
            return _NOTHING
        self.now = now
        self.sent_all = True  # an answer owed with nothing held after it is the last
        self._starved()
        return self._take()

    def _starved(self) -> None:
        """Close a half-closed connection with nothing held and no answer owed: it waits
        for bytes its client will never send (or, parked, to read what it has)."""
        busy_or_gone = self.state is _DISPATCHED or self.state is _CLOSED
        if self.sent_all and self.off >= len(self.buf) and not busy_or_gone:
            self._close()

    def lost(self) -> Sequence[Decision]:
        """The client left (or the socket closed)."""
        self.buf = b""
        if self.state is not _CLOSED:
            if self.state is _DISPATCHED:
                self.req.disconnected = True  # its answer, when it comes, is dropped
            self._let_go()
            self.transition(_CLOSED)
        return self._take()

    def shutdown(self) -> Sequence[Decision]:
        """Stop taking requests: close now, or after the answer of the one under way."""
        if not self.closed:
            self.last = True
            if self.state.rule.timer is not _BODY_TIMER and self.state is not _DISPATCHED:
                self._close()
        return self._take()

    def close(self) -> Sequence[Decision]:
        """Close now, whatever is under way (the answer of a request, if any, is dropped)."""
        if not self.closed:
            self.req.disconnected = True
            self._close()
        return self._take()

    def behind(self, now: float) -> float | None:
        """How long (seconds) a prediction body arriving since its headers is behind
        ``min_body_rate_bytes_s``, by which the door picks the body to cut when a new one
        finds no room (the furthest behind); None when it is not behind.

        A body whose bytes come at the minimum rate or faster is never behind; one sending
        a byte a second falls a second behind each second, a fresh one not at all.
        """
        rate = self.limits.min_body_rate_bytes_s
        if self.state.rule.timer is not _BODY_TIMER or not self.req.receiving or rate <= 0:
            return None
        late = now - self.body_at - self.req.got / rate
        return late if late > 0 else None

    def cut(self, now: float) -> Sequence[Decision]:
        """Cut a body :meth:`behind` the minimum rate to make room for another request:
        408, as at its deadline."""
        if self.state.rule.timer is _BODY_TIMER:
            self.now = now
            self._too_slow()
        return self._take()

    def reclaimable(self) -> bool:
        """Nothing of a request read or owed: closing it loses nothing the client sent."""
        state = self.state
        return (state is _OPEN or state is _IDLE) and self.off >= len(self.buf)

    def release(self, req: Request) -> None:
        """Give back what ``req`` holds of the admission (its answer is computed)."""
        if req.permit:
            req.permit = False
            self.admission.drop_permit()
        self._unreserve(req)

    # -- reading ----------------------------------------------------------------------------
    def _holding(self) -> bool:
        """Parse nothing now: the state parses nothing (its :class:`Reading`: a request
        is being answered, the connection waits or is closed). What arrives meanwhile is
        held as bytes (up to :data:`HELD_BYTES`)."""
        reading = self.state.rule.reading
        return reading is _HOLD or reading is _PAUSE

    def _full(self) -> bool:
        """Read nothing more of the socket: the state reads nothing, or its request is
        the connection's last, or :data:`HELD_BYTES` are held.

        Below the cap a connection whose request is being answered is still read, so a
        client that leaves is seen (a paused socket reports no end) and its answer is not
        computed for nobody; past it the rest waits in the kernel.
        """
        reading = self.state.rule.reading
        if reading is _PAUSE:
            return True
        return reading is _HOLD and (
            not self.keeps(self.req) or len(self.buf) - self.off >= HELD_BYTES
        )

    def _pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self.out.append(PAUSE)

    def _resume(self) -> None:
        """Parse what is held, from where it stopped (then read the socket again)."""
        self.resuming = True
        try:
            self._consume()
        finally:
            self.resuming = False

    def _consume(self) -> None:
        """Parse the held bytes up to the end of one request (then it is answered)."""
        buf = self.buf
        while not self.closed and not self._holding() and self.off < len(buf):
            off = self.off
            if self.state.rule.reading is _READ_HEAD:
                stop = head_end(buf, off, self.tail)
                if stop < 0:
                    self.head_bytes += len(buf) - off
                    stop = len(buf)
                else:
                    self.head_bytes += stop - off
                if self.head_bytes > HEAD_LIMIT:
                    self._reject(b"431 Request Header Fields Too Large", TOO_LARGE_HEAD)
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
                self._reject(b"400 Bad Request", TOO_MUCH_FRAMING)
                return
        if self.off >= len(self.buf):
            self.buf, self.off = b"", 0
        if self.sent_all:
            self._starved()
            return
        if self.paused and not self.closed and not self._full():
            self.paused = False
            self.out.append(RESUME)

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
        if self.state is _RAW_BODY:
            self._upgrade_body(piece)
            return
        self.tail = bytes(piece[-3:]) if stop - start >= 3 else (self.tail + bytes(piece))[-3:]
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            # An upgrade (websocket, h2c, CONNECT) is not served: the request is answered
            # as plain HTTP (RFC 9110 §7.8 lets a server ignore Upgrade), its body read by
            # the core, then the connection closes (the parser reads no further).
            self.last = True
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
        now = self.now
        req.arrived = min(self.read_at, now)
        if refusal is not None:
            self._reject(*refusal)
            raise _StopError
        self.transition(_BODY, now)
        self.head_bytes = self.body_bytes = self.chunks = 0
        self.line_done = True
        limits = self.limits
        if req.declared < 0 and parser.should_upgrade():
            # The parser stops at an Upgrade request's headers; a chunked body after them
            # is not read.
            self._reject(b"400 Bad Request", UPGRADE_CHUNKED)
            raise _StopError
        match = self.routes.door(req.method, req.url)
        if match is not None:
            self._admit(req, match)
        if req.declared > limits.body_limit_bytes:
            # Refused by the app from its headers (413); the body is not read.
            self.last = True
            self._complete()
            raise _StopError
        if req.expect:
            self.out.append(Write(CONTINUE))

    def _admit(self, req: Request, match: Match) -> None:
        """A prediction's headers: count it as receiving, holding a share of the body
        budget, or refuse it (now, or once its body is read). Where bodies arriving
        behind the minimum rate fill the room, the furthest behind are cut first."""
        limits = self.limits
        req.route = match
        # What its body will hold, checked against what the others hold: a chunked one a
        # first share; one past the limit is refused from its headers, unread.
        size = BODY_SHARE if req.declared < 0 else req.declared
        size = 0 if size > limits.body_limit_bytes else size
        admission = self.admission
        permits = self._permits(req)
        why = admission.refusal(size, permits)
        while why == "body_bytes" and self.reclaim(self.now, self):
            why = admission.refusal(size, permits)
        if why is not None:
            req.refused = why  # answered once its body is read (skipped)
            if req.expect or req.declared < 0 or req.declared > limits.body_limit_bytes:
                self._refuse(why, close=True)
                raise _StopError
            return
        held = min(size, BODY_SHARE)  # grown as its data comes (on_body)
        large = size > SMALL_BODY  # held of the large bodies' part (a chunked one: later)
        if not admission.start_receiving(held, large) and not (
            self.reclaim(self.now, self) and admission.start_receiving(held, large)
        ):
            self._refuse("receiving", close=True)
            raise _StopError
        req.receiving = True
        req.reserved = held
        req.large = large
        req.fast = 0 <= req.declared <= limits.body_limit_bytes and not req.expect

    def on_body(self, body: bytes) -> None:
        req = self.req
        self.body_bytes += len(body)
        req.got += len(body)  # a refused body's too: it is fed up to its end, not past it
        if req.refused is not None:
            return
        req.parts.append(body)
        if req.declared < 0 and req.got > self.limits.body_limit_bytes:
            # A chunked body past the limit: the app refuses it (413) from what came.
            self.last = True
            self._complete()
            raise _StopError
        if req.got > req.reserved:  # a body past its share of the budget
            self._grow(req)
        # Each byte earns time at the minimum rate: counted when the deadline is reached
        # (expire), not here for each piece.

    def _grow(self, req: Request) -> None:
        """Hold another share of the budget for a body whose data passed its share, the
        bodies furthest behind the minimum rate cut first where they fill it. Past the
        budget, a body of known length is read to its end without being kept and answered
        503 (the connection kept); a chunked one is answered 503 and closed."""
        grown = req.got + BODY_SHARE
        if req.declared >= 0:
            grown = min(grown, req.declared)
        admission = self.admission
        large = req.large or grown > SMALL_BODY  # a chunked body past SMALL_BODY: large
        while not admission.grow(req.reserved, grown, large, req.large):
            if self.reclaim(self.now, self):
                continue
            if req.declared < 0:
                self._refuse("body_bytes", close=True)  # the rest of its body is not read
                raise _StopError
            self._unreceive(req)
            req.parts.clear()
            self._unreserve(req)
            req.refused = "body_bytes"
            return
        req.reserved = grown
        req.large = large

    def on_chunk_header(self) -> None:
        """A chunk that would take the body past ``body_limit_bytes`` is refused now (413),
        not waited for (a size of ``ffffffffffffffff`` would hold the read to its timeout);
        one past :data:`CHUNKS_FREE` and one per :data:`CHUNK_MIN_AVG` bytes of the data
        before it is refused 400 (each chunk costs a parse, whatever it carries)."""
        req = self.req
        self.chunks += 1
        if self.chunks > CHUNKS_FREE + self.body_bytes // CHUNK_MIN_AVG:
            self._reject(b"400 Bad Request", too_many_chunks(self.chunks, self.body_bytes))
            raise _StopError
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
            self.transition(_RAW_BODY)  # its body follows, unparsed: _upgrade_body reads it
            return
        self._complete()

    def _upgrade_body(self, piece: memoryview) -> None:
        """Bytes of an Upgrade request's body (the parser stopped at its headers)."""
        try:
            self.on_body(bytes(piece))
        except _StopError:
            return
        req = self.req
        if self.state is _RAW_BODY and req.got >= req.declared:
            self._complete()

    def _permits(self, req: Request) -> int:
        """The permits a prediction may find taken and still be admitted: all but a quarter
        for one sent before its predecessor was answered."""
        admission = self.admission
        return admission.pipelined_permits if req.pipelined else admission.max_in_flight

    # -- answering --------------------------------------------------------------------------
    def keeps(self, req: Request) -> bool:
        """Whether the connection is read again after ``req``'s answer: its client keeps
        it (and, once :meth:`head` framed it, its answer too), it is not the last
        (:attr:`last`), and a client that half-closed sent more after it."""
        return (
            req.keep_alive and not self.last and not (self.sent_all and self.off >= len(self.buf))
        )

    def head(
        self, req: Request, status: int, headers: Iterable[tuple[bytes, bytes]], date: bytes
    ) -> bytes:
        """The head of ``req``'s answer, framed here: an answer without ``Content-Length``
        goes chunked (HTTP/1.1) or ends with the connection (HTTP/1.0), ``connection:
        close`` where the connection ends after it (the app's ``Connection: close``
        included, :meth:`keeps` decides the rest); the app's own ``Connection`` and
        ``Transfer-Encoding`` headers are not written. ``date``: the ``date`` header's
        line (the core reads no clock). :meth:`body` frames what follows.

        >>> from mooring.config import ServingConfig
        >>> from mooring.serving._admission import Admission
        >>> core, req = Core(Admission.of(ServingConfig()), ServingConfig()), Request(False)
        >>> core.head(req, 200, [(b"content-type", b"text/plain")], b"").split(b"\\r\\n")
        [b'HTTP/1.1 200 OK', b'content-type: text/plain', b'transfer-encoding: chunked', b'', b'']
        """
        parts = [status_line(status), date]
        keep = self.keeps(req)
        sized = False
        for name, value in headers:
            low = name.lower()
            if low == b"content-length":
                sized = True
            elif low == b"connection":
                keep = keep and value.lower() != b"close"
                continue
            elif low == b"transfer-encoding":
                continue
            parts += (name, b": ", value, b"\r\n")
        if not sized and 200 <= status != 204 and status != 304 and req.method != b"HEAD":
            if req.version == "1.1":  # (req.chunked is False until here: framed once)
                req.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                keep = False  # HTTP/1.0: the body ends with the connection
        req.keep_alive = keep
        parts.append(b"\r\n" if keep else b"connection: close\r\n\r\n")
        return b"".join(parts)

    @staticmethod
    def body(req: Request, data: bytes, more: bool) -> bytes:
        """The bytes to write of a piece ``data`` of ``req``'s answer body (``more``: more
        follows), as :meth:`head` framed it: nothing of a ``HEAD`` answer; a chunk, and
        the last chunk at its end, of a chunked one."""
        if req.method == b"HEAD":
            return b""
        if req.chunked:
            return (b"%x\r\n%s\r\n" % (len(data), data) if data else b"") + (
                b"" if more else b"0\r\n\r\n"
            )
        return data

    def _complete(self) -> None:
        """The request is read (or refused from what was read): admit it and dispatch it."""
        req = self.req
        admission = self.admission
        self.transition(_DISPATCHED)
        if req.got:  # its body's time on the wire: the read timeouts', not the deadline's
            req.arrived += max(self.now - self.body_at, 0.0)
        self._unreceive(req)
        if req.reserved > req.got:  # a share past its data
            admission.give_back(req.reserved - req.got, req.large)
            req.reserved = req.got
        if req.refused is not None:
            self._refuse(req.refused, close=not self.keeps(req))
            return
        if req.route is not None:
            if not admission.take_permit(self._permits(req)):
                self._unreserve(req)
                self._refuse("in_flight", close=not self.keeps(req))
                return
            req.permit = True
        self.out.append(Dispatch(req))

    def _refuse(self, why: str, *, close: bool) -> None:
        """Answer 503 + Retry-After at once; keep-alive connections are parked: nothing
        more is read of them for ``retry_after_s``."""
        self._unreceive(self.req)  # refused, not cut off by its client: no 499
        self.admission.count(why)
        self.out.append(Write(refusal(self.limits, why, close)))
        if close:
            self._close()
            return
        self.transition(_PARKED)
        self._pause()
        self.out.append(Wait(self.limits.retry_after_s))

    def _unreceive(self, req: Request) -> bool:
        """Stop counting ``req`` as receiving its body; whether it was."""
        if not req.receiving:
            return False
        req.receiving = False
        self.admission.stop_receiving()
        return True

    def _unreserve(self, req: Request) -> None:
        if req.reserved:
            self.admission.give_back(req.reserved, req.large)
            req.reserved = 0
            req.large = False

    def _let_go(self) -> None:
        """Give back what the request under way holds of the admission, unless the app
        has it (then :meth:`answered` does); a prediction whose body was arriving is
        counted as its client's."""
        req = self.req
        if self.state is _DISPATCHED:
            return
        if self._unreceive(req) and req.route is not None:
            self.out.append(Lost(req))
        req.parts.clear()
        self._unreserve(req)

    def _close(self) -> None:
        """Close now: no timer runs, nothing more is read, a wait is cancelled."""
        self._let_go()
        self.transition(_CLOSED)
        self.out.append(CLOSE)

    def _reject(self, status: bytes, body: bytes) -> None:
        """Answer a malformed request ``status`` and close; nothing more is read."""
        if self.closed:
            return
        self.out.append(Write(plain(status, body, close=True)))
        self._close()  # a prediction cut off before its body arrived: the client's

    def transition(self, new: ConnectionState, now: float = 0.0) -> None:
        """Move to ``new`` if the table (:mod:`mooring.serving._door_states`) allows it,
        and set the deadline its timer gives: the one place the deadline is set. ``now``:
        when, if not the time of the event being handled; a header timer already running
        (``OPEN`` → ``HEAD``) keeps counting from the connection's opening."""
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
        now = now or self.now
        if timer is not _BODY_TIMER:
            self.deadline = deadline(timer, self.limits, now, now, 0)
            return
        if old.rule.timer is not _BODY_TIMER:
            self.body_at = now
        req = self.req
        earned = req.got if req.refused is None else 0  # a refused body earns nothing
        self.deadline = deadline(timer, self.limits, now, self.body_at, earned)
