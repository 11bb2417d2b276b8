"""The plain reading of a ``TensorProto`` (one ``ListFields`` call) reads exactly what the
field-by-field reading does: the same values, or it hands the tensor to the checks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, types_pb2

from mooring.formats._columns import DEFAULT_POLICY
from mooring.formats._model import TensorInfo
from mooring.serving._errors import InvalidRequestError
from mooring.serving._grpc import tensors

NUMBER = TensorInfo("age", "float32", (None,))
WHOLE = TensorInfo("count", "int64", (None,))
TEXT = TensorInfo("sex", "string", (None,))
DTYPES = [types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_INT64,
          types_pb2.DT_INT8, types_pb2.DT_HALF, types_pb2.DT_STRING, types_pb2.DT_BOOL,
          0]  # fmt: skip
LAYOUT = {types_pb2.DT_FLOAT: "<f4", types_pb2.DT_DOUBLE: "<f8", types_pb2.DT_INT32: "<i4",
          types_pb2.DT_INT64: "<i8", types_pb2.DT_INT8: "<i1"}  # fmt: skip
FIELD = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val",
         types_pb2.DT_INT32: "int_val", types_pb2.DT_INT64: "int64_val",
         types_pb2.DT_INT8: "int_val", types_pb2.DT_HALF: "half_val",
         types_pb2.DT_BOOL: "bool_val"}  # fmt: skip
# Three times in four (Hypothesis draws small integers most, so a choice by list).
MOSTLY = st.sampled_from([True, True, True, False])
NUMBERS = st.one_of(
    st.floats(width=32), st.sampled_from([math.nan, math.inf, 3.4e38, -0.0, 2.0**40])
)


@st.composite
def protos(draw: st.DrawFn, info: TensorInfo) -> tensor_pb2.TensorProto:
    """A tensor as a client might send it for ``info``: mostly its dtype, else any; any
    shape, field of values, and extras."""
    usual = [types_pb2.DT_STRING] if info.is_string else list(LAYOUT)[:4]
    dtypes = st.sampled_from(usual) if draw(MOSTLY) else st.sampled_from(DTYPES)
    proto = tensor_pb2.TensorProto(dtype=draw(dtypes))
    one = [draw(st.integers(0, 4))]
    dims = one if draw(MOSTLY) else draw(st.lists(st.integers(-1, 4), max_size=2))
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_shape.unknown_rank = not draw(MOSTLY)
    # Mostly as many values as the shape says, so the plain reading is taken often.
    agree = len(dims) == 1 and dims[0] >= 0 and draw(MOSTLY)
    rows = dims[0] if agree else draw(st.integers(0, 4))
    kinds = ["strings"] if proto.dtype == types_pb2.DT_STRING else ["content", "field"]
    where = draw(
        st.sampled_from(kinds)
        if draw(st.booleans())
        else st.sampled_from(["content", "field", "strings", "none"])
    )
    if where == "content" and proto.dtype in LAYOUT:
        values = np.array(draw(st.lists(NUMBERS, min_size=rows, max_size=rows)))
        with np.errstate(all="ignore"):
            proto.tensor_content = values.astype(LAYOUT[proto.dtype]).tobytes()
        if not draw(MOSTLY):  # a byte short or over
            proto.tensor_content += b"\0" if draw(st.booleans()) else b""
            proto.tensor_content = proto.tensor_content[: draw(st.integers(0, 40))]
    elif where == "field" and proto.dtype in FIELD:
        name = FIELD[proto.dtype]
        if name in ("float_val", "double_val"):
            getattr(proto, name).extend(draw(st.lists(NUMBERS, min_size=rows, max_size=rows)))
        elif name == "bool_val":
            proto.bool_val.extend(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
        else:
            whole = (
                st.integers(-(2**31), 2**31 - 1)
                if name != "int64_val"
                else st.integers(-(2**63), 2**63 - 1)
            )
            getattr(proto, name).extend(draw(st.lists(whole, min_size=rows, max_size=rows)))
    elif where == "strings":
        texts = st.one_of(st.text(max_size=5).map(str.encode), st.binary(max_size=4))
        proto.string_val.extend(draw(st.lists(texts, min_size=rows, max_size=rows)))
    extra = draw(st.sampled_from([None, None, None, None, "version", "float", "string"]))
    if extra == "version":
        proto.version_number = 3
    elif extra == "float":
        proto.float_val.append(1.0)
    elif extra == "string":
        proto.string_val.append(b"x")
    return proto


def _read(read: Any, *args: Any) -> tuple[str, Any]:
    try:
        values, rows = read(*args)
    except InvalidRequestError as exc:
        return "refused", str(exc)
    return "read", (np.asarray(values, dtype=object).tolist(), rows)


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "refused":
        return bool(a[1] == b[1])
    (left, n), (right, m) = a[1], b[1]
    return (
        n == m
        and len(left) == len(right)
        and all(
            x == y
            or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
            for x, y in zip(left, right, strict=True)
        )
    )


@settings(max_examples=400, deadline=None)
@given(data=st.data(), info=st.sampled_from([NUMBER, WHOLE, TEXT]))
def test_the_plain_reading_agrees_with_the_checked_one(
    data: st.DataObject, info: TensorInfo
) -> None:
    proto = data.draw(protos(info))
    field = f"inputs.{info.name}"
    fast = _read(tensors.tensor_column, info.name, proto, info, DEFAULT_POLICY)
    checked = _read(tensors._checked_column, field, proto, info, DEFAULT_POLICY)
    assert _same(fast, checked), (fast, checked, proto)


@pytest.mark.parametrize(
    ("proto", "info"),
    [
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0\0\x20\x42"), NUMBER),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[39.0]), NUMBER),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"Male"]), TEXT),
    ],
)
def test_a_client_s_usual_tensors_take_the_plain_reading(
    proto: tensor_pb2.TensorProto, info: TensorInfo
) -> None:
    proto.tensor_shape.dim.add(size=1)
    assert tensors._plain_column(proto, info) is not None
    column, rows = tensors.tensor_column(info.name, proto, info)
    assert rows == 1 and column == (
        [40.0] if proto.tensor_content else [39.0] if proto.float_val else ["Male"]
    )


def test_a_string_value_in_a_float_tensor_is_still_refused_by_name() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, string_val=[b"Male"])
    proto.tensor_shape.dim.add(size=1)
    assert tensors._plain_column(proto, TEXT) is None
    with pytest.raises(
        InvalidRequestError, match=r"^inputs\.sex: DT_FLOAT does not fit input dtype string"
    ):
        tensors.tensor_column("sex", proto, TEXT)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["", "age", "sex"]),
    datatype=st.sampled_from(["", "FP32", "BYTES"]),
    shape=st.lists(st.integers(-1, 3), max_size=2),
    extra=st.sampled_from([None, None, "contents", "empty contents", "parameters"]),
)
def test_an_infer_tensor_is_described_as_its_fields_say(
    name: str, datatype: str, shape: list[int], extra: str | None
) -> None:
    from mooring.serving._grpc import inference
    from mooring.serving._grpc.protos import open_inference_grpc_pb2 as pb

    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    if extra == "contents":
        tensor.contents.fp32_contents.append(1.0)
    elif extra == "empty contents":
        tensor.contents.SetInParent()
    elif extra == "parameters":
        tensor.parameters["binary_data_size"].int64_param = 4
    typed = tensor.HasField("contents") and bool(tensor.contents.ListFields())
    assert inference._described(tensor) == (name, datatype, shape, typed)


def test_a_predict_request_may_carry_a_known_column_and_nothing_else() -> None:
    """The version's known non-feature columns (``InputPolicy.ignored``) are ignored."""
    from dataclasses import replace

    sent = {
        "age": tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[39.0]),
        "Zeitpunkt": tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"2026-11-27"]),
    }
    for proto in sent.values():
        proto.tensor_shape.dim.add(size=1)
    inputs = {"age": NUMBER}
    with pytest.raises(InvalidRequestError, match="unexpected input 'Zeitpunkt'"):
        tensors.columns_from_tensors(sent, inputs, DEFAULT_POLICY)
    policy = replace(DEFAULT_POLICY, ignored=frozenset({"Zeitpunkt"}))
    columns, rows = tensors.columns_from_tensors(sent, inputs, policy)
    assert (columns, rows) == ({"age": [39.0]}, 1)


def test_an_infer_request_may_carry_a_known_column_raw_or_typed() -> None:
    """The Open Inference Protocol's gRPC ``ModelInferRequest``: a known column is dropped
    with its raw contents, whatever their place; an unknown one is still refused."""
    from dataclasses import replace

    from mooring.serving._grpc.inference import columns_from_infer
    from mooring.serving._grpc.protos import open_inference_grpc_pb2 as oip

    policy = replace(DEFAULT_POLICY, ignored=frozenset({"Zeitpunkt"}))
    for raw in (False, True):
        request = oip.ModelInferRequest(model_name="m")
        for name, datatype, value in (
            ("Zeitpunkt", "BYTES", b"2026-11-27"),
            ("age", "FP32", np.float32(39.0).tobytes()),
        ):
            tensor = request.inputs.add(name=name, datatype=datatype, shape=[1])
            if raw:
                request.raw_input_contents.append(value)
            elif datatype == "FP32":
                tensor.contents.fp32_contents.append(39.0)
            else:
                tensor.contents.bytes_contents.append(value)
        columns, rows = columns_from_infer(request, {"age": NUMBER}, policy)
        assert rows == 1 and list(columns) == ["age"]
        assert np.asarray(columns["age"]).tolist() == [39.0], raw
        with pytest.raises(InvalidRequestError, match="unexpected input 'Zeitpunkt'"):
            columns_from_infer(request, {"age": NUMBER}, DEFAULT_POLICY)
