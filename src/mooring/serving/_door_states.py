"""Where a connection of the door is, and the one table of what applies there.

A connection of :mod:`mooring.serving._door` is always in one :class:`ConnectionState`.
:data:`TABLE` says, for each, the states it may move to, which read timer runs (and
so when the connection times out) and what a timeout does; the door's one
``transition`` checks each move against it and sets the deadline from it. No asyncio
here: the table and :func:`deadline` are plain data and arithmetic.

::

    NEW ─▶ OPEN ─▶ HEAD ─▶ BODY ─▶ DISPATCHED ─▶ IDLE ─▶ HEAD …
            ▲               ↺          │          │  ▲
            └──── PARKED ◀─────────────┘          ▼  │
                  (refused 503, keep-alive)    YIELDING (pipelined, predictions pending)

    and from every state ─▶ CLOSED

Examples:
    >>> TABLE[ConnectionState.IDLE].timer, TABLE[ConnectionState.IDLE].expiry
    (<Timer.KEEP_ALIVE: 'keep_alive_s'>, <Expiry.CLOSE: 'close quietly'>)
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
    from mooring.serving._door import DoorLimits

__all__ = [
    "TABLE",
    "ConnectionState",
    "Expiry",
    "IllegalTransitionError",
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
    DISPATCHED = "dispatched"  # read whole: the app (or a refusal) answers it
    IDLE = "idle"  # answered, kept alive: the next request's first byte awaited
    YIELDING = "yielding"  # answered, the next request held while predictions are pending
    PARKED = "parked"  # refused 503 and kept: not read for retry_after_s
    CLOSED = "closed"  # closed, by the door or the client: nothing more is read or written

    #: This state's row of :data:`TABLE` (set below, read on every move).
    rule: Rule


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
    """One state's row: the read timer, what its end does, where the connection may go."""

    timer: Timer
    expiry: Expiry
    next: tuple[ConnectionState, ...]


_S = ConnectionState

#: The one table: every state, its timer, its timeout's effect and its allowed moves.
TABLE: dict[ConnectionState, Rule] = {
    _S.NEW: Rule(Timer.NONE, Expiry.NONE, (_S.OPEN, _S.CLOSED)),
    _S.OPEN: Rule(Timer.HEADER, Expiry.REFUSE, (_S.HEAD, _S.CLOSED)),
    _S.HEAD: Rule(Timer.HEADER, Expiry.REFUSE, (_S.BODY, _S.CLOSED)),
    # BODY -> BODY: bytes of the body came, and earned time at the minimum rate.
    _S.BODY: Rule(Timer.BODY, Expiry.REFUSE, (_S.BODY, _S.DISPATCHED, _S.CLOSED)),
    _S.DISPATCHED: Rule(Timer.NONE, Expiry.NONE, (_S.IDLE, _S.PARKED, _S.CLOSED)),
    _S.IDLE: Rule(Timer.KEEP_ALIVE, Expiry.CLOSE, (_S.HEAD, _S.YIELDING, _S.CLOSED)),
    _S.YIELDING: Rule(Timer.NONE, Expiry.NONE, (_S.IDLE, _S.CLOSED)),
    _S.PARKED: Rule(Timer.NONE, Expiry.NONE, (_S.OPEN, _S.CLOSED)),
    _S.CLOSED: Rule(Timer.NONE, Expiry.NONE, ()),
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
    timer: Timer, limits: DoorLimits, now: float, since: float, earned: int
) -> float | None:
    """When a connection whose ``timer`` runs times out; ``now`` is when it entered the
    state, ``since`` when its body's headers arrived and ``earned`` the body's bytes that
    earn time at ``min_body_rate_bytes_s`` (each byte its share, whatever the length
    declared, so a large ``Content-Length`` buys nothing before its bytes arrive).

    >>> from mooring.serving._door import DoorLimits
    >>> limits = DoorLimits(body_grace_s=2.0, min_body_rate_bytes_s=100.0, body_timeout_s=30)
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
