"""TF Serving's REST API: request formats, response shapes, status and metadata documents.

``POST /v1/models/{name}[/versions/{n}|/labels/{label}]:predict`` takes the row
format ``{"instances": [{...}, ...]}`` (answered with ``predictions``) or the
columnar format ``{"inputs": {"col": [...], ...}}`` (answered with ``outputs``),
as TF Serving does. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mooring.formats._columns import (
    DEFAULT_POLICY,
    InputPolicy,
    columns_from_columns,
    columns_from_rows,
    describe,
)
from mooring.formats._model import SIGNATURE, TensorInfo
from mooring.formats._tensors import tensors_from_columns, tensors_from_rows
from mooring.serving._errors import InvalidRequestError
from mooring.serving._loaded import ServedModel

__all__ = [
    "ModelPath",
    "format_predict",
    "metadata_document",
    "parse_path",
    "parse_predict",
    "status_document",
]

_PATH = re.compile(
    r"^(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<verb>:predict|:classify|:regress|:explain|/metadata)?$"
)
_TF_DTYPES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int64": "DT_INT64",
              "int32": "DT_INT32", "string": "DT_STRING", "float16": "DT_HALF",
              "int8": "DT_INT8", "int16": "DT_INT16", "uint8": "DT_UINT8",
              "uint16": "DT_UINT16", "bool": "DT_BOOL"}  # fmt: skip


@dataclass(frozen=True)
class ModelPath:
    """What a ``/v1/models/...`` path names."""

    name: str
    version: int | None
    label: str | None
    verb: str

    @property
    def model(self) -> str:
        """The model's name, as the v2 grammar's :class:`~.v2.Endpoint` names it."""
        return self.name


@functools.lru_cache(maxsize=512)  # a handful of distinct paths carry all the traffic
def parse_path(rest: str) -> ModelPath | None:
    """``income/versions/3:predict`` → ModelPath; None when the path is not one of the API's."""
    match = _PATH.match(rest)
    if match is None:
        return None
    version = match.group("version")
    if version is not None and not (
        version.isascii() and version.isdigit() and 0 < len(version) < 10
    ):
        raise InvalidRequestError(
            f"version {describe(version)} in the URL is not a positive integer; e.g. /versions/3"
        )
    return ModelPath(
        name=match.group("name"),
        version=int(version) if version is not None else None,
        label=match.group("label"),
        verb=(match.group("verb") or "").lstrip(":/"),
    )


def parse_predict(
    body: Any,
    inputs: Mapping[str, TensorInfo],
    policy: InputPolicy = DEFAULT_POLICY,
    *,
    arrays: bool = True,
    columnar: bool = True,
) -> tuple[dict[str, Any], int, bool]:
    """Validate a predict body → (columns, rows, row_format); columns as lists if not arrays.

    ``columnar``: every input is a ``[None]`` column (a model mooring trained); otherwise
    each input is a tensor checked against its shape (:mod:`mooring.formats._tensors`).
    """
    if not isinstance(body, dict):
        raise InvalidRequestError(
            'the body must be a JSON object such as {"instances": [{...}]} or {"inputs": {...}}'
        )
    unknown = [k for k in body if k not in ("instances", "inputs", "signature_name")]
    if unknown:
        raise InvalidRequestError(
            f"unexpected key {describe(unknown[0])} in the body; use 'instances' (rows) or "
            "'inputs' (columns), and optionally 'signature_name'"
        )
    signature = body.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise InvalidRequestError(
            f"signature_name {describe(signature)} does not exist; the model serves {SIGNATURE!r}"
        )
    if ("instances" in body) == ("inputs" in body):
        raise InvalidRequestError(
            "send exactly one of 'instances' (row format) or 'inputs' (columnar format)"
        )
    if not columnar:
        if "instances" in body:
            tensors, rows = tensors_from_rows(
                body["instances"], inputs, where="instances", policy=policy
            )
            return tensors, rows, True
        tensors, rows = tensors_from_columns(body["inputs"], inputs, where="inputs", policy=policy)
        return tensors, rows, False
    if "instances" in body:
        columns, rows = columns_from_rows(
            body["instances"], inputs, where="instances", policy=policy, arrays=arrays
        )
        return columns, rows, True
    columns, rows = columns_from_columns(
        body["inputs"], inputs, where="inputs", policy=policy, arrays=arrays
    )
    return columns, rows, False


def _lists(outputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, list[Any]]:
    """Outputs as JSON lists; a string output named ``*_bytes`` as ``{"b64": ...}`` values,
    as TF Serving writes binary outputs."""
    lists = {}
    for name, value in outputs.items():
        items = value.tolist()
        if name.endswith("_bytes") and value.dtype.kind in "OSU":
            items = _b64(items)
        lists[name] = items
    return lists


def _b64(item: Any) -> Any:
    if isinstance(item, list):
        return [_b64(x) for x in item]
    raw = item.encode() if isinstance(item, str) else bytes(item)
    return {"b64": base64.b64encode(raw).decode("ascii")}


def format_predict(
    outputs: Mapping[str, np.ndarray[Any, Any]], *, rows: int, row_format: bool, version: int
) -> dict[str, Any]:
    """TF Serving's response shape, plus ``model_version`` (clients ignore unknown keys)."""
    lists = _lists(outputs)
    if row_format:
        if len(lists) == 1:
            predictions: list[Any] = next(iter(lists.values()))
        else:
            predictions = [{k: v[i] for k, v in lists.items()} for i in range(rows)]
        return {"predictions": predictions, "model_version": str(version)}
    result: Any = next(iter(lists.values())) if len(lists) == 1 else lists
    return {"outputs": result, "model_version": str(version)}


def status_document(versions: Mapping[int, str], failures: Mapping[int, str]) -> dict[str, Any]:
    """``GET /v1/models/{name}``: one entry per version with its state."""
    entries = [
        {"version": str(v), "state": state, "status": {"error_code": "OK", "error_message": ""}}
        for v, state in sorted(versions.items(), reverse=True)
    ]
    entries += [
        {"version": str(v), "state": "END",
         "status": {"error_code": "UNAVAILABLE", "error_message": message}}
        for v, message in sorted(failures.items(), reverse=True)
        if v not in versions
    ]  # fmt: skip
    return {"model_version_status": entries}


def _tensor(info: TensorInfo, prefix: str) -> dict[str, Any]:
    return {
        "dtype": _TF_DTYPES.get(info.dtype, "DT_INVALID"),
        "tensor_shape": {
            "dim": [{"size": str(-1 if d is None else d), "name": ""} for d in info.shape],
            "unknown_rank": False,
        },
        "name": f"{prefix}_{info.name}:0",
    }


def metadata_document(model: ServedModel) -> dict[str, Any]:
    """``GET /v1/models/{name}/metadata``: the signature in TF Serving's layout, and
    ``metadata.xla``: the batch sizes that run compiled and why (:mod:`..._xla`)."""
    signature = {
        "inputs": {n: _tensor(i, SIGNATURE) for n, i in model.inputs.items()},
        "outputs": {n: _tensor(i, "StatefulPartitionedCall") for n, i in model.outputs.items()},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
        "metadata": {
            "signature_def": {"signature_def": {SIGNATURE: signature}},
            # Where XLA runs this version (mooring's own field; TF Serving has none).
            **({"xla": model.xla.document()} if model.xla is not None else {}),
        },
    }
