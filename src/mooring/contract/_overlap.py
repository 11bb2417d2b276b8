"""Rows the evaluation data shares with the training data.

A model evaluated on rows it learned from is judged on its memory: ``mooring run
--train-data <the eval file>`` blesses anything. :func:`row_overlap` counts the eval rows
whose every value (the columns both files hold, normalised: numbers as float64, text
trimmed, a missing value as itself) is also a row of the training data, by a 64-bit hash
of each row computed column by column in Arrow and numpy (no Python per row). The
training data is read batch by batch (:func:`file_overlap`): each batch's values are coded
against the eval data's, so only the eval data and one batch are held at a time.

Real tables repeat rows (Adult's test file shares a few dozen with its training file),
and a table of few, coarse columns repeats many: the share expected by chance is measured
on the training data itself (a random part of it against the rest, ``natural``), and an
overlap is refused only when it exceeds both :data:`OVERLAP_SHARE` and what chance gives
(:attr:`Overlap.refused`).

Examples:
    >>> import pyarrow as pa
    >>> train = pa.table({"x": [1, 2, 3, 4], "y": ["a", "b", "a", "b"]})
    >>> row_overlap(train, pa.table({"x": [1.0, 9.0], "y": [" a", "b"]})).shared
    1
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from mooring.contract._io import ReadOptions

__all__ = ["OVERLAP_SHARE", "Overlap", "file_overlap", "row_hashes", "row_overlap"]

#: An eval file sharing more than this share of its rows with the training data is refused
#: (when chance does not explain it).
OVERLAP_SHARE = 0.01
#: Rows of the training data its own repeat rate is measured on (at most).
NATURAL_ROWS = 100_000

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the input moves every bit of the output."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = h ^ (h >> np.uint64(31))
    return out


def _normalised(column: pa.ChunkedArray, kind: str) -> pa.Array:
    """A column in the common form both sides are compared in: integers as int64 (ids
    beyond 2^53 stay apart), other numbers as float64, anything else as trimmed text."""
    if kind == "integer":
        return column.cast(pa.int64(), safe=False).combine_chunks()
    if kind == "number":
        return pc.add(column.cast(pa.float64(), safe=False), 0.0).combine_chunks()  # -0.0 is 0.0
    return pc.utf8_trim_whitespace(column.cast(pa.string())).combine_chunks()


def _kind(types: Sequence[pa.DataType]) -> str:
    """How a column held by several tables is compared: ``integer``, ``number`` or ``text``."""
    if all(pa.types.is_integer(t) for t in types):
        return "integer"
    return "number" if all(_is_numeric(t) for t in types) else "text"


def _is_numeric(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def row_hashes(tables: Sequence[pa.Table], columns: Sequence[str]) -> list[np.ndarray]:
    """A 64-bit hash of each row of each table over ``columns``, comparable across the
    tables: each column is normalised (integers as int64, numbers as float64, else
    trimmed text), its values coded together across the tables, and the codes mixed
    into the rows' hashes.

    >>> a, b = row_hashes([pa.table({"x": [1, 2]}), pa.table({"x": [2.0, 1.0]})], ["x"])
    >>> bool(a[0] == b[1] and a[1] == b[0] and a[0] != a[1])
    True
    """
    sizes = [t.num_rows for t in tables]
    hashes = np.full(sum(sizes), np.uint64(len(columns)), dtype=np.uint64)
    for name in columns:
        kind = _kind([t.schema.field(name).type for t in tables])
        parts = [_normalised(t.column(name), kind) for t in tables]
        joined = pa.chunked_array(parts, type=parts[0].type).combine_chunks()
        encoded = pc.dictionary_encode(joined, null_encoding="encode")
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.uint64)
        with np.errstate(over="ignore"):
            hashes = _mix(hashes * _GOLDEN + codes + np.uint64(1))
    return list(np.split(hashes, np.cumsum(sizes)[:-1]))


@dataclass(frozen=True)
class Overlap:
    """How many of the eval data's rows are rows of the training data.

    ``shared`` of ``eval_rows`` eval rows are in the training data; ``natural`` is the
    share a random part of the training data shares with the rest (what repeats by
    chance in this data); ``columns`` are the columns compared."""

    eval_rows: int
    shared: int
    natural: float
    columns: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        return self.shared / self.eval_rows if self.eval_rows else 0.0

    @property
    def refused(self) -> bool:
        """More than :data:`OVERLAP_SHARE` shared, and more than twice what chance gives.

        >>> Overlap(1000, 1000, 0.0).refused, Overlap(1000, 300, 0.29).refused
        (True, False)
        """
        return self.share > OVERLAP_SHARE and self.share > 2 * self.natural + OVERLAP_SHARE

    def to_dict(self) -> dict[str, Any]:
        return {
            "eval_rows": self.eval_rows,
            "shared": self.shared,
            "share": round(self.share, 6),
            "natural": round(self.natural, 6),
            "refused": self.refused,
        }


def _natural(train: np.ndarray, eval_rows: int, seed: int) -> float:
    """The share of a random part of the training rows (as many as the eval data, at
    most half) found in the rest of them."""
    rows = train.size
    if rows > NATURAL_ROWS:
        train = train[np.random.default_rng(seed).choice(rows, NATURAL_ROWS, replace=False)]
        rows = NATURAL_ROWS
    part = min(eval_rows, rows // 2)
    if part < 1:
        return 0.0
    order = np.random.default_rng(seed).permutation(rows)
    held, rest = train[order[:part]], train[order[part:]]
    return float(np.isin(held, rest).mean())


def _coded(
    table: pa.Table, columns: Sequence[str], kinds: dict[str, str], values: dict[str, pa.Array]
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's hash over ``columns``, its values coded by their place among the eval
    data's ``values``, and whether every value is among them (a row with a value the eval
    data never holds can match no eval row)."""
    hashes = np.full(table.num_rows, np.uint64(len(columns)), dtype=np.uint64)
    present = np.ones(table.num_rows, dtype=bool)
    for name in columns:
        places = pc.index_in(
            _normalised(table.column(name), kinds[name]), value_set=values[name], skip_nulls=False
        )
        present &= ~np.asarray(places.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        codes = np.asarray(places.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.uint64)
        with np.errstate(over="ignore"):
            hashes = _mix(hashes * _GOLDEN + codes + np.uint64(1))
    return hashes, present


class _Sample:
    """At most ``rows`` rows of a stream, each kept with the same chance (seeded): the
    rows with the smallest random keys so far."""

    def __init__(self, rows: int, seed: int) -> None:
        self.rows, self.rng = rows, np.random.default_rng(seed)
        self.kept: pa.Table | None = None
        self.keys = np.empty(0)

    def add(self, table: pa.Table) -> None:
        keys = np.concatenate([self.keys, self.rng.random(table.num_rows)])
        kept = table if self.kept is None else pa.concat_tables([self.kept, table])
        if kept.num_rows > self.rows:
            keep = np.sort(np.argpartition(keys, self.rows)[: self.rows])
            kept, keys = kept.take(pa.array(keep)), keys[keep]
        self.kept, self.keys = kept, keys


def row_overlap(
    train: pa.Table | Iterable[pa.RecordBatch], evaluation: pa.Table, *, seed: int = 0
) -> Overlap:
    """The eval rows found among the training rows, over the columns both hold (see the
    module doc); ``natural`` from the training rows themselves (a seeded sample of at most
    :data:`NATURAL_ROWS` of them). ``train``: a table, or its record batches as a stream.

    >>> t = pa.table({"x": list(range(100))})
    >>> row_overlap(t, t.slice(0, 10)).refused
    True
    """
    batches = iter(train.to_batches() if isinstance(train, pa.Table) else train)
    first = next(batches, None)
    held = set(first.schema.names) if first is not None else set()
    columns = [c for c in evaluation.column_names if c in held]
    if first is None or not columns or evaluation.num_rows == 0:
        return Overlap(evaluation.num_rows, 0, 0.0, tuple(columns))
    kinds = {
        c: _kind([first.schema.field(c).type, evaluation.schema.field(c).type]) for c in columns
    }
    values = {c: pc.unique(_normalised(evaluation.column(c), kinds[c])) for c in columns}
    eval_hash, _ = _coded(evaluation, columns, kinds, values)
    found = np.zeros(evaluation.num_rows, dtype=bool)
    sample = _Sample(NATURAL_ROWS, seed)
    for batch in chain([first], batches):
        table = pa.Table.from_batches([batch]).select(columns)
        hashes, present = _coded(table, columns, kinds, values)
        found |= np.isin(eval_hash, hashes[present])
        sample.add(table)
    assert sample.kept is not None
    [natural] = row_hashes([sample.kept], columns)
    return Overlap(
        evaluation.num_rows,
        int(found.sum()),
        _natural(natural, evaluation.num_rows, seed),
        tuple(columns),
    )


def file_overlap(
    source: Any, options: ReadOptions, evaluation: pa.Table, *, seed: int = 0
) -> Overlap:
    """:func:`row_overlap` of the training file ``source`` read batch by batch with
    ``options``; a CSV column whose type a
    later batch changes is read again as that type.
    """
    from mooring.contract._io import RetypeColumnError, iter_batches

    for _ in range(64):
        try:
            return row_overlap(iter_batches(source, options), evaluation, seed=seed)
        except RetypeColumnError as retype:
            options = options.with_types({retype.column: retype.arrow_type})
    return row_overlap(iter_batches(source, options), evaluation, seed=seed)
