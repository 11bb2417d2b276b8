"""The door's own answers: refusals (503), malformed requests (400, 431, 501), timeouts
(408), and the pieces of every answer's head (status line, ``date``).

Each names what was wrong and the fix; :func:`plain` is one whole answer, written
straight to the socket.

Examples:
    >>> plain(b"400 Bad Request", bad_host(0), close=True).split(b"\\r\\n")[0]
    b'HTTP/1.1 400 Bad Request'
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from mooring.serving._door import DoorLimits

__all__ = [
    "BOTH_LENGTHS",
    "CHUNKED_NOT_LAST",
    "UPGRADE_CHUNKED",
    "bad_host",
    "chunk_too_large",
    "date_header",
    "invalid_host",
    "plain",
    "refusal_body",
    "refusal_message",
    "status_line",
    "too_large_head",
    "too_slow",
    "unknown_coding",
]

# Status lines, built once.
_STATUS = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


def status_line(code: int) -> bytes:
    """``HTTP/1.1 <code> <reason>\r\n``.

    >>> status_line(503)
    b'HTTP/1.1 503 Service Unavailable\\r\\n'
    """
    line = _STATUS.get(code)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % code


_date: list[Any] = [0, b""]


def date_header() -> bytes:
    """``date: …\r\n`` (RFC 9110 §6.6.1: an origin server with a clock sends it), formatted
    once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[0] = now
        _date[1] = b"date: %s\r\n" % formatdate(now, usegmt=True).encode("ascii")
    value: bytes = _date[1]
    return value


def refusal_message(limits: DoorLimits, why: str) -> str:
    """Why a request is refused 503 (``why``: in_flight, body_bytes, receiving,
    connections), with the retry; the same words on REST and gRPC."""
    if why == "in_flight":
        what = f"{limits.max_in_flight} requests in flight"
    elif why == "body_bytes":
        mib = limits.body_budget_bytes // (1024 * 1024)
        what = f"{mib} MiB of request bodies held (body_budget_bytes)"
    elif why == "receiving":
        what = f"{limits.max_receiving} requests receiving their body"
    else:
        what = f"{limits.max_connections} connections"
    return f"the server is at its limit of {what}; retry after {limits.retry_after_s} s"


def refusal_body(limits: DoorLimits, why: str) -> bytes:
    """The JSON body of a 503 for ``why`` (:func:`refusal_message`)."""
    return b'{"error": "%s"}' % refusal_message(limits, why).encode()


UPGRADE_CHUNKED = orjson.dumps(
    {
        "error": "a request with Upgrade and a chunked body is not read: this server speaks "
        "HTTP/1.1 only; send it without the Upgrade header, or with Content-Length"
    }
)

BOTH_LENGTHS = orjson.dumps(
    {
        "error": "the request has both Transfer-Encoding and Content-Length, which could be "
        "read two ways: send one of them (Content-Length, or Transfer-Encoding: chunked)"
    }
)

CHUNKED_NOT_LAST = orjson.dumps(
    {
        "error": "the request's Transfer-Encoding is invalid (chunked must be its last coding, "
        "and only once): send Transfer-Encoding: chunked alone, or a Content-Length"
    }
)


def bad_host(hosts: int) -> bytes:
    """The 400 body of a request with ``hosts`` Host headers (not one)."""
    if hosts == 0:
        what = "the request has no Host header"
    else:
        what = f"the request has {hosts} Host headers"
    return orjson.dumps(
        {"error": f"{what}; HTTP/1.1 requires exactly one: send a single Host: <host>[:<port>]"}
    )


def chunk_too_large(size: int, limit: int) -> bytes:
    """The 413 body of a chunk whose size takes the body past ``limit`` bytes."""
    return orjson.dumps(
        {
            "error": f"a chunk of {size} bytes takes the body above the limit of {limit} "
            "bytes; send smaller batches or raise [serving] body_limit_bytes"
        }
    )


def invalid_host(value: bytes) -> bytes:
    """The 400 body of a Host header whose value is not ``host[:port]`` (RFC 9112 §3.2)."""
    shown = value.decode("latin-1")[:100]
    return orjson.dumps(
        {
            "error": f"the Host header {shown!r} is not a host name or address with an "
            "optional :port; send Host: <host>[:<port>]"
        }
    )


def unknown_coding(coding: bytes) -> bytes:
    """The 501 body of a Transfer-Encoding other than chunked alone."""
    shown = coding.decode("latin-1")[:100]
    return orjson.dumps(
        {
            "error": f"Transfer-Encoding {shown!r} is not implemented: send the body with "
            "Transfer-Encoding: chunked alone, or with a Content-Length"
        }
    )


def too_large_head() -> bytes:
    """The 431 body of a header block past the door's limit."""
    return orjson.dumps(
        {
            "error": "the request line and headers are above 64 KiB: send fewer or shorter "
            "headers (a large payload belongs in the body)"
        }
    )


def too_much_framing() -> bytes:
    """The 400 body of a chunked body whose framing outweighs its data by 64 KiB."""
    return orjson.dumps(
        {
            "error": "the chunked body's framing (chunk sizes and trailers) is more than "
            "64 KiB beyond the data it carries: send larger chunks, fewer trailers, or a "
            "Content-Length"
        }
    )


def plain(status: bytes, body: bytes, *, close: bool, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer with a JSON ``body``, written straight to the socket."""
    head = [b"HTTP/1.1 ", status, b"\r\ncontent-type: application/json\r\n"]
    if retry_after is not None:
        head.append(b"retry-after: %d\r\n" % retry_after)
    head.append(b"content-length: %d\r\n" % len(body))
    head.append(b"connection: close\r\n\r\n" if close else b"\r\n")
    return b"".join(head) + body


def too_slow(limits: DoorLimits) -> bytes:
    """The JSON body of a 408: what had to arrive by when, and the settings."""
    rate = limits.min_body_rate_bytes_s
    pace = (
        b""
        if rate <= 0
        else b"at %g bytes/s or faster after %g s and "
        % (
            rate,
            limits.body_grace_s,
        )
    )
    return (
        b'{"error": "the request did not arrive in time: headers within %g s, the body %s'
        b"within %g s ([serving] header_timeout_s, min_body_rate_bytes_s, body_grace_s, "
        b'body_timeout_s); send it faster or raise those limits"}'
        % (limits.header_timeout_s, pace, limits.body_timeout_s)
    )
