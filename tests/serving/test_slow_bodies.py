"""Slow bodies cannot deny predictions: a request holds an inference permit only once its
body is complete.

While its body arrives a prediction is counted as *receiving* (at most
``max_receiving``), must keep up ``min_body_rate_bytes_s`` after ``body_grace_s``, and
takes a permit (or is refused 503) when its body is whole, on the fast path and through
ASGI alike. Every test talks to a real server over raw sockets.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mooring.config import ServingConfig
from mooring.formats._metrics import REQUESTS_REFUSED, read_samples, total
from mooring.serving import DirectorySource, build_app
from mooring.serving._door import Door
from mooring.serving._door_states import ConnectionState
from tests._support.held import held_model
from tests._support.serve_process import RawConnection, raw_request
from tests._support.server import NAME, ServerThread
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

PREDICT = f"/v1/models/{NAME}:predict"
BODY = orjson.dumps({"instances": [row()]})
SLOW = 100  # slow-body connections held open at once
CLIENTS = 8  # normal clients at once, as many as the server's inference permits
REQUESTS = 50  # each


def _server(model_dirs: dict[str, Path], **options: Any) -> ServerThread:
    cfg = ServingConfig(
        warmup_requests=1,
        deadline_ms=PATIENCE * 1000,
        header_timeout_s=PATIENCE,
        body_timeout_s=PATIENCE,
        body_grace_s=PATIENCE,  # slow bodies stay open unless a test says otherwise
        **options,
    )
    return ServerThread(build_app([DirectorySource(model_dirs["a"], NAME)], cfg))


@pytest.fixture(scope="module")
def roomy(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """Eight inference permits: with the old admission (a permit from the headers on), a
    hundred slow bodies would hold all of them."""
    with _server(model_dirs, max_in_flight=CLIENTS) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def single(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """One inference permit, two requests receiving at most."""
    with _server(model_dirs, max_in_flight=1, max_receiving=2) as server:
        server.wait_ready()
        yield server


def _door(server: ServerThread) -> Door:
    door: Door = server.app.state.mooring.door
    return door


def _counts(server: ServerThread) -> tuple[int, int]:
    door = _door(server)
    admission = door.admission
    return admission.receiving, admission.in_flight


def _until_idle(server: ServerThread) -> None:
    wait_until(lambda: _counts(server) == (0, 0), "nothing receiving and nothing in flight",
               seen=lambda: _counts(server))  # fmt: skip


def _until_receiving(server: ServerThread, count: int) -> None:
    wait_until(lambda: _door(server).admission.receiving == count, f"{count} requests receiving",
               seen=lambda: _counts(server))  # fmt: skip


def _refused(server: ServerThread) -> dict[str, float]:
    samples = read_samples(server.client.get("/metrics").text)
    return {s.labels["reason"]: s.value for s in samples if s.name == total(REQUESTS_REFUSED)}


def _head(declared: int) -> bytes:
    return (
        f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()


_CHUNKED = (
    f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
).encode()


@contextlib.contextmanager
def _held_open(port: int, first: bytes, count: int) -> Iterator[list[RawConnection]]:
    """``count`` connections that sent ``first`` (headers and the start of a body) and
    hold it there; closed on the way out."""
    conns: list[RawConnection] = []
    try:
        for _ in range(count):
            conn = RawConnection(port)
            conns.append(conn)
            conn.send(first)
        yield conns
    finally:
        for conn in conns:
            conn.sock.close()


def _normal_traffic(server: ServerThread) -> dict[int, int]:
    """Statuses of CLIENTS clients at once, REQUESTS predictions each."""

    def client() -> list[int]:
        with httpx.Client(base_url=server.url, timeout=PATIENCE) as http:
            return [http.post(PREDICT, content=BODY).status_code for _ in range(REQUESTS)]

    statuses: dict[int, int] = {}
    with ThreadPoolExecutor(CLIENTS) as pool:
        for done in [pool.submit(client) for _ in range(CLIENTS)]:
            for status in done.result(timeout=PATIENCE):
                statuses[status] = statuses.get(status, 0) + 1
    return statuses


def test_slow_bodies_on_the_fast_path_hold_no_inference_slot(roomy: ServerThread) -> None:
    # Headers declaring 200 bytes and one byte of body, a hundred times over.
    with _held_open(roomy.port, _head(200) + b"{", SLOW):
        _until_receiving(roomy, SLOW)
        assert _door(roomy).admission.in_flight == 0
        assert _normal_traffic(roomy) == {200: CLIENTS * REQUESTS}
    _until_idle(roomy)


def test_slow_chunked_bodies_through_asgi_hold_no_inference_slot(roomy: ServerThread) -> None:
    # A chunked body goes through ASGI: headers and one chunk, a hundred times over.
    with _held_open(roomy.port, _CHUNKED + b"1\r\n{\r\n", SLOW):
        _until_receiving(roomy, SLOW)
        assert _door(roomy).admission.in_flight == 0
        assert _normal_traffic(roomy) == {200: CLIENTS * REQUESTS}
    _until_idle(roomy)


def _answer_after_body(
    single: ServerThread, start: bytes, rest: bytes
) -> tuple[int, dict[str, str], bytes]:
    """The answer to a request whose body completes while the one permit is in the model."""
    with (
        held_model(single.app, NAME) as held,
        RawConnection(single.port) as late,
        RawConnection(single.port) as running,
    ):
        late.send(start)  # its headers find the permit free: receiving
        _until_receiving(single, 1)
        running.send(raw_request("POST", PREDICT, BODY))
        held.wait_entered("the other request to be in the model")
        late.send(rest)
        answer = late.answer()
        held.release.set()
        assert running.answer()[0] == 200
        # The refused connection is still usable.
        late.send(raw_request("POST", PREDICT, BODY))
        assert late.answer()[0] == 200
    return answer


@pytest.mark.parametrize("road", ["fast path", "asgi"])
def test_a_body_completed_while_every_slot_is_taken_gets_503(
    single: ServerThread, road: str
) -> None:
    before = _refused(single).get("in_flight", 0.0)
    if road == "fast path":
        request = raw_request("POST", PREDICT, BODY)
        start, rest = request[:-5], request[-5:]
    else:
        start, rest = _CHUNKED + b"%x\r\n%s\r\n" % (len(BODY), BODY), b"0\r\n\r\n"
    status, headers, body = _answer_after_body(single, start, rest)
    assert status == 503, body
    assert headers["retry-after"] == "1"
    assert "1 requests in flight" in json.loads(body)["error"]
    assert _refused(single)["in_flight"] == before + 1
    _until_idle(single)


def test_past_max_receiving_a_request_gets_503_and_its_connection_closes(
    single: ServerThread,
) -> None:
    before = _refused(single).get("receiving", 0.0)
    # The minimum rate off: no body is behind it, so none gives way (below).
    with _limits(single, min_body_rate_bytes_s=0.0), _held_open(single.port, _head(200) + b"{", 2):
        _until_receiving(single, 2)
        with RawConnection(single.port) as third:
            third.send(_head(200) + b"{")
            status, headers, body = third.answer()
            assert status == 503, body
            assert headers["connection"] == "close" and headers["retry-after"] == "1"
            assert "2 requests receiving their body" in json.loads(body)["error"]
            assert third.closed()
        # Probes are never shed.
        assert single.client.get("/v2/health/live").status_code == 200
    assert _refused(single)["receiving"] == before + 1
    _until_idle(single)
    assert single.client.post(PREDICT, content=BODY).status_code == 200


def test_past_max_receiving_the_body_furthest_behind_the_minimum_rate_gives_way(
    single: ServerThread,
) -> None:
    # Two bodies at a byte each, behind 1,024 bytes/s from their first millisecond (the
    # fixture's grace of minutes is what a body gets while there is room): a third
    # request cuts the older, 408, and is served; the younger is still read.
    before = _refused(single).get("read_timeout", 0.0)
    with _held_open(single.port, _head(200) + b"{", 1) as held:
        _until_receiving(single, 1)  # the older, read first
        held.append(RawConnection(single.port))
        held[1].send(_head(200) + b"{")
        _until_receiving(single, 2)
        # Behind once their byte's share of the rate (about a millisecond) has passed.
        door = _door(single)
        bodies = [c.core for c in list(door.connections) if c.core.state is ConnectionState.BODY]
        assert len(bodies) == 2, bodies
        wait_until(lambda: all(core.behind(time.monotonic()) for core in bodies), "bodies behind")
        with RawConnection(single.port) as third:
            third.send(raw_request("POST", PREDICT, BODY))
            assert third.answer()[0] == 200
        status, _, body = held[0].answer()
        assert status == 408 and b"min_body_rate_bytes_s" in body, (status, body)
        assert held[0].closed()
        assert _counts(single)[0] == 1, _counts(single)  # the younger, still receiving
    assert _refused(single)["read_timeout"] == before + 1
    _until_idle(single)


@contextlib.contextmanager
def _limits(server: ServerThread, **changed: float) -> Iterator[None]:
    """The door's limits ``changed`` meanwhile."""
    door = _door(server)
    limits = door.limits
    door.limits = limits.model_copy(update=changed)
    try:
        yield
    finally:
        door.limits = limits


def _slow_limits(server: ServerThread) -> contextlib.AbstractContextManager[None]:
    """A grace of 0.5 s and 100 bytes/s meanwhile (the fixture's grace is minutes)."""
    return _limits(server, body_grace_s=0.5, min_body_rate_bytes_s=100.0)


def _trickle(conn: RawConnection, body: bytes) -> tuple[bytes, int]:
    """Send ``body`` a byte at a time, a byte per 0.2 s, until the server answers; what it
    answered and how many bytes were sent."""
    sent = 0
    for byte in body:
        try:
            conn.send(bytes([byte]))
        except OSError:  # closed by the server
            break
        sent += 1
        conn.sock.settimeout(0.2)
        try:
            received = conn.sock.recv(65536)
        except TimeoutError:
            continue
        finally:
            conn.sock.settimeout(PATIENCE)
        conn.buffer = received
        break
    return conn.buffer, sent


@pytest.mark.parametrize("road", ["fast path", "asgi"])
def test_a_body_slower_than_the_minimum_rate_gets_408(single: ServerThread, road: str) -> None:
    """200 bytes declared at 100 bytes/s after 0.5 s of grace, sent at 5 bytes/s: cut off
    long before the end; a chunked body's deadline follows its bytes (ASGI)."""
    before = _refused(single).get("read_timeout", 0.0)
    body = b" " * 200
    with _slow_limits(single), RawConnection(single.port) as conn:
        if road == "fast path":
            conn.send(_head(len(body)))
        else:
            conn.send(_CHUNKED + b"%x\r\n" % len(body))
        received, sent = _trickle(conn, body)
        assert received, f"no answer after {sent} bytes"
        status, headers, answer = conn.answer()
        assert (status, headers["connection"]) == (408, "close"), answer
        assert "min_body_rate_bytes_s" in json.loads(answer)["error"]
        assert sent < len(body)
        assert conn.closed()
    assert _refused(single)["read_timeout"] == before + 1
    _until_idle(single)


def test_receiving_is_counted_back_when_the_client_leaves(roomy: ServerThread) -> None:
    for first in (_head(200) + b"{", _CHUNKED + b"1\r\n{\r\n"):
        sock = socket.create_connection(("127.0.0.1", roomy.port), timeout=PATIENCE)
        try:
            sock.sendall(first)
            _until_receiving(roomy, 1)
        finally:
            sock.close()
        _until_idle(roomy)
