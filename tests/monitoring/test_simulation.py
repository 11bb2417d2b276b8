"""Simulated rollouts through the controller's own guardrail and step functions, known truth.

Seeds are fixed, so every figure here is deterministic; the full table (hundreds of
rollouts per scenario, beside the fixed-horizon rules) is ``benchmarks/bench_rollout.py``.
"""

from __future__ import annotations

from statistics import median

import pytest

from mooring.config._monitoring import GuardrailsConfig
from mooring.monitoring._simulation import (
    Scenario,
    latency_shapes,
    latency_truth,
    output_judge,
    output_scenarios,
    simulate,
    simulate_outputs,
    summarise,
)

RULES = GuardrailsConfig()
ROLLOUT = (0.05, 0.25, 0.5, 1.0)


@pytest.mark.parametrize(("share", "ticks"), [(0.01, 3), (0.05, 2), (0.5, 1)])
def test_a_broken_canary_is_rolled_back_within_two_ticks(share: float, ticks: int) -> None:
    broken = Scenario("broken", "worse", share, canary_error_rate=1.0)
    outcomes = [simulate(broken, RULES, seed=seed) for seed in range(20)]
    assert {o.action for o in outcomes} == {"rollback"}
    # At 1% a tick brings the canary 3 requests, and now and then none.
    assert max(o.ticks for o in outcomes) <= ticks
    assert "errors" in outcomes[0].reasons[0]


def test_an_equal_canary_at_five_percent_passes_its_step_without_a_false_rollback() -> None:
    equal = Scenario("equal", "equal", 0.05)
    summary = summarise(equal, RULES, runs=20, seed=1)
    assert summary.false_rollback_rate == 0.0 and summary.undecided_rate == 0.0
    # 300 requests a tick, 15 of them the canary's: the p90 within its margin takes a
    # few hundred canary batches (the p99, which would take thousands, leans within).
    assert summary.median_ticks <= 40


def test_a_healthy_rollout_finishes_every_step_unaided() -> None:
    healthy = Scenario("healthy", "equal", 0.05, steps=ROLLOUT, labels=True)
    outcomes = [simulate(healthy, RULES, seed=seed) for seed in range(10)]
    assert {o.action for o in outcomes} == {"promote"}
    assert median(o.ticks for o in outcomes) <= 45


def test_each_latency_shape_is_what_the_latency_rule_says_of_it() -> None:
    for scenario in latency_shapes(0.05):
        expected = "harmful" if scenario.truth == "worse" else "healthy"
        assert latency_truth(scenario, RULES) == expected, scenario.name


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("median +0.24 ms, tail faster (retrained) 25%", "advance"),
        ("heavier tail (p99 +34%) 25%", "rollback"),
    ],
)
def test_a_faster_tail_never_holds_a_slower_median_and_a_slower_tail_is_rolled_back(
    name: str, action: str
) -> None:
    scenario = next(s for s in latency_shapes(0.25) if s.name == name)
    outcomes = [simulate(scenario, RULES, seed=seed) for seed in range(5)]
    assert {o.action for o in outcomes} == {action}


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario("errors +10 points", "worse", 0.05, canary_error_rate=0.102),
        Scenario("slower beyond the margin", "worse", 0.25, canary_latency_factor=1.6),
        Scenario("worse on labels", "worse", 0.5, labels=True, canary_auc=0.80),
    ],
    ids=lambda s: s.name,
)
def test_a_worse_canary_is_never_promoted(scenario: Scenario) -> None:
    summary = summarise(scenario, RULES, runs=30, seed=2)
    assert summary.false_promotion_rate == 0.0
    assert summary.undecided_rate == 0.0  # rolled back, not merely held


def test_no_traffic_is_no_evidence() -> None:
    idle = Scenario("idle", "equal", 0.0)
    outcome = simulate(idle, RULES, seed=0, max_ticks=50)
    assert (outcome.action, outcome.ticks) == ("undecided", 50)


# -- outputs on drifted traffic, both versions evaluated on a stale file -----------------
@pytest.mark.parametrize(
    ("name", "today", "own_only"),
    [
        ("covariate shift, retrain 25%", "advance", "rollback"),
        ("concept shift, retrain 25%", "advance", "rollback"),
        ("concept shift, serving skew 25%", "rollback", "rollback"),
        ("concept shift, inverted 25%", "rollback", "rollback"),
        ("no drift, retrain 25%", "advance", "advance"),
        ("no drift, serving skew 25%", "rollback", "rollback"),
    ],
)
def test_a_drift_fixing_retrain_on_a_stale_eval_file_advances_and_a_harmful_one_does_not(
    name: str, today: str, own_only: str
) -> None:
    scenario = next(s for s in output_scenarios(0.25) if s.name == name)
    now = [simulate_outputs(scenario, RULES, seed=seed) for seed in range(3)]
    before = output_judge(RULES, production_reference=False)
    old = [simulate_outputs(scenario, RULES, seed=seed, judge=before) for seed in range(3)]
    assert {o.action for o in now} == {today}, now[0].reasons
    assert {o.action for o in old} == {own_only}
    # 75 canary requests a tick: judged at the tick it has 200 logged outputs.
    assert max(o.ticks for o in now) <= 4
    if today == "rollback":
        assert now[0].reasons[0].startswith("outputs: ")
