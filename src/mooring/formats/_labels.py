"""The label encoding a model folder records: how label values become targets and back.

* classification (``binary``/``multiclass``): class ids are positions in the label
  vocabulary, and the exported model's probability columns follow it; for a binary
  task the vocabulary is ordered ``[negative, positive]``.
* regression: the target is standardised with ``mean`` and ``std`` for training; the
  exported model returns values in the label's own unit.

Training decides the encoding (``mooring.training.resolve_label``); evaluation,
replay and monitoring read it back from ``mooring.json`` with
:meth:`LabelEncoding.from_dict`.

Examples:
    >>> enc = LabelEncoding(column="class", task="binary", vocabulary=("<=50K", ">50K"),
    ...                     positive=">50K")
    >>> LabelEncoding.from_dict(enc.to_dict()) == enc
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.errors import DataError

__all__ = ["MAX_INTEGER_CLASS_SPAN", "LabelEncoding", "integer_classes"]

#: An integer label spanning at most this many values more than its least is classes
#: (digits 0–9, ratings 1–5), a wider one a quantity: what training's ``task = "auto"``
#: and ``mooring init`` decide.
MAX_INTEGER_CLASS_SPAN = 20


def integer_classes(col: Any) -> bool:
    """Whether an integer label's values are few enough to be classes, from its column's
    statistics (a span of at most :data:`MAX_INTEGER_CLASS_SPAN`; no values: yes)."""
    summary = col.numeric
    if summary is None or summary.count == 0:
        return True
    return float(summary.max - summary.min) <= MAX_INTEGER_CLASS_SPAN


@dataclass(frozen=True)
class LabelEncoding:
    """How label values become training targets (and back)."""

    column: str
    task: str
    vocabulary: tuple[str, ...] = ()
    positive: str | None = None
    mean: float = 0.0
    std: float = 1.0
    counts: tuple[int, ...] = field(default=(), compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    @property
    def is_classification(self) -> bool:
        return self.task in ("binary", "multiclass")

    def encode(self, column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray[Any, Any], int]:
        """Targets for the rows with a label, and how many rows had none.

        Returns ``(targets, missing)`` where ``targets`` holds one entry per row
        (NaN / -1 where the label is missing; the caller drops those rows).

        Raises:
            DataError: classification labels outside the vocabulary, or a
                regression label that is not a number.
        """
        import pyarrow.compute as pc  # on first use: the server's start does without it

        if self.is_classification:
            text = column if _is_text(column.type) else pc.cast(column, pa.string())
            if pa.types.is_floating(column.type):
                # 1.0 and 1 name the same class.
                text = pc.cast(pc.cast(column, pa.int64()), pa.string())
            ids = pc.index_in(text, value_set=pa.array(list(self.vocabulary), pa.string()))
            present = pc.is_valid(text)
            unknown = pc.and_(present, pc.is_null(ids))
            n_unknown = int(pc.sum(unknown).as_py() or 0)
            if n_unknown:
                examples = sorted({str(v) for v in text.filter(unknown).to_pylist()})[:5]
                raise DataError(
                    f"label {self.column!r} has {n_unknown} value(s) outside the label vocabulary "
                    f"{list(self.vocabulary)} (e.g. {examples}); fix the data, or widen the "
                    f"label's domain in the schema ([contract.columns.{self.column}] domain)"
                )
            filled = pc.fill_null(ids, -1)
            targets = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.int64)
            return targets, int(column.null_count)
        if _is_text(column.type):
            raise DataError(
                f"label {self.column!r} holds text but the task is regression; set "
                "[model] task = 'binary' or 'multiclass', or fix the label column"
            )
        values = pc.fill_null(pc.cast(column, pa.float64()), float("nan"))
        array = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        return array, int(np.isnan(array).sum())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelEncoding:
        """The encoding as ``mooring.json`` stores it under ``"label"``."""
        return cls(
            column=str(data["column"]),
            task=str(data["task"]),
            vocabulary=tuple(str(v) for v in data.get("vocabulary", ())),
            positive=data.get("positive"),
            mean=float(data.get("mean", 0.0)),
            std=float(data.get("std", 1.0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "task": self.task,
            "vocabulary": list(self.vocabulary),
            "positive": self.positive,
            "mean": self.mean,
            "std": self.std,
        }


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))
