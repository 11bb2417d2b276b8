"""Dataset statistics in one pass: mergeable, serialisable, the backbone of mooring.

One pass over record batches computes, per column: row count and missing count;
for numbers min, max, mean, standard deviation (Chan's parallel moments), zeros,
infinities and a :class:`~mooring.contract._sketch.QuantileSketch` (quantiles,
equal-width and quantile histograms, CDF); for strings a frequency table (exact
up to a cap, bounded beyond), distinct count and length statistics.

Statistics merge: ``stats(a).merge(stats(b))`` equals ``stats(a ∪ b)`` exactly for
counts and moments (up to float rounding) and within the sketch bound for
quantiles, so shards can be summarised anywhere and combined. They serialise to
JSON and load back identically.

When given a :class:`~mooring.contract._schema.Schema`, the same pass also counts
what validation needs but statistics alone cannot give: values of the wrong type
and values outside the schema's range, with examples.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract._cleaning import is_text_dictionary
from mooring.contract._io import (
    ReadOptions,
    RetypeColumnError,
    iter_batches,
    source_name,
)
from mooring.contract._schema import BOOL_FALSE, BOOL_TRUE
from mooring.contract._sketch import FrequencySketch
from mooring.contract._summaries import NumericSummary, StringSummary
from mooring.errors import DataError, SchemaError

if TYPE_CHECKING:
    from mooring.contract._schema import Schema

__all__ = [
    "ColumnStatistics",
    "DatasetStatistics",
    "NumericSummary",
    "StringSummary",
    "compute_statistics",
]

FORMAT_VERSION = 1
MAX_EXAMPLES = 5
_NUMBER = r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$"
NUMERIC_TYPES = frozenset({"integer", "float", "timestamp"})
# Batches from this many rows have their columns summarised in threads while the calling
# thread reads the next batch; smaller ones (windows of logs, tests) are not worth it.
PARALLEL_ROWS = 8192


def logical_type(arrow_type: pa.DataType) -> str:
    """Map an Arrow type to mooring's column type vocabulary."""
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    if pa.types.is_null(arrow_type):
        return "null"
    return "string"


def _widen(a: str, b: str) -> str:
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"integer", "float"}:
        return "float"
    return "string"


@dataclass
class ColumnStatistics:
    """Everything one pass learns about one column.

    ``type`` is the column's logical type (integer, float, string, boolean,
    timestamp, or null when every value is missing). Timestamps are summarised as
    seconds since the Unix epoch (UTC). ``type_mismatch`` and ``below_range`` /
    ``above_range`` are only counted when a schema is given.
    """

    name: str
    type: str
    count: int = 0
    missing: int = 0
    numeric: NumericSummary | None = None
    strings: StringSummary | None = None
    type_mismatch: int = 0
    mismatch_examples: list[str] = field(default_factory=list)
    below_range: int = 0
    above_range: int = 0
    range_examples: list[float] = field(default_factory=list)

    @property
    def present(self) -> int:
        return self.count - self.missing

    @property
    def null_fraction(self) -> float:
        return self.missing / self.count if self.count else 0.0

    def merge(self, other: ColumnStatistics) -> ColumnStatistics:
        if other.name != self.name:
            raise ValueError(f"cannot merge column {self.name!r} with {other.name!r}")
        numeric = _merge_opt(self.numeric, other.numeric)
        strings = _merge_opt(self.strings, other.strings)
        return ColumnStatistics(
            name=self.name,
            type=_widen(self.type, other.type),
            count=self.count + other.count,
            missing=self.missing + other.missing,
            numeric=numeric,
            strings=strings,
            type_mismatch=self.type_mismatch + other.type_mismatch,
            mismatch_examples=(self.mismatch_examples + other.mismatch_examples)[:MAX_EXAMPLES],
            below_range=self.below_range + other.below_range,
            above_range=self.above_range + other.above_range,
            range_examples=(self.range_examples + other.range_examples)[:MAX_EXAMPLES],
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "count": self.count,
            "missing": self.missing,
            "null_fraction": self.null_fraction,
        }
        if self.numeric is not None:
            out["numeric"] = self.numeric.to_dict()
        if self.strings is not None:
            out["strings"] = self.strings.to_dict()
        if self.type_mismatch:
            out["type_mismatch"] = self.type_mismatch
            out["mismatch_examples"] = self.mismatch_examples
        if self.below_range or self.above_range:
            out["below_range"] = self.below_range
            out["above_range"] = self.above_range
            out["range_examples"] = self.range_examples
        return out

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ColumnStatistics:
        return cls(
            name=name,
            type=str(data["type"]),
            count=int(data["count"]),
            missing=int(data["missing"]),
            numeric=NumericSummary.from_dict(data["numeric"]) if "numeric" in data else None,
            strings=StringSummary.from_dict(data["strings"]) if "strings" in data else None,
            type_mismatch=int(data.get("type_mismatch", 0)),
            mismatch_examples=list(data.get("mismatch_examples", [])),
            below_range=int(data.get("below_range", 0)),
            above_range=int(data.get("above_range", 0)),
            range_examples=[float(v) for v in data.get("range_examples", [])],
        )


def _merge_opt(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a.merge(b)


@dataclass
class DatasetStatistics:
    """Statistics of a whole dataset: row count and one :class:`ColumnStatistics` per column.

    Examples:
        >>> import pyarrow as pa
        >>> stats = compute_statistics(pa.table({"age": [30, 40, None], "sex": ["F", "M", "F"]}))
        >>> stats.num_rows, stats["age"].missing, stats["sex"].strings.top(1)
        (3, 1, [('F', 2)])
    """

    num_rows: int
    columns: dict[str, ColumnStatistics]
    source: str = ""
    version: int = FORMAT_VERSION

    def __getitem__(self, name: str) -> ColumnStatistics:
        try:
            return self.columns[name]
        except KeyError:
            raise DataError(
                f"no statistics for column {name!r}; known columns: {sorted(self.columns)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def merge(self, other: DatasetStatistics) -> DatasetStatistics:
        """Combine statistics of two disjoint parts of a dataset (e.g. shards)."""
        names = list(self.columns) + [n for n in other.columns if n not in self.columns]
        merged: dict[str, ColumnStatistics] = {}
        for name in names:
            a, b = self.columns.get(name), other.columns.get(name)
            if a is not None and b is not None:
                merged[name] = a.merge(b)
            else:
                # A column absent from one part counts as missing on all of that part's rows.
                present = a if a is not None else b
                assert present is not None
                absent_rows = other.num_rows if a is not None else self.num_rows
                merged[name] = present.merge(
                    ColumnStatistics(name=name, type="null", count=absent_rows, missing=absent_rows)
                )
        sources = [s for s in (self.source, other.source) if s]
        return DatasetStatistics(
            num_rows=self.num_rows + other.num_rows, columns=merged, source=" + ".join(sources)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "mooring.statistics",
            "version": self.version,
            "source": self.source,
            "num_rows": self.num_rows,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetStatistics:
        if data.get("format") != "mooring.statistics":
            raise DataError("not a mooring statistics file (missing format: mooring.statistics)")
        if int(data.get("version", 0)) > FORMAT_VERSION:
            raise DataError(
                f"statistics format version {data['version']} is newer than this mooring "
                f"understands ({FORMAT_VERSION}); upgrade mooring"
            )
        return cls(
            num_rows=int(data["num_rows"]),
            columns={n: ColumnStatistics.from_dict(n, c) for n, c in data["columns"].items()},
            source=str(data.get("source", "")),
            version=int(data["version"]),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, payload: bytes | str) -> DatasetStatistics:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"statistics are not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (a crash never leaves a half-written file)."""
        from mooring.formats._files import atomic_write

        return atomic_write(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> DatasetStatistics:
        file = Path(path)
        if not file.is_file():
            raise DataError(f"statistics file '{file}' does not exist; run `mooring stats` first")
        return cls.from_json(file.read_bytes())

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: a content hash for lineage and caching."""
        return hashlib.sha256(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()


class _Accumulator:
    """Per-column state updated batch by batch."""

    def __init__(
        self,
        name: str,
        expected: str | None,
        bounds: tuple[float, float] | None,
        strict_types: bool,
        capacity: int,
    ) -> None:
        self.stats = ColumnStatistics(name=name, type="null")
        self.expected = expected
        self.bounds = bounds
        self.strict_types = strict_types
        self.capacity = capacity
        self.first = True

    def update(self, array: pa.Array) -> None:
        stats = self.stats
        expected = self.expected
        if is_text_dictionary(array.type) and (
            expected in NUMERIC_TYPES | {"boolean"} or (self.first and self.strict_types)
        ):
            # Parsing and the mixed-type check work on plain strings (one batch, or a
            # column whose type the schema says is not text: rare).
            array = array.dictionary_decode()
        seen = logical_type(array.type)
        stats.count += len(array)
        stats.missing += array.null_count
        if seen == "string" and expected in NUMERIC_TYPES - {"timestamp"}:
            array = self._parse_numbers(array)
            seen = "float"
        elif seen == "string" and expected == "boolean":
            array = self._parse_booleans(array)
            seen = "boolean"
        elif seen == "float" and expected == "integer":
            self._count_fractional(array)
        elif self.first and seen == "string" and expected is None and self.strict_types:
            self._reject_mixed(array)
        self.first = False
        stats.type = _widen(stats.type, seen)
        if seen in NUMERIC_TYPES:
            self._update_numeric(array, seen)
        elif seen in ("string", "boolean"):
            if stats.strings is None:
                stats.strings = StringSummary(frequencies=FrequencySketch(capacity=self.capacity))
            values = array if seen == "string" else pc.cast(array, pa.string())
            stats.strings.update(values)

    def _update_numeric(self, array: pa.Array, seen: str) -> None:
        stats = self.stats
        if seen == "timestamp":
            array = pc.divide(pc.cast(pc.cast(array, pa.timestamp("us")), pa.int64()), 1_000_000.0)
        valid = array.drop_null() if array.null_count else array
        values = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=np.float64)
        # Integers have no NaN or infinity: skip looking for them row by row.
        whole = pa.types.is_integer(valid.type)
        if not whole:
            nan = np.isnan(values)
            if nan.any():
                stats.missing += int(nan.sum())
                values = values[~nan]
        if stats.numeric is None:
            stats.numeric = NumericSummary()
        ordered = stats.numeric.add(values, whole=whole)
        if self.bounds is not None and values.size and not self._within(ordered, values.size):
            lo, hi = self.bounds
            below, above = values < lo, values > hi
            stats.below_range += int(below.sum())
            stats.above_range += int(above.sum())
            if len(stats.range_examples) < MAX_EXAMPLES and (below.any() or above.any()):
                bad = values[below | above][: MAX_EXAMPLES - len(stats.range_examples)]
                stats.range_examples.extend(float(v) for v in bad)

    def _within(self, ordered: np.ndarray[Any, Any], size: int) -> bool:
        """Whether all ``size`` values lie inside the bounds (the usual case: no per-row test).

        ``ordered``: the finite values, sorted. Infinities (``size`` larger) take the
        per-row test.
        """
        assert self.bounds is not None
        lo, hi = self.bounds
        return bool(ordered.size == size and ordered[0] >= lo and ordered[-1] <= hi)

    def _note_mismatch(self, bad: pa.Array) -> None:
        self.stats.type_mismatch += len(bad)
        room = MAX_EXAMPLES - len(self.stats.mismatch_examples)
        if room > 0:
            self.stats.mismatch_examples.extend(str(v) for v in bad.slice(0, room).to_pylist())

    def _parse_numbers(self, array: pa.Array) -> pa.Array:
        ok = pc.match_substring_regex(array, _NUMBER)
        bad = array.filter(pc.invert(pc.fill_null(ok, True)))
        if len(bad):
            self._note_mismatch(bad)
            # Values of the wrong type count as missing for the numeric summary.
            self.stats.missing += len(bad)
        numbers = pc.cast(
            pc.utf8_trim_whitespace(array.filter(pc.fill_null(ok, False))), pa.float64()
        )
        if self.expected == "integer":
            self._count_fractional(numbers)
        nulls = pa.nulls(array.null_count, pa.float64())
        return pa.concat_arrays([numbers, nulls])

    def _parse_booleans(self, array: pa.Array) -> pa.Array:
        lowered = pc.utf8_lower(array)
        is_true = pc.is_in(lowered, value_set=pa.array(sorted(BOOL_TRUE)))
        is_false = pc.is_in(lowered, value_set=pa.array(sorted(BOOL_FALSE)))
        known = pc.or_(is_true, is_false)  # False, not null, for a missing value
        bad = array.filter(pc.and_(pc.is_valid(array), pc.invert(known)))
        if len(bad):
            self._note_mismatch(bad)
            self.stats.missing += len(bad)
        return pc.if_else(known, is_true, pa.scalar(None, pa.bool_()))

    def _count_fractional(self, array: pa.Array) -> None:
        values = array.drop_null()
        if len(values) == 0:
            return
        fractional = values.filter(pc.not_equal(values, pc.floor(values)))
        fractional = fractional.filter(pc.is_finite(fractional))
        if len(fractional):
            self._note_mismatch(pc.cast(fractional, pa.string()))

    def _reject_mixed(self, array: pa.Array) -> None:
        valid = array.drop_null()
        if len(valid) < 20:
            return
        numeric = pc.sum(pc.match_substring_regex(valid, _NUMBER)).as_py() or 0
        if 0.9 <= numeric / len(valid) < 1.0:
            text = valid.filter(pc.invert(pc.match_substring_regex(valid, _NUMBER)))
            raise _mixed_error(self.stats.name, list(dict.fromkeys(text.to_pylist()))[:3])


def _mixed_error(column: str, examples: list[Any]) -> DataError:
    return DataError(
        f"column {column!r} mixes numbers and text (e.g. {', '.join(repr(e) for e in examples)}); "
        f"add such tokens to data.na_values if they mean 'missing', fix the source, or declare "
        f'the column\'s type in [contract.columns.{column}] (type = "string" or "float")'
    )


_ARROW_TYPES = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "boolean": pa.string(),
}


def compute_statistics(
    source: Any,
    options: ReadOptions | None = None,
    *,
    schema: Schema | None = None,
    frequency_capacity: int = 10_000,
    dictionary: bool = True,
) -> DatasetStatistics:
    """Summarise ``source`` (path, DataFrame or Arrow table) in one streaming pass.

    With ``schema``, columns are read with the schema's types and the pass also
    counts type mismatches and out-of-range values for validation. ``dictionary``
    reads dictionary-encoded Parquet text as dictionaries (faster; the statistics are
    identical to reading plain strings, which ``dictionary=False`` does).

    Raises:
        DataError: the source cannot be read, or (without a schema) a column
            mixes numbers and text.

    Examples:
        >>> import pyarrow as pa
        >>> s = compute_statistics(pa.table({"x": [1.0, 2.0, 3.0, 4.0]}))
        >>> s["x"].numeric.mean, s["x"].numeric.quantiles([0.5])
        (2.5, [2.0])
    """
    options = options or ReadOptions()
    if schema is not None:
        forced = {
            c.name: _ARROW_TYPES[c.type] for c in schema.columns.values() if c.type in _ARROW_TYPES
        }
        options = options.with_types(forced)
    for _ in range(256):
        try:
            return _one_pass(source, options, schema, frequency_capacity, dictionary)
        except RetypeColumnError as retype:
            expected = (
                schema.columns[retype.column].type
                if (schema is not None and retype.column in schema.columns)
                else None
            )
            if expected is None and retype.arrow_type == pa.string():
                raise _mixed_error(retype.column, [retype.value]) from None
            options = options.with_types({retype.column: retype.arrow_type})
    raise SchemaError(f"{source_name(source)}: column types keep changing; declare them")


def _one_pass(
    source: Any, options: ReadOptions, schema: Schema | None, capacity: int, dictionary: bool
) -> DatasetStatistics:
    accumulators: dict[str, _Accumulator] = {}
    num_rows = 0
    # Arrow's CPU count, less the calling thread that reads (decoding in Arrow's threads).
    with ThreadPoolExecutor(max_workers=max(1, pa.cpu_count() - 1)) as pool:
        pending: list[Future[None]] = []
        # The next batch is read (in Arrow's threads) while the pool summarises this one.
        for batch in iter_batches(source, options, dictionary=dictionary):
            _finish(pending)
            if not accumulators:
                accumulators = _accumulators(batch.schema.names, schema, capacity)
            num_rows += batch.num_rows
            updates = [
                (accumulators[name].update, column)
                for name, column in zip(batch.schema.names, batch.columns, strict=True)
            ]
            if batch.num_rows < PARALLEL_ROWS:
                for update, column in updates:
                    update(column)
            else:
                pending = [pool.submit(update, column) for update, column in updates]
        _finish(pending)
    return DatasetStatistics(
        num_rows=num_rows,
        columns={name: acc.stats for name, acc in accumulators.items()},
        source=source_name(source),
    )


def _finish(pending: list[Future[None]]) -> None:
    """Wait for a batch's column updates; the first failure, in column order, is raised.

    Every column of a batch is done before any column of the next batch starts, so
    each accumulator sees its batches in order, as in a serial pass.
    """
    for future in pending:
        future.result()
    pending.clear()


def _accumulators(
    names: list[str], schema: Schema | None, capacity: int
) -> dict[str, _Accumulator]:
    accumulators = {}
    for name in names:
        col = schema.columns.get(name) if schema is not None else None
        bounds = None
        if col is not None and (col.min is not None or col.max is not None):
            bounds = (
                col.min if col.min is not None else float("-inf"),
                col.max if col.max is not None else float("inf"),
            )
        accumulators[name] = _Accumulator(
            name,
            col.type if col is not None else None,
            bounds,
            strict_types=schema is None,
            capacity=capacity,
        )
    return accumulators


def newest_timestamp(stats: ColumnStatistics) -> dt.datetime | None:
    """The newest value of a timestamp column as an aware UTC datetime."""
    if stats.numeric is None or stats.numeric.count == 0:
        return None
    return dt.datetime.fromtimestamp(stats.numeric.max, tz=dt.UTC)
