"""One request through ASGI: its scope, ``receive`` and ``send``, and the answer's bytes.

The door (:mod:`mooring.serving._door`) reads a request whole before the app runs, so
``receive`` hands the body in one message, then waits for the client to leave. ``send``
holds the answer's head and writes it with the first bytes of the body, one write; the
connection's core frames both (:meth:`~mooring.serving._door_core.Core.head`, chunked
or not, kept or not; :meth:`~mooring.serving._door_core.Core.body`).

Examples:
    >>> await Cycle(connection, request).run(app)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from mooring.serving._door_answers import INTERNAL_ERROR, date_header
from mooring.serving._routes import ROUTE

if TYPE_CHECKING:
    from mooring.serving._door import _Connection
    from mooring.serving._door_framing import Request

__all__ = ["ARRIVED", "Cycle"]

log = logging.getLogger("mooring.serving")

#: Scope key holding the request's arrival time (``time.monotonic()`` when its first
#: bytes were read from the socket).
ARRIVED = "mooring.arrived"


class Cycle:
    """The ASGI side of one request of a connection."""

    __slots__ = ("complete", "connection", "head", "received", "req", "started")

    def __init__(self, connection: _Connection, req: Request) -> None:
        self.connection = connection
        self.req = req
        self.received = False
        self.started = False
        self.complete = False
        self.head = b""  # the answer's head, until the first bytes of its body

    async def run(self, app: Any) -> None:
        connection = self.connection
        req = self.req
        try:
            await app(self.scope(), self.receive, self.send)
        except Exception:
            log.exception("the app failed on %s %s", req.method.decode(), req.url.decode())
        finally:
            if not self.complete:  # failed, or ended without a whole answer: close after it
                if not connection.closed and not req.disconnected:
                    connection.transport.write(self.head if self.started else INTERNAL_ERROR)
                connection._done(req, False)

    def scope(self) -> dict[str, Any]:
        req = self.req
        connection = self.connection
        raw, _, query = req.url.partition(b"?")
        path = raw.decode("latin-1")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.version,
            "server": connection.server,
            "client": connection.client,
            "scheme": "http",
            "method": req.method.decode("ascii"),
            "root_path": "",
            "path": unquote(path) if "%" in path else path,
            "raw_path": raw,
            "query_string": query,
            "headers": req.headers,
            "state": dict(connection.door.lifespan_state),
            ARRIVED: req.arrived,
            ROUTE: req.route,
        }

    async def receive(self) -> dict[str, Any]:
        req = self.req
        connection = self.connection
        if not self.received and not req.disconnected:
            self.received = True
            if req.declared > connection.limits.body_limit_bytes:  # refused from its headers
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": req.body, "more_body": False}
        if not req.disconnected and not connection.closed:
            if connection.lost is None:
                connection.lost = asyncio.get_running_loop().create_future()
            # Shielded: the connection's future outlives this request. A streamed answer's
            # disconnect listener is cancelled when its body ends; awaiting the future
            # itself would cancel it, and the next request on the connection would read
            # "disconnect" at once and be cut after its head.
            await asyncio.shield(connection.lost)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        connection = self.connection
        req = self.req
        if self.complete or req.disconnected or connection.closed:
            return
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            status = int(message["status"])
            headers = message.get("headers", ())
            self.head = connection.core.head(req, status, headers, date_header())
            return
        if kind != "http.response.body" or not self.started:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        more = message.get("more_body", False)
        data = connection.core.body(req, message.get("body", b""), more)
        if self.head:
            data, self.head = self.head + data, b""
        if data:
            connection.transport.write(data)
        if not more:
            self.complete = True
            connection._done(req, True)
        elif connection.drained is not None:
            await asyncio.shield(connection.drained)  # shared: a cancelled sender keeps it
