"""The door's own answers: refusals (503), malformed requests (400, 413, 431, 501),
timeouts (408), the last guard's 500, and the first lines of every answer's head (status
line, ``date``; the core frames the rest, :meth:`~mooring.serving._door_core.Core.head`).

Each error names what was wrong and the fix; :func:`plain` is one whole answer, written
straight to the socket.

Examples:
    >>> plain(b"400 Bad Request", bad_host(0), close=True).split(b"\\r\\n")[0]
    b'HTTP/1.1 400 Bad Request'
"""

from __future__ import annotations

import functools
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from mooring.config import ServingConfig

__all__ = [
    "BOTH_LENGTHS",
    "CHUNKED_NOT_LAST",
    "INTERNAL_ERROR",
    "MALFORMED",
    "TOO_LARGE_HEAD",
    "TOO_MUCH_FRAMING",
    "UPGRADE_CHUNKED",
    "bad_host",
    "chunk_too_large",
    "date_header",
    "invalid_host",
    "plain",
    "refusal",
    "refusal_message",
    "status_line",
    "too_many_chunks",
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


def plain(status: bytes, body: bytes, *, close: bool, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer with a JSON ``body``, written straight to the socket."""
    head = [b"HTTP/1.1 ", status, b"\r\ncontent-type: application/json\r\n"]
    if retry_after is not None:
        head.append(b"retry-after: %d\r\n" % retry_after)
    head.append(b"content-length: %d\r\n" % len(body))
    head.append(b"connection: close\r\n\r\n" if close else b"\r\n")
    return b"".join(head) + body


def _error(text: str) -> bytes:
    return orjson.dumps({"error": text})


def refusal_message(limits: ServingConfig, why: str) -> str:
    """Why a request is refused 503 (``why``: in_flight, body_bytes, receiving,
    connections), with the retry; the same words on REST and gRPC."""
    what = {
        "in_flight": f"{limits.max_in_flight} requests in flight",
        "body_bytes": f"{limits.body_budget_bytes // (1024 * 1024)} MiB of request bodies "
        "held (body_budget_bytes)",
        "receiving": f"{limits.max_receiving} requests receiving their body",
    }.get(why, f"{limits.max_connections} connections")
    return f"the server is at its limit of {what}; retry after {limits.retry_after_s} s"


def refusal(limits: ServingConfig, why: str, close: bool) -> bytes:
    """The whole 503 answer for ``why`` (:func:`refusal_message`), ``close``: with
    ``connection: close``; each built once (it is written thousands of times a second
    under overload).

    >>> from mooring.config import ServingConfig
    >>> refusal(ServingConfig(), "in_flight", True).split(b"\\r\\n")[0]
    b'HTTP/1.1 503 Service Unavailable'
    """
    return _refusal(refusal_message(limits, why), close, limits.retry_after_s)


@functools.lru_cache(maxsize=64)
def _refusal(message: str, close: bool, retry_after: int) -> bytes:
    body = _error(message)
    return plain(b"503 Service Unavailable", body, close=close, retry_after=retry_after)


#: The answer when the app's handler itself failed (it answers every error it knows).
INTERNAL_ERROR = plain(b"500 Internal Server Error", _error("internal error"), close=True)
MALFORMED = _error("the request is not valid HTTP/1.1: check its request line and headers")
UPGRADE_CHUNKED = _error(
    "a request with Upgrade and a chunked body is not read: this server speaks HTTP/1.1 "
    "only; send it without the Upgrade header, or with Content-Length"
)
BOTH_LENGTHS = _error(
    "the request has both Transfer-Encoding and Content-Length, which could be read two "
    "ways: send one of them (Content-Length, or Transfer-Encoding: chunked)"
)
CHUNKED_NOT_LAST = _error(
    "the request's Transfer-Encoding is invalid (chunked must be its last coding, and only "
    "once): send Transfer-Encoding: chunked alone, or a Content-Length"
)
TOO_LARGE_HEAD = _error(
    "the request line and headers are above 64 KiB: send fewer or shorter headers (a large "
    "payload belongs in the body)"
)
TOO_MUCH_FRAMING = _error(
    "the chunked body's framing (chunk sizes and trailers) is more than 64 KiB beyond the "
    "data it carries: send larger chunks, fewer trailers, or a Content-Length"
)


def too_many_chunks(chunks: int, data: int) -> bytes:
    """The 400 body of a chunked body whose ``chunks`` carry ``data`` bytes, past the count
    the door reads (:data:`~mooring.serving._door_states.CHUNKS_FREE` and one per
    :data:`~mooring.serving._door_states.CHUNK_MIN_AVG` bytes).

    >>> b"at least 512 bytes" in too_many_chunks(1025, 6150)
    True
    """
    from mooring.serving._door_states import CHUNK_MIN_AVG, CHUNKS_FREE

    return _error(
        f"the chunked body came in {chunks:,} chunks carrying {data:,} bytes: past its first "
        f"{CHUNKS_FREE:,} chunks the server reads one chunk per {CHUNK_MIN_AVG} bytes of data "
        f"(each chunk costs a parse): send chunks of at least {CHUNK_MIN_AVG} bytes, or a "
        "Content-Length"
    )


def bad_host(hosts: int) -> bytes:
    """The 400 body of a request with ``hosts`` Host headers (not one)."""
    what = f"has {hosts} Host headers" if hosts else "has no Host header"
    return _error(
        f"the request {what}; HTTP/1.1 requires exactly one: send a single Host: <host>[:<port>]"
    )


def invalid_host(value: bytes) -> bytes:
    """The 400 body of a Host header whose value is not ``host[:port]`` (RFC 9112 §3.2)."""
    return _error(
        f"the Host header {value.decode('latin-1')[:100]!r} is not a host name or address "
        "with an optional :port; send Host: <host>[:<port>]"
    )


def unknown_coding(coding: bytes) -> bytes:
    """The 501 body of a Transfer-Encoding other than chunked alone."""
    return _error(
        f"Transfer-Encoding {coding.decode('latin-1')[:100]!r} is not implemented: send the "
        "body with Transfer-Encoding: chunked alone, or with a Content-Length"
    )


def chunk_too_large(size: int, limit: int) -> bytes:
    """The 413 body of a chunk whose size takes the body past ``limit`` bytes."""
    return _error(
        f"a chunk of {size} bytes takes the body above the limit of {limit} bytes; send "
        "smaller batches or raise [serving] body_limit_bytes"
    )


def too_slow(limits: ServingConfig) -> bytes:
    """The JSON body of a 408: what had to arrive by when, and the settings."""
    rate = limits.min_body_rate_bytes_s
    pace = f"at {rate:g} bytes/s or faster after {limits.body_grace_s:g} s and " if rate > 0 else ""
    return _error(
        f"the request did not arrive in time: headers within {limits.header_timeout_s:g} s, "
        f"the body {pace}within {limits.body_timeout_s:g} s ([serving] header_timeout_s, "
        "min_body_rate_bytes_s, body_grace_s, body_timeout_s); send it faster or raise those "
        "limits"
    )
