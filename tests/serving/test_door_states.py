"""The door's connection states (mooring.serving._door_states): one table of moves and timers.

Every state is reachable, an illegal move raises, and a connection driven through a
request's life (keep-alive, a body read slowly, a refusal that parks it) makes every
move the table allows and no other.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mooring.serving import _door
from mooring.serving._door import Door, DoorLimits
from mooring.serving._door_states import (
    TABLE,
    ConnectionState,
    Expiry,
    IllegalTransitionError,
    Timer,
    check,
    deadline,
)

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


def test_a_body_earns_time_at_the_minimum_rate_up_to_its_timeout() -> None:
    limits = DoorLimits(body_grace_s=2.0, min_body_rate_bytes_s=100.0, body_timeout_s=30.0)
    assert deadline(Timer.BODY, limits, 10.0, 10.0, 0) == 12.0
    assert deadline(Timer.BODY, limits, 20.0, 10.0, 500) == 17.0
    assert deadline(Timer.BODY, limits, 20.0, 10.0, 10**9) == 40.0
    off = DoorLimits(min_body_rate_bytes_s=0, body_timeout_s=30.0)
    assert deadline(Timer.BODY, off, 20.0, 10.0, 10**9) == 40.0
    assert deadline(Timer.KEEP_ALIVE, limits, 1.0, 0.0, 0) == 1.0 + limits.keep_alive_s
    assert deadline(Timer.NONE, limits, 1.0, 0.0, 0) is None


class _Transport(asyncio.Transport):
    """A socket's stand-in: keeps what is written, reports its close on the next turn."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False
        self.protocol: asyncio.Protocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        if not self.closing and self.protocol is not None:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8501) if name in ("sockname", "peername") else default


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b"{}"})


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _settle(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the connection did not settle")


async def _walk(door: Door) -> None:
    connection: Any = door.factory(_app)()
    transport = _Transport()
    transport.protocol = connection
    connection.connection_made(transport)
    # A request on a new connection, then one on the kept-alive connection.
    connection.data_received(_request("GET", "/v2/health/live"))
    await _settle(lambda: connection.state is S.IDLE)
    connection.data_received(_request("GET", "/v2/health/live"))
    await _settle(lambda: connection.state is S.IDLE)
    # A prediction whose body comes slowly: at its deadline, what came earned it time.
    body = b'{"instances": []}'
    connection.data_received(_request("POST", "/v1/models/m:predict", body)[:-5])
    assert connection.state is S.BODY
    connection.timed_out(connection.deadline + 0.001)
    assert connection.state is S.BODY and not connection.closed
    connection.data_received(body[-5:])
    await _settle(lambda: connection.state is S.IDLE)
    # Every permit taken: the next prediction is refused, its connection parked, then read.
    door.admission.in_flight = door.admission.max_in_flight
    connection.data_received(_request("POST", "/v1/models/m:predict", body))
    assert connection.state is S.PARKED
    door.admission.in_flight = 0
    await _settle(lambda: connection.state is S.OPEN)
    connection.data_received(_request("GET", "/v2/health/live"))
    await _settle(lambda: connection.state is S.IDLE)
    assert transport.written.count(b"HTTP/1.1 200 OK") == 4
    assert b"HTTP/1.1 503 Service Unavailable" in transport.written
    # An idle connection's timeout closes it quietly.
    connection.timed_out(float("inf"))
    await _settle(lambda: not door.connections)
    assert b"408" not in transport.written


def test_a_connection_makes_every_move_of_the_table_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moves: list[tuple[ConnectionState, ConnectionState]] = []
    move = _door._Connection.transition

    def recorded(self: Any, new: ConnectionState, now: float = 0.0) -> None:
        moves.append((self.state, new))
        move(self, new, now)

    monkeypatch.setattr(_door._Connection, "transition", recorded)
    asyncio.run(_walk(Door(DoorLimits(retry_after_s=0))))
    assert set(moves) == EDGES
