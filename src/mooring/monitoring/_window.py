"""A window of logged rows, summarised: what drift judges, mergeable across shards.

Drift needs, of a window, only statistics: of the input features, of the rows of each
segment value, of the outputs, plus the row count and the time span. A
:class:`WindowSummary` holds exactly that, so a long window (a month of logs, a batch
scoring run) can be summarised per file wherever an engine runs and the summaries
merged; :func:`mooring.monitoring._drift.compute_drift` judges a summary the same way
whether it came from one table or from many.

Examples:
    >>> import pyarrow as pa
    >>> t = pa.table({
    ...     "age": [30, 40],
    ...     "sex": ["F", "M"],
    ...     "output.probabilities": [[0.8, 0.2], [0.3, 0.7]],
    ...     "output.classes": ["<=50K", ">50K"],
    ... })
    >>> s = summarize_window(t, segments=["sex"], output_names=["output.score"])
    >>> s.rows, sorted(s.segments["sex"]), s.outputs["output.score"].numeric.count
    (2, ['F', 'M'], 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract._io import ReadOptions
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.formats._predictions import OUTPUT_PREFIX, TIMESTAMP, feature_table, output_table

__all__ = ["LOG_READ_OPTIONS", "WindowSummary", "summarize_window", "time_columns"]

#: How statistics read logged columns: the server logs a missing string as "".
LOG_READ_OPTIONS = ReadOptions(na_values=("",))


def _merge_stats(a: DatasetStatistics | None, b: DatasetStatistics | None) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a.merge(b)


def _stats(table: pa.Table) -> DatasetStatistics:
    return compute_statistics(table, LOG_READ_OPTIONS)


def _bound(a: datetime | None, b: datetime | None, pick: Any) -> datetime | None:
    values = [v for v in (a, b) if v is not None]
    return pick(values) if values else None


@dataclass
class WindowSummary:
    """Statistics of a window of logged rows.

    Attributes:
        rows: rows in the window.
        features: statistics of the input feature columns.
        segments: ``{column: {value: (rows, statistics of those rows' other features)}}``
            for each segment column the window has (missing values, logged as ``""``, are
            no segment).
        columns: every input feature column of the window (with a baseline or not).
        segment_columns: the segment columns asked for that the window has.
        outputs: statistics of the asked-for output columns; None when the window has
            no output column.
        has_outputs: whether the window has any ``output.*`` column.
        start, end: the oldest and newest timestamps.
    """

    rows: int
    features: DatasetStatistics
    segments: dict[str, dict[str, tuple[int, DatasetStatistics]]] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    segment_columns: list[str] = field(default_factory=list)
    outputs: DatasetStatistics | None = None
    has_outputs: bool = False
    start: datetime | None = None
    end: datetime | None = None

    def merge(self, other: WindowSummary) -> WindowSummary:
        """The summary of both windows' rows (disjoint parts of one window)."""
        segments: dict[str, dict[str, tuple[int, DatasetStatistics]]] = {}
        for column in dict.fromkeys([*self.segments, *other.segments]):
            mine, theirs = self.segments.get(column, {}), other.segments.get(column, {})
            merged: dict[str, tuple[int, DatasetStatistics]] = {}
            for value in dict.fromkeys([*mine, *theirs]):
                a, b = mine.get(value), theirs.get(value)
                if a is not None and b is not None:
                    merged[value] = (a[0] + b[0], a[1].merge(b[1]))
                else:
                    present = a if a is not None else b
                    assert present is not None
                    merged[value] = present
            segments[column] = merged
        return WindowSummary(
            rows=self.rows + other.rows,
            features=self.features.merge(other.features),
            segments=segments,
            columns=list(dict.fromkeys([*self.columns, *other.columns])),
            segment_columns=list(dict.fromkeys([*self.segment_columns, *other.segment_columns])),
            outputs=_merge_stats(self.outputs, other.outputs),
            has_outputs=self.has_outputs or other.has_outputs,
            start=_bound(self.start, other.start, min),
            end=_bound(self.end, other.end, max),
        )

    def segment_values(self, column: str) -> list[tuple[str, int]]:
        """A segment column's values and their row counts, the most frequent first."""
        pairs = [(value, rows) for value, (rows, _) in self.segments.get(column, {}).items()]
        return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))

    def to_json(self) -> bytes:
        """JSON that :meth:`from_json` reads back identically (for crossing processes)."""
        return orjson.dumps(
            {
                "rows": self.rows,
                "features": self.features.to_dict(),
                "segments": {
                    c: {v: [n, s.to_dict()] for v, (n, s) in values.items()}
                    for c, values in self.segments.items()
                },
                "columns": self.columns,
                "segment_columns": self.segment_columns,
                "outputs": self.outputs.to_dict() if self.outputs is not None else None,
                "has_outputs": self.has_outputs,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
            }
        )

    @classmethod
    def from_json(cls, payload: bytes) -> WindowSummary:
        data = orjson.loads(payload)
        return cls(
            rows=int(data["rows"]),
            features=DatasetStatistics.from_dict(data["features"]),
            segments={
                c: {v: (int(n), DatasetStatistics.from_dict(s)) for v, (n, s) in values.items()}
                for c, values in data["segments"].items()
            },
            columns=list(data["columns"]),
            segment_columns=list(data["segment_columns"]),
            outputs=DatasetStatistics.from_dict(data["outputs"]) if data["outputs"] else None,
            has_outputs=bool(data["has_outputs"]),
            start=datetime.fromisoformat(data["start"]) if data["start"] else None,
            end=datetime.fromisoformat(data["end"]) if data["end"] else None,
        )


def _as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def summarize_window(
    table: pa.Table,
    *,
    feature_names: Sequence[str] | None = None,
    segments: Sequence[str] = (),
    output_names: Sequence[str] = (),
) -> WindowSummary:
    """Summarise logged rows (log, feature and ``output.*`` columns) for drift.

    Args:
        table: the rows.
        feature_names: the features to summarise (those with a training baseline);
            default every feature column.
        segments: segment columns (``[monitoring] segments``).
        output_names: output columns to summarise (those with an evaluation baseline).
    """
    every = feature_table(table).column_names
    features = feature_table(table, list(feature_names) if feature_names is not None else None)
    summary = WindowSummary(rows=table.num_rows, features=_stats(features), columns=every)
    for column in segments:
        if column not in features.column_names:
            continue
        summary.segment_columns.append(column)
        values = pc.cast(features[column], pa.string())
        others = [n for n in features.column_names if n != column]
        counts = pc.value_counts(values.drop_null())
        per_value: dict[str, tuple[int, DatasetStatistics]] = {}
        for value, rows in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        ):
            if value == "":  # a missing value as the server logs it
                continue
            picked = features.filter(pc.equal(values, value)).select(others)
            per_value[str(value)] = (int(rows), _stats(picked))
        summary.segments[column] = per_value
    summary.has_outputs = any(c.startswith(OUTPUT_PREFIX) for c in table.column_names)
    if summary.has_outputs and output_names:
        outputs = output_table(table)
        wanted = set(output_names)
        names = [n for n in outputs.column_names if n in wanted]
        summary.outputs = _stats(outputs.select(names))
    if TIMESTAMP in table.column_names and table.num_rows:
        bounds = pc.min_max(table[TIMESTAMP]).as_py()
        summary.start, summary.end = _as_utc(bounds["min"]), _as_utc(bounds["max"])
    return summary


def time_columns(statistics: DatasetStatistics, timestamp: str | None = None) -> frozenset[str]:
    """The columns that are time, not features: ``timestamp`` (``[data] timestamp``) and
    every date or time column. Drift never judges them: a window is always later than
    the training data, so its times always lie outside the training range.

    >>> import datetime as dt
    >>> t = pa.table({"day": [dt.date(2024, 1, 1)], "at": ["2024-01-01"], "age": [30]})
    >>> sorted(time_columns(compute_statistics(t), "at"))
    ['at', 'day']
    """
    found = {n for n, c in statistics.columns.items() if c.type == "timestamp"}
    if timestamp:
        found.add(timestamp)
    return frozenset(found)


def window_bounds(summary: WindowSummary) -> Mapping[str, Any]:
    """The report's ``window``: rows, start and end (ISO times)."""
    return {
        "rows": summary.rows,
        "start": summary.start.isoformat() if summary.start else None,
        "end": summary.end.isoformat() if summary.end else None,
    }
