"""The guardrails that compare a canary with production, one function per signal.

Each returns a :class:`GuardrailResult`: ``ok``, ``breach``, ``insufficient_data`` (not
enough evidence yet: never a reason to roll back, and the step waits for it),
``unavailable`` (no source of evidence at all, e.g. no label feedback: reported, and the
step does not wait) or ``off``, with the numbers behind it. The rollout controller
(:mod:`mooring.monitoring.rollout`) feeds them the differences of the server's counters
over the current step, the prediction log and label feedback; the checks of the canary's
outputs live in :mod:`mooring.monitoring.output_guardrails`.

Example:
    >>> bad = VersionCounters(requests=100, errors=20)
    >>> good = VersionCounters(requests=2000, errors=2)
    >>> error_guardrail(bad, good, GuardrailsConfig()).status
    'breach'
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from mooring.config import GuardrailsConfig, MooringConfig
from mooring.contract.statistics import DatasetStatistics
from mooring.monitoring.scrape import VersionCounters
from mooring.registry import Registry

__all__ = [
    "GuardrailResult",
    "LiveMetric",
    "LiveValue",
    "Status",
    "error_guardrail",
    "feedback_live_metric",
    "latency_guardrail",
    "latency_samples_needed",
    "live_metric_guardrail",
    "load_guardrail",
    "prediction_distance",
    "standard_error",
    "statistics_distance",
]

Status = Literal["ok", "breach", "insufficient_data", "unavailable", "off"]
#: ``(version, since) -> (metric value or None, labelled rows[, standard error])``.
LiveMetric = Callable[[int, datetime], tuple[Any, ...]]
#: A side of the live-metric comparison: value, labelled rows and its standard error.
LiveValue = tuple[float | None, int, float | None]


@dataclass(frozen=True)
class GuardrailResult:
    """One guardrail's verdict on the canary, with the numbers behind it."""

    name: str
    status: Status
    message: str
    value: float | None = None
    threshold: float | None = None
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return asdict(self)


def _rate(errors: float, requests: float) -> float:
    return errors / requests if requests > 0 else 0.0


def error_guardrail(
    canary: VersionCounters, production: VersionCounters, rules: GuardrailsConfig
) -> GuardrailResult:
    """5xx rate of the canary against production's over the same step.

    Example:
        >>> bad = VersionCounters(requests=100, errors=20)
        >>> good = VersionCounters(requests=2000, errors=2)
        >>> error_guardrail(bad, good, GuardrailsConfig()).status
        'breach'
    """
    numbers = {
        "canary_requests": canary.requests,
        "canary_errors": canary.errors,
        "production_requests": production.requests,
        "production_errors": production.errors,
        "canary_error_rate": _rate(canary.errors, canary.requests),
        "production_error_rate": _rate(production.errors, production.requests),
    }
    if rules.error_rate_increase is None and rules.error_rate_ratio is None:
        return GuardrailResult("errors", "off", "error guardrails are off", numbers=numbers)
    c_rate = numbers["canary_error_rate"]
    p_rate = numbers["production_error_rate"]
    summary = (
        f"canary error rate {c_rate:.4f} ({canary.errors:g}/{canary.requests:g}) vs "
        f"production {p_rate:.4f} ({production.errors:g}/{production.requests:g})"
    )
    if canary.errors < rules.min_errors:
        return GuardrailResult(
            "errors",
            "insufficient_data" if canary.errors else "ok",
            f"{summary}; judged from {rules.min_errors} canary errors",
            value=c_rate,
            numbers=numbers,
        )
    problems = []
    increase = c_rate - p_rate
    if rules.error_rate_increase is not None and increase > rules.error_rate_increase:
        problems.append(f"increase {increase:.4f} > {rules.error_rate_increase:g}")
    smoothed = (production.errors + 1.0) / (production.requests + 1.0)
    if rules.error_rate_ratio is not None and c_rate > rules.error_rate_ratio * smoothed:
        problems.append(
            f"{c_rate / smoothed:.1f}× production's (smoothed {smoothed:.4f}) > "
            f"{rules.error_rate_ratio:g}×"
        )
    numbers["increase"] = increase
    if problems:
        return GuardrailResult(
            "errors",
            "breach",
            f"{summary}: " + "; ".join(problems),
            value=c_rate,
            threshold=rules.error_rate_increase,
            numbers=numbers,
        )
    return GuardrailResult("errors", "ok", summary, value=c_rate, numbers=numbers)


def latency_samples_needed(rules: GuardrailsConfig, quantile: float = 0.99) -> int:
    """Timed batches per version before a ``quantile`` of latency means anything.

    >>> latency_samples_needed(GuardrailsConfig())
    1000
    """
    tail = math.ceil(rules.latency_tail_samples / (1.0 - quantile) - 1e-9)
    return max(rules.min_latency_samples, tail)


def latency_guardrail(
    canary: VersionCounters, production: VersionCounters, rules: GuardrailsConfig
) -> GuardrailResult:
    """p99 inference latency of the canary against production's over the same step.

    Judged on enough batches for the p99 to rest on ``latency_tail_samples`` of them, and
    at the histogram's resolution: the canary breaches only when the *lower* bound of the
    bucket holding its p99 is above ``p99_latency_ratio`` × (and ``p99_latency_slack_ms``
    above) the *upper* bound of production's. (The controller also wants the breach on
    ``latency_breach_ticks`` consecutive ticks.)
    """
    if rules.p99_latency_ratio is None:
        return GuardrailResult("latency", "off", "latency guardrail is off")
    c_hist, p_hist = canary.latency, production.latency
    c_n = c_hist.count if c_hist is not None else 0.0
    p_n = p_hist.count if p_hist is not None else 0.0
    needed = latency_samples_needed(rules)
    numbers: dict[str, Any] = {"canary_batches": c_n, "production_batches": p_n, "needed": needed}
    if p_n == 0 and c_n >= needed:
        # At 100% production answers nothing in the step: it was compared at earlier steps.
        return GuardrailResult(
            "latency",
            "unavailable",
            f"production answered no timed batches in this step ({c_n:g} canary); nothing to "
            "compare with",
            numbers=numbers,
        )
    if c_hist is None or p_hist is None or min(c_n, p_n) < needed:
        return GuardrailResult(
            "latency",
            "insufficient_data",
            f"{c_n:g} canary and {p_n:g} production timed batches; the p99 is judged from "
            f"{needed} each",
            numbers=numbers,
        )
    c_p99, p_p99 = c_hist.quantile(0.99), p_hist.quantile(0.99)
    c_low, c_high = c_hist.quantile_bucket(0.99)
    p_low, p_high = p_hist.quantile_bucket(0.99)
    numbers.update(
        canary_p99_ms=c_p99 * 1000.0,
        production_p99_ms=p_p99 * 1000.0,
        canary_p99_bucket_ms=[c_low * 1000.0, c_high * 1000.0],
        production_p99_bucket_ms=[p_low * 1000.0, p_high * 1000.0],
    )
    ratio = c_low / p_high if p_high > 0 else math.inf
    numbers["ratio"] = ratio
    summary = (
        f"canary p99 {c_p99 * 1000:.2f} ms (bucket {c_low * 1000:g}–{c_high * 1000:g} ms) vs "
        f"production {p_p99 * 1000:.2f} ms (bucket {p_low * 1000:g}–{p_high * 1000:g} ms)"
    )
    slack_s = rules.p99_latency_slack_ms / 1000.0
    if c_low > rules.p99_latency_ratio * p_high and c_low - p_high > slack_s:
        return GuardrailResult(
            "latency",
            "breach",
            f"{summary}: even at the buckets' edges {ratio:.2f}× > {rules.p99_latency_ratio:g}× "
            f"and {(c_low - p_high) * 1000:.2f} ms above (slack {rules.p99_latency_slack_ms:g} ms)",
            value=ratio,
            threshold=rules.p99_latency_ratio,
            numbers=numbers,
        )
    return GuardrailResult("latency", "ok", summary, value=ratio, numbers=numbers)


def load_guardrail(canary_total: VersionCounters, canary_step: VersionCounters) -> GuardrailResult:
    """A canary the server failed to load (and so never answers) is rolled back."""
    failures = canary_total.load_failures
    if failures > 0 and canary_step.requests == 0:
        return GuardrailResult(
            "load",
            "breach",
            f"the server failed to load the canary ({failures:g} load failures) and it "
            "answers no requests",
            value=failures,
            numbers={"load_failures": failures},
        )
    return GuardrailResult("load", "ok", "canary loaded", numbers={"load_failures": failures})


def prediction_distance(production: Any, canary: Any) -> dict[str, float]:
    """Jensen–Shannon distance per model output between two prediction-log tables.

    Outputs are reduced by the monitoring layer's :func:`output_table` (``output.score``,
    ``output.class``, ``output.value``); numbers are compared over production's quantile
    bins, classes over their union, with the contract layer's distance functions.

    Example:
        >>> import pyarrow as pa
        >>> a = pa.table({"output.probabilities": [[1 - p / 100, p / 100] for p in range(100)]})
        >>> b = pa.table({"output.probabilities": [[0.5, 0.5]] * 100})
        >>> prediction_distance(a, b)["output.score"] > 0.5
        True
    """
    from mooring.contract import compute_statistics
    from mooring.formats.predictions import output_table

    prod, cand = output_table(production), output_table(canary)
    shared = [c for c in prod.column_names if c in cand.column_names]
    if not shared:
        return {}
    return statistics_distance(
        compute_statistics(prod.select(shared)), compute_statistics(cand.select(shared))
    )


def statistics_distance(
    baseline: DatasetStatistics, current: DatasetStatistics
) -> dict[str, float]:
    """Jensen–Shannon distance per column present in both statistics.

    Numbers are compared over the baseline's quantile bins, categories over their union,
    with the contract layer's distance functions.
    """
    from mooring.contract.distance import (
        categorical_distributions,
        jensen_shannon,
        numeric_distributions,
    )

    out = {}
    for name in baseline.column_names:
        if name not in current.columns:
            continue
        b_col, c_col = baseline[name], current[name]
        dist = (
            numeric_distributions(b_col, c_col)
            if b_col.numeric is not None and b_col.numeric.count > 0
            else categorical_distributions(b_col, c_col)
        )
        if dist is not None:
            out[name] = jensen_shannon(dist.baseline, dist.current)
    return out


_LOWER_IS_BETTER = {"log_loss", "brier", "ece", "mse", "rmse", "mae", "mape", "error_rate"}


def _lower_is_better(metric: str) -> bool:
    return metric in _LOWER_IS_BETTER


def feedback_live_metric(
    cfg: MooringConfig, registry: Registry, *, metric: str | None = None
) -> LiveMetric | None:
    """A version's live ``metric`` from label feedback (None without the feedback module)."""
    try:
        feedback = importlib.import_module("mooring.monitoring.feedback")
    except ImportError:
        return None
    compute = getattr(feedback, "live_metrics", None)
    if compute is None:
        return None
    metric = metric or cfg.rollout.guardrails.live_metric

    def live(version: int, since: datetime) -> tuple[float | None, int, float | None]:
        result = compute(cfg, version=version, since=since, registry=registry)
        return _metric_from(result, version, metric)

    return live


def standard_error(metric: str, value: float, rows: int, positives: int | None) -> float | None:
    """The sampling standard error of a live metric, where a formula is known.

    AUC: Hanley & McNeil (1982) from the positive and negative counts; shares
    (accuracy, precision, recall, F1…): the binomial ``sqrt(v (1 - v) / n)``; other
    metrics: None (judged on the margin alone).

    >>> round(standard_error("auc", 0.8, 400, 100), 4)
    0.0283
    """
    if rows <= 0:
        return None
    if metric in ("auc", "roc_auc"):
        if positives is None or not 0 < positives < rows:
            return None
        pos, neg, a = positives, rows - positives, value
        q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
        var = (a * (1 - a) + (pos - 1) * (q1 - a * a) + (neg - 1) * (q2 - a * a)) / (pos * neg)
        return math.sqrt(max(var, 0.0))
    if 0.0 <= value <= 1.0 and metric in _SHARES:
        return math.sqrt(value * (1.0 - value) / rows)
    return None


_SHARES = {"accuracy", "precision", "recall", "f1", "balanced_accuracy", "pr_auc", "error_rate"}


def _metric_from(result: Any, version: int, metric: str) -> tuple[float | None, int, float | None]:
    """One version's metric, label count and standard error out of a live-metrics result."""
    data = result.to_dict() if hasattr(result, "to_dict") else result
    if isinstance(data, dict) and "versions" in data:
        data = data["versions"]
    entry: Any = None
    if isinstance(data, dict):
        entry = data.get(str(version)) or data.get(version)
    elif isinstance(data, list):
        entry = next((e for e in data if isinstance(e, dict) and e.get("version") == version), None)
    if not isinstance(entry, dict):
        return None, 0, None
    metrics = entry.get("metrics", entry)
    value = metrics.get(metric) if isinstance(metrics, dict) else None
    rows = int(entry.get("rows", entry.get("labels", entry.get("count", 0))) or 0)
    if value is None:
        return None, rows, None
    positives = entry.get("positives")
    se = standard_error(
        metric, float(value), rows, positives if isinstance(positives, int) else None
    )
    return float(value), rows, se


def _side(value: tuple[Any, ...]) -> LiveValue:
    """A live-metric callable's answer as ``(value, rows, standard error)``."""
    v, rows = value[0], int(value[1])
    se = value[2] if len(value) > 2 else None
    return (None if v is None else float(v)), rows, (None if se is None else float(se))


def live_metric_guardrail(
    canary: tuple[Any, ...], production: tuple[Any, ...], rules: GuardrailsConfig
) -> GuardrailResult:
    """The canary's live metric (from label feedback) against production's.

    Each side is ``(value, labelled rows[, standard error])``. The canary breaches only
    when it is worse than production by more than ``live_metric_drop`` **and** by more
    than ``live_metric_z`` standard errors of the difference: a handful of labels never
    rolls a canary back. Without any label on either side the guardrail is
    ``unavailable`` (the rollout is judged on its outputs) unless ``require_labels``.

    Example:
        >>> live_metric_guardrail((0.85, 3000), (0.90, 4000), GuardrailsConfig()).status
        'breach'
    """
    (c_value, c_rows, c_se), (p_value, p_rows, p_se) = _side(canary), _side(production)
    metric = rules.live_metric
    numbers: dict[str, Any] = {"canary_labels": c_rows, "production_labels": p_rows}
    if rules.live_metric_drop is None:
        return GuardrailResult("live_metric", "off", "live-metric guardrail is off")
    if c_rows == 0 and p_rows == 0 and not rules.require_labels:
        return GuardrailResult(
            "live_metric",
            "unavailable",
            "no labels for either version since the rollout started; judged on outputs",
            numbers=numbers,
        )
    if c_value is None or p_value is None or min(c_rows, p_rows) < rules.min_labels:
        return GuardrailResult(
            "live_metric",
            "insufficient_data",
            f"{c_rows} canary and {p_rows} production labels; judged from {rules.min_labels} each",
            numbers=numbers,
        )
    numbers.update(canary=c_value, production=p_value)
    drop = (c_value - p_value) if _lower_is_better(metric) else (p_value - c_value)
    se = math.sqrt((c_se or 0.0) ** 2 + (p_se or 0.0) ** 2)
    numbers.update(drop=drop, standard_error=se)
    summary = (
        f"live {metric} canary {c_value:.4f} vs production {p_value:.4f} "
        f"({c_rows} vs {p_rows} labels, standard error of the difference {se:.4f})"
    )
    if drop > rules.live_metric_drop and drop > rules.live_metric_z * se:
        return GuardrailResult(
            "live_metric",
            "breach",
            f"{summary}: worse by {drop:.4f} > {rules.live_metric_drop:g} and > "
            f"{rules.live_metric_z:g} standard errors",
            value=drop,
            threshold=rules.live_metric_drop,
            numbers=numbers,
        )
    return GuardrailResult("live_metric", "ok", summary, value=drop, numbers=numbers)
