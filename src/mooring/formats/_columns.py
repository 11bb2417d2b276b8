"""JSON rows and columns → typed input columns, or a 400 naming the field: the one decoder.

The server decodes every request with it (whatever the protocol), and the train/serve
parity check decodes its JSON records with it too, so "decoded as a server receives
them" means exactly this module.

Policy, the same for every protocol:

* every input of the signature must be present and nothing else (no silent defaults);
* numeric inputs take JSON numbers; ``null`` means missing and becomes NaN. The ``NaN``
  literal (which TF Serving clients and tritonclient write) means missing too, or is
  refused with ``nan_policy = "reject"``; ``Infinity`` is refused, or means missing with
  ``infinity_policy = "missing"``. Booleans, strings and numbers that overflow float32
  are refused;
* string inputs take JSON strings, or TF Serving's ``{"b64": "..."}`` (base64 of UTF-8
  text); ``null`` means missing and becomes ``""``;
* an object with a key twice is refused, naming the key (JSON parsers disagree on which
  one wins, so a body must not depend on it);
* each value is a scalar (rank 1 columns only: no silent broadcasting), every column
  has the same number of rows, and a batch has at least one row.

Examples:
    >>> from mooring.formats._model import TensorInfo
    >>> spec = {"age": TensorInfo("age", "float32", (None,))}
    >>> cols, n = columns_from_rows([{"age": 39}, {"age": None}], spec, where="instances")
    >>> n, cols["age"].tolist()
    (2, [39.0, nan])
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from mooring.errors import InvalidRequestError
from mooring.formats._model import TensorInfo

__all__ = [
    "DEFAULT_POLICY",
    "InputPolicy",
    "column_array",
    "column_values",
    "columns_from_columns",
    "columns_from_rows",
    "describe",
    "loads",
    "refuse_missing",
]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT_BOUNDS = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}
_INFINITIES = (math.inf, -math.inf)
_FLOATS = ("float32", "float64")
_NULL = type(None)
_STR = {str}
_STR_OR_NULL = {str, _NULL}
_FLOAT = {float}
_NUMBERS_OR_NULL = frozenset((float, int, _NULL))


@dataclass(frozen=True)
class InputPolicy:
    """What NaN and Infinity mean at the door (``[serving] nan_policy`` / ``infinity_policy``),
    and the fields a request may carry besides the inputs: a version's known non-feature
    columns (its label, excluded ids, the timestamp), taken and ignored as ``mooring
    score`` ignores them."""

    nan: str = "missing"
    infinity: str = "reject"
    ignored: frozenset[str] = frozenset()


DEFAULT_POLICY = InputPolicy()


# A JSON string, matched whole (the unrolled form is fast in the regex engine). Replacing
# every string in a JSON text leaves colons only as object member separators.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def loads(raw: bytes) -> Any:
    """Parse a JSON body; an object with a repeated key is a 400 naming the key.

    The ``NaN`` / ``Infinity`` literals that TF Serving clients write, and numbers too
    large for a double, become float NaN / inf here; :func:`column_array` applies the
    policy to them.

    >>> loads(b'{"instances": [{"age": 39}]}')
    {'instances': [{'age': 39}]}
    >>> loads(b'{"age": 39, "age": 40}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    mooring.errors.InvalidRequestError: the key 'age' appears twice in one object; ...
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        first = exc
    else:
        # orjson keeps the last of repeated keys. Re-encoding the parsed data drops every
        # repeated member (and the colons inside it), and adds colons only where the text
        # escaped one (``\u003a``): so without a ``\u`` escape, the colons of the text and
        # of its re-encoding are as many exactly when no key repeats. C-level counts; the
        # slow parse names the key only when they differ.
        colons = _colons(raw)
        if colons:
            try:
                again = orjson.dumps(data)
            except TypeError:  # nested deeper than orjson writes back
                again = b""
            # A backslash is rare in a body, and memchr finds its absence at once.
            if (
                _members(raw) != _members(again)
                if (b"\\" in raw and b"\\u" in raw) or not again
                else colons != _colons(again)
            ):
                _parse(raw, "")
        return data
    # The slow path only for what orjson refuses: the non-standard literals, huge numbers.
    data = _parse(raw, str(first))
    _check_text(data)
    return data


def _parse(raw: bytes, why: str) -> Any:
    """The standard library's parse, refusing repeated keys."""
    try:
        return json.loads(raw, object_pairs_hook=_unique)
    except RecursionError:
        raise InvalidRequestError(
            "the body is nested too deeply; send rows or columns of plain values"
        ) from None
    except ValueError as exc:
        if isinstance(exc, InvalidRequestError):
            raise
        raise InvalidRequestError(f"the body is not valid JSON ({why or exc})") from None


def _colons(text: bytes) -> int:
    """The colons in a text, counted with the GIL held throughout.

    numpy's vectorized compare is faster alone (3 µs for 20 KB against 7), but it
    releases the GIL, and beside a thread running Python, taking it back can wait up to
    the interpreter's switch interval (0.9 ms a call in ``bench_gil_release.py``).
    """
    return text.count(b":")


def _members(text: bytes) -> int:
    """Object members in a JSON text: its colons outside strings."""
    return _STRING.sub(b"", text).count(b":")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that refuses a repeated key."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidRequestError(
                    f"the key {describe(key)} appears twice in one object; send each key once"
                )
            seen.add(key)
    return data


def describe(value: Any) -> str:
    """A short, safe rendering of a client value for an error message.

    >>> describe("x" * 100)[-5:]
    'xx...'
    """
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_text(data: Any) -> None:
    """Refuse lone UTF-16 surrogates (``"\\ud800"``), which the stdlib parser lets through."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidRequestError(
                        f"the body holds a string that is not valid Unicode ({describe(item)}); "
                        "send UTF-8 text"
                    ) from None
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def column_array(
    field: str, values: list[Any], info: TensorInfo, policy: InputPolicy = DEFAULT_POLICY
) -> np.ndarray[Any, Any]:
    """Convert one column's JSON values to the input's dtype, naming ``field`` on failure."""
    return np.array(column_values(field, values, info, policy), dtype=info.numpy_dtype())


def column_values(
    field: str, values: list[Any], info: TensorInfo, policy: InputPolicy = DEFAULT_POLICY
) -> list[Any]:
    """Check one column's JSON values against the input's dtype; a plain list, ready for it.

    Strings stay strings (null → ``""``); numbers of a float input become floats (null and,
    per policy, NaN / Infinity → NaN), of an integer input ints. The server keeps columns
    as lists until the batch is assembled: one array per column per batch instead of
    one per request.
    """
    # The common column, every value of the right plain type and in range, passes on a
    # few C-level scans; anything else (null, NaN, a wrong type) takes the checking loop
    # below, which applies the policy or names the error.
    kinds = set(map(type, values))
    if info.is_string:
        if kinds == _STR:
            return values
        if kinds == _STR_OR_NULL:
            return ["" if v is None else v for v in values]
    elif info.dtype in _FLOATS and kinds and kinds <= _NUMBERS_OR_NULL:
        present = values if _NULL not in kinds else [v for v in values if v is not None]
        # A NaN or an infinity anywhere makes the sum non-finite; so can a huge total,
        # which the loop below then judges value by value. An integer beyond any double
        # next to a float makes the sum itself fail: the loop names that value too.
        try:
            total = sum(present)
        except OverflowError:
            total = math.inf
        finite = not present or (
            total - total == 0 and min(present) >= -_FLOAT32_MAX and max(present) <= _FLOAT32_MAX
        )
        if finite:
            if kinds == _FLOAT:
                return values
            return [math.nan if v is None else float(v) for v in values]
    return _checked_values(field, values, info, policy)


def _checked_values(
    field: str, values: list[Any], info: TensorInfo, policy: InputPolicy
) -> list[Any]:
    """:func:`column_values` value by value: the policy applied, the first bad value named."""
    if info.is_string:
        return _strings(field, values)
    if info.dtype in _INT_BOUNDS:
        return _integers(field, values, _INT_BOUNDS[info.dtype], info.dtype)
    return _floats(field, values, info.dtype, policy)


#: A JSON boolean sent to a text input, as the training data's boolean columns are
#: written (the contract's domain of a boolean column is ``['false', 'true']``).
BOOLEAN_TEXT = {False: "false", True: "true"}


def _strings(field: str, values: list[Any]) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(values):
        if type(value) is str:
            out.append(value)
        elif value is None:
            out.append("")
        elif type(value) is bool:
            out.append(BOOLEAN_TEXT[value])
        elif type(value) is dict and value.keys() == {"b64"}:
            out.append(_from_b64(field, i, value["b64"]))
        else:
            raise InvalidRequestError(
                _bad(field, i, value, 'a string, true/false, {"b64": "..."} or null for missing')
            )
    return out


def _floats(field: str, values: list[Any], dtype: str, policy: InputPolicy) -> list[float]:
    numbers: list[float] = []
    for i, value in enumerate(values):
        kind = type(value)
        if kind is float:
            if value != value:  # NaN
                if policy.nan != "missing":
                    raise InvalidRequestError(_non_finite(field, i, value, "nan_policy"))
            elif value in _INFINITIES:
                if policy.infinity != "missing":
                    raise InvalidRequestError(_non_finite(field, i, value, "infinity_policy"))
                value = math.nan
            elif not -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
                raise InvalidRequestError(_bad(field, i, value, "a finite float32 number"))
            numbers.append(value)
        elif kind is int:
            if not -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
                raise InvalidRequestError(_bad(field, i, value, f"a number that fits {dtype}"))
            numbers.append(float(value))
        elif value is None:
            numbers.append(math.nan)
        else:
            raise InvalidRequestError(_bad(field, i, value, "a number (or null for missing)"))
    return numbers


def _from_b64(field: str, index: int, text: Any) -> str:
    """TF Serving's binary string encoding: base64 of the bytes; here, of UTF-8 text."""
    try:
        if type(text) is not str:
            raise ValueError("not a string")
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (ValueError, binascii.Error) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "not base64"
        raise InvalidRequestError(
            f"{field}[{index}]: the b64 value {describe(text)} is {reason}; send standard "
            "base64 (RFC 4648, with padding) of UTF-8 text, or a plain JSON string"
        ) from None


def _integers(field: str, values: list[Any], bounds: tuple[int, int], dtype: str) -> list[int]:
    out: list[int] = []
    for i, value in enumerate(values):
        kind = type(value)
        if kind is float:
            if value != value or value in _INFINITIES:
                raise InvalidRequestError(_bad(field, i, value, "an integer (NaN has no integer)"))
            if not value.is_integer():
                raise InvalidRequestError(_bad(field, i, value, "an integer"))
            value = int(value)
        elif kind is not int:
            raise InvalidRequestError(_bad(field, i, value, "an integer"))
        if not bounds[0] <= value <= bounds[1]:
            raise InvalidRequestError(_bad(field, i, value, f"a number that fits {dtype}"))
        out.append(value)
    return out


def _non_finite(field: str, index: int, value: float, setting: str) -> str:
    name = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return (
        f"{field}[{index}]: {name} is not accepted; send a finite number or null for a missing "
        f"value (the server's [serving] {setting} decides whether {name} means missing)"
    )


def _bad(field: str, index: int, value: Any, expected: str) -> str:
    if isinstance(value, list | dict):
        return (
            f"{field}[{index}]: expected a scalar, got a {_kind(value)} {describe(value)}; "
            "each input takes one value per row (rank 1), nested values are not broadcast"
        )
    return f"{field}[{index}]: expected {expected}, got {_kind(value)} {describe(value)}"


def _check_fields(
    keys: Any, inputs: Mapping[str, TensorInfo], where: str, ignored: frozenset[str]
) -> None:
    missing = [name for name in inputs if name not in keys]
    unexpected = [key for key in keys if key not in inputs and key not in ignored]
    expected = ", ".join(inputs)
    if missing:
        raise InvalidRequestError(
            f"{where}: missing field {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f"; the model's inputs are: {expected}. Send null for a missing value"
        )
    if unexpected:
        raise InvalidRequestError(
            f"{where}: unexpected field {describe(unexpected[0])}; "
            f"the model's inputs are: {expected}"
        )


def columns_from_rows(
    rows: Any,
    inputs: Mapping[str, TensorInfo],
    *,
    where: str,
    policy: InputPolicy = DEFAULT_POLICY,
    arrays: bool = True,
) -> tuple[dict[str, Any], int]:
    """Row format (``instances``): a non-empty list of objects, one key per input.

    Columns are numpy arrays, or with ``arrays=False`` the checked lists of
    :func:`column_values`.
    """
    if not isinstance(rows, list):
        raise InvalidRequestError(f"{where}: expected a list of objects, got {_kind(rows)}")
    if not rows:
        raise InvalidRequestError(f"{where}: empty batch; send at least one row")
    names = inputs.keys()
    count = len(names)
    for i, instance in enumerate(rows):
        if type(instance) is not dict:
            raise InvalidRequestError(
                f"{where}[{i}]: expected an object with the model's inputs as keys, got "
                f"{_kind(instance)} {describe(instance)}"
            )
        if len(instance) != count:
            _check_fields(instance.keys(), inputs, f"{where}[{i}]", policy.ignored)
    if len(rows) == 1:
        if rows[0].keys() != names:
            _check_fields(rows[0].keys(), inputs, f"{where}[0]", policy.ignored)
        if not arrays:
            return _one_row(rows[0], inputs, where, policy), 1
    try:
        # Every row has as many keys as there are inputs: a key lookup that fails is
        # a misnamed field, found and named below.
        listed = {name: list(map(itemgetter(name), rows)) for name in names}
    except KeyError:
        for i, instance in enumerate(rows):
            if instance.keys() != names:
                _check_fields(instance.keys(), inputs, f"{where}[{i}]", policy.ignored)
        raise
    convert = column_array if arrays else column_values
    columns = {
        name: convert(f"{where}.{name}", listed[name], info, policy)
        for name, info in inputs.items()
    }
    return columns, len(rows)


def _one_row(
    row: dict[str, Any], inputs: Mapping[str, TensorInfo], where: str, policy: InputPolicy
) -> dict[str, list[Any]]:
    """The common request, one row: plain values pass on a type test, anything else (null,
    NaN, a wrong type) takes the general path, which applies the policy or names the error."""
    columns: dict[str, list[Any]] = {}
    for name, info in inputs.items():
        value = row[name]
        kind = type(value)
        if info.is_string:
            if kind is str:
                columns[name] = [value]
                continue
        elif info.dtype in _FLOATS:
            if kind is float and -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
                columns[name] = [value]
                continue
            if kind is int and -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
                columns[name] = [float(value)]
                continue
        columns[name] = column_values(f"{where}.{name}", [value], info, policy)
    return columns


def columns_from_columns(
    data: Any,
    inputs: Mapping[str, TensorInfo],
    *,
    where: str,
    policy: InputPolicy = DEFAULT_POLICY,
    arrays: bool = True,
) -> tuple[dict[str, Any], int]:
    """Columnar format (``inputs``): an object mapping each input to a non-empty list."""
    if not isinstance(data, dict):
        raise InvalidRequestError(
            f"{where}: expected an object mapping each input to a list of values, got {_kind(data)}"
        )
    _check_fields(data.keys(), inputs, where, policy.ignored)
    rows: int | None = None
    first = ""
    convert = column_array if arrays else column_values
    columns: dict[str, Any] = {}
    for name, info in inputs.items():
        values = data[name]
        if not isinstance(values, list):
            raise InvalidRequestError(
                f"{where}.{name}: expected a list (one value per row, rank 1), got "
                f"{_kind(values)} {describe(values)}; scalars are not broadcast"
            )
        if rows is None:
            rows, first = len(values), name
        elif len(values) != rows:
            raise InvalidRequestError(
                f"{where}.{name}: {len(values)} values but {first!r} has {rows}; "
                "every input needs the same number of rows"
            )
        columns[name] = convert(f"{where}.{name}", values, info, policy)
    if not rows:
        raise InvalidRequestError(f"{where}: empty batch; send at least one row")
    return columns, rows


def refuse_missing(columns: Mapping[str, Any], names: Sequence[str], what: str) -> None:
    """A 400 naming the input and the row where an input of ``names`` holds a missing value.

    Why: decoded columns hold a float input's ``null`` (and, per policy, NaN) as NaN,
    which a model mooring trained imputes; a model built elsewhere would answer for it as
    a number, a plausible-looking garbage. ``names`` are the inputs that refuse it
    (:attr:`~mooring.formats._model.SavedModelFolder.refuses_missing`); ``what`` names
    the model in the message.

    >>> refuse_missing({"Age": [40.0, math.nan]}, ["Age"], "model 'loans'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    mooring.errors.InvalidRequestError: input 'Age', row 1: a missing value (null or NaN) ...
    """
    for name in names:
        values = columns.get(name)
        if values is None:
            continue
        if type(values) is list:
            row = next((i for i, v in enumerate(values) if v != v), None)  # NaN != NaN
        else:
            array = np.asarray(values)
            if array.dtype.kind != "f" or not array.size:
                continue
            rows = np.isnan(array).reshape(len(array), -1).any(axis=1)
            row = int(np.argmax(rows)) if rows.any() else None
        if row is not None:
            raise InvalidRequestError(
                f"input {name!r}, row {row}: a missing value (null or NaN) where {what} "
                "takes a number; the model was built elsewhere and does not declare that it "
                "handles missing values, so it would answer for NaN as for a number. Send a "
                f"number, or import the model with --allows-missing {name} if it handles NaN"
            )
