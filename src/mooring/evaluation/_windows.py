"""Time windows (day, week, month) or blocks of N ordered rows over the evaluation data.

Weeks start on Monday and are named by their first day; months by ``YYYY-MM``; row
blocks by their position (``rows 0-9999``). A timestamp column stored as text is parsed
as ISO 8601.

Examples:
    >>> import pyarrow as pa, datetime as dt
    >>> t = pa.table({"ts": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 9)]})
    >>> [w.name for w in build_windows(t, "ts", "week")]
    ['2024-01-01', '2024-01-08']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mooring.errors import DataError
from mooring.evaluation._metrics import IntArray

__all__ = ["Window", "build_windows"]


@dataclass(frozen=True)
class Window:
    """One window: its name and row indices, in time order."""

    name: str
    rows: IntArray


def _timestamps(table: pa.Table, name: str) -> npt.NDArray[np.datetime64]:
    column = table.column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            column = pc.cast(column, pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                f"[evaluation] windows: column '{name}' holds text that is not an ISO 8601 "
                "timestamp (e.g. 2024-05-01T12:00:00); fix the data or set freq to a number "
                "of rows"
            ) from None
    if pa.types.is_date(column.type):
        column = pc.cast(column, pa.timestamp("s"))
    if not pa.types.is_timestamp(column.type):
        raise DataError(
            f"[evaluation] windows: column '{name}' has type {column.type}, not a timestamp; "
            "use freq = N (rows per window) to window by an ordering column"
        )
    if column.null_count:
        raise DataError(
            f"[evaluation] windows: column '{name}' has {column.null_count} missing "
            "timestamps; fill or drop them before evaluating by time window"
        )
    stamps: npt.NDArray[np.datetime64] = np.asarray(column.to_numpy(), dtype="datetime64[us]")
    return stamps


def build_windows(table: pa.Table, column: str | None, freq: str | int) -> list[Window]:
    """Windows in order; ``column`` may be None only for ``freq`` given in rows."""
    if column is not None and column not in table.column_names:
        raise DataError(
            f"[evaluation] windows: column '{column}' is not in the evaluation data "
            f"(columns: {', '.join(table.column_names)}); fix [evaluation.windows] column"
        )
    if isinstance(freq, int):
        if column is None:
            order = np.arange(table.num_rows)
        else:
            order = np.asarray(
                pc.sort_indices(table, sort_keys=[(column, "ascending")]).to_numpy(),
                dtype=np.int64,
            )
        return [
            Window(
                f"rows {start}-{min(start + freq, table.num_rows) - 1}", order[start : start + freq]
            )
            for start in range(0, table.num_rows, freq)
        ]
    if column is None:
        raise DataError(
            f"[evaluation] windows: freq = '{freq}' needs a timestamp column; set "
            "[data] timestamp or [evaluation.windows] column"
        )
    stamps = _timestamps(table, column)
    days = stamps.astype("datetime64[D]")
    if freq == "day":
        keys = days
    elif freq == "week":
        # 1970-01-01 was a Thursday: shift so weeks start on Monday.
        keys = days - ((days.astype(np.int64) + 3) % 7).astype("timedelta64[D]")
    elif freq == "month":
        keys = stamps.astype("datetime64[M]")
    else:
        raise DataError(f"[evaluation] windows: freq {freq!r} is not day, week, month or a number")
    unique, codes = np.unique(keys, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    splits = np.split(order, np.cumsum(np.bincount(codes, minlength=unique.size))[:-1])
    return [Window(str(u), rows.astype(np.int64)) for u, rows in zip(unique, splits, strict=True)]
