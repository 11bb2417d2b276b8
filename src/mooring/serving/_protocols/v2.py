"""The Open Inference Protocol (KServe v2): typed tensors, JSON or the binary tensor extension.

Requests carry ``inputs`` as ``{"name", "shape", "datatype", "data"}``. For a columnar
model (one ``[None]`` column per input) each input is one rank-1 tensor of ``shape
[n]``: ``FP32`` (or another number type) for numeric columns, ``BYTES`` for strings;
for a tensor model each input has the rank and fixed dimensions of its signature,
checked by :mod:`mooring.formats._tensors` (``data`` flat or nested, row-major). The
binary extension (``Inference-Header-Content-Length``) is understood in both
directions, which is what ``tritonclient`` uses by default.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from mooring.errors import NotFoundError
from mooring.formats._columns import (
    DEFAULT_POLICY,
    InputPolicy,
    column_array,
    column_values,
    describe,
    loads,
)
from mooring.formats._model import TensorInfo
from mooring.formats._tensors import (
    batch_of,
    cast_numbers,
    check_dims,
    check_shape,
    tensor_from_flat,
)
from mooring.serving._errors import InvalidRequestError
from mooring.serving._loaded import ServedModel

__all__ = [
    "DATATYPES",
    "MODEL_ENDPOINTS",
    "NUMERIC",
    "Endpoint",
    "binary_column",
    "binary_tensor",
    "bytes_elements",
    "encode_infer",
    "metadata_document",
    "parse_infer",
    "parse_path",
    "split_body",
]

DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32",
             "string": "BYTES", "float16": "FP16", "int8": "INT8", "int16": "INT16",
             "uint8": "UINT8", "uint16": "UINT16", "bool": "BOOL"}  # fmt: skip
NUMERIC = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4", "FP16": "<f2",
            "INT16": "<i2", "INT8": "<i1", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4",
            "UINT64": "<u8"}  # fmt: skip


#: A model's endpoints: the path after ``models/NAME[/versions/N]`` → (kind, method).
MODEL_ENDPOINTS: dict[tuple[str, ...], tuple[str, str]] = {
    (): ("model", "GET"),
    ("ready",): ("model_ready", "GET"),
    ("infer",): ("infer", "POST"),
    ("explain",): ("explain", "POST"),
}


@dataclass(frozen=True)
class Endpoint:
    """What a v2 URL names: ``kind`` is ``live``, ``ready``, ``server`` (metadata),
    ``model`` (metadata), ``model_ready``, ``infer`` or ``unknown``; ``model`` and
    ``version`` for the model endpoints."""

    kind: str
    model: str | None = None
    version: int | None = None
    # The method the path takes, when the request used another one (a 405's Allow).
    allow: str | None = None


def parse_path(rest: str, method: str) -> Endpoint:
    """The v2 URL grammar: the part of the path after ``/v2/``, and the HTTP method.

    ``health/live``, ``health/ready``, the server's metadata at the root, and per model
    ``models/NAME[/versions/N]`` (metadata), ``…/ready``, ``…/infer`` and ``…/explain``
    (POST).

    Raises:
        NotFoundError: not a v2 endpoint.
        InvalidRequestError: a version that is not a positive integer.

    Examples:
        >>> parse_path("models/income/versions/3/infer", "POST")
        Endpoint(kind='infer', model='income', version=3, allow=None)
    """
    parts = rest.strip("/").split("/")
    if parts == ["health", "live"] and method == "GET":
        return Endpoint("live")
    if parts == ["health", "ready"] and method == "GET":
        return Endpoint("ready")
    if parts == [""]:
        return Endpoint("server")
    if len(parts) < 2 or parts[0] != "models":
        raise NotFoundError(f"no such endpoint /v2/{rest}")
    version: int | None = None
    tail = parts[2:]
    if len(tail) >= 2 and tail[0] == "versions":
        if not (tail[1].isascii() and tail[1].isdigit() and 0 < len(tail[1]) < 10):
            raise InvalidRequestError(
                f"version {describe(tail[1])} in the URL is not a positive integer; "
                "e.g. /versions/3"
            )
        version = int(tail[1])
        tail = tail[2:]
    kind, allowed = MODEL_ENDPOINTS.get(tuple(tail), ("unknown", None))
    if allowed is not None and method != allowed:
        return Endpoint("unknown", parts[1], version, allow=allowed)
    return Endpoint(kind, parts[1], version)


def metadata_document(model: ServedModel, versions: list[int]) -> dict[str, Any]:
    """``GET /v2/models/{name}[/versions/{v}]``."""

    def tensor(info: TensorInfo) -> dict[str, Any]:
        return {
            "name": info.name,
            "datatype": DATATYPES.get(info.dtype, "FP32"),
            "shape": [-1 if d is None else d for d in info.shape],
        }

    return {
        "name": model.name,
        "versions": [str(v) for v in versions],
        "platform": "tensorflow_savedmodel",
        "inputs": [tensor(i) for i in model.inputs.values()],
        "outputs": [tensor(i) for i in model.outputs.values()],
    }


def split_body(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    """JSON header (+ binary tail when the extension's header says so)."""
    if header_length is None:
        json_part, tail = body, b""
    else:
        # ASCII digits only: str.isdigit() also takes "³", which int() refuses.
        digits = header_length.isascii() and header_length.isdigit()
        if not digits or len(header_length) > 18 or int(header_length) > len(body):
            raise InvalidRequestError(
                f"Inference-Header-Content-Length {describe(header_length)} does not fit a body "
                f"of {len(body)} bytes"
            )
        size = int(header_length)
        json_part, tail = body[:size], body[size:]
    return loads(json_part), tail


def bytes_elements(blob: bytes, count: int, field: str) -> list[str]:
    """The binary extension's BYTES tensor: ``count`` elements, each a 4-byte little-endian
    length and that many bytes of UTF-8 text; anything else is a 400 naming ``field``.

    >>> bytes_elements(b"\\x02\\x00\\x00\\x00hi", 1, "inputs.sex")
    ['hi']
    """
    texts: list[str] = []
    for i, raw in enumerate(raw_elements(blob, count, field)):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequestError(f"{field}[{i}]: BYTES element is not UTF-8 text") from None
    return texts


def raw_elements(blob: bytes, count: int, field: str) -> list[bytes]:
    """:func:`bytes_elements` as bytes, not text (a tensor model's string input)."""
    out: list[bytes] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(blob):
            raise InvalidRequestError(f"{field}: binary BYTES data ends early")
        (length,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        if offset + length > len(blob):
            raise InvalidRequestError(f"{field}: binary BYTES element runs past the data")
        out.append(blob[offset : offset + length])
        offset += length
    if offset != len(blob):
        raise InvalidRequestError(f"{field}: {len(blob) - offset} stray bytes after the elements")
    return out


def binary_column(
    field: str, datatype: str, blob: bytes, rows: int, info: TensorInfo, policy: InputPolicy
) -> np.ndarray[Any, Any]:
    """One input's binary data (``datatype`` one of :data:`NUMERIC` or ``BYTES``) → its column,
    with the NaN/Infinity policy applied as :func:`~mooring.formats._columns.column_values`
    applies it; a size that does not hold ``[rows]`` is a 400 naming ``field``.
    """
    if info.is_string:
        return column_array(field, list(bytes_elements(blob, rows, field)), info, policy)
    dtype = np.dtype(NUMERIC[datatype])
    if len(blob) != rows * dtype.itemsize:
        raise InvalidRequestError(
            f"{field}: {len(blob)} bytes of {datatype} data do not hold shape [{rows}]"
        )
    values = np.frombuffer(blob, dtype=dtype)
    if dtype.kind != "f":
        return values.astype(info.numpy_dtype())
    # The usual column: every value finite, float32 or smaller (nothing to overflow), on
    # one ufunc; anything else takes the checks below, which name the value.
    if dtype.itemsize <= 4 and np.isfinite(values).all():
        return values.astype(info.numpy_dtype())
    integer = not info.is_string and info.dtype in ("int64", "int32")
    nan = np.isnan(values)
    if nan.any() and (integer or policy.nan != "missing"):
        raise InvalidRequestError(
            f"{field}[{int(np.argmax(nan))}]: NaN is not accepted; send a finite number "
            "(the server's [serving] nan_policy decides whether NaN means missing)"
        )
    inf = np.isinf(values)
    if inf.any():
        if integer or policy.infinity != "missing":
            raise InvalidRequestError(
                f"{field}[{int(np.argmax(inf))}]: Infinity is not accepted; send a finite number "
                "(the server's [serving] infinity_policy decides whether it means missing)"
            )
        values = np.where(inf, np.nan, values)
    if np.nanmax(np.abs(values), initial=0.0) > np.finfo(np.float32).max:
        raise InvalidRequestError(f"{field}: a value overflows float32")
    return values.astype(info.numpy_dtype())


def parse_infer(
    body: Any,
    tail: bytes,
    inputs: Mapping[str, TensorInfo],
    outputs: Mapping[str, TensorInfo],
    policy: InputPolicy = DEFAULT_POLICY,
    *,
    arrays: bool = True,
    columnar: bool = True,
) -> tuple[dict[str, Any], int, dict[str, bool], str | None]:
    """Validate an infer request → (columns, rows, {output: binary?}, request id).

    ``columnar``: every input is a ``[None]`` column; otherwise each is a tensor of its
    signature's shape (:func:`infer_tensors`).
    """
    if not isinstance(body, dict):
        raise InvalidRequestError('the body must be a JSON object such as {"inputs": [...]}')
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequestError(f"id: expected a string, got {describe(request_id)}")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidRequestError("parameters: expected an object")
    tensors = _input_tensors(body.get("inputs"), inputs, policy.ignored)
    if not columnar:
        arrays_in, batch = infer_tensors(tensors, tail, inputs, policy)
        binary_all = bool(params.get("binary_data_output", False))
        wanted = _wanted_outputs(body.get("outputs"), outputs, binary_all)
        return arrays_in, batch, wanted, request_id
    columns: dict[str, Any] = {}
    rows: int | None = None
    offset = 0
    convert = column_array if arrays else column_values
    for tensor in tensors:
        name = tensor["name"]
        info = inputs[name]
        field = f"inputs.{name}"
        rows = n = _rows_of(field, tensor.get("shape"), rows)
        datatype = _datatype(field, tensor.get("datatype"), info)
        tparams = tensor.get("parameters") or {}
        size = tparams.get("binary_data_size") if isinstance(tparams, dict) else None
        if size is not None:
            if datatype == "BOOL" and info.is_string:
                raise InvalidRequestError(
                    f"{field}: BOOL in binary data for a text input; send its values as JSON "
                    "booleans in 'data', or as BYTES"
                )
            if type(size) is not int or size < 0 or offset + size > len(tail):
                raise InvalidRequestError(
                    f"{field}: binary_data_size {describe(size)} runs past the binary data"
                )
            columns[name] = binary_column(
                field, datatype, tail[offset : offset + size], n, info, policy
            )
            offset += size
            continue
        data = tensor.get("data")
        if not isinstance(data, list):
            raise InvalidRequestError(f"{field}: 'data' must be a flat list of {n} values")
        if len(data) != n:
            raise InvalidRequestError(f"{field}: {len(data)} values in 'data' but shape says [{n}]")
        columns[name] = convert(field, data, info, policy)
    if offset != len(tail):
        raise InvalidRequestError(
            f"{len(tail) - offset} bytes of binary data are not claimed by any input"
        )
    if not rows:
        raise InvalidRequestError("inputs: empty batch (shape [0]); send at least one row")
    binary_all = bool(params.get("binary_data_output", False))
    return columns, rows, _wanted_outputs(body.get("outputs"), outputs, binary_all), request_id


#: The binary layout of each datatype a tensor model's input may take.
TENSOR_LAYOUTS = {**NUMERIC, "BOOL": "|b1"}


def infer_tensors(
    tensors: list[dict[str, Any]],
    tail: bytes,
    inputs: Mapping[str, TensorInfo],
    policy: InputPolicy = DEFAULT_POLICY,
) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
    """A tensor model's inputs: each ``{"name", "shape", "datatype", "data" | binary}``
    → its array, checked against the signature (rank, fixed dimensions, dtype, the batch
    shared by all) → (tensors, rows)."""
    out: dict[str, np.ndarray[Any, Any]] = {}
    offset = 0
    for tensor in tensors:
        name = tensor["name"]
        info = inputs[name]
        field = f"inputs.{name}"
        dims = check_dims(field, tensor.get("shape"))
        datatype = tensor_datatype(field, tensor.get("datatype"), info)
        tparams = tensor.get("parameters") or {}
        size = tparams.get("binary_data_size") if isinstance(tparams, dict) else None
        if size is None:
            out[name] = tensor_from_flat(field, tensor.get("data"), dims, info, policy)
            continue
        if type(size) is not int or size < 0 or offset + size > len(tail):
            raise InvalidRequestError(
                f"{field}: binary_data_size {describe(size)} runs past the binary data"
            )
        blob = tail[offset : offset + size]
        out[name] = binary_tensor_in(field, datatype, blob, dims, info, policy)
        offset += size
    if offset != len(tail):
        raise InvalidRequestError(
            f"{len(tail) - offset} bytes of binary data are not claimed by any input"
        )
    return out, batch_of(out, "inputs")


def tensor_datatype(field: str, datatype: Any, info: TensorInfo) -> str:
    """A tensor input's ``datatype``: ``BYTES`` for a string input, else a number type
    (or ``BOOL``) whose values :func:`~mooring.formats._tensors.cast_numbers` then fits."""
    fits = datatype == "BYTES" if info.is_string else datatype in TENSOR_LAYOUTS
    if not isinstance(datatype, str) or not fits:
        expected = "BYTES" if info.is_string else f"{DATATYPES.get(info.dtype, 'FP32')}"
        raise InvalidRequestError(
            f"{field}: datatype {describe(datatype)} does not fit input '{info.name}' of "
            f"dtype {info.dtype}; send {expected}"
        )
    return datatype


def binary_tensor_in(
    field: str,
    datatype: str,
    blob: bytes,
    dims: list[int],
    info: TensorInfo,
    policy: InputPolicy,
) -> np.ndarray[Any, Any]:
    """One tensor input's binary data of shape ``dims`` → its checked array."""
    count = math.prod(dims)
    if info.is_string:
        elements = raw_elements(blob, count, field)  # sized by the data, not the claim
        values = np.empty(count, dtype=object)
        values[:] = elements
        array = values.reshape(dims)
    else:
        dtype = np.dtype(TENSOR_LAYOUTS[datatype])
        if len(blob) != count * dtype.itemsize:
            raise InvalidRequestError(
                f"{field}: {len(blob)} bytes of {datatype} data do not hold shape {dims} "
                f"({count * dtype.itemsize} bytes)"
            )
        array = cast_numbers(field, np.frombuffer(blob, dtype=dtype).reshape(dims), info, policy)
    check_shape(field, dims, info)
    return array


def _input_tensors(
    tensors: Any, inputs: Mapping[str, TensorInfo], ignored: frozenset[str]
) -> list[dict[str, Any]]:
    """The request's ``inputs``: a non-empty list naming each model input once, and
    perhaps ``ignored`` columns in JSON ``data`` (dropped here)."""
    if not isinstance(tensors, list) or not tensors:
        raise InvalidRequestError(
            "inputs: expected a non-empty list of tensors "
            '{"name", "shape", "datatype", "data"}, one per model input'
        )
    seen: dict[str, dict[str, Any]] = {}
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidRequestError(f"inputs[{i}]: expected an object with a string 'name'")
        name = tensor["name"]
        if name not in inputs and name in ignored:
            params = tensor.get("parameters")
            if isinstance(params, dict) and "binary_data_size" in params:
                raise InvalidRequestError(
                    f"inputs[{i}]: {name!r} is not a model input; send such a column of the "
                    "table as JSON 'data', or leave it out"
                )
            continue
        if name not in inputs:
            raise InvalidRequestError(
                f"inputs[{i}]: unexpected input {describe(name)}; the model's inputs are: "
                + ", ".join(inputs)
            )
        if name in seen:
            raise InvalidRequestError(f"inputs[{i}]: input {name!r} is sent twice")
        seen[name] = tensor
    missing = [n for n in inputs if n not in seen]
    if missing:
        raise InvalidRequestError(
            f"inputs: missing input {missing[0]!r}; the model's inputs are: {', '.join(inputs)}"
        )
    return list(seen.values())


def _rows_of(field: str, shape: Any, rows: int | None) -> int:
    """An input's row count from its ``shape`` ``[n]``, the same as the inputs before it."""
    if not isinstance(shape, list) or len(shape) != 1 or type(shape[0]) is not int or shape[0] < 0:
        raise InvalidRequestError(
            f"{field}: shape {describe(shape)} is not [n]; each input is one rank-1 tensor "
            "with one value per row (no broadcasting)"
        )
    n: int = shape[0]
    if rows is not None and n != rows:
        raise InvalidRequestError(
            f"{field}: shape [{n}] but other inputs have [{rows}]; every input needs the same "
            "number of rows"
        )
    return n


#: What a text input takes: text, or booleans (a boolean column is trained as its text).
TEXT_DATATYPES = frozenset({"BYTES", "BOOL"})


def _datatype(field: str, datatype: Any, info: TensorInfo) -> str:
    """An input's ``datatype``: ``BYTES`` or ``BOOL`` for a string input (``true`` is the
    text ``"true"``), one of :data:`NUMERIC` else."""
    expected = "BYTES (or BOOL)" if info.is_string else "a number type such as FP32"
    # A client may send any JSON value here: only a string can name a datatype.
    if not isinstance(datatype, str) or (
        (info.is_string and datatype not in TEXT_DATATYPES)
        or (not info.is_string and datatype not in NUMERIC)
    ):
        raise InvalidRequestError(
            f"{field}: datatype {describe(datatype)} does not fit input dtype {info.dtype}; "
            f"send {expected}"
        )
    return datatype


def _wanted_outputs(
    requested: Any, outputs: Mapping[str, TensorInfo], binary_all: bool
) -> dict[str, bool]:
    """{output: binary?}: every output when none is requested (binary when
    ``binary_data_output``), else the requested ones, each with its own ``binary_data``."""
    if requested is None:
        return {name: binary_all for name in outputs}
    if not isinstance(requested, list):
        raise InvalidRequestError('outputs: expected a list of {"name": ...}')
    wanted: dict[str, bool] = {}
    for i, out in enumerate(requested):
        if (
            not isinstance(out, dict)
            or not isinstance(out.get("name"), str)
            or (out["name"] not in outputs)
        ):
            raise InvalidRequestError(
                f"outputs[{i}]: unknown output {describe(out)}; outputs: {', '.join(outputs)}"
            )
        oparams = out.get("parameters") or {}
        binary = oparams.get("binary_data", binary_all) if isinstance(oparams, dict) else False
        wanted[out["name"]] = bool(binary)
    return wanted


def binary_tensor(value: np.ndarray[Any, Any]) -> bytes:
    """An output as the binary extension writes it: little-endian numbers, or BYTES elements.

    >>> binary_tensor(np.array([1, 2], np.int32))
    b'\\x01\\x00\\x00\\x00\\x02\\x00\\x00\\x00'
    """
    if value.dtype == object:
        parts = []
        for item in value.ravel():
            raw = str(item).encode("utf-8")
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()


def encode_infer(
    outputs: Mapping[str, np.ndarray[Any, Any]],
    wanted: Mapping[str, bool],
    *,
    model: str,
    version: int,
    request_id: str | None,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length;
    ``parameters``: the response's own (an explanation's columns, method and unit)."""
    tensors = []
    blobs = []
    for name, binary in wanted.items():
        value = outputs[name]
        dtype = "string" if value.dtype == object else value.dtype.name
        entry: dict[str, Any] = {
            "name": name,
            "datatype": DATATYPES.get(dtype, "FP32"),
            "shape": list(value.shape),
        }
        if binary:
            blob = binary_tensor(value)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = value.ravel().tolist()
        tensors.append(entry)
    document: dict[str, Any] = {
        "model_name": model,
        "model_version": str(version),
        "outputs": tensors,
    }
    if request_id is not None:
        document["id"] = request_id
    if parameters:
        document["parameters"] = dict(parameters)
    header = orjson.dumps(document)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)
