"""Models mooring did not train, served over every protocol, with every input checked.

Five SavedModels built by hand (a CNN, an image plus a tabular vector, text with its
vocabulary in the graph, sequences of any length, a ``tf.Module`` with a signature of its
own name and several outputs) are imported into a registry, promoted and served from it
by one real server on 127.0.0.1. Each protocol's answer (TF Serving REST in
row and columnar form, the Open Inference Protocol over REST with tritonclient, TF
Serving gRPC Predict with its own stubs, OIP gRPC with tritonclient) equals the model's
own outputs; every wrong shape, rank, dtype and batch is a 400 naming the input.
"""

from __future__ import annotations

import base64
import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import predict_pb2

from mooring.errors import NotFoundError
from mooring.formats._predictions import read_prediction_log
from mooring.pipeline._import import import_version
from mooring.registry import Registry
from mooring.serving import RegistrySource
from tests._support.grpc import GrpcServerThread, channel, prediction_stub
from tests._support.imported_models import BUILDERS, examples, own_outputs
from tests._support.server import FAST
from tests._support.waiting import wait_until

# One worker runs the module: its servers of every imported kind are built once, not once
# per worker that draws one of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("imported-models")]

KINDS = tuple(BUILDERS)
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("imported")
    return {kind: build(root / kind) for kind, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def served(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GrpcServerThread]:
    """Each model imported into a registry (the module by its own signature's name),
    promoted with a reason, and served from there."""
    root = tmp_path_factory.mktemp("served")
    registry = Registry.open(f"sqlite:///{root / 'registry.db'}", artifacts=root / "artifacts")
    for kind, folder in folders.items():
        mv = import_version(
            registry,
            kind,
            folder,
            signature="scores" if kind == "module" else "serving_default",
            reason="built by hand",
        )
        registry.promote(kind, version=mv.version, force=True, reason="unevaluated, in a test")
    cfg = FAST.model_copy(update={"log_flush_s": 0.1, "log_flush_rows": 16, "log_sample_rate": 1.0})
    sources = [RegistrySource(registry, kind) for kind in folders]
    server = GrpcServerThread(
        sources, cfg, prediction_log_url=str(root / "predictions"), registry=registry
    )
    server.logs = root / "predictions"  # type: ignore[attr-defined]
    with server:
        server.wait_ready()
        yield server
    registry.close()


def _json(value: np.ndarray[Any, Any]) -> Any:
    if value.dtype == object:
        return np.vectorize(lambda b: b.decode(), otypes=[object])(value).tolist()
    return value.tolist()


def _close(got: Any, expected: np.ndarray[Any, Any]) -> None:
    got_array = np.asarray(got)
    assert got_array.shape == expected.shape
    np.testing.assert_allclose(got_array.astype(np.float64), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("kind", KINDS)
def test_rest_answers_as_the_model_does_in_both_forms(
    served: GrpcServerThread, folders: dict[str, Path], kind: str
) -> None:
    inputs = examples(kind, rows=3)
    expected = own_outputs(folders[kind], inputs)
    columnar = served.client.post(
        f"/v1/models/{kind}:predict", json={"inputs": {k: _json(v) for k, v in inputs.items()}}
    )
    assert columnar.status_code == 200, columnar.text
    outputs = columnar.json()["outputs"]
    if len(expected) == 1:
        outputs = {next(iter(expected)): outputs}
    for name, value in expected.items():
        _close(outputs[name], value)
    rows = [{k: _json(v[i]) for k, v in inputs.items()} for i in range(3)]
    by_row = served.client.post(f"/v1/models/{kind}:predict", json={"instances": rows})
    assert by_row.status_code == 200, by_row.text
    predictions = by_row.json()["predictions"]
    for i in range(3):
        for name, value in expected.items():
            got = predictions[i] if len(expected) == 1 else predictions[i][name]
            _close(got, value[i])


def test_one_input_takes_bare_rows_and_b64_text(
    served: GrpcServerThread, folders: dict[str, Path]
) -> None:
    image = examples("cnn", rows=2)["image"]
    answer = served.client.post("/v1/models/cnn:predict", json={"instances": image.tolist()})
    assert answer.status_code == 200, answer.text
    _close(answer.json()["predictions"], own_outputs(folders["cnn"], {"image": image})["output_0"])
    text = examples("text", rows=2)["text"]
    b64 = [[{"b64": base64.b64encode(t[0]).decode()}] for t in text]
    answer = served.client.post("/v1/models/text:predict", json={"inputs": {"text": b64}})
    assert answer.status_code == 200, answer.text
    _close(answer.json()["outputs"], own_outputs(folders["text"], {"text": text})["output_0"])


def _oip_type(value: np.ndarray[Any, Any]) -> str:
    return {"float32": "FP32", "int64": "INT64", "object": "BYTES"}[value.dtype.name]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("binary", [False, True])
def test_open_inference_protocol_over_rest(
    served: GrpcServerThread, folders: dict[str, Path], kind: str, binary: bool
) -> None:
    inputs = examples(kind, rows=2, seed=5)
    expected = own_outputs(folders[kind], inputs)
    client = triton_http.InferenceServerClient(served.url.removeprefix("http://"))
    try:
        tensors = []
        for name, value in inputs.items():
            tensor = triton_http.InferInput(name, list(value.shape), _oip_type(value))
            tensor.set_data_from_numpy(value, binary_data=binary)
            tensors.append(tensor)
        result = client.infer(kind, tensors)
        for name, value in expected.items():
            _close(result.as_numpy(name), value)
        meta = client.get_model_metadata(kind)
        shapes = {t["name"]: t["shape"] for t in meta["inputs"]}
        assert shapes == {
            name: [-1, *(-1 if d is None else d for d in spec.shape[1:])]
            for name, spec in _signature_inputs(folders[kind]).items()
        }
    finally:
        client.close()


def _signature_inputs(folder: Path) -> dict[str, tf.TensorSpec]:
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    return {spec.name: spec for spec in signature.structured_input_signature[1].values()}


@pytest.mark.parametrize("kind", KINDS)
def test_tf_serving_grpc_predict(
    served: GrpcServerThread, folders: dict[str, Path], kind: str
) -> None:
    inputs = examples(kind, rows=3, seed=7)
    expected = own_outputs(folders[kind], inputs)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = kind
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    with channel(served.target) as opened:
        response = prediction_stub(opened).Predict(request, timeout=30)
    for name, value in expected.items():
        _close(tf.make_ndarray(response.outputs[name]), value)


@pytest.mark.parametrize("kind", KINDS)
def test_open_inference_protocol_over_grpc(
    served: GrpcServerThread, folders: dict[str, Path], kind: str
) -> None:
    inputs = examples(kind, rows=2, seed=9)
    expected = own_outputs(folders[kind], inputs)
    client = triton_grpc.InferenceServerClient(served.target)
    try:
        tensors = []
        for name, value in inputs.items():
            tensor = triton_grpc.InferInput(name, list(value.shape), _oip_type(value))
            tensor.set_data_from_numpy(value)
            tensors.append(tensor)
        result = client.infer(kind, tensors)
        for name, value in expected.items():
            _close(result.as_numpy(name), value)
    finally:
        client.close()


def _refused(served: GrpcServerThread, kind: str, body: dict[str, Any]) -> str:
    answer = served.client.post(f"/v1/models/{kind}:predict", json=body)
    assert answer.status_code == 400, answer.text
    message: str = answer.json()["error"]
    return message


def test_a_column_where_the_model_takes_a_list_of_one_is_refused_not_broadcast(
    served: GrpcServerThread,
) -> None:
    # text takes [N, 1]: [N] would broadcast in many a model; here it is a 400.
    message = _refused(served, "text", {"inputs": {"text": ["good", "bad"]}})
    assert "inputs.text" in message and "[N, 1]" in message and "[2]" in message
    assert "add the last dimension of size 1" in message
    # module's ids take [N]: [N, 1] is refused the other way round.
    features = [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]
    message = _refused(served, "module", {"inputs": {"features": features, "ids": [[1], [2]]}})
    assert "inputs.ids" in message and "[N]" in message and "[2, 1]" in message
    assert "drop the last dimension of size 1" in message


def test_dtype_and_batch_mistakes_name_the_input(served: GrpcServerThread) -> None:
    features = [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]
    cases = {
        "ids": ({"features": features, "ids": [1.5, 2.0]}, "not an integer"),
        "features": ({"features": [["a", "b", "c"]] * 2, "ids": [1, 2]}, "text where"),
        "batch": ({"features": features, "ids": [1, 2, 3]}, "has a batch of 3"),
        "missing": ({"features": features}, "missing input 'ids'"),
        "extra": ({"features": features, "ids": [1, 2], "other": [1, 2]}, "unexpected input"),
        "ragged": ({"features": [[0.0, 1.0, 2.0], [1.0]], "ids": [1, 2]}, "regular array"),
        "overflow": ({"features": features, "ids": [1, 2**70]}, "ids"),
    }
    for case, (body, expected) in cases.items():
        assert expected in _refused(served, "module", {"inputs": body}), case


@st.composite
def wrong_image_shapes(draw: st.DrawFn) -> list[int]:
    """Any small shape but [n, 8, 8, 1]; half of them one step from it (a dimension
    dropped, added or resized), as real mistakes are."""
    if draw(st.booleans()):
        shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=5))
        return shape
    shape = [draw(st.integers(1, 3)), 8, 8, 1]
    change = draw(st.sampled_from(["drop", "add", "resize"]))
    axis = draw(st.integers(1, 3))
    if change == "drop":
        del shape[axis]
    elif change == "add":
        shape.insert(axis + 1, 1)
    else:
        shape[axis] += draw(st.sampled_from([-1, 1, 2]))
    return shape


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=wrong_image_shapes())
def test_every_wrong_shape_is_a_400_naming_the_input(
    served: GrpcServerThread, shape: list[int]
) -> None:
    values = np.zeros(shape, np.float32)
    message = _refused(served, "cnn", {"inputs": {"image": values.tolist()}})
    assert "inputs.image" in message and "[N, 8, 8, 1]" in message
    assert str(list(shape)) in message
    oip = served.client.post(
        "/v2/models/cnn/infer",
        json={"inputs": [{"name": "image", "shape": shape, "datatype": "FP32",
                          "data": values.ravel().tolist()}]},
    )  # fmt: skip
    assert oip.status_code == 400 and "inputs.image" in oip.json()["error"]


def test_oip_shapes_that_do_not_hold_the_data_are_refused(served: GrpcServerThread) -> None:
    def infer(tensor: dict[str, Any], tail: bytes = b"") -> httpx.Response:
        return served.client.post("/v2/models/cnn/infer", json={"inputs": [tensor]})

    base = {"name": "image", "datatype": "FP32"}
    claims = infer({**base, "shape": [2**40, 8, 8, 1], "data": [0.0] * 64})
    assert claims.status_code == 400 and "do not hold shape" in claims.json()["error"]
    wrong_type = infer({**base, "datatype": "BYTES", "shape": [1, 8, 8, 1], "data": ["a"] * 64})
    assert wrong_type.status_code == 400 and "datatype 'BYTES'" in wrong_type.json()["error"]
    empty = infer({**base, "shape": [0, 8, 8, 1], "data": []})
    assert empty.status_code == 400 and "empty batch" in empty.json()["error"]


def test_sequences_of_different_lengths_are_never_merged(
    served: GrpcServerThread, folders: dict[str, Path]
) -> None:
    rng = np.random.default_rng(11)
    batches = [rng.normal(size=(2, length, 3)).astype(np.float32) for length in (2, 3, 5) * 8]

    def ask(steps: np.ndarray[Any, Any]) -> Any:
        with httpx.Client(base_url=served.url, timeout=60) as client:
            answer = client.post("/v1/models/sequence:predict", json={"instances": steps.tolist()})
        assert answer.status_code == 200, answer.text
        return answer.json()["predictions"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, batches))
    for steps, got in zip(batches, answers, strict=True):
        _close(got, own_outputs(folders["sequence"], {"steps": steps})["output_0"])


def test_the_log_keeps_a_summary_of_tensor_inputs_and_outputs_in_full(
    served: GrpcServerThread, folders: dict[str, Path]
) -> None:
    image = np.zeros((2, 8, 8, 1), np.float32)
    image[1, :4] = 2.0
    answer = served.client.post(
        "/v1/models/cnn:predict", json={"inputs": {"image": image.tolist()}}
    )
    request_id = answer.headers["x-request-id"]
    logs = str(served.logs)  # type: ignore[attr-defined]

    def logged() -> Any:
        try:
            table = read_prediction_log(logs, "cnn")
        except NotFoundError:  # no file written yet
            return None
        rows = [r for r in table.to_pylist() if r["request_id"] == request_id]
        return rows if len(rows) == 2 else None

    rows = wait_until(logged, "the cnn request's rows in the prediction log")
    assert [r["image.shape"] for r in rows] == ["8x8x1", "8x8x1"]
    assert [r["image.mean"] for r in rows] == [0.0, 1.0]
    assert [r["image.zeros"] for r in rows] == [1.0, 0.5]
    assert [r["image.max"] for r in rows] == [0.0, 2.0]
    assert "image" not in rows[0]  # not the raw pixels
    expected = own_outputs(folders["cnn"], {"image": image})["output_0"]
    _close([r["output.output_0"] for r in rows], expected)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=wrong_image_shapes(), dtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_every_wrong_shape_over_grpc_is_invalid_argument_naming_the_input(
    served: GrpcServerThread, shape: list[int], dtype: type
) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "cnn"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(np.zeros(shape, dtype)))
    with channel(served.target) as opened, pytest.raises(grpc.RpcError, match=r".") as caught:
        prediction_stub(opened).Predict(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inputs.image" in caught.value.details()
    assert "[N, 8, 8, 1]" in caught.value.details()


def test_grpc_tensor_content_must_hold_the_shape(served: GrpcServerThread) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "cnn"
    proto = tf.make_tensor_proto(np.zeros((1, 8, 8, 1), np.float32))
    proto.tensor_shape.dim[0].size = 2**40  # claims far more than it holds
    request.inputs["image"].CopyFrom(proto)
    with channel(served.target) as opened, pytest.raises(grpc.RpcError, match=r".") as caught:
        prediction_stub(opened).Predict(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "do not hold shape" in caught.value.details()
