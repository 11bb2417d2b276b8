"""Predictions the door serves itself: no ASGI scope, messages or response object.

Most of a prediction server's traffic is ``POST …:predict`` and ``POST …/infer`` with a
small body. Through ASGI each one costs the scope, the ``receive`` and ``send`` messages
and Starlette's request and response objects: Python work on the event loop that the
answer does not need. For such a request the door (:mod:`mooring.serving._door`) hands
a :class:`PredictRequest` (its route matched, its body read whole) to the app's
:class:`FastPath`, whose
answer (the same :class:`~mooring.serving._http.Answer` the ASGI route makes, through
the same handler) it writes in one piece: status line, ``date``, the answer's headers
and body.

Only the plain case takes this road: a body with a ``Content-Length`` within
``[serving] body_limit_bytes`` and no ``Expect: 100-continue``. Anything else (a
chunked or oversized body) goes through ASGI, where every case has its answer.

Examples:
    >>> door.fast = handlers  # build_app's: handlers.serve, handlers.lost  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from mooring.serving._door_answers import date_header, status_line

if TYPE_CHECKING:
    from mooring.serving._routes import Match

__all__ = ["FastAnswer", "FastPath", "PredictRequest", "head", "plain_500"]

log = logging.getLogger("mooring.serving")


class FastAnswer(Protocol):
    """What a fast answer needs of the app's answer (an :class:`~mooring.serving._http.Answer`)."""

    @property
    def status_code(self) -> int: ...

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]: ...

    @property
    def body(self) -> bytes | memoryview: ...


class FastPath(Protocol):
    """The app's side of the road: the answer to a request, and the count of one whose
    client left before its body arrived."""

    async def serve(self, request: PredictRequest) -> FastAnswer: ...

    def lost(self, request: PredictRequest) -> None: ...


class PredictRequest:
    """A prediction as the door read it: its route (matched once, as its headers ended),
    headers and whole body, when its bytes arrived (``time.monotonic()``) and the
    client's address."""

    __slots__ = ("arrived", "body", "client", "headers", "route")

    method = "POST"

    def __init__(
        self,
        route: Match,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        arrived: float,
        client: str | None,
    ) -> None:
        self.route = route
        self.headers = headers
        self.body = body
        self.arrived = arrived
        self.client = client


def head(answer: FastAnswer, *, keep_alive: bool) -> bytes:
    """An answer's status line and headers: ``date`` first, ``connection: close`` where
    the connection ends.

    >>> class A: status_code, raw_headers, body = 200, [(b"content-length", b"2")], b"{}"
    >>> head(A(), keep_alive=False).split(b"\\r\\n")[2:]
    [b'content-length: 2', b'connection: close', b'', b'']
    """
    parts: list[bytes] = [status_line(answer.status_code), date_header()]
    for name, value in answer.raw_headers:
        parts += (name, b": ", value, b"\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def plain_500(keep_alive: bool) -> bytes:
    """The answer when the app's handler itself failed (it answers every error it knows)."""
    body = b'{"error": "internal error"}'
    close = b"" if keep_alive else b"connection: close\r\n"
    return (
        status_line(500)
        + b"content-type: application/json\r\ncontent-length: %d\r\n%s\r\n" % (len(body), close)
        + body
    )
