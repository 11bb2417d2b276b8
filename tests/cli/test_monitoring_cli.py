"""``mooring drift``, ``mooring feedback`` and ``mooring live`` through the real CLI entry point."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mooring.cli import main
from mooring.cli._monitoring import parse_since
from mooring.errors import UsageError
from tests._support.monitored import MonitoredProject, log_rows, shared_project, shifted
from tests._support.ports import free_port
from tests._support.waiting import PATIENCE, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitoring-project")]


@pytest.fixture
def project(tmp_path_factory: pytest.TempPathFactory) -> MonitoredProject:
    return shared_project(tmp_path_factory)


def test_drift_exit_codes_and_files(
    project: MonitoredProject, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project.config_path)
    log_rows(project, project.eval_table.slice(0, 1200))
    assert main(["drift", "--config", config, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "ok" and data["window"]["rows"] == 1200
    assert Path(data["files"]["html"]).is_file()
    # Drifted traffic: exit 1, and the table names the feature and why.
    log_rows(project, shifted(project.eval_table.slice(0, 1200), age=15), prefix="s")
    assert main(["drift", "--config", config, "--last", "1200"]) == 1
    out = capsys.readouterr().out
    assert "drift" in out and "age" in out and "psi" in out
    # A short window is insufficient data, not drift.
    assert main(["drift", "--config", config, "--last", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "insufficient_data"
    assert main(["drift", "--config", config, "--since", "1h", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["window"]["rows"] == 2400


def test_drift_errors_exit_2(project: MonitoredProject, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(project.config_path)
    assert main(["drift", "--config", config]) == 2
    assert "holds no Parquet file" in capsys.readouterr().err
    log_rows(project, project.eval_table.slice(0, 10))
    assert main(["drift", "--config", config, "--since", "yesterday"]) == 2
    assert "neither a duration" in capsys.readouterr().err
    assert main(["drift", "--config", config, "--version", "9"]) == 2


def test_feedback_then_live(
    project: MonitoredProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project.config_path)
    table = project.eval_table.slice(0, 300)
    ids = log_rows(project, table)
    labels = tmp_path / "labels.csv"
    rows = "\n".join(f"{i},{c}" for i, c in zip(ids, table["class"].to_pylist(), strict=True))
    labels.write_text("request_id,label\n" + rows + "\n", encoding="utf-8")
    assert main(["feedback", str(labels), "--config", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 300
    assert main(["live", "--config", config, "--json"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert live["labels"]["matched"] == 300
    [version] = live["versions"]
    assert version["version"] == 1 and version["status"] == "ok"
    assert 0.0 <= version["metrics"]["auc"] <= 1.0
    assert main(["live", "--config", config]) == 0
    assert "auc" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nx,1\n", encoding="utf-8")
    assert main(["feedback", str(bad), "--config", config]) == 2
    assert "no 'request_id' column" in capsys.readouterr().err
    # A label the endpoint refuses is refused here too, and nothing of the file is stored.
    stored = sorted(project.config_path.parent.rglob("feedback/**/*.parquet"))
    assert stored, "the 300 labels above were stored"
    yes = tmp_path / "yes.csv"
    yes.write_text(f"request_id,label\n{ids[0]},1\n{ids[1]},yes\n", encoding="utf-8")
    assert main(["feedback", str(yes), "--config", config]) == 2
    said = capsys.readouterr().err
    assert "row 2: the label is 'yes', not a class of production" in said, said
    assert "'<=50K', '>50K', or its class id, 0 to 1" in said, said
    assert sorted(project.config_path.parent.rglob("feedback/**/*.parquet")) == stored


def test_parse_since() -> None:
    assert parse_since(None) is None
    before = datetime.now(UTC)
    hour = parse_since("1h")
    after = datetime.now(UTC)
    assert hour is not None
    assert before - timedelta(hours=1) <= hour <= after - timedelta(hours=1)
    assert parse_since("2024-05-01T12:00:00") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    with pytest.raises(UsageError, match="neither a duration"):
        parse_since("soon")


def test_drift_metrics_port_exports_gauges(project: MonitoredProject) -> None:
    import signal
    import subprocess
    import sys

    import httpx

    log_rows(project, shifted(project.eval_table.slice(0, 1200), age=15))
    port = free_port()
    args = ["drift", "--config", str(project.config_path), "--metrics-port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mooring", *args, "--interval", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def gauges() -> str | None:
            assert proc.poll() is None, proc.communicate()
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=PATIENCE).text
            return text if "mooring_drift_status{" in text else None

        text = wait_until(gauges, "the drift gauges on --metrics-port", interval=0.2,
                          ignoring=(httpx.TransportError,))  # fmt: skip
        assert 'mooring_drift_status{model="income",version="1"} 1.0' in text
        assert 'mooring_drift_feature_drifted{feature="age",model="income",version="1"} 1.0' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0
    assert f"drift gauges on http://127.0.0.1:{port}/metrics" in out


def test_drift_summarised_file_by_file_matches_one_process(
    project: MonitoredProject, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project.config_path)
    log_rows(project, shifted(project.eval_table.slice(0, 1200), age=15), prefix="p")
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert main(["drift", "--config", config, "--since", since, "--json"]) == 1
    one = json.loads(capsys.readouterr().out)
    pooled = ["drift", "--config", config, "--since", since, "--workers", "2", "--json"]
    assert main(pooled) == 1
    many = json.loads(capsys.readouterr().out)
    assert many["window"]["rows"] == one["window"]["rows"] >= 1200
    assert [(f["name"], f["status"]) for f in many["features"]] == [
        (f["name"], f["status"]) for f in one["features"]
    ]
    assert [(s["value"], s["status"]) for s in many["segments"]] == [
        (s["value"], s["status"]) for s in one["segments"]
    ]
    # The same rows named as files (--data) give the same window.
    folder = str(project.cfg.home / "predictions")
    data = ["drift", "--config", config, "--data", folder, "--since", since, "--json"]
    assert main(data) == 1
    assert json.loads(capsys.readouterr().out)["window"]["rows"] == one["window"]["rows"]
    # A last-N window is the single-process reader's; with a sharded window it is refused.
    assert main(["drift", "--config", config, "--data", folder, "--last", "100"]) == 2
    assert "--last reads only the newest log files" in capsys.readouterr().err


def test_the_drift_table_shows_each_features_floor_and_natural_variation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import numpy as np
    import pyarrow as pa

    from mooring.cli._monitoring import _print_report
    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._drift import compute_drift

    rng = np.random.default_rng(0)
    base = pa.table({"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], 5000)})
    window = pa.table({"x": rng.normal(size=2000) + 1.0, "c": rng.choice(["a", "b"], 2000)})
    _print_report(compute_drift(compute_statistics(base), window, MonitoringConfig()))
    out = capsys.readouterr().out
    # The headline distance's floor and natural variation (wasserstein/σ's sampling noise
    # is drawn over the baseline's quantiles), and where the natural variation comes from.
    assert "floor /" in out and "0.07389" in out and "0.02797" in out
    assert "natural variation of x, c: sampling noise at the window's rows" in out
