"""The data contract layer: statistics, schema, validation.

The names below are imported on first use (PEP 562): the server, which needs only
:mod:`mooring.contract.schema`, starts without the statistics' and readers' modules
and what they import (``pyarrow.compute``, the CSV reader, datasketches).

Example:
    >>> from mooring.contract import ReadOptions
    >>> ReadOptions().na_values[:2]
    ('', 'NA')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mooring.contract.io import ReadOptions, iter_batches, read_table
    from mooring.contract.sketch import FrequencySketch, QuantileSketch
    from mooring.contract.statistics import (
        ColumnStatistics,
        DatasetStatistics,
        NumericSummary,
        StringSummary,
        compute_statistics,
    )

# Each public name and the module it comes from.
_EXPORTS = {
    "ColumnStatistics": "mooring.contract.statistics",
    "DatasetStatistics": "mooring.contract.statistics",
    "FrequencySketch": "mooring.contract.sketch",
    "NumericSummary": "mooring.contract.statistics",
    "QuantileSketch": "mooring.contract.sketch",
    "ReadOptions": "mooring.contract.io",
    "StringSummary": "mooring.contract.statistics",
    "compute_statistics": "mooring.contract.statistics",
    "iter_batches": "mooring.contract.io",
    "read_table": "mooring.contract.io",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
