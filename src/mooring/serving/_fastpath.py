"""Predictions the door serves itself: no ASGI scope, messages or response object.

Most of a prediction server's traffic is ``POST …:predict`` and ``POST …/infer`` with a
small body. Through ASGI each one costs uvicorn's request cycle (the scope, its
``receive`` and ``send`` messages, an ``asyncio.Event``, the head built header by
header), Starlette's request and response objects and uvicorn's proxy-headers
middleware: Python work on the event loop that the answer does not need. For such a
request the door (:mod:`mooring.serving._door`) reads the body itself into a
:class:`FastRequest` and hands it to the app's :class:`FastPath`, whose answer (the same
:class:`~mooring.serving._http.Answer` the ASGI route makes, through the same handler) it
writes in one piece: status line, uvicorn's default headers, the answer's own.

Only the plain case takes this road: a body with a ``Content-Length`` within
``[serving] body_limit_bytes``, no ``Expect: 100-continue``, no percent-encoded path, no
``root_path`` and no request of the connection still unanswered. Anything else (a
chunked or oversized body, a pipelined request behind another) goes through ASGI as
before, where every case has its answer.

Example:
    >>> door.fast = handlers  # build_app's: handlers.serve, handlers.lost  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

if TYPE_CHECKING:
    from mooring.serving._door import _DoorProtocol

__all__ = ["FastAnswer", "FastPath", "FastRequest", "head", "plain_500"]

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
    """The app's side of the road: which paths it takes, the answer to a request, and the
    count of one whose client left before its body arrived."""

    def takes(self, path: str) -> bool: ...

    async def serve(self, request: FastRequest) -> FastAnswer: ...

    def lost(self, request: FastRequest) -> None: ...


class FastRequest:
    """An inference request read by the door; it also stands in for uvicorn's request cycle,
    with the attributes uvicorn's parser callbacks, its shutdown and the door read
    (``more_body``, ``response_complete``, ``keep_alive``, ``disconnected``,
    ``message_event``).

    uvicorn calls ``message_event.set()`` when a part of the body arrives, when the body
    is complete and when the connection is lost: here that starts the answer once the
    body is whole, or counts the request lost if its client left first. Until then the
    request is counted in the door's ``receiving``; it takes an inference slot (or is
    refused 503, the server at ``max_in_flight``) when its body is complete.
    """

    __slots__ = (
        "arrived",
        "client",
        "disconnected",
        "headers",
        "keep_alive",
        "more_body",
        "parts",
        "path",
        "protocol",
        "response_complete",
        "started",
    )

    method = "POST"
    response_started = False  # nothing is written before the answer, in one piece

    def __init__(
        self,
        protocol: _DoorProtocol,
        path: str,
        headers: Sequence[tuple[bytes, bytes]],
        arrived: float,
        keep_alive: bool,
        client: str | None,
    ) -> None:
        self.protocol = protocol
        self.path = path
        self.headers = headers
        self.arrived = arrived
        self.keep_alive = keep_alive
        self.client = client
        self.parts: list[bytes] = []
        self.more_body = True
        self.response_complete = False
        self.disconnected = False
        self.started = False

    @property
    def body(self) -> bytes:
        """The whole body (read once the request is complete)."""
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        joined = b"".join(parts)
        self.parts = [joined]
        return joined

    @property
    def message_event(self) -> FastRequest:
        return self

    def set(self) -> None:
        """uvicorn's signal: more body, the whole body, or the connection lost."""
        if self.started or self.response_complete:
            return
        if self.disconnected:
            self.started = True
            self._lost()
        elif not self.more_body:
            self.started = True
            protocol = self.protocol
            door = protocol.door
            door.receiving -= 1
            if door.in_flight >= door.limits.max_in_flight:
                protocol.loop.call_soon(self._refuse)
                return
            door.in_flight += 1
            task = protocol.loop.create_task(self._answer())
            task.add_done_callback(protocol.tasks.discard)
            protocol.tasks.add(task)

    def _refuse(self) -> None:
        """The body is complete but every inference slot is taken: the door's 503 (in turn,
        as an answer would be, from the event loop rather than the parser's callback)."""
        protocol = self.protocol
        door = protocol.door
        door.count("in_flight")
        self.response_complete = True
        transport = protocol.transport
        if self.disconnected or transport.is_closing():
            return
        transport.write(door.refusal("in_flight", not self.keep_alive))
        if not self.keep_alive:
            transport.close()
        protocol.park_after = True  # the connection is read again after Retry-After
        protocol.on_response_complete()

    def _lost(self) -> None:
        """The client left before its body arrived: counted by the app, no longer receiving."""
        door = self.protocol.door
        door.receiving -= 1
        if door.fast is not None:
            try:
                door.fast.lost(self)
            except Exception:
                log.exception("a request whose client left was not counted")

    async def _answer(self) -> None:
        """Answer the request in one write, then let the connection read on (or close)."""
        protocol = self.protocol
        door = protocol.door
        fast = door.fast
        try:
            if fast is None:
                raise RuntimeError("the fast path was turned off with a request on it")
            answer = await fast.serve(self)
            defaults = protocol.server_state.default_headers
            data = head(defaults, answer, keep_alive=self.keep_alive) + answer.body
        except Exception:  # the app answers every error it knows; this is the last guard
            log.exception("a prediction failed outside its handler")
            self.keep_alive = False
            data = plain_500(keep_alive=False)
        finally:
            door.in_flight -= 1
        self.response_complete = True
        transport = protocol.transport
        if self.disconnected or transport.is_closing():  # gone, or being closed (a timeout)
            return
        transport.write(data)
        if not self.keep_alive:
            transport.close()
        protocol.on_response_complete()


def head(defaults: Sequence[tuple[bytes, bytes]], answer: FastAnswer, *, keep_alive: bool) -> bytes:
    """An answer's status line and headers as uvicorn writes them: its default headers
    (``server``, ``date``) first, ``connection: close`` where the connection ends.

    >>> class A: status_code, raw_headers, body = 200, [(b"content-length", b"2")], b"{}"
    >>> head([(b"server", b"uvicorn")], A(), keep_alive=False).split(b"\\r\\n")
    [b'HTTP/1.1 200 OK', b'server: uvicorn', b'content-length: 2', b'connection: close', b'', b'']
    """
    parts: list[bytes] = [STATUS_LINE[answer.status_code]]
    for name, value in defaults:
        parts += (name, b": ", value, b"\r\n")
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
        STATUS_LINE[500]
        + b"content-type: application/json\r\ncontent-length: %d\r\n%s\r\n" % (len(body), close)
        + body
    )
