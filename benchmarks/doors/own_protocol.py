"""Candidate C: a door of our own, an ``asyncio.Protocol`` on httptools' public parser.

No uvicorn class is used: ``httptools.HttpRequestParser`` parses, ``loop.create_server``
serves (uvloop or asyncio). Per connection:

* **One request at a time.** The parser is handed bytes only up to the end of the
  current request: the header block up to its ``\\r\\n\\r\\n``, then exactly the
  ``Content-Length`` of body (a chunked body line by line, so its end, always a line's
  end, is never overrun). Once a request is complete nothing more is parsed until it
  is answered; bytes that arrive meanwhile are kept as they are (one read at most) and
  reading is paused, so the rest of a pipeline waits in the kernel; kept bytes are
  consumed by offset. Memory per connection: one read plus one request.
* **Admission after the body.** A complete request takes one of ``max_in_flight``
  slots (per process) until its answer is written; none free: ``503`` +
  ``Retry-After`` + ``Connection: close``. A slow body holds no slot.
* **Read timeouts.** Headers within ``header_timeout_s`` of their first byte (or of the
  connection's opening), the body within ``body_grace_s + length / min_body_rate``
  (a chunked body: of the bytes so far), at most ``body_timeout_s``; else ``408`` and
  close. An idle keep-alive connection closes after ``keep_alive_s``. One timer per
  process sweeps the deadlines every 0.25 s. Past ``max_connections``: ``503``, close.
* **Then** an ASGI app (Starlette works) or a direct handler ``handler(request) ->
  (status, body)`` (or an awaitable of it).

Left out of the prototype: Host/Transfer-Encoding hygiene beyond what llhttp refuses,
upgrades (answered, then closed), trailers, HTTP/1.0 chunked answers (closed instead).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

log = logging.getLogger("own_protocol")

HEAD_LIMIT = 64 * 1024
SWEEP_S = 0.25
_HEAD, _BODY, _DONE = 0, 1, 2


@dataclass(frozen=True)
class ProtocolLimits:
    max_in_flight: int = 32
    max_connections: int = 4096
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    body_grace_s: float = 2.0
    min_body_rate_bytes_s: float = 1024.0
    body_timeout_s: float = 30.0
    body_limit_bytes: int = 4 * 1024 * 1024
    retry_after_s: int = 1


@dataclass
class Request:
    url: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list)
    method: bytes = b""
    keep_alive: bool = True
    http_version: str = "1.1"
    declared: int = -1
    got: int = 0


def frame(status: int, body: bytes, *, close: bool, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer with a JSON body."""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s%s\r\n%s"
        % (
            status,
            HTTPStatus(status).phrase.encode(),
            len(body),
            extra,
            b"connection: close\r\n" if close else b"",
            body,
        )
    )


class Server:
    """What the connections of one process share: the slot count, the deadline sweeper."""

    def __init__(
        self, limits: ProtocolLimits | None = None, *, app: Any = None, handler: Any = None
    ) -> None:
        self.limits = limits or ProtocolLimits()
        self.app = app
        self.handler = handler
        self.in_flight = 0
        self.refused = {"in_flight": 0, "connections": 0, "read_timeout": 0, "malformed": 0}
        self.connections: set[Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.full = frame(
            503,
            b'{"error": "%d requests in flight; retry after %d s"}'
            % (self.limits.max_in_flight, self.limits.retry_after_s),
            close=True,
            extra=b"retry-after: %d\r\n" % self.limits.retry_after_s,
        )

    def __call__(self) -> Connection:  # the protocol factory of loop.create_server
        return Connection(self)

    def watch(self, connection: Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.connections.add(connection)
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP_S, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for connection in list(self.connections):
            if connection.deadline is not None and connection.deadline < now:
                connection.timed_out()
        self._sweeper = loop.call_later(SWEEP_S, self._sweep, loop) if self.connections else None


class Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.limits = server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.buf: bytes = b""
        self.off = 0
        self.tail = b""  # the last bytes fed (a \r\n\r\n or \r\n may straddle two reads)
        self.state = _HEAD
        self.req = Request()
        self.head_bytes = 0
        self.answering = False
        self.paused = False
        self.closed = False
        self.idle = False  # the deadline is a keep-alive's (close quietly)
        self.deadline: float | None = None
        self._body_at = 0.0
        self.processing = False  # inside _process: an answer given at once does not recurse
        self.lost: asyncio.Future[None] | None = None
        self.drained: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        if len(server.connections) >= self.limits.max_connections:
            server.refused["connections"] += 1
            transport.write(frame(503, b'{"error": "too many connections"}', close=True))
            transport.close()
            self.closed = True
            return
        self.deadline = time.monotonic() + self.limits.header_timeout_s
        server.watch(self, asyncio.get_running_loop())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.deadline = None
        self.server.connections.discard(self)
        self.buf = b""
        for waiter in (self.lost, self.drained):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.off < len(self.buf):
            self.buf = self.buf[self.off :] + data
        else:
            self.buf = data
        self.off = 0
        if self.answering:  # a complete request waits for its answer: keep, read no more
            self._pause()
            return
        self._process()

    # -- reading ----------------------------------------------------------------------
    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def _process(self) -> None:
        self.processing = True
        try:
            self._consume()
        finally:
            self.processing = False
        if not self.answering and self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def _consume(self) -> None:
        buf = self.buf
        while not self.answering and not self.closed and self.off < len(buf):
            off = self.off
            if self.state == _HEAD:
                stop = self._head_end(buf, off)
                if stop < 0:
                    self.head_bytes += len(buf) - off
                    if self.head_bytes > HEAD_LIMIT:
                        self._reject(431, b'{"error": "headers too large"}')
                        return
                    stop = len(buf)
            elif self.req.declared >= 0:
                stop = off + min(self.req.declared - self.req.got, len(buf) - off)
            else:
                stop = self._line_end(buf, off)
            if stop <= off:
                break
            self._feed(buf, off, stop)
            self.off = stop
            if self.state == _DONE and not self.closed:
                self._admit()

    def _head_end(self, buf: bytes, off: int) -> int:
        if self.tail:
            joined = self.tail + buf[off : off + 3]
            at = joined.find(b"\r\n\r\n")
            if at >= 0:
                return off + at + 4 - len(self.tail)
        at = buf.find(b"\r\n\r\n", off)
        return at + 4 if at >= 0 else -1

    def _line_end(self, buf: bytes, off: int) -> int:
        if self.tail.endswith(b"\r") and buf[off : off + 1] == b"\n":
            return off + 1
        at = buf.find(b"\r\n", off)
        return at + 2 if at >= 0 else len(buf)

    def _feed(self, buf: bytes, start: int, stop: int) -> None:
        piece = memoryview(buf)[start:stop]
        self.tail = bytes(piece[-3:]) if stop - start >= 3 else (self.tail + bytes(piece))[-3:]
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            self.req.keep_alive = False  # answered, then closed
        except httptools.HttpParserError:
            if not self.closed:
                self._reject(400, b'{"error": "malformed request"}')

    # -- parser callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.state == _DONE:
            raise RuntimeError("a second request parsed while one waits")
        self.req = Request()
        self.head_bytes = 0
        if self.idle or self.deadline is None:
            self.idle = False
            self.deadline = time.monotonic() + self.limits.header_timeout_s

    def on_url(self, url: bytes) -> None:
        self.req.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.req.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        req = self.req
        parser = self.parser
        req.method = parser.get_method()
        req.http_version = parser.get_http_version()
        req.keep_alive = parser.should_keep_alive()
        expect = False
        for name, value in req.headers:
            if name == b"content-length":
                req.declared = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                req.declared = -1
            elif name == b"expect" and value.lower() == b"100-continue":
                expect = True
        limits = self.limits
        if req.declared > limits.body_limit_bytes:
            self._reject(413, b'{"error": "body too large"}')
            return
        self.state = _BODY
        allowed = limits.body_grace_s + max(req.declared, 0) / limits.min_body_rate_bytes_s
        self._body_at = time.monotonic()
        self.deadline = self._body_at + min(allowed, limits.body_timeout_s)
        if expect:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self.req
        req.parts.append(body)
        req.got += len(body)
        limits = self.limits
        if req.declared < 0:  # chunked: each byte earns time at the minimum rate
            if req.got > limits.body_limit_bytes:
                self._reject(413, b'{"error": "body too large"}')
                return
            allowed = limits.body_grace_s + req.got / limits.min_body_rate_bytes_s
            self.deadline = self._body_at + min(allowed, limits.body_timeout_s)

    def on_message_complete(self) -> None:
        self.state = _DONE
        self.deadline = None

    # -- answering --------------------------------------------------------------------
    def _admit(self) -> None:
        server = self.server
        if server.in_flight >= self.limits.max_in_flight:
            server.refused["in_flight"] += 1
            self.transport.write(server.full)
            self._close()
            return
        server.in_flight += 1
        self.answering = True
        req = self.req
        if server.handler is not None:
            answer = server.handler(req)
            if isinstance(answer, tuple):
                self._write(frame(*answer, close=not req.keep_alive))
                self._done(req.keep_alive)
                return
            asyncio.get_running_loop().create_task(self._run_handler(req, answer))
            return
        asyncio.get_running_loop().create_task(self._run_asgi(req))

    async def _run_handler(self, req: Request, answer: Any) -> None:
        keep = False
        try:
            status, body = await answer
            keep = req.keep_alive
            self._write(frame(status, body, close=not keep))
        except Exception:
            log.exception("handler failed")
            self._write(frame(500, b'{"error": "internal"}', close=True))
        finally:
            self._done(keep)

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def _done(self, keep_alive: bool) -> None:
        """The answer is written: free the slot, go on with what this connection sent."""
        self.server.in_flight -= 1
        self.answering = False
        self.state = _HEAD
        if self.closed:
            return
        if not keep_alive:
            self._close()
            return
        self.idle = True
        self.deadline = time.monotonic() + self.limits.keep_alive_s
        if not self.processing:
            self._process()

    def _reject(self, status: int, body: bytes) -> None:
        self.server.refused["malformed"] += 1
        self.transport.write(frame(status, body, close=True))
        self._close()

    def _close(self) -> None:
        self.closed = True
        self.deadline = None
        self.transport.close()

    def timed_out(self) -> None:
        self.deadline = None
        if self.closed or self.answering:
            return
        if self.idle:
            self._close()
            return
        self.server.refused["read_timeout"] += 1
        self._reject(408, b'{"error": "the request did not arrive in time"}')

    # -- ASGI -------------------------------------------------------------------------
    def _scope(self, req: Request) -> dict[str, Any]:
        raw, _, query = req.url.partition(b"?")
        path = raw.decode("latin-1")
        transport = self.transport
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.http_version,
            "server": transport.get_extra_info("sockname"),
            "client": transport.get_extra_info("peername"),
            "scheme": "http",
            "method": req.method.decode("ascii"),
            "root_path": "",
            "path": unquote(path) if "%" in path else path,
            "raw_path": raw,
            "query_string": query,
            "headers": req.headers,
            "state": {},
        }

    async def _run_asgi(self, req: Request) -> None:
        body = b"".join(req.parts)
        received = False
        head: list[bytes] = []  # the answer's head, held to go out with its first body bytes
        chunked = False
        complete = written = False
        keep = req.keep_alive

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received and not self.closed:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            if not self.closed:
                if self.lost is None:
                    self.lost = asyncio.get_running_loop().create_future()
                await self.lost
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal chunked, complete, keep, written
            if message["type"] == "http.response.start":
                answer_head, chunked, keep = _head(message, keep, req.http_version == "1.1")
                head.append(answer_head)
                return
            data = message.get("body", b"")
            more = message.get("more_body", False)
            if chunked:
                data = (b"%x\r\n%s\r\n" % (len(data), data) if data else b"") + (
                    b"" if more else b"0\r\n\r\n"
                )
            if head:
                data = head.pop() + data
            self._write(data)
            written = True
            complete = not more
            if self.drained is not None and not self.closed:
                await self.drained

        try:
            await self.server.app(self._scope(req), receive, send)
        except Exception:
            log.exception("ASGI app failed")
            if not written:
                self._write(frame(500, b'{"error": "internal"}', close=True))
            keep = False
        finally:
            self._done(keep and complete)


def _head(message: dict[str, Any], keep: bool, chunk_ok: bool) -> tuple[bytes, bool, bool]:
    """An ASGI answer's head: its bytes, whether its body goes chunked (no
    Content-Length), whether the connection stays open after it."""
    status = message["status"]
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
    sized = False
    for name, value in message.get("headers", ()):
        low = name.lower()
        sized = sized or low == b"content-length"
        if low == b"connection" and value.lower() == b"close":
            keep = False
        lines.append(b"%s: %s\r\n" % (name, value))
    chunked = False
    if not sized:
        chunked = keep = keep and chunk_ok
        if chunked:
            lines.append(b"transfer-encoding: chunked\r\n")
    if not keep:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    return b"".join(lines), chunked, keep


async def serve(server: Server, sock: Any) -> None:
    """Serve ``sock`` (bound, listening) until cancelled."""
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, sock=sock, backlog=2048)
    async with listener:
        await listener.serve_forever()
