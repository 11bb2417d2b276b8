"""HTTP plumbing shared by every endpoint: request ids, bodies, bearer tokens, JSON answers,
and the app class that dispatches predictions before the router."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mooring.formats._predictions import REQUEST_ID_PATTERN
from mooring.serving._errors import PayloadTooLargeError, UnauthorizedError
from mooring.serving._routes import NO_ROUTES, ROUTE, Match, Routes

__all__ = [
    "CLIENT_CLOSED",
    "JSON",
    "Answer",
    "ServingApp",
    "add_header",
    "check_bearer",
    "client_request_id",
    "http_error",
    "id_and_key",
    "json_response",
    "read_body",
    "request_id",
    "too_large",
]

JSON = "application/json"
#: The status a request gets when its client disconnects before the body arrives.
CLIENT_CLOSED = 499


class _Ids:
    """Fresh request ids: 128 random bits each, from the OS's CSPRNG read 4 KiB at a time.

    One ``getrandom`` call per 256 ids instead of one per request (a syscall per request
    showed in the event loop's profile under load); every id is still unguessable from
    any other, as label feedback needs.
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


def request_id() -> str:
    """A fresh request id: 128 random bits from the OS (not a counter), as 32 hex digits.

    The server always makes its own: label feedback joins on it, so an id must not be
    guessable from another, nor chosen by a client (one could name another client's
    request). A client's own X-Request-Id is kept beside it (:func:`client_request_id`).

    Examples:
        >>> len(request_id()), request_id() != request_id()
        (32, True)
    """
    return _ids.next()


def client_request_id(given: str | None) -> str | None:
    """The X-Request-Id a client sent, when it is a plain token (``REQUEST_ID_PATTERN``);
    else None (ignored). It is echoed as X-Client-Request-Id and logged beside the
    server's id, never used as the request's id.

    Examples:
        >>> client_request_id("abc-1"), client_request_id("a b"), client_request_id(None)
        ('abc-1', None, None)
    """
    if given and REQUEST_ID_PATTERN.fullmatch(given):
        return given
    return None


def id_and_key(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The request's X-Request-Id and X-Request-Key (the first of each), in one pass over
    its raw headers (ASGI names them in lower case).

    Examples:
        >>> raw = [(b"x-request-key", b"k7"), (b"x-request-id", b"a"), (b"x-request-id", b"b")]
        >>> id_and_key(raw)
        ('a', 'k7')
    """
    given = key = None
    for name, value in headers:
        if name == b"x-request-id":
            if given is None:
                given = value.decode("latin-1")
        elif name == b"x-request-key" and key is None:
            key = value.decode("latin-1")
    return given, key


def check_bearer(authorization: str, token: str, what: str, where: str) -> None:
    """Refuse (401) a request whose ``authorization`` header is not ``Bearer <token>``;
    constant-time.

    ``what`` names the endpoint and ``where`` the setting that holds its token, e.g.
    "label feedback needs 'Authorization: Bearer <token>' with the token of [serving]
    feedback_token".
    """
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
        raise UnauthorizedError(
            f"{what} needs 'Authorization: Bearer <token>' with the token of {where}"
        )


class Answer(Response):
    """A Starlette :class:`~starlette.responses.Response` of bytes already encoded, its head
    built directly as ASGI's raw header list.

    Starlette's constructor renders the content, then scans and encodes the headers given;
    here the body is taken as it is and the head is two entries plus those given. Further
    headers are appended with :meth:`add_header` (``response.headers[...] = ...`` works
    too, and scans the list as in Starlette). It halves the cost of answering a
    prediction this way.

    Examples:
        >>> answer = Answer(b'{"ok": true}', 200, {"Retry-After": "1"})
        >>> answer.add_header("X-Request-Id", "r1")
        >>> answer.raw_headers[-2:]
        [(b'retry-after', b'1'), (b'x-request-id', b'r1')]
        >>> answer.headers["content-length"]
        '12'
    """

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str = JSON,
    ) -> None:
        self.status_code = status
        self.media_type = media_type
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", media_type.encode("latin-1")),
        ]
        if headers:
            for name, value in headers.items():
                self.add_header(name, value)

    def add_header(self, name: str, value: str) -> None:
        """Append one header (a name not already set: nothing is replaced)."""
        self.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))


def add_header(response: Response, name: str, value: str) -> None:
    """Set one header on any Starlette response: appended to an :class:`Answer`'s head,
    through Starlette's headers (which replace an earlier value) on others."""
    if type(response) is Answer:
        response.add_header(name, value)
    else:
        response.headers[name] = value


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    """``data`` as a JSON :class:`Answer` (numpy arrays and scalars as their values).

    Examples:
        >>> json_response({"ok": True}, 201).body, json_response({}).status_code
        (b'{"ok":true}', 200)
    """
    return Answer(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), status, headers)


def too_large(limit: int) -> PayloadTooLargeError:
    """The refusal of a body above ``limit`` bytes (413), naming the limit and the fix."""
    return PayloadTooLargeError(
        f"the body is above the limit of {limit} bytes; send smaller batches "
        "or raise [serving] body_limit_bytes"
    )


async def read_body(receive: Receive, headers: Sequence[tuple[bytes, bytes]], limit: int) -> bytes:
    """The request's body from its ASGI messages, refused (413) past ``limit`` bytes.

    A declared ``Content-Length`` above the limit is refused before anything is read; a
    client that leaves before the end raises Starlette's ``ClientDisconnect``, as
    ``Request.stream()`` would. Read once per request: the endpoints never read twice.

    Examples:
        >>> body = await read_body(receive, scope["headers"], 4096)  # doctest: +SKIP
    """
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                declared = value.decode("latin-1")
                raise PayloadTooLargeError(
                    f"the body is {declared} bytes, above the limit of {limit}; send smaller "
                    "batches or raise [serving] body_limit_bytes"
                )
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
    """Starlette, with predictions dispatched before its middleware and router.

    Predictions (:attr:`table`'s, :meth:`~mooring.serving._routes.Routes.prediction`) are
    most of the traffic; their
    handler already turns every error into a JSON answer, so the exception middleware and
    the route scan only cost time there. Everything else goes the usual way.
    """

    #: Answers a prediction from its scope, ``receive`` and route (``Endpoints.predict``).
    predictions: Callable[[Scope, Receive, Match], Awaitable[Response]] | None = None
    #: The route table whose predictions :attr:`predictions` answers.
    table: Routes = NO_ROUTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        predictions = self.predictions
        if predictions is not None and scope["type"] == "http" and not scope.get("root_path"):
            # The door matched its requests' routes as their headers ended; a request
            # that came through another server is matched here.
            match = (
                scope[ROUTE]
                if ROUTE in scope
                else self.table.prediction(scope["method"], scope["path"])
            )
            if match is not None:
                response = await predictions(scope, receive, match)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
