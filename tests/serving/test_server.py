"""The server (serving/_server.py) and the door's HTTP/1.1 framing, with any ASGI app.

Real servers on 127.0.0.1 in a thread, real sockets: the app's lifespan, a graceful stop
that answers the request under way, HEAD, streamed (chunked) answers, HTTP/1.0, and the
header size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mooring.errors import UsageError
from mooring.serving import Server
from tests._support.serve_process import RawConnection, raw_request
from tests._support.server import free_port
from tests._support.waiting import PATIENCE, wait_until


class _Gate:
    """Holds ``/slow`` until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()


def _app(gate: _Gate, events: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hello"}
        events.append("shutdown")

    async def state(request: Request) -> Response:
        return JSONResponse({"greeting": request.state.greeting})

    async def slow(request: Request) -> Response:
        gate.entered.set()
        await asyncio.to_thread(gate.open.wait, PATIENCE)
        return JSONResponse({"done": True})

    async def stream(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                yield part

        return StreamingResponse(parts(), media_type="text/plain")

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    routes = [
        Route("/state", state),
        Route("/slow", slow),
        Route("/stream", stream),
        Route("/echo", echo, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


@contextlib.contextmanager
def _serving(app: Any, **options: Any) -> Iterator[tuple[Server, threading.Thread]]:
    server = Server(app, host="127.0.0.1", port=free_port(), **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server to listen", seen=thread.is_alive)
        yield server, thread
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE)


def test_the_lifespan_runs_around_serving_and_its_state_reaches_requests() -> None:
    events: list[str] = []
    with _serving(_app(_Gate(), events)) as (server, thread):
        assert events == ["startup"]
        answer = httpx.get(f"http://127.0.0.1:{server.port}/state", timeout=PATIENCE)
        assert answer.json() == {"greeting": "hello"}
        assert answer.headers["date"].endswith("GMT")
    assert not thread.is_alive()
    assert events == ["startup", "shutdown"]


def test_a_graceful_stop_answers_the_request_under_way_then_listens_no_more() -> None:
    gate = _Gate()
    with _serving(_app(gate, []), graceful_s=PATIENCE) as (server, thread):
        port = server.port
        with RawConnection(port) as conn:
            conn.send(raw_request("GET", "/slow"))
            assert gate.entered.wait(PATIENCE)
            server.should_exit = True
            # The listener closes first: a new client is refused while the old one waits.
            wait_until(lambda: _refused(port), "the port to close")
            assert thread.is_alive()
            gate.open.set()
            status, headers, body = conn.answer()
            assert (status, body) == (200, b'{"done":true}')
            assert headers["connection"] == "close"
        thread.join(timeout=PATIENCE)
        assert not thread.is_alive()


def test_a_graceful_stop_reads_a_body_under_way_to_its_end() -> None:
    with _serving(_app(_Gate(), []), graceful_s=PATIENCE) as (server, thread):
        with RawConnection(server.port) as conn:
            request = raw_request("POST", "/echo", b"0123456789")
            conn.send(request[:-4])
            wait_until(lambda: server.door.busy() == 1, "the body to be under way")
            server.should_exit = True
            wait_until(lambda: _refused(server.port), "the port to close")
            conn.send(request[-4:])
            status, headers, body = conn.answer()
        assert (status, body, headers["connection"]) == (200, b"0123456789", "close")
        thread.join(timeout=PATIENCE)
        assert not thread.is_alive()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # queued as the listener closed: ask again
        return False
    return False


def test_an_app_whose_startup_fails_stops_the_server_with_its_error() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("the model folder is missing")
        yield

    server = Server(Starlette(lifespan=lifespan), port=free_port())
    with pytest.raises(RuntimeError, match="the model folder is missing"):
        server.run()
    assert not server.started


def test_a_port_taken_after_the_preflight_is_a_usage_error_naming_it() -> None:
    # `mooring serve` checks its port before loading the model; another process may
    # listen there while it loads: the bind then fails, and says so as a user's error.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(_app(_Gate(), []), port=port)
        with pytest.raises(UsageError, match=rf"port {port} on 127.0.0.1 is in use .*--port N"):
            server.run()
    assert not server.started


def test_an_app_without_a_lifespan_is_served() -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("only http")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with _serving(bare) as (server, _):
        assert httpx.get(f"http://127.0.0.1:{server.port}/", timeout=PATIENCE).status_code == 204


def test_answers_are_framed_as_http_1_1_says() -> None:
    with _serving(_app(_Gate(), [])) as (server, _):
        url = f"http://127.0.0.1:{server.port}"
        # A streamed answer (no Content-Length) goes chunked, and the connection is kept.
        with httpx.Client(base_url=url, timeout=PATIENCE) as client:
            streamed = client.get("/stream")
            assert streamed.text == "one,two,three"
            assert streamed.headers["transfer-encoding"] == "chunked"
            assert client.post("/echo", content=b"x" * 100_000).content == b"x" * 100_000
        with RawConnection(server.port) as conn:
            # HEAD: the head alone, no body bytes (the next answer follows at once).
            conn.send(raw_request("HEAD", "/state") + raw_request("GET", "/state"))
            conn.sock.settimeout(PATIENCE)
            got = b""
            while got.count(b"HTTP/1.1 200") < 2 or not got.endswith(b'"hello"}'):
                chunk = conn.sock.recv(65536)
                assert chunk, got
                got += chunk
            first, second = got.split(b"HTTP/1.1 200", 2)[1:]
            assert first.endswith(b"\r\n\r\n") and b"content-length: 20" in first
            assert second.endswith(b'\r\n\r\n{"greeting":"hello"}')
        # HTTP/1.0 without Content-Length: the body ends with the connection.
        with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock:
            sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"one,two,three")
        assert b"connection: close" in data and b"chunked" not in data


def test_a_header_block_past_the_limit_is_refused_431() -> None:
    with (
        _serving(_app(_Gate(), [])) as (server, _),
        socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock,
    ):
        sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n")
        filler = b"x-filler: " + b"a" * 1000 + b"\r\n"
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for _ in range(80):  # 80 KB of headers, never ended
                sock.sendall(filler)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 431"), data[:200]
    assert b"headers are above 64 KiB" in data
