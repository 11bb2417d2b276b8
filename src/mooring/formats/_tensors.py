"""Request values → tensors checked against a signature's inputs, or a 400 naming the input.

A model whose inputs are not all ``[None]`` columns (an imported image, sequence or text
model: :attr:`~mooring.formats._model.SavedModelFolder.columnar` is false) is fed numpy
arrays built here, from every protocol: JSON rows and columns (TF Serving's REST API),
the Open Inference Protocol's flat ``data`` with a ``shape`` or its binary extension, and
the gRPC tensors. Each array is checked before it reaches the model: its rank, every
fixed dimension, its dtype (a value that does not fit is refused, never wrapped), and
the batch, the first dimension, the same across the inputs. Nothing is broadcast: a
``[N]`` input sent where the model takes ``[N, 1]`` (or the reverse) is refused, since
the model would silently answer something else for every row.

Numbers follow the columnar decoder's policy (:class:`~mooring.formats._columns.InputPolicy`):
``null`` and, per policy, NaN / Infinity are a float input's missing value; an integer
input takes integers within its dtype's range; a ``bool`` input ``true``/``false`` (or
0/1). A string input takes text (as UTF-8 bytes) or ``{"b64": "..."}`` (any bytes: an
encoded image); ``null`` is ``b""``.

Examples:
    >>> from mooring.formats._model import TensorInfo
    >>> image = TensorInfo("image", "float32", (None, 2, 2))
    >>> tensor_from_json("inputs.image", [[[0, 1], [2, 3]]], image).shape
    (1, 2, 2)
    >>> tensor_from_json("inputs.image", [[0, 1, 2, 3]], image)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    mooring.errors.InvalidRequestError: inputs.image: shape [1, 4] does not fit ...
"""

from __future__ import annotations

import base64
import binascii
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mooring.errors import InvalidRequestError
from mooring.formats._columns import BOOLEAN_TEXT, DEFAULT_POLICY, InputPolicy, describe
from mooring.formats._model import TensorInfo

__all__ = [
    "SUMMARY_STATS",
    "batch_of",
    "cast_numbers",
    "check_dims",
    "check_shape",
    "summarize_tensors",
    "tensor_from_flat",
    "tensor_from_json",
    "tensor_from_values",
    "tensors_from_columns",
    "tensors_from_rows",
]

_INTEGERS = ("int8", "int16", "int32", "int64", "uint8", "uint16")
_FLOATS = ("float16", "float32", "float64")


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_shape(field: str, shape: Sequence[int], info: TensorInfo) -> None:
    """Refuse a shape that does not fit ``info``: its rank or a fixed dimension differs.

    The message names the field, the shape the model expects (the batch as N) and the
    one received, and for a missing or extra dimension of size 1 says which way to fix it.
    """
    expected = info.shape
    same_rank = len(shape) == len(expected)
    if same_rank and all(e is None or e == d for d, e in zip(shape, expected, strict=True)):
        return
    got = _shape_text(shape)
    want = info.describe_shape()
    if not same_rank:
        hint = f"rank {len(shape)} where the model expects rank {len(expected)}"
        if len(shape) + 1 == len(expected) and expected[-1] == 1:
            hint += (
                "; add the last dimension of size 1: each innermost value in a list of one, "
                "e.g. [[39.0], [52.0]] not [39.0, 52.0] (nothing is broadcast)"
            )
        elif len(shape) == len(expected) + 1 and shape[-1] == 1:
            hint += (
                "; drop the last dimension of size 1: plain values, not lists of one, "
                "e.g. [39.0, 52.0] not [[39.0], [52.0]] (nothing is broadcast)"
            )
    else:
        pairs = enumerate(zip(shape, expected, strict=True))
        axis = next(i for i, (d, e) in pairs if e is not None and e != d)
        hint = f"dimension {axis} is {shape[axis]}, the model takes {expected[axis]}"
    raise InvalidRequestError(
        f"{field}: shape {got} does not fit input '{info.name}' of shape {want} ({hint})"
    )


def batch_of(tensors: Mapping[str, np.ndarray[Any, Any]], where: str) -> int:
    """The batch every tensor shares (its first dimension, at least 1), or a 400 naming
    the input whose batch differs from the first's."""
    rows: int | None = None
    first = ""
    for name, array in tensors.items():
        n = int(array.shape[0])
        if rows is None:
            rows, first = n, name
        elif n != rows:
            raise InvalidRequestError(
                f"{where}: input '{name}' has a batch of {n} but '{first}' has {rows}; every "
                "input needs the same first dimension (one entry per row)"
            )
    if not rows:
        raise InvalidRequestError(f"{where}: empty batch; send at least one row")
    return rows


def tensor_from_json(
    field: str, value: Any, info: TensorInfo, policy: InputPolicy = DEFAULT_POLICY
) -> np.ndarray[Any, Any]:
    """A batch of one input as nested JSON lists (batch first) → its checked array."""
    if type(value) is list and not value:
        raise InvalidRequestError(f"{field}: empty batch; send at least one row")
    array = tensor_from_values(field, value, info, policy)
    check_shape(field, array.shape, info)
    return array


def tensor_from_values(
    field: str, value: Any, info: TensorInfo, policy: InputPolicy = DEFAULT_POLICY
) -> np.ndarray[Any, Any]:
    """Nested JSON values → an array of the input's dtype (its shape not yet checked)."""
    if info.is_string:
        return _strings(field, value)
    try:
        array = np.array(value)
    except (ValueError, TypeError):
        raise InvalidRequestError(
            f"{field}: the values do not form a regular array (rows of different lengths?); "
            f"input '{info.name}' takes shape {info.describe_shape()}"
        ) from None
    kind = array.dtype.kind
    if kind == "O":
        array = _objects(field, array, info)
        kind = array.dtype.kind
    if kind in "US":
        raise InvalidRequestError(
            f"{field}: text where input '{info.name}' takes {info.dtype} numbers; send numbers"
        )
    return cast_numbers(field, array, info, policy)


def _objects(field: str, array: np.ndarray[Any, Any], info: TensorInfo) -> np.ndarray[Any, Any]:
    """A numeric input's values that numpy could not type: ``null`` (a float input's
    missing value), or something to refuse by name."""
    flat = array.ravel()
    floats = info.dtype in _FLOATS
    out = np.empty(flat.shape, dtype=np.float64)
    for i, item in enumerate(flat):
        kind = type(item)
        if item is None and floats:
            out[i] = math.nan
        elif kind is float or (kind is int and abs(item) < 2**63):
            out[i] = item
        elif kind is int:
            raise InvalidRequestError(f"{field}: {describe(item)} does not fit {info.dtype}")
        elif kind is list:
            raise InvalidRequestError(
                f"{field}: the values do not form a regular array (rows of different "
                f"lengths?); input '{info.name}' takes shape {info.describe_shape()}"
            )
        else:
            expected = "a number (or null for missing)" if floats else "a number"
            raise InvalidRequestError(
                f"{field}: expected {expected}, got {describe(item)} for input '{info.name}'"
            )
    return out.reshape(array.shape)


def cast_numbers(
    field: str, array: np.ndarray[Any, Any], info: TensorInfo, policy: InputPolicy
) -> np.ndarray[Any, Any]:
    """Numbers (or booleans) → the input's dtype, refusing what does not fit it."""
    dtype = info.numpy_dtype()
    kind = array.dtype.kind
    if info.dtype == "bool":
        if kind == "b":
            return array
        if kind in "iuf" and np.isin(array, (0, 1)).all():
            return array.astype(np.bool_)
        raise InvalidRequestError(f"{field}: input '{info.name}' takes true/false (or 0/1)")
    if kind == "b":
        raise InvalidRequestError(
            f"{field}: true/false where input '{info.name}' takes {info.dtype} numbers"
        )
    if kind not in "iuf":
        raise InvalidRequestError(f"{field}: input '{info.name}' takes {info.dtype} numbers")
    if info.dtype in _INTEGERS:
        return _integers(field, array, info, dtype)
    return _floats(field, array, info, dtype, policy)


def _integers(
    field: str, array: np.ndarray[Any, Any], info: TensorInfo, dtype: Any
) -> np.ndarray[Any, Any]:
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            value = float(array.ravel()[int(np.argmax(bad.ravel()))])
            raise InvalidRequestError(
                f"{field}: {value!r} is not an integer; input '{info.name}' takes {info.dtype}"
            )
    bounds = np.iinfo(dtype)
    if array.size and (array.min() < bounds.min or array.max() > bounds.max):
        raise InvalidRequestError(
            f"{field}: a value is outside {info.dtype}'s range [{bounds.min}, {bounds.max}] "
            f"of input '{info.name}'"
        )
    return array.astype(dtype)


def _floats(
    field: str, array: np.ndarray[Any, Any], info: TensorInfo, dtype: Any, policy: InputPolicy
) -> np.ndarray[Any, Any]:
    if array.dtype.kind == "f":
        nan = np.isnan(array)
        if policy.nan != "missing" and nan.any():
            raise InvalidRequestError(
                f"{field}: NaN is not accepted; send a finite number (the server's [serving] "
                "nan_policy decides whether NaN means missing)"
            )
        inf = np.isinf(array)
        if inf.any():
            if policy.infinity != "missing":
                raise InvalidRequestError(
                    f"{field}: Infinity is not accepted; send a finite number (the server's "
                    "[serving] infinity_policy decides whether it means missing)"
                )
            array = np.where(inf, np.nan, array)
    limit = float(np.finfo(dtype).max)
    if array.size and np.nanmax(np.abs(array), initial=0.0) > limit:
        raise InvalidRequestError(
            f"{field}: a value overflows {info.dtype} (largest {limit:g}) of input '{info.name}'"
        )
    return array.astype(dtype)


def _strings(field: str, value: Any) -> np.ndarray[Any, Any]:
    """Nested text / ``{"b64": ...}`` / null → an object array of bytes."""
    shape: list[int] = []
    probe = value
    while type(probe) is list:
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat: list[bytes] = []
    _flatten_strings(field, value, shape, 0, flat)
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(shape)


def _flatten_strings(
    field: str, value: Any, shape: list[int], depth: int, out: list[bytes]
) -> None:
    if depth < len(shape):
        if type(value) is not list or len(value) != shape[depth]:
            raise InvalidRequestError(
                f"{field}: the values do not form a regular array (rows of different lengths?)"
            )
        for item in value:
            _flatten_strings(field, item, shape, depth + 1, out)
        return
    out.append(_one_string(field, value))


def _one_string(field: str, value: Any) -> bytes:
    kind = type(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if kind is bool:
        return BOOLEAN_TEXT[value].encode()
    if kind is dict and value.keys() == {"b64"}:
        try:
            if type(value["b64"]) is not str:
                raise ValueError("not a string")
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, binascii.Error):
            raise InvalidRequestError(
                f"{field}: the b64 value {describe(value['b64'])} is not base64; send standard "
                "base64 (RFC 4648, with padding)"
            ) from None
    if kind is list:
        raise InvalidRequestError(
            f"{field}: the values do not form a regular array (rows of different lengths?)"
        )
    raise InvalidRequestError(
        f'{field}: expected a string, true/false, {{"b64": "..."}} or null, got {describe(value)}'
    )


def tensor_from_flat(
    field: str,
    values: Any,
    shape: Any,
    info: TensorInfo,
    policy: InputPolicy = DEFAULT_POLICY,
) -> np.ndarray[Any, Any]:
    """The Open Inference Protocol's tensor: ``values`` (flat, or nested as the shape) and
    its ``shape`` → the checked array; a count that does not hold the shape is a 400."""
    dims = check_dims(field, shape)
    array = tensor_from_values(field, values, info, policy)
    if array.size != math.prod(dims):
        raise InvalidRequestError(
            f"{field}: {array.size} values do not hold shape {_shape_text(dims)} "
            f"({math.prod(dims)} values)"
        )
    array = array.reshape(dims)
    check_shape(field, dims, info)
    return array


def check_dims(field: str, shape: Any) -> list[int]:
    """A tensor's ``shape`` as sent: a list of non-negative integers of rank ≥ 1."""
    if (
        not isinstance(shape, list | tuple)
        or not shape
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise InvalidRequestError(
            f"{field}: shape {describe(shape)} is not a list of sizes such as [n, 28, 28, 1]"
        )
    return [int(d) for d in shape]


def tensors_from_columns(
    value: Any,
    inputs: Mapping[str, TensorInfo],
    *,
    where: str,
    policy: InputPolicy = DEFAULT_POLICY,
) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    """TF Serving's columnar format: ``{name: batch, ...}``, or the bare batch when the
    model has one input → (tensors, rows)."""
    ignored = policy.ignored
    if len(inputs) == 1 and not (isinstance(value, dict) and _named(value, inputs, ignored)):
        (name,) = inputs
        value = {name: value}
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"{where}: expected an object with one batch per input: {', '.join(inputs)}"
        )
    _check_names(value.keys(), inputs, where, ignored)
    tensors = {
        name: tensor_from_json(f"{where}.{name}", value[name], info, policy)
        for name, info in inputs.items()
    }
    return tensors, batch_of(tensors, where)


def tensors_from_rows(
    rows: Any,
    inputs: Mapping[str, TensorInfo],
    *,
    where: str,
    policy: InputPolicy = DEFAULT_POLICY,
) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    """TF Serving's row format: a list of ``{name: value}`` (or of bare values when the
    model has one input), each value one row's tensor → (tensors, rows)."""
    if not isinstance(rows, list):
        raise InvalidRequestError(f"{where}: expected a list of rows")
    if not rows:
        raise InvalidRequestError(f"{where}: empty batch; send at least one row")
    names = list(inputs)
    ignored = policy.ignored
    single = len(names) == 1 and not all(
        isinstance(r, dict) and _named(r, inputs, ignored) for r in rows
    )
    listed: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        if single:
            listed[names[0]].append(row)
            continue
        if not isinstance(row, dict):
            raise InvalidRequestError(
                f"{where}[{i}]: expected an object with the model's inputs as keys "
                f"({', '.join(names)}), got {describe(row)}"
            )
        _check_names(row.keys(), inputs, f"{where}[{i}]", ignored)
        for name in names:
            listed[name].append(row[name])
    tensors = {}
    for name, info in inputs.items():
        field = f"{where}[*].{name}" if not single else f"{where}[*]"
        tensors[name] = tensor_from_json(field, listed[name], info, policy)
    return tensors, len(rows)


def _named(row: dict[str, Any], inputs: Mapping[str, TensorInfo], ignored: frozenset[str]) -> bool:
    """Whether ``row`` names the inputs (and perhaps ignored fields), not one input's value."""
    keys = row.keys()
    return keys == inputs.keys() or (bool(ignored) and keys - ignored == inputs.keys())


def _check_names(
    keys: Any, inputs: Mapping[str, TensorInfo], where: str, ignored: frozenset[str]
) -> None:
    missing = [name for name in inputs if name not in keys]
    unexpected = [key for key in keys if key not in inputs and key not in ignored]
    if missing:
        raise InvalidRequestError(
            f"{where}: missing input {missing[0]!r}; the model's inputs are: {', '.join(inputs)}"
        )
    if unexpected:
        raise InvalidRequestError(
            f"{where}: unexpected input {describe(unexpected[0])}; the model's inputs are: "
            + ", ".join(inputs)
        )


#: The statistics the prediction log keeps of each row of a tensor input.
SUMMARY_STATS = ("mean", "std", "min", "max", "zeros")


def summarize_tensors(columns: Mapping[str, Any]) -> dict[str, Any]:
    """A tensor model's batch as the prediction log keeps it: a bounded summary per row.

    An input with one value per row (``[N]``, or ``[N, 1]``: Keras's tabular inputs)
    is logged as that value, a column as a trained model's; a string as its length in
    bytes (an encoded image is no log value). Any other input becomes ``NAME.shape``
    (its inner shape, ``"28x28x1"``) and ``NAME.mean``/``.std``/``.min``/``.max``/
    ``.zeros`` (the share of zeros) over the row's values (NaN left out): what drift
    needs to see a change of scale, contrast or sparsity, without the raw pixels.

    Examples:
        >>> out = summarize_tensors({"image": np.array([[[0.0, 2.0]], [[1.0, 1.0]]])})
        >>> out["image.shape"], out["image.mean"].tolist(), out["image.zeros"].tolist()
        (['1x2', '1x2'], [1.0, 1.0], [0.5, 0.0])
    """
    out: dict[str, Any] = {}
    for name, values in columns.items():
        array = values if isinstance(values, np.ndarray) else np.asarray(values)
        rows = array.shape[0] if array.ndim else 0
        if array.ndim > 1 and array.size == rows:  # one value per row: [N, 1], [N, 1, 1]
            array = array.reshape(rows)
        if array.dtype == object:
            lengths = np.fromiter((len(v) for v in array.ravel()), np.int64, array.size)
            if array.ndim == 1:
                out[f"{name}.bytes"] = lengths.astype(np.float64)
                continue
            array = lengths.reshape(array.shape)
        if array.ndim <= 1:
            out[name] = array
            continue
        flat = array.reshape(rows, -1).astype(np.float64)
        inner = "x".join(str(d) for d in array.shape[1:])
        out[f"{name}.shape"] = [inner] * rows
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: NaN
            out[f"{name}.mean"] = np.nanmean(flat, axis=1)
            out[f"{name}.std"] = np.nanstd(flat, axis=1)
            out[f"{name}.min"] = np.nanmin(flat, axis=1) if flat.shape[1] else np.full(rows, np.nan)
            out[f"{name}.max"] = np.nanmax(flat, axis=1) if flat.shape[1] else np.full(rows, np.nan)
            out[f"{name}.zeros"] = (flat == 0).mean(axis=1) if flat.shape[1] else np.zeros(rows)
    return out
