"""The feedback store: ground-truth labels keyed by request id, its one writer and one reader.

Each batch of labels is one Parquet file under ``<feedback url>/date=YYYY-MM-DD/`` with
columns ``request_id``, ``label`` (text: numbers are written as JSON writes them),
``timestamp`` (UTC) and ``model``; local files are written atomically (temporary file,
then rename). Labels arrive over HTTP (the server's feedback endpoint) or from a file
(``mooring feedback FILE``); monitoring joins them with the prediction log on its
``request_id`` (the server's id, answered as ``X-Request-Id``; never the client's own,
logged as ``client_request_id``), and a later label for the same request id replaces an
earlier one.

Examples:
    >>> store = FeedbackStore(".mooring/feedback")  # doctest: +SKIP
    >>> store.write("income", [("r1", ">50K")])  # doctest: +SKIP
    1
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mooring.errors import DataError
from mooring.formats._columns import describe
from mooring.formats._files import atomic_write_url
from mooring.formats._predictions import MODEL, REQUEST_ID, REQUEST_ID_PATTERN, TIMESTAMP

__all__ = [
    "LABEL",
    "SCHEMA",
    "FeedbackStore",
    "Labels",
    "label_text",
    "labels_from_table",
    "read_feedback",
]

LABEL = "label"
SCHEMA = pa.schema(
    [
        (REQUEST_ID, pa.string()),
        (LABEL, pa.string()),
        (TIMESTAMP, pa.timestamp("us", tz="UTC")),
        (MODEL, pa.string()),
    ]
)
Labels = list[tuple[str, str]]


def label_text(value: Any) -> str | None:
    """A label value as stored: text as is, integers and finite numbers as JSON writes them.

    Returns ``None`` for values that are not a label (null, objects, lists, NaN, infinities).

    >>> label_text(">50K"), label_text(1), label_text(2.5), label_text(True)
    ('>50K', '1', '2.5', None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def labels_from_table(table: pa.Table, source: str) -> Labels:
    """``(request_id, label)`` pairs from a table with those two columns (a labels file).

    Raises:
        DataError: a column is missing, or a row has no valid request id or label;
            the message names ``source`` and the row.
    """
    missing = [c for c in (REQUEST_ID, LABEL) if c not in table.column_names]
    if missing:
        raise DataError(
            f"'{source}' has no {' and no '.join(repr(c) for c in missing)} column (columns: "
            f"{', '.join(table.column_names)}); write a header row '{REQUEST_ID},{LABEL}'"
        )
    out: Labels = []
    ids = table[REQUEST_ID].to_pylist()
    labels = table[LABEL].to_pylist()
    for row, (rid, value) in enumerate(zip(ids, labels, strict=True), start=1):
        rid = None if rid is None else str(rid)
        if rid is None or not REQUEST_ID_PATTERN.fullmatch(rid):
            raise DataError(
                f"'{source}' row {row}: request_id {describe(rid)} is not a request id "
                "(1-128 letters, digits, '.', '_', ':', '-'); fix or remove the row"
            )
        text = label_text(value)
        if text is None:
            raise DataError(
                f"'{source}' row {row}: label {describe(value)} is missing or not a label; "
                "fix or remove the row"
            )
        out.append((rid, text))
    if not out:
        raise DataError(f"'{source}' holds no labels; nothing to ingest")
    return out


class FeedbackStore:
    """Writes label batches as Parquet files under ``url`` (a folder or an fsspec URL)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def write(self, model: str, labels: Sequence[tuple[str, str]]) -> int:
        """Store one batch of ``(request_id, label)`` for ``model``; return how many."""
        if not labels:
            return 0
        now = datetime.now(UTC)
        table = pa.table(
            {
                REQUEST_ID: [r for r, _ in labels],
                LABEL: [lab for _, lab in labels],
                TIMESTAMP: [now] * len(labels),
                MODEL: [model] * len(labels),
            },
            schema=SCHEMA,
        )
        name = f"date={now:%Y-%m-%d}/part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_url(f"{self.url}/{name}", sink.getvalue().to_pybytes())
        return len(labels)


def read_feedback(url: str, model: str | None = None) -> pa.Table:
    """Every stored label (of ``model``), the latest per request id, oldest first.

    Examples:
        >>> read_feedback(".mooring/feedback", "income").num_rows  # doctest: +SKIP
        1200
    """
    import fsspec
    import pyarrow.compute as pc  # on first use: the server's start does without it

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        return SCHEMA.empty_table()
    parts = []
    for path in sorted(p for p in fs.find(root) if p.endswith(".parquet")):
        with fs.open(path, "rb") as handle:
            parts.append(pq.read_table(handle).cast(SCHEMA))
    if not parts:
        return SCHEMA.empty_table()
    table = pa.concat_tables(parts)
    if model is not None:
        table = table.filter(pc.equal(table[MODEL], model))
    table = table.take(pc.sort_indices(table, sort_keys=[(TIMESTAMP, "ascending")]))
    # The last label given for a request wins.
    ids = table[REQUEST_ID].to_pylist()
    last = {rid: i for i, rid in enumerate(ids)}
    keep = sorted(last.values())
    return table.take(pa.array(keep, pa.int64()))
