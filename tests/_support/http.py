"""Raw HTTP/1.1 for tests that talk to a server below any client library (no dependencies)."""

from __future__ import annotations


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """An answer's status line and headers (names lower-cased), without the blank line."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers
