"""The door's connection states (mooring.serving._door_states): one table of moves and timers.

Every state is reachable, an illegal move raises, and a connection's core driven in
memory through a request's life (keep-alive, a body read slowly, a refusal that parks
it) makes every move the table allows and no other.
"""

from __future__ import annotations

from typing import Any

import pytest

from mooring.config import ServingConfig
from mooring.serving._door import Door
from mooring.serving._door_core import Core
from mooring.serving._door_states import (
    HELD_BYTES,
    TABLE,
    ConnectionState,
    Expiry,
    IllegalTransitionError,
    Reading,
    Timer,
    check,
    deadline,
)
from tests._support.door_core import Driver

S = ConnectionState
EDGES = {(old, new) for old, rule in TABLE.items() for new in rule.next}


def test_every_state_has_a_row_and_is_reachable_from_new() -> None:
    assert set(TABLE) == set(ConnectionState)
    seen = {S.NEW}
    frontier = [S.NEW]
    while frontier:
        for new in TABLE[frontier.pop()].next:
            if new not in seen:
                seen.add(new)
                frontier.append(new)
    assert seen == set(ConnectionState)


def test_a_state_without_a_timer_never_expires() -> None:
    for state, rule in TABLE.items():
        assert (rule.timer is Timer.NONE) == (rule.expiry is Expiry.NONE), state


def test_an_illegal_move_raises() -> None:
    with pytest.raises(IllegalTransitionError, match="from IDLE to BODY"):
        check(S.IDLE, S.BODY)
    with pytest.raises(IllegalTransitionError, match="from DISPATCHED to HEAD"):
        check(S.DISPATCHED, S.HEAD)
    with pytest.raises(IllegalTransitionError, match="from CLOSED to OPEN"):
        check(S.CLOSED, S.OPEN)


def test_a_body_earns_time_at_the_minimum_rate_up_to_its_timeout() -> None:
    limits = ServingConfig(body_grace_s=2.0, min_body_rate_bytes_s=100.0, body_timeout_s=30.0)
    assert deadline(Timer.BODY, limits, 10.0, 10.0, 0) == 12.0
    assert deadline(Timer.BODY, limits, 20.0, 10.0, 500) == 17.0
    assert deadline(Timer.BODY, limits, 20.0, 10.0, 10**9) == 40.0
    off = ServingConfig(min_body_rate_bytes_s=0, body_timeout_s=30.0)
    assert deadline(Timer.BODY, off, 20.0, 10.0, 10**9) == 40.0
    assert deadline(Timer.KEEP_ALIVE, limits, 1.0, 0.0, 0) == 1.0 + limits.keep_alive_s
    assert deadline(Timer.NONE, limits, 1.0, 0.0, 0) is None


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _walk(door: Door) -> None:
    driver = Driver(door)
    core = driver.core
    # A request on a new connection, then one on the kept-alive connection.
    for _ in range(2):
        driver.send(_request("GET", "/v2/health/live"))
        driver.answer()
        assert core.state is S.IDLE
    # A prediction whose body comes slowly: at its deadline, what came earned it time.
    body = b'{"instances": []}'
    driver.send(_request("POST", "/v1/models/m:predict", body)[:-5])
    assert core.state is S.BODY and core.deadline is not None
    driver.advance(core.deadline - driver.now)
    assert core.state is S.BODY and not driver.closed
    driver.send(body[-5:])
    driver.answer()
    assert core.state is S.IDLE
    # Two pipelined requests while a prediction is in the model: the second yields.
    door.admission.in_flight = 1
    driver.send(_request("GET", "/v2/health/live") * 2)
    driver.answer()
    assert core.state is S.YIELDING
    door.admission.in_flight = 0
    driver.settle()
    assert core.state is S.IDLE
    # Every permit taken: the next prediction is refused, its connection parked, then read.
    door.admission.in_flight = door.admission.max_in_flight
    driver.send(_request("POST", "/v1/models/m:predict", body))
    assert core.state is S.PARKED
    door.admission.in_flight = 0
    driver.settle()
    assert core.state is S.OPEN
    driver.send(_request("GET", "/v2/health/live"))
    driver.answer()
    assert driver.statuses() == [200, 200, 200, 200, 200, 503, 200]
    # An idle connection's timeout closes it quietly.
    driver.advance(door.limits.keep_alive_s + 1)
    assert driver.closed and core.state is S.CLOSED and driver.statuses()[-1] == 200
    # An Upgrade request's body, read raw (slowly, earning its time), then the close.
    upgraded = Driver(door)
    upgrade = "POST /v1/models/m:predict HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\n"
    head = f"{upgrade}upgrade: h2c\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    upgraded.send(head + body[:-5])
    assert upgraded.core.state is S.RAW_BODY and upgraded.core.deadline is not None
    upgraded.advance(upgraded.core.deadline - upgraded.now)
    assert upgraded.core.state is S.RAW_BODY and not upgraded.closed
    upgraded.send(body[-5:])
    assert upgraded.received[-1][2] == body
    upgraded.answer()
    assert upgraded.closed and upgraded.statuses() == [200]


def _leave_in_every_state(door: Door) -> None:
    """A client that leaves from each state: the connection closes, holding nothing."""
    Core(door.admission, door.limits).close()  # refused as it was made (past max_connections)
    request = _request("POST", "/v1/models/m:predict", b'{"instances": []}')
    upgrade = request.replace(b"host: t\r\n", b"host: t\r\nconnection: upgrade\r\nupgrade: h2c\r\n")
    for sent, in_flight, state in (
        (b"", 0, S.OPEN),
        (request[:10], 0, S.HEAD),
        (request[:-3], 0, S.BODY),
        (upgrade[:-3], 0, S.RAW_BODY),
        (request, 0, S.DISPATCHED),
        (request, door.admission.max_in_flight, S.PARKED),
    ):
        door.admission.in_flight = in_flight
        driver = Driver(door)
        driver.send(sent)
        assert driver.core.state is state
        driver.leave()
        assert driver.core.state is S.CLOSED
        door.admission.in_flight = 0
        while driver.pending:
            driver.answer()
    yielding = Driver(door)
    door.admission.in_flight = 1
    yielding.send(_request("GET", "/v2/health/live") * 2)
    yielding.answer()
    assert yielding.core.state is S.YIELDING
    yielding.leave()
    door.admission.in_flight = 0
    assert door.admission.counts() == (0, 0, 0)


def test_a_connection_makes_every_move_of_the_table_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moves: list[tuple[ConnectionState, ConnectionState]] = []
    move = Core.transition

    def recorded(self: Any, new: ConnectionState, now: float = 0.0) -> None:
        moves.append((self.state, new))
        move(self, new, now)

    monkeypatch.setattr(Core, "transition", recorded)
    _walk(Door(ServingConfig(retry_after_s=1)))
    _leave_in_every_state(Door(ServingConfig(retry_after_s=1)))
    assert set(moves) == EDGES


def _in(state: ConnectionState, door: Door) -> Driver:
    """A connection driven, in memory, to ``state`` with nothing held."""
    driver = Driver(door)
    prediction = _request("POST", "/v1/models/m:predict", b'{"instances": []}')
    if state is S.IDLE:
        driver.send(_request("GET", "/v2/health/live"))
        driver.answer()
    elif state is S.DISPATCHED:
        driver.send(prediction)
    elif state is S.PARKED:
        door.admission.in_flight = door.admission.max_in_flight
        driver.send(prediction)
        door.admission.in_flight = 0
    elif state is S.YIELDING:
        door.admission.in_flight = 1
        driver.send(_request("GET", "/v2/health/live") * 2)
        driver.answer()
        door.admission.in_flight = 0
    assert driver.core.state is state
    return driver


@pytest.mark.parametrize("state", [S.OPEN, S.IDLE, S.DISPATCHED, S.PARKED, S.YIELDING])
def test_each_state_reads_what_its_row_says(state: ConnectionState) -> None:
    driver = _in(state, Door(ServingConfig(retry_after_s=1)))
    dispatched = len(driver.received)
    pipeline = _request("GET", "/v2/health/live") * (2 * HELD_BYTES // 40)  # > 2 x HELD_BYTES
    driver.send(pipeline[:HELD_BYTES])
    driver.send(pipeline[HELD_BYTES : 2 * HELD_BYTES])  # (a read after the first is held)
    reading = TABLE[state].reading
    if reading is Reading.HEAD:  # a request is parsed, then held behind its answer
        assert len(driver.received) == dispatched + 1 and driver.core.state is S.DISPATCHED
    else:  # nothing is parsed, and the socket stops being read
        assert len(driver.received) == dispatched and driver.core.state is state
    assert driver.paused  # held past HELD_BYTES (HOLD, HEAD then HOLD) or at once (PAUSE)
