"""The fast path: predictions the door reads and answers itself, answered as ASGI answers them.

Two servers of the same model run side by side: one as ``mooring serve`` runs it (the
door takes plain predictions), one with the door's fast path off (every request through
ASGI, Starlette and the door's request cycle). Whatever a client sends, both answer
alike; what the fast path does not take (chunked bodies, ``Expect: 100-continue``,
oversized or percent-encoded requests, a request behind an unanswered one) still gets
its answer through ASGI. Every test talks to a real server over real sockets.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mooring.config import ServingConfig
from mooring.serving import DirectorySource, build_app
from mooring.serving._door_framing import Request
from tests._support.serve_process import RawConnection, raw_request
from tests._support.server import NAME, ServerThread, request_statuses
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

PREDICT = f"/v1/models/{NAME}:predict"
INFER = f"/v2/models/{NAME}/infer"
BODY = orjson.dumps({"instances": [row()]})


class _Counted:
    """The app's fast path, counting what the door hands it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.served = 0
        self.lost_count = 0

    async def serve(self, request: Request, client: str | None) -> Any:
        self.served += 1
        return await self.inner.serve(request, client)

    def lost(self, request: Request, client: str | None) -> None:
        self.lost_count += 1
        self.inner.lost(request, client)


def _server(model_dirs: dict[str, Path], *, fast: bool, **options: Any) -> ServerThread:
    cfg = ServingConfig(warmup_requests=1, deadline_ms=PATIENCE * 1000, **options)
    app = build_app([DirectorySource(model_dirs["a"], NAME)], cfg)
    door = app.state.mooring.door
    door.fast = _Counted(door.fast) if fast else None
    return ServerThread(app)


@pytest.fixture(scope="module")
def both(model_dirs: dict[str, Path]) -> Iterator[tuple[ServerThread, ServerThread]]:
    """(the server with its fast path, the same server with every request through ASGI);
    the deadline and the read timeouts are far longer than any test takes."""
    timeouts = {"header_timeout_s": PATIENCE, "body_timeout_s": PATIENCE}
    with (
        _server(model_dirs, fast=True, body_limit_bytes=4096, **timeouts) as fast,
        _server(model_dirs, fast=False, body_limit_bytes=4096, **timeouts) as slow,
    ):
        fast.wait_ready()
        slow.wait_ready()
        yield fast, slow


def _fast(server: ServerThread) -> _Counted:
    counted = server.app.state.mooring.door.fast
    assert isinstance(counted, _Counted)
    return counted


def _in_flight(server: ServerThread) -> int:
    return int(server.app.state.mooring.admission.in_flight)


def _receiving(server: ServerThread) -> int:
    return int(server.app.state.mooring.admission.receiving)


def _until_none_in_flight(server: ServerThread) -> None:
    door = server.app.state.mooring.door
    admission = door.admission
    wait_until(lambda: admission.counts() == (0, 0, 0),
               "every request's permit and body bytes to be freed and none receiving",
               seen=admission.counts)  # fmt: skip


@contextmanager
def _body_timeout(server: ServerThread, seconds: float) -> Iterator[None]:
    """The door's body timeout set to ``seconds`` meanwhile (the fixture's is minutes)."""
    door = server.app.state.mooring.door
    limits = door.limits
    door.limits = limits.model_copy(update={"body_timeout_s": seconds})
    try:
        yield
    finally:
        door.limits = limits


_value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(-(10**6), 10**6),
    st.text(max_size=8),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=2),
)
_row = st.fixed_dictionaries(
    {"age": _value, "hours-per-week": _value, "workclass": _value, "sex": _value}
) | st.dictionaries(st.sampled_from(["age", "sex", "zip", "hours-per-week"]), _value, max_size=4)
_v1_body = st.one_of(
    st.builds(lambda rows: {"instances": rows}, st.lists(_row, max_size=3)),
    st.builds(
        lambda cols: {"inputs": cols},
        st.dictionaries(st.sampled_from(["age", "sex", "workclass"]), st.lists(_value, max_size=2)),
    ),
    st.builds(
        lambda rows: {"instances": rows, "signature_name": "other"}, st.lists(_row, max_size=1)
    ),
    st.just([1, 2]),
)
_v2_body = st.builds(
    lambda tensors: {"inputs": tensors},
    st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["age", "hours-per-week", "workclass", "sex", "zip"]),
                "shape": st.lists(st.integers(0, 2), min_size=1, max_size=2),
                "datatype": st.sampled_from(["FP32", "BYTES", "INT64"]),
                "data": st.lists(_value, max_size=2),
            }
        ),
        max_size=5,
    ),
)
_path = st.sampled_from(
    [
        PREDICT,
        f"/v1/models/{NAME}/versions/1:predict",
        f"/v1/models/{NAME}/versions/7:predict",
        f"/v1/models/{NAME}/labels/canary:predict",
        f"/v1/models/{NAME}:classify",
        "/v1/models/nope:predict",
        f"{PREDICT}?x=1",
    ]
)


def _same(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.content == slow.content
    for name in ("content-type", "content-length", "x-client-request-id", "x-model-version"):
        assert fast.headers.get(name) == slow.headers.get(name), name
    assert len(fast.headers["x-request-id"]) == len(slow.headers["x-request-id"]) == 32
    assert fast.status_code < 500


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=_path,
    body=st.one_of(_v1_body.map(orjson.dumps), st.binary(max_size=40), st.just(b"")),
)
def test_a_tf_serving_request_is_answered_as_asgi_answers_it(
    both: tuple[ServerThread, ServerThread], path: str, body: bytes
) -> None:
    fast, slow = both
    served = _fast(fast).served
    headers = {"Content-Type": "application/json", "X-Request-Id": "same-id"}
    _same(
        fast.client.post(path, content=body, headers=headers),
        slow.client.post(path, content=body, headers=headers),
    )
    assert _fast(fast).served == served + 1  # it took the fast path


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_v2_body.map(orjson.dumps), version=st.sampled_from(["", "/versions/1", "/versions/3"]))
def test_an_open_inference_request_is_answered_as_asgi_answers_it(
    both: tuple[ServerThread, ServerThread], body: bytes, version: str
) -> None:
    fast, slow = both
    path = f"/v2/models/{NAME}{version}/infer"
    headers = {"Content-Type": "application/json", "X-Request-Id": "same-id"}
    _same(
        fast.client.post(path, content=body, headers=headers),
        slow.client.post(path, content=body, headers=headers),
    )


def test_what_the_fast_path_does_not_take_is_answered_through_asgi(
    both: tuple[ServerThread, ServerThread],
) -> None:
    """Chunked and oversized bodies and 100-continue: answered as before, and none of
    them reaches the fast path. A percent-encoded path does: its route was matched on
    the decoded path as its headers ended."""
    fast, slow = both
    counted = _fast(fast)
    served = counted.served
    for server in (fast, slow):
        with RawConnection(server.port) as conn:
            # A chunked body.
            conn.send(
                f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n{len(BODY):x}\r\n".encode()
                + BODY
                + b"\r\n0\r\n\r\n"
            )
            assert conn.answer()[0] == 200
            # A body past the limit: refused before it is read.
            conn.send(
                f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\n".encode()
            )
            status, _, body = conn.answer()
            assert status == 413 and b"4096" in body
        with RawConnection(server.port) as conn:
            # Expect: 100-continue gets its interim answer, then the answer.
            conn.send(raw_request("POST", PREDICT, b"", Expect="100-continue")[:-4]
                      .replace(b"Content-Length: 0", b"Content-Length: %d" % len(BODY))
                      + b"\r\n\r\n")  # fmt: skip
            assert conn.answer()[0] == 100
            conn.send(BODY)
            assert conn.answer()[0] == 200
        with RawConnection(server.port) as conn:
            conn.send(raw_request("POST", f"/v1/models/{NAME.replace('e', '%65')}:predict", BODY))
            assert conn.answer()[0] == 200
    assert counted.served == served + 1  # the percent-encoded one, on the fast server


def test_keep_alive_pipelining_and_a_body_in_pieces(
    both: tuple[ServerThread, ServerThread],
) -> None:
    fast, _ = both
    counted = _fast(fast)
    served = counted.served
    with RawConnection(fast.port) as conn:
        for _ in range(3):  # one connection, one request after another
            conn.send(raw_request("POST", PREDICT, BODY))
            status, headers, body = conn.answer()
            assert status == 200 and json.loads(body)["predictions"]
            assert headers["content-length"] == str(len(body)) and "connection" not in headers
        # Three requests in one write: a prediction, metadata, a prediction; in order.
        conn.send(
            raw_request("POST", PREDICT, BODY, X_Request_Id="p1")
            + raw_request("GET", f"/v1/models/{NAME}/metadata")
            + raw_request("POST", PREDICT, BODY, X_Request_Id="p2")
        )
        first, meta, second = conn.answer(), conn.answer(), conn.answer()
        assert first[1]["x-client-request-id"] == "p1" and second[1]["x-client-request-id"] == "p2"
        assert meta[0] == 200 and "metadata" in json.loads(meta[2])
        # A body that arrives ten bytes at a time.
        request = raw_request("POST", PREDICT, BODY, X_Request_Id="slow")
        head, body = request[: -len(BODY)], BODY
        conn.send(head)
        for start in range(0, len(body), 10):
            time.sleep(0.005)
            conn.send(body[start : start + 10])
        status, headers, _ = conn.answer()
        assert status == 200 and headers["x-client-request-id"] == "slow"
    assert counted.served >= served + 5
    _until_none_in_flight(fast)


def test_an_http_1_0_request_is_answered_and_the_connection_closed(
    both: tuple[ServerThread, ServerThread],
) -> None:
    fast, _ = both
    served = _fast(fast).served
    with RawConnection(fast.port) as conn:
        conn.send(raw_request("POST", PREDICT, BODY).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        status, headers, _ = conn.answer()
        assert status == 200 and headers["connection"] == "close"
        assert conn.closed()
    with RawConnection(fast.port) as conn:  # HTTP/1.1 asking to close
        conn.send(raw_request("POST", PREDICT, BODY, Connection="close"))
        status, headers, _ = conn.answer()
        assert status == 200 and headers["connection"] == "close"
        assert conn.closed()
    assert _fast(fast).served == served + 2


def test_a_client_that_leaves_mid_body_is_counted_499_and_frees_its_slot(
    both: tuple[ServerThread, ServerThread],
) -> None:
    fast, _ = both
    counted = _fast(fast)
    # Counted under its model, as the ASGI road counts it.
    before, lost = request_statuses(fast, NAME).get("499", 0.0), counted.lost_count
    request = raw_request("POST", PREDICT, BODY)
    sock = socket.create_connection(("127.0.0.1", fast.port))
    sock.sendall(request[: len(request) - 5])  # all but the body's last bytes
    # Its body is incomplete: receiving, not yet holding an inference permit.
    wait_until(lambda: _receiving(fast) == 1, "the request to be receiving its body",
               seen=lambda: (_receiving(fast), _in_flight(fast)))  # fmt: skip
    assert _in_flight(fast) == 0
    sock.close()
    wait_until(
        lambda: request_statuses(fast, NAME).get("499", 0.0) == before + 1,
        "the abandoned request to be counted 499",
        seen=lambda: request_statuses(fast),
    )
    assert counted.lost_count == lost + 1
    _until_none_in_flight(fast)


def test_a_body_that_stops_arriving_is_cut_off_and_counted_499(
    both: tuple[ServerThread, ServerThread],
) -> None:
    """As through ASGI: the connection is closed after body_timeout_s (1 s here), the
    request counted as the client's (499), never as a 5xx."""
    fast, _ = both
    before = request_statuses(fast)
    lost = _fast(fast).lost_count
    with _body_timeout(fast, 1.0), RawConnection(fast.port) as conn:
        conn.send(raw_request("POST", PREDICT, BODY)[:-5])
        # Nothing of it was answered yet: the door says why it closes.
        status, headers, _ = conn.answer()
        assert (status, headers["connection"]) == (408, "close")
        assert conn.closed()
    wait_until(
        lambda: request_statuses(fast).get("499", 0.0) == before.get("499", 0.0) + 1,
        "the cut-off request to be counted 499",
        seen=lambda: request_statuses(fast),
    )
    after = request_statuses(fast)
    assert not any(k.startswith("5") and after[k] != before.get(k, 0.0) for k in after)
    assert _fast(fast).lost_count == lost + 1
    _until_none_in_flight(fast)


def test_a_fast_path_that_fails_answers_500_and_frees_its_slot(
    model_dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The app's handler answers every error it knows; past it, the door's last guard."""

    class Broken(_Counted):
        async def serve(self, request: Request, client: str | None) -> Any:
            raise RuntimeError("the handler broke")

    with _server(model_dirs, fast=True) as server:
        server.wait_ready()
        door = server.app.state.mooring.door
        admission = door.admission
        door.fast = Broken(door.fast.inner)
        with RawConnection(server.port) as conn:
            conn.send(raw_request("POST", PREDICT, BODY))
            status, headers, body = conn.answer()
            assert status == 500 and headers["connection"] == "close"
            assert json.loads(body) == {"error": "internal error"}
            assert conn.closed()
        assert admission.in_flight == 0
        # Probes still answer.
        assert server.client.get("/v2/health/ready").status_code == 200
    assert "a prediction failed outside its handler" in caplog.text
