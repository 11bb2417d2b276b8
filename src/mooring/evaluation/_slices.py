"""Slices of the evaluation rows: by column value, by numeric bucket, and by a cross of two.

Slice names are what gates refer to (``slice = "sex=Female"``):

- value slices: ``column=value``; missing values form the slice ``column=(missing)``;
- bucket slices: ``column=[lo, hi)`` with ``-inf`` / ``inf`` at the open ends;
- crosses: the two names joined by ``" & "``, e.g. ``sex=Female & race=White``.

Examples:
    >>> import pyarrow as pa
    >>> table = pa.table({"sex": ["F", "M", "F"], "age": [23.0, 47.0, 61.0]})
    >>> [s.name for s in build_slices(table, ["sex"], {"age": [40.0]}, [])]
    ['sex=F', 'sex=M', 'age=[-inf, 40)', 'age=[40, inf)']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mooring.errors import DataError
from mooring.evaluation._metrics import FloatArray, IntArray

__all__ = ["MAX_VALUES_PER_COLUMN", "MISSING", "SliceDef", "build_slices", "column_keys"]

MISSING = "(missing)"
#: A value-sliced column with more distinct values keeps only its largest slices.
MAX_VALUES_PER_COLUMN = 50


@dataclass(frozen=True)
class SliceDef:
    """One slice: its name, the columns and values that define it, and its row indices."""

    name: str
    columns: tuple[str, ...]
    values: tuple[str, ...]
    rows: IntArray


def _fmt(x: float) -> str:
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise DataError(
            f"[evaluation] slices: column '{name}' is not in the evaluation data "
            f"(columns: {', '.join(table.column_names)}); fix the name in mooring.toml"
        )
    return table.column(name)


def _numeric(column: pa.ChunkedArray, name: str) -> FloatArray:
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise DataError(
            f"[evaluation] slice_buckets: column '{name}' has type {column.type}, not a number; "
            "bucket only numeric columns, or list it under slices to slice by value"
        )
    values: FloatArray = (
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    )
    return values


def _boundaries(values: FloatArray, spec: Sequence[float] | int, name: str) -> FloatArray:
    if isinstance(spec, int):
        present = values[~np.isnan(values)]
        if present.size == 0:
            raise DataError(f"[evaluation] slice_buckets: column '{name}' has no values to bucket")
        # Quantile buckets: inner quantiles as boundaries, duplicates merged.
        inner = np.quantile(present, np.linspace(0.0, 1.0, spec + 1)[1:-1])
        return np.unique(inner)
    bounds = np.asarray(spec, dtype=np.float64)
    if bounds.size == 0 or np.any(np.diff(bounds) <= 0):
        raise DataError(
            f"[evaluation] slice_buckets.{name}: boundaries must be increasing, got {list(spec)}"
        )
    return bounds


def column_keys(
    table: pa.Table, name: str, buckets: Mapping[str, Sequence[float] | int]
) -> tuple[IntArray, list[str]]:
    """Per-row key codes of a column and the label of each code (value or bucket)."""
    column = _column(table, name)
    if name in buckets:
        values = _numeric(column, name)
        bounds = _boundaries(values, buckets[name], name)
        codes = np.searchsorted(bounds, values, side="right").astype(np.int64)
        edges = np.concatenate(([-np.inf], bounds, [np.inf]))
        labels = [f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])})" for i in range(len(edges) - 1)]
        missing = np.isnan(values)
        if missing.any():
            codes[missing] = len(labels)
            labels.append(MISSING)
        return codes, labels
    encoded = column.combine_chunks().dictionary_encode()
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    labels = [MISSING if v is None else str(v) for v in encoded.dictionary.to_pylist()]
    if encoded.null_count:
        nulls = np.asarray(encoded.indices.is_null().to_numpy(zero_copy_only=False))
        codes = np.where(nulls, len(labels), np.nan_to_num(indices.astype(np.float64)))
        labels.append(MISSING)
        return codes.astype(np.int64), labels
    return indices.astype(np.int64), labels


def _groups(codes: IntArray, n_codes: int) -> list[IntArray]:
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=n_codes)
    return np.split(order, np.cumsum(counts)[:-1])


def build_slices(
    table: pa.Table,
    columns: Sequence[str],
    buckets: Mapping[str, Sequence[float] | int],
    crosses: Sequence[Sequence[str]],
    warnings: list[str] | None = None,
) -> list[SliceDef]:
    """Every configured slice with its rows (empty slices are left out)."""
    keys: dict[str, tuple[IntArray, list[str]]] = {}

    def key(name: str) -> tuple[IntArray, list[str]]:
        if name not in keys:
            keys[name] = column_keys(table, name, buckets)
        return keys[name]

    out: list[SliceDef] = []
    singles = list(dict.fromkeys([*columns, *buckets]))
    for name in singles:
        codes, labels = key(name)
        groups = [
            SliceDef(f"{name}={labels[i]}", (name,), (labels[i],), rows)
            for i, rows in enumerate(_groups(codes, len(labels)))
            if rows.size
        ]
        if len(groups) > MAX_VALUES_PER_COLUMN:
            groups = sorted(groups, key=lambda s: -s.rows.size)[:MAX_VALUES_PER_COLUMN]
            if warnings is not None:
                warnings.append(
                    f"slice column '{name}' has {len(labels)} distinct values; only the "
                    f"{MAX_VALUES_PER_COLUMN} largest slices are reported. Bucket it with "
                    f"slice_buckets = {{ {name} = 5 }} if it is numeric"
                )
        out.extend(groups)
    for first, second in crosses:
        codes_a, labels_a = key(first)
        codes_b, labels_b = key(second)
        combined = codes_a * len(labels_b) + codes_b
        for code, rows in enumerate(_groups(combined, len(labels_a) * len(labels_b))):
            if not rows.size:
                continue
            a, b = labels_a[code // len(labels_b)], labels_b[code % len(labels_b)]
            out.append(SliceDef(f"{first}={a} & {second}={b}", (first, second), (a, b), rows))
    return out
