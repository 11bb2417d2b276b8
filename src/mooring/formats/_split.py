"""The validation split: which rows of the training data a network validates on.

A row is in the split when a splitmix64 hash of its number in the data and the seed falls
below ``[model] validation_split``: the same rows in memory, streamed or in shards, and
the same rows for ``mooring init``, which states the training plan before training
(:func:`training_rows`), as for the training that runs it. Rows without a label train
nowhere.

Examples:
    >>> validation_mask(np.arange(10), 0.0, 1).any()
    np.False_
    >>> training_rows(pa.array([1.0, None, 3.0, float("nan"), 5.0]), 0.0, seed=42)
    3
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["labelled", "training_rows", "validation_mask"]


def validation_mask(
    row_ids: np.ndarray[Any, Any], fraction: float, seed: int
) -> np.ndarray[Any, Any]:
    """True for rows in the validation split: a splitmix64 hash of (row, seed) below ``fraction``.

    Examples:
        >>> validation_mask(np.arange(10), 0.0, 1).any()
        np.False_
    """
    if fraction <= 0.0:
        return np.zeros(len(row_ids), dtype=bool)
    with np.errstate(over="ignore"):
        z = row_ids.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


def labelled(labels: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """True for the rows that have a label: neither null nor (a number column) NaN.

    >>> labelled(pa.array(["a", None, "b"])).tolist()
    [True, False, True]
    """
    present = pc.is_valid(labels)
    if pa.types.is_floating(labels.type):
        present = pc.and_(present, pc.invert(pc.is_nan(labels)))
    return np.asarray(present.to_numpy(zero_copy_only=False), dtype=bool)


def training_rows(labels: pa.Array | pa.ChunkedArray, fraction: float, seed: int) -> int:
    """How many rows a network trains on, from the training data's label column: the
    rows with a label, outside the validation split of ``fraction`` drawn with ``seed``."""
    mask = validation_mask(np.arange(len(labels)), fraction, seed)
    return int((labelled(labels) & ~mask).sum())
