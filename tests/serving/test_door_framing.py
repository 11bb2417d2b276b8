"""The door's framing under generated traffic: however a client's pipelined requests are
cut into reads, each is parsed whole and once, and answered in order; however clients
stop and leave, every permit and body byte the door counted comes back.

The door hands the parser one request at a time (the header block up to its blank line,
then exactly its body; a chunked body line by line), so the places where a read ends
(inside ``\\r\\n\\r\\n``, inside a chunk's size line, between a body and the next
request) are where it could go wrong. A bare ASGI app behind the door echoes what it
received; Hypothesis generates the requests and the cuts.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mooring.config import ServingConfig
from mooring.serving._door import Door
from mooring.serving._endpoints import ROUTES
from tests._support.serve_process import RawConnection
from tests._support.server import ServerThread
from tests._support.waiting import PATIENCE, wait_until


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    echo = {"method": scope["method"], "path": scope["path"],
            "query": scope["query_string"].decode(), "body": body.decode("latin-1")}  # fmt: skip
    if scope["path"] == "/headers":
        echo["headers"] = sorted(name.decode() for name, _ in scope["headers"])
    answer = orjson.dumps(echo)
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with ServerThread(_echo) as server:
        yield server.port


_bodies = st.binary(max_size=400).map(lambda b: b.replace(b"\x00", b"0"))


@st.composite
def _request(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """One request's bytes and the echo it must get."""
    index = draw(st.integers(0, 999))
    path = f"/p/{index}"
    kind = draw(st.sampled_from(["get", "length", "chunked"]))
    extra = draw(st.sampled_from(["", "X-Extra: " + "v" * 50 + "\r\n"]))
    if kind == "get":
        raw = f"GET {path}?q={index} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()
        return raw, {"method": "GET", "path": path, "query": f"q={index}", "body": ""}
    body = draw(_bodies)
    expected = {"method": "POST", "path": path, "query": "", "body": body.decode("latin-1")}
    if kind == "length":
        head = f"POST {path} HTTP/1.1\r\nHost: t\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        return head.encode() + body, expected
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
    return head.encode() + chunks, expected


# Every split and order is explored in memory against the door's core
# (tests/serving/test_door_core.py); over a real socket, a few to show the two halves agree.
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    requests=st.lists(_request(), min_size=1, max_size=6),
    cuts=st.lists(st.floats(0, 1), max_size=8),
)
def test_pipelined_requests_cut_anywhere_are_each_answered_once_in_order(
    port: int, requests: list[tuple[bytes, dict[str, str]]], cuts: list[float]
) -> None:
    data = b"".join(raw for raw, _ in requests)
    points = sorted({int(c * len(data)) for c in cuts} | {0, len(data)})
    with RawConnection(port) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start, stop in itertools.pairwise(points):
            conn.send(data[start:stop])
            time.sleep(0.002)  # separate reads on the server, most of the time
        answers = [conn.answer() for _ in requests]
        with contextlib.suppress(TimeoutError):  # nothing more: each request answered once
            conn.sock.settimeout(0.2)
            assert conn.sock.recv(1) == b""
    for (status, _, body), (_, expected) in zip(answers, requests, strict=True):
        assert status == 200
        assert orjson.loads(body) == expected


def _chunked_head(path: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()


def test_a_trailer_is_never_a_request_header_and_large_chunked_bodies_pass(port: int) -> None:
    body = bytes(range(256)).replace(b"\x00", b"0") * 400  # 100 KiB in 1 KiB chunks
    chunks = b"".join(b"400\r\n%s\r\n" % body[i : i + 1024] for i in range(0, len(body), 1024))
    with RawConnection(port) as conn:
        conn.send(_chunked_head("/headers") + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
        status, _, answer = conn.answer()
    echo = orjson.loads(answer)
    assert status == 200 and echo["body"] == body.decode("latin-1")
    assert "x-trailer" not in echo["headers"] and "host" in echo["headers"]


@pytest.mark.parametrize("flood", ["trailers", "one-byte chunks", "six-byte chunks"])
def test_framing_that_outweighs_its_data_is_refused(port: int, flood: str) -> None:
    # 70 KiB of trailer lines after a 3-byte body, or 20,000 chunks of one byte (5 bytes
    # of framing each), or 3,000 of six (their framing within their data, yet a parse
    # each: 3.9 MiB so cost a worker 2.4 CPU-s): the trailers were kept in memory, and
    # past 1,024 chunks a body must average 512 bytes a chunk.
    if flood == "trailers":
        data = b"3\r\nabc\r\n0\r\n" + b"X-T: %s\r\n" % (b"v" * 100) * 700 + b"\r\n"
        assert "framing" in _refused_chunked(port, data, 400)
        return
    size = 1 if flood == "one-byte chunks" else 6
    data = (b"%x\r\n%s\r\n" % (size, b"x" * size)) * (20_000 // size) + b"0\r\n\r\n"
    error = _refused_chunked(port, data, 400)
    assert re.search(r"came in 1,0[2-4]\d chunks", error), error  # refused near CHUNKS_FREE
    assert "send chunks of at least 512 bytes, or a Content-Length" in error


def _refused_chunked(port: int, data: bytes, status: int) -> str:
    """The error of a chunked body ``data`` refused ``status``, after which the connection
    closed."""
    with RawConnection(port) as conn:
        conn.send(_chunked_head("/p/1") + data)
        got, headers, answer = conn.answer()
        assert got == status and headers["connection"] == "close", answer
        assert conn.closed()
    error: str = orjson.loads(answer)["error"]
    return error


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(b"ffffffffffffffff\r\nabc", id="one chunk of 2^64-1 bytes"),
        pytest.param(b"200000;x=1\r\n" + b"a" * 0x200000 + b"\r\n300000\r\n", id="two past 4 MiB"),
    ],
)
def test_a_chunk_past_the_body_limit_is_413_at_its_size_line(port: int, chunks: bytes) -> None:
    """The size line says it all: 413 then, not a wait for data that would pass the
    4 MiB limit anyway (an absurd size held the read to its timeout, then 408)."""
    assert "above the limit of 4194304 bytes" in _refused_chunked(port, chunks, 413)


@pytest.fixture(scope="module")
def budgeted() -> Iterator[ServerThread]:
    """The echo app behind a door with small limits: two permits, a 1 KiB body budget,
    4 KiB bodies; read timeouts far longer than any example takes."""
    limits = ServingConfig(max_in_flight=2, body_budget_bytes=1024, body_limit_bytes=4096,
                        min_body_rate_bytes_s=0, header_timeout_s=PATIENCE,
                        body_timeout_s=PATIENCE)  # fmt: skip
    with ServerThread(_echo, door=Door(limits, routes=ROUTES)) as server:
        yield server


@st.composite
def _prediction(draw: st.DrawFn) -> bytes:
    """A prediction of 0-4 KiB by Content-Length, or 0-5 KiB chunked (past the limit: 413
    at a size line)."""
    path = b"POST /v1/models/m:predict HTTP/1.1\r\nHost: t\r\n"
    if draw(st.booleans()):
        body = b"x" * draw(st.integers(0, 4096))
        return path + b"Content-Length: %d\r\n\r\n" % len(body) + body
    sizes = draw(st.lists(st.integers(1, 3000), max_size=3))
    chunks = b"".join(b"%x\r\n%s\r\n" % (n, b"y" * n) for n in sizes)
    return path + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


@settings(  # any order of events on one connection: tests/serving/test_door_core.py, in memory
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clients=st.lists(
        st.tuples(st.lists(_prediction(), min_size=1, max_size=3), st.floats(0, 1), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_every_permit_and_body_byte_comes_back_whatever_the_clients_do(
    budgeted: ServerThread, clients: list[tuple[list[bytes], float, bool]]
) -> None:
    """Clients pipelining predictions at once, each stopping anywhere and then leaving or
    finishing: each answer is 200, 413 or 503, and once they are gone the door holds no
    permit, no receiving count and no body byte (a leak would refuse every later body)."""
    conns = [RawConnection(budgeted.port) for _ in clients]
    try:
        for conn, (requests, cut, _) in zip(conns, clients, strict=True):
            data = b"".join(requests)
            conn.send(data[: int(cut * len(data))])
        for conn, (requests, cut, leaves) in zip(conns, clients, strict=True):
            if leaves:
                conn.sock.close()
                continue
            data = b"".join(requests)
            conn.send(data[int(cut * len(data)) :])
            for _ in requests:
                try:
                    status, headers, _ = conn.answer()
                except ConnectionError:
                    break  # closed after a refusal that ends the connection
                assert status in (200, 413, 503), status
                if headers.get("connection") == "close":
                    break
    finally:
        for conn in conns:
            conn.sock.close()
    door = budgeted.server.door
    admission = door.admission
    # Back within milliseconds of the last close; 30 s, not the suite's patience, so a
    # leak fails each of Hypothesis' shrinking examples in reasonable time.
    wait_until(lambda: admission.counts() == (0, 0, 0),
               "every permit, receiving count and body byte back", timeout=30,
               seen=admission.counts)  # fmt: skip
