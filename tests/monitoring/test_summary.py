"""Alerts carry a bounded summary of a drift report, never the report."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import compute_statistics
from mooring.formats._drift import DriftReport, FeatureDrift, SegmentDrift
from mooring.monitoring._alerts import AlertManager, LogSink
from mooring.monitoring._drift import compute_drift
from mooring.monitoring._monitor import Monitor
from mooring.monitoring._summary import LIMIT, drift_headline, drift_summary
from mooring.registry import Registry
from tests._support.alerts import Collect
from tests._support.rollout import project


def test_a_real_report_keeps_the_deciding_numbers_and_the_path(
    adult_train: Path, adult_test: Path, adult_options: ReadOptions, tmp_path: Path
) -> None:
    baseline = compute_statistics(adult_train, adult_options)
    window = read_table(adult_test, adult_options).drop(["class"])
    window = window.set_column(0, "age", pc.add(window["age"], 15))
    report = compute_drift(baseline, window, MonitoringConfig(), model="income", version=3)
    report.save(tmp_path / "drift")
    summary = drift_summary(report)
    assert len(orjson.dumps(summary)) <= LIMIT < len(report.to_json())
    assert summary["status"] == "drift" and summary["version"] == 3
    [age] = summary["top_features"]
    assert age["name"] == "age" and age["deciding"]["wasserstein"]["floor"] == 0.1
    assert age["deciding"]["wasserstein"]["value"] > 1.0
    assert summary["report"]["json"] == report.files["json"]


def _huge(features: int, text: int) -> DriftReport:
    name = "f" * text
    drifted = [
        FeatureDrift(
            name=f"{name}{i}",
            kind="numeric",
            status="drift",
            rows=1000,
            metrics={"psi": 3.0 + i, "wasserstein": 2.0},
            thresholds={"psi": 0.2, "wasserstein": 0.1},
            reasons=["r" * text] * 4,
            natural={"psi": 0.01},
        )
        for i in range(features)
    ]
    segments = [SegmentDrift("s" * text, str(i), 1000, "drift") for i in range(features)]
    return DriftReport(
        model="m" * text,
        version=1,
        created_at="2026-01-01T00:00:00+00:00",
        window={"rows": 1000, "start": None, "end": None},
        status="drift",
        features=drifted,
        segments=segments,
        notes=["n" * text] * 20,
        files={"json": "/x/" + "p" * text + ".json"},
    )


@settings(max_examples=25, deadline=None)
@given(features=st.integers(0, 500), text=st.integers(1, 5000))
def test_any_report_fits(features: int, text: int) -> None:
    summary = drift_summary(_huge(features, text))
    assert len(orjson.dumps(summary)) <= LIMIT
    assert summary["status"] == "drift" and summary["features_drifted"] == features


def test_the_most_drifted_features_come_first() -> None:
    summary = drift_summary(_huge(500, 10))
    names = [f["name"] for f in summary["top_features"]]
    assert names[0] == "f" * 10 + "499" and len(names) == 10


def test_the_headline_names_a_few_features_and_counts_the_rest() -> None:
    assert drift_headline([]) == ""
    assert drift_headline(["age"]) == "age"
    long = drift_headline([f"{'f' * 5000}{i}" for i in range(500)])
    assert long.endswith("and 497 more") and len(long) < 250


def test_the_monitor_alerts_and_logs_a_summary_not_the_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = project(tmp_path / "home")
    report = _huge(500, 300)
    assert len(report.to_json()) > 100 * LIMIT
    collect = Collect()
    monitor = Monitor(
        cfg,
        Registry.from_config(cfg),
        metrics=lambda: "",
        drift_check=lambda: report,
        alerts=AlertManager([LogSink(), collect]),
    )
    with caplog.at_level(logging.INFO, logger="mooring.monitoring.alerts"):
        monitor.tick()
    [alert] = collect.alerts
    assert alert.kind == "drift" and alert.details == drift_summary(report)
    assert alert.summary.endswith("and 497 more")
    # The webhook body and the log line: the summary and a few fields around it.
    assert len(orjson.dumps(alert.to_dict())) <= LIMIT + 1024
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert ")]
    assert len(line.encode()) <= LIMIT + 1024
