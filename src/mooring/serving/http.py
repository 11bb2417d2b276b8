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


def request_id(given: str | None) -> str:
    """The client's X-Request-Id when it is a plain token, else a fresh one.

    Fresh ids are 128 random bits from the OS (not a counter): label feedback is keyed by
    request id, so an id must not be guessable from another.
    """
    if given and REQUEST_ID_PATTERN.fullmatch(given):
        return given
    return secrets.token_hex(16)


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
