"""Drift over a sharded prediction log: the same verdicts as one window read into one process.

The log holds logged Adult rows in 16 files, as a server writes them. The baseline is
the young population's training statistics (age < 35); one window is more young rows
(no drift), the other the old population (a real regime change by population).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._io import ReadOptions
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.errors import NotFoundError
from mooring.formats._drift import DriftReport
from mooring.formats._predictions import (
    append_request_rows,
    log_files,
    read_prediction_log,
    write_log_file,
)
from mooring.monitoring._drift import compute_drift, window_plan
from mooring.scale._drift import sharded_window
from mooring.scale._engine import Engine
from tests._support.ray_cluster import GROUP
from tests._support.shards import read_adult_typed, split_rows

FEATURES = ["age", "workclass", "education-num", "sex", "hours-per-week", "race"]
CONFIG = MonitoringConfig.model_validate({"min_samples": 500, "segments": ["sex"]})
START = datetime(2026, 11, 1, tzinfo=UTC)


def _population(young: bool) -> pa.Table:
    table = read_adult_typed().select(FEATURES)
    mask = pc.less(table["age"], 35)
    return table.filter(mask if young else pc.invert(mask))


@pytest.fixture(scope="module")
def baseline() -> DatasetStatistics:
    young = _population(young=True)
    return compute_statistics(young.slice(0, young.num_rows // 2), ReadOptions())


def _write_log(folder: Path, rows: pa.Table, files: int, *, other_model: bool = True) -> None:
    """``rows`` logged as ``files`` files, one second apart, plus another model's rows."""
    scores = np.linspace(0.01, 0.99, rows.num_rows)
    for i, (start, stop) in enumerate(split_rows(rows.num_rows, files)):
        batch: list[dict[str, Any]] = []
        part = rows.slice(start, stop - start)
        columns = {name: part[name].to_pylist() for name in part.column_names}
        columns = {k: ["" if v is None else v for v in vs] for k, vs in columns.items()}
        append_request_rows(
            batch,
            model="income",
            version=1,
            request_id=f"r{i}",
            timestamp=START + timedelta(hours=i),
            columns=columns,
            outputs={"score": scores[start:stop]},
            rows=part.num_rows,
        )
        if other_model:
            append_request_rows(
                batch,
                model="other",
                version=3,
                request_id=f"o{i}",
                timestamp=START + timedelta(hours=i),
                columns={k: v[:5] for k, v in columns.items()},
                outputs={"score": scores[start : start + 5]},
                rows=5,
            )
        write_log_file(str(folder), batch)


def _verdicts(report: DriftReport) -> dict[str, Any]:
    return {
        "status": report.status,
        "rows": report.window["rows"],
        "features": {f.name: (f.status, f.rows) for f in report.features},
        "segments": {(s.column, s.value): (s.status, s.rows) for s in report.segments},
        "window": (report.window["start"], report.window["end"]),
    }


def _compare(
    folder: Path, baseline: DatasetStatistics, engine: Engine
) -> tuple[DriftReport, DriftReport]:
    local = compute_drift(baseline, read_prediction_log(str(folder), "income"), CONFIG)
    plan = window_plan(baseline, CONFIG)
    summary = sharded_window(log_files(str(folder)), "income", plan, version=1, engine=engine)
    sharded = compute_drift(baseline, summary, CONFIG)
    assert _verdicts(sharded) == _verdicts(local)
    for a, b in zip(local.features, sharded.features, strict=True):
        for metric in ("psi", "jensen_shannon", "missing_change"):
            if a.metrics.get(metric) is not None:
                assert b.metrics[metric] == pytest.approx(a.metrics[metric], abs=0.01), metric
    return local, sharded


@pytest.fixture(scope="module")
def regime_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("log-old")
    _write_log(folder, _population(young=False).slice(0, 8000), 16)
    return folder


@pytest.fixture(scope="module")
def same_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("log-young")
    young = _population(young=True)
    _write_log(folder, young.slice(young.num_rows // 2, 8000), 16)
    return folder


def test_a_regime_change_drifts_the_same_on_a_process_pool(
    regime_log: Path, baseline: DatasetStatistics
) -> None:
    local, _ = _compare(regime_log, baseline, Engine("local", workers=2))
    assert local.status == "drift" and "age" in local.drifted


def test_the_same_population_stays_ok_on_a_process_pool(
    same_log: Path, baseline: DatasetStatistics
) -> None:
    local, _ = _compare(same_log, baseline, Engine("local", workers=2))
    assert local.status == "ok", local.drifted


def test_a_window_without_rows_of_the_model_is_refused(
    regime_log: Path, baseline: DatasetStatistics
) -> None:
    files = log_files(str(regime_log))
    with pytest.raises(NotFoundError, match="no logged row of version 7 of model 'income'"):
        sharded_window(files, "income", window_plan(baseline, CONFIG), version=7)


def test_since_lists_only_the_days_from_its_date(tmp_path: Path) -> None:
    young = _population(young=True).slice(0, 200)
    _write_log(tmp_path, young, 2, other_model=False)
    assert len(log_files(str(tmp_path), since=START + timedelta(days=1))) == 0
    assert len(log_files(str(tmp_path), since=START)) == 2


@pytest.mark.slow
@pytest.mark.xdist_group(GROUP)
class TestRay:
    def test_a_regime_change_drifts_the_same_on_ray(
        self, ray_address: str, regime_log: Path, baseline: DatasetStatistics
    ) -> None:
        local, sharded = _compare(regime_log, baseline, Engine("ray", address=ray_address))
        assert sharded.status == "drift" and set(sharded.drifted) == set(local.drifted)

    def test_the_same_population_stays_ok_on_ray(
        self, ray_address: str, same_log: Path, baseline: DatasetStatistics
    ) -> None:
        _, sharded = _compare(same_log, baseline, Engine("ray", address=ray_address))
        assert sharded.status == "ok"
