"""Label feedback: ground-truth labels keyed by request id, stored beside the prediction log.

Labels arrive over HTTP (``POST /v1/models/{name}:feedback`` with
``{"labels": [{"request_id": "...", "label": ...}, ...]}``) or from a file
(``mooring feedback FILE``, CSV or Parquet with ``request_id`` and ``label`` columns).
Each batch becomes one Parquet file under ``<feedback url>/date=YYYY-MM-DD/`` with
columns ``request_id``, ``label`` (text: numbers are written as JSON writes them),
``timestamp`` (UTC) and ``model``; local files are written atomically (temporary file,
then rename). The monitoring layer joins them with the prediction log; a later label for
the same request id replaces an earlier one.

Example:
    >>> labels = parse_feedback({"labels": [{"request_id": "r1", "label": ">50K"}]})
    >>> FeedbackStore(".mooring/feedback").write("income", labels)  # doctest: +SKIP
    1
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mooring.errors import DataError
from mooring.serving.errors import InvalidRequestError
from mooring.serving.validation import describe

__all__ = [
    "MAX_LABELS",
    "FeedbackStore",
    "label_text",
    "parse_feedback",
    "read_feedback",
    "read_labels_file",
]

#: Labels accepted in one request (larger batches: several requests, or the CLI).
MAX_LABELS = 100_000
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("label", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
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


def parse_feedback(body: Any) -> Labels:
    """Validate a feedback body; every problem is an :class:`InvalidRequestError` (400).

    >>> parse_feedback({"labels": [{"request_id": "a1", "label": 0}]})
    [('a1', '0')]
    """
    if not isinstance(body, dict) or "labels" not in body:
        raise InvalidRequestError(
            'expected a JSON object {"labels": [{"request_id": "...", "label": ...}, ...]}; '
            f"got {describe(body)}"
        )
    unknown = sorted(set(body) - {"labels"})
    if unknown:
        raise InvalidRequestError(f"unknown key(s) {unknown} in the body; send only 'labels'")
    items = body["labels"]
    if not isinstance(items, list) or not items:
        raise InvalidRequestError(
            f"'labels' must be a non-empty list of objects, got {describe(items)}"
        )
    if len(items) > MAX_LABELS:
        raise InvalidRequestError(
            f"'labels' holds {len(items)} entries, above the limit of {MAX_LABELS}; split the "
            "batch or use `mooring feedback FILE`"
        )
    out: Labels = []
    for i, item in enumerate(items):
        where = f"labels[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequestError(f"{where} must be an object, got {describe(item)}")
        extra = sorted(set(item) - {"request_id", "label"})
        if extra:
            raise InvalidRequestError(
                f"{where} has unknown key(s) {extra}; each entry holds request_id and label"
            )
        rid = item.get("request_id")
        if not isinstance(rid, str) or not REQUEST_ID.match(rid):
            raise InvalidRequestError(
                f"{where}.request_id must be the X-Request-Id of a prediction (1-128 letters, "
                f"digits, '.', '_', ':', '-'), got {describe(rid)}"
            )
        text = label_text(item.get("label"))
        if text is None:
            raise InvalidRequestError(
                f"{where}.label must be a class name (text) or a finite number, got "
                f"{describe(item.get('label'))}"
            )
        out.append((rid, text))
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
                "request_id": [r for r, _ in labels],
                "label": [lab for _, lab in labels],
                "timestamp": [now] * len(labels),
                "model": [model] * len(labels),
            },
            schema=_SCHEMA,
        )
        name = f"date={now:%Y-%m-%d}/part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
        if "://" not in self.url:
            from mooring.formats.files import atomic_write

            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            atomic_write(Path(self.url) / name, sink.getvalue().to_pybytes())
        else:
            import fsspec

            fs, path = fsspec.core.url_to_fs(f"{self.url}/{name}")
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with fs.open(path, "wb") as handle:  # one object put: all or nothing
                pq.write_table(table, handle)
        return len(labels)


def read_feedback(url: str, model: str | None = None) -> pa.Table:
    """Every stored label (of ``model``), the latest per request id, oldest first.

    Example:
        >>> read_feedback(".mooring/feedback", "income").num_rows  # doctest: +SKIP
        1200
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        return _SCHEMA.empty_table()
    parts = []
    for path in sorted(p for p in fs.find(root) if p.endswith(".parquet")):
        with fs.open(path, "rb") as handle:
            parts.append(pq.read_table(handle).cast(_SCHEMA))
    if not parts:
        return _SCHEMA.empty_table()
    table = pa.concat_tables(parts)
    if model is not None:
        table = table.filter(pc.equal(table["model"], model))
    table = table.take(pc.sort_indices(table, sort_keys=[("timestamp", "ascending")]))
    # The last label given for a request wins.
    ids = table["request_id"].to_pylist()
    last = {rid: i for i, rid in enumerate(ids)}
    keep = sorted(last.values())
    return table.take(pa.array(keep, pa.int64()))


def read_labels_file(path: str | Path) -> Labels:
    """``(request_id, label)`` pairs from a CSV or Parquet file with those two columns.

    Raises:
        DataError: the file cannot be read, lacks a column, or has an invalid row.
    """
    from mooring.contract.io import ReadOptions, read_table

    options = ReadOptions(na_values=("",), column_types={"request_id": pa.string()})
    table = read_table(path, options)
    missing = [c for c in ("request_id", "label") if c not in table.column_names]
    if missing:
        raise DataError(
            f"'{path}' has no {' and no '.join(repr(c) for c in missing)} column (columns: "
            f"{', '.join(table.column_names)}); write a header row 'request_id,label'"
        )
    out: Labels = []
    ids = table["request_id"].to_pylist()
    labels = table["label"].to_pylist()
    for row, (rid, value) in enumerate(zip(ids, labels, strict=True), start=1):
        rid = None if rid is None else str(rid)
        if rid is None or not REQUEST_ID.match(rid):
            raise DataError(
                f"'{path}' row {row}: request_id {describe(rid)} is not a request id "
                "(1-128 letters, digits, '.', '_', ':', '-'); fix or remove the row"
            )
        text = label_text(value)
        if text is None:
            raise DataError(
                f"'{path}' row {row}: label {describe(value)} is missing or not a label; "
                "fix or remove the row"
            )
        out.append((rid, text))
    if not out:
        raise DataError(f"'{path}' holds no labels; nothing to ingest")
    return out
