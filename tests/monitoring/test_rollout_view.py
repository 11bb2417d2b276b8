"""The rollout's evidence read back from the controller's own rollout.json, and when it is bad."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from mooring.monitoring._guardrails import GuardrailResult
from mooring.monitoring._rollout_view import GuardrailView, read_rollout, rollout_path
from mooring.registry import Registry
from tests._support.rollout import NAME, registry_with_versions
from tests._support.rollout_evidence import rollout_project, undecided_rollout


@pytest.fixture
def state_file(tmp_path: Path) -> Iterator[Path]:
    """rollout.json after two ticks of the real controller (canary v2 undecided at 10%)."""
    cfg = rollout_project(tmp_path / "home")
    registry: Registry = registry_with_versions(cfg)
    try:
        controller, _ = undecided_rollout(cfg, registry)
        assert controller.state_path == rollout_path(cfg.home, NAME)
        yield controller.state_path
    finally:
        registry.close()


def test_the_step_and_each_guardrail_of_the_last_decision(state_file: Path) -> None:
    saved = json.loads(state_file.read_text())
    view = read_rollout(state_file, canary=2, now=saved["step"]["started_at"] + 95)
    assert view.under_way and view.note is None
    assert view.step is not None and (view.step.canary, view.step.weight) == (2, 10)
    assert view.step.ticks == 2 and view.step.seconds_at_step == pytest.approx(95)
    assert "canary v2 at 10% against production v1: 2 ticks, 1m 35s at this step" in (
        view.step.headline
    )
    decision = view.decision
    assert decision is not None and decision.action == "insufficient_data"
    assert "requests: canary has 5 of 20 needed at 10%" in decision.why
    errors = next(g for g in decision.guardrails if g.name == "errors")
    saved_errors = next(g for g in saved["last_decision"]["guardrails"] if g["name"] == "errors")
    lo, hi = saved_errors["interval"]
    assert errors.state == "undecided" and errors.interval == (lo, hi) and lo < 0 < hi
    assert errors.boundary == saved_errors["boundary"]
    assert errors.needed is not None and "more canary requests expected" in errors.needed
    assert errors.line == (
        f"errors [undecided] estimate +0 interval [{lo:+.4g}, {hi:+.4g}] "
        f"(passes below +0.03, fails above +0); {errors.needed}"
    )
    load = next(g for g in decision.guardrails if g.name == "load")
    assert load.line == "load [pass] canary loaded"
    data = view.to_dict()
    assert json.loads(json.dumps(data)) == data
    lines = {g["name"]: g["line"] for g in data["last_decision"]["guardrails"]}
    assert lines["errors"] == errors.line


def test_no_file_means_no_rollout_or_a_canary_not_judged_yet(tmp_path: Path) -> None:
    path = rollout_path(tmp_path, NAME)
    assert read_rollout(path, canary=None).note == "no rollout is under way"
    view = read_rollout(path, canary=3)
    assert not view.under_way and view.step is None and view.last_decision is None
    assert view.note == (
        f"no rollout shown: canary v3 is deployed but no monitor tick has judged it yet "
        f"(no {path}); run `mooring monitor`"
    )


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "holds a list, not an object"),
        (b'{"step": {"canary": 2}}', "has a malformed step (missing field 'weight')"),
        (b'{"step": "ten percent"}', "has a malformed step (step is a str, not an object)"),
        (b'{"step": {"canary": "two", "weight": 10}}', "has a malformed step (invalid literal"),
        (
            b'{"step": {"canary": 2, "weight": 10, "revision": 1, "production": 1,'
            b' "started_at": 1e300, "rollout_started_at": 0}}',
            "has a malformed step (",
        ),
    ],
)
def test_a_malformed_file_is_a_note_never_an_exception(
    tmp_path: Path, content: bytes, says: str
) -> None:
    path = rollout_path(tmp_path, NAME)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    view = read_rollout(path, canary=2)
    assert not view.under_way and view.step is None and view.decision is None
    assert view.note is not None and view.note.startswith("no rollout shown: ")
    assert str(path) in view.note and says in view.note
    assert view.note.endswith("the next `mooring monitor` tick rewrites it")


def test_a_malformed_last_decision_keeps_the_step(state_file: Path) -> None:
    saved = json.loads(state_file.read_text())
    saved["last_decision"]["guardrails"][1] = {"status": "ok"}
    state_file.write_text(json.dumps(saved))
    view = read_rollout(state_file, canary=2)
    assert view.under_way and view.step is not None and view.last_decision is None
    assert view.note is not None
    assert (
        f"the last decision in {state_file} is malformed (a guardrail has no name (got None))"
    ) in view.note


def test_a_step_for_another_canary_is_not_under_way(state_file: Path) -> None:
    view = read_rollout(state_file, canary=None)
    assert not view.under_way and view.decision is None
    assert view.note is not None and "describes canary v2, but the deployment has no canary" in (
        view.note
    )
    assert view.last_decision is not None and view.last_decision.canary == 2


def test_a_guardrail_line_without_interval_infinite_bounds_and_advisory() -> None:
    waiting = GuardrailResult(
        "live_metric",
        "insufficient_data",
        "3 canary and 4 production labels; its interval is trusted from 30 each",
        needed="26 more labels",
        advisory=True,
    )
    assert GuardrailView.from_result(waiting).line == (
        "live_metric [undecided, advisory] 3 canary and 4 production labels; its interval is "
        "trusted from 30 each; 26 more labels"
    )
    latency = GuardrailResult(
        "latency",
        "ok",
        "labels decide (no worse: …); without them: undecided: …",
        value=0.01,
        interval=(-0.02, 0.04),
        boundary={"pass_below": 0.05, "fail_above": math.inf},
    )
    view = GuardrailView.from_result(latency)
    assert view.line == (
        "latency [pass] estimate +0.01 interval [-0.02, +0.04] (passes below +0.05) — labels decide"
    )
    # Infinite boundaries are written to JSON as null; read back, they are left out alike.
    saved = json.loads(json.dumps({**latency.to_dict(), "boundary": {"pass_below": 0.05}}))
    assert GuardrailView.from_mapping(saved).bounds == "passes below +0.05"
    with pytest.raises(ValueError, match="guardrail 'x' has no status"):
        GuardrailView.from_mapping({"name": "x"})


def test_a_new_canary_before_its_first_tick_keeps_the_last_decision(state_file: Path) -> None:
    saved = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**saved, "step": None}))
    view = read_rollout(state_file, canary=3)
    assert not view.under_way and view.decision is None
    assert view.note == (
        f"no rollout shown: canary v3 is deployed but no monitor tick has judged it yet "
        f"({state_file} has no step); run `mooring monitor`"
    )
    assert view.last_decision is not None
    assert view.last_decision.headline.startswith("insufficient_data canary v2 at 10% (")


def test_the_policy_failures_and_steps_run_are_read_back(state_file: Path) -> None:
    saved = json.loads(state_file.read_text())
    assert saved["policy"].startswith("bias_to_action: an undecided step advances after")
    saved["step"]["steps_run"] = [5, 10]
    saved["failures"] = {
        "drift": {
            "consecutive": 2,
            "first_at": "2024-05-01T12:03:00+00:00",
            "last_at": "2024-05-01T12:04:00+00:00",
            "error": "ValueError: bad",
            "where": "drift",
        },
        "rollout": {"consecutive": "x"},
    }
    state_file.write_text(json.dumps(saved))
    view = read_rollout(state_file, canary=2)
    assert view.policy == saved["policy"]
    assert view.step is not None and view.step.steps_run == [5, 10]
    [drift] = view.failures
    assert drift.headline == (
        "the monitor failed 2 ticks in a row since 12:03:00 UTC (drift: ValueError: bad); fix "
        "the cause or run `mooring --debug monitor` for the traceback"
    )
    assert not drift.held and view.held_by_failures is None
    # A malformed record is a note, never an exception.
    assert view.note is not None and "the failure record 'rollout'" in view.note
    assert json.loads(json.dumps(view.to_dict()))["failures"][0]["where"] == "drift"
