"""check_drift end to end: registry baseline, real log, segments, outputs, files, gauges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from prometheus_client import generate_latest

from mooring.dashboard._drift_report import render_drift_html
from mooring.errors import DataError, NotFoundError, UsageError
from mooring.formats._drift import DriftReport
from mooring.formats._predictions import read_prediction_log
from mooring.formats._version_record import VersionRecord
from mooring.monitoring import check_drift
from mooring.monitoring._gauges import drift_gauges
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.monitored import (
    MonitoredProject,
    log_rows,
    shared_project,
    shifted,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitoring-project")]


@pytest.fixture
def project(tmp_path_factory: pytest.TempPathFactory) -> MonitoredProject:
    return shared_project(tmp_path_factory)


def test_same_traffic_is_ok_and_reports_are_written(project: MonitoredProject) -> None:
    log_rows(project, project.eval_table)
    with Registry.from_config(project.cfg) as registry:
        report = check_drift(project.cfg, registry, html=render_drift_html)
    assert report.status == "ok", [f.reasons for f in report.features if f.drifted]
    assert report.version == 1 and report.window["rows"] == project.eval_table.num_rows
    assert {f.name for f in report.features} == {"age", "hours-per-week", "workclass", "sex"}
    # Prediction drift against the version's own outputs on the evaluation data.
    assert report.prediction is not None and report.prediction.status == "ok"
    assert report.prediction.source is not None and "eval.csv" in report.prediction.source
    assert {f.name for f in report.prediction.features} == {"output.score", "output.class"}
    # Per-segment baselines come from the training rows of each segment.
    segments = {s.value: s for s in report.segments}
    assert set(segments) == {"Female", "Male"}
    assert segments["Male"].status == "ok" and segments["Male"].rows >= 1000
    # About a third of the rows: below min_samples, so no verdict either way.
    assert segments["Female"].status == "insufficient_data" and segments["Female"].rows < 1000
    folder = project.cfg.home / "monitoring" / "income" / "drift"
    latest = orjson.loads((folder / "latest.json").read_bytes())
    assert latest["status"] == "ok" and latest["model"] == "income"
    assert Path(report.files["html"]).parent == folder
    assert Path(report.files["html"]).read_text(encoding="utf-8").count("<svg") >= 4


def test_shifted_traffic_drifts_with_gauges(project: MonitoredProject) -> None:
    log_rows(project, shifted(project.eval_table, age=15, flip_sex=True))
    with Registry.from_config(project.cfg) as registry:
        report = check_drift(project.cfg, registry, last=1500)
    assert report.status == "drift"
    assert {"age", "sex"} <= set(report.drifted)
    assert "hours-per-week" not in report.drifted
    assert report.window["rows"] == 1500
    text = generate_latest(drift_gauges(report)).decode()
    assert 'mooring_drift_status{model="income",version="1"} 1.0' in text
    assert 'mooring_drift_feature_drifted{feature="age",model="income",version="1"} 1.0' in text
    assert (
        'mooring_drift_feature_drifted{feature="hours-per-week",model="income",version="1"} 0.0'
        in text
    )
    psi = report.feature("age").metrics["psi"]
    assert (
        f'mooring_drift_distance{{feature="age",metric="psi",model="income",version="1"}} {psi!r}'
        in text
    )


def test_each_check_prunes_old_reports_but_keeps_flagged_ones(
    project: MonitoredProject, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = project.cfg.home / "monitoring" / "income" / "drift"
    for status, at in (("ok", "2020-01-01T00:00:00+00:00"), ("drift", "2020-01-02T00:00:00+00:00")):
        old = DriftReport.from_dict({"status": status, "created_at": at, "window": {"rows": 1}})
        old.save(folder, html=render_drift_html)
    log_rows(project, project.eval_table)
    with Registry.from_config(project.cfg) as registry:
        report = check_drift(project.cfg, registry, html=render_drift_html)
        names = {p.name for p in folder.iterdir()}
        assert not {"20200101T000000Z.json", "20200101T000000Z.html"} & names
        assert {"20200102T000000Z-drift.json", "20200102T000000Z-drift.html"} <= names
        assert Path(report.files["json"]).name in names and "latest.json" in names

        # A folder that cannot be tidied does not fail the check.
        def refuse(*args: object, **kwargs: object) -> list[Path]:
            raise PermissionError("read-only folder")

        monkeypatch.setattr("mooring.monitoring._drift.prune_reports", refuse)
        with caplog.at_level("WARNING", logger="mooring.monitoring"):
            again = check_drift(project.cfg, registry)
    assert again.status == report.status and "not pruned: read-only folder" in caplog.text


def test_windows_by_rows_time_and_version(project: MonitoredProject) -> None:
    log_rows(project, project.eval_table.slice(0, 1200), prefix="a")
    log_rows(project, project.eval_table.slice(0, 300), version=2, prefix="b")
    url = str(project.cfg.home / "predictions")
    everything = read_prediction_log(url, "income")
    assert everything.num_rows == 1500
    assert read_prediction_log(url, "income", version=2).num_rows == 300
    newest = read_prediction_log(url, "income", last=100)
    assert newest.num_rows == 100
    assert newest["request_id"].to_pylist()[-1] == "b299"
    future = datetime.now(UTC) + timedelta(hours=1)
    assert read_prediction_log(url, "income", since=future).num_rows == 0
    assert read_prediction_log(url, "other").num_rows == 0
    with pytest.raises(UsageError, match="last must be a positive number of rows"):
        read_prediction_log(url, "income", last=0)
    with Registry.from_config(project.cfg) as registry:
        small = check_drift(project.cfg, registry, since=datetime.now(UTC) - timedelta(hours=1))
    assert small.window["rows"] == 1200  # version 1 only: the production version
    assert small.status == "ok", small.drifted
    with Registry.from_config(project.cfg) as registry:
        tiny = check_drift(project.cfg, registry, last=200, write=False)
    assert tiny.status == "insufficient_data" and tiny.files == {}


def test_errors_name_the_fix(project: MonitoredProject, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="holds no Parquet file"):
        read_prediction_log(str(tmp_path / "nothing"), "income")
    with Registry.from_config(project.cfg) as registry:
        register_judged(
            registry,
            name="bare",
            artifact_dir=project.model_dir,
            record=VersionRecord(
                lineage={"data_fingerprint": "0" * 64}, gate={"blessed": True, "gates": []}
            ),
        )
        cfg = project.cfg.model_copy(deep=True)
        cfg.project.name = "bare"
        cfg.root = project.cfg.root
        with pytest.raises(NotFoundError, match="no production version to check"):
            check_drift(cfg, registry)
        with pytest.raises(DataError, match="registered without training statistics"):
            check_drift(cfg, registry, version=1)
