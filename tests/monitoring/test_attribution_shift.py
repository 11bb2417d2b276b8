"""What moved the predictions: a drifted window's rows explained against the evaluation's.

A real trained network, registered with the mean attributions its evaluation froze,
serves a window of Adult rows twenty years older; the drift check names the columns
that drifted and, beside them, how much each column's mean attribution moved, adding up
to how far the mean prediction moved.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import orjson
import pytest

from mooring.cli import main
from mooring.config import load_config
from mooring.contract._io import ReadOptions
from mooring.contract._statistics import compute_statistics
from mooring.dashboard._drift_report import render_drift_html
from mooring.evaluation._model import attribution_summary
from mooring.formats._drift import DriftReport
from mooring.formats._model import load_saved_model
from mooring.formats._version_record import References, RunRecord, VersionRecord
from mooring.monitoring import check_drift
from mooring.monitoring._attribution_shift import attribution_shift
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.monitored import NAME, MonitoredProject, log_rows, shared_project, shifted


@pytest.fixture
def project(tmp_path_factory: pytest.TempPathFactory) -> MonitoredProject:
    return shared_project(tmp_path_factory)


def _registered_with_attributions(project: MonitoredProject, root: Path) -> MonitoredProject:
    """The project's model registered in a registry of its own under ``root``, with the
    references its evaluation run would freeze: the attributions on the evaluation rows."""
    root.mkdir()
    for name in ("mooring.toml", "train.csv", "eval.csv"):
        shutil.copy(project.root / name, root / name)
    cfg = load_config(root / "mooring.toml")
    summary = attribution_summary(load_saved_model(project.model_dir), project.eval_table)
    assert summary is not None and summary["completeness_error"] < 0.01
    statistics = compute_statistics(root / "train.csv", ReadOptions.from_config(cfg.data))
    record = VersionRecord(
        gate={"blessed": True, "gates": []},
        statistics=statistics.to_dict(),
        run=RunRecord(references=References(evaluation={"attributions": summary})),
    )
    with Registry.from_config(cfg) as registry:
        register_judged(registry, name=NAME, artifact_dir=project.model_dir, record=record)
        registry.deploy(NAME, production=1)
    return dataclasses.replace(project, root=root, config_path=root / "mooring.toml", cfg=cfg)


def test_a_drifted_window_says_which_columns_moved_the_predictions(
    project: MonitoredProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = _registered_with_attributions(project, tmp_path / "project")
    log_rows(local, shifted(project.eval_table, age=20))
    with Registry.from_config(local.cfg) as registry:
        report = check_drift(local.cfg, registry, last=2000, html=render_drift_html)
    assert report.status == "drift" and "age" in report.drifted
    shift = report.attributions
    assert shift is not None and shift.note is None
    assert (shift.rows, shift.reference_rows) == (200, 200)
    assert shift.largest(1)[0][0] == "age" and shift.beyond_noise("age")
    assert set(shift.noise) == set(shift.shifts) and all(v for v in shift.noise.values())
    # Hours were not moved: what is left of their shift is the draw of the rows.
    assert not shift.beyond_noise("hours-per-week")
    assert shift.moved is not None and abs(shift.moved) > 0.01
    # Attributions sum to the output less a fixed baseline, on both sides: the shifts add
    # up to how far the mean output moved (within the two sides' completeness error).
    assert sum(v for v in shift.shifts.values() if v is not None) == pytest.approx(
        shift.moved, abs=0.02
    )
    # The sizes hold up: measured from real training rows, the shifts barely offset.
    assert shift.absolute < 2 * abs(shift.moved)
    data = orjson.loads(Path(report.files["json"]).read_bytes())
    saved = DriftReport.from_dict(data)
    assert saved.attributions is not None and saved.attributions.largest(2) == shift.largest(2)
    # Which shifts are beyond their noise is decided once: the JSON, the page and the
    # command line give the same columns.
    beyond = data["attributions"]["beyond_noise"]
    assert beyond == shift.beyond_columns() and beyond[0] == "age"
    assert data["attributions"]["sum_of_absolute_shifts"] == pytest.approx(shift.absolute)
    page = Path(report.files["html"]).read_text(encoding="utf-8")
    assert 'id="attributions"' in page and "What moved the predictions" in page
    assert f"{len(beyond)} of {len(shift.shifts)} columns are beyond" in page
    assert page.count("<td>yes</td>") == len(beyond)
    # `mooring drift` says it in a line, largest shift first.
    assert main(["drift", "--config", str(local.config_path), "--last", "2000"]) == 1
    said = " ".join(capsys.readouterr().out.split())
    assert "what moved the predictions (mean probability of >50K moved" in said
    assert "the shifts' absolute values add up to" in said
    assert f"(probability): {len(beyond)} of {len(shift.shifts)} columns beyond" in said
    assert ": age " in said
    named = said.split("columns beyond the noise of the rows drawn")[-1].split("; within")[0]
    assert [c for c in shift.shifts if f" {c} " in named + " "] == [
        c for c in shift.shifts if c in beyond[:5]
    ]
    assert "within their noise: " in said and "hours-per-week" in said.split("within")[-1]


def test_a_window_it_cannot_explain_says_why_and_the_report_stands(
    project: MonitoredProject, tmp_path: Path
) -> None:
    summary = {"mean_attribution": {"age": 0.0}, "mean_explained": 0.3, "rows": 200}
    log_rows(project, project.eval_table.slice(0, 50))
    with Registry.from_config(project.cfg) as registry:
        window = check_drift(project.cfg, registry, last=50, write=False)
    assert window.attributions is None  # version 1 froze no attributions: nothing is explained
    from mooring.formats._predictions import read_prediction_log

    logged = read_prediction_log(str(project.cfg.home / "predictions"), NAME, last=50)
    no_age = logged.drop_columns(["age"])
    shift = attribution_shift(project.model_dir, {"attributions": summary}, no_age)
    assert shift is not None and shift.shifts == {} and shift.moved is None
    assert shift.note is not None and "could not be explained" in shift.note and "age" in shift.note
    assert attribution_shift(project.model_dir, {}, logged) is None
