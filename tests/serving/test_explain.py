"""Explanations served beside predictions: TF Serving REST's ``:explain``, the Open
Inference Protocol's ``/explain`` over HTTP and ``ModelInfer`` over gRPC (tritonclient)
answer the same attributions for a model mooring trained, each row's summing to the
served prediction minus the baseline; they run outside the inference permits and past
``max_explaining`` are refused 503, while predictions go on."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

import mooring.serving._explain as serving_explain
from mooring.config import ServingConfig
from mooring.formats._metrics import EXPLANATIONS, REQUESTS, read_samples, total
from mooring.serving import DirectorySource, build_app
from tests._support.distributed import adult_rows
from tests._support.grpc import GrpcServerThread
from tests._support.monitored import FEATURES, MonitoredProject, shared_project
from tests._support.server import NAME, ServerThread
from tests._support.waiting import wait_until

ROWS: list[dict[str, Any]] = [
    {"age": 52.0, "hours-per-week": 60.0, "workclass": "Self-emp-inc", "sex": "Male"},
    {"age": 23.0, "hours-per-week": 20.0, "workclass": "Private", "sex": "Female"},
    {"age": None, "hours-per-week": 40.0, "workclass": "", "sex": "Female"},
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> MonitoredProject:
    return shared_project(tmp_path_factory)


@pytest.fixture(scope="module")
def server(project: MonitoredProject) -> Iterator[GrpcServerThread]:
    serving = ServingConfig(warmup_requests=1, deadline_ms=60_000)
    running = GrpcServerThread([DirectorySource(project.model_dir, NAME)], serving)
    with running:
        running.wait_ready()
        yield running


def _counted(server: ServerThread, model: str) -> tuple[float, float]:
    """(requests, explanations) the server's /metrics has counted for ``model``."""
    counts = {total(REQUESTS): 0.0, total(EXPLANATIONS): 0.0}
    for sample in read_samples(server.client.get("/metrics").text):
        if sample.name in counts and sample.labels.get("model") == model:
            counts[sample.name] += sample.value
    return counts[total(REQUESTS)], counts[total(EXPLANATIONS)]


def _explained(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def test_rest_v2_and_grpc_explain_alike_and_sum_to_the_served_prediction(
    server: GrpcServerThread,
) -> None:
    client = server.client
    requests_before, explanations_before = _counted(server, NAME)
    predicted = client.post(f"/v1/models/{NAME}:predict", json={"instances": ROWS}).json()
    positive = np.array([p["probabilities"][1] for p in predicted["predictions"]])

    rest = _explained(client.post(f"/v1/models/{NAME}:explain", json={"instances": ROWS}))
    assert rest["model_version"] == "1" and rest["method"] == "integrated_gradients"
    rows = rest["explanations"]
    attributions = np.array([[r["attributions"][c] for c in FEATURES] for r in rows])
    baseline = np.array([r["baseline"] for r in rows])
    explained = np.array([r["explained"] for r in rows])
    assert all(list(r["attributions"]) == FEATURES for r in rows)
    np.testing.assert_allclose(explained, positive, atol=1e-5)
    np.testing.assert_allclose(attributions.sum(axis=1), explained - baseline, atol=1e-3)
    assert np.abs(attributions).max() > 1e-3  # the rows differ from the baseline

    columns = {c: [r[c] for r in ROWS] for c in FEATURES}
    numeric = ("age", "hours-per-week")
    inputs = [
        {"name": c, "datatype": "FP32", "shape": [3], "data": columns[c]} for c in numeric
    ] + [
        {"name": c, "datatype": "BYTES", "shape": [3], "data": columns[c]}
        for c in FEATURES
        if c not in numeric
    ]
    v2 = _explained(
        client.post(f"/v2/models/{NAME}/versions/1/explain", json={"inputs": inputs, "id": "e-1"})
    )
    assert v2["id"] == "e-1" and v2["parameters"]["columns"] == FEATURES
    by_name = {o["name"]: o for o in v2["outputs"]}
    assert by_name["attributions"]["shape"] == [3, len(FEATURES)]
    np.testing.assert_allclose(
        np.array(by_name["attributions"]["data"]).reshape(3, -1), attributions, atol=1e-6
    )

    grpc_client = triton.InferenceServerClient(server.target)
    try:
        tensors = []
        for c, v in columns.items():
            text = c not in numeric
            values = (
                np.array(v, dtype=object)
                if text
                else np.array([np.nan if x is None else x for x in v], dtype=np.float32)
            )
            tensor = triton.InferInput(c, [3], "BYTES" if text else "FP32")
            tensor.set_data_from_numpy(values)
            tensors.append(tensor)
        asked = [triton.InferRequestedOutput(n) for n in ("attributions", "explained")]
        result = grpc_client.infer(NAME, tensors, outputs=asked)
        np.testing.assert_allclose(result.as_numpy("attributions"), attributions, atol=1e-6)
        np.testing.assert_allclose(result.as_numpy("explained"), explained, atol=1e-6)
        params = result.get_response().parameters
        assert orjson.loads(params["columns"].string_param) == FEATURES
    finally:
        grpc_client.close()

    # Counted as explanations, never as the version's requests (what guardrails read).
    requests, explanations = _counted(server, NAME)
    assert (requests - requests_before, explanations - explanations_before) == (1, 3)


def test_explain_errors_are_4xx_naming_the_cause(
    server: GrpcServerThread, model_dirs: dict[str, Path]
) -> None:
    client = server.client
    wrong = client.get(f"/v1/models/{NAME}:explain")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    bad = client.post(f"/v1/models/{NAME}:explain", json={"instances": [{**ROWS[0], "age": "old"}]})
    assert bad.status_code == 400 and "age" in bad.json()["error"]
    grpc_client = triton.InferenceServerClient(server.target)
    try:
        tensor = triton.InferInput("age", [1], "FP32")
        tensor.set_data_from_numpy(np.array([30.0], np.float32))
        asked = [
            triton.InferRequestedOutput("attributions"),
            triton.InferRequestedOutput("classes"),
        ]
        with pytest.raises(InferenceServerException, match="not an output of an explanation"):
            grpc_client.infer(NAME, [tensor], outputs=asked)
    finally:
        grpc_client.close()


def test_explain_refusals_say_what_is_missing_and_name_no_path_of_the_server(
    project: MonitoredProject, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """A model exported without an explanation (by hand, as older exports were), a
    SavedModel without mooring.json (``serve --model-dir`` of a foreign model) and a copy
    missing its ``explain/`` folder: each refusal is a 422 naming the version and the fix,
    and no answer holds a path of the server's machine."""
    plain = shutil.copytree(project.model_dir, tmp_path / "plain")
    shutil.rmtree(plain / "explain")
    (plain / "mooring.json").unlink()
    partial = shutil.copytree(project.model_dir, tmp_path / "partial")
    shutil.rmtree(partial / "explain")
    sources = [
        DirectorySource(model_dirs["a"], "old"),
        DirectorySource(plain, "plain"),
        DirectorySource(partial, "partial"),
    ]
    wanted = {
        "old": "model 'old' version 1 has no explanation: its mooring.json has no 'explain' "
        "entry (it was exported without one); train it again with this mooring",
        "plain": "model 'plain' version 1 has no explanation: it is a SavedModel without "
        "mooring's mooring.json (served as it is, e.g. with --model-dir)",
        "partial": "model 'partial' version 1 records an explanation in 'explain/' but its "
        "folder has no SavedModel there",
    }
    roots = {str(tmp_path), str(model_dirs["a"].parent), str(project.model_dir.parent)}
    with ServerThread(build_app(sources, ServingConfig(warmup_requests=1))) as served:
        served.wait_ready()
        for name, message in wanted.items():
            answer = served.client.post(f"/v1/models/{name}:explain", json={"instances": [ROWS[0]]})
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"].startswith(message), answer.text
            assert not any(root in answer.text for root in roots), answer.text
            assert "/tmp" not in answer.text and "pytest" not in answer.text
    # A version that does not load (its variables gone): its status says why, no path.
    broken = shutil.copytree(project.model_dir, tmp_path / "broken")
    for data in (broken / "variables").glob("variables.data*"):
        data.unlink()
    with ServerThread(build_app([DirectorySource(broken, "broken")], ServingConfig())) as down:

        def failed() -> str | None:
            status = down.client.get("/v1/models/broken").json()["model_version_status"][0]
            return status["status"]["error_message"] if status["state"] == "END" else None

        wait_until(failed, "the broken version's load to fail")
        said = str(failed())
        assert said.startswith("model 'broken' version 1 is not a loadable SavedModel (")
        assert not any(root in said for root in roots) and "/tmp" not in said, said


def _app(model_dir: Path, serving: ServingConfig) -> Any:
    return build_app([DirectorySource(model_dir, NAME)], serving)


def test_explanations_past_their_limit_get_503_and_never_hold_a_prediction_permit(
    project: MonitoredProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = serving_explain._run

    def held(model: Any, columns: dict[str, Any]) -> Any:
        release.wait(60)
        return real(model, columns)

    monkeypatch.setattr(serving_explain, "_run", held)
    serving = ServingConfig(
        warmup_requests=1, max_explaining=1, max_in_flight=1, max_explain_rows=2
    )
    with ServerThread(_app(project.model_dir, serving)) as server:
        server.wait_ready()
        explaining = server.app.state.mooring.door.fast.predictor.explaining
        first: dict[str, httpx.Response] = {}
        url = f"{server.url}/v1/models/{NAME}:explain"
        thread = threading.Thread(
            target=lambda: first.setdefault(
                "answer", httpx.post(url, json={"instances": ROWS[:1]}, timeout=60)
            )
        )
        thread.start()
        try:
            wait_until(lambda: explaining.running == 1, "the first explanation to start")
            refused = server.client.post(url, json={"instances": ROWS[:1]})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert "max_explaining" in refused.json()["error"]
            # The one inference permit is free: predictions are answered meanwhile.
            for _ in range(3):
                answer = server.client.post(
                    f"/v1/models/{NAME}:predict", json={"instances": ROWS[:1]}
                )
                assert answer.status_code == 200
            assert server.app.state.mooring.admission.in_flight == 0
        finally:
            release.set()
            thread.join(60)
        assert first["answer"].status_code == 200
        # Each row costs tens of model calls: one request holds at most max_explain_rows.
        large = server.client.post(url, json={"instances": ROWS})
        assert large.status_code == 413 and "max_explain_rows" in large.json()["error"]


def test_a_gbt_and_an_imported_keras_model_explain_on_the_same_server(
    adult_training: Callable[..., Any], tmp_path: Path
) -> None:
    from mooring.training._import import import_model
    from tests._support.byom import expected_scores, tabular_saved_model

    trees = adult_training(1, "gbt").model_dir
    imported = import_model(tabular_saved_model(tmp_path / "src"), tmp_path / "out", task="binary")
    sources = [DirectorySource(trees, "trees"), DirectorySource(imported.folder, "keras")]
    rows = adult_rows(3)
    rows[2].update({"age": None, "occupation": ""})  # missing, as a client sends it
    with ServerThread(build_app(sources, ServingConfig(warmup_requests=1))) as server:
        server.wait_ready()
        tree = _explained(server.client.post("/v1/models/trees:explain", json={"instances": rows}))
        assert (tree["method"], tree["unit"]) == ("tree_shap", "logit")
        served = server.client.post("/v1/models/trees:predict", json={"instances": rows}).json()
        p = np.array([r["probabilities"][1] for r in served["predictions"]], np.float64)
        explained = np.array([r["explained"] for r in tree["explanations"]])
        np.testing.assert_allclose(explained, np.log(p / (1 - p)), atol=1e-3)
        _complete(tree["explanations"], atol=1e-3)

        numbers = [{"age": 39.0, "hours-per-week": 40.0}, {"age": 71.0, "hours-per-week": 5.0}]
        keras = _explained(
            server.client.post("/v1/models/keras:explain", json={"instances": numbers})
        )
        assert keras["method"] == "integrated_gradients"
        explained = np.array([r["explained"] for r in keras["explanations"]])
        np.testing.assert_allclose(explained, expected_scores(numbers), atol=1e-6)
        _complete(keras["explanations"], atol=1e-4)


def _complete(rows: list[dict[str, Any]], *, atol: float) -> None:
    """Each row's attributions sum to its explained value minus its baseline."""
    for row in rows:
        total_attribution = sum(row["attributions"].values())
        assert total_attribution == pytest.approx(row["explained"] - row["baseline"], abs=atol)


def test_explanations_run_on_one_thread_at_a_lower_cpu_priority_than_predictions() -> None:
    """The explanations' thread runs ``explain_nice`` below the process (Linux's per-thread
    priority): the scheduler serves the predictions' threads first; ``0`` leaves it level."""
    import os

    def priority() -> tuple[int, int]:
        return threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    lowered = serving_explain.Explaining(limit=1, retry_after=1, nice=7)
    level = serving_explain.Explaining(limit=1, retry_after=1, nice=0)
    try:
        tid, niced = lowered.pool().submit(priority).result()
        assert tid != threading.get_native_id()
        assert niced == min(19, here + 7)
        assert lowered.pool().submit(priority).result() == (tid, niced)  # one thread
        assert level.pool().submit(priority).result()[1] == here
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here
    finally:
        lowered.close()
        level.close()
    assert ServingConfig().explain_nice == 10
