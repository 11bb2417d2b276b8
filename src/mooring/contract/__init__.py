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

from typing import TYPE_CHECKING

from mooring._exports import exports_on_first_use

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


__getattr__, __dir__ = exports_on_first_use(__name__, _EXPORTS, globals())
