r"""The door's framing decisions on bytes and headers, with no I/O: where a header block
or a chunk's line ends, what a request's headers say of its body, and which of them make
it malformed.

The door (:mod:`mooring.serving._door`) feeds httptools' parser and calls these on what
it read; they neither read nor write a socket nor look at the clock, so each is tested
with bytes alone.

Examples:
    >>> head_end(b"GET / HTTP/1.1\r\nhost: a\r\n\r\nGET", 0, b"")
    27
    >>> chunk_size(b"1a;name=value\r\n"), chunk_size(b"zz\r\n")
    (26, None)
"""

from __future__ import annotations

import re

from mooring.serving._door_answers import (
    BOTH_LENGTHS,
    CHUNKED_NOT_LAST,
    MALFORMED,
    bad_host,
    invalid_host,
    unknown_coding,
)
from mooring.serving._routes import Match

__all__ = ["HOST", "Request", "chunk_size", "head_end", "line_end", "malformed", "scan"]

# A Host header's value (RFC 9112 §3.2, RFC 3986 §3.2.2): an IP literal in brackets or a
# registered name or IPv4 address (unreserved, sub-delims, percent-encoding), an optional
# port. Anything else (spaces, '/', '@', a second ':' outside brackets) is 400.
HOST = re.compile(rb"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?")


class Request:
    """One request of a connection, from its first byte to its answer: what was read
    of it (a prediction's :class:`~mooring.serving._routes.Match`, headers, body and
    arrival, which its handler reads as they are) and what it holds of the admission."""

    __slots__ = (
        "arrived",
        "chunked",
        "declared",
        "disconnected",
        "expect",
        "fast",
        "got",
        "headers",
        "keep_alive",
        "large",
        "method",
        "parts",
        "permit",
        "pipelined",
        "receiving",
        "refused",
        "reserved",
        "route",
        "url",
        "version",
    )

    def __init__(self, pipelined: bool) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.parts: list[bytes] = []
        self.method = b"GET"
        self.version = "1.1"
        # Whether the connection is kept after its answer: as its client asked (the
        # parser), then as the core framed its answer (Core.head).
        self.keep_alive = True
        self.chunked = False  # its answer's body goes chunked (Core.head)
        self.declared = -1  # Content-Length; -1: none (or chunked)
        self.got = 0
        self.arrived = 0.0
        self.pipelined = pipelined
        self.expect = False
        # A prediction's route, matched once as its headers end (None: not a prediction).
        self.route: Match | None = None
        self.fast = False  # plain: the door may read and answer it on the app's fast path
        self.receiving = False  # counted in the door's receiving
        self.refused: str | None = None  # answered 503 (why) once its body is read
        self.permit = False  # holds an inference permit
        self.reserved = 0  # bytes counted in the door's body_bytes
        self.large = False  # counted in its large_bytes (a body past SMALL_BODY)
        self.disconnected = False

    @property
    def body(self) -> bytes:
        parts = self.parts
        return parts[0] if len(parts) == 1 else b"".join(parts)


def scan(req: Request) -> tuple[bytes, bytes] | None:
    """One pass over the headers: sets the body's length (``req.declared``, -1 chunked)
    and ``Expect`` (``req.expect``); returns the refusal of a malformed request, ``(status,
    body)``, or None.

    >>> req = Request(False)
    >>> req.headers = [(b"host", b"a b")]
    >>> scan(req)[0]
    b'400 Bad Request'
    """
    hosts = 0
    host = b""
    coding: bytes | None = None
    for name, value in req.headers:
        if name == b"content-length":
            value = value.strip(b" \t")  # optional whitespace is not the value's
            req.declared = int(value) if req.declared == -1 and value.isdigit() else -2
        elif name == b"host":
            hosts += 1
            host = value
        elif name == b"transfer-encoding":
            coding = value if coding is None else coding + b", " + value
        elif name == b"expect" and value.lower() == b"100-continue":
            req.expect = True
    if coding is not None:
        if coding.strip().lower() != b"chunked":
            return b"501 Not Implemented", unknown_coding(coding)
        req.declared = -1
    elif req.declared < 0:
        req.declared = 0  # no body (a malformed length is the parser's to refuse)
    if hosts != 1 and (hosts > 1 or req.version != "1.0"):
        return b"400 Bad Request", bad_host(hosts)
    if hosts and HOST.fullmatch(host.strip(b" \t")) is None:
        return b"400 Bad Request", invalid_host(host)
    return None


def head_end(buf: bytes, off: int, tail: bytes) -> int:
    r"""Where the header block that began before ``off`` ends in ``buf`` (just past its
    blank line), or -1; ``tail``, the last bytes fed, holds the start of a blank line
    that straddles two reads.

    >>> head_end(b"\n\r\nrest", 0, b"a\r")
    3
    """
    if tail:
        joined = tail + buf[off : off + 3]
        at = joined.find(b"\r\n\r\n")
        if at >= 0:
            return off + at + 4 - len(tail)
    at = buf.find(b"\r\n\r\n", off)
    return at + 4 if at >= 0 else -1


def line_end(buf: bytes, off: int, tail: bytes) -> int:
    r"""Where the line at ``off`` ends (just past its CRLF), or ``len(buf)``: a chunked
    body is fed line by line.

    >>> line_end(b"5\r\nhello\r\n", 0, b""), line_end(b"\nx", 0, b"5\r")
    (3, 1)
    """
    if tail.endswith(b"\r") and buf[off : off + 1] == b"\n":
        return off + 1
    at = buf.find(b"\r\n", off)
    return at + 2 if at >= 0 else len(buf)


def chunk_size(line: bytes) -> int | None:
    """The size a chunk-size line (its first bytes) declares; None when it is not hex
    (the parser refuses the line)."""
    text = line.split(b";", 1)[0].strip(b" \t\r\n")
    try:
        return int(text, 16)
    except ValueError:
        return None


def malformed(reason: str) -> bytes:
    """The 400 body for the parser's refusal ``reason``: a smuggling shape said as such.

    >>> malformed("Content-Length can't be present with Transfer-Encoding") == BOTH_LENGTHS
    True
    """
    if "Transfer-Encoding" in reason:
        return BOTH_LENGTHS if "Content-Length" in reason else CHUNKED_NOT_LAST
    return MALFORMED
