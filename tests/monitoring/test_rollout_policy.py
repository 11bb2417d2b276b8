"""The rollout controller's end-of-horizon policy, its check of the traffic split, its
failing ticks and its configuration read again at every tick (fake clock, real counters)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config import MooringConfig
from mooring.config._monitoring import RolloutConfig
from mooring.errors import ConfigError
from mooring.monitoring._alerts import ROLLOUT_KINDS, AlertManager
from mooring.monitoring._monitor import Monitor
from mooring.monitoring._rollout import ACTOR, RolloutController
from mooring.monitoring._rollout_view import read_rollout
from mooring.monitoring._sample_ratio import sample_ratio, split_evidence
from mooring.serving._metrics import ServingMetrics
from tests._support.alerts import Collect
from tests._support.rollout import NAME, Clock, project, registry_with_versions, serve

#: Labels that trickle in (10 a version): the live metric stays undecided for ever, as a
#: guardrail on real traffic may, so only the policy can end a step.
TRICKLE = (0.8, 10)


def _rollout(**extra: Any) -> dict[str, Any]:
    settings_: dict[str, Any] = {
        "steps": [5, 25, 50, 100],
        "guardrails": {
            "prediction_js": False,
            "latency_margin": False,
            "require_labels": True,
        },
    }
    settings_.update(extra)
    return settings_


class Rig:
    """A controller over a real registry, the server's own metric collectors and a clock."""

    def __init__(self, home: Path, config_path: Path | None = None, **rollout: Any) -> None:
        self.cfg = project(home, rollout=_rollout(**rollout))
        self.registry = registry_with_versions(self.cfg)
        self.metrics = ServingMetrics()
        self.clock = Clock()
        self.sink = Collect()
        self.controller = RolloutController(
            self.cfg,
            self.registry,
            metrics=self.metrics.render,
            alerts=AlertManager([self.sink], cooldown_s=3600, clock=self.clock),
            clock=self.clock,
            config_path=config_path,
        )
        self.controller.live_metric = lambda version, since: TRICKLE

    def split(self, total: int, *, errors: int = 0) -> None:
        """``total`` requests split at the canary's weight, as the server's router does."""
        weight = self.registry.deployment(NAME).canary_weight
        canary = round(total * weight / 100)
        serve(self.metrics, 1, total - canary)
        serve(self.metrics, 2, canary, errors=errors)

    def kinds(self) -> list[str]:
        kinds = [a.kind for a in self.sink.alerts]
        assert set(kinds) <= set(ROLLOUT_KINDS), kinds  # every kind is documented
        return kinds


MakeRig = Callable[..., Rig]


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[MakeRig]:
    """Rigs under ``tmp_path/home`` (keyword arguments: ``[rollout]`` settings); closed after."""
    made: list[Rig] = []

    def make(config_path: Path | None = None, **rollout: Any) -> Rig:
        made.append(Rig(tmp_path / "home", config_path, **rollout))
        return made[-1]

    yield make
    for one in made:
        one.registry.close()


@pytest.fixture
def rig(make_rig: MakeRig) -> Rig:
    return make_rig()


def test_bias_to_action_takes_a_healthy_undecided_canary_to_production_within_the_horizon(
    rig: Rig,
) -> None:
    reg = rig.registry
    reg.deploy(NAME, production=1, canary=2, weight=5)
    seen = []
    for _ in range(4):
        rig.controller.tick()  # the step starts
        rig.split(2000)
        held = rig.controller.tick()
        assert held.action == "insufficient_data", held.reasons
        rig.clock.advance(1801)  # the default budget: 30 minutes a step
        rig.split(2000)
        decision = rig.controller.tick()
        seen.append((decision.action, decision.to_weight))
    assert seen == [("advance", 25), ("advance", 50), ("advance", 100), ("promote", 100)]
    assert reg.deployment(NAME).production == 2
    events = [e for e in reg.history(NAME) if e.actor == ACTOR]
    first, last = events[0].reason or "", events[-1].reason or ""
    # Audited with the evidence: the undecided guardrail and its numbers.
    assert "advanced on schedule" in first and "policy = bias_to_action" in first
    assert "live_metric: 10 canary and 10 production labels" in first
    assert "promoted at the horizon" in last
    assert "passed every step it ran (5%, 25%, 50%, 100%)" in last


def test_bias_to_action_rolls_back_a_harmful_canary(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    rig.split(2000, errors=40)  # 40% of the canary's answers fail
    decision = rig.controller.tick()
    assert decision.action == "rollback"
    assert rig.registry.deployment(NAME).canary is None


def test_bias_to_action_does_not_advance_a_canary_that_got_no_traffic(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    rig.clock.advance(1801)
    decision = rig.controller.tick()
    assert decision.action == "insufficient_data"
    assert "answered no request at this step" in decision.reasons[0]
    assert rig.registry.deployment(NAME).canary_weight == 5


def test_strict_holds_at_the_horizon_and_alerts(make_rig: MakeRig) -> None:
    rig = make_rig(policy="strict")
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    rig.split(2000)
    rig.clock.advance(1801)
    decision = rig.controller.tick()
    assert decision.action == "insufficient_data"
    assert "policy = strict" in decision.reasons[0]
    assert rig.kinds() == ["rollout_stalled"]


def test_the_old_on_max_hold_key_is_read_as_the_policy_it_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="mooring.config"):
        assert RolloutConfig(on_max_hold="hold_and_alert").policy == "strict"
    assert 'replace it with policy = "strict"' in caplog.text
    assert RolloutConfig(on_max_hold="advance").policy == "bias_to_action"
    assert RolloutConfig(on_max_hold="rollback").policy == "rollback"
    assert RolloutConfig().policy == "bias_to_action"
    mapping = {
        "project": {"name": NAME},
        "data": {"train": "t.csv", "label": "y"},
        "rollout": {"on_max_hold": "advance", "policy": "strict"},
    }
    with pytest.raises(ConfigError, match="on_max_hold = 'advance' means policy"):
        MooringConfig.from_mapping(mapping)


def test_the_policy_is_recorded_for_status(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    view = read_rollout(rig.controller.state_path, canary=2)
    assert view.policy is not None and view.policy.startswith("bias_to_action")
    assert "promoted within 2h (5%, 25%, 50%, 100%)" in view.policy


# -- the split ---------------------------------------------------------------------------
def test_a_skewed_split_holds_the_rollout_and_says_so(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    rig.split(200)  # the canary answers: the split is counted from this tick on
    assert rig.controller.tick().numbers["sample_ratio"]["judged"] is False
    serve(rig.metrics, 1, 3952)
    serve(rig.metrics, 2, 48)  # 1.2% of 4,000 at a 5% weight
    decision = rig.controller.tick()
    assert decision.action == "hold"
    assert decision.reasons[0].startswith(
        "held at 5%: canary got 1.2% of 4,000 requests at a 5% weight: sample-ratio mismatch"
    )
    assert rig.kinds() == ["sample_ratio_mismatch"]
    # Past the budget a mismatched step still neither advances nor is promoted.
    rig.clock.advance(7200)
    assert rig.controller.tick().action == "hold"
    assert rig.registry.deployment(NAME).canary_weight == 5
    # A failing guardrail still rolls the canary back.
    serve(rig.metrics, 2, 30, errors=30)
    assert rig.controller.tick().action == "rollback"


def test_a_split_at_the_weight_is_not_a_mismatch(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    rig.split(200)
    rig.controller.tick()
    rig.split(4000)
    decision = rig.controller.tick()
    assert decision.action == "insufficient_data"
    split = decision.numbers["sample_ratio"]
    assert split["mismatch"] is False and split["share"] == pytest.approx(0.05)
    assert split["total"] == 4000
    assert "consistent with the weight" in split["message"]


def test_a_canary_still_loading_when_the_step_began_is_not_a_mismatch(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    serve(rig.metrics, 1, 3000)  # the canary loads: production answers everything
    assert rig.controller.tick().numbers["sample_ratio"]["judged"] is False
    rig.split(2000)  # ready: the first tick that finds it answering starts the count
    assert rig.controller.tick().numbers["sample_ratio"]["judged"] is False
    rig.split(2000)
    decision = rig.controller.tick()
    split = decision.numbers["sample_ratio"]
    assert split["judged"] is True and split["mismatch"] is False and split["total"] == 2000
    assert decision.action == "insufficient_data"
    assert rig.kinds() == []


def test_the_split_check_is_off_with_false_and_at_full_weight() -> None:
    assert not sample_ratio(0, 4000, 5, alpha=0.01, tolerance=None).judged
    assert not sample_ratio(10, 0, 100, alpha=0.01, tolerance=0.2).mismatch
    # Shown off the weight, but within the tolerance: not a mismatch.
    near = sample_ratio(5300, 94700, 5, alpha=0.01, tolerance=0.2)
    assert near.evidence > 100 and not near.mismatch


@settings(max_examples=30, deadline=None)
@given(
    weight=st.sampled_from([1, 5, 10, 25, 50, 90]),
    total=st.integers(min_value=1, max_value=100_000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a_split_drawn_at_the_weight_is_rarely_a_mismatch(
    weight: int, total: int, seed: int
) -> None:
    import numpy as np

    canary = int(np.random.default_rng(seed).binomial(total, weight / 100))
    # The Bayes factor's threshold 1/alpha is crossed by chance with probability <= alpha;
    # a million-fold (alpha 1e-6) never happens in 30 draws unless the test is wrong.
    assert split_evidence(canary, total, weight / 100) < 1e6


# -- failing ticks -----------------------------------------------------------------------
class ArrowNotImplementedError(Exception):
    """Stands for the error a guardrail met on a dictionary-encoded text column."""


def _break(controller: RolloutController) -> None:
    def fail(*_: Any) -> Any:
        raise ArrowNotImplementedError("Function 'count_distinct' has no kernel")

    controller._read_outputs = fail  # type: ignore[method-assign]


def test_a_failing_tick_is_recorded_alerted_and_holds_after_n_in_a_row(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    rig.controller.tick()
    original = rig.controller._read_outputs
    _break(rig.controller)
    decisions = []
    for _ in range(3):
        rig.clock.advance(10)
        rig.split(400)
        decisions.append(rig.controller.tick())
    assert [d.action for d in decisions] == ["hold", "hold", "hold"]
    assert "the monitor failed 1 tick since" in decisions[0].reasons[0]
    assert "ArrowNotImplementedError: Function 'count_distinct'" in decisions[0].reasons[0]
    assert decisions[2].reasons[0].startswith("held: the monitor failed 3 ticks in a row")
    assert rig.kinds() == ["monitor_failed", "monitor_held"]  # then the cooldown
    view = read_rollout(rig.controller.state_path, canary=2)
    [failure] = view.failures
    assert (failure.where, failure.consecutive, failure.held) == ("rollout", 3, True)
    assert view.held_by_failures is failure
    assert view.decision is not None and view.decision.action == "hold"
    assert rig.registry.deployment(NAME).canary_weight == 5
    rig.controller._read_outputs = original  # type: ignore[method-assign]
    rig.controller.tick()
    assert read_rollout(rig.controller.state_path, canary=2).failures == []


def test_the_monitor_carries_on_past_a_part_that_raises(rig: Rig) -> None:
    rig.registry.deploy(NAME, production=1)

    def broken_drift() -> Any:
        raise ValueError("a column type the check cannot read")

    monitor = Monitor(
        rig.cfg,
        rig.registry,
        metrics=rig.metrics.render,
        drift_interval_s=0.0,
        drift_check=broken_drift,
        alerts=AlertManager([rig.sink], clock=rig.clock),
        clock=rig.clock,
    )
    report = monitor.tick()
    assert report.errors == ["drift: ValueError: a column type the check cannot read"]
    [failure] = read_rollout(monitor.rollout.state_path, canary=None).failures
    assert failure.where == "drift" and not failure.held
    monitor.drift_check = lambda: None
    rig.clock.advance(1)
    assert monitor.tick().errors == []
    assert read_rollout(monitor.rollout.state_path, canary=None).failures == []


# -- the configuration, read again ---------------------------------------------------------
def _write(path: Path, home: Path, steps: list[int]) -> None:
    path.write_text(
        f'[project]\nname = "{NAME}"\nhome = "{home}"\n\n[data]\ntrain = "t.csv"\n'
        f'label = "y"\n\n[rollout]\nsteps = {steps}\n\n[rollout.guardrails]\n'
        "prediction_js = false\nlatency_margin = false\nrequire_labels = true\n",
        encoding="utf-8",
    )


def test_steps_changed_in_the_file_take_effect_and_the_promotion_names_those_run(
    tmp_path: Path, make_rig: MakeRig
) -> None:
    home, config = tmp_path / "home", tmp_path / "mooring.toml"
    _write(config, home, [5, 25, 50, 100])
    rig = make_rig(config_path=config)
    rig.registry.deploy(NAME, production=1, canary=2, weight=20)  # by hand, off the steps
    for steps, expected in (([25, 50, 100], 25), ([25, 100], 100)):
        _write(config, home, steps)
        first = rig.controller.tick()
        assert "[rollout] changed in" in first.numbers["config"]
        rig.split(2000)
        rig.clock.advance(1801)
        assert rig.controller.tick().to_weight == expected
    rig.controller.tick()
    rig.split(2000)
    rig.clock.advance(1801)
    assert rig.controller.tick().action == "promote"
    reason = rig.registry.history(NAME)[-1].reason or ""
    assert "passed every step it ran (20%, 25%, 100%)" in reason


def test_a_broken_file_keeps_the_last_rollout_settings(tmp_path: Path, make_rig: MakeRig) -> None:
    home, config = tmp_path / "home", tmp_path / "mooring.toml"
    _write(config, home, [5, 25, 50, 100])
    rig = make_rig(config_path=config)
    rig.registry.deploy(NAME, production=1, canary=2, weight=5)
    config.write_text("[rollout\n", encoding="utf-8")
    decision = rig.controller.tick()
    assert "not read again" in decision.numbers["config"]
    assert rig.controller.cfg.rollout.steps == [5, 25, 50, 100]
