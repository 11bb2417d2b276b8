"""A rollout.json written by the real rollout controller, left undecided at its first step.

Used by the tests of what ``mooring status``, ``mooring monitor`` and the dashboard show
of a rollout: the state file is the controller's own, never written by hand.
"""

from __future__ import annotations

from pathlib import Path

from mooring.config import MooringConfig
from mooring.monitoring._alerts import AlertManager
from mooring.monitoring._rollout import RolloutController
from mooring.monitoring._rollout_state import RolloutDecision
from mooring.registry import Registry
from mooring.serving._metrics import ServingMetrics
from tests._support.rollout import NAME, Clock, project, registry_with_versions, serve

#: The rollout settings of :func:`rollout_project`: 20 canary requests before a step ends.
ROLLOUT = {
    "steps": [10, 50, 100],
    "min_requests": 20,
    "min_step_duration": "60s",
    "guardrails": {"prediction_js": False},
}


def rollout_project(home: Path) -> MooringConfig:
    """The project of :func:`undecided_rollout` (``tests._support.rollout.project``)."""
    return project(home, rollout=ROLLOUT)


def write_config(path: Path, home: str) -> Path:
    """A mooring.toml for the same project, its home relative to the file."""
    path.write_text(
        f'[project]\nname = "{NAME}"\nhome = "{home}"\n\n[data]\ntrain = "train.csv"\n'
        'label = "class"\n\n[rollout]\nsteps = [10, 50, 100]\nmin_requests = 20\n'
        'min_step_duration = "60s"\n\n[rollout.guardrails]\nprediction_js = false\n',
        encoding="utf-8",
    )
    return path


def undecided_rollout(
    cfg: MooringConfig, registry: Registry
) -> tuple[RolloutController, RolloutDecision]:
    """Canary v2 at 10% over production v1, judged on 5 canary and 45 production requests.

    Two ticks of the real controller: the first starts the step, the second finds the
    error and latency guardrails undecided (too few canary requests).
    """
    registry.deploy(NAME, production=1, canary=2, weight=10)
    metrics = ServingMetrics()
    controller = RolloutController(
        cfg, registry, metrics=metrics.render, alerts=AlertManager([]), clock=Clock()
    )
    controller.tick()
    serve(metrics, 1, 45)  # the split the weight asks for: 5 of 50 requests
    serve(metrics, 2, 5)
    decision = controller.tick()
    assert decision.action == "insufficient_data", decision.reasons
    return controller, decision


def rolled_back_then_next(cfg: MooringConfig) -> None:
    """The controller rolls canary v2 back on errors; then a person deploys v3 as canary."""
    with registry_with_versions(cfg, 3) as registry:
        registry.deploy(NAME, production=1, canary=2, weight=10)
        metrics = ServingMetrics()
        controller = RolloutController(
            cfg, registry, metrics=metrics.render, alerts=AlertManager([]), clock=Clock()
        )
        controller.tick()
        serve(metrics, 1, 500, errors=1)
        serve(metrics, 2, 8, errors=6)
        assert controller.tick().action == "rollback"
        registry.deploy(NAME, production=1, canary=3, weight=10, reason="try v3")


def advanced_rollout(cfg: MooringConfig, registry: Registry) -> RolloutDecision:
    """Canary v2 advanced from 10% to 50%: 100 clean canary requests over 61 s, two ticks
    of the real controller."""
    registry.deploy(NAME, production=1, canary=2, weight=10)
    metrics, clock = ServingMetrics(), Clock()
    controller = RolloutController(
        cfg, registry, metrics=metrics.render, alerts=AlertManager([]), clock=clock
    )
    controller.tick()
    serve(metrics, 1, 900)
    serve(metrics, 2, 100)
    clock.advance(61)
    decision = controller.tick()
    assert decision.action == "advance", decision.reasons
    return decision
