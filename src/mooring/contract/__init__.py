"""The data contract layer: statistics, schema, validation."""

from __future__ import annotations

from mooring.contract.io import ReadOptions, iter_batches, read_table
from mooring.contract.sketch import FrequencySketch, QuantileSketch
from mooring.contract.statistics import (
    ColumnStatistics,
    DatasetStatistics,
    NumericSummary,
    StringSummary,
    compute_statistics,
)

__all__ = [
    "ColumnStatistics",
    "DatasetStatistics",
    "FrequencySketch",
    "NumericSummary",
    "QuantileSketch",
    "ReadOptions",
    "StringSummary",
    "compute_statistics",
    "iter_batches",
    "read_table",
]
