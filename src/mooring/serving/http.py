"""HTTP plumbing shared by every endpoint: request ids, bodies, bearer tokens, JSON answers,
and the app class that dispatches predictions before the router."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from mooring.formats.predictions import REQUEST_ID_PATTERN
from mooring.serving.errors import PayloadTooLargeError, UnauthorizedError

__all__ = [
    "CLIENT_CLOSED",
    "JSON",
    "ServingApp",
    "check_bearer",
    "http_error",
    "json_response",
    "read_body",
    "request_id",
]

JSON = "application/json"
#: The status a request gets when its client disconnects before the body arrives.
CLIENT_CLOSED = 499


class _Ids:
    """Fresh request ids: 128 random bits each, from the OS's CSPRNG read 4 KiB at a time.

    One ``getrandom`` call per 256 ids instead of one per request (``secrets.token_hex``
    took ~11 µs of the event loop per request under load, measured with py-spy); every
    id is still unguessable from any other, as label feedback needs.
    """

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        if self._at + 16 > len(self._pool):
            self._pool, self._at = secrets.token_bytes(4096), 0
        start = self._at
        self._at += 16
        return self._pool[start : start + 16].hex()


_ids = _Ids()


def request_id(given: str | None) -> str:
    """The client's X-Request-Id when it is a plain token, else a fresh one.

    Fresh ids are 128 random bits from the OS (not a counter): label feedback is keyed by
    request id, so an id must not be guessable from another.

    Example:
        >>> request_id("abc-1")
        'abc-1'
        >>> len(request_id(None)), request_id(None) != request_id(None)
        (32, True)
    """
    if given and REQUEST_ID_PATTERN.fullmatch(given):
        return given
    return _ids.next()


def check_bearer(request: Request, token: str, what: str) -> None:
    """Refuse (401) a request without ``Authorization: Bearer <token>``; constant-time."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
        raise UnauthorizedError(f"{what} need 'Authorization: Bearer <token>'")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type=JSON,
        headers=headers,
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(
            f"the body is {declared} bytes, above the limit of {limit}; send smaller batches "
            "or raise [serving] body_limit_bytes"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the body is above the limit of {limit} bytes; send smaller batches "
                "or raise [serving] body_limit_bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 answers, as JSON like every other error."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "error")
    return json_response(
        {"error": f"{request.method} {request.url.path}: {detail}"},
        status,
        getattr(exc, "headers", None),
    )


class ServingApp(Starlette):
    """Starlette, with the two prediction endpoints dispatched before its middleware and router.

    ``POST /v1/models/…:predict`` and ``POST /v2/…/infer`` are most of the traffic; their
    handler already turns every error into a JSON answer, so the exception middleware and
    the route scan only cost time there (~15 µs a request). Everything else goes the
    usual way.
    """

    predict_handlers: tuple[Callable[[Request], Awaitable[Response]], ...] = ()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path = scope["path"]
            handler = None
            if path.startswith("/v1/models/") and path.endswith(":predict"):
                handler, params = self.predict_handlers[0], {"rest": path[len("/v1/models/") :]}
            elif path.startswith("/v2/") and path.endswith("/infer"):
                handler, params = self.predict_handlers[1], {"rest": path[len("/v2/") :]}
            if handler is not None:
                scope["app"] = self
                scope["path_params"] = params
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
