"""HTTP hygiene at the door, probed as an attacker would: over raw sockets, on a real server.

* ``Host`` is required on HTTP/1.1 (RFC 9112 §3.2): 400 and close, on every road.
* A transfer coding other than ``chunked`` alone is not implemented (RFC 9112 §6.1): 501.
* ``Transfer-Encoding`` with ``Content-Length`` (a smuggling shape) stays refused: 400.
* ``Upgrade`` is ignored (RFC 9110 §7.8): the request is answered with its body, then the
  connection closes.
* A client that half-closes after its requests gets their answers, then the close.
* A client that leaves (pipelined requests unanswered, a body half sent) is no error: no
  traceback in the log, and the next client is answered as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mooring.config import ServingConfig
from mooring.serving import DirectorySource, Server, build_app
from mooring.serving._door import Door
from mooring.serving._endpoints import ROUTES
from tests._support.serve_process import RawConnection, raw_request
from tests._support.server import NAME, ServerThread, free_port
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

PREDICT = f"/v1/models/{NAME}:predict"
BODY = orjson.dumps({"instances": [row()]})
LOGGERS = ("mooring.serving",)


@pytest.fixture(scope="module")
def served(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    cfg = ServingConfig(
        warmup_requests=1,
        deadline_ms=PATIENCE * 1000,
        header_timeout_s=PATIENCE,
        body_timeout_s=PATIENCE,
    )
    with ServerThread(build_app([DirectorySource(model_dirs["a"], NAME)], cfg)) as server:
        server.wait_ready()
        yield server


def _head(method: str, path: str, *lines: str, version: str = "1.1") -> bytes:
    return ("\r\n".join([f"{method} {path} HTTP/{version}", *lines]) + "\r\n\r\n").encode()


def _post(*lines: str, version: str = "1.1", body: bytes = BODY) -> bytes:
    length = f"Content-Length: {len(body)}"
    return _head("POST", PREDICT, "Content-Type: application/json", length, *lines,
                 version=version) + body  # fmt: skip


def _refused_and_closed(conn: RawConnection, status: int) -> str:
    """The answer's error, after checking its status and that the connection then closed."""
    got, headers, body = conn.answer()
    assert (got, headers.get("connection")) == (status, "close"), body
    assert conn.closed()
    error: str = orjson.loads(body)["error"]
    return error


# -- Host ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(_post(), id="prediction (the fast path)"),
        pytest.param(_head("GET", f"/v1/models/{NAME}"), id="metadata (ASGI)"),
        pytest.param(_post("Expect: 100-continue"), id="prediction (ASGI)"),
    ],
)
def test_http11_without_host_is_400_on_every_road(
    served: ServerThread, request_bytes: bytes
) -> None:
    with RawConnection(served.port) as conn:
        conn.send(request_bytes)
        error = _refused_and_closed(conn, 400)
    assert "no Host header" in error and "send a single Host" in error


def test_two_host_headers_are_400(served: ServerThread) -> None:
    with RawConnection(served.port) as conn:
        conn.send(_post("Host: a", "Host: b"))
        error = _refused_and_closed(conn, 400)
    assert "2 Host headers" in error


@pytest.mark.parametrize(
    "host",
    ["a b", "x/y", "user@host", "h:80:81", "h:port", "<script>", "[::1", "é.example", "a\tb"],
)
def test_an_invalid_host_is_400(served: ServerThread, host: str) -> None:
    with RawConnection(served.port) as conn:
        conn.send(_post(f"Host: {host}"))
        error = _refused_and_closed(conn, 400)
    assert "is not a host name or address" in error and "Host: <host>[:<port>]" in error


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8501", "[::1]:8501", "model-server.internal", "h:", "", "xn--bcher-kva.de"]
)
def test_a_valid_host_is_served(served: ServerThread, host: str) -> None:
    with RawConnection(served.port) as conn:
        conn.send(_post(f"Host: {host}"))
        status, _, body = conn.answer()
    assert status == 200, (host, body)


# -- Upgrade -------------------------------------------------------------------------------
_H2C = ("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__")


@pytest.mark.parametrize("road", ["fast path", "asgi"])
def test_a_prediction_asking_for_an_upgrade_is_answered_with_its_body(
    served: ServerThread, road: str
) -> None:
    """``curl --http2`` on http:// sends a POST with ``Upgrade: h2c``: the parser stops at
    its headers, and the door reads the body itself; the answer is HTTP/1.1, then close."""
    extra = ("Expect: 100-continue",) if road == "asgi" else ()
    request = _post("Host: t", *_H2C, *extra)
    with RawConnection(served.port) as conn:
        conn.send(request[:-7])
        conn.send(request[-7:])
        status, headers, body = conn.answer()
        if status == 100:
            status, headers, body = conn.answer()
        assert status == 200, body
        assert len(orjson.loads(body)["predictions"]) == 1
        assert headers["connection"] == "close" and conn.closed()


@pytest.mark.parametrize("road", ["fast path", "asgi"])
def test_a_client_that_half_closes_after_its_requests_gets_every_answer(
    served: ServerThread, road: str
) -> None:
    """``printf … | nc -N`` sends its requests, then shuts its side: each is answered,
    then the server closes."""
    extra = ("Expect: 100-continue",) if road == "asgi" else ()
    with RawConnection(served.port) as conn:
        conn.send(_post("Host: t", *extra) + raw_request("GET", "/v2/health/live"))
        conn.sock.shutdown(socket.SHUT_WR)
        statuses = [conn.answer()[0] for _ in range(3 if extra else 2)]
        assert statuses[-2:] == [200, 200] and conn.closed()


def test_an_upgrade_with_a_chunked_body_is_400(served: ServerThread) -> None:
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    with RawConnection(served.port) as conn:
        conn.send(_head("POST", PREDICT, "Host: t", "Transfer-Encoding: chunked", *_H2C) + body)
        error = _refused_and_closed(conn, 400)
    assert "Upgrade" in error and "Content-Length" in error


def test_http10_without_host_is_still_answered(served: ServerThread) -> None:
    with RawConnection(served.port) as conn:
        conn.send(_post(version="1.0"))
        status, _, body = conn.answer()
    assert status == 200, body


def test_a_pipelined_request_without_host_is_refused_in_turn(served: ServerThread) -> None:
    """The requests ahead are answered first; the connection ends with the refusal."""
    with RawConnection(served.port) as conn:
        conn.send(
            raw_request("POST", PREDICT, BODY) * 2 + _post() + raw_request("POST", PREDICT, BODY)
        )
        assert [conn.answer()[0] for _ in range(2)] == [200, 200]
        assert "no Host header" in _refused_and_closed(conn, 400)


# -- Transfer-Encoding ---------------------------------------------------------------------
def _chunked(coding: str, *extra: str) -> bytes:
    head = _head("POST", PREDICT, "Host: t", "Content-Type: application/json",
                 f"Transfer-Encoding: {coding}", *extra)  # fmt: skip
    return head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)


@pytest.mark.parametrize("coding", ["gzip, chunked", "identity", "br", "gzip"])
def test_an_unknown_transfer_coding_is_501(served: ServerThread, coding: str) -> None:
    with RawConnection(served.port) as conn:
        conn.send(_chunked(coding))
        error = _refused_and_closed(conn, 501)
    assert f"Transfer-Encoding {coding!r}" in error
    assert "chunked alone, or with a Content-Length" in error


def test_two_transfer_encoding_headers_are_read_as_one_list(served: ServerThread) -> None:
    with RawConnection(served.port) as conn:
        conn.send(_chunked("gzip", "Transfer-Encoding: chunked"))
        assert "'gzip, chunked'" in _refused_and_closed(conn, 501)


@pytest.mark.parametrize("coding", ["chunked, gzip", "chunked, chunked"])
def test_chunked_not_last_is_400(served: ServerThread, coding: str) -> None:
    """RFC 9112 §6.3: a body whose length cannot be read is a 400 (the parser's refusal)."""
    with RawConnection(served.port) as conn:
        conn.send(_chunked(coding))
        error = _refused_and_closed(conn, 400)
    assert "chunked must be its last coding" in error


@pytest.mark.parametrize("coding", ["chunked", "Chunked"])
def test_chunked_alone_is_answered(served: ServerThread, coding: str) -> None:
    with RawConnection(served.port) as conn:
        conn.send(_chunked(coding))
        status, _, body = conn.answer()
    assert status == 200, body


@pytest.mark.parametrize("first", ["Transfer-Encoding", "Content-Length"])
def test_transfer_encoding_with_content_length_stays_refused(
    served: ServerThread, first: str
) -> None:
    lines = [f"Content-Length: {len(BODY) + 5}", "Transfer-Encoding: chunked"]
    if first == "Transfer-Encoding":
        lines.reverse()
    with RawConnection(served.port) as conn:
        conn.send(
            _head("POST", PREDICT, "Host: t", *lines) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
        )
        error = _refused_and_closed(conn, 400)
    assert "both Transfer-Encoding and Content-Length" in error


# -- clients that leave --------------------------------------------------------------------
class _Records(logging.Handler):
    """Every record of the loggers the server writes to, while in a ``with``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> _Records:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.INFO)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self)
            logging.getLogger(name).setLevel(self._levels[name])

    def troubles(self) -> list[str]:
        """Records above INFO or with a traceback, as text."""
        return [
            f"{r.name} {r.levelname}: {r.getMessage()}"
            for r in self.records
            if r.levelno > logging.INFO or r.exc_info
        ]


def _gone(sock: socket.socket) -> None:
    """Leave for good: close with a reset (a FIN alone is a half-close, whose client still
    reads its answers)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _settled(door: Door) -> bool:
    admission = door.admission
    return not door.connections and admission.in_flight == 0 and admission.receiving == 0


class _HeldPredictions:
    """An ASGI app whose predictions wait for the test (:meth:`go`); it counts the requests
    it has begun (:attr:`entered`). Other paths are answered at once."""

    def __init__(self) -> None:
        self.entered = 0
        self._go = threading.Semaphore(0)

    def go(self, count: int) -> None:
        for _ in range(count):
            self._go.release()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        for _ in range(1000):  # the body's parts
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body"):
                break
        if scope["path"].endswith(":predict"):
            self.entered += 1
            if not await asyncio.to_thread(self._go.acquire, timeout=PATIENCE):
                raise RuntimeError("the test never let the answer go")
        body = b'{"predictions": [1]}'
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def _held_server() -> Iterator[tuple[_HeldPredictions, Door, Server]]:
    app = _HeldPredictions()
    door = Door(routes=ROUTES)
    server = Server(app, host="127.0.0.1", port=free_port(), door=door)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server to start", seen=thread.is_alive)
        yield app, door, server
    finally:
        app.go(64)
        server.should_exit = True
        thread.join(timeout=PATIENCE)


@pytest.mark.parametrize("leaving", ["reset", "close"])
@pytest.mark.parametrize("last", ["whole", "half a body"])
def test_a_client_leaving_its_pipelined_predictions_logs_no_traceback(
    last: str, leaving: str
) -> None:
    """The answer of a request whose client left with more requests sent behind it is
    dropped instead of written to the closed socket. A reset is seen at once: those
    behind never run. A close without one (a FIN) reads as a half-close until the first
    answer is written and the client's end resets."""
    whole = raw_request("POST", "/v1/models/m:predict", b"{}")
    tail = whole if last == "whole" else whole[:-1]
    with _held_server() as (app, door, server), _Records() as log:
        port = server.port
        sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        sock.sendall(whole * 2 + tail)
        wait_until(lambda: app.entered == 1, "the first to be answered", seen=lambda: app.entered)
        if leaving == "reset":
            _gone(sock)
            wait_until(lambda: not door.connections, "the server to see it gone")
        else:
            sock.close()
        app.go(3)
        wait_until(
            lambda: _settled(door),
            "the connection's tasks to end",
            seen=lambda: door.admission.in_flight,
        )
        # A reset: the ones behind it were dropped. A FIN: the first answer is written to
        # the closed end, which resets, and the second, begun meanwhile, is the last.
        assert app.entered == 1 if leaving == "reset" else app.entered <= 2
        with RawConnection(port) as conn:
            conn.send(whole)
            app.go(1)
            assert conn.answer()[0] == 200
        wait_until(lambda: door.admission.in_flight == 0, "the next client's permit to be freed")
    assert log.troubles() == []


def test_a_client_leaving_mid_body_logs_no_traceback() -> None:
    whole = raw_request("POST", "/v1/models/m:predict", BODY)
    with _held_server() as (_, door, server), _Records() as log:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
        sock.sendall(whole[:-10])
        # Its body is incomplete: receiving, not yet holding an inference permit.
        wait_until(lambda: door.admission.receiving == 1, "the request to be receiving its body")
        _gone(sock)
        wait_until(lambda: _settled(door), "the connection's tasks to end",
                   seen=door.admission.counts)  # fmt: skip
    assert log.troubles() == []


def test_clients_leaving_a_real_server_log_no_traceback(served: ServerThread) -> None:
    """Pipelined predictions abandoned unread, a body half sent, a pipelined request left
    waiting: each departure is at most an INFO line; the next client is answered."""
    door = served.app.state.mooring.door
    admission = door.admission
    whole = raw_request("POST", PREDICT, orjson.dumps({"instances": [row()] * 50}))
    shapes = [whole * 8, whole[:-10], whole + whole[:-5]]
    with _Records() as log:
        for shape in shapes * 3:
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=PATIENCE)
            sock.sendall(shape)
            _gone(sock)
        with RawConnection(served.port) as conn:
            conn.send(raw_request("POST", PREDICT, BODY))
            assert conn.answer()[0] == 200
        wait_until(
            lambda: not door.connections and admission.in_flight == 0 and admission.receiving == 0,
            "the abandoned requests to end",
            seen=lambda: (len(door.connections), admission.in_flight, admission.receiving),
        )
    assert log.troubles() == []
    departures = [r for r in log.records if "disconnected" in r.getMessage()]
    assert all(r.levelno == logging.INFO for r in departures)
    assert len(departures) <= len(shapes) * 3


@pytest.mark.parametrize("spacing", [" ", "\t", "  "])
def test_whitespace_around_a_content_length_is_not_its_value(
    served: ServerThread, spacing: str
) -> None:
    """RFC 9110 §5.5: optional whitespace around a field value is not part of it; the body
    is read by its length at once (it waited for a read timeout, then got 408)."""
    length = f"Content-Length:{spacing}{len(BODY)}{spacing}"
    with RawConnection(served.port) as conn:
        conn.send(
            _head("POST", PREDICT, "Host: t", "Content-Type: application/json", length) + BODY
        )
        status, _, body = conn.answer()
    assert status == 200, body
