"""The retraining trigger runs a real (harmless) command with placeholders, once per cooldown;
drift, a live-metric drop or, before labels, an estimated drop starts it."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mooring.config import MooringConfig
from mooring.errors import ConfigError
from mooring.monitoring._estimate import estimate_line, fit_reference
from mooring.monitoring._monitor import Monitor
from mooring.monitoring._retrain import DEFAULT_COMMAND, RetrainTrigger, render_command
from mooring.pipeline._status import project_status
from mooring.registry import Registry
from tests._support.estimation import log_scores, register_scored
from tests._support.labelled_log import send_labels
from tests._support.rollout import Clock, project

WRITE = (
    "import json, sys; "
    "open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:])); print('trained on', sys.argv[3])"
)


@dataclass
class Report:
    status: str
    version: int = 3
    drifted: list[str] = field(default_factory=lambda: ["age", "sex"])


def config(home: Path, **retrain: object) -> MooringConfig:
    command = [sys.executable, "-c", WRITE, "{home}/out.json", "{model}", "{data}", "{version}"]
    section = {"enabled": True, "data": "fresh.csv", "command": command, **retrain}
    return project(home, monitoring={"retrain": section})


def test_drift_runs_the_command_with_placeholders_filled(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    trigger = RetrainTrigger(cfg)
    run = trigger.on_drift(Report("drift"))
    assert run is not None
    run.wait(300)
    assert run.exit_code == 0 and not run.timed_out
    args = json.loads((tmp_path / "out.json").read_text())
    assert args == ["income", str(tmp_path / "fresh.csv"), "3"]
    assert "trained on" in run.output_tail
    record = json.loads(Path(str(run.record)).read_text())
    assert record["exit_code"] == 0 and record["trigger"] == "drift"
    assert record["reason"] == "drift in age, sex"
    latest = tmp_path / "monitoring" / "income" / "retrain" / "latest.json"
    assert json.loads(latest.read_text())["finished_at"] is not None


def test_the_reason_of_a_drift_run_names_ten_features_at_most(tmp_path: Path) -> None:
    report = Report("drift", drifted=[f"{'x' * 5000}{i}" for i in range(500)])
    run = RetrainTrigger(config(tmp_path)).on_drift(report)
    assert run is not None
    run.wait(300)
    assert run.reason.endswith("and 490 more") and len(run.reason) < 1000


def test_no_drift_no_run_and_cooldown_blocks_a_second_run(tmp_path: Path) -> None:
    clock = Clock(start=1_000_000.0)
    trigger = RetrainTrigger(config(tmp_path, cooldown="1h"), clock=clock)
    assert trigger.on_drift(Report("ok")) is None
    assert trigger.on_drift(Report("insufficient_data")) is None
    first = trigger.on_drift(Report("drift"))
    assert first is not None
    first.wait(300)
    assert trigger.on_drift(Report("drift")) is None
    assert "cooling down" in str(trigger.blocked())
    # A restarted monitor reads the last start from disk.
    assert RetrainTrigger(config(tmp_path, cooldown="1h"), clock=clock).blocked() is not None
    clock.advance(3601)
    again = trigger.on_drift(Report("drift"))
    assert again is not None
    again.wait(300)


def test_live_metric_drop_triggers(tmp_path: Path) -> None:
    trigger = RetrainTrigger(config(tmp_path, metric_drop=0.02, min_labels=100))
    assert trigger.on_live_metric(version=3, live=0.90, reference=0.91, labels=500) is None
    assert trigger.on_live_metric(version=3, live=0.80, reference=0.91, labels=50) is None
    run = trigger.on_live_metric(version=3, live=0.85, reference=0.91, labels=500)
    assert run is not None and run.trigger == "live_metric" and "0.0600 below" in run.reason
    run.wait(300)


def test_disabled_trigger_never_runs(tmp_path: Path) -> None:
    trigger = RetrainTrigger(config(tmp_path, enabled=False))
    assert trigger.on_drift(Report("drift")) is None
    assert "off" in str(trigger.blocked())


def test_failing_command_is_recorded(tmp_path: Path) -> None:
    cfg = config(tmp_path, command=[sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    run = RetrainTrigger(cfg).fire("drift", "test")
    assert run is not None
    run.wait(300)
    assert run.exit_code == 3 and "boom" in run.output_tail


@pytest.mark.decisions
def test_command_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    cfg = config(
        tmp_path, command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5
    )
    run = RetrainTrigger(cfg).fire("drift", "test")
    assert run is not None
    run.wait(300)
    assert run.timed_out and run.exit_code != 0


def test_default_command_is_the_pipeline_on_fresh_data(tmp_path: Path) -> None:
    cfg = project(tmp_path, monitoring={"retrain": {"enabled": True, "data": "fresh.csv"}})
    trigger = RetrainTrigger(cfg, config_path=tmp_path / "mooring.toml")
    command = trigger.command(version=3, reason="drift")
    assert command == [
        sys.executable,
        "-m",
        "mooring.pipeline",
        "--config",
        str(tmp_path / "mooring.toml"),
        "--train-data",
        str(tmp_path / "fresh.csv"),
    ]
    assert len(DEFAULT_COMMAND) == len(command)


def test_unknown_placeholder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder.*\{data\}"):
        render_command(["train", "{dataset}"], {"data": "x"})
    assert render_command(["{{literal}}", "{data}"], {"data": "x"}) == ["{literal}", "x"]


def test_enabled_without_data_or_command_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to train on"):
        project(tmp_path, monitoring={"retrain": {"enabled": True}})


def test_an_estimated_drop_in_windows_in_a_row_starts_a_run_before_any_label(
    tmp_path: Path,
) -> None:
    # Production's map comes from calibrated held-out scores (AUC about 0.83 there). The
    # traffic then moves to people its scores cannot tell apart (all near 0.5): each new
    # window's estimated AUC, its whole band, is far below the evaluation value. Two such
    # windows in a row start a run; a tick without new rows is not another window.
    command = [sys.executable, "-c", WRITE, "{home}/out.json", "{model}", "{data}", "{version}"]
    section = {"enabled": True, "data": "fresh.csv", "command": command, "estimated_windows": 2}
    cfg = project(tmp_path, monitoring={"retrain": section, "window_rows": 600})
    rng = np.random.default_rng(0)
    held = rng.random(4000)
    reference = fit_reference(held, rng.random(4000) < held, threshold=0.5)
    registry = Registry.from_config(cfg)
    register_scored(registry, tmp_path / "src", 0, reference.to_dict(), metrics={"auc": 0.83})
    registry.deploy("income", production=1)
    clock = Clock()
    monitor = Monitor(
        cfg,
        registry,
        metrics=lambda: "",
        drift_interval_s=0.0,
        drift_check=lambda: None,
        clock=clock,
    )
    log = cfg.home / "predictions"
    log_scores(log, 0.45 + 0.1 * rng.random(600), prefix="a")
    first = monitor.tick()
    assert first.estimated is not None and first.estimated["worse_windows"] == 1, first.estimated
    assert first.estimated["estimate"]["high"] < 0.83 - 0.02 and first.retrain is None
    # The scores bunched up, but the rate they imply did not move: the estimate stands.
    assert first.estimated["unreliable"] is None
    # `mooring status` shows the monitor's last estimate, as `mooring monitor` printed it.
    shown = project_status(cfg).last_estimate
    assert shown is not None and estimate_line(shown) == estimate_line(first.estimated)
    assert estimate_line(shown).startswith("v1 estimated auc 0.")
    assert (
        "· evaluation 0.8300, over 600 rows before labels; worse than it 1 window(s) in a row"
        in (estimate_line(shown))
    )
    clock.advance(60)
    again = monitor.tick()  # no new rows: the same window
    assert again.estimated is not None and again.estimated["worse_windows"] == 1
    log_scores(log, 0.45 + 0.1 * rng.random(600), prefix="b")
    clock.advance(60)
    fired = monitor.tick()
    assert fired.retrain is not None, fired.estimated
    fired.retrain.wait(300)
    record = json.loads(Path(str(fired.retrain.record)).read_text())
    assert record["trigger"] == "estimated" and record["exit_code"] == 0
    assert "before labels" in record["reason"] and "2 windows in a row" in record["reason"]
    # A window like the evaluation data is not below: the count starts again.
    log_scores(log, rng.random(600), prefix="c")
    clock.advance(60)
    healthy = monitor.tick()
    assert healthy.estimated is not None and healthy.estimated["worse_windows"] == 0
    registry.close()


def test_a_live_metric_drop_in_the_labels_starts_a_run_from_the_monitor(tmp_path: Path) -> None:
    # Labels for 400 of production's logged answers, half of them wrong: its live AUC
    # is far below the 0.83 of its evaluation.
    command = [sys.executable, "-c", WRITE, "{home}/out.json", "{model}", "{data}", "{version}"]
    cfg = project(
        tmp_path,
        monitoring={"retrain": {"enabled": True, "data": "f.csv", "command": command}},
    )
    registry = Registry.from_config(cfg)
    rng = np.random.default_rng(1)
    held = rng.random(2000)
    reference = fit_reference(held, rng.random(2000) < held, threshold=0.5)
    register_scored(registry, tmp_path / "src", 0, reference.to_dict(), metrics={"auc": 0.83})
    registry.deploy("income", production=1)
    scores = rng.random(400)
    log_scores(cfg.home / "predictions", scores)
    send_labels(cfg, [f"r{i}" for i in range(0, 400, 2)], ">50K")
    send_labels(cfg, [f"r{i}" for i in range(1, 400, 2)], "<=50K")
    monitor = Monitor(cfg, registry, metrics=lambda: "", drift_interval_s=None)
    report = monitor.tick()
    assert report.retrain is not None, report.errors
    report.retrain.wait(300)
    record = json.loads(Path(str(report.retrain.record)).read_text())
    assert record["trigger"] == "live_metric" and "over 400 labels" in record["reason"]
    registry.close()
