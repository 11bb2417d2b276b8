"""The door: admission at arrival, the deadline from arrival, bounded pipelining, read timeouts.

Every test talks to a real server (mooring's own) over raw sockets, because what is checked is
what happens before the app sees a request (or instead of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mooring.config import ServingConfig
from mooring.formats._metrics import REQUESTS, REQUESTS_REFUSED, read_samples, total
from mooring.serving import DirectorySource, build_app
from tests._support.held import held_model
from tests._support.serve_process import RawConnection, ServeProcess, raw_request
from tests._support.server import NAME, ServerThread, request_statuses
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

PREDICT = f"/v1/models/{NAME}:predict"
BODY = orjson.dumps({"instances": [row()]})


def _server(model_dirs: dict[str, Path], **options: Any) -> ServerThread:
    cfg = ServingConfig(warmup_requests=1, **options)
    return ServerThread(build_app([DirectorySource(model_dirs["a"], NAME)], cfg))


@pytest.fixture(scope="module")
def door(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """One admitted request at a time, four pipelined, six connections; the deadline, the
    read timeouts and the keep-alive are far longer than any test takes: none of them may
    fire here (on a loaded machine, 5 s between two requests of one client happen)."""
    with _server(
        model_dirs,
        max_in_flight=1,
        deadline_ms=PATIENCE * 1000,
        keep_alive_s=int(PATIENCE),
        header_timeout_s=PATIENCE,
        body_timeout_s=PATIENCE,
        max_pipelined=4,
        max_connections=6,
    ) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def tight(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """Short read timeouts, for the tests where they must fire."""
    with _server(model_dirs, header_timeout_s=0.5, body_timeout_s=0.8) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def hasty(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """A 400 ms deadline, and read timeouts far longer than any test takes."""
    with _server(
        model_dirs, deadline_ms=400.0, header_timeout_s=PATIENCE, body_timeout_s=PATIENCE
    ) as server:
        server.wait_ready()
        yield server


def _refused(server: ServerThread) -> dict[str, float]:
    samples = read_samples(server.client.get("/metrics").text)
    return {s.labels["reason"]: s.value for s in samples if s.name == total(REQUESTS_REFUSED)}


@contextlib.contextmanager
def _door_server(app: Any) -> Iterator[int]:
    """A bare ASGI ``app`` behind the door, in a thread; its port."""
    with ServerThread(app) as server:
        yield server.port


def test_the_scope_names_both_ends_of_the_connection() -> None:
    """The door reads the addresses from the transport into the scope."""

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = orjson.dumps(
            {"server": scope["server"], "client": scope["client"], "scheme": scope["scheme"]}
        )
        length = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": body})

    with _door_server(echo) as port, RawConnection(port) as conn:
        conn.send(raw_request("GET", "/", b""))
        status, _, body = conn.answer()
        local_port = conn.sock.getsockname()[1]
    seen = json.loads(body)
    assert status == 200
    assert seen == {"server": ["127.0.0.1", port], "client": ["127.0.0.1", local_port],
                    "scheme": "http"}  # fmt: skip


class _HeldAnswer:
    """An app whose answers wait for the test: it counts the heads it has sent
    (:attr:`heads`), then sends the body when the test says :meth:`go` (``/stream``: in two
    parts, one per ``go``); ``/fail`` ends after its head."""

    def __init__(self) -> None:
        self.heads = 0
        self._go = threading.Semaphore(0)

    def go(self) -> None:
        self._go.release()

    def wait_heads(self, count: int) -> None:
        wait_until(lambda: self.heads >= count, f"the app to send head {count}",
                   seen=lambda: self.heads)  # fmt: skip

    async def _go_ahead(self) -> None:
        if not await asyncio.to_thread(self._go.acquire, timeout=PATIENCE):
            raise RuntimeError("the test never let the body go")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = b'{"predictions": [1]}'
        length = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        self.heads += 1
        if scope["path"].endswith("/fail:predict"):
            raise RuntimeError("the app failed after its head")
        await self._go_ahead()
        if scope["path"].endswith("/stream:predict"):
            await send({"type": "http.response.body", "body": body[:5], "more_body": True})
            await self._go_ahead()
            await send({"type": "http.response.body", "body": body[5:]})
            return
        await send({"type": "http.response.body", "body": body})


def _received_within(conn: RawConnection, seconds: float) -> bytes:
    """What arrives on ``conn`` within ``seconds`` (nothing: b"")."""
    conn.sock.settimeout(seconds)
    try:
        return conn.sock.recv(65536)
    except TimeoutError:
        return b""
    finally:
        conn.sock.settimeout(PATIENCE)


def test_streamed_answers_on_one_keep_alive_connection_arrive_whole(tmp_path: Path) -> None:
    """Starlette's file and streaming answers listen for a disconnect while they stream and
    cancel the listener once done: the next answer on the same connection is whole."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, StreamingResponse
    from starlette.routing import Route

    page = tmp_path / "ui.css"
    page.write_bytes(b"body { margin: 0 }\n" * 500)

    async def parts() -> Any:
        for part in (b"one,", b"two,", b"three"):
            yield part

    app = Starlette(
        routes=[
            Route("/file", lambda request: FileResponse(page)),
            Route("/stream", lambda request: StreamingResponse(parts())),
        ]
    )
    limits = httpx.Limits(max_connections=1)
    with _door_server(app) as port, httpx.Client(limits=limits, timeout=PATIENCE) as client:
        for path in ("/file", "/file", "/stream", "/file", "/stream", "/stream"):
            res = client.get(f"http://127.0.0.1:{port}{path}")
            expected = page.read_bytes() if path == "/file" else b"one,two,three"
            assert (path, res.status_code, res.content) == (path, 200, expected)
            assert "close" not in res.headers.get("connection", "")


@pytest.mark.parametrize("path", ["/v1/models/m:predict", "/v1/models/m:feedback"])
def test_an_answer_goes_out_in_one_write_with_its_head(path: str) -> None:
    """The head of an answer waits for its body: one write, one send instead of two."""
    app = _HeldAnswer()
    with _door_server(app) as port, RawConnection(port) as conn:
        conn.send(raw_request("POST", path, b"{}"))
        app.wait_heads(1)  # the app has sent its head...
        assert _received_within(conn, 0.25) == b""  # ...and the door holds it
        app.go()
        first = _received_within(conn, PATIENCE)
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b'{"predictions": [1]}')


def test_a_held_head_goes_out_with_a_streamed_answer_and_before_a_close() -> None:
    app = _HeldAnswer()
    with _door_server(app) as port:
        with RawConnection(port) as conn:
            conn.send(raw_request("POST", "/v1/models/stream:predict", b"{}"))
            app.go()  # the first part only: the second waits for the next go()
            first = _received_within(conn, PATIENCE)
            assert first.startswith(b"HTTP/1.1 200") and first.endswith(b'\r\n\r\n{"pre')
            app.go()
            conn.buffer = first
            status, _, body = conn.answer()
            assert (status, body) == (200, b'{"predictions": [1]}')
        with RawConnection(port) as conn:
            # The app fails after its head: the connection closes, the head written first.
            conn.send(raw_request("POST", "/v1/models/fail:predict", b"{}"))
            received = b""
            while chunk := _received_within(conn, PATIENCE):
                received += chunk
            assert received.startswith(b"HTTP/1.1 200"), received


def test_a_prediction_that_expects_100_continue_gets_it_before_its_body(
    door: ServerThread,
) -> None:
    """The interim answer is not held with the head: the client waits for it to send."""
    request = raw_request("POST", PREDICT, BODY, expect="100-continue")
    head, _, body = request.partition(b"\r\n\r\n")
    with RawConnection(door.port) as conn:
        conn.send(head + b"\r\n\r\n")
        assert _received_within(conn, PATIENCE) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.send(body)
        status, _, answer = conn.answer()
    assert status == 200, answer
    assert len(json.loads(answer)["predictions"]) == 1


def _in_flight(server: ServerThread) -> int:
    return int(server.app.state.mooring.admission.in_flight)


def test_past_the_in_flight_limit_a_request_gets_503_before_its_body_is_read(
    door: ServerThread,
) -> None:
    """A request whose headers find every permit taken (by a prediction in the model) is
    refused at once, its body never parsed."""
    before = _refused(door).get("in_flight", 0.0)
    with (
        held_model(door.app, NAME) as held,
        RawConnection(door.port) as running,
        RawConnection(door.port) as other,
    ):
        # Admitted (its body is whole), and in the model until released.
        running.send(raw_request("POST", PREDICT, BODY))
        held.wait_entered("the first request to be in the model")
        assert _in_flight(door) == 1
        # Its body would be invalid JSON: a 503 proves the body was never parsed.
        other.send(raw_request("POST", PREDICT, b"{" * 200))
        status, headers, body = other.answer()
        assert status == 503, body
        assert headers["retry-after"] == "1"
        assert "1 requests in flight" in json.loads(body)["error"]
        # Every spelling of the route the app serves as a prediction is admitted as one.
        for spelling in (PREDICT.replace(":", "%3A"), PREDICT.replace(":", "%3a")):
            with RawConnection(door.port) as encoded:
                encoded.send(raw_request("POST", spelling, b"{" * 200))
                assert encoded.answer()[0] == 503, spelling
        # Probes and metadata are never shed.
        other.send(raw_request("GET", f"/v1/models/{NAME}"))
        assert other.answer()[0] == 200
        held.release.set()
        assert running.answer()[0] == 200
        # The connection that was refused is still usable.
        other.send(raw_request("POST", PREDICT, BODY))
        assert other.answer()[0] == 200
    assert _refused(door)["in_flight"] == before + 3


@contextlib.contextmanager
def _patient(model_dirs: dict[str, Path], max_in_flight: int) -> Iterator[ServerThread]:
    """A ready server with ``max_in_flight`` permits, a refused connection parked for 3 s
    (longer than a check takes), and no deadline or read timeout a check could meet."""
    with _server(
        model_dirs,
        max_in_flight=max_in_flight,
        retry_after_s=3,
        deadline_ms=PATIENCE * 1000,
        header_timeout_s=PATIENCE,
        body_timeout_s=PATIENCE,
    ) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def parking(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """One permit."""
    with _patient(model_dirs, 1) as server:
        yield server


@pytest.mark.parametrize("road", ["headers", "body"])
def test_a_refused_connection_is_not_read_again_until_retry_after(
    parking: ServerThread, road: str
) -> None:
    """A client that retries at once after a 503 waits for Retry-After on its connection:
    its retry is not refused again as fast as it is sent, and once read (the permit free by
    then) it is answered. Other connections are read meanwhile."""
    with (
        held_model(parking.app, NAME) as held,
        RawConnection(parking.port) as running,
        RawConnection(parking.port) as storm,
    ):
        running.send(raw_request("POST", PREDICT, BODY))
        held.wait_entered("the first request to be in the model")
        before = _refused(parking).get("in_flight", 0.0)
        request = raw_request("POST", PREDICT, BODY)
        if road == "headers":  # refused as its headers arrive
            storm.send(request)
        else:  # refused as its body completes (the headers found a free count)
            cut = request.index(b"\r\n\r\n") + 4
            parking.app.state.mooring.admission.in_flight -= 1  # the headers see room
            storm.send(request[:cut])
            wait_until(lambda: parking.app.state.mooring.admission.receiving == 1,
                       "the request to be receiving its body")  # fmt: skip
            parking.app.state.mooring.admission.in_flight += 1
            storm.send(request[cut:])
        status, headers, _ = storm.answer()
        assert status == 503 and headers["retry-after"] == "3"
        storm.send(request)  # at once, ignoring Retry-After
        # Another connection is read and answered meanwhile...
        assert parking.client.get(f"/v1/models/{NAME}").status_code == 200
        # ...the retry is not: no second refusal, no answer yet.
        assert _refused(parking)["in_flight"] == before + 1
        storm.sock.setblocking(False)
        with pytest.raises(BlockingIOError, match="temporarily unavailable"):
            storm.sock.recv(1)
        storm.sock.setblocking(True)
        held.release.set()
        assert running.answer()[0] == 200
        # Read after Retry-After, the permit free by then: answered.
        assert storm.answer()[0] == 200
    assert _refused(parking)["in_flight"] == before + 1


def _big_body(size: int) -> bytes:
    """A valid prediction body of about ``size`` bytes (at least one row)."""
    one = orjson.dumps(row())
    return orjson.dumps({"instances": [row()] * max(1, size // (len(one) + 1))})


def _chunked(body: bytes, piece: int = 8192) -> bytes:
    head = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = [body[i : i + piece] for i in range(0, len(body), piece)]
    return head.encode() + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def test_the_body_budget_refuses_past_it_and_every_road_gives_its_bytes_back(
    model_dirs: dict[str, Path],
) -> None:
    """A 64 KiB budget: a body arriving holds its declared length; another that would pass
    the budget is answered 503 once sent (unread, the connection kept); a chunked one holds
    64 KiB more than its data so far, so it is refused 503 and closed at its headers here,
    and taken when alone, growing past its share as its data comes. Answered, refused, cut
    off or timed out, every request returns its bytes: the count ends at 0."""
    budget, limit = 64 * 1024, 256 * 1024
    with _server(model_dirs, body_budget_bytes=budget, body_limit_bytes=limit,
                 deadline_ms=PATIENCE * 1000, body_timeout_s=PATIENCE,
                 min_body_rate_bytes_s=0) as server:  # fmt: skip
        server.wait_ready()
        door = server.app.state.mooring.door
        admission = door.admission
        held = raw_request("POST", PREDICT, _big_body(50_000))
        cut = held.index(b"\r\n\r\n") + 4 + 1000
        with RawConnection(server.port) as first, RawConnection(server.port) as second:
            first.send(held[:cut])
            length = len(held) - held.index(b"\r\n\r\n") - 4
            wait_until(lambda: admission.body_bytes == length, "the first body's length to be held",
                       seen=lambda: admission.body_bytes)  # fmt: skip
            second.send(raw_request("POST", PREDICT, _big_body(20_000)))
            status, headers, body = second.answer()
            assert status == 503 and headers["retry-after"] == "1", (status, body)
            assert b"64 MiB" not in body and b"body_budget_bytes" in body, body
            assert headers.get("connection") != "close", headers
            with RawConnection(server.port) as chunked:
                chunked.send(_chunked(_big_body(1000)))
                assert chunked.answer()[0] == 503 and chunked.closed()
            first.send(held[cut:])
            assert first.answer()[0] == 200
            wait_until(lambda: admission.body_bytes == 0, "the answered body's bytes to come back",
                       seen=lambda: admission.body_bytes)  # fmt: skip
            # Alone, a chunked body is taken, and grows past its first share.
            second.send(_chunked(_big_body(150_000)))
            answer = second.answer()
            assert answer[0] == 200, answer
        # A body cut off by its client, and one that stops arriving, give theirs back too.
        with RawConnection(server.port) as leaving:
            leaving.send(held[:cut])
            wait_until(lambda: admission.body_bytes > 0, "the body to be held")
        wait_until(lambda: admission.body_bytes == 0, "a departed client's bytes to be given back",
                   seen=lambda: admission.body_bytes)  # fmt: skip
        limits = door.limits
        door.limits = limits.model_copy(update={"body_timeout_s": 0.5})
        try:
            with RawConnection(server.port) as stalled:
                stalled.send(held[:cut])
                assert stalled.answer()[0] == 408
        finally:
            door.limits = limits
        wait_until(lambda: admission.counts() == (0, 0, 0),
                   "every count back at 0",
                   seen=admission.counts)  # fmt: skip
        assert _refused(server)["body_bytes"] == 2


@pytest.fixture(scope="module")
def quarter(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """Four permits: a pipelined prediction may take three of them."""
    with _patient(model_dirs, 4) as server:
        yield server


def test_pipelined_predictions_leave_a_quarter_of_the_permits_to_others(
    quarter: ServerThread,
) -> None:
    """With three of four permits taken, a pipelining client's first prediction (read from
    the socket) takes the fourth, but the one it sent behind it is refused once that is
    answered: it would otherwise take the freed permit before any other connection is
    read. A fresh request on another connection gets the permit."""
    door = quarter.app.state.mooring.door
    admission = door.admission
    admission.in_flight += 3  # three permits held (as by answers under way elsewhere)
    try:
        with RawConnection(quarter.port) as piped, RawConnection(quarter.port) as other:
            piped.send(raw_request("POST", PREDICT, BODY) * 2)
            first, second = piped.answer(), piped.answer()
            assert first[0] == 200, first
            assert second[0] == 503 and second[1]["retry-after"] == "3", second
            other.send(raw_request("POST", PREDICT, BODY))
            assert other.answer()[0] == 200
    finally:
        admission.in_flight -= 3


def _answered(server: ServerThread, status: str) -> dict[str, float]:
    """Requests answered ``status``, by the version label they were counted under."""
    samples = read_samples(server.client.get("/metrics").text)
    return {
        s.labels["version"]: s.value
        for s in samples
        if s.name == total(REQUESTS) and s.labels["status"] == status
    }


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_uploaded_within_the_read_limits_is_not_late_for_its_upload(
    hasty: ServerThread, framing: str
) -> None:
    """The body arrives 0.6 s after its headers, past the 400 ms deadline but well within
    the read timeouts: the upload is the client's time, so the prediction is answered."""
    before = _answered(hasty, "504")
    if framing == "chunked":
        request = _chunked(BODY, piece=len(BODY) - 5)
        cut = request.index(b"\r\n\r\n") + 4 + len(BODY)  # the first chunk sent
    else:
        request = raw_request("POST", PREDICT, BODY)
        cut = len(request) - 5
    with RawConnection(hasty.port) as conn:
        conn.send(request[:cut])
        time.sleep(0.6)
        conn.send(request[cut:])
        status, _, body = conn.answer()
    assert status == 200, body
    assert _answered(hasty, "504") == before


def test_a_request_held_behind_a_pipelined_one_is_late_from_its_arrival(
    hasty: ServerThread,
) -> None:
    """The second of two pipelined predictions waits (held as bytes) while the first is in
    the model past the deadline: its deadline ran from when it was read, so it is answered
    504 as shed load without reaching the model, not served late."""
    before = _answered(hasty, "504")
    with (
        held_model(hasty.app, NAME) as held,
        RawConnection(hasty.port) as conn,
    ):
        conn.send(raw_request("POST", PREDICT, BODY) * 2)
        held.wait_entered("the first request to be in the model")
        time.sleep(0.6)  # both past the 400 ms deadline
        held.hold = False
        held.release.set()
        first, second = conn.answer(), conn.answer()
    assert first[0] == 504 and second[0] == 504, (first, second)
    # The first's 504 comes at its deadline, and the second is read within a millisecond
    # of its own: it is refused before the model, or expires queued behind the held one.
    assert "deadline of" in json.loads(second[2])["error"]
    after = _answered(hasty, "504")
    assert after.get("-", 0.0) == before.get("-", 0.0) + 1  # the second: shed
    assert after.get("1", 0.0) == before.get("1", 0.0) + 1  # the first: the model's time


def test_a_partial_header_is_answered_408_and_closed(tight: ServerThread) -> None:
    before = _refused(tight).get("read_timeout", 0.0)
    with RawConnection(tight.port) as conn:
        conn.send(f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n".encode())
        status, headers, body = conn.answer()
        assert status == 408 and headers["connection"] == "close"
        assert "headers within 0.5 s" in json.loads(body)["error"]
        assert conn.closed()
    # A connection that never sends a byte is closed too.
    with RawConnection(tight.port) as idle:
        assert idle.answer()[0] == 408
    assert _refused(tight)["read_timeout"] == before + 2


def test_a_slow_body_is_cut_off_and_counted_as_the_clients(tight: ServerThread) -> None:
    before = request_statuses(tight)
    with RawConnection(tight.port) as conn:
        conn.send(raw_request("POST", PREDICT, BODY)[:-10])
        # Nothing of it was answered yet: the door says why it closes.
        status, headers, body = conn.answer()
        assert status == 408 and headers["connection"] == "close", body
        assert "body_timeout_s" in json.loads(body)["error"]
        assert conn.closed()
    wait_until(
        lambda: request_statuses(tight).get("499", 0.0) > before.get("499", 0.0),
        "the cut-off request to be counted 499",
        seen=lambda: request_statuses(tight),
    )
    after = request_statuses(tight)
    assert not any(k.startswith("5") and after[k] != before.get(k, 0.0) for k in after)


def test_a_large_declared_length_buys_no_time_before_its_bytes_arrive(
    hasty: ServerThread,
) -> None:
    # 4,000,000 bytes declared, 10 sent: at 1 KiB/s that length would earn an hour (then
    # body_timeout_s); what earns time is the bytes that came, after the 2 s grace.
    before = _refused(hasty).get("read_timeout", 0.0)
    with RawConnection(hasty.port) as conn:
        head = raw_request("POST", PREDICT, BODY).split(b"\r\n\r\n", 1)[0]
        head = head.replace(f"Content-Length: {len(BODY)}".encode(), b"Content-Length: 4000000")
        conn.send(head + b"\r\n\r\n" + BODY[:10])
        status, headers, body = conn.answer()
        assert status == 408 and headers["connection"] == "close", body
        assert "bytes/s or faster" in json.loads(body)["error"]
    assert _refused(hasty)["read_timeout"] == before + 1


def test_pipelined_requests_are_answered_in_order(door: ServerThread) -> None:
    requests = [
        raw_request("POST", PREDICT, BODY, x_request_id="first"),
        raw_request("GET", f"/v1/models/{NAME}", x_request_id="second"),
        raw_request("POST", PREDICT, b"[]", x_request_id="third"),
        raw_request("POST", PREDICT, BODY, x_request_id="fourth"),
    ]
    with RawConnection(door.port) as conn:
        conn.send(b"".join(requests))
        answers = [conn.answer() for _ in requests]
    assert [(status, h["x-client-request-id"]) for status, h, _ in answers] == [
        (200, "first"),
        (200, "second"),
        (400, "third"),
        (200, "fourth"),
    ]


def test_a_pipelining_flood_is_answered_in_order_and_kept(door: ServerThread) -> None:
    # 500 tiny requests in one write: parsed one at a time, each after its predecessor's
    # answer, all answered in order on the one connection.
    small = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with RawConnection(door.port) as conn:
        conn.send(small * 500)
        statuses = [conn.answer()[0] for _ in range(500)]
        assert statuses == [200] * 500
        conn.send(small)  # the connection is kept
        assert conn.answer()[0] == 200


def _connections(server: ServerThread) -> int:
    return len(server.server.door.connections)


def _taken(server: ServerThread, conns: list[RawConnection]) -> bool:
    """Whether the server has taken each of ``conns`` (connected is not yet taken)."""
    ports = {c.client[1] for c in list(server.server.door.connections) if c.client}
    return all(conn.sock.getsockname()[1] in ports for conn in conns)


def test_past_the_connection_limit_idle_sockets_make_room_and_busy_ones_refuse(
    door: ServerThread,
) -> None:
    # Earlier tests' connections are gone (but the test client's pooled one, which may
    # hold one of the six): the count starts from a known state.
    wait_until(lambda: _connections(door) <= 1, "the earlier tests' connections to close",
               seen=lambda: _connections(door))  # fmt: skip
    pooled = _connections(door)  # quiet the longest, so made room first when it is there
    # A keep-alive client, then eight sockets that send nothing, on six places: those
    # quiet the longest make room for the new; the client, answered since they came
    # (though connected before them), keeps its connection.
    # A socket is connected before the server accepts it: each round waits for the
    # server to have taken its sockets, so the order the server sees is the one written.
    client = RawConnection(door.port)
    idle = [RawConnection(door.port) for _ in range(4)]
    try:
        wait_until(lambda: _taken(door, [client, *idle]), "the five sockets to be taken",
                   seen=lambda: _connections(door))  # fmt: skip
        for victim in (0, 2):
            client.send(raw_request("GET", "/v2/health/live"))
            assert client.answer()[0] == 200
            idle += [RawConnection(door.port) for _ in range(2)]
            assert idle[victim].closed()  # the newest made room
        idle[-1].send(raw_request("GET", "/v2/health/live"))
        assert idle[-1].answer()[0] == 200
        assert all(conn.closed() for conn in idle[: 3 - pooled])
        client.send(raw_request("GET", "/v2/health/live"))
        assert client.answer()[0] == 200
        assert _connections(door) <= 6
    finally:
        for conn in [client, *idle]:
            conn.sock.close()
    wait_until(lambda: _connections(door) <= 1, "the idle sockets to close",
               seen=lambda: _connections(door))  # fmt: skip
    # Six connections each inside a request's headers: nothing to reclaim, so a seventh
    # is refused, and served again once they are gone.
    busy = [RawConnection(door.port) for _ in range(6)]
    try:
        for conn in busy:
            conn.send(f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n".encode())
        wait_until(lambda: _connections(door) == 6, "six connections in a request",
                   seen=lambda: _connections(door))  # fmt: skip
        with RawConnection(door.port) as extra:
            extra.send(raw_request("GET", "/v2/health/live"))
            status, headers, _ = extra.answer()
            assert status == 503 and headers["connection"] == "close"
    finally:
        for conn in busy:
            conn.sock.close()
    wait_until(
        lambda: door.client.get("/v2/health/live").status_code == 200,
        "the server to answer once the extra connections are closed",
    )


@pytest.mark.slow
def test_an_answered_request_s_body_is_let_go(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    """Once a request is answered its connection holds none of its body. After 10
    keep-alive connections with a 2 MiB request each (which set how much memory the
    allocator keeps), 50 more left open, then 80 more opened and closed, each add less
    than half of the bytes they sent to the server's resident memory. (A connection kept
    its last body until its next request, and a closed one until the cyclic collector
    freed it with its transport: about the bytes sent, each time.)"""
    bad = {**row(), "age": "old"}
    body = orjson.dumps({"instances": [bad] * 24_000})
    assert 1.5 * 2**20 < len(body) < 2.5 * 2**20, len(body)
    request = raw_request("POST", PREDICT, body)

    def answered_400(conn: RawConnection) -> None:
        conn.send(request)
        status, _, answer = conn.answer()
        assert status == 400 and b"instances.age[0]" in answer, (status, answer[:200])

    with ServeProcess(tmp_path, model_dirs["a"]) as server:
        kept = [RawConnection(server.port) for _ in range(60)]
        try:
            for conn in kept[:10]:
                answered_400(conn)
            baseline = server.memory_kib()
            for conn in kept[10:]:
                answered_400(conn)
            grown = server.memory_kib() - baseline
            assert grown * 1024 < 50 * len(body) // 2, f"RSS grew by {grown} KiB"
        finally:
            for conn in kept:
                conn.sock.close()
        baseline = server.memory_kib()
        for _ in range(80):
            with RawConnection(server.port) as conn:
                answered_400(conn)
        grown = server.memory_kib() - baseline
        assert grown * 1024 < 80 * len(body) // 2, f"RSS grew by {grown} KiB"


@pytest.mark.slow
def test_a_flood_of_large_bodies_is_held_within_the_body_budget(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    """32 clients sending 3 MiB bodies at once: past ``body_budget_bytes`` a body is refused
    503 from its headers (unread, its connection kept), so the worker's peak memory
    follows the budget, not the flood (without one it grew about 800 MiB and 504s came
    back); every body is answered 200 or 503."""
    rows = [row(age=float(20 + i % 50)) for i in range(200)]
    body = orjson.dumps({"instances": rows * 190})
    assert 2 << 20 < len(body) < 4 << 20
    request = raw_request("POST", PREDICT, body)
    with ServeProcess(tmp_path, model_dirs["a"], body_budget_bytes=8 << 20) as server:
        warm = server.flood(request, tmp_path, "--connections", "1", "--requests", "2")
        assert warm["statuses"] == {"200": 2}, warm
        baseline = server.memory_kib()
        server.reset_peak()
        out = server.flood(request, tmp_path, "--connections", "32", "--requests", "2")
        grown_mib = (server.memory_kib("VmHWM") - baseline) / 1024
        statuses = out["statuses"]
        assert set(statuses) <= {"200", "503"} and sum(statuses.values()) == 64, out
        assert statuses.get("200", 0) >= 2 and statuses.get("503", 0) > 0, out
        metrics = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=PATIENCE).text
        refused = {
            s.labels["reason"]: s.value
            for s in read_samples(metrics)
            if s.name == total(REQUESTS_REFUSED)
        }
        assert refused.get("body_bytes", 0) > 0, refused
        # About 60 MiB here: the budget's bodies, parsed, and the batches they make.
        assert grown_mib < 300, f"peak RSS grew {grown_mib:.0f} MiB within an 8 MiB budget"


@pytest.mark.slow
def test_overload_from_another_process_is_shed_and_memory_stays_bounded(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    """Well past a small in-flight limit: 503s and 200s, no error, bounded memory; a
    pipelining client cannot grow memory; then normal service."""
    bound_kib = 64 * 1024
    with ServeProcess(
        tmp_path, model_dirs["a"], max_in_flight=4, deadline_ms=2000.0, max_batch_size=8
    ) as server:
        request = raw_request("POST", PREDICT, BODY)
        warm = server.flood(request, tmp_path, "--connections", "4", "--requests", "25")
        assert warm["statuses"].get("200", 0) > 0
        baseline = server.memory_kib()
        server.reset_peak()
        result = server.flood(request, tmp_path, "--connections", "96", "--requests", "40")
        statuses = result["statuses"]
        assert set(statuses) <= {"200", "503", "504"}, result
        assert sum(statuses.values()) + result["errors"] == 96 * 40, result
        assert statuses.get("503", 0) > 0 and statuses.get("200", 0) > 0, result
        # (That a refusal comes before the body is read, and a request past its deadline
        # is answered 504, is shown without a clock: test_past_the_in_flight_limit_...
        # above and tests/serving/test_backpressure.py.)
        assert result["errors"] == 0, result
        assert server.memory_kib("VmHWM") - baseline < bound_kib

        # Thousands of requests pipelined on one connection, written as fast as the socket
        # takes them: predictions are answered one after another, in order...
        server.reset_peak()
        out = server.flood(request, tmp_path, "--pipeline", "2000")
        # Each waits for the one before it and its deadline counts that wait: on a slow or
        # busy machine the later ones are shed with 504 before the model, never lost.
        assert out["answered"] == 2000 and set(out["statuses"]) <= {"200", "503", "504"}, out
        assert out["statuses"].get("200", 0) > 0, out
        assert server.memory_kib("VmHWM") - baseline < bound_kib
        # ...and so is a flood of 65,000 tiny ones, read a slice at a time.
        tiny = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        out = server.flood(tiny, tmp_path, "--pipeline", "65000")
        assert out["answered"] == 65000 and out["statuses"] == {"200": 65000}, out
        grown = server.memory_kib("VmHWM") - baseline
        assert grown < bound_kib, f"RSS grew by {grown} KiB"

        res = RawConnection(server.port)
        with res:
            res.send(request)
            assert res.answer()[0] == 200
