"""A connection of the door driven in memory: bytes in, the core's decisions done by hand.

:class:`Driver` stands where ``mooring.serving._door._Connection`` stands over a socket:
it feeds a :class:`~mooring.serving._door_core.Core` bytes at times it chooses, keeps
what the core writes, answers each dispatched request ``200`` when told to (framed by
the core, as the door's answers are), and runs its waits and timers on a clock of its
own. No loop, no socket, no sleep.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mooring.config import ServingConfig
from mooring.serving._door import Door
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
from mooring.serving._door_framing import Request
from mooring.serving._endpoints import ROUTES

_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")
ANSWER = [(b"content-length", b"2")]  # the app's answer: 200, {}


class Driver:
    """One connection's core, with a clock, a socket's stand-in and an app answering 200."""

    def __init__(self, door: Door | None = None, **limits: float) -> None:
        self.door = door or Door(ServingConfig(**limits))
        door = self.door
        self.core = Core(door.admission, door.limits, door.reclaim_body, ROUTES)
        self.now = 0.0
        self.written = bytearray()
        self.closed = False
        self.paused = False
        self.wait_until: float | None = None
        self.pending: list[Request] = []  # dispatched, not yet answered
        self.answered: list[Request] = []
        self.lost: list[Request] = []
        #: What each dispatched request held, as the app got it: (method, URL, body).
        self.received: list[tuple[str, str, bytes]] = []
        self.core.open(self.now)
        # Seen by the door as its connections are, so it can cut a slow body of this
        # driver to make room for another's (Door.reclaim_body).
        self.door.connections[self] = None  # type: ignore[index]

    def act(self, decisions: Sequence[Decision]) -> None:
        """What the door decided for this connection from another's event."""
        self._do(list(decisions))

    def _do(self, decisions: tuple[Decision, ...] | list[Decision]) -> None:
        for decision in decisions:
            assert not self.closed, f"{decision!r} after the connection closed"
            if isinstance(decision, Write):
                self.written += decision.data
            elif isinstance(decision, Dispatch):
                req = decision.req
                self.pending.append(req)
                self.received.append((req.method.decode(), req.url.decode(), req.body))
            elif isinstance(decision, Wait):
                assert self.wait_until is None, "a second wait while one runs"
                self.wait_until = self.now + decision.seconds
            elif isinstance(decision, Lost):
                self.lost.append(decision.req)
            elif decision is PAUSE:
                assert not self.paused
                self.paused = True
            elif decision is RESUME:
                assert self.paused
                self.paused = False
            elif decision is CLOSE:
                self.closed = True
                self.wait_until = None
                self.door.connections.pop(self, None)  # type: ignore[call-overload]

    def send(self, data: bytes, after: float = 0.0) -> None:
        """``data`` arrives ``after`` seconds from now (timers that ran out first fire)."""
        self.advance(after)
        if not self.closed:
            self._do(list(self.core.receive(data, self.now)))

    def answer(self, keep_alive: bool = True) -> Request:
        """The app answers the oldest dispatched request (200; ``keep_alive`` False: with
        ``Connection: close``)."""
        req = self.pending.pop(0)
        self.core.release(req)
        headers = ANSWER if keep_alive else [*ANSWER, (b"connection", b"close")]
        head = self.core.head(req, 200, headers, b"")
        if not self.closed and not req.disconnected:
            self.written += head + self.core.body(req, b"{}", False)
        self.answered.append(req)
        self._do(list(self.core.answered(req, self.now)))
        return req

    def advance(self, seconds: float) -> None:
        """Time passes: a wait that ends, or a read timer that runs out, fires on the way."""
        end = self.now + seconds
        while not self.closed:
            due = [t for t in (self.wait_until, self.core.deadline) if t is not None and t <= end]
            if not due:
                break
            self.now = max(self.now, min(due))
            if self.wait_until is not None and self.wait_until <= self.now:
                self.wait_until = None
                self._do(list(self.core.wake(self.now)))
            elif self.core.deadline is not None and self.core.deadline <= self.now:
                self.now += 1e-6  # the sweep sees it past
                self._do(list(self.core.expire(self.now)))
        self.now = max(self.now, end)

    def settle(self) -> None:
        """Answer every request and let every wait end, until nothing is left to do."""
        for _ in range(100_000):
            if self.pending:
                self.answer()
            elif self.wait_until is not None and not self.closed:
                self.advance(self.wait_until - self.now)
            else:
                return
        raise AssertionError("the connection never settled")

    def eof(self) -> None:
        """The client half-closes: it has sent its last byte, and still reads."""
        if not self.closed:
            self._do(list(self.core.eof(self.now)))

    def leave(self) -> None:
        """The client goes (or the socket closes)."""
        self._do(list(self.core.lost()))
        self.closed = True
        self.door.connections.pop(self, None)  # type: ignore[call-overload]

    def statuses(self) -> list[int]:
        """The status of every answer written, in order."""
        return [int(status) for status in _STATUS.findall(bytes(self.written))]
