"""The rollout controller against a real SQLite registry and the server's own metric collectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mooring.config import MooringConfig
from mooring.config._monitoring import GuardrailsConfig
from mooring.formats._version_record import VersionRecord
from mooring.monitoring._alerts import AlertManager
from mooring.monitoring._guardrail_errors import error_guardrail
from mooring.monitoring._rollout import ACTOR, RolloutController
from mooring.monitoring._scrape import VersionCounters
from mooring.registry import Registry
from mooring.registry._approval import ApprovalError, ReleaseRules
from mooring.registry._judged import register_judged
from mooring.serving._metrics import ServingMetrics
from tests._support.alerts import Collect
from tests._support.rollout import NAME, Clock, project, registry_with_versions, serve


@pytest.fixture
def cfg(tmp_path: Path) -> MooringConfig:
    # Traffic here is counted by hand per version, not split by a router: the split's own
    # check is off here, and has its own tests (test_rollout_policy.py).
    return project(
        tmp_path / "home",
        rollout={
            "steps": [10, 50, 100],
            "min_requests": 20,
            "min_step_duration": "60s",
            "sample_ratio_tolerance": False,
            "guardrails": {"prediction_js": False},
        },
    )


@pytest.fixture
def registry(cfg: MooringConfig) -> Iterator[Registry]:
    reg = registry_with_versions(cfg)
    yield reg
    reg.close()


class Setup:
    def __init__(self, cfg: MooringConfig, registry: Registry) -> None:
        self.cfg = cfg
        self.registry = registry
        self.metrics = ServingMetrics()
        self.clock = Clock()
        self.sink = Collect()
        self.controller = self.new_controller()

    def new_controller(self) -> RolloutController:
        alerts = AlertManager([self.sink], cooldown_s=3600, clock=self.clock)
        return RolloutController(
            self.cfg, self.registry, metrics=self.metrics.render, alerts=alerts, clock=self.clock
        )


@pytest.fixture
def setup(cfg: MooringConfig, registry: Registry) -> Setup:
    return Setup(cfg, registry)


def test_idle_without_canary(setup: Setup) -> None:
    setup.registry.deploy(NAME, production=1)
    decision = setup.controller.tick()
    assert decision.action == "idle" and not decision.changed


def test_healthy_canary_advances_through_every_step_then_is_promoted(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    reg.deploy(NAME, production=1, canary=2, weight=10)
    actions = []
    for expected_weight in (10, 50, 100):
        assert reg.deployment(NAME).canary_weight == expected_weight
        first = setup.controller.tick()  # the step starts: counters taken here
        assert first.action == "insufficient_data"
        serve(metrics, 1, 200)
        serve(metrics, 2, 5)
        few = setup.controller.tick()
        assert few.action == "insufficient_data"
        assert "canary has 5 of 20 needed" in few.reasons[1]
        errors = next(g for g in few.guardrails if g.name == "errors")
        # Five clean answers do not bound the canary's error rate yet; the test says how
        # much more it needs.
        assert errors.state == "undecided" and errors.interval is not None
        assert errors.needed is not None and "more canary requests" in errors.needed
        serve(metrics, 2, 130)
        early = setup.controller.tick()
        assert early.action == "hold"
        clock.advance(61)
        decision = setup.controller.tick()
        actions.append((decision.action, decision.from_weight, decision.to_weight))
    assert actions == [("advance", 10, 50), ("advance", 50, 100), ("promote", 100, 100)]
    dep = reg.deployment(NAME)
    assert (dep.production, dep.canary, dep.canary_weight) == (2, None, 0)
    events = [e for e in reg.history(NAME) if e.actor == ACTOR]
    assert [e.action for e in events] == ["deploy", "deploy", "promote"]
    assert "advancing to 50%" in (events[0].reason or "")
    assert "135 requests" in (events[0].reason or "")
    assert [a.kind for a in setup.sink.alerts] == ["promote"]
    assert setup.controller.tick().action == "idle"


def test_error_breach_rolls_back_at_once_with_numbers_in_the_audit_log(setup: Setup) -> None:
    reg, metrics = setup.registry, setup.metrics
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    serve(metrics, 1, 500, errors=1)
    serve(metrics, 2, 8, errors=6)  # well before min_requests and min_step_duration
    decision = setup.controller.tick()
    assert decision.action == "rollback" and decision.to_weight == 0
    errors = next(g for g in decision.guardrails if g.name == "errors")
    assert errors.status == "breach"
    assert errors.numbers["canary_errors"] == 6 and errors.numbers["canary_requests"] == 8
    dep = reg.deployment(NAME)
    assert (dep.production, dep.canary, dep.canary_weight) == (1, None, 0)
    event = reg.history(NAME)[-1]
    assert event.actor == ACTOR
    assert "rolled back at 10%" in (event.reason or "")
    assert "0.7500 (6/8," in (event.reason or "")
    [alert] = setup.sink.alerts
    assert (alert.kind, alert.version, alert.severity) == ("rollback", 2, "page")


def test_errors_before_the_step_started_do_not_count(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    serve(metrics, 2, 10, errors=10)  # an earlier, failed attempt with the same version
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    serve(metrics, 1, 300)
    serve(metrics, 2, 140)
    clock.advance(61)
    assert setup.controller.tick().action == "advance"


def test_a_latency_regression_rolls_back_as_soon_as_it_is_conclusive(setup: Setup) -> None:
    reg, metrics = setup.registry, setup.metrics
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    serve(metrics, 1, 200, latency_s=0.003)
    serve(metrics, 2, 30, latency_s=0.08)
    decision = setup.controller.tick()
    assert decision.action == "rollback"
    latency = next(g for g in decision.guardrails if g.name == "latency")
    assert latency.state == "fail" and latency.numbers["canary_p99_ms"] > 50
    # More of the canary's batches lie beyond production's p50 plus the margin than half.
    assert latency.numbers["quantiles"]["p50"]["lower"] > 0


def test_a_slowdown_both_versions_share_is_not_the_canarys(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    # Enough batches to show even the p99 within its margin.
    serve(metrics, 1, 2500, latency_s=0.003)
    serve(metrics, 2, 500, latency_s=0.003)
    serve(metrics, 1, 1500, latency_s=0.08)  # the machine was busy for a while
    serve(metrics, 2, 300, latency_s=0.08)
    clock.advance(61)
    decision = setup.controller.tick()
    assert decision.action == "advance", decision.reasons
    latency = next(g for g in decision.guardrails if g.name == "latency")
    assert latency.state == "pass"


def test_canary_that_fails_to_load_is_rolled_back(setup: Setup) -> None:
    setup.registry.deploy(NAME, production=1, canary=3, weight=10)
    setup.controller.tick()
    setup.metrics.load_failures.labels(NAME, "3").inc()
    decision = setup.controller.tick()
    assert decision.action == "rollback"
    assert "failed to load" in decision.reasons[0]


def test_state_survives_a_restart_of_the_monitor(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    serve(metrics, 1, 300)
    serve(metrics, 2, 15)
    clock.advance(40)
    assert setup.controller.tick().action == "insufficient_data"
    restarted = setup.new_controller()  # a new process: state comes from rollout.json
    serve(metrics, 2, 100)
    clock.advance(25)
    decision = restarted.tick()
    # 115 canary requests and 65 s since the step began before the restart.
    assert decision.action == "advance", decision.reasons
    assert decision.numbers["canary_requests"] == 115


def test_without_state_the_step_starts_at_the_last_deployment_change(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    serve(metrics, 2, 50)
    reg.deploy(NAME, production=1, canary=2, weight=10)
    clock.now = 2_000_000_000.0  # long after the deployment record changed
    first = setup.controller.tick()
    assert first.action == "insufficient_data"  # counters are taken from the first scrape
    serve(metrics, 1, 300)
    serve(metrics, 2, 125)
    assert setup.controller.tick().action == "advance"


def test_a_manual_change_restarts_the_step(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    serve(metrics, 2, 40)
    clock.advance(100)
    reg.deploy(NAME, production=1, canary=2, weight=20, reason="by hand")
    decision = setup.controller.tick()
    assert decision.action == "insufficient_data" and decision.from_weight == 20


def test_a_staged_canary_at_zero_percent_starts_the_rollout(setup: Setup) -> None:
    setup.registry.deploy(NAME, production=1, canary=2, weight=0)
    decision = setup.controller.tick()
    assert (decision.action, decision.to_weight) == ("advance", 10)


def test_metrics_unreachable_holds_without_changing_anything(
    cfg: MooringConfig, registry: Registry
) -> None:
    registry.deploy(NAME, production=1, canary=2, weight=10)
    controller = RolloutController(
        cfg, registry, metrics_url="http://127.0.0.1:9/metrics", alerts=AlertManager([])
    )
    decision = controller.tick()
    assert decision.action == "insufficient_data"
    assert "cannot read metrics" in decision.reasons[0]
    assert registry.deployment(NAME).canary_weight == 10


def test_live_metric_guardrail_compares_canary_and_production(
    cfg: MooringConfig, registry: Registry
) -> None:
    registry.deploy(NAME, production=1, canary=2, weight=10)
    metrics = ServingMetrics()
    live = {1: (0.90, 400), 2: (0.85, 300)}
    controller = RolloutController(
        cfg,
        registry,
        metrics=metrics.render,
        alerts=AlertManager([]),
        live_metric=lambda version, since: live[version],
    )
    decision = controller.tick()
    assert decision.action == "rollback"
    guard = next(g for g in decision.guardrails if g.name == "live_metric")
    assert guard.status == "breach" and guard.numbers["drop"] == pytest.approx(0.05)


def test_error_guardrail_rules() -> None:
    rules = GuardrailsConfig()
    few = error_guardrail(VersionCounters(10, 8), VersionCounters(1000, 0), rules)
    assert few.state == "fail"  # 8 of 10 against none of 1,000: conclusive already
    same = error_guardrail(VersionCounters(10_000, 10), VersionCounters(100_000, 100), rules)
    assert same.state == "pass"
    # 1 error in 10 requests against a clean production: neither bounded nor conclusive.
    small = error_guardrail(VersionCounters(10, 1), VersionCounters(1000, 0), rules)
    assert small.state == "undecided" and small.needed is not None
    worse = error_guardrail(VersionCounters(10_000, 50), VersionCounters(100_000, 20), rules)
    assert worse.state == "fail" and "worse beyond its interval" in worse.message
    # No canary traffic is no evidence either way.
    idle = error_guardrail(VersionCounters(0, 0), VersionCounters(1000, 0), rules)
    assert idle.state == "undecided" and "no traffic is no evidence" in idle.message
    off = GuardrailsConfig(error_rate_margin=False)
    assert error_guardrail(VersionCounters(10, 10), VersionCounters(10, 0), off).status == "off"


def test_client_errors_the_canary_returns_for_traffic_production_answers_fail() -> None:
    rules = GuardrailsConfig()
    # Production refuses 2% of requests (the clients' bad input); the canary refuses all.
    production = VersionCounters(requests=1000, errors=0, client_errors=20)
    canary = VersionCounters(requests=40, errors=0, client_errors=40)
    result = error_guardrail(canary, production, rules)
    assert result.state == "fail" and "40 of them 4xx" in result.message
    # The same share of bad input on both sides is nobody's regression.
    fair = VersionCounters(requests=1000, errors=0, client_errors=20)
    assert error_guardrail(fair, production, rules).state == "pass"


def test_at_full_weight_errors_are_compared_with_production_over_the_rollout() -> None:
    rules = GuardrailsConfig()
    rollout = VersionCounters(requests=5000, errors=5)
    nothing = VersionCounters()
    result = error_guardrail(VersionCounters(2000, 2), nothing, rules, rollout)
    assert result.state == "pass"
    assert result.numbers["compared_with"] == "production over the rollout"


@pytest.mark.parametrize(
    ("policy", "action", "weight"),
    [
        ("strict", "insufficient_data", 10),
        ("rollback", "rollback", 0),
        ("bias_to_action", "advance", 50),
    ],
)
def test_an_undecided_step_holds_until_its_budget_then_its_policy_decides(
    tmp_path: Path, policy: str, action: str, weight: int
) -> None:
    cfg = project(
        tmp_path / "home",
        rollout={
            "steps": [10, 50, 100],
            "max_hold": "1h",
            "policy": policy,
            "sample_ratio_tolerance": False,
            "guardrails": {
                "prediction_js": False,
                "require_labels": True,
                "latency_margin": False,
            },
        },
    )
    reg = registry_with_versions(cfg)
    setup = Setup(cfg, reg)
    setup.controller.live_metric = lambda version, since: (0.8, 10)  # labels trickle in
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    serve(setup.metrics, 1, 300)
    serve(setup.metrics, 2, 150)
    decision = setup.controller.tick()
    assert decision.action == "insufficient_data"
    assert decision.reasons[0] == "undecided at 10%: 1 guardrail(s)"
    assert decision.reasons[1].startswith("live_metric: 10 canary and 10 production labels")
    assert setup.sink.alerts == []
    setup.clock.advance(3601)
    spent = setup.controller.tick()
    assert spent.action == action, spent.reasons
    assert reg.deployment(NAME).canary_weight == weight
    if policy == "strict":
        assert "policy = strict" in spent.reasons[0]
        assert [(a.kind, a.severity) for a in setup.sink.alerts] == [("rollout_stalled", "ticket")]
    else:
        event = reg.history(NAME)[-1]
        assert f"policy = {policy}" in (event.reason or "")
        # The audit reason holds the evidence: the undecided guardrail and its numbers.
        assert "live_metric: 10 canary and 10 production labels" in (event.reason or "")
    reg.close()


def test_a_canary_without_traffic_is_neither_rolled_back_nor_promoted(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    for _ in range(5):
        serve(metrics, 1, 300)
        clock.advance(120)
        decision = setup.controller.tick()
        assert decision.action == "insufficient_data"
        assert any("no traffic is no evidence" in r for r in decision.reasons)
    assert reg.deployment(NAME).canary_weight == 10


def test_a_conclusive_label_win_carries_an_undecided_guardrail(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    live = {1: (0.80, 4000, 0.007), 2: (0.90, 3000, 0.006)}
    setup.controller.live_metric = lambda version, since: live[version]
    reg.deploy(NAME, production=1, canary=2, weight=10)
    setup.controller.tick()
    serve(metrics, 1, 300)
    serve(metrics, 2, 25)  # too few requests to bound the error rate yet
    clock.advance(61)
    decision = setup.controller.tick()
    assert decision.action == "advance", decision.reasons
    errors = next(g for g in decision.guardrails if g.name == "errors")
    assert "labels decide (a conclusive win" in errors.message
    live_metric = next(g for g in decision.guardrails if g.name == "live_metric")
    assert live_metric.numbers["win"] is True


def _evaluated(cfg: MooringConfig, reg: Registry, auc: float, seed: int) -> int:
    from tests._support.rollout import BLESSED, artifact_dir

    lineage = {"data_fingerprint": "0" * 64, "eval_fingerprint": "e" * 64, "eval_data": "e.csv"}
    mv = register_judged(
        reg,
        name=NAME,
        artifact_dir=artifact_dir(cfg.home / "evaluated", seed),
        record=VersionRecord(lineage=lineage, gate=BLESSED, metrics={"auc": auc}),
    )
    return mv.version


@pytest.mark.parametrize("labels", [False, True])
def test_labels_decide_over_offline_numbers(setup: Setup, labels: bool) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    production = _evaluated(setup.cfg, reg, 0.80, seed=10)
    canary = _evaluated(setup.cfg, reg, 0.70, seed=11)  # worse on the same eval data
    live = {production: (0.80, 400), canary: (0.81, 400)}
    setup.controller.live_metric = lambda version, since: live[version] if labels else (None, 0)
    reg.deploy(NAME, production=production, canary=canary, weight=10)
    first = setup.controller.tick()
    if not labels:
        # Worse on the same evaluation data and nothing live to say otherwise: at once.
        assert first.action == "rollback"
        validated = next(g for g in first.guardrails if g.name == "validated")
        assert validated.status == "breach" and "worse by 0.1000" in validated.message
        return
    serve(metrics, production, 300)
    serve(metrics, canary, 150)
    clock.advance(61)
    decision = setup.controller.tick()
    validated = next(g for g in decision.guardrails if g.name == "validated")
    # Live labels say it is no worse: the offline number does not roll it back.
    assert decision.action == "advance", decision.reasons
    assert validated.status == "ok" and "labels decide" in validated.message
    assert "would fail" in validated.message


def test_an_unapproved_canary_holds_at_the_first_step_until_approved(setup: Setup) -> None:
    reg, metrics, clock = setup.registry, setup.metrics, setup.clock
    reg.deploy(NAME, production=1)
    reg.release = ReleaseRules(production_requires="approval", first_step=10)  # [10, 50, 100]
    # A canary given every request answers as production: the same rule holds.
    with pytest.raises(ApprovalError, match=f"^{NAME}@2 cannot become production"):
        reg.deploy(NAME, production=1, canary=2, weight=100)
    with pytest.raises(ApprovalError, match=rf"^{NAME}@2 cannot serve 99% of requests"):
        reg.deploy(NAME, production=1, canary=2, weight=99)
    reg.deploy(NAME, production=1, canary=2, weight=10)  # the first step needs no approval
    assert setup.controller.tick().action == "insufficient_data"
    serve(metrics, 1, 1800)
    serve(metrics, 2, 200)
    clock.advance(61)
    held = setup.controller.tick()
    assert held.action == "hold", held.reasons
    assert held.reasons[0].startswith(
        f"advance of {NAME}@2 to 50% refused: {NAME}@2 cannot serve 50% of requests as a "
        'canary: [registry] production_requires = "approval"'
    )
    assert f"'{ACTOR}' asked for 50%" in held.reasons[0]
    assert (reg.deployment(NAME).production, reg.deployment(NAME).canary_weight) == (1, 10)
    reg.approve(NAME, version=2, reason="canary numbers read", actor="reviewer")
    assert setup.controller.tick().action == "advance"
    assert reg.deployment(NAME).canary_weight == 50
    for weight, action in ((100, "advance"), (None, "promote")):
        assert setup.controller.tick().action == "insufficient_data"  # the step's counters
        serve(metrics, 1, 200)
        serve(metrics, 2, 200)
        clock.advance(61)
        assert setup.controller.tick().action == action
        if weight is not None:
            assert reg.deployment(NAME).canary_weight == weight
    assert reg.deployment(NAME).production == 2
    promoted = reg.history(NAME)[-1]
    assert (promoted.action, promoted.actor) == ("promote", ACTOR)
    assert promoted.reason is not None and "approved by reviewer (audit event " in promoted.reason
