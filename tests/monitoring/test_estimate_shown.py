"""An estimate whose assumption does not hold on its window (``Estimate.unreliable``) is
shown as "unreliable: <why>", with no number, beside the evaluation value, and judges
nothing: the ``estimated`` guardrail neither passes nor fails on it (through the rollout
controller), and the monitor holds its count of worse windows and sends a ticket."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from mooring.config import MooringConfig
from mooring.monitoring import _estimate
from mooring.monitoring._alerts import AlertManager
from mooring.monitoring._estimate import (
    Estimate,
    EstimatedMetric,
    compare_estimates,
    estimate_line,
    fit_reference,
)
from mooring.monitoring._monitor import Monitor
from mooring.monitoring._rollout import RolloutController
from mooring.registry import Registry
from mooring.serving._metrics import ServingMetrics
from tests._support.alerts import Collect
from tests._support.estimation import log_scores, register_scored
from tests._support.rollout import NAME, Clock, project, serve

Floats = npt.NDArray[np.float64]
MOVED = "scores moved beyond their natural variation (distance 0.31, natural 0.04)"


def _metric(value: float, half: float = 0.005) -> EstimatedMetric:
    return EstimatedMetric(value, value - half, value + half)


@pytest.mark.parametrize("side", ["canary", "production"])
def test_an_unreliable_estimate_neither_passes_nor_fails_and_shows_no_number(side: str) -> None:
    worse, better = Estimate(3000, {"auc": _metric(0.80)}), Estimate(3000, {"auc": _metric(0.95)})
    shown = compare_estimates(worse, better, "auc", 0.02, numbers={"canary_rows": 3000})
    assert shown.status == "breach", shown.message  # reliable: 0.15 worse fails
    marked = dataclasses.replace(worse if side == "canary" else better, unreliable=MOVED)
    mine, theirs = (marked, better) if side == "canary" else (worse, marked)
    result = compare_estimates(mine, theirs, "auc", 0.02, names=("income@2", "income@1"))
    assert (result.status, result.state, result.value, result.interval) == (
        "unavailable",
        "unavailable",
        None,
        None,
    )
    who = "income@2" if side == "canary" else "income@1"
    assert result.message.startswith(f"unreliable: {who}: {MOVED}; "), result.message
    assert "0.8" not in result.message and "0.95" not in result.message
    # The numbers keep both estimates, each marked.
    assert result.numbers[side] == {**marked.metrics["auc"].to_dict(), "unreliable": MOVED}
    other = "production" if side == "canary" else "canary"
    assert result.numbers[other]["unreliable"] is None


def test_the_monitors_line_says_unreliable_beside_the_evaluation_value() -> None:
    found: dict[str, Any] = {
        "version": 3,
        "rows": 1800,
        "metric": "auc",
        "evaluation": 0.969,
        "estimate": {"value": 0.9961, "low": 0.9950, "high": 0.9972},
        "worse_windows": 2,
    }
    assert estimate_line(found) == (
        "v3 estimated auc 0.9961 (0.9950–0.9972) · evaluation 0.9690, over 1,800 rows before "
        "labels; worse than it 2 window(s) in a row"
    )
    line = estimate_line({**found, "unreliable": MOVED})
    assert line == (
        f"v3 estimated auc unreliable: {MOVED} · evaluation 0.9690, over 1,800 rows before labels"
    )
    assert "0.996" not in line
    assert "no evaluation value recorded" in estimate_line({**found, "evaluation": None})


def _scored(
    cfg: MooringConfig, registry: Registry, noise: float
) -> tuple[int, int, Callable[[], None]]:
    """Production (its scores the true probabilities) and a canary whose scores carry
    ``noise`` on the logit scale, each with its map from the same held-out rows (the
    canary's references hold production's too), and what logs 1,500 served rows of each."""
    rng = np.random.default_rng(8)
    held = np.clip(rng.beta(2, 3, 6000), 1e-4, 1 - 1e-4)
    labels = rng.random(held.size) < held

    def noisy(p: Floats) -> Floats:
        logit = np.log(p / (1.0 - p)) + rng.normal(0.0, noise, p.size)
        out: Floats = 1.0 / (1.0 + np.exp(-logit))
        return out

    production_ref = fit_reference(held, labels, threshold=0.5).to_dict()
    canary_ref = fit_reference(noisy(held), labels, threshold=0.5).to_dict()
    canary_ref["production"] = {**production_ref, "version": 1}
    root = cfg.home / "src"
    production = register_scored(registry, root, 0, production_ref, metrics={"auc": 0.73})
    canary = register_scored(registry, root, 1, canary_ref, metrics={"auc": 0.73})
    served = np.clip(rng.beta(2, 3, 1500), 1e-4, 1 - 1e-4)
    log = cfg.home / "predictions"

    def traffic() -> None:
        log_scores(log, served, version=production.version, prefix="p")
        log_scores(log, noisy(served), version=canary.version, prefix="c")

    return production.version, canary.version, traffic


def _mark(monkeypatch: pytest.MonkeyPatch, version: int, why: str) -> None:
    """The estimate of ``version`` says its assumption does not hold (as the estimator's
    checks do on a window whose scores moved), its metrics kept."""
    real = _estimate.version_estimate

    def marked(mv: Any, *args: Any, **kwargs: Any) -> Estimate:
        found = real(mv, *args, **kwargs)
        return dataclasses.replace(found, unreliable=why) if mv.version == version else found

    monkeypatch.setattr(_estimate, "version_estimate", marked)


@pytest.mark.parametrize("unreliable", [False, True])
def test_the_controller_neither_rolls_back_nor_promotes_on_an_unreliable_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unreliable: bool
) -> None:
    # The canary's scores are noisier: estimated on the same traffic, its AUC is far below
    # production's, and the guardrail rolls it back before any label. Once its estimate
    # is unreliable on the window, the same numbers judge nothing: the other guardrails
    # decide, and they hold the step (its minimum duration is not over).
    cfg = project(
        tmp_path / "home",
        rollout={
            "steps": [10, 50, 100],
            "min_requests": 20,
            "min_step_duration": "1h",
            "policy": "rollback",
            "sample_ratio_tolerance": False,
            "guardrails": {"prediction_js": False, "min_prediction_rows": 200},
        },
    )
    registry = Registry.from_config(cfg)
    production, canary, traffic = _scored(cfg, registry, noise=2.0)
    if unreliable:
        _mark(monkeypatch, canary, MOVED)
    metrics, clock, sink = ServingMetrics(), Clock(), Collect()
    controller = RolloutController(
        cfg,
        registry,
        metrics=metrics.render,
        alerts=AlertManager([sink], cooldown_s=3600, clock=clock),
        clock=clock,
    )
    registry.deploy(NAME, production=production, canary=canary, weight=10)
    controller.tick()
    traffic()
    serve(metrics, production, 300)
    serve(metrics, canary, 150)
    decision = controller.tick()
    estimated = next(g for g in decision.guardrails if g.name == "estimated")
    if not unreliable:
        assert decision.action == "rollback", decision.reasons
        assert estimated.status == "breach", estimated.message
        registry.close()
        return
    assert decision.action == "hold", decision.reasons
    assert estimated.status == "unavailable", estimated.message
    assert estimated.message.startswith(f"unreliable: {NAME}@{canary}: {MOVED}")
    assert estimated.numbers["canary"]["unreliable"] == MOVED
    assert estimated.numbers["canary"]["value"] < estimated.numbers["production"]["value"]
    # Past the step's budget under policy = rollback, an unreliable estimate is not what
    # is waited for: nothing is undecided, so the step moves on by the other guardrails.
    clock.advance(3601)
    later = controller.tick()
    assert later.action == "advance", later.reasons
    assert registry.deployment(NAME).canary == canary
    assert [a.kind for a in sink.alerts] == []
    registry.close()


def test_the_monitor_holds_its_count_and_tickets_an_unreliable_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Production's window is estimated far below its evaluation value; while the estimate
    # is unreliable the count of worse windows neither grows nor resets, no run starts,
    # and a ticket says why with no number.
    cfg = project(tmp_path / "home", monitoring={"window_rows": 600})
    registry = Registry.from_config(cfg)
    rng = np.random.default_rng(0)
    held = rng.random(4000)
    reference = fit_reference(held, rng.random(4000) < held, threshold=0.5)
    mv = register_scored(registry, cfg.home / "src", 0, reference.to_dict(), metrics={"auc": 0.83})
    registry.deploy(NAME, production=mv.version)
    clock, sink = Clock(), Collect()
    monitor = Monitor(
        cfg,
        registry,
        metrics=lambda: "",
        drift_interval_s=0.0,
        drift_check=lambda: None,
        alerts=AlertManager([sink], cooldown_s=3600, clock=clock),
        clock=clock,
    )
    log = cfg.home / "predictions"
    log_scores(log, 0.45 + 0.1 * rng.random(600), prefix="a")
    first = monitor.tick()
    assert first.estimated is not None and first.estimated["worse_windows"] == 1
    assert first.estimated["unreliable"] is None and sink.alerts == []
    _mark(monkeypatch, mv.version, MOVED)
    log_scores(log, 0.45 + 0.1 * rng.random(600), prefix="b")
    clock.advance(60)
    held_back = monitor.tick()
    found = held_back.estimated
    assert found is not None and found["unreliable"] == MOVED, found
    assert found["worse_windows"] == 1 and found["estimate"]["high"] < 0.81  # kept, marked
    [alert] = sink.alerts
    assert (alert.kind, alert.severity, alert.version) == ("estimate_unreliable", "ticket", 1)
    assert f"unreliable: {MOVED} · evaluation 0.8300" in alert.summary
    assert "0.5" not in alert.summary.split("unreliable")[1]
    registry.close()
