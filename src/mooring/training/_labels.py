"""The task and the label encoding, decided from the config, the schema and the statistics.

* classification (``binary``/``multiclass``): the label vocabulary is the
  schema's domain for the label (or the statistics' values), sorted; for a
  binary task it is ordered ``[negative, positive]`` where the positive value is
  ``[data] positive`` or, when unset, the last value in sorted order. Class ids
  are positions in this vocabulary, and the exported model's probability columns
  follow it.
* regression: the target is standardised with the statistics' mean and standard
  deviation for training; the exported model returns values in the original unit.

Encoding a label column checks it: a missing label column, or values outside the
vocabulary, are errors before any training starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mooring.config import MooringConfig
from mooring.errors import ConfigError, DataError
from mooring.formats._labels import LabelEncoding, integer_classes

if TYPE_CHECKING:
    from mooring.contract._schema import Schema
    from mooring.contract._statistics import DatasetStatistics

__all__ = ["LabelEncoding", "resolve_label"]

MAX_CLASSES = 1000


def resolve_label(
    cfg: MooringConfig, statistics: DatasetStatistics, schema: Schema | None = None
) -> LabelEncoding:
    """Decide the task and the label encoding before any data is read for training.

    Raises:
        ConfigError: no ``[data] label``, a task that does not fit the label, or a
            ``[data] positive`` value that the label never takes.
        DataError: the label column is absent from the data or has a single value.
    """
    label = cfg.data.label or (schema.label if schema is not None else None)
    if label is None:
        raise ConfigError(
            "[data] label is not set; name the column the model should predict, "
            'e.g. label = "class"'
        )
    if label not in statistics:
        raise DataError(
            f"label column {label!r} ([data] label) is not in the training data; "
            f"columns are {statistics.column_names}. Fix [data] label or the data"
        )
    col = statistics[label]
    col_type = col.type
    if schema is not None and label in schema.columns:
        col_type = schema.columns[label].type
    numeric = col_type in ("integer", "float")
    task: str = cfg.model.task
    if task == "auto":
        task = (
            "regression"
            if col_type == "float" or (col_type == "integer" and not integer_classes(col))
            else "classification"
        )
    if task == "regression":
        if not numeric or col.numeric is None:
            raise ConfigError(
                f"[model] task = 'regression' needs a numeric label; {label!r} holds {col_type} "
                "values. Use task = 'binary' or 'multiclass'"
            )
        std = col.numeric.std
        return LabelEncoding(
            column=label, task="regression", mean=col.numeric.mean, std=std if std > 0 else 1.0
        )
    vocabulary, counts = _classes(label, col, schema, numeric)
    if len(vocabulary) < 2:
        raise DataError(
            f"label {label!r} takes a single value {vocabulary} in the training data; a "
            "classifier needs at least two classes"
        )
    if task == "classification":
        task = "binary" if len(vocabulary) == 2 else "multiclass"
    if task == "binary" and len(vocabulary) != 2:
        raise ConfigError(
            f"[model] task = 'binary' but label {label!r} has {len(vocabulary)} values "
            f"({vocabulary[:10]}); use task = 'multiclass'"
        )
    positive = None
    if task == "binary":
        positive = cfg.data.positive if cfg.data.positive is not None else vocabulary[-1]
        if positive not in vocabulary:
            raise ConfigError(
                f"[data] positive = {positive!r} is not a value of label {label!r}; its values "
                f"are {list(vocabulary)}"
            )
        negative = next(v for v in vocabulary if v != positive)
        order = [negative, positive]
        counts = tuple(counts[vocabulary.index(v)] for v in order)
        vocabulary = tuple(order)
    return LabelEncoding(
        column=label, task=task, vocabulary=vocabulary, positive=positive, counts=counts
    )


def _classes(
    label: str, col: Any, schema: Schema | None, numeric: bool
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if numeric:
        summary = col.numeric
        if summary is None or summary.count == 0:
            raise DataError(f"label {label!r} has no values in the training data")
        lo, hi = int(np.floor(summary.min)), int(np.ceil(summary.max))
        if hi - lo + 1 > MAX_CLASSES:
            raise ConfigError(
                f"label {label!r} spans {hi - lo + 1} integer values; too many classes for "
                "classification — use [model] task = 'regression'"
            )
        codes = tuple(str(v) for v in range(lo, hi + 1))
        return codes, tuple(0 for _ in codes)
    strings = col.strings
    found = dict(strings.frequencies.counts) if strings is not None else {}
    domain = None
    if schema is not None and label in schema.columns:
        domain = schema.columns[label].domain
    values: list[str] = sorted(domain) if domain else sorted(found)
    if len(values) > MAX_CLASSES:
        raise ConfigError(
            f"label {label!r} has {len(values)} distinct values; too many classes (max "
            f"{MAX_CLASSES}). Check [data] label"
        )
    return tuple(values), tuple(int(found.get(v, 0)) for v in values)
