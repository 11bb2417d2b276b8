"""The shadow report against the logged rows, and ``[rollout] start = "shadow"``.

The prediction log is written with the formats layer's one writer (Adult-like rows, one
to three rows per request), the server's counters on its own ``ServingMetrics``; the
report's numbers are recomputed here from the Parquet files with pandas.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from mooring.config import MooringConfig
from mooring.formats._predictions import append_request_rows, read_prediction_log, write_log_file
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.monitoring._alerts import AlertManager
from mooring.monitoring._monitor import Monitor
from mooring.monitoring._rollout import ACTOR, RolloutController
from mooring.monitoring._scrape import parse_metrics
from mooring.monitoring._shadow import shadow_lines, shadow_report
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving._metrics import ServingMetrics
from tests._support.alerts import Collect
from tests._support.rollout import BLESSED, LINEAGE, NAME, Clock, artifact_dir, project
from tests._support.serving_model import row

THRESHOLD = 0.4  # production's operating threshold, registered with version 1


def make_cfg(home: Path, **rollout: Any) -> MooringConfig:
    section = {"steps": [10, 50, 100], "shadow": {"min_rows": 300}, **rollout}
    return project(home, rollout=section)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry.from_config(make_cfg(tmp_path / "home"))
    for seed in range(3):
        register_judged(
            reg,
            name=NAME,
            artifact_dir=artifact_dir(tmp_path / "src", seed),
            record=VersionRecord(
                lineage=LINEAGE,
                gate=BLESSED,
                run=RunRecord.read({"threshold": THRESHOLD} if seed == 0 else {}),
            ),
        )
    reg.deploy(NAME, production=1)
    reg.set_shadow(NAME, version=2, rate=0.5)
    yield reg
    reg.close()


def write_traffic(home: Path, *, requests: int, flip: float, seed: int = 0) -> None:
    """Requests answered by version 1; every other one copied to shadow 2, whose score is
    production's plus noise, with a share ``flip`` of its rows turned around."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(requests):
        n = int(rng.integers(1, 4))
        columns = {
            "age": np.asarray(rng.uniform(18, 80, n), np.float32),
            "hours-per-week": np.asarray(rng.uniform(10, 60, n), np.float32),
            "workclass": [row()["workclass"]] * n,
            "sex": [str(rng.choice(["Male", "Female"]))] * n,
        }
        p = rng.uniform(0, 1, n)
        s = np.clip(p + rng.normal(0, 0.03, n), 0, 1)
        s = np.where(rng.uniform(0, 1, n) < flip, 1 - s, s)
        at = datetime.now(UTC)
        for version, score, shadow in ((1, p, False), (2, s, True)):
            if shadow and i % 2:
                continue  # not copied
            outputs = {
                "probabilities": np.stack([1 - score, score], axis=1),
                "classes": np.asarray([b">50K" if v >= 0.5 else b"<=50K" for v in score]),
            }
            append_request_rows(
                rows,
                model=NAME,
                version=version,
                request_id=f"r{i}",
                timestamp=at,
                columns=columns,
                outputs=outputs,
                rows=n,
                shadow=shadow,
            )
    # An earlier shadow's row for the same request is not compared with this one's.
    append_request_rows(
        rows,
        model=NAME,
        version=3,
        request_id="r0",
        timestamp=datetime.now(UTC),
        columns={"age": [30.0], "hours-per-week": [40.0], "workclass": [""], "sex": [""]},
        outputs={"probabilities": np.asarray([[0.5, 0.5]]), "classes": np.asarray([b">50K"])},
        rows=1,
        shadow=True,
    )
    write_log_file(str(home / "predictions"), rows)


def shadow_metrics(ok: int, errors: int = 0, timeouts: int = 0) -> ServingMetrics:
    metrics = ServingMetrics()
    counter = metrics.shadow_requests
    for outcome, n in (("ok", ok), ("error", errors), ("timeout", timeouts)):
        if n:
            counter.labels(NAME, "2", outcome).inc(n)
    for _ in range(ok):
        metrics.shadow_latency.labels(NAME, "2").observe(0.004)
    metrics.shadow_dropped.labels(NAME, "busy").inc(3)
    return metrics


def expected_numbers(home: Path) -> dict[str, Any]:
    """Agreement and score differences recomputed from the Parquet files with pandas."""
    frame = pq.read_table(home / "predictions").to_pandas()
    frame["score"] = frame["output.probabilities"].map(lambda p: float(p[1]))
    frame["k"] = frame.groupby(["request_id", "model_version"]).cumcount()
    answers = frame[(~frame["shadow"]) & (frame["model_version"] == 1)]
    shadows = frame[frame["shadow"] & (frame["model_version"] == 2)]
    joined = answers.merge(shadows, on=["request_id", "k"], suffixes=("_p", "_s"))
    diff = (joined["score_p"] - joined["score_s"]).abs().to_numpy()
    agree = (joined["score_p"] >= THRESHOLD) == (joined["score_s"] >= THRESHOLD)
    return {
        "rows": len(joined),
        "agreement": float(agree.mean()),
        "mean": float(diff.mean()),
        "p50": float(np.percentile(diff, 50)),
        "p95": float(np.percentile(diff, 95)),
        "max": float(diff.max()),
    }


def test_the_report_matches_the_logged_rows(registry: Registry, tmp_path: Path) -> None:
    home = tmp_path / "home"
    cfg = make_cfg(home)
    write_traffic(home, requests=400, flip=0.05)
    metrics = shadow_metrics(ok=190, errors=2, timeouts=1)
    snapshot = parse_metrics(metrics.render().decode(), NAME)
    report = shadow_report(cfg, registry, str(home / "predictions"), snapshot)
    want = expected_numbers(home)
    assert (report.production, report.shadow, report.rate) == (1, 2, 0.5)
    assert report.threshold == THRESHOLD
    assert report.rows == want["rows"] and report.rows > 300
    assert report.agreement == pytest.approx(want["agreement"])
    assert report.score_diff is not None
    for key in ("mean", "p50", "p95", "max"):
        assert report.score_diff[key] == pytest.approx(want[key])
    assert report.copies == {"ok": 190.0, "error": 2.0, "timeout": 1.0}
    assert report.error_rate == pytest.approx(3 / 193)
    assert report.latency_ms is not None and 2.0 < report.latency_ms["p50"] <= 5.0
    assert report.dropped == {"busy": 3.0}
    # 1.6% of copies failed, above the default max_error_rate of 1%.
    assert report.status == "unhealthy" and "max_error_rate = 0.01" in report.reasons[0]
    lines = shadow_lines(report.to_dict())
    assert lines[0].startswith("shadow 2 at 50% of requests: unhealthy")
    assert "dropped busy 3" in lines[1]
    # Every other reader of the log sees the answers only.
    answers = read_prediction_log(str(home / "predictions"), NAME)
    assert not any(answers["shadow"].to_pylist())
    assert set(answers["model_version"].to_pylist()) == {1}


class Setup:
    def __init__(self, tmp_path: Path, registry: Registry, **rollout: Any) -> None:
        self.home = tmp_path / "home"
        self.cfg = make_cfg(self.home, **rollout)
        self.registry = registry
        self.metrics = ServingMetrics()
        self.sink = Collect()
        self.clock = Clock()
        alerts = AlertManager([self.sink], cooldown_s=3600, clock=self.clock)
        self.controller = RolloutController(
            self.cfg, registry, metrics=self.metrics.render, alerts=alerts, clock=self.clock
        )

    def copies(self, ok: int, errors: int = 0) -> None:
        self.metrics.shadow_requests.labels(NAME, "2", "ok").inc(ok)
        if errors:
            self.metrics.shadow_requests.labels(NAME, "2", "error").inc(errors)


def test_start_shadow_moves_a_healthy_shadow_to_the_first_canary_step(
    registry: Registry, tmp_path: Path
) -> None:
    setup = Setup(tmp_path, registry, start="shadow")
    write_traffic(setup.home, requests=40, flip=0.0)
    setup.copies(ok=20)
    waiting = setup.controller.tick()
    assert waiting.action == "insufficient_data"
    assert any("compared of 300 needed" in r for r in waiting.reasons)
    assert registry.deployment(NAME).shadow == 2
    write_traffic(setup.home, requests=400, flip=0.0, seed=1)
    setup.copies(ok=200)
    decision = setup.controller.tick()
    assert decision.action == "advance", decision.reasons
    assert (decision.canary, decision.to_weight) == (2, 10)
    assert decision.numbers["shadow"]["status"] == "healthy"
    dep = registry.deployment(NAME)
    assert (dep.production, dep.canary, dep.canary_weight, dep.shadow) == (1, 2, 10, None)
    event = registry.history(NAME)[-1]
    assert event.actor == ACTOR and event.action == "deploy"
    assert event.reason is not None and "shadow income@2 healthy" in event.reason
    assert "agreement" in event.reason


def test_an_unhealthy_shadow_stays_a_shadow_and_alerts(registry: Registry, tmp_path: Path) -> None:
    setup = Setup(tmp_path, registry, start="shadow")
    write_traffic(setup.home, requests=400, flip=0.4)
    setup.copies(ok=200)
    decision = setup.controller.tick()
    assert decision.action == "hold"
    assert "below min_agreement = 0.9" in decision.reasons[0]
    assert registry.deployment(NAME).shadow == 2 and registry.deployment(NAME).canary is None
    [alert] = setup.sink.alerts
    assert (alert.kind, alert.version) == ("shadow_unhealthy", 2)
    assert "agreement" in alert.summary


def test_an_erroring_shadow_is_not_moved(registry: Registry, tmp_path: Path) -> None:
    setup = Setup(tmp_path, registry, start="shadow")
    write_traffic(setup.home, requests=400, flip=0.0)
    setup.copies(ok=150, errors=50)
    decision = setup.controller.tick()
    assert decision.action == "hold" and "25.00% of copies failed" in decision.reasons[0]
    assert registry.deployment(NAME).canary is None


def test_start_canary_only_reports_the_shadow(registry: Registry, tmp_path: Path) -> None:
    setup = Setup(tmp_path, registry)
    write_traffic(setup.home, requests=400, flip=0.0)
    setup.copies(ok=200)
    monitor = Monitor(
        setup.cfg,
        registry,
        metrics=setup.metrics.render,
        drift_interval_s=None,
        alerts=AlertManager([setup.sink], cooldown_s=3600, clock=setup.clock),
        clock=setup.clock,
    )
    report = monitor.tick()
    assert report.rollout is not None and report.rollout.action == "idle"
    assert report.shadow is not None and report.shadow["status"] == "healthy"
    assert report.to_dict()["shadow"]["rows"] == report.shadow["rows"] > 300
    assert registry.deployment(NAME).shadow == 2
