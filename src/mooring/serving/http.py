"""HTTP plumbing shared by every endpoint: request ids, bodies, bearer tokens, JSON answers."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mooring.formats.predictions import REQUEST_ID_PATTERN
from mooring.serving.errors import PayloadTooLargeError, UnauthorizedError

__all__ = [
    "CLIENT_CLOSED",
    "JSON",
    "check_bearer",
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
