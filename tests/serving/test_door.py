"""The door: admission at arrival, the deadline from arrival, bounded pipelining, read timeouts.

Every test talks to a real uvicorn server over raw sockets, because what is checked is
what happens before the app sees a request (or instead of it).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mooring.config import ServingConfig
from mooring.formats.metrics import REQUESTS_REFUSED, read_samples, total
from mooring.serving import DirectorySource, build_app
from mooring.serving.door import is_inference
from tests._support.serve_process import RawConnection, ServeProcess, raw_request
from tests._support.server import NAME, ServerThread, request_statuses, wait_for
from tests._support.serving_model import row

PREDICT = f"/v1/models/{NAME}:predict"
BODY = orjson.dumps({"instances": [row()]})


def _server(model_dirs: dict[str, Path], **options: Any) -> ServerThread:
    cfg = ServingConfig(warmup_requests=1, **options)
    return ServerThread(build_app([DirectorySource(model_dirs["a"], NAME)], cfg))


@pytest.fixture(scope="module")
def tight(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    """One admitted request at a time, a short deadline and short read timeouts."""
    with _server(
        model_dirs,
        max_in_flight=1,
        deadline_ms=400.0,
        header_timeout_s=0.5,
        body_timeout_s=0.8,
        max_pipelined=4,
        max_connections=6,
    ) as server:
        server.wait_ready()
        yield server


def _refused(server: ServerThread) -> dict[str, float]:
    samples = read_samples(server.client.get("/metrics").text)
    return {s.labels["reason"]: s.value for s in samples if s.name == total(REQUESTS_REFUSED)}


def test_is_inference_counts_predictions_only() -> None:
    assert is_inference(b"POST", b"/v1/models/m:predict")
    assert is_inference(b"POST", b"/v2/models/m/versions/2/infer?x=1")
    assert not is_inference(b"GET", b"/v1/models/m:predict")
    assert not is_inference(b"POST", b"/admin/deployment")
    assert not is_inference(b"POST", b"/v1/models/m:feedback")


@contextlib.contextmanager
def _door_server(app: Any) -> Iterator[int]:
    """A bare ASGI ``app`` behind the door on uvicorn, in a thread; its port."""
    import threading

    import uvicorn

    from mooring.serving.door import Door
    from tests._support.server import free_port

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=Door().protocol(), log_level="critical",
        lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_scope_names_both_ends_of_the_connection() -> None:
    """The door reads the addresses from the transport, as uvicorn's scope has them."""

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


async def _slow_answer(scope: Any, receive: Any, send: Any) -> None:
    """An answer whose head and body are sent 0.5 s apart; ``/fail`` ends after the head,
    ``/stream`` sends its body in two parts 0.3 s apart."""
    import asyncio

    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"predictions": [1]}'
    length = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": length})
    if scope["path"].endswith("/fail:predict"):
        raise RuntimeError("the app failed after its head")
    await asyncio.sleep(0.5)
    if scope["path"].endswith("/stream:predict"):
        await send({"type": "http.response.body", "body": body[:5], "more_body": True})
        await asyncio.sleep(0.3)
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
        conn.sock.settimeout(30)


def test_an_inference_answer_goes_out_in_one_write_with_its_head() -> None:
    """The head of a prediction's answer waits for its body (one write, one send instead
    of two); other answers' heads go out as they are sent."""
    with _door_server(_slow_answer) as port, RawConnection(port) as conn:
        conn.send(raw_request("POST", "/v1/models/m:predict", b"{}"))
        assert _received_within(conn, 0.25) == b""  # the head is held...
        first = _received_within(conn, 5.0)
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b'{"predictions": [1]}')
        conn.buffer = b""
        # ...not on a path that is not inference.
        conn.send(raw_request("POST", "/v1/models/m:feedback", b"{}"))
        head = _received_within(conn, 0.25)
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
        assert _received_within(conn, 5.0) == b'{"predictions": [1]}'


def test_a_held_head_goes_out_with_a_streamed_answer_and_before_a_close() -> None:
    with _door_server(_slow_answer) as port:
        with RawConnection(port) as conn:
            conn.send(raw_request("POST", "/v1/models/stream:predict", b"{}"))
            first = _received_within(conn, 5.0)
            assert first.startswith(b"HTTP/1.1 200") and first.endswith(b'\r\n\r\n{"pre')
            conn.buffer = first
            status, _, body = conn.answer()
            assert (status, body) == (200, b'{"predictions": [1]}')
        with RawConnection(port) as conn:
            # The app fails after its head: the connection closes, the head written first.
            conn.send(raw_request("POST", "/v1/models/fail:predict", b"{}"))
            received = b""
            while chunk := _received_within(conn, 5.0):
                received += chunk
            assert received.startswith(b"HTTP/1.1 200"), received


def test_a_prediction_that_expects_100_continue_gets_it_before_its_body(
    tight: ServerThread,
) -> None:
    """The interim answer is not held with the head: the client waits for it to send."""
    request = raw_request("POST", PREDICT, BODY, expect="100-continue")
    head, _, body = request.partition(b"\r\n\r\n")
    with RawConnection(tight.port) as conn:
        conn.send(head + b"\r\n\r\n")
        assert _received_within(conn, 5.0) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.send(body)
        status, _, answer = conn.answer()
    assert status == 200, answer
    assert len(json.loads(answer)["predictions"]) == 1


def test_past_the_in_flight_limit_a_request_gets_503_before_its_body_is_read(
    tight: ServerThread,
) -> None:
    before = _refused(tight).get("in_flight", 0.0)
    with RawConnection(tight.port) as held, RawConnection(tight.port) as other:
        # Admitted, and still in flight: its body has not arrived yet.
        held.send(raw_request("POST", PREDICT, BODY)[:-10])
        time.sleep(0.05)
        # Its body would be invalid JSON: a 503 proves the body was never parsed.
        other.send(raw_request("POST", PREDICT, b"{" * 200))
        status, headers, body = other.answer()
        assert status == 503, body
        assert headers["retry-after"] == "1"
        assert "1 requests in flight" in json.loads(body)["error"]
        # Probes and metadata are never shed.
        other.send(raw_request("GET", f"/v1/models/{NAME}"))
        assert other.answer()[0] == 200
        held.send(BODY[-10:])
        assert held.answer()[0] == 200
        # The connection that was refused is still usable.
        other.send(raw_request("POST", PREDICT, BODY))
        assert other.answer()[0] == 200
    assert _refused(tight)["in_flight"] == before + 1


def test_the_deadline_runs_from_arrival_not_from_the_body(tight: ServerThread) -> None:
    with RawConnection(tight.port) as conn:
        request = raw_request("POST", PREDICT, BODY)
        conn.send(request[:-5])
        time.sleep(0.6)  # past the 400 ms deadline, within the 800 ms body timeout
        conn.send(request[-5:])
        status, _, body = conn.answer()
    assert status == 504, body
    assert "deadline of 400 ms" in json.loads(body)["error"]


def test_a_partial_header_is_answered_408_and_closed(tight: ServerThread) -> None:
    before = _refused(tight).get("read_timeout", 0.0)
    with RawConnection(tight.port, timeout=10) as conn:
        conn.send(f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n".encode())
        status, headers, body = conn.answer()
        assert status == 408 and headers["connection"] == "close"
        assert "headers within 0.5 s" in json.loads(body)["error"]
        assert conn.closed()
    # A connection that never sends a byte is closed too.
    with RawConnection(tight.port, timeout=10) as idle:
        assert idle.answer()[0] == 408
    assert _refused(tight)["read_timeout"] == before + 2


def test_a_slow_body_is_cut_off_and_counted_as_the_clients(tight: ServerThread) -> None:
    before = request_statuses(tight)
    with RawConnection(tight.port, timeout=10) as conn:
        conn.send(raw_request("POST", PREDICT, BODY)[:-10])
        assert conn.closed()
    wait_for(lambda: request_statuses(tight).get("499", 0.0) > before.get("499", 0.0))
    after = request_statuses(tight)
    assert not any(k.startswith("5") and after[k] != before.get(k, 0.0) for k in after)


def test_pipelined_requests_are_answered_in_order(tight: ServerThread) -> None:
    requests = [
        raw_request("POST", PREDICT, BODY, x_request_id="first"),
        raw_request("GET", f"/v1/models/{NAME}", x_request_id="second"),
        raw_request("POST", PREDICT, b"[]", x_request_id="third"),
        raw_request("POST", PREDICT, BODY, x_request_id="fourth"),
    ]
    with RawConnection(tight.port) as conn:
        conn.send(b"".join(requests))
        answers = [conn.answer() for _ in requests]
    assert [(status, h["x-request-id"]) for status, h, _ in answers] == [
        (200, "first"),
        (200, "second"),
        (400, "third"),
        (200, "fourth"),
    ]


def test_a_pipelining_flood_is_answered_in_order_up_to_the_cap(tight: ServerThread) -> None:
    # 500 tiny requests in one write: read a slice at a time, answered in order; a slice
    # holding more than max_pipelined (4) of them ends the connection after what it queued.
    small = b"GET /v2/health/live HTTP/1.1\r\n\r\n"
    with RawConnection(tight.port) as conn:
        conn.send(small * 500)
        answered = 0
        while not conn.closed():
            assert conn.answer()[0] == 200
            answered += 1
    assert 1 <= answered < 500
    assert tight.client.get("/v2/health/live").status_code == 200


def test_connections_past_the_limit_are_answered_503_and_closed(tight: ServerThread) -> None:
    # The test client's pooled connection may hold one of the six.
    conns = [RawConnection(tight.port) for _ in range(8)]
    try:
        statuses = []
        for conn in conns:
            conn.send(raw_request("GET", "/v2/health/live"))
            statuses.append(conn.answer()[0])
    finally:
        for conn in conns:
            conn.sock.close()
    assert statuses[:5] == [200] * 5
    assert statuses[-1] == 503
    wait_for(lambda: tight.client.get("/v2/health/live").status_code == 200)


@pytest.mark.slow
def test_overload_from_another_process_is_shed_and_memory_stays_bounded(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    """Well past a small in-flight limit: fast 503s, nothing waits past the deadline,
    bounded memory; a pipelining client cannot grow memory; then normal service."""
    bound_kib = 64 * 1024
    with ServeProcess(
        tmp_path, model_dirs["a"], max_in_flight=4, deadline_ms=2000.0, max_batch_size=8
    ) as server:
        request = raw_request("POST", PREDICT, BODY)
        warm = server.flood(request, tmp_path, "--connections", "4", "--seconds", "1")
        assert warm["statuses"].get("200", 0) > 0
        baseline = server.memory_kib()
        server.reset_peak()
        result = server.flood(request, tmp_path, "--connections", "96", "--seconds", "4")
        statuses = result["statuses"]
        assert set(statuses) <= {"200", "503", "504"}, result
        assert statuses.get("503", 0) > 0 and statuses.get("200", 0) > 0, result
        # Shed requests are answered long before the deadline; nothing waits past it
        # by more than the time to write its answer.
        assert result["max_ms"]["503"] < 2000, result
        assert max(result["max_ms"].values()) < 4000, result
        assert result["errors"] == 0, result
        assert server.memory_kib("VmHWM") - baseline < bound_kib

        # Thousands of requests pipelined on one connection, written as fast as the socket
        # takes them: predictions are answered one after another, in order...
        server.reset_peak()
        out = server.flood(request, tmp_path, "--pipeline", "2000")
        assert out["answered"] == 2000 and set(out["statuses"]) <= {"200", "503"}, out
        assert server.memory_kib("VmHWM") - baseline < bound_kib
        # ...and so is a flood of 65,000 tiny ones, read a slice at a time.
        tiny = b"GET /v2/health/live HTTP/1.1\r\n\r\n"
        out = server.flood(tiny, tmp_path, "--pipeline", "65000")
        assert out["answered"] == 65000 and out["statuses"] == {"200": 65000}, out
        grown = server.memory_kib("VmHWM") - baseline
        assert grown < bound_kib, f"RSS grew by {grown} KiB"

        res = RawConnection(server.port)
        with res:
            res.send(request)
            assert res.answer()[0] == 200
