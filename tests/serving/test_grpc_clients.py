"""gRPC against a real ``mooring serve --grpc-port``, driven by the real clients:
``tensorflow-serving-api``'s stubs and ``tritonclient.grpc``.

The server follows a registry: version 1 in production, version 2 as a 50% canary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
)
from tritonclient.utils import InferenceServerException

from mooring.serving._grpc.protos import open_inference_grpc_pb2 as oip
from mooring.serving._grpc.protos import open_inference_grpc_pb2_grpc as oip_grpc
from mooring.serving._loaded import load_served_model
from tests._support.grpc import (
    channel,
    classify_request,
    example,
    predict_request,
    prediction_stub,
    regress_request,
)
from tests._support.serve_process import ServeProcess
from tests._support.server import NAME, new_registry
from tests._support.serving_model import row

pytestmark = pytest.mark.slow

ROWS = [
    row(),
    row(age=61.0, hours=12.5, workclass="Self-emp", sex="Female"),
    row(age=None, hours=60.0, workclass=None, sex="Female"),
    row(age=25.0, hours=38.0, workclass="Federal-gov", sex="Male"),
]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("grpc-served")
    home = folder / ".mooring"
    home.mkdir()
    reg = new_registry(home, model_dirs)
    reg.deploy(NAME, production=1, canary=2, weight=50)
    reg.close()
    with ServeProcess(folder, None, grpc=True, poll_interval_s=0.5) as proc:
        yield proc


@pytest.fixture
def stub(served: ServeProcess) -> Iterator[Any]:
    with channel(served.grpc_target) as opened:
        yield prediction_stub(opened)


def _error(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError, match=r".") as caught:
        call(*args, timeout=30, **kwargs)
    return caught.value


def _outputs(response: Any) -> dict[str, np.ndarray]:
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def test_predict_by_version_and_label(stub: Any, model_dirs: dict[str, Path]) -> None:
    for version, key in ((1, "a"), (2, "b")):
        response = stub.Predict(predict_request(ROWS, version=version), timeout=30)
        assert response.model_spec.version.value == version
        assert response.model_spec.signature_name == "serving_default"
        expected = load_served_model(NAME, version, model_dirs[key]).predict(
            {
                "age": np.array([np.nan if r["age"] is None else r["age"] for r in ROWS], "f4"),
                "hours-per-week": np.array([r["hours-per-week"] for r in ROWS], "f4"),
                "workclass": np.array([r["workclass"] or "" for r in ROWS], object),
                "sex": np.array([r["sex"] for r in ROWS], object),
            }
        )
        got = _outputs(response)
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=1e-6)
        assert got["classes"].astype(str).tolist() == expected["classes"].tolist()
    for label, version in (("production", 1), ("canary", 2)):
        response = stub.Predict(predict_request(ROWS, label=label), timeout=30)
        assert response.model_spec.version.value == version
    # The canary split follows x-request-key: one key, one version, every time.
    seen = {
        stub.Predict(
            predict_request(ROWS[:1]), timeout=30, metadata=(("x-request-key", "user-7"),)
        ).model_spec.version.value
        for _ in range(6)
    }
    assert len(seen) == 1


def test_output_filter_and_request_id(stub: Any) -> None:
    request = predict_request(ROWS, version=1)
    request.output_filter.append("classes")
    answered = []
    for _ in range(2):  # one client id, twice: two requests, each with the server's own id
        response, call = stub.Predict.with_call(
            request, timeout=30, metadata=(("x-request-id", "grpc-req-1"),)
        )
        assert list(response.outputs) == ["classes"]
        trailing = dict(call.trailing_metadata())
        assert trailing["x-client-request-id"] == "grpc-req-1"
        assert trailing["x-model-version"] == "1"
        answered.append(trailing["x-request-id"])
    assert len(set(answered)) == 2 and all(len(i) == 32 and int(i, 16) >= 0 for i in answered)
    # Without an id of its own (or with one that is not a plain token), none is echoed.
    for metadata in ((), (("x-request-id", "not a token"),)):
        _, call = stub.Predict.with_call(request, timeout=30, metadata=metadata)
        trailing = dict(call.trailing_metadata())
        assert "x-client-request-id" not in trailing and len(trailing["x-request-id"]) == 32


def test_rest_and_grpc_give_identical_outputs(served: ServeProcess, stub: Any) -> None:
    for one in ROWS:  # one row per request: each is its own batch on both roads
        rest = httpx.post(
            f"{served.url}/v1/models/{NAME}/versions/1:predict", json={"instances": [one]}
        ).json()["predictions"][0]
        got = _outputs(stub.Predict(predict_request([one], version=1), timeout=30))
        assert np.array_equal(np.array(rest["probabilities"], np.float32), got["probabilities"][0])
        assert rest["classes"] == got["classes"][0].decode()
        assert rest["class_ids"] == int(got["class_ids"][0])


def test_classify_and_regress_read_examples_with_the_contract(stub: Any) -> None:
    predicted = _outputs(stub.Predict(predict_request(ROWS, label="production"), timeout=30))
    request = classify_request(ROWS)
    request.model_spec.version_label = "production"
    classified = stub.Classify(request, timeout=30)
    assert classified.model_spec.version.value == 1
    entries = classified.result.classifications
    for scores, entry in zip(predicted["probabilities"], entries, strict=True):
        assert [c.label for c in entry.classes] == ["<=50K", ">50K"]
        assert np.array_equal(np.array([c.score for c in entry.classes], np.float32), scores)
    request = regress_request(ROWS)
    request.model_spec.version_label = "production"
    regressed = stub.Regress(request, timeout=30)
    values = np.array([r.value for r in regressed.result.regressions], np.float32)
    assert np.array_equal(values, predicted["probabilities"][:, 1])
    # A feature given in the context reaches every example that lacks it.
    with_context = classify_request([])
    with_context.model_spec.version_label = "production"
    listed = with_context.input.example_list_with_context
    listed.examples.extend(example({k: v for k, v in r.items() if k != "sex"}) for r in ROWS[:2])
    listed.context.features.feature["sex"].bytes_list.value.append(b"Female")
    entries = stub.Classify(with_context, timeout=30).result.classifications
    same = classify_request([{**r, "sex": "Female"} for r in ROWS[:2]])
    same.model_spec.version_label = "production"
    assert list(entries) == list(stub.Classify(same, timeout=30).result.classifications)


def test_multi_inference_runs_classify_and_regress_on_one_prediction(stub: Any) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for method in ("tensorflow/serving/classify", "tensorflow/serving/regress"):
        task = request.tasks.add(method_name=method)
        task.model_spec.name = NAME
        task.model_spec.version.value = 2
    request.input.example_list.examples.extend(example(r) for r in ROWS)
    results = stub.MultiInference(request, timeout=30).results
    assert [r.model_spec.version.value for r in results] == [2, 2]
    positive = [e.classes[1].score for e in results[0].classification_result.classifications]
    assert positive == [r.value for r in results[1].regression_result.regressions]
    request.tasks[1].method_name = "tensorflow/serving/predict"
    error = _error(stub.MultiInference, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tasks[1].method_name" in error.details()


def test_metadata_and_status(served: ServeProcess, stub: Any) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = NAME
    response = stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert set(signature.inputs) == {"age", "hours-per-week", "workclass", "sex"}
    assert signature.inputs["sex"].dtype == tf.string.as_datatype_enum
    assert set(signature.outputs) == {"probabilities", "class_ids", "classes"}
    request.metadata_field[0] = "model_config"
    error = _error(stub.GetModelMetadata, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "model_config" in error.details()
    with channel(served.grpc_target) as opened:
        status = model_service_pb2_grpc.ModelServiceStub(opened)
        found = status.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": NAME}), timeout=30
        )
        states = {s.version: s.state for s in found.model_version_status}
        available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert states == {1: available, 2: available}
        missing = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": NAME})
        missing.model_spec.version.value = 9
        error = _error(status.GetModelStatus, missing)
        assert error.code() == grpc.StatusCode.NOT_FOUND and "version 9" in error.details()


def test_errors_map_to_tf_serving_codes(stub: Any) -> None:
    error = _error(stub.Predict, predict_request(ROWS, name="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in error.details()
    error = _error(stub.Predict, predict_request(ROWS, version=3))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "version 3" in error.details()
    error = _error(stub.Predict, predict_request(ROWS, label="staging"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "'staging'" in error.details()
    short = predict_request(ROWS)
    short.inputs["sex"].CopyFrom(predict_request(ROWS[:2]).inputs["sex"])
    error = _error(stub.Predict, short)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "inputs.sex" in error.details()
    wrong = predict_request(ROWS)
    wrong.model_spec.signature_name = "classify_x"
    error = _error(stub.Predict, wrong)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'classify_x'" in error.details()
    bad = classify_request(ROWS)
    bad.input.example_list.examples[2].features.feature["age"].bytes_list.value.append(b"old")
    error = _error(stub.Classify, bad)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "examples.age[2]" in error.details()
    request = predict_request(ROWS, version=1)
    request.inputs["age"].tensor_content = b"\x00" * 3
    error = _error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "inputs.age" in error.details()
    assert len(error.details()) <= 1024


def test_tritonclient_infers_over_grpc(served: ServeProcess, model_dirs: dict[str, Path]) -> None:
    client = triton.InferenceServerClient(served.grpc_target)
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(NAME) and client.is_model_ready(NAME, "2")
        meta = client.get_model_metadata(NAME, as_json=True)
        assert meta["name"] == NAME and meta["versions"] == ["1", "2"]
        columns = {
            "age": np.array([39.0, 61.0, np.nan], np.float32),
            "hours-per-week": np.array([40.0, 12.5, 60.0], np.float32),
            "workclass": np.array(["Private", "Self-emp", ""], dtype=object),
            "sex": np.array(["Male", "Female", "Female"], dtype=object),
        }
        inputs = []
        for name, values in columns.items():
            tensor = triton.InferInput(name, [3], "BYTES" if values.dtype == object else "FP32")
            tensor.set_data_from_numpy(values)
            inputs.append(tensor)
        result = client.infer(NAME, inputs, model_version="1", request_id="t-1")
        expected = load_served_model(NAME, 1, model_dirs["a"]).predict(columns)
        assert np.array_equal(result.as_numpy("probabilities"), expected["probabilities"])
        assert result.as_numpy("classes").astype(str).tolist() == expected["classes"].tolist()
        response = result.get_response()
        assert response.model_version == "1" and response.id == "t-1"
        # Triton's own extensions share the service name: UNIMPLEMENTED, naming the method.
        for call in (
            client.get_model_repository_index,
            lambda: client.get_inference_statistics(NAME),
            lambda: client.get_model_config(NAME),
            client.get_system_shared_memory_status,
            client.get_trace_settings,
            client.get_log_settings,
        ):
            with pytest.raises(InferenceServerException, match="Triton extension") as caught:
                call()
            assert caught.value.status() == "StatusCode.UNIMPLEMENTED"
        with pytest.raises(InferenceServerException, match="not served") as missing:
            client.infer("nope", inputs)
        assert missing.value.status() == "StatusCode.NOT_FOUND"
    finally:
        client.close()


def test_stream_infer_is_unimplemented(served: ServeProcess) -> None:
    with channel(served.grpc_target) as opened:
        stream = opened.stream_stream("/inference.GRPCInferenceService/ModelStreamInfer")
        with pytest.raises(grpc.RpcError, match="ModelStreamInfer") as caught:
            list(stream(iter([b""]), timeout=30))
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_typed_contents_match_raw_contents(served: ServeProcess) -> None:
    """ModelInfer with InferTensorContents answers as with raw_input_contents."""
    with channel(served.grpc_target) as opened:
        infer = oip_grpc.GRPCInferenceServiceStub(opened).ModelInfer
        typed = oip.ModelInferRequest(model_name=NAME, model_version="1")
        raw = oip.ModelInferRequest(model_name=NAME, model_version="1")
        for name, values in (("age", [39.0, 61.0]), ("hours-per-week", [40.0, 12.5])):
            typed.inputs.add(name=name, datatype="FP32", shape=[2]).contents.fp32_contents.extend(
                values
            )
            raw.inputs.add(name=name, datatype="FP32", shape=[2])
            raw.raw_input_contents.append(np.array(values, "<f4").tobytes())
        for name, texts in (("workclass", ["Private", "Self-emp"]), ("sex", ["Male", "Female"])):
            encoded = [t.encode() for t in texts]
            typed.inputs.add(name=name, datatype="BYTES", shape=[2]).contents.bytes_contents.extend(
                encoded
            )
            raw.inputs.add(name=name, datatype="BYTES", shape=[2])
            raw.raw_input_contents.append(
                b"".join(len(e).to_bytes(4, "little") + e for e in encoded)
            )
        a, b = infer(typed, timeout=30), infer(raw, timeout=30)
        assert [o.name for o in a.outputs] == [o.name for o in b.outputs]
        assert list(a.raw_output_contents) == list(b.raw_output_contents)
        typed.inputs[0].shape[0] = 3
        with pytest.raises(grpc.RpcError, match=r"inputs\.age") as caught:
            infer(typed, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_metrics_count_grpc_calls(served: ServeProcess, stub: Any) -> None:
    stub.Predict(predict_request(ROWS[:1], version=1), timeout=30)
    _error(stub.Predict, predict_request(ROWS, name="nope"))
    text = httpx.get(f"{served.url}/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("mooring_requests_total")]
    assert any('protocol="grpc"' in line and 'status="200"' in line for line in lines), lines
