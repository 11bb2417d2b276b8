"""A run judged on what it should not see: train = eval is refused before training, eval
rows copied from the training data too, and a near-perfect evaluation is held until
someone acknowledges it (audited), on Adult's rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mooring.config import load_config
from mooring.formats._gate import DecisionRecord
from mooring.pipeline._cache import StepCache
from mooring.pipeline._context import RejectedError, RunContext
from mooring.pipeline._leaks import hold_perfect, perfect_metric
from mooring.pipeline._outputs import EvaluateOutput
from mooring.pipeline._record import StepRecord
from mooring.pipeline._steps import validate
from mooring.pipeline._workspace import Workspace
from mooring.registry import Registry
from tests._support.cli import mooring_in_process
from tests._support.project import edit, write_project


def _with_reject(source: Path, target: Path) -> Path:
    """A copy of an Adult CSV with ``reject`` = 1 − the label, as a loan table had it."""
    with source.open(newline="") as src, target.open("w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        header = next(reader)
        writer.writerow([*header, "reject"])
        at = header.index("class")
        for row in reader:
            writer.writerow([*row, "0" if row[at].strip() == ">50K" else "1"])
    return target


def _context(toml: Path, run_id: str = "r1") -> RunContext:
    ctx = RunContext(
        workspace=Workspace(load_config(toml)),
        cache=StepCache(toml.parent / "cache", enabled=False),
        code={"code_version": "test"},
        run_id=run_id,
    )
    return ctx


def test_train_data_that_is_the_eval_file_is_refused_before_training(
    tmp_path: Path, small_adult: dict[str, Path]
) -> None:
    toml = write_project(tmp_path, small_adult)
    done = mooring_in_process("run", "-c", str(toml), "--train-data", str(small_adult["test"]))
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "train = eval" in said and "are the same file (sha256 " in said
    assert "nothing was trained" in said and "Traceback" not in said
    record = json.loads(next((tmp_path / "state" / "runs").glob("*/run.json")).read_text())
    assert [s["status"] for s in record["steps"]] == ["rejected"] + ["pending"] * 6


def test_eval_rows_copied_from_the_training_data_are_refused_with_their_count(
    tmp_path: Path, small_adult: dict[str, Path]
) -> None:
    train_lines = small_adult["train"].read_text().splitlines()
    test_lines = small_adult["test"].read_text().splitlines()
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join([test_lines[0], *test_lines[1:751], *train_lines[1:251]]) + "\n")
    toml = write_project(tmp_path, {**small_adult, "test": mixed})
    with pytest.raises(
        RejectedError,
        match=r"train and eval overlap: 250 of the 1,000 rows of '.*mixed\.csv' \(25\.0%\) "
        r"are rows of the training data '.*adult\.data\.csv'.*nothing was trained",
    ):
        validate.run(_context(toml), StepRecord("validate"))


def test_adults_own_test_file_passes(tmp_path: Path, small_adult: dict[str, Path]) -> None:
    toml = write_project(tmp_path, small_adult)
    record = StepRecord("validate")
    assert validate.run(_context(toml), record).ok
    assert "also in the training data" not in record.message  # none of these 1,000 rows


def _evaluated(auc: float, rows: int = 1000) -> EvaluateOutput:
    return EvaluateOutput(
        report="r.html",
        report_json="r.json",
        rows=rows,
        metrics={"auc": auc, "accuracy": 0.99},
        blessed=True,
        decision=DecisionRecord(blessed=True),
    )


def test_a_near_perfect_evaluation_is_held_naming_the_leak_and_both_ways_out(
    tmp_path: Path, small_adult: dict[str, Path]
) -> None:
    leaky = _with_reject(small_adult["test"], tmp_path / "test_reject.csv")
    toml = write_project(tmp_path, {**small_adult, "test": leaky})
    ctx = _context(toml)
    assert hold_perfect(ctx, _evaluated(0.97)) is None
    with pytest.raises(
        RejectedError,
        match=r"held, not blessed: AUC 0\.9990 on the eval data is near-perfect \(≥ 0\.995\).*"
        r"\(strongest alone on the eval data: 'reject' \(AUC 1\.000\), '.*"
        r"\[evaluation\] accept_perfect = \"why\".*--accept-perfect -r \"why\"",
    ):
        hold_perfect(ctx, _evaluated(0.999))


def test_an_acknowledged_near_perfect_evaluation_is_audited_once_per_run(
    tmp_path: Path, small_adult: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORING_ACTOR", "ana")
    toml = write_project(tmp_path, small_adult)
    edit(toml, r"^bootstrap = ", 'accept_perfect = "rule-computed label"\nbootstrap = ')
    ctx = _context(toml)
    note = hold_perfect(ctx, _evaluated(1.0))
    assert note == (
        "near-perfect AUC 1.0000 acknowledged ([evaluation] accept_perfect: rule-computed label)"
    )
    hold_perfect(ctx, _evaluated(1.0))  # a resumed gate step: no second event
    ctx.accept_perfect = "checked by hand"  # the command line's reason wins
    later = _context(toml, run_id="r2")
    later.accept_perfect = "checked by hand"
    assert "mooring run --accept-perfect: checked by hand" in (
        hold_perfect(later, _evaluated(0.998)) or ""
    )
    ctx.close()
    later.close()
    registry = Registry.from_config(load_config(toml))
    events = [e for e in registry.history("income") if e.action == "accept_perfect"]
    assert [(e.actor, e.reason, (e.after or {})["run_id"]) for e in events] == [
        ("ana", "rule-computed label", "r1"),
        ("ana", "checked by hand", "r2"),
    ]
    assert events[0].after == {
        "run_id": "r1",
        "metric": "auc",
        "value": 1.0,
        "source": "[evaluation] accept_perfect",
    }
    assert registry.verify_audit().ok
    registry.close()


def test_which_metrics_are_near_perfect() -> None:
    assert perfect_metric({"auc": 0.9949, "accuracy": 0.999}, rows=5000) is None
    assert perfect_metric({"r2": 0.9996, "rmse": 1.0}, rows=88) == ("r2", 0.9996)
    # A multiclass accuracy of 1.0 on 30 rows is no evidence; on 1,000 it is.
    assert perfect_metric({"accuracy": 1.0, "macro_f1": 1.0}, rows=30) is None
    assert perfect_metric({"auc": 1.0, "accuracy": 1.0}, rows=12) is None
    assert perfect_metric({"auc": 1.0, "accuracy": 1.0}, rows=100) == ("auc", 1.0)
    assert perfect_metric({"accuracy": 1.0, "macro_f1": 1.0}, rows=1000) == ("accuracy", 1.0)


@pytest.mark.slow
def test_a_model_with_a_leak_is_held_until_run_accept_perfect_with_a_reason(
    tmp_path: Path, small_adult: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORING_ACTOR", "ana")
    data = {
        "train": _with_reject(small_adult["train"], tmp_path / "train.csv"),
        "test": _with_reject(small_adult["test"], tmp_path / "test.csv"),
    }
    toml = write_project(tmp_path, data)
    held = mooring_in_process("run", "-c", str(toml))
    said = held.stdout + held.stderr
    assert held.returncode == 1, said
    assert "held, not blessed: AUC 1.0000" in said and "'reject' (AUC 1.000)" in said
    bare = mooring_in_process("run", "-c", str(toml), "--accept-perfect")
    assert bare.returncode == 2 and "--accept-perfect needs a reason" in bare.stderr
    done = mooring_in_process(
        "run", "-c", str(toml), "--accept-perfect", "-r", "the flag is set after review", "--json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)
    steps = {s["name"]: s for s in record["steps"]}
    assert steps["train"]["status"] == "cached" and steps["evaluate"]["status"] == "cached"
    assert (
        "acknowledged (mooring run --accept-perfect: the flag is set after review)"
        in (steps["gate"]["message"])
    )
    registry = Registry.from_config(load_config(toml))
    try:
        assert registry.deployment("income").production == 1
        (event,) = [e for e in registry.history("income") if e.action == "accept_perfect"]
        assert (event.actor, event.reason) == ("ana", "the flag is set after review")
    finally:
        registry.close()
