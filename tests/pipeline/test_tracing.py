"""``mooring run`` traced: one run span with a child per step, exported over OTLP/HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooring.config import load_config
from mooring.pipeline import RunResult, run_pipeline
from mooring.pipeline._context import RunObserver
from mooring.pipeline._record import StepRecord
from mooring.pipeline._steps import PIPELINE, step_name
from tests._support.otlp import OTLPReceiver, ReceivedSpan
from tests._support.project import write_project
from tests._support.waiting import wait_until

pytestmark = pytest.mark.slow

ERROR_STATUS = 2  # STATUS_CODE_ERROR


class FailAfter(RunObserver):
    def step_finished(self, record: StepRecord) -> None:
        if record.name == "validate":
            raise RuntimeError("injected failure after validate")


def _run_and_step_spans(
    spans: list[ReceivedSpan], result: RunResult
) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
    runs = [s for s in spans if s.name == "mooring run" and s.attributes["mooring.outcome"]]
    run = next(s for s in runs if s.attributes["mooring.run_id"] == result.run_id)
    return run, [s for s in spans if s.parent_id == run.span_id]


def test_a_run_is_one_span_with_a_child_per_step(
    tmp_path: Path, small_adult: dict[str, Path]
) -> None:
    with OTLPReceiver() as receiver:
        toml = write_project(
            tmp_path,
            small_adult,
            extra=f'[observability]\notlp_endpoint = "{receiver.url}"\n'
            'service_name = "income-pipeline"\n',
        )
        results = [run_pipeline(load_config(toml)) for _ in range(2)]
        with pytest.raises(RuntimeError, match="injected failure after validate"):
            run_pipeline(load_config(toml), observer=FailAfter())
        # run_pipeline flushed its spans before returning (or raising).
        wait_until(
            lambda: sum(x.name == "mooring run" for x in receiver.received()) == 3,
            "the three runs' spans at the receiver",
            seen=lambda: [x.name for x in receiver.received()],
        )
        spans = receiver.received()

    names = [step_name(step) for step in PIPELINE]
    for result in results:
        run, steps = _run_and_step_spans(spans, result)
        assert run.parent_id == ""
        assert run.service == "income-pipeline"
        assert run.attributes["mooring.project"] == "income"
        assert run.attributes["mooring.model"] == "income"
        assert run.attributes["mooring.outcome"] == result.status == "succeeded"
        assert [s.name for s in sorted(steps, key=lambda s: s.start_ns)] == names
        outcomes = {s.attributes["mooring.step"]: s.attributes["mooring.outcome"] for s in steps}
        assert outcomes == {s.name: s.status for s in result.steps}
        for step in steps:
            assert step.trace_id == run.trace_id
            assert step.attributes["mooring.project"] == "income"
            assert run.start_ns <= step.start_ns and step.end_ns <= run.end_ns
    first, second = (_run_and_step_spans(spans, r)[1] for r in results)
    assert {s.attributes["mooring.outcome"] for s in first} >= {"done"}
    assert {s.attributes["mooring.outcome"] for s in second} <= {"cached", "skipped"}
    failed = next(s for s in spans if s.attributes["mooring.outcome"] == "failed")
    assert failed.name == "mooring run" and failed.status_code == ERROR_STATUS
    assert "exception" in failed.events
    (validate,) = [s for s in spans if s.parent_id == failed.span_id]
    assert validate.name == "validate" and validate.status_code == ERROR_STATUS
    assert all(s.status_code != ERROR_STATUS for s in spans if s.trace_id != failed.trace_id)
