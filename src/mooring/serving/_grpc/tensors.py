"""TensorFlow's wire types ⇄ typed columns: ``TensorProto``, ``tf.Example``, OIP contents.

Every decoder here ends in the one JSON decoder's checks
(:func:`~mooring.formats._columns.column_values`): a gRPC value is read into plain
Python values and judged exactly as the same value in a JSON body would be (the
NaN/Infinity policy, float32 overflow, integer bounds, ``""`` for a missing string).
Sizes are checked against the data before anything is allocated, so a shape that
claims 2⁶² rows, or a ``tensor_content`` that does not hold the shape, is a 400
naming the input, never a crash.

Shapes follow the REST API: for a columnar model one rank-1 tensor ``[n]`` per input,
every input the same ``n`` ≥ 1 (no broadcasting; ``[n, 1]`` is refused as it is in
JSON); for a tensor model each input of its signature's rank and fixed dimensions
(:func:`tensor_array`).

This module imports TensorFlow's generated protos, so it is imported only by the gRPC
server, after :func:`mooring._tensorflow.import_tensorflow` has run.

Examples:
    >>> from tensorflow.core.framework import tensor_pb2, types_pb2  # doctest: +SKIP
    >>> proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[39.0])  # doctest: +SKIP
    >>> proto.tensor_shape.dim.add(size=1)  # doctest: +SKIP
    >>> tensor_column("age", proto, TensorInfo("age", "float32", (None,)))  # doctest: +SKIP
    ([39.0], 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2

from mooring.formats._columns import DEFAULT_POLICY, InputPolicy, column_values, describe
from mooring.formats._model import TensorInfo
from mooring.formats._tensors import batch_of, cast_numbers, check_dims, check_shape
from mooring.serving._errors import InvalidRequestError

__all__ = [
    "columns_from_examples",
    "columns_from_tensors",
    "fill_tensor",
    "tensor_array",
    "tensor_column",
    "tensors_from_protos",
]

# TensorProto dtype → (numpy dtype of tensor_content, the repeated field of its values).
_NUMBERS: dict[int, tuple[str, str]] = {
    types_pb2.DT_FLOAT: ("<f4", "float_val"),
    types_pb2.DT_DOUBLE: ("<f8", "double_val"),
    types_pb2.DT_HALF: ("<f2", "half_val"),
    types_pb2.DT_INT8: ("<i1", "int_val"),
    types_pb2.DT_INT16: ("<i2", "int_val"),
    types_pb2.DT_INT32: ("<i4", "int_val"),
    types_pb2.DT_INT64: ("<i8", "int64_val"),
    types_pb2.DT_UINT8: ("<u1", "int_val"),
    types_pb2.DT_UINT16: ("<u2", "int_val"),
    types_pb2.DT_UINT32: ("<u4", "uint32_val"),
    types_pb2.DT_UINT64: ("<u8", "uint64_val"),
}
# The fields the plain reading of a tensor recognises (see _plain_column).
_DTYPE, _SHAPE, _TENSOR_CONTENT, _STRING_VAL = (
    tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name[name]
    for name in ("dtype", "tensor_shape", "tensor_content", "string_val")
)
# The dtypes whose values read as they are: dtype → (tensor_content's layout, bytes per
# value, the repeated field that may hold them instead).
_CONTENT: dict[int, tuple[str, int, Any]] = {
    dtype: (
        layout,
        np.dtype(layout).itemsize,
        tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name[repeated],
    )
    for dtype, (layout, repeated) in _NUMBERS.items()
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_INT64)
}
# What a model input of each dtype asks for, in an error message.
_WANTED = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int64": "DT_INT64", "int32": "DT_INT32"}
# Output numpy dtype → TensorProto dtype (keyed by dtype: its name is slow to build).
_OUT = {
    np.dtype(name): spec
    for name, spec in {
        "float32": (types_pb2.DT_FLOAT, "<f4"),
        "float64": (types_pb2.DT_DOUBLE, "<f8"),
        "int64": (types_pb2.DT_INT64, "<i8"),
        "int32": (types_pb2.DT_INT32, "<i4"),
        "bool": (types_pb2.DT_BOOL, "|b1"),
    }.items()
}
_VALUE_FIELDS = frozenset(
    {
        "float_val", "double_val", "half_val", "int_val", "int64_val", "uint32_val",
        "uint64_val", "string_val", "bool_val", "scomplex_val", "dcomplex_val",
        "resource_handle_val", "variant_val", "float8_val",
    }
)  # fmt: skip


def _dtype_name(dtype: int) -> str:
    try:
        return str(types_pb2.DataType.Name(dtype))
    except ValueError:
        return f"dtype {dtype}"


def _rows(field: str, proto: tensor_pb2.TensorProto) -> int:
    """The ``n`` of a rank-1 ``[n]`` tensor; anything else is a 400 naming ``field``."""
    shape = proto.tensor_shape
    dims = [d.size for d in shape.dim]
    if shape.unknown_rank or len(dims) != 1 or dims[0] < 0:
        got = "unknown rank" if shape.unknown_rank else str(dims)
        raise InvalidRequestError(
            f"{field}: shape {got} is not [n]; each input is one rank-1 tensor with one value "
            "per row (no broadcasting)"
        )
    if dims[0] == 0:
        raise InvalidRequestError(f"{field}: empty batch (shape [0]); send at least one row")
    return int(dims[0])


def _set_fields(proto: tensor_pb2.TensorProto) -> set[str]:
    return {f.name for f, _ in proto.ListFields() if f.name in _VALUE_FIELDS}


def tensor_column(
    name: str,
    proto: tensor_pb2.TensorProto,
    info: TensorInfo,
    policy: InputPolicy = DEFAULT_POLICY,
) -> tuple[list[Any], int]:
    """One input's ``TensorProto`` → (its column as the JSON decoder returns it, rows).

    Numbers come from ``tensor_content`` (little-endian, exactly ``n`` values) or from
    the dtype's repeated field (exactly ``n`` values: TensorFlow's fill-with-the-last
    rule is not applied); strings from ``string_val`` as UTF-8.

    Raises:
        InvalidRequestError: naming ``inputs.<name>``: a dtype that does not fit the
            input, a shape other than ``[n]``, a value count or byte size that does not
            hold the shape, bytes that are not UTF-8, or a value the policy refuses.
    """
    field = f"inputs.{name}"
    plain = _plain_column(proto, info)
    if plain is not None:
        return column_values(field, plain, info, policy), len(plain)
    return _checked_column(field, proto, info, policy)


def _checked_column(
    field: str, proto: tensor_pb2.TensorProto, info: TensorInfo, policy: InputPolicy
) -> tuple[list[Any], int]:
    """:func:`tensor_column` field by field: every form a client may send, and a 400
    naming what does not fit."""
    rows = _rows(field, proto)
    dtype = proto.dtype
    present = _set_fields(proto)
    content = proto.tensor_content
    if info.is_string:
        if dtype != types_pb2.DT_STRING:
            raise InvalidRequestError(
                f"{field}: {_dtype_name(dtype)} does not fit input dtype string; send DT_STRING"
            )
        if content or present - {"string_val"}:
            raise InvalidRequestError(
                f"{field}: a DT_STRING tensor holds its values in string_val only"
            )
        raw = proto.string_val
        if len(raw) != rows:
            raise InvalidRequestError(
                f"{field}: {len(raw)} values in string_val but shape says [{rows}]"
            )
        return column_values(field, _texts(field, raw), info, policy), rows
    spec = _NUMBERS.get(dtype)
    if spec is None:
        raise InvalidRequestError(
            f"{field}: {_dtype_name(dtype)} does not fit input dtype {info.dtype}; send "
            f"{_WANTED.get(info.dtype, 'a number type such as DT_FLOAT')}"
        )
    values = _numbers(field, proto, rows, [rows]).tolist()
    return column_values(field, values, info, policy), rows


def _plain_column(proto: tensor_pb2.TensorProto, info: TensorInfo) -> list[Any] | None:
    """The values of a tensor as clients send it, read on one ``ListFields`` call: exactly
    dtype, a ``[n]`` shape and ``n`` values (UTF-8 ``string_val`` for a string input;
    float, double, int32 or int64 in ``tensor_content`` or the dtype's own field for a
    number). None for anything else, which :func:`_checked_column` then reads or refuses
    by name; either way the values reach the same :func:`column_values`.
    """
    fields = proto.ListFields()  # in field-number order: dtype, tensor_shape, the values
    if len(fields) != 3:
        return None
    (dtype_field, dtype), (shape_field, shape), (values_field, values) = fields
    dims: Any = shape.dim if shape_field is _SHAPE else ()
    if dtype_field is not _DTYPE or len(dims) != 1 or shape.unknown_rank:
        return None
    rows = dims[0].size
    if info.is_string:
        texts = values_field is _STRING_VAL and dtype == types_pb2.DT_STRING
        return _plain_texts(values, rows) if texts else None
    layout = _CONTENT.get(dtype)
    if layout is None or rows <= 0:
        return None
    if values_field is _TENSOR_CONTENT and len(values) == rows * layout[1]:
        return np.frombuffer(values, layout[0]).tolist()  # type: ignore[no-any-return]
    if values_field is layout[2] and len(values) == rows:
        return list(values)
    return None


def _plain_texts(values: Sequence[bytes], rows: int) -> list[str] | None:
    if len(values) != rows:
        return None
    try:
        return [item.decode("utf-8") for item in values]
    except UnicodeDecodeError:
        return None


def _texts(field: str, raw: Sequence[bytes]) -> list[str]:
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(item.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequestError(
                f"{field}[{i}]: {describe(item)} is not UTF-8 text; string inputs take UTF-8"
            ) from None
    return out


def _check_inputs(
    tensors: Mapping[str, Any], inputs: Mapping[str, TensorInfo], ignored: frozenset[str]
) -> None:
    unknown = [k for k in tensors if k not in inputs and k not in ignored]
    if unknown:
        raise InvalidRequestError(
            f"inputs: unexpected input {describe(sorted(unknown)[0])}; the model's inputs are: "
            + ", ".join(inputs)
        )
    missing = [k for k in inputs if k not in tensors]
    if missing:
        raise InvalidRequestError(
            f"inputs: missing input {missing[0]!r}; the model's inputs are: {', '.join(inputs)}"
        )


def columns_from_tensors(
    tensors: Mapping[str, tensor_pb2.TensorProto],
    inputs: Mapping[str, TensorInfo],
    policy: InputPolicy = DEFAULT_POLICY,
) -> tuple[dict[str, list[Any]], int]:
    """A Predict request's ``inputs`` map → (columns, rows): every input once, nothing else.

    Raises:
        InvalidRequestError: naming the input that is unknown, missing, or does not fit.
    """
    _check_inputs(tensors, inputs, policy.ignored)
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for name, info in inputs.items():
        column, n = tensor_column(name, tensors[name], info, policy)
        if rows is not None and n != rows:
            raise InvalidRequestError(
                f"inputs.{name}: shape [{n}] but other inputs have [{rows}]; every input needs "
                "the same number of rows"
            )
        rows = n
        columns[name] = column
    return columns, rows or 0


def tensor_array(
    name: str,
    proto: tensor_pb2.TensorProto,
    info: TensorInfo,
    policy: InputPolicy = DEFAULT_POLICY,
) -> np.ndarray[Any, Any]:
    """A tensor model's input from its ``TensorProto``: the shape as sent, checked against
    the signature (rank, fixed dimensions); exactly as many values as the shape holds
    (no fill-with-the-last); strings as bytes (any bytes: an encoded image).

    Raises:
        InvalidRequestError: naming ``inputs.<name>`` and what does not fit.
    """
    field = f"inputs.{name}"
    shape = proto.tensor_shape
    if shape.unknown_rank:
        raise InvalidRequestError(f"{field}: unknown rank; send the tensor's shape")
    dims = check_dims(field, [int(d.size) for d in shape.dim])
    count = math.prod(dims)
    present = _set_fields(proto)
    dtype = proto.dtype
    if info.is_string != (dtype == types_pb2.DT_STRING):
        wanted = "DT_STRING" if info.is_string else _WANTED.get(info.dtype, "a number type")
        raise InvalidRequestError(
            f"{field}: {_dtype_name(dtype)} does not fit input '{name}' of dtype {info.dtype}; "
            f"send {wanted}"
        )
    if info.is_string:
        if proto.tensor_content or present - {"string_val"}:
            raise InvalidRequestError(f"{field}: a DT_STRING tensor holds its values in string_val")
        if len(proto.string_val) != count:
            raise InvalidRequestError(
                f"{field}: {len(proto.string_val)} values in string_val do not hold shape {dims}"
            )
        array = np.empty(count, dtype=object)
        array[:] = list(proto.string_val)
    else:
        array = cast_numbers(field, _numbers(field, proto, count, dims), info, policy)
    check_shape(field, dims, info)
    return array.reshape(dims)


def _numbers(
    field: str, proto: tensor_pb2.TensorProto, count: int, dims: list[int]
) -> np.ndarray[Any, Any]:
    """A numeric ``TensorProto``'s ``count`` values, from ``tensor_content`` or its field."""
    dtype = proto.dtype
    spec = _NUMBERS.get(dtype) or (("|b1", "bool_val") if dtype == types_pb2.DT_BOOL else None)
    if spec is None:
        raise InvalidRequestError(f"{field}: {_dtype_name(dtype)} is not a number type")
    layout, repeated = spec
    present = _set_fields(proto)
    if present - {repeated}:
        raise InvalidRequestError(
            f"{field}: a {_dtype_name(dtype)} tensor holds its values in {repeated} or "
            f"tensor_content, not in {', '.join(sorted(present - {repeated}))}"
        )
    content = proto.tensor_content
    if content:
        if present:
            raise InvalidRequestError(
                f"{field}: values in both tensor_content and {repeated}; send one of them"
            )
        item = np.dtype(layout).itemsize
        if len(content) != count * item:
            raise InvalidRequestError(
                f"{field}: {len(content)} bytes of tensor_content do not hold shape {dims} of "
                f"{_dtype_name(dtype)} ({count * item} bytes)"
            )
        return np.frombuffer(content, dtype=layout)
    listed = getattr(proto, repeated)
    if len(listed) != count:
        raise InvalidRequestError(
            f"{field}: {len(listed)} values in {repeated} do not hold shape {dims} ({count})"
        )
    if dtype == types_pb2.DT_HALF:
        bits = np.array(listed, dtype=np.int64)
        if bits.size and (bits.min() < 0 or bits.max() > 0xFFFF):
            raise InvalidRequestError(f"{field}: a half_val value is not a 16-bit pattern")
        return bits.astype(np.uint16).view(np.float16)
    if layout in ("<i1", "<i2", "<u1", "<u2"):  # carried in int_val, an int32 field
        values = np.array(listed, dtype=np.int64)
        bounds = np.iinfo(np.dtype(layout))
        if values.size and (values.min() < bounds.min or values.max() > bounds.max):
            raise InvalidRequestError(
                f"{field}: an int_val value is outside {_dtype_name(dtype)}'s range"
            )
        return values
    return np.array(listed, dtype=layout)


def tensors_from_protos(
    tensors: Mapping[str, tensor_pb2.TensorProto],
    inputs: Mapping[str, TensorInfo],
    policy: InputPolicy = DEFAULT_POLICY,
) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    """A Predict request's ``inputs`` for a tensor model → (tensors, rows)."""
    _check_inputs(tensors, inputs, policy.ignored)
    out = {name: tensor_array(name, tensors[name], info, policy) for name, info in inputs.items()}
    return out, batch_of(out, "inputs")


def fill_tensor(proto: tensor_pb2.TensorProto, value: np.ndarray[Any, Any]) -> None:
    """An output array written into an empty ``TensorProto`` (numbers in
    ``tensor_content``, strings in ``string_val``), as ``tf.make_ndarray`` reads it back; a
    response's own map entry is filled in place, with no copy.

    >>> proto = tensor_pb2.TensorProto()  # doctest: +SKIP
    >>> fill_tensor(proto, np.array([1.5], np.float32)); proto.tensor_content  # doctest: +SKIP
    b'\\x00\\x00\\xc0?'
    """
    dims = proto.tensor_shape.dim
    for size in value.shape:
        dims.add(size=int(size))
    if value.dtype == object or value.dtype.kind in "SU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode("utf-8") for v in value.ravel()
        )
        return
    dtype, layout = _OUT.get(value.dtype, (types_pb2.DT_FLOAT, "<f4"))
    proto.dtype = dtype
    proto.tensor_content = np.ascontiguousarray(value, dtype=layout).tobytes()


def columns_from_examples(
    examples: Sequence[example_pb2.Example],
    context: example_pb2.Example | None,
    inputs: Mapping[str, TensorInfo],
    policy: InputPolicy = DEFAULT_POLICY,
) -> tuple[dict[str, list[Any]], int]:
    """``tf.Example`` protos → (columns, rows), read with the version's inputs.

    Each input is the feature of its name: ``float_list`` or ``int64_list`` for a numeric
    input, ``bytes_list`` (UTF-8) for a string one, with at most one value. An absent
    feature, an empty list or an unset feature is a missing value, decoded exactly as a
    JSON ``null`` for that input (NaN for numbers, ``""`` for strings). A ``context``
    (``example_list_with_context``) supplies features an example lacks; the example's
    own value wins. Features the model does not take are ignored, as TensorFlow's
    example parsing ignores them.

    Raises:
        InvalidRequestError: naming the feature (and the example): a list of the wrong
            kind, more than one value, text that is not UTF-8, or a value the policy
            refuses; or no examples at all.
    """
    if not examples:
        raise InvalidRequestError("input: no examples; send at least one tf.Example")
    shared = context.features.feature if context is not None else None
    columns: dict[str, list[Any]] = {}
    for name, info in inputs.items():
        field = f"examples.{name}"
        values: list[Any] = []
        for i, example in enumerate(examples):
            features = example.features.feature
            if name in features:
                feature = features[name]
            elif shared is not None and name in shared:
                feature = shared[name]
            else:
                values.append(None)
                continue
            values.append(_feature_value(field, i, feature, info))
        columns[name] = column_values(field, values, info, policy)
    return columns, len(examples)


def _feature_value(field: str, index: int, feature: example_pb2.Feature, info: TensorInfo) -> Any:
    kind = feature.WhichOneof("kind")
    if kind is None:
        return None
    wanted = ("bytes_list",) if info.is_string else ("float_list", "int64_list")
    if kind not in wanted:
        what = "string" if info.is_string else "numeric"
        raise InvalidRequestError(
            f"{field}[{index}]: feature {info.name!r} is a {kind}; the {what} input takes "
            + " or ".join(wanted)
        )
    listed = getattr(feature, kind).value
    if len(listed) > 1:
        raise InvalidRequestError(
            f"{field}[{index}]: feature {info.name!r} holds {len(listed)} values; each example "
            "takes one value per feature (or none for missing)"
        )
    if not listed:
        return None
    value = listed[0]
    if kind == "bytes_list":
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequestError(
                f"{field}[{index}]: feature {info.name!r} is not UTF-8 text"
            ) from None
    return value
