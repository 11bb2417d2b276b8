"""Statistics and validation of sharded data on any engine.

Each shard is summarised by the contract layer's own
:func:`~mooring.contract.compute_statistics` (the same reader, missing-value tokens and
sketches as a single file) wherever the engine runs it; the partial statistics travel
back as JSON and are merged in shard order with
:meth:`~mooring.contract.DatasetStatistics.merge`. So the ``local`` and ``ray``
engines give identical statistics for the same shards, and both equal the statistics
of the shards concatenated into one file exactly for counts, within float rounding
for moments and within the sketch's rank-error bound for quantiles. Validation then
judges the merged statistics with :func:`~mooring.contract._validation.validate_statistics`,
so its anomalies are those of one pass over one file.

A worker holds one shard's read batch (``[data] batch_mb``) and its sketches at a time,
never a whole shard. A large Parquet shard is split by row groups into pieces of about
a million rows (:func:`~mooring.scale._shards.plan_pieces`), so one big file is read by
several workers too.

Examples:
    >>> import tempfile
    >>> import pyarrow as pa
    >>> import pyarrow.parquet as pq
    >>> from mooring.contract._statistics import compute_statistics
    >>> tmp = tempfile.TemporaryDirectory()
    >>> whole = pa.table({"age": [float(a) for a in range(17, 91)]})
    >>> for i, start in enumerate(range(0, whole.num_rows, 25)):
    ...     pq.write_table(whole.slice(start, 25), f"{tmp.name}/part-{i}.parquet")
    >>> merged = sharded_statistics(f"{tmp.name}/part-*.parquet", engine=Engine("local", workers=1))
    >>> single = compute_statistics(whole)
    >>> merged.num_rows, merged["age"].count == single["age"].count
    (74, True)
    >>> tmp.cleanup()
    >>> stats = sharded_statistics("s3://b/part-*.parquet", engine=Engine("ray"))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from mooring.config._data import ContractConfig
from mooring.contract._io import ParquetPiece, ReadOptions
from mooring.contract._schema import Schema
from mooring.contract._statistics import NUMERIC_TYPES, DatasetStatistics, compute_statistics
from mooring.contract._validation import ValidationResult, validate_statistics
from mooring.errors import DataError
from mooring.scale._engine import Engine
from mooring.scale._shards import list_shards, plan_pieces

__all__ = ["sharded_statistics", "sharded_validate"]


@dataclass(frozen=True)
class _ShardStatistics:
    """The per-shard work: picklable, so any engine can ship it."""

    options: ReadOptions
    schema: Schema | None
    frequency_capacity: int

    def __call__(self, shard: str | ParquetPiece) -> bytes:
        stats = compute_statistics(
            shard, self.options, schema=self.schema, frequency_capacity=self.frequency_capacity
        )
        return stats.to_json()


def _source_name(source: str | Sequence[str], shards: list[str]) -> str:
    named = source if isinstance(source, str) else ", ".join(source)
    return f"{named} ({len(shards)} shards)" if len(shards) > 1 else shards[0]


def _check_types(parts: list[DatasetStatistics], shards: list[str]) -> None:
    """Without a schema, one shard's numbers and another's text in a column is an error."""
    seen: dict[str, tuple[str, str]] = {}
    for part, shard in zip(parts, shards, strict=True):
        for name, col in part.columns.items():
            if col.type == "null":
                continue
            kind = "number" if col.type in NUMERIC_TYPES else col.type
            first = seen.setdefault(name, (kind, shard))
            if first[0] != kind:
                raise DataError(
                    f"column {name!r} holds {first[0]} values in shard {first[1]} but "
                    f"{kind} values in shard {shard}; fix the shards, add such tokens to "
                    f"[data] na_values, or declare the column's type in "
                    f"[contract.columns.{name}]"
                )


def _check_columns(parts: list[DatasetStatistics], shards: list[str]) -> None:
    """Every shard of one dataset has the same columns: a shard without one would
    otherwise read as that many missing values, and a column only some shards have as a
    mostly-missing column."""
    everywhere = dict.fromkeys(name for part in parts for name in part.columns)
    for part, shard in zip(parts, shards, strict=True):
        lacking = [name for name in everywhere if name not in part.columns]
        if lacking:
            raise DataError(
                f"shard {shard} has no column(s) {lacking} that other shards of the dataset "
                f"have; every shard must have the same columns: fix or remove {shard}"
            )


def sharded_statistics(
    source: str | Sequence[str],
    options: ReadOptions | None = None,
    *,
    schema: Schema | None = None,
    engine: Engine | None = None,
    frequency_capacity: int = 10_000,
) -> DatasetStatistics:
    """Statistics of every shard of ``source``, computed on ``engine`` and merged in order.

    A single file on one local worker is read exactly as
    :func:`~mooring.contract.compute_statistics` reads it.

    Raises:
        NotFoundError: the source names no file.
        DataError: a shard cannot be read, lacks a column other shards have, or (without a
            schema) a column holds numbers in one shard and text in another.
    """
    engine = engine or Engine()
    options = options or ReadOptions()
    shards = list_shards(source)
    single = len(shards) == 1 and engine.kind == "local" and (engine.workers or 1) == 1
    if single:
        return compute_statistics(
            shards[0], options, schema=schema, frequency_capacity=frequency_capacity
        )
    pieces = plan_pieces(shards)
    task = _ShardStatistics(options, schema, frequency_capacity)
    parts = [DatasetStatistics.from_json(p) for p in engine.map(task, pieces)]
    _check_columns(parts, [str(p) for p in pieces])
    if schema is None:
        _check_types(parts, [str(p) for p in pieces])
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    merged.source = _source_name(source, shards)
    return merged


def sharded_validate(
    source: str | Sequence[str],
    schema: Schema,
    *,
    options: ReadOptions | None = None,
    engine: Engine | None = None,
    baseline: DatasetStatistics | None = None,
    contract: ContractConfig | None = None,
    skip_columns: Iterable[str] = (),
    now: dt.datetime | None = None,
    reads: Collection[str] | None = None,
    environment: str = "training",
) -> ValidationResult:
    """:func:`~mooring.contract._validation.validate` over shards: one merged pass, one verdict.

    Examples:
        >>> ray = Engine("ray")
        >>> result = sharded_validate("s3://b/day=*/", schema, engine=ray)  # doctest: +SKIP
        >>> result.ok  # doctest: +SKIP
        True
    """
    stats = sharded_statistics(source, options, schema=schema, engine=engine)
    return validate_statistics(
        stats,
        schema,
        baseline=baseline,
        contract=contract,
        skip_columns=skip_columns,
        now=now,
        reads=reads,
        environment=environment,
    )
