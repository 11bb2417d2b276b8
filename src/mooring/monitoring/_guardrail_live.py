"""The live-metric guardrail: the canary's metric on label feedback against production's.

Examples:
    >>> live_metric_guardrail((0.80, 3000, 0.008), (0.90, 4000, 0.006),
    ...                       GuardrailsConfig()).state
    'fail'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mooring.monitoring._guardrails import (
    GuardrailResult,
    GuardrailsConfig,
    Status,
    judged,
    more_of,
)
from mooring.monitoring._sequential import SequentialTest

if TYPE_CHECKING:
    from mooring.monitoring._evidence import Evidence

__all__ = [
    "LIVE_METRIC",
    "LiveMetric",
    "LiveMetricGuardrail",
    "LiveUnread",
    "LiveValue",
    "live_metric_guardrail",
    "live_value",
]


#: ``(version, since) -> (metric value or None, labelled rows[, standard error])``.
LiveMetric = Callable[[int, datetime], tuple[Any, ...]]
#: A side of the live-metric comparison: value, labelled rows and its standard error.
LiveValue = tuple[float | None, int, float | None]


_LOWER_IS_BETTER = {"log_loss", "brier", "ece", "mse", "rmse", "mae", "mape", "error_rate"}


def _lower_is_better(metric: str) -> bool:
    return metric in _LOWER_IS_BETTER


def live_value(value: tuple[Any, ...]) -> LiveValue:
    """A live-metric callable's answer as ``(value, rows, standard error)``."""
    v, rows = value[0], int(value[1])
    se = value[2] if len(value) > 2 else None
    return (None if v is None else float(v)), rows, (None if se is None else float(se))


def live_metric_guardrail(
    canary: tuple[Any, ...], production: tuple[Any, ...], rules: GuardrailsConfig
) -> GuardrailResult:
    """The canary's live metric (from label feedback) against production's, sequentially.

    Each side is ``(value, labelled rows[, standard error])``. The estimate is how much
    worse the canary is; it fails when its interval lies above ``live_metric_drop`` and
    passes when below it. An interval wholly below 0 is a conclusive **win**
    (``numbers["win"]``): it carries the step while other guardrails are undecided. While
    undecided it holds the step only when its estimate leans worse than the margin (or
    with ``require_labels``): labels arrive slowly, and an equal canary would wait for
    thousands of them. Without
    any label on either side the guardrail is ``unavailable`` (the rollout is judged on
    its outputs) unless ``require_labels``. A metric without a known standard error is
    judged on its value alone once ``min_labels`` labels arrive.

    Examples:
        >>> live_metric_guardrail((0.80, 3000, 0.008), (0.90, 4000, 0.006),
        ...                       GuardrailsConfig()).state
        'fail'
    """
    (c_value, c_rows, c_se), (p_value, p_rows, p_se) = live_value(canary), live_value(production)
    metric = rules.live_metric
    numbers: dict[str, Any] = {"canary_labels": c_rows, "production_labels": p_rows}
    margin = rules.live_metric_drop
    if margin is None:
        return GuardrailResult("live_metric", "off", "live-metric guardrail is off")
    if c_rows == 0 and p_rows == 0 and not rules.require_labels:
        return GuardrailResult(
            "live_metric",
            "unavailable",
            "no labels for either version since the rollout started; judged on outputs",
            numbers=numbers,
        )
    advisory = not rules.require_labels
    if c_value is None or p_value is None or min(c_rows, p_rows) < rules.min_labels:
        return GuardrailResult(
            "live_metric",
            "insufficient_data",
            f"{c_rows} canary and {p_rows} production labels; its interval is trusted from "
            f"{rules.min_labels} each (no labels are no evidence)",
            numbers=numbers,
            needed=f"{max(rules.min_labels - min(c_rows, p_rows), 0)} more labels",
            advisory=advisory,
        )
    numbers.update(canary=c_value, production=p_value)
    drop = (c_value - p_value) if _lower_is_better(metric) else (p_value - c_value)
    numbers["drop"] = drop
    summary = (
        f"live {metric} canary {c_value:.4f} vs production {p_value:.4f} "
        f"({c_rows} vs {p_rows} labels)"
    )
    if c_se is None or p_se is None:
        status: Status = "breach" if drop > margin else "ok"
        return GuardrailResult(
            "live_metric",
            status,
            f"{summary}: worse by {drop:.4f} (margin {margin:g}; no standard error is known "
            f"for {metric}, so judged on the value alone)",
            value=drop,
            threshold=margin,
            numbers=numbers,
        )
    variance = c_se**2 + p_se**2
    numbers["standard_error"] = math.sqrt(variance)
    test = SequentialTest(pass_below=margin, fail_above=margin, tau=margin, alpha=rules.alpha)
    judgement = test.judge(drop, variance)
    numbers["win"] = judgement.upper < 0.0
    if numbers["win"]:
        summary += ": conclusively better"
    result = judged(
        "live_metric",
        judgement,
        summary,
        unit="",
        numbers=numbers,
        more=more_of(min(c_rows, p_rows), "labels per version"),
    )
    if result.status == "insufficient_data":
        if advisory and drop <= margin:
            result = replace(
                result,
                advisory=True,
                message=result.message + "; the labels lean no worse than the margin, so the "
                "step does not wait for them (require_labels = true makes it)",
            )
        else:
            result = replace(
                result,
                message=result.message + "; the labels lean worse than the margin: the step "
                "waits for them",
            )
    return result


@dataclass(frozen=True, slots=True)
class LiveUnread:
    """Label feedback that could not be read at a tick: why, and whether none exists at
    all (``absent``: the rollout is then judged on its outputs, unless ``require_labels``)."""

    message: str
    absent: bool = False


@dataclass(frozen=True, slots=True)
class LiveMetricGuardrail:
    """The live-metric guardrail on a tick's evidence: both versions' live metric, the
    reason it could not be read, or None (no label feedback source)."""

    name: str = "live_metric"

    def judge(self, evidence: Evidence, rules: GuardrailsConfig) -> tuple[GuardrailResult, ...]:
        """:func:`live_metric_guardrail` on the labels read, or why it cannot judge."""
        live = evidence.live
        if rules.live_metric_drop is None:
            return (GuardrailResult("live_metric", "off", "live-metric guardrail is off"),)
        if live is None:
            return (GuardrailResult("live_metric", "off", "no label feedback source"),)
        if isinstance(live, LiveUnread):
            status: Status = (
                "unavailable" if live.absent and not rules.require_labels else "insufficient_data"
            )
            return (GuardrailResult("live_metric", status, f"live metrics: {live.message}"),)
        return (live_metric_guardrail(live[0], live[1], rules),)


LIVE_METRIC = LiveMetricGuardrail()
