"""The door's framing decisions (mooring.serving._door_framing), on bytes alone.

Where a header block and a chunk's line end, whatever reads split the bytes into, and
what a request's headers say of its body or make it malformed.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from mooring.serving._door_answers import BOTH_LENGTHS, CHUNKED_NOT_LAST, MALFORMED
from mooring.serving._door_framing import (
    Request,
    chunk_size,
    head_end,
    line_end,
    malformed,
    scan,
)

HEAD = b"POST /v1/models/m:predict HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n"


def _head_end_in_reads(data: bytes, cuts: list[int]) -> int:
    """Where the header block ends, reading ``data`` in pieces cut at ``cuts`` (the door's
    way: the last 3 bytes fed are kept as the tail); -1 if it does not."""
    bounds = sorted({0, len(data), *cuts})
    tail = b""
    for start, stop in itertools.pairwise(bounds):
        piece = data[start:stop]
        end = head_end(piece, 0, tail)
        if end >= 0:
            return start + end
        tail = piece[-3:] if len(piece) >= 3 else (tail + piece)[-3:]
    return -1


@given(st.lists(st.integers(min_value=1, max_value=len(HEAD) - 1), max_size=6))
def test_a_header_block_ends_at_its_blank_line_however_it_is_split(cuts: list[int]) -> None:
    assert _head_end_in_reads(HEAD + b"{}", cuts) == len(HEAD)


def test_a_blank_line_straddling_two_reads_is_found() -> None:
    assert head_end(b"\n\r\n{}", 0, b"a\r") == 3
    assert head_end(b"\r\n{}", 0, b"a\r\n") == 2
    assert head_end(b"host: a\r\n", 0, b"") == -1


def test_a_chunk_line_ends_after_its_crlf() -> None:
    assert line_end(b"5\r\nhello\r\n0\r\n\r\n", 0, b"") == 3
    assert line_end(b"5\r\nhello\r\n", 3, b"5\r\n") == 10
    assert line_end(b"\nhello", 0, b"a5\r") == 1  # its CR came in the last read
    assert line_end(b"hel", 0, b"") == 3  # the line goes on in the next read


def test_a_chunk_size_is_hex_with_extensions_ignored() -> None:
    assert chunk_size(b"ff\r\n") == 255
    assert chunk_size(b"10;name=value\r\n") == 16
    assert chunk_size(b" a \r\n") == 10
    assert chunk_size(b"ffffffffffffffff") == 2**64 - 1
    assert chunk_size(b"xyz\r\n") is None


def _scanned(
    headers: list[tuple[bytes, bytes]], version: str = "1.1"
) -> tuple[tuple[bytes, bytes] | None, Request]:
    req = Request(False)
    req.headers = headers
    req.version = version
    return scan(req), req


def test_scan_reads_the_length_and_expect() -> None:
    refusal, req = _scanned([(b"host", b"a:8501"), (b"content-length", b" 12 "),
                             (b"expect", b"100-Continue")])  # fmt: skip
    assert refusal is None
    assert (req.declared, req.expect) == (12, True)
    refusal, req = _scanned([(b"host", b"a"), (b"transfer-encoding", b"Chunked")])
    assert refusal is None and req.declared == -1
    refusal, req = _scanned([(b"host", b"[::1]:80")])
    assert refusal is None and req.declared == 0


def test_scan_refuses_what_is_malformed() -> None:
    status = {
        "no host": _scanned([])[0],
        "two hosts": _scanned([(b"host", b"a"), (b"host", b"b")])[0],
        "bad host": _scanned([(b"host", b"a/b")])[0],
        "gzip": _scanned([(b"host", b"a"), (b"transfer-encoding", b"gzip")])[0],
        "1.0 without host": _scanned([], version="1.0")[0],
    }
    codes = {name: None if r is None else r[0] for name, r in status.items()}
    assert codes == {
        "no host": b"400 Bad Request",
        "two hosts": b"400 Bad Request",
        "bad host": b"400 Bad Request",
        "gzip": b"501 Not Implemented",
        "1.0 without host": None,
    }


def test_the_parsers_refusals_name_the_smuggling_shapes() -> None:
    assert malformed("Content-Length can't be present with Transfer-Encoding") == BOTH_LENGTHS
    assert malformed("Invalid Transfer-Encoding header value") == CHUNKED_NOT_LAST
    assert malformed("Invalid method encountered") == MALFORMED
