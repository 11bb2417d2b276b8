"""``Project.run()`` end to end on Adult: deploy, cache, downstream re-runs, resume, replay, gates.

One module-scoped lifecycle runs the pipeline several times on one project (two
trainings in all) and the tests check what each run did.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from mooring._project import Project
from mooring.config import load_config
from mooring.contract._schema import Schema
from mooring.errors import ConflictError, NotFoundError
from mooring.pipeline import RunResult
from mooring.pipeline._context import RunObserver
from mooring.pipeline._cost import serving_cost_from_metrics
from mooring.pipeline._record import StepRecord
from mooring.pipeline._run import _exclusive, find_runs
from mooring.pipeline._status import project_status
from mooring.registry import Registry
from mooring.serving import create_app
from tests._support.project import break_ages, edit, request_rows, write_project
from tests._support.server import ServerThread

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline-lifecycle")]


class FailAfter(RunObserver):
    """Raises once a step has completed: the run stops there, as if killed."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.seen: list[str] = []

    def step_finished(self, record: StepRecord) -> None:
        self.seen.append(f"{record.name}:{record.status}")
        if record.name == self.step and record.status == "done":
            raise RuntimeError(f"injected failure after {self.step}")


@dataclass
class Lifecycle:
    toml: Path
    home: Path
    runs: dict[str, RunResult] = field(default_factory=dict)
    failed_record: dict[str, object] = field(default_factory=dict)
    observed: list[str] = field(default_factory=list)
    logged_rows: int = 0
    metrics: str = ""
    answered: Counter[str] = field(default_factory=Counter)


def _serve_traffic(toml: Path, rows: list[dict[str, object]]) -> tuple[str, Counter[str]]:
    """Five rows per request; the server's /metrics text and the rows each version answered."""
    cfg = load_config(toml)
    answered: Counter[str] = Counter()
    with ServerThread(create_app(cfg)) as server:
        server.wait_ready()
        for start in range(0, len(rows), 5):
            response = server.client.post(
                "/v1/models/income:predict",
                json={"instances": rows[start : start + 5]},
                headers={"X-Request-Key": str(start)},
            )
            assert response.status_code == 200, response.text
            answered[response.headers["x-model-version"]] += len(rows[start : start + 5])
        metrics = server.client.get("/metrics").text
    return metrics, answered


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory, small_adult: dict[str, Path]) -> Lifecycle:
    root = tmp_path_factory.mktemp("lifecycle")
    toml = write_project(root, small_adult)
    life = Lifecycle(toml=toml, home=root / "state")
    life.runs["first"] = Project.load(toml).run()
    life.runs["cached"] = Project.load(toml).run()
    # Only [evaluation] changes: evaluate (and what follows) re-runs, training does not.
    edit(toml, r"^bootstrap = .*$", "bootstrap = { samples = 0 }\ncalibration_bins = 12")
    life.runs["evaluation_changed"] = Project.load(toml).run()
    # A new model: fails right after training, then the next run continues that run.
    edit(toml, r"^seed = 42$", "seed = 7")
    observer = FailAfter("train")
    with pytest.raises(RuntimeError, match="injected failure after train"):
        Project.load(toml).run(observer=observer)
    life.observed = observer.seen
    life.failed_record = find_runs(life.home)[0].to_dict()
    life.runs["resumed"] = Project.load(toml).run()  # no prediction log yet: canary at 10%
    life.metrics, life.answered = _serve_traffic(toml, request_rows(small_adult["test"], 300))
    life.logged_rows = 300
    # A replay gate no pair of different models can pass: rejected, nothing deployed.
    edit(toml, r"^cpu_hour_price = 0.05$", "cpu_hour_price = 0.05\nreplay_max_mean_abs_diff = 0")
    life.runs["replay_rejected"] = Project.load(toml).run()
    edit(toml, r"^replay_max_mean_abs_diff = 0\n", "replay_max_flip_rate = 0.9\n")
    life.runs["replayed"] = Project.load(toml).run()
    edit(toml, r"^lower = 0.7$", "lower = 0.9999")
    life.runs["gate_failed"] = Project.load(toml).run()
    return life


def _statuses(result: RunResult) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


def test_first_run_deploys_production_and_records_everything(lifecycle: Lifecycle) -> None:
    result = lifecycle.runs["first"]
    assert result.ok and result.version == 1 and result.deployed_as == "production"
    assert _statuses(result) == {
        "validate": "done",
        "train": "done",
        "evaluate": "done",
        "gate": "done",
        "register": "done",
        "replay": "skipped",
        "deploy": "done",
    }
    assert "first model" in result.step("replay").message
    record = orjson.loads(result.record_path.read_bytes())
    assert result.record_path == lifecycle.home / "runs" / result.run_id / "run.json"
    assert record["status"] == "succeeded" and record["model"] == "income"
    assert record["code"]["code_version"].startswith(record["code"]["mooring"] + "+src.")
    train = next(s for s in record["steps"] if s["name"] == "train")
    assert train["duration_s"] > 0 and train["cpu_seconds"] > 0
    assert train["inputs"]["train_fingerprint"] == Project.load(lifecycle.toml).data_fingerprint()
    assert Path(train["outputs"]["model_dir"]).is_relative_to(lifecycle.home / "runs")
    assert record["cpu_seconds"] >= sum(s["cpu_seconds"] for s in record["steps"]) * 0.9
    cost = record["cost"]
    assert cost["cpu_hour_price"] == 0.05
    assert cost["run_cost"] == pytest.approx(record["cpu_seconds"] / 3600 * 0.05, rel=1e-3)
    assert cost["training_cost"] == pytest.approx(train["cpu_seconds"] / 3600 * 0.05, rel=1e-3)
    with Registry.from_config(load_config(lifecycle.toml)) as registry:
        mv = registry.get("income", version=1)
    assert mv.lineage.run_id == result.run_id
    assert mv.lineage.model_key == train["key"]
    project = Project.load(lifecycle.toml)
    assert mv.lineage.eval_data == str(project.config.path(project.config.data.eval or ""))
    assert mv.run_record["pipeline_run"] == result.run_id
    assert Path(mv.run_record["evaluation_report"], "report.html").is_file()
    # The operating threshold is registration metadata; the artifact keeps its 0.5.
    evaluated = next(s for s in record["steps"] if s["name"] == "evaluate")["outputs"]
    assert mv.operating_threshold == evaluated["threshold"]
    assert mv.run_record["threshold_source"] == evaluated["threshold_source"]
    trained_meta = json.loads((Path(train["outputs"]["model_dir"]) / "mooring.json").read_text())
    assert trained_meta["threshold"] == 0.5
    # The contract travels with the version, so the server checks requests against it.
    stored = Schema.from_dict(mv.run_record["schema"])
    assert stored.columns["age"].is_numeric
    assert stored.label == "class"
    assert mv.blessed and mv.metrics["auc"] > 0.7
    # What the version will be judged against is frozen with it.
    refs = mv.run_record["references"]
    evaluation = refs["evaluation"]
    assert evaluation["data_fingerprint"] == Project.load(lifecycle.toml).data_fingerprint("eval")
    assert evaluation["metrics"]["auc"] == mv.metrics["auc"] and evaluation["baseline"] is None
    # Its mean attributions on the evaluation rows: what a drifted window is explained against.
    attributions = evaluation["attributions"]
    assert attributions["method"] == "integrated_gradients" and attributions["rows"] == 200
    assert set(attributions["mean_attribution"]) == set(attributions["mean_abs_attribution"])
    assert set(refs["outputs"]["columns"]) == {"output.score", "output.class"}
    calibration = refs["calibration"]
    # Untimed data: random windows and contiguous blocks in file order, the larger wins.
    assert calibration["method"] == "blocks" and calibration["rows"] == 3000
    assert "age" in calibration["features"] and "class" not in calibration["features"]
    # The score map its performance is estimated from before labels arrive, at its threshold.
    estimation = refs["estimation"]
    assert estimation["method"] == "cbpe" and estimation["threshold"] == mv.operating_threshold
    assert estimation["rows"] == evaluated["rows"] and estimation["refused"] is None, estimation
    # With what each window's checks compare it with: the held-out scores' quantiles and
    # the range of the numeric inputs that carry the score; the band's out-of-fold error.
    support = estimation["support"]
    assert len(support["score_quantiles"]) == 1001 and support["rows"] == evaluated["rows"]
    assert "age" in {i["column"] for i in support["inputs"]}, support["inputs"]
    assert set(estimation["spread"]) == {"auc", "accuracy", "precision", "recall"}


def test_unchanged_rerun_is_fully_cached(lifecycle: Lifecycle) -> None:
    first, cached = lifecycle.runs["first"], lifecycle.runs["cached"]
    assert cached.ok and cached.run_id != first.run_id
    assert _statuses(cached) == {
        "validate": "cached",
        "train": "cached",
        "evaluate": "cached",
        "gate": "cached",
        "register": "cached",
        "replay": "skipped",
        "deploy": "cached",
    }
    assert cached.version == 1
    assert cached.step("train").outputs["model_dir"] == first.step("train").outputs["model_dir"]
    assert f"run {first.run_id}" in cached.step("train").message
    assert not (lifecycle.home / "runs" / cached.run_id / "train").exists()  # nothing trained
    assert cached.record["cost"]["training_run"] == f"run {first.run_id}"


def test_changed_evaluation_reruns_only_downstream_steps(lifecycle: Lifecycle) -> None:
    result = lifecycle.runs["evaluation_changed"]
    statuses = _statuses(result)
    assert statuses["validate"] == "cached" and statuses["train"] == "cached"
    assert statuses["evaluate"] == "done" and statuses["gate"] == "done"
    evaluate = result.step("evaluate")
    assert evaluate.changed_inputs == ["evaluation.calibration_bins"]
    assert "(re-run: evaluation.calibration_bins changed)" in evaluate.message
    # The same model bytes are already version 1: registered once, deployed once.
    assert statuses["register"] == "cached" and result.version == 1
    assert statuses["deploy"] == "cached"


def test_failed_run_is_continued_from_the_last_completed_step(lifecycle: Lifecycle) -> None:
    assert lifecycle.observed == ["validate:cached", "train:done"]
    failed = lifecycle.failed_record
    assert failed["status"] == "failed"
    assert failed["error"] == {  # type: ignore[comparison-overlap]
        "step": "train",
        "type": "RuntimeError",
        "message": "injected failure after train",
        "user_error": False,
    }
    train = next(s for s in failed["steps"] if s["name"] == "train")  # type: ignore[attr-defined]
    assert train["status"] == "done" and train["changed_inputs"] == ["model.seed"]
    resumed = lifecycle.runs["resumed"]
    assert resumed.resumed and resumed.run_id == failed["run_id"]
    assert resumed.record["resumed_after"] == "train"
    statuses = _statuses(resumed)
    assert statuses["validate"] == "cached" and statuses["train"] == "cached"
    assert statuses["evaluate"] == "done" and statuses["register"] == "done"
    assert [a["status"] for a in resumed.record["attempts"]] == ["failed", "succeeded"]
    assert resumed.version == 2
    # Evaluated against production version 1 (change gates, flip rate).
    assert resumed.step("evaluate").outputs["baseline_version"] == 1


def test_second_model_is_a_canary_at_the_first_rollout_step(lifecycle: Lifecycle) -> None:
    resumed = lifecycle.runs["resumed"]
    assert resumed.deployed_as == "canary" and resumed.canary_weight == 10
    replay = resumed.step("replay")
    assert replay.status == "done" and replay.outputs["status"] == "no_log"
    assert "no prediction log yet" in replay.message
    with Registry.from_config(load_config(lifecycle.toml)) as registry:
        dep = registry.deployment("income")
        events = registry.history("income")
        canary = registry.get("income", version=2)
    assert (dep.production, dep.canary, dep.canary_weight) == (1, 2, 10)
    # Production was evaluated on the canary's data in the same run; that is frozen too.
    compared = canary.run_record["references"]["evaluation"]["baseline"]
    assert compared["version"] == 1 and 0.5 < compared["metrics"]["auc"] < 1.0
    assert any(
        e.reason and f"mooring run {resumed.run_id}: canary at 10%" in e.reason for e in events
    )


def test_replay_gate_rejects_and_deploys_nothing(lifecycle: Lifecycle) -> None:
    result = lifecycle.runs["replay_rejected"]
    assert result.status == "rejected" and not result.ok
    assert result.step("replay").status == "rejected"
    assert result.step("deploy").status == "pending"
    assert result.reason is not None and "replay test failed" in result.reason
    outputs = result.step("replay").outputs
    assert outputs["status"] == "compared" and outputs["passed"] is False
    assert outputs["gates"][0]["name"] == "mean_abs_diff"
    assert outputs["rows"] == lifecycle.logged_rows


def test_replay_compares_both_models_on_logged_traffic(lifecycle: Lifecycle) -> None:
    result = lifecycle.runs["replayed"]
    assert result.ok and result.step("replay").status == "done"
    out = result.step("replay").outputs
    assert out["status"] == "compared" and out["passed"] is True
    assert out["rows"] == lifecycle.logged_rows and out["requests"] == lifecycle.logged_rows // 5
    assert 0.0 < out["mean_abs_diff"] <= out["p99_abs_diff"] <= out["max_abs_diff"] <= 1.0
    assert out["flips"] == round(out["flip_rate"] * out["rows"])
    assert set(out["latency_ms"]) == {"production", "candidate"}
    assert out["latency_ms"]["candidate"]["p95"] > 0 and out["latency_ratio_p95"] > 0
    # Production in process reproduces what the server answered for its own rows.
    assert out["logged_max_abs_diff"] is not None and out["logged_max_abs_diff"] < 1e-4
    assert [g["name"] for g in out["gates"]] == ["flip_rate"]
    # No label has arrived for the replayed requests; the candidate's flips against
    # production on its evaluation data are recorded with the gate, with their labels' verdict.
    (flips,) = out["gates"]
    assert flips["basis"] == "none" and flips["unexplained"] == out["flip_rate"]
    trained = flips["trained"]
    assert trained["rows"] == result.step("evaluate").outputs["rows"]
    assert trained["fixes"] + trained["harms"] <= round(trained["flip_rate"] * trained["rows"])
    assert trained["verdict"] in ("fixes", "harms", "undecided")
    per_1000 = result.record["cost"]["per_1000_predictions"]
    assert per_1000["source"] == "replay"
    candidate = per_1000["versions"]["candidate"]
    assert candidate["cost_per_1000"] == pytest.approx(
        candidate["cpu_seconds_per_1000"] / 3600 * 0.05
    )
    assert result.step("deploy").status == "cached"
    assert "already the canary at 10%" in result.step("deploy").message


def test_failed_gate_deploys_nothing(lifecycle: Lifecycle) -> None:
    result = lifecycle.runs["gate_failed"]
    assert result.status == "rejected"
    assert result.step("gate").status == "rejected"
    assert result.reason is not None and "not blessed" in result.reason
    assert "0.9999" in result.reason
    assert result.step("evaluate").changed_inputs == ["evaluation.gates"]
    assert {s.name for s in result.steps if s.status == "pending"} == {
        "register",
        "replay",
        "deploy",
    }
    with Registry.from_config(load_config(lifecycle.toml)) as registry:
        dep = registry.deployment("income")
        assert len(registry.versions("income")) == 2
    assert (dep.production, dep.canary, dep.canary_weight) == (1, 2, 10)


def test_status_reports_deployment_and_last_run(lifecycle: Lifecycle) -> None:
    status = project_status(load_config(lifecycle.toml))
    assert (status.production, status.canary, status.canary_weight) == (1, 2, 10)
    assert status.versions == 2 and status.production_metrics["auc"] > 0.7
    # Both were evaluated on the same file: named, and nothing to warn about.
    assert status.production_eval_data == status.canary_eval_data
    assert (status.production_eval_data or "").startswith("adult.test.csv ")
    assert status.metrics_note is None
    assert status.last_run is not None
    assert status.last_run["run_id"] == lifecycle.runs["gate_failed"].run_id
    assert status.last_run["status"] == "rejected"
    assert status.last_drift is None
    drift = lifecycle.home / "monitoring" / "income" / "drift"
    drift.mkdir(parents=True)
    (drift / "latest.json").write_bytes(
        orjson.dumps(
            {
                "created_at": "2030-01-01T00:00:00+00:00",
                "status": "drift",
                "version": 1,
                "drifted": ["age"],
                "window": {"rows": 300},
                "features": [
                    {"name": "age", "kind": "numeric", "status": "drift", "rows": 300},
                    {"name": "sex", "kind": "categorical", "status": "ok", "rows": 300},
                ],
            }
        )
    )
    try:
        status = project_status(load_config(lifecycle.toml))
    finally:
        shutil.rmtree(lifecycle.home / "monitoring")
    assert status.last_drift is not None
    assert status.last_drift["status"] == "drift" and status.last_drift["drifted"] == ["age"]


def test_broken_data_is_rejected_before_training(
    tmp_path: Path, small_adult: dict[str, Path]
) -> None:
    broken = break_ages(small_adult["test"], tmp_path / "broken.csv")
    toml = write_project(tmp_path / "project", {**small_adult, "test": broken})
    result = Project.load(toml).run()
    assert result.status == "rejected" and result.step("validate").status == "rejected"
    assert result.reason is not None and "data contract failed" in result.reason
    assert "age" in result.reason
    assert all(s.status == "pending" for s in result.steps[1:])
    assert not (tmp_path / "project" / "state" / "registry.db").exists()


def test_missing_train_data_override_is_an_error(
    tmp_path: Path, small_adult: dict[str, Path]
) -> None:
    toml = write_project(tmp_path, small_adult)
    with pytest.raises(NotFoundError, match=r"--train-data file .*nope\.csv' does not exist"):
        Project.load(toml).run(train_data=tmp_path / "nope.csv")


def test_one_run_at_a_time_per_home(tmp_path: Path, small_adult: dict[str, Path]) -> None:
    toml = write_project(tmp_path, small_adult)
    project = Project.load(toml)
    with (
        _exclusive(project.home),
        pytest.raises(ConflictError, match="another `mooring run` is in progress"),
    ):
        project.run()


def test_the_readme_python_example_runs(
    lifecycle: Lifecycle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy

    copy = tmp_path / "project"
    shutil.copytree(lifecycle.toml.parent, copy)
    edit(copy / "mooring.toml", r"^lower = 0.9999$", "lower = 0.7")
    example = Path(__file__).resolve().parents[2] / "examples" / "adult" / "pipeline_api.py"
    main = runpy.run_path(str(example))["main"]
    assert main(copy / "mooring.toml") == 0
    out = capsys.readouterr().out
    assert "train     cached" in out and "version 2 is canary" in out
    assert "serving: production 1, canary 2" in out


def test_cost_per_1000_predictions_from_the_servers_metrics(lifecycle: Lifecycle) -> None:
    costs = serving_cost_from_metrics(lifecycle.metrics, "income", price=0.05, cpus=2.0)
    assert {v: c["rows"] for v, c in costs.items()} == dict(lifecycle.answered)
    for figures in costs.values():
        assert figures["cpu_seconds_per_1000"] > 0
        assert figures["cost_per_1000"] == pytest.approx(
            figures["cpu_seconds_per_1000"] / 3600 * 0.05
        )
    assert serving_cost_from_metrics(lifecycle.metrics, "other", price=None, cpus=1.0) == {}


def test_run_record_takes_serving_cost_from_metrics_url(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    body = lifecycle.metrics.encode()

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    copy = tmp_path / "project"
    shutil.copytree(lifecycle.toml.parent, copy)
    with ThreadingHTTPServer(("127.0.0.1", 0), Metrics) as http:
        threading.Thread(target=http.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{http.server_address[1]}/metrics"
        edit(
            copy / "mooring.toml",
            r"^cpu_hour_price = 0.05$",
            f'cpu_hour_price = 0.05\nmetrics_url = "{url}"',
        )
        result = Project.load(copy / "mooring.toml").run()
        http.shutdown()
    per_1000 = result.record["cost"]["per_1000_predictions"]
    assert per_1000["source"] == "metrics" and per_1000["url"] == url
    assert per_1000["versions"] == serving_cost_from_metrics(
        lifecycle.metrics, "income", price=0.05, cpus=1.0
    )
    edit(copy / "mooring.toml", r"^metrics_url = .*$", 'metrics_url = "http://127.0.0.1:9/metrics"')
    unreachable = Project.load(copy / "mooring.toml").run()
    assert "error" in unreachable.record["cost"]["per_1000_predictions"]


def test_replay_skips_when_the_log_lacks_a_models_input(lifecycle: Lifecycle) -> None:
    from mooring.config._pipeline import PipelineConfig
    from mooring.formats._model import load_saved_model as load_model
    from mooring.pipeline._replay import read_prediction_tail, replay

    cfg = load_config(lifecycle.toml)
    table = read_prediction_tail(str(lifecycle.home / "predictions"), "income", rows=50)
    assert table is not None and table.num_rows == 50
    with Registry.from_config(cfg) as registry:
        v1 = load_model(registry.load("income", version=1), warn=False)
        v2 = load_model(registry.load("income", version=2), warn=False)
    report = replay(v2, v1, table.drop_columns(["age"]), PipelineConfig())
    assert report.status == "skipped" and "the candidate needs inputs" in report.message
    assert "age" in report.message and report.passed
    full = replay(v2, v1, table, PipelineConfig(replay_latency_requests=0))
    assert full.status == "compared" and full.latency_ms == {} and full.rows == 50
