"""Hypothesis against an in-process server's gRPC APIs: whatever the request, the status is
never INTERNAL or UNKNOWN, and every INVALID_ARGUMENT names what was wrong.

Generated: ``TensorProto`` inputs with every dtype, shapes of any rank (negative and
huge dimensions, unknown rank), ``tensor_content`` of any length, value fields that do
not fit the dtype, NaN and ±Infinity, bytes that are not UTF-8; ``tf.Example`` inputs
with missing, extra, empty and wrongly kinded features; and ``ModelInferRequest``\\ s
with raw and typed contents of any size.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2

from mooring.serving._grpc.protos import open_inference_grpc_pb2 as oip
from mooring.serving._grpc.protos import open_inference_grpc_pb2_grpc as oip_grpc
from tests._support.grpc import GrpcServerThread, channel, model_dir_sources, predict_request
from tests._support.server import FAST, NAME
from tests._support.serving_model import row

INPUTS = ("age", "hours-per-week", "workclass", "sex")
NUMERIC = ("age", "hours-per-week")
# What an INVALID_ARGUMENT names: an input or feature (inputs.age, examples.sex[2]), a
# request field (model_spec, signature_name, tasks[0], raw_input_contents), or a value.
NAMES_SOMETHING = re.compile(r"^[\w.\[\]-]+: |['\"]|\w\[\d+\]|\w\.\w")
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


@pytest.fixture(scope="module")
def target(model_dirs: dict[str, Path]) -> Iterator[str]:
    cfg = FAST.model_copy(update={"max_in_flight": 64})
    with GrpcServerThread(model_dir_sources(model_dirs["a"]), cfg) as server:
        server.wait_ready()
        yield server.target


@pytest.fixture(scope="module")
def opened(target: str) -> Iterator[grpc.Channel]:
    with channel(target) as found:
        yield found


DTYPES = [types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_INT64,
          types_pb2.DT_INT8, types_pb2.DT_UINT8, types_pb2.DT_HALF, types_pb2.DT_STRING,
          types_pb2.DT_BOOL, types_pb2.DT_UINT64, types_pb2.DT_COMPLEX64, 0, 999]  # fmt: skip
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([math.nan, math.inf, -math.inf, 3.4e38, -0.0]),
)
DIMS = st.one_of(st.integers(0, 6), st.sampled_from([-1, -(2**62), 2**62, 2**31, 2**63 - 1]))


@st.composite
def tensors(draw: st.DrawFn, name: str) -> tensor_pb2.TensorProto:
    """Mostly a well-formed column of 3 rows for ``name``, with one thing bent."""
    proto = predict_request([row(), row(age=50.0), row(sex="Female")]).inputs[name]
    bend = draw(st.integers(0, 9))
    if bend == 0:
        proto.dtype = draw(st.sampled_from(DTYPES))  # type: ignore[assignment]
    elif bend == 1:
        proto.tensor_shape.ClearField("dim")
        for size in draw(st.lists(DIMS, max_size=3)):
            proto.tensor_shape.dim.add(size=size)
        proto.tensor_shape.unknown_rank = draw(st.booleans())
    elif bend == 2 and proto.dtype != types_pb2.DT_STRING:
        proto.tensor_content = draw(st.binary(max_size=40))
    elif bend == 3:
        proto.float_val.extend(draw(st.lists(FLOATS, max_size=4)))
    elif bend == 4:
        proto.ClearField("tensor_content")
        proto.ClearField("string_val")
        proto.float_val.extend(draw(st.lists(FLOATS, min_size=3, max_size=3)))
    elif bend == 5:
        proto.string_val.extend(draw(st.lists(st.binary(max_size=6), max_size=4)))
    elif bend == 6:
        proto.ClearField("tensor_content")
        proto.ClearField("string_val")
        proto.dtype = types_pb2.DT_INT64
        proto.int64_val.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4)))
    elif bend == 7:
        proto.ClearField("tensor_content")
        proto.dtype = types_pb2.DT_HALF
        proto.half_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4)))
    return proto


@st.composite
def predict_requests(draw: st.DrawFn) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = draw(st.sampled_from([NAME] * 8 + ["", "other"]))
    if draw(st.integers(0, 5)) == 0:
        request.model_spec.version.value = draw(st.sampled_from([0, 1, -1, 2**63 - 1]))
    if draw(st.integers(0, 5)) == 0:
        request.model_spec.version_label = draw(st.sampled_from(["production", "canary", "x"]))
    if draw(st.integers(0, 5)) == 0:
        request.model_spec.signature_name = draw(st.text(max_size=8))
    names = draw(st.sets(st.sampled_from([*INPUTS, "extra"]), min_size=3)) | {"age"}
    for name in sorted(names):
        source = name if name in INPUTS else "age"
        request.inputs[name].CopyFrom(draw(tensors(source)))
    request.output_filter.extend(draw(st.lists(st.sampled_from(["classes", "nope"]), max_size=2)))
    return request


FEATURES = st.one_of(
    st.builds(lambda v: ("float_list", v), st.lists(FLOATS, max_size=3)),
    st.builds(lambda v: ("int64_list", v), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)),
    st.builds(lambda v: ("bytes_list", v), st.lists(st.binary(max_size=6), max_size=3)),
    st.just(("unset", [])),
)


@st.composite
def classify_requests(draw: st.DrawFn) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = NAME
    with_context = draw(st.booleans())
    holder = request.input.example_list_with_context if with_context else request.input.example_list
    for _ in range(draw(st.integers(0, 3))):
        example = example_pb2.Example()
        for name in draw(st.sets(st.sampled_from([*INPUTS, "label"]))):
            kind, values = draw(FEATURES)
            feature = example.features.feature[name]
            if kind != "unset":
                getattr(feature, kind).value.extend(values)
        holder.examples.append(example)
    if with_context and draw(st.booleans()):
        kind, values = draw(FEATURES)
        if kind != "unset":
            getattr(request.input.example_list_with_context.context.features.feature["sex"],
                    kind).value.extend(values)  # fmt: skip
    return request


@st.composite
def infer_requests(draw: st.DrawFn) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name=NAME)
    request.model_version = draw(st.sampled_from(["", "", "1", "0", "x", "³", "99"]))
    raw = draw(st.booleans())
    for name in draw(st.lists(st.sampled_from([*INPUTS, "extra"]), min_size=1, max_size=5)):
        datatype = draw(st.sampled_from(["FP32", "BYTES", "FP16", "INT8", "BOOL", "UINT64", ""]))
        shape = draw(st.lists(DIMS, max_size=2))
        tensor = request.inputs.add(name=name, datatype=datatype, shape=shape)
        if raw:
            request.raw_input_contents.append(draw(st.binary(max_size=24)))
        else:
            contents = tensor.contents
            contents.fp32_contents.extend(draw(st.lists(FLOATS, max_size=3)))
            contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=5), max_size=3)))
            contents.int_contents.extend(
                draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=2))
            )
    return request


def _check(call: Any, request: Any) -> None:
    try:
        call(request, timeout=30)
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
    else:
        return
    assert code not in NEVER, (code, details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert NAMES_SOMETHING.search(details), details
        assert len(details) <= 1024


FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(request=predict_requests())
def test_predict_never_fails_inside(
    opened: grpc.Channel, request: predict_pb2.PredictRequest
) -> None:
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    _check(prediction_service_pb2_grpc.PredictionServiceStub(opened).Predict, request)


@FUZZ
@given(request=classify_requests())
def test_classify_never_fails_inside(
    opened: grpc.Channel, request: classification_pb2.ClassificationRequest
) -> None:
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(opened)
    _check(stub.Classify, request)
    regress = stub.Regress
    _check(regress, request)


@FUZZ
@given(request=infer_requests())
def test_model_infer_never_fails_inside(
    opened: grpc.Channel, request: oip.ModelInferRequest
) -> None:
    _check(oip_grpc.GRPCInferenceServiceStub(opened).ModelInfer, request)


def test_a_missing_feature_is_decoded_as_json_null(target: str) -> None:
    """A tf.Example without a feature gives the column a JSON null gives (NaN, "")."""
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from tests._support.grpc import classify_request

    rows = [row(age=None, workclass=None), row()]
    with channel(target) as opened:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(opened)
        absent = stub.Classify(classify_request(rows), timeout=30).result
        empty = classify_request([row()] * 2)
        for name in ("age", "workclass"):
            feature = empty.input.example_list.examples[0].features.feature[name]
            feature.ClearField("float_list")
            feature.ClearField("bytes_list")
        assert stub.Classify(empty, timeout=30).result == absent


def test_an_unexpected_error_is_internal_with_only_a_request_id(
    target: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from mooring.serving._grpc import tfserving

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(tfserving, "fill_tensor", broken)
    caplog.set_level(logging.INFO, logger="mooring")
    caplog.set_level(logging.INFO, logger="mooring.serving.access")
    with channel(target) as opened:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(opened)
        with pytest.raises(grpc.RpcError, match="internal error") as caught:
            stub.Predict(
                predict_request([row()]), timeout=30, metadata=(("x-request-id", "boom-1"),)
            )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    # The message names the server's id (as x-request-id does), the client's id beside it.
    trailing = dict(caught.value.trailing_metadata())
    assert trailing["x-client-request-id"] == "boom-1"
    assert caught.value.details() == f"internal error (request id {trailing['x-request-id']})"
    assert "secret detail" in caplog.text  # logged, never sent
    access = [r.getMessage() for r in caplog.records if r.name == "mooring.serving.access"]
    assert any(
        '"path":"/tensorflow.serving.PredictionService/Predict"' in line
        and '"status":500' in line
        and '"method":"grpc"' in line
        for line in access
    ), access
