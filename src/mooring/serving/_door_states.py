"""Where a connection of the door is, and the one table of what applies there.

A connection of :mod:`mooring.serving._door` is always in one :class:`ConnectionState`.
:data:`TABLE` says, for each, what is read there and within which limit
(:class:`Reading`), which read timer runs (and so when the connection times out), what
a timeout does, and the states it may move to; the core's one ``transition``
(:mod:`mooring.serving._door_core`) checks each move against it and sets the deadline
from it. No asyncio here: the table and :func:`deadline` are plain data and arithmetic.

::

    NEW ─▶ OPEN ─▶ HEAD ─▶ BODY ─▶ DISPATCHED ─▶ IDLE ─▶ HEAD …
            ▲               ↺ │        ▲  │          │  ▲
            │                 ▼        │  │          ▼  │
            │           RAW_BODY ──────┘  │       YIELDING (pipelined, predictions pending)
            │        (after Upgrade)      │
            └──── PARKED ◀────────────────┘
                  (refused 503, keep-alive)

    and from every state ─▶ CLOSED

Examples:
    >>> TABLE[ConnectionState.IDLE].timer, TABLE[ConnectionState.IDLE].expiry
    (<Timer.KEEP_ALIVE: 'keep_alive_s'>, <Expiry.CLOSE: 'close quietly'>)
    >>> TABLE[ConnectionState.DISPATCHED].reading
    <Reading.HOLD: 'nothing parsed; up to HELD_BYTES held, then the socket is not read'>
    >>> check(ConnectionState.IDLE, ConnectionState.BODY)
    Traceback (most recent call last):
    ...
    mooring.serving._door_states.IllegalTransitionError: a connection cannot go from IDLE to BODY
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mooring.config import ServingConfig

__all__ = [
    "CHUNKS_FREE",
    "CHUNK_FRAMING",
    "CHUNK_MIN_AVG",
    "HEAD_LIMIT",
    "HELD_BYTES",
    "TABLE",
    "ConnectionState",
    "Expiry",
    "IllegalTransitionError",
    "Reading",
    "Rule",
    "Timer",
    "check",
    "deadline",
]


class ConnectionState(enum.Enum):
    """Where a connection is in its requests."""

    NEW = "new"  # made, its socket not yet handed over
    OPEN = "open"  # connected (or read again after a refusal): a request's first byte awaited
    HEAD = "head"  # a request's line and headers arriving
    BODY = "body"  # its body arriving (every request passes here, a bodiless one at once)
    RAW_BODY = "raw body"  # an Upgrade request's body: the parser stopped at its headers
    DISPATCHED = "dispatched"  # read whole: the app (or a refusal) answers it
    IDLE = "idle"  # answered, kept alive: the next request's first byte awaited
    YIELDING = "yielding"  # answered, the next request held while predictions are pending
    PARKED = "parked"  # refused 503 and kept: not read for retry_after_s
    CLOSED = "closed"  # closed, by the door or the client: nothing more is read or written

    #: This state's row of :data:`TABLE` (set below, read on every move).
    rule: Rule


# The largest header block (request line and headers) read before 431.
HEAD_LIMIT = 64 * 1024
# A chunked body's framing (chunk-size lines, line ends, trailers) may exceed the data
# it carries by this much before 400: 1-byte chunks or a trailer flood cost a parse each.
CHUNK_FRAMING = 64 * 1024
# A chunked body's chunks: the first CHUNKS_FREE, then one per CHUNK_MIN_AVG bytes of its
# data, before 400. The door parses a chunk in a few microseconds, whatever it carries:
# 3.9 MiB in 6-byte chunks (their framing within CHUNK_FRAMING) cost a worker 2.4 CPU-s,
# and four such uploads starved every other client; bounded so, a body costs the door at
# most about as much per byte as one of plain Content-Length.
CHUNKS_FREE = 1024
CHUNK_MIN_AVG = 512
# Unparsed bytes a connection may hold (read, waiting behind its unanswered request)
# before its socket is no longer read: with one read on top (uvloop reads up to 256 KiB),
# what a pipelining client costs in memory.
HELD_BYTES = 64 * 1024


class Reading(enum.Enum):
    """What a state reads of the socket, and the limit on it."""

    HEAD = "a request's line and headers, up to HEAD_LIMIT (431 past it)"
    BODY = (
        "its body, up to body_limit_bytes (413), its chunks' framing up to CHUNK_FRAMING and "
        "their count up to CHUNKS_FREE + one per CHUNK_MIN_AVG bytes (400)"
    )
    RAW = "an Upgrade request's body, by its Content-Length, without the parser"
    HOLD = "nothing parsed; up to HELD_BYTES held, then the socket is not read"
    PAUSE = "nothing parsed; the socket is not read"


class Timer(enum.Enum):
    """The read timer that runs in a state: the limit (``[serving]``) it counts."""

    NONE = "none"
    HEADER = "header_timeout_s"  # kept from OPEN to HEAD: counted from the first wait
    BODY = "body_timeout_s"  # with min_body_rate_bytes_s after body_grace_s
    KEEP_ALIVE = "keep_alive_s"


class Expiry(enum.Enum):
    """What the timer's end does."""

    NONE = "nothing"
    REFUSE = "408 and close"  # counted as a read_timeout refusal
    CLOSE = "close quietly"


@dataclass(frozen=True, slots=True)
class Rule:
    """One state's row: what is read, the read timer, what its end does, where the
    connection may go."""

    reading: Reading
    timer: Timer
    expiry: Expiry
    next: tuple[ConnectionState, ...]


_S = ConnectionState

_R = Reading

#: The one table: every state, what it reads, its timer, its timeout's effect and its moves.
TABLE: dict[ConnectionState, Rule] = {
    _S.NEW: Rule(_R.PAUSE, Timer.NONE, Expiry.NONE, (_S.OPEN, _S.CLOSED)),
    _S.OPEN: Rule(_R.HEAD, Timer.HEADER, Expiry.REFUSE, (_S.HEAD, _S.CLOSED)),
    _S.HEAD: Rule(_R.HEAD, Timer.HEADER, Expiry.REFUSE, (_S.BODY, _S.CLOSED)),
    # BODY -> BODY: bytes of the body came, and earned time at the minimum rate.
    _S.BODY: Rule(
        _R.BODY, Timer.BODY, Expiry.REFUSE, (_S.BODY, _S.RAW_BODY, _S.DISPATCHED, _S.CLOSED)
    ),
    _S.RAW_BODY: Rule(_R.RAW, Timer.BODY, Expiry.REFUSE, (_S.RAW_BODY, _S.DISPATCHED, _S.CLOSED)),
    _S.DISPATCHED: Rule(_R.HOLD, Timer.NONE, Expiry.NONE, (_S.IDLE, _S.PARKED, _S.CLOSED)),
    _S.IDLE: Rule(_R.HEAD, Timer.KEEP_ALIVE, Expiry.CLOSE, (_S.HEAD, _S.YIELDING, _S.CLOSED)),
    _S.YIELDING: Rule(_R.PAUSE, Timer.NONE, Expiry.NONE, (_S.IDLE, _S.CLOSED)),
    _S.PARKED: Rule(_R.PAUSE, Timer.NONE, Expiry.NONE, (_S.OPEN, _S.CLOSED)),
    _S.CLOSED: Rule(_R.PAUSE, Timer.NONE, Expiry.NONE, ()),
}
for _state, _rule in TABLE.items():
    _state.rule = _rule  # an attribute read, not a hash, on the request path


class IllegalTransitionError(RuntimeError):
    """A move the table does not allow: a fault of the door, never of a client."""


def check(old: ConnectionState, new: ConnectionState) -> None:
    """Raise :class:`IllegalTransitionError` unless :data:`TABLE` allows ``old`` → ``new``."""
    if new not in old.rule.next:
        raise IllegalTransitionError(f"a connection cannot go from {old.name} to {new.name}")


def deadline(
    timer: Timer, limits: ServingConfig, now: float, since: float, earned: int
) -> float | None:
    """When a connection whose ``timer`` runs times out; ``now`` is when it entered the
    state, ``since`` when its body's headers arrived and ``earned`` the body's bytes that
    earn time at ``min_body_rate_bytes_s`` (each byte its share, whatever the length
    declared, so a large ``Content-Length`` buys nothing before its bytes arrive).

    >>> from mooring.config import ServingConfig
    >>> limits = ServingConfig(body_grace_s=2.0, min_body_rate_bytes_s=100.0, body_timeout_s=30)
    >>> deadline(Timer.BODY, limits, 5.0, 0.0, 300), deadline(Timer.BODY, limits, 5.0, 0.0, 10**6)
    (5.0, 30.0)
    """
    if timer is Timer.NONE:
        return None
    if timer is Timer.HEADER:
        return now + limits.header_timeout_s
    if timer is Timer.KEEP_ALIVE:
        return now + limits.keep_alive_s
    rate = limits.min_body_rate_bytes_s
    if rate <= 0:
        return since + limits.body_timeout_s
    return since + min(limits.body_grace_s + earned / rate, limits.body_timeout_s)
