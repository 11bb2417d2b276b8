"""``mooring status`` and ``mooring monitor`` show each guardrail's evidence of a rollout.

The rollout.json is the real controller's, after two ticks that leave the canary undecided.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mooring.cli import main
from mooring.cli._monitor import _print
from mooring.monitoring._monitor import MonitorReport
from mooring.monitoring._rollout_view import GuardrailView, rollout_path
from mooring.registry import Registry
from tests._support.cli import run_mooring
from tests._support.rollout import NAME, registry_with_versions
from tests._support.rollout_evidence import (
    advanced_rollout,
    rollout_project,
    undecided_rollout,
    write_config,
)


class Rollout:
    def __init__(self, root: Path) -> None:
        self.cfg = rollout_project(root / ".mooring")
        self.config = write_config(root / "mooring.toml", ".mooring")
        self.registry: Registry = registry_with_versions(self.cfg)
        self.state_file = rollout_path(self.cfg.home, NAME)


@pytest.fixture
def rollout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rollout]:
    monkeypatch.setenv("COLUMNS", "400")  # the table's rows on one line each
    made = Rollout(tmp_path)
    yield made
    made.registry.close()


def _visible(output: str) -> str:
    """Table text without borders, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[│┃┏┓┗┛━─┡┩└┘┌┐├┤┼╇╈]", " ", output)).strip()


def test_status_json_has_the_step_and_every_guardrail(
    rollout: Rollout, capsys: pytest.CaptureFixture[str]
) -> None:
    _, decision = undecided_rollout(rollout.cfg, rollout.registry)
    assert main(["status", "-c", str(rollout.config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["rollout"]
    assert shown["under_way"] is True and shown["note"] is None
    assert shown["state_file"] == str(rollout.state_file)
    step = shown["step"]
    assert (step["canary"], step["production"], step["weight"], step["ticks"]) == (2, 1, 10, 2)
    assert step["seconds_at_step"] >= 0
    last = shown["last_decision"]
    assert last["action"] == "insufficient_data" and last["canary"] == 2
    by_name = {g["name"]: g for g in last["guardrails"]}
    assert set(by_name) == {g.name for g in decision.guardrails}
    for judged in decision.guardrails:
        g = by_name[judged.name]
        assert g["state"] == judged.state and g["estimate"] == judged.value
        assert g["needed"] == judged.needed
        assert g["interval"] == (None if judged.interval is None else list(judged.interval))
        assert g["boundary"] == judged.boundary
        assert g["line"] == GuardrailView.from_result(judged).line
    errors = by_name["errors"]
    assert errors["state"] == "undecided"
    assert errors["boundary"] == {"pass_below": 0.03, "fail_above": 0.0}
    assert "more canary requests expected" in errors["needed"]


def test_status_text_shows_step_states_intervals_and_needed(rollout: Rollout) -> None:
    _, decision = undecided_rollout(rollout.cfg, rollout.registry)
    done = run_mooring("status", "-c", str(rollout.config))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    out = _visible(done.stdout)
    assert "rollout canary v2 at 10% against production v1: 2 ticks," in out
    assert "last decision: insufficient_data canary v2 at 10%" in out
    assert "requests: canary has 5 of 20 needed at 10%" in out
    errors = next(g for g in decision.guardrails if g.name == "errors")
    assert errors.interval is not None and errors.needed is not None
    lo, hi = errors.interval
    assert (
        f"· errors [undecided] estimate +0 interval [{lo:+.4g}, {hi:+.4g}] "
        f"(passes below +0.03, fails above +0); {errors.needed}"
    ) in done.stdout
    assert "· latency [undecided] estimate" in done.stdout
    assert "· load [pass] canary loaded" in done.stdout
    # Brackets in messages are text, not console markup.
    assert "· broken [unavailable] no prediction log (is [serving] log_sample_rate" in done.stdout


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"step": {"canary": 2, "weight": "ten"', "is not valid JSON"),
        (b'{"step": {"canary": 2}}', "has a malformed step (missing field 'weight')"),
    ],
)
def test_status_with_a_malformed_rollout_file_says_so_without_traceback(
    rollout: Rollout, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    rollout.registry.deploy(NAME, production=1, canary=2, weight=10)
    rollout.state_file.parent.mkdir(parents=True)
    rollout.state_file.write_bytes(content)
    done = run_mooring("status", "-c", str(rollout.config))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    out = _visible(done.stdout)
    assert f"rollout no rollout shown: {rollout.state_file} {says}" in out
    assert "the next `mooring monitor` tick rewrites it" in out
    assert "guardrails at the last decision" not in out
    assert main(["status", "-c", str(rollout.config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["rollout"]
    assert shown["under_way"] is False and shown["step"] is None
    assert says in shown["note"]


def test_status_without_a_rollout(rollout: Rollout, capsys: pytest.CaptureFixture[str]) -> None:
    rollout.registry.deploy(NAME, production=1)
    assert main(["status", "-c", str(rollout.config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["rollout"]
    assert shown == {
        "state_file": str(rollout.state_file),
        "under_way": False,
        "note": "no rollout is under way",
        "step": None,
        "last_decision": None,
        "policy": None,
        "failures": [],
    }
    assert main(["status", "-c", str(rollout.config)]) == 0
    assert "no rollout is under way" in capsys.readouterr().out


def test_monitor_prints_each_guardrail_compactly(
    rollout: Rollout, capsys: pytest.CaptureFixture[str]
) -> None:
    _, decision = undecided_rollout(rollout.cfg, rollout.registry)
    _print(MonitorReport(at="2024-05-01T12:00:00+00:00", rollout=decision))
    out = capsys.readouterr().out
    assert "rollout: insufficient_data: canary v2 at 10% after 0s and 5 canary requests; " in out
    assert "; undecided: errors, latency" in out
    for g in decision.guardrails:
        assert f"  · {GuardrailView.from_result(g).line}" in out
    assert "· errors [undecided] estimate +0 interval [" in out
    assert out.count("more canary requests expected") == 1


def test_monitor_says_an_advance_in_one_short_line_beside_each_guardrail(
    rollout: Rollout, capsys: pytest.CaptureFixture[str]
) -> None:
    decision = advanced_rollout(rollout.cfg, rollout.registry)
    _print(MonitorReport(at="2024-05-01T12:00:00+00:00", rollout=decision))
    lines = capsys.readouterr().out.splitlines()
    shown = [g for g in decision.guardrails if g.state != "off"]
    assert lines[0].startswith(
        "2024-05-01T12:00:00+00:00 rollout: advance: canary v2 10% → 50% after 1m 1s and 100 "
        "canary requests; guardrails: "
    )
    assert len(lines[0]) < 180 and lines[1:] == [
        f"  · {GuardrailView.from_result(g).line}" for g in shown
    ]
    # The reason, which repeats every guardrail's message, is left to the audit log.
    [reason] = decision.reasons
    assert len(reason) > 500 and all(g.message in reason for g in shown if g.state == "pass")


def _fail_three_ticks(rollout: Rollout) -> None:
    """The real controller, its guardrails raising at three ticks in a row."""
    controller, _ = undecided_rollout(rollout.cfg, rollout.registry)

    def broken(*_: object) -> list[object]:
        raise KeyError("count_distinct")

    controller._read_outputs = broken  # type: ignore[method-assign]
    for _ in range(3):
        controller.tick()


def test_status_shows_the_policy_and_a_rollout_held_by_its_failing_monitor(
    rollout: Rollout, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_three_ticks(rollout)
    assert main(["status", "-c", str(rollout.config)]) == 0
    out = _visible(capsys.readouterr().out)
    assert "rollout held: the monitor failed 3 ticks in a row since" in out
    assert (
        "(rollout: KeyError: 'count_distinct'); fix the cause or run `mooring --debug monitor`"
        in out
    )
    assert "rollout policy bias_to_action: an undecided step advances after 30m (max_hold)" in out
    assert main(["status", "-c", str(rollout.config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rollout_policy"].startswith("bias_to_action")
    [failure] = shown["rollout"]["failures"]
    assert (failure["where"], failure["consecutive"], failure["held"]) == ("rollout", 3, True)


def test_monitor_keeps_running_and_exits_0_when_its_tick_fails(
    rollout: Rollout, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mooring.monitoring._rollout import RolloutController

    def broken(*_: object) -> object:
        raise RuntimeError("a guardrail met a column type it cannot read")

    monkeypatch.setattr(RolloutController, "_tick", broken)
    rollout.registry.deploy(NAME, production=1, canary=2, weight=10)
    args = [
        "monitor",
        "-c",
        str(rollout.config),
        "--no-drift",
        "--metrics-url",
        "http://127.0.0.1:9/m",
    ]
    assert main(args) == 0
    out = _visible(capsys.readouterr().out)
    assert "rollout: hold" in out
    assert "the monitor failed 1 tick since" in out
    assert "RuntimeError: a guardrail met a column type it cannot read" in out
