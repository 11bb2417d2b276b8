"""A pipeline run's record (run.json), typed: today's records read and written back
exactly, older ones and unknown keys kept, and what resuming a run reads of them."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mooring.formats._pipeline_run import (
    PIPELINE_RUN_KIND,
    PipelineRun,
    RunOutcome,
)
from mooring.formats._training_run import LEGACY_TRAINING_FORMAT, TRAINING_FORMAT
from tests._support.stored_json import json_values, pipeline_runs, unknown_keys, without_some


@given(pipeline_runs)
def test_todays_records_round_trip(data: dict[str, Any]) -> None:
    run = PipelineRun.read(data)
    assert run.to_dict() == data
    assert run.is_pipeline_run and not run.extra
    assert (run.result is None) == ("result" not in data)


@given(pipeline_runs, st.dictionaries(unknown_keys, json_values, min_size=1, max_size=3))
def test_unknown_keys_survive_a_rewrite(data: dict[str, Any], more: dict[str, Any]) -> None:
    stored = {**data, **more}
    if "result" in data:
        stored["result"] = {**data["result"], **more}
    run = PipelineRun.read(stored)
    assert run.to_dict() == stored
    assert dict(run.extra) == more


@given(st.data())
def test_older_records_read_with_their_keys_absent(data: st.DataObject) -> None:
    stored = without_some(data.draw(pipeline_runs), data.draw)
    run = PipelineRun.read(stored)
    assert run.to_dict() == stored
    assert run.status == stored.get("status")
    assert run.finished_steps == [
        s["name"] for s in stored.get("steps", []) if s["status"] in ("done", "cached", "skipped")
    ]


@given(st.dictionaries(st.sampled_from(["kind", "steps", "attempts", "result", "x"]), json_values))
def test_any_mapping_reads_without_raising_and_writes_back(data: dict[str, Any]) -> None:
    run = PipelineRun.read(data)
    assert run.to_dict() == data
    assert run.last_attempt_status is None or isinstance(run.last_attempt_status, str)
    assert isinstance(run.activity, tuple)


def test_a_training_record_is_not_a_pipeline_run() -> None:
    assert PIPELINE_RUN_KIND != TRAINING_FORMAT
    for format_ in (TRAINING_FORMAT, LEGACY_TRAINING_FORMAT):
        training = PipelineRun.read({"format": format_, "kind": "mlp", "seed": 1})
        assert not training.is_pipeline_run
        assert training.to_dict() == {"format": format_, "kind": "mlp", "seed": 1}
    assert PipelineRun.read(None) == PipelineRun()


def test_a_run_is_written_as_the_pipeline_writes_it() -> None:
    run = PipelineRun.of(kind=PIPELINE_RUN_KIND, run_id="r1", model="income", force=False)
    run = run.updated(status="running").attempt_started("t0", {"pid": 7})
    run = run.updated(reason=None, error=None)
    run = run.updated(steps=({"name": "train", "status": "done"},), updated_at="t1")
    assert run.to_dict() == {
        "kind": "mooring.run",
        "run_id": "r1",
        "model": "income",
        "force": False,
        "status": "running",
        "attempts": [{"started_at": "t0", "status": "running", "pid": 7}],
        "reason": None,
        "error": None,
        "steps": [{"name": "train", "status": "done"}],
        "updated_at": "t1",
    }
    stopped = run.stopped(
        "failed", step="train", error="RuntimeError", message="boom", user_error=False, at="t2"
    )
    assert stopped.last_attempt_status == "failed" and stopped.error_message == "boom"
    assert stopped.to_dict()["error"] == {
        "step": "train",
        "type": "RuntimeError",
        "message": "boom",
        "user_error": False,
    }
    ended = run.attempt_ended("succeeded", 1.5)
    assert ended.to_dict()["attempts"] == [
        {"started_at": "t0", "status": "succeeded", "pid": 7, "duration_s": 1.5}
    ]
    assert ended.finished_steps == ["train"] and ended.step("train") is not None
    assert PipelineRun().attempt_ended("failed") == PipelineRun()


def test_the_outcome_records_every_field_even_when_none() -> None:
    outcome = RunOutcome.of(
        version=2,
        blessed=True,
        candidate=None,
        metrics={"auc": 0.9},
        report=None,
        deployed_as="canary",
        canary_weight=10,
        deployment={"production": 1, "canary": 2, "canary_weight": 10},
    )
    written = outcome.to_dict()
    assert list(written) == [
        "version",
        "blessed",
        "candidate",
        "metrics",
        "report",
        "deployed_as",
        "canary_weight",
        "deployment",
    ]
    assert RunOutcome.read(written).to_dict() == written
    resumed = PipelineRun.of(run_id="r", result=outcome)
    assert resumed.to_dict()["result"] == written
