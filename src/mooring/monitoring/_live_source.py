"""Where the live-metric guardrail's evidence comes from: label feedback, per version.

:func:`feedback_live_metric` reads a version's live metric since a time, with its label
count and standard error; the rollout controller calls it while gathering a tick's
evidence, so that the decision itself reads nothing.

Examples:
    >>> live = feedback_live_metric(cfg, registry)  # doctest: +SKIP
    >>> live(3, since)  # doctest: +SKIP
    (0.87, 1200, 0.011)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mooring.config import MooringConfig
from mooring.monitoring._feedback import live_metrics
from mooring.monitoring._guardrail_live import LiveMetric
from mooring.monitoring._guardrails import standard_error
from mooring.registry import Registry

__all__ = ["feedback_live_metric"]


def feedback_live_metric(
    cfg: MooringConfig, registry: Registry, *, metric: str | None = None
) -> LiveMetric:
    """A version's live ``metric`` (default ``[rollout.guardrails] live_metric``) from
    label feedback, as ``(version, since) -> (value, labelled rows, standard error)``."""
    metric = metric or cfg.rollout.guardrails.live_metric

    def live(version: int, since: datetime) -> tuple[float | None, int, float | None]:
        result = live_metrics(cfg, version=version, since=since, registry=registry)
        return _metric_from(result, version, metric)

    return live


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
