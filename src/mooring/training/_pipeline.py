"""The tf.data input pipeline: Arrow data in, ``(features, target, weight)`` batches out.

Two sources, one contract:

* **in memory** (CSV, or Parquet that fits under ``[model] memory_limit_mb``):
  the columns are converted once to arrays held as tensors; each epoch draws a
  permutation from a stateless RNG keyed by ``(seed, epoch)`` and gathers whole
  batches by index — no per-row Python, no shuffle buffer;
* **streamed** (Parquet above the limit): record batches are read row group by
  row group in a seeded order per epoch and shuffled through a bounded window
  of rows, then batched; memory stays bounded by the window.

Both depend only on ``(seed, epoch)``, so a run resumed at epoch *k* sees
exactly the batches an uninterrupted run sees from epoch *k* on. The validation
split is a fixed hash of the row number and the seed, the same for both.
Batches are prefetched with AUTOTUNE. (Caching is unnecessary: the in-memory
source already is the cache, and the streamed source is by design too large.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from mooring.contract._io import ReadOptions, iter_batches, read_table
from mooring.errors import DataError
from mooring.features._inputs import columns_from_table
from mooring.features._spec import FeatureSpec
from mooring.formats._split import validation_mask
from mooring.training._labels import LabelEncoding

__all__ = [
    "InMemoryData",
    "StreamedData",
    "TrainingData",
    "labelled_split",
    "load_in_memory",
    "load_training_data",
    "validation_mask",
]

STREAM_WINDOW_ROWS = 262_144


def _target_dtype(label: LabelEncoding) -> tf.DType:
    return tf.int64 if label.is_classification else tf.float32


def _targets(label: LabelEncoding, raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if label.is_classification:
        return raw.astype(np.int64).reshape(-1, 1)
    return ((raw - label.mean) / label.std).astype(np.float32).reshape(-1, 1)


class TrainingData:
    """Common interface: datasets for fitting and validation, and their sizes."""

    train_rows: int
    validation_rows: int
    dropped_rows: int
    class_counts: np.ndarray[Any, Any] | None
    #: The validation rows' classes: with ``class_counts``, every labelled row's.
    validation_class_counts: np.ndarray[Any, Any] | None = None

    def train_dataset(
        self,
        *,
        batch_size: int,
        seed: int,
        first_epoch: int,
        epochs: int,
        weights: np.ndarray[Any, Any] | None,
    ) -> tf.data.Dataset:
        raise NotImplementedError

    def validation_dataset(
        self, *, batch_size: int, weights: np.ndarray[Any, Any] | None
    ) -> tf.data.Dataset | None:
        raise NotImplementedError

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, math.ceil(self.train_rows / batch_size))

    def labelled(self) -> Iterator[tuple[dict[str, Any], np.ndarray[Any, Any]]]:
        """Every labelled row, training and validation, as ``(columns, targets)`` chunks in
        a fixed order: one pass for a fit that needs no held-out rows (the linear model's)."""
        raise NotImplementedError


def _class_weight_of(targets: np.ndarray[Any, Any], weights: np.ndarray[Any, Any] | None) -> Any:
    if weights is None:
        return None
    return weights[targets.reshape(-1)].astype(np.float32)


@dataclass
class InMemoryData(TrainingData):
    """Training data held as arrays; batches are gathered by a per-epoch permutation."""

    features: dict[str, np.ndarray[Any, Any]]
    targets: np.ndarray[Any, Any]
    val_features: dict[str, np.ndarray[Any, Any]]
    val_targets: np.ndarray[Any, Any]
    label: LabelEncoding
    train_rows: int = 0
    validation_rows: int = 0
    dropped_rows: int = 0
    class_counts: np.ndarray[Any, Any] | None = None
    validation_class_counts: np.ndarray[Any, Any] | None = None

    def train_dataset(
        self,
        *,
        batch_size: int,
        seed: int,
        first_epoch: int,
        epochs: int,
        weights: np.ndarray[Any, Any] | None,
    ) -> tf.data.Dataset:
        n = self.train_rows
        columns = {k: tf.constant(v) for k, v in self.features.items()}
        targets = tf.constant(self.targets)
        row_weights = (
            _class_weight_of(self.targets, weights) if self.label.is_classification else None
        )
        sample_weights = tf.constant(row_weights) if row_weights is not None else None
        sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        row_lengths = tf.constant(sizes, dtype=tf.int64)
        seed_t = tf.constant(seed, dtype=tf.int64)

        def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
            noise = tf.random.stateless_uniform([n], seed=tf.stack([seed_t, epoch]))
            order = tf.argsort(noise, stable=True)
            ragged = tf.RaggedTensor.from_row_lengths(order, row_lengths)
            return tf.data.Dataset.from_tensor_slices(ragged)

        def gather(index: Any) -> Any:
            if isinstance(index, tf.RaggedTensor):
                index = index.flat_values
            x = {k: tf.gather(v, index) for k, v in columns.items()}
            y = tf.gather(targets, index)
            if sample_weights is None:
                return x, y
            return x, y, tf.gather(sample_weights, index)

        return (
            tf.data.Dataset.range(first_epoch, epochs)
            .flat_map(epoch_batches)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    def labelled(self) -> Iterator[tuple[dict[str, Any], np.ndarray[Any, Any]]]:
        yield self.features, self.targets
        if self.validation_rows:
            yield self.val_features, self.val_targets

    def validation_dataset(
        self, *, batch_size: int, weights: np.ndarray[Any, Any] | None
    ) -> tf.data.Dataset | None:
        if self.validation_rows == 0:
            return None
        pieces: list[Any] = [self.val_features, self.val_targets]
        if weights is not None and self.label.is_classification:
            pieces.append(_class_weight_of(self.val_targets, weights))
        return (
            tf.data.Dataset.from_tensor_slices(tuple(pieces))
            .batch(max(batch_size, 2048))
            .prefetch(tf.data.AUTOTUNE)
        )


def labelled_split(
    table: pa.Table,
    label: LabelEncoding,
    row_ids: np.ndarray[Any, Any],
    fraction: float,
    seed: int,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(rows with a label, rows in the validation split, the encoded labels) of ``table``,
    whose rows are numbered ``row_ids`` in the whole data: training rows are
    ``keep & ~mask``.

    Raises:
        DataError: the label column is not in ``table``.
    """
    if label.column not in table.column_names:
        raise DataError(
            f"label column {label.column!r} ([data] label) is not in the training data; "
            f"columns are {table.column_names}"
        )
    raw, _ = label.encode(table.column(label.column))
    keep = raw >= 0 if label.is_classification else ~np.isnan(raw)
    return keep, validation_mask(row_ids, fraction, seed), raw


def _split_table(
    table: pa.Table,
    spec: FeatureSpec,
    label: LabelEncoding,
    fraction: float,
    seed: int,
    offset: int = 0,
    row_ids: np.ndarray[Any, Any] | None = None,
) -> tuple[dict[str, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], int]:
    """Features, targets and validation mask of the labelled rows of ``table``; a row's
    number is ``offset`` + its position, or ``row_ids`` when given (a shard's rows)."""
    if row_ids is None:
        row_ids = np.arange(offset, offset + table.num_rows)
    keep, mask, raw = labelled_split(table, label, row_ids, fraction, seed)
    columns = columns_from_table(table, spec)
    dropped = int((~keep).sum())
    if dropped:
        columns = {k: v[keep] for k, v in columns.items()}
        raw, mask = raw[keep], mask[keep]
    return columns, _targets(label, raw), mask, dropped


def load_in_memory(
    table: pa.Table,
    spec: FeatureSpec,
    label: LabelEncoding,
    *,
    validation_split: float,
    seed: int,
    row_ids: np.ndarray[Any, Any] | None = None,
) -> InMemoryData:
    """Convert a table once and split it into training and validation rows (``row_ids``:
    each row's number in the whole data, for a shard; default its position)."""
    columns, targets, mask, dropped = _split_table(
        table, spec, label, validation_split, seed, row_ids=row_ids
    )
    train = ~mask
    if int(train.sum()) == 0:
        raise DataError(
            f"no labelled training rows ({table.num_rows} rows, {dropped} without a label); "
            "check the data and [data] label"
        )
    counts, val_counts = (
        (
            np.bincount(targets[train].reshape(-1), minlength=label.num_classes),
            np.bincount(targets[mask].reshape(-1), minlength=label.num_classes),
        )
        if label.is_classification
        else (None, None)
    )
    return InMemoryData(
        features={k: v[train] for k, v in columns.items()},
        targets=targets[train],
        val_features={k: v[mask] for k, v in columns.items()},
        val_targets=targets[mask],
        label=label,
        train_rows=int(train.sum()),
        validation_rows=int(mask.sum()),
        dropped_rows=dropped,
        class_counts=counts,
        validation_class_counts=val_counts,
    )


@dataclass
class StreamedData(TrainingData):
    """Parquet read row group by row group, shuffled through a bounded window of rows."""

    path: Path
    spec: FeatureSpec
    label: LabelEncoding
    validation_split: float
    seed: int
    options: ReadOptions
    window_rows: int = STREAM_WINDOW_ROWS
    train_rows: int = 0
    validation_rows: int = 0
    dropped_rows: int = 0
    class_counts: np.ndarray[Any, Any] | None = None
    validation_class_counts: np.ndarray[Any, Any] | None = None

    def scan(self) -> StreamedData:
        """One pass over the label column only: row counts and class counts."""
        file = pq.ParquetFile(self.path)
        offset = 0
        counts = np.zeros(max(1, self.label.num_classes), dtype=np.int64)
        val_counts = np.zeros_like(counts)
        for group in range(file.num_row_groups):
            table = file.read_row_group(group, columns=[self.label.column])
            keep, mask, raw = labelled_split(
                table,
                self.label,
                np.arange(offset, offset + table.num_rows),
                self.validation_split,
                self.seed,
            )
            self.train_rows += int((keep & ~mask).sum())
            self.validation_rows += int((keep & mask).sum())
            self.dropped_rows += int((~keep).sum())
            if self.label.is_classification:
                counts += np.bincount(raw[keep & ~mask].astype(np.int64), minlength=len(counts))[
                    : len(counts)
                ]
                val_counts += np.bincount(raw[keep & mask].astype(np.int64), minlength=len(counts))[
                    : len(counts)
                ]
            offset += table.num_rows
        self.class_counts = counts if self.label.is_classification else None
        self.validation_class_counts = val_counts if self.label.is_classification else None
        if self.train_rows == 0:
            raise DataError(f"'{self.path}' has no labelled training rows")
        return self

    def _rows(self, epoch: int, validation: bool) -> Iterator[tuple[dict[str, Any], Any]]:
        file = pq.ParquetFile(self.path)
        meta = file.metadata
        offsets = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        groups = list(range(meta.num_row_groups))
        if not validation:
            groups = np.random.default_rng([self.seed, epoch]).permutation(groups).tolist()
        for group in groups:
            # The same cleaning (whitespace, na_values) as every other read.
            table = pa.Table.from_batches(
                list(iter_batches(file.read_row_group(int(group)), self.options))
            )
            columns, targets, mask, _ = _split_table(
                table,
                self.spec,
                self.label,
                self.validation_split,
                self.seed,
                offset=int(offsets[group]),
            )
            take = mask if validation else ~mask
            yield {k: v[take] for k, v in columns.items()}, targets[take]

    def labelled(self) -> Iterator[tuple[dict[str, Any], np.ndarray[Any, Any]]]:
        # Row group by row group, in the file's order, each read once: memory stays
        # bounded by one group.
        file = pq.ParquetFile(self.path)
        offset = 0
        for group in range(file.num_row_groups):
            table = pa.Table.from_batches(
                list(iter_batches(file.read_row_group(group), self.options))
            )
            columns, targets, _, _ = _split_table(
                table, self.spec, self.label, self.validation_split, self.seed, offset=offset
            )
            offset += file.metadata.row_group(group).num_rows  # as _rows numbers them
            yield columns, targets

    def _batches(
        self, epoch: int, batch_size: int, validation: bool, weights: np.ndarray[Any, Any] | None
    ) -> Iterator[tuple[Any, ...]]:
        rng = np.random.default_rng([self.seed, epoch, 1])
        pending: list[tuple[dict[str, Any], Any]] = []
        held = 0

        def flush(final: bool) -> Iterator[tuple[Any, ...]]:
            nonlocal pending, held
            if not pending:
                return
            cols = {k: np.concatenate([p[0][k] for p in pending]) for k in pending[0][0]}
            ys = np.concatenate([p[1] for p in pending])
            if not validation:
                order = rng.permutation(len(ys))
                cols, ys = {k: v[order] for k, v in cols.items()}, ys[order]
            full = (len(ys) // batch_size) * batch_size
            end = len(ys) if final else full
            for start in range(0, end, batch_size):
                stop = min(start + batch_size, end)
                x = {k: v[start:stop] for k, v in cols.items()}
                y = ys[start:stop]
                if weights is not None and self.label.is_classification:
                    yield x, y, weights[y.reshape(-1)].astype(np.float32)
                else:
                    yield x, y
            pending = [] if final else [({k: v[end:] for k, v in cols.items()}, ys[end:])]
            held = len(ys) - end if not final else 0

        for cols, ys in self._rows(epoch, validation):
            pending.append((cols, ys))
            held += len(ys)
            if held >= self.window_rows:
                yield from flush(final=False)
        yield from flush(final=True)

    def _signature(self, weighted: bool) -> tuple[Any, ...]:
        x = {
            f.name: tf.TensorSpec([None], tf.string if f.dtype == "string" else tf.float32)
            for f in self.spec.features
        }
        y = tf.TensorSpec([None, 1], _target_dtype(self.label))
        if weighted:
            return x, y, tf.TensorSpec([None], tf.float32)
        return x, y

    def train_dataset(
        self,
        *,
        batch_size: int,
        seed: int,
        first_epoch: int,
        epochs: int,
        weights: np.ndarray[Any, Any] | None,
    ) -> tf.data.Dataset:
        weighted = weights is not None and self.label.is_classification

        def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
            return tf.data.Dataset.from_generator(
                lambda e: self._batches(int(e), batch_size, False, weights),
                args=(epoch,),
                output_signature=self._signature(weighted),
            )

        return (
            tf.data.Dataset.range(first_epoch, epochs)
            .flat_map(one_epoch)
            .prefetch(tf.data.AUTOTUNE)
        )

    def validation_dataset(
        self, *, batch_size: int, weights: np.ndarray[Any, Any] | None
    ) -> tf.data.Dataset | None:
        if self.validation_rows == 0:
            return None
        weighted = weights is not None and self.label.is_classification
        size = max(batch_size, 2048)
        dataset = tf.data.Dataset.from_generator(
            lambda: self._batches(0, size, True, weights),
            output_signature=self._signature(weighted),
        )
        # A known length lets Keras end each validation pass without a warning.
        batches = math.ceil(self.validation_rows / size)
        return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(
            tf.data.AUTOTUNE
        )


def _parquet_bytes(path: Path) -> int | None:
    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowInvalid, OSError):
        return None
    return int(sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)))


def load_training_data(
    source: Any,
    spec: FeatureSpec,
    label: LabelEncoding,
    *,
    options: ReadOptions,
    validation_split: float,
    seed: int,
    memory_limit_mb: float,
) -> TrainingData:
    """Pick in-memory or streamed reading for ``source`` (path or Arrow table).

    Raises:
        DataError: the label column is absent or holds unexpected values, a
            numeric feature holds text, or no labelled rows remain.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        size = _parquet_bytes(path) if path.suffix.lower() in (".parquet", ".pq") else None
        if size is not None and size > memory_limit_mb * (1 << 20):
            return StreamedData(
                path=path,
                spec=spec,
                label=label,
                validation_split=validation_split,
                seed=seed,
                options=options,
            ).scan()
        table = read_table(path, options)
    elif isinstance(source, pa.Table):
        table = source
    else:
        table = read_table(source, options)
    return load_in_memory(table, spec, label, validation_split=validation_split, seed=seed)
