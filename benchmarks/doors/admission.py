"""Admission as a pure-ASGI middleware, the bare fixed-reply apps (ASGI and RSGI).

Standard library only: granian's own virtual environment imports this module too
(``granian --interface asgi admission:granian_asgi``, ``... rsgi admission:granian_rsgi``).

:class:`Admission` wraps any ASGI app. A prediction (``POST …:predict``) has its whole
body read through ``receive`` *before* it takes a slot, each read within
``read_timeout_s`` and the whole body within ``body_grace_s + length / min_body_rate``
(at most ``body_timeout_s``), else ``408`` with ``connection: close`` (uvicorn closes a
connection whose answer says so). Then, if ``max_in_flight`` predictions already hold a
slot, ``503`` + ``Retry-After`` (keep-alive, as today's door does at the headers); else
the app runs on the body replayed, holding the slot until it returns.

The apps answer ``PATH`` at once and ``MODEL_PATH`` after ``MODEL_S`` of simulated model
time (``asyncio.sleep``: a slot is held, no CPU is spent), so admission has something to
shed in the retry storm.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

PATH = "/v1/models/m:predict"
MODEL_PATH = "/v1/models/slow:predict"
MODEL_S = 0.020
REPLY = b'{"predictions":[[0.1,0.9]]}'

_JSON = (b"content-type", b"application/json")
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [_JSON, (b"content-length", b"%d" % len(REPLY))],
}
_BODY = {"type": "http.response.body", "body": REPLY}


@dataclass(frozen=True)
class Limits:
    max_in_flight: int = 32
    retry_after_s: int = 1
    read_timeout_s: float = 10.0
    body_grace_s: float = 2.0
    min_body_rate_bytes_s: float = 1024.0
    body_timeout_s: float = 30.0
    body_limit_bytes: int = 4 * 1024 * 1024


def _declared(headers: Any) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


async def _answer(send: Any, status: int, body: bytes, *, close: bool, retry: int = 0) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body))]
    if retry:
        headers.append((b"retry-after", b"%d" % retry))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Admission:
    """Count in-flight predictions; read the body before taking a slot; 503 when full."""

    def __init__(self, app: Any, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.in_flight = 0
        self.refused = {"in_flight": 0, "read_timeout": 0, "too_large": 0}
        self._full = b'{"error": "%d requests in flight; retry after %d s"}' % (
            self.limits.max_in_flight,
            self.limits.retry_after_s,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].endswith(":predict")
        ):
            await self.app(scope, receive, send)
            return
        messages = await self._read(scope, receive, send)
        if messages is None:
            return
        limits = self.limits
        if self.in_flight >= limits.max_in_flight:
            self.refused["in_flight"] += 1
            await _answer(send, 503, self._full, close=False, retry=limits.retry_after_s)
            return
        self.in_flight += 1
        try:
            await self.app(scope, _replaying(messages, receive), send)
        finally:
            self.in_flight -= 1

    async def _read(self, scope: Any, receive: Any, send: Any) -> list[Any] | None:
        """The request's messages to its body's end (or its client leaving); None where
        the middleware answered (408 too slow, 413 too large) and the connection closes."""
        limits = self.limits
        loop = asyncio.get_running_loop()
        start = loop.time()
        declared = _declared(scope["headers"])
        rate = limits.min_body_rate_bytes_s
        messages: list[Any] = []
        size = 0
        try:
            async with asyncio.timeout(None) as clock:
                while True:
                    allowed = limits.body_grace_s + max(declared, size) / rate
                    deadline = start + min(allowed, limits.body_timeout_s)
                    clock.reschedule(min(loop.time() + limits.read_timeout_s, deadline))
                    message = await receive()
                    messages.append(message)
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return messages
                    size += len(message.get("body", b""))
                    if size > limits.body_limit_bytes:
                        self.refused["too_large"] += 1
                        await _answer(send, 413, b'{"error": "body too large"}', close=True)
                        return None
        except TimeoutError:
            self.refused["read_timeout"] += 1
            await _answer(send, 408, b'{"error": "body too slow"}', close=True)
            return None


def _replaying(messages: list[Any], receive: Any) -> Any:
    queue = deque(messages)

    async def replay() -> Any:
        if queue:
            return queue.popleft()
        return await receive()

    return replay


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    """A fixed reply with no framework: read the body, answer (the stack's ceiling)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == MODEL_PATH:
        await asyncio.sleep(MODEL_S)
    elif path != PATH:
        await _answer(send, 404, b'{"error": "not found"}', close=False)
        return
    await send(_START)
    await send(_BODY)


class RSGIApp:
    """granian's own interface (RSGI): the same admission, then the fixed reply."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.in_flight = 0
        self._headers = [("content-type", "application/json")]
        self._refused = [
            ("content-type", "application/json"),
            ("retry-after", str(self.limits.retry_after_s)),
        ]
        self._slow = [("content-type", "application/json"), ("connection", "close")]

    def __rsgi_init__(self, loop: Any) -> None:
        return None

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        limits = self.limits
        length = scope.headers.get("content-length") or ""
        declared = int(length) if length.isdigit() else 0
        allowed = limits.body_grace_s + declared / limits.min_body_rate_bytes_s
        try:
            async with asyncio.timeout(min(allowed, limits.body_timeout_s)):
                await proto()
        except TimeoutError:
            proto.response_bytes(408, self._slow, b'{"error": "body too slow"}')
            return
        path = scope.path
        if path not in (PATH, MODEL_PATH):
            proto.response_bytes(404, self._headers, b'{"error": "not found"}')
            return
        if self.in_flight >= limits.max_in_flight:
            proto.response_bytes(503, self._refused, b'{"error": "in flight; retry"}')
            return
        self.in_flight += 1
        try:
            if path == MODEL_PATH:
                await asyncio.sleep(MODEL_S)
            proto.response_bytes(200, self._headers, REPLY)
        finally:
            self.in_flight -= 1


granian_asgi = Admission(bare_app)
granian_rsgi = RSGIApp()
