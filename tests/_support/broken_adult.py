"""Broken copies of the bundled Adult data, for the tests of the fail-closed contract.

Rows are lists of CSV fields as the file holds them; every helper returns new rows and
leaves its input alone.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable
from pathlib import Path

ADULT_TRAIN = Path(__file__).resolve().parents[2] / "examples" / "adult" / "adult.data.csv.gz"

Rows = list[list[str]]


def adult_sample(rows: int) -> tuple[list[str], Rows]:
    """The header and the first ``rows`` rows of the Adult training file."""
    with gzip.open(ADULT_TRAIN, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for _, row in zip(range(rows), reader, strict=False)]


def csv_bytes(header: list[str], rows: Rows, *, eol: str = "\n") -> bytes:
    """A CSV file's bytes (UTF-8), with ``eol`` ending each line."""
    text = io.StringIO()
    csv.writer(text, lineterminator=eol).writerows([header, *rows])
    return text.getvalue().encode()


def drop_column(header: list[str], rows: Rows, name: str) -> tuple[list[str], Rows]:
    """The header and rows without column ``name``."""
    i = header.index(name)
    return header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows]


def map_column(header: list[str], rows: Rows, name: str, value: Callable[[int, str], str]) -> Rows:
    """Rows whose ``name`` field is ``value(row number, field)``."""
    i = header.index(name)
    return [[*r[:i], value(n, r[i]), *r[i + 1 :]] for n, r in enumerate(rows)]
