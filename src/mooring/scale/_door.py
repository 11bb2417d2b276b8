"""Rows of a shard at the server's door: decoded and checked one by one, as a request is.

A shard's input columns go through the server's own decoder
(:func:`~mooring.formats._columns.column_values`, with the server's NaN / Infinity
policy) and the version's :class:`~mooring.serving._contract.InputContract`; where a
column fails as a whole, each value is decoded alone so that every refused row is named,
with the decoder's (or the contract's) own message.

Examples:
    >>> import pyarrow as pa
    >>> from mooring.formats._model import TensorInfo
    >>> inputs = {"age": TensorInfo("age", "float32", (None,))}
    >>> columns, reasons = decode(pa.table({"age": ["39", "forty"]}), inputs, InputPolicy(), "p")
    >>> columns["age"].tolist()[0], reasons
    (39.0, {1: ["age[1]: expected a number (or null for missing), got string 'forty'"]})
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.contract._io import is_number
from mooring.errors import InvalidRequestError
from mooring.formats._columns import InputPolicy, column_values, columns_from_columns
from mooring.formats._model import TensorInfo

__all__ = ["check_contract", "decode"]


def _json_values(column: pa.ChunkedArray, info: TensorInfo) -> list[Any]:
    """A column's values as a client's JSON would carry them (CSV text of a number: the number)."""
    kind = column.type
    if not info.is_string and pa.types.is_decimal(kind):
        column = column.cast(pa.float64())
    values: list[Any] = column.to_pylist()
    if info.is_string or not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return values
    return [float(v) if type(v) is str and is_number(v) else v for v in values]


def decode(
    table: pa.Table, inputs: dict[str, TensorInfo], policy: InputPolicy, where: str
) -> tuple[dict[str, np.ndarray[Any, Any]], dict[int, list[str]]]:
    """Every input column decoded by the server's decoder; the reasons of the refused rows.

    A refused value is replaced by a missing one in the columns (its row is never scored).
    """
    rows = table.num_rows
    reasons: dict[int, list[str]] = {}
    absent = [name for name in inputs if name not in table.column_names]
    if absent:
        why = f"{where}: missing field {absent[0]!r}"
        present = {n: [None] for n in inputs if n in table.column_names}
        try:
            columns_from_columns(present, inputs, where=where, policy=policy, arrays=False)
        except InvalidRequestError as exc:
            why = exc.message
        for i in range(rows):
            reasons[i] = [why]
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for name, info in inputs.items():
        if name in absent:
            values: list[Any] = [""] * rows if info.is_string else [math.nan] * rows
        else:
            values = _json_values(table.column(name), info)
            try:
                values = column_values(name, values, info, policy)
            except InvalidRequestError:
                values = _value_by_value(name, values, info, policy, reasons)
        columns[name] = np.array(values, dtype=info.numpy_dtype())
    return columns, reasons


def _value_by_value(
    name: str,
    values: list[Any],
    info: TensorInfo,
    policy: InputPolicy,
    reasons: dict[int, list[str]],
) -> list[Any]:
    """The decoder on each value alone, so every refused row is named (not just the first)."""
    decoded: list[Any] = []
    for i, value in enumerate(values):
        try:
            decoded.extend(column_values(name, [value], info, policy))
        except InvalidRequestError as exc:
            # The decoder names the value's index in what it was given: here, the row's.
            message = exc.message
            head = f"{name}[0]: "
            if message.startswith(head):
                message = f"{name}[{i}]: " + message[len(head) :]
            reasons.setdefault(i, []).append(message)
            decoded.append("" if info.is_string else math.nan)
    return decoded


def check_contract(
    contract: Any,
    columns: dict[str, np.ndarray[Any, Any]],
    reasons: dict[int, list[str]],
    flagged: set[int],
    refuse: frozenset[str],
) -> None:
    """The server's contract check over every row; each violating row found and judged.

    The check runs on halves of a range that violates until single rows remain (a few
    dozen checks per violating row, however long the shard). A row whose violation
    ``refuse`` names (``out_of_range``, ``unseen_category``) gets the server's refusal
    message as its reason; any other violating row is scored and ``flagged``.
    """
    found = contract.check(columns)
    if not found:
        return
    names = sorted({v.input for v in found})
    stack = [(0, len(columns[names[0]]), found)]
    while stack:
        lo, hi, found = stack.pop()
        if hi - lo > 1:
            mid = (lo + hi) // 2
            for start, stop in ((mid, hi), (lo, mid)):
                part = contract.check({n: columns[n][start:stop] for n in names})
                if part:
                    stack.append((start, stop, part))
            continue
        for violation in found:
            setting = "out_of_range" if violation.kind == "out_of_range" else "unseen_category"
            if setting in refuse:
                reasons.setdefault(lo, []).append(violation.message(setting))
            else:
                flagged.add(lo)
