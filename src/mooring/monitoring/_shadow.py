"""The shadow report: the shadow version against production on the same requests.

The server logs a shadow's outputs under the request id of the answer it copies
(``shadow`` true in the prediction log). :func:`compare_shadow` joins the two by
request id and row, and reports how often their decisions agree (binary: at
production's operating threshold, registered with the version; multiclass: the
predicted class; regression: no decision) and how far their scores differ (absolute
difference of the positive-class probability, the top-label confidence or the value:
mean, p50, p95, max). :func:`shadow_report` adds what the server counted: copies by
outcome (errors and timeouts), their latency, copies dropped under load, and a
shadow that failed to load.

The report is healthy once ``[rollout.shadow] min_rows`` rows were compared and the
agreement, error rate and mean score difference are within their bounds. With
``[rollout] start = "shadow"`` the rollout controller calls :func:`shadow_step`, which
moves a healthy shadow to the first canary step (audited, actor ``mooring-monitor``)
and holds an unhealthy one with an alert saying why.

Examples:
    >>> report = shadow_report(cfg, registry, log_url, snapshot)  # doctest: +SKIP
    >>> report.status, report.agreement  # doctest: +SKIP
    ('healthy', 0.97)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mooring.config import MooringConfig
from mooring.config._monitoring import ShadowConfig
from mooring.errors import MooringError, NotFoundError
from mooring.formats._predictions import (
    REQUEST_ID,
    TIMESTAMP,
    output_column,
    output_table,
    read_prediction_log,
)
from mooring.monitoring._alerts import Alert, AlertManager
from mooring.monitoring._rollout_state import Action, RolloutDecision
from mooring.monitoring._scrape import MetricsSnapshot
from mooring.registry import Deployment, Registry

__all__ = [
    "ShadowReport",
    "compare_shadow",
    "judge_shadow",
    "shadow_lines",
    "shadow_report",
    "shadow_step",
]

#: The most shadow rows one report reads (the newest).
ROWS_CAP = 50_000
#: Production's answer is logged just before its shadow's rows: read from a little earlier.
_SLACK = timedelta(minutes=5)

ShadowStatus = Literal["off", "healthy", "unhealthy", "insufficient_data"]


@dataclass
class ShadowReport:
    """Shadow vs production for one model: compared rows, agreement, differences, health."""

    model: str
    production: int | None = None
    shadow: int | None = None
    rate: float = 0.0
    status: ShadowStatus = "off"
    reasons: list[str] = field(default_factory=list)
    #: Rows with both a shadow output and production's answer.
    rows: int = 0
    shadow_rows: int = 0
    threshold: float | None = None
    #: Share of compared rows whose decisions match (None for regression).
    agreement: float | None = None
    #: Absolute score differences: mean, p50, p95, max (None without compared rows).
    score_diff: dict[str, float] | None = None
    #: From the server's metrics: copies by outcome, error rate, latency, drops.
    copies: dict[str, float] = field(default_factory=dict)
    error_rate: float | None = None
    latency_ms: dict[str, float] | None = None
    dropped: dict[str, float] = field(default_factory=dict)
    load_failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return asdict(self)


def _decisions(table: pa.Table, threshold: float) -> tuple[np.ndarray[Any, Any] | None, Any]:
    """(decision per row or None, score per row) from logged rows."""
    outs = output_table(table)
    names = outs.column_names
    probabilities = output_column("probabilities")
    width = 0
    if probabilities in table.column_names and table.num_rows:
        first = table[probabilities][0].as_py()
        width = len(first) if isinstance(first, list) else 1
    score_name = output_column("score")
    if score_name in names and width <= 2:
        score = np.asarray(outs[score_name].to_numpy(zero_copy_only=False), dtype=np.float64)
        return score >= threshold, score
    if score_name in names:
        score = np.asarray(outs[score_name].to_numpy(zero_copy_only=False), dtype=np.float64)
        classes = (
            outs[output_column("class")].to_pylist() if output_column("class") in names else None
        )
        return (np.asarray(classes, dtype=object) if classes is not None else None), score
    value = output_column("value")
    if value in names:
        return None, np.asarray(outs[value].to_numpy(zero_copy_only=False), dtype=np.float64)
    return None, np.full(table.num_rows, np.nan)


def _keys(table: pa.Table) -> list[tuple[str, int]]:
    """(request id, row within the request) per row: a request may hold several rows."""
    seen: dict[str, int] = {}
    keys = []
    for rid in table[REQUEST_ID].to_pylist():
        index = seen.get(rid, 0)
        seen[rid] = index + 1
        keys.append((rid, index))
    return keys


def compare_shadow(
    production: pa.Table, shadow: pa.Table, *, threshold: float = 0.5
) -> dict[str, Any]:
    """Join logged answers and shadow rows by request id and row; agreement and differences.

    Examples:
        >>> p = pa.table({"request_id": ["a", "b"], "output.probabilities": [[.8, .2], [.3, .7]]})
        >>> s = pa.table({"request_id": ["a", "b"], "output.probabilities": [[.7, .3], [.6, .4]]})
        >>> out = compare_shadow(p, s)
        >>> out["rows"], out["agreement"], round(out["score_diff"]["max"], 2)
        (2, 0.5, 0.3)
    """
    where = {key: i for i, key in enumerate(_keys(production))}
    pairs = [(where[key], j) for j, key in enumerate(_keys(shadow)) if key in where]
    result: dict[str, Any] = {"rows": len(pairs), "agreement": None, "score_diff": None}
    if not pairs:
        return result
    p_rows = production.take([i for i, _ in pairs])
    s_rows = shadow.take([j for _, j in pairs])
    p_decision, p_score = _decisions(p_rows, threshold)
    s_decision, s_score = _decisions(s_rows, threshold)
    if p_decision is not None and s_decision is not None:
        result["agreement"] = float(np.mean(p_decision == s_decision))
    diff = np.abs(p_score - s_score)
    diff = diff[np.isfinite(diff)]
    if diff.size:
        result["score_diff"] = {
            "mean": float(diff.mean()),
            "p50": float(np.percentile(diff, 50)),
            "p95": float(np.percentile(diff, 95)),
            "max": float(diff.max()),
        }
    return result


def _read_rows(
    log_url: str, name: str, dep: Deployment
) -> tuple[pa.Table | None, pa.Table | None, str | None]:
    """The shadow's newest rows and production's answers since the first of them."""
    assert dep.shadow is not None
    try:
        shadow = read_prediction_log(log_url, name, version=dep.shadow, shadow=True, last=ROWS_CAP)
        if not shadow.num_rows or dep.production is None:
            return shadow, None, None
        first = shadow[TIMESTAMP][0].as_py()
        answers = read_prediction_log(log_url, name, version=dep.production, since=first - _SLACK)
    except NotFoundError as exc:
        return None, None, f"no prediction log yet ({exc})"
    except (MooringError, OSError, pa.ArrowException) as exc:
        return None, None, f"prediction log not readable now: {exc}"
    return shadow, answers, None


def shadow_report(
    cfg: MooringConfig,
    registry: Registry,
    log_url: str,
    snapshot: MetricsSnapshot | None,
    *,
    deployment: Deployment | None = None,
) -> ShadowReport:
    """The shadow report of ``cfg``'s model now (``status="off"`` without a shadow)."""
    name = cfg.project.name
    dep = deployment or registry.deployment(name)
    report = ShadowReport(model=name, production=dep.production, shadow=dep.shadow)
    if dep.shadow is None:
        report.reasons.append("no shadow deployed")
        return report
    report.rate = dep.shadow_rate
    threshold = None
    if dep.production is not None:
        threshold = registry.get(name, version=dep.production).operating_threshold
    report.threshold = 0.5 if threshold is None else threshold
    shadow, answers, why = _read_rows(log_url, name, dep)
    if shadow is not None:
        report.shadow_rows = shadow.num_rows
    if shadow is not None and answers is not None:
        compared = compare_shadow(answers, shadow, threshold=report.threshold)
        report.rows = compared["rows"]
        report.agreement = compared["agreement"]
        report.score_diff = compared["score_diff"]
    if snapshot is not None:
        counters = snapshot.shadow.get(str(dep.shadow))
        if counters is not None:
            report.copies = dict(counters.outcomes)
            if counters.copies > 0:
                report.error_rate = counters.failures / counters.copies
            if counters.latency is not None and counters.latency.count > 0:
                report.latency_ms = {
                    "p50": counters.latency.quantile(0.5) * 1000.0,
                    "p99": counters.latency.quantile(0.99) * 1000.0,
                }
        report.dropped = dict(snapshot.shadow_dropped)
        report.load_failed = snapshot.version(dep.shadow).load_failures > 0
    judge_shadow(report, cfg.rollout.shadow, unreadable=why, scraped=snapshot is not None)
    return report


def judge_shadow(
    report: ShadowReport, rules: ShadowConfig, *, unreadable: str | None, scraped: bool
) -> ShadowReport:
    """Set ``status`` and ``reasons``: unhealthy on any bound broken, waiting without data."""
    bad: list[str] = []
    waiting: list[str] = []
    if report.load_failed and not report.copies:
        bad.append(f"the server failed to load {report.model}@{report.shadow}")
    if rules.max_error_rate is not None:
        if report.error_rate is None:
            waiting.append(
                "errors: no shadow copies counted in the server's metrics yet"
                if scraped
                else "errors: the server's metrics could not be read"
            )
        elif report.error_rate > rules.max_error_rate:
            bad.append(
                f"errors: {report.error_rate:.2%} of copies failed or timed out, above "
                f"max_error_rate = {rules.max_error_rate:g}"
            )
    if report.rows < rules.min_rows:
        waiting.append(
            f"rows: {report.rows} compared of {rules.min_rows} needed"
            + (f" ({unreadable})" if unreadable else "")
        )
    else:
        agreement = report.agreement
        floor = rules.min_agreement
        if floor is not None and agreement is not None and agreement < floor:
            bad.append(
                f"agreement: {agreement:.2%} of {report.rows} decisions match production's "
                f"(threshold {report.threshold:g}), below min_agreement = "
                f"{rules.min_agreement:g}"
            )
        mean = (report.score_diff or {}).get("mean", math.nan)
        if rules.max_mean_score_diff is not None and mean > rules.max_mean_score_diff:
            bad.append(
                f"scores: mean absolute difference {mean:.4f} above max_mean_score_diff = "
                f"{rules.max_mean_score_diff:g}"
            )
    if bad:
        report.status, report.reasons = "unhealthy", bad
    elif waiting:
        report.status, report.reasons = "insufficient_data", waiting
    else:
        agree = "n/a" if report.agreement is None else f"{report.agreement:.2%}"
        report.status = "healthy"
        report.reasons = [
            f"{report.rows} rows compared, agreement {agree}, error rate "
            f"{(report.error_rate or 0.0):.2%}"
        ]
    return report


def shadow_step(
    cfg: MooringConfig,
    registry: Registry,
    log_url: str,
    dep: Deployment,
    snapshot: MetricsSnapshot | None,
    alerts: AlertManager,
    *,
    actor: str,
    at: str,
) -> RolloutDecision:
    """``[rollout] start = "shadow"``: move a healthy shadow to the first canary step.

    Waits (``insufficient_data``) until the report can judge; an unhealthy shadow is held
    where it is with a ``shadow_unhealthy`` alert saying why; a healthy one becomes the
    canary at ``[rollout] steps[0]`` (which clears the shadow), with the report's numbers
    in the audit log's reason. A candidate the registry refuses as canary (not blessed)
    is held with the refusal.
    """
    assert dep.shadow is not None
    name = cfg.project.name
    report = shadow_report(cfg, registry, log_url, snapshot, deployment=dep)
    ref = f"{name}@{dep.shadow}"

    def decision(
        action: Action, reasons: list[str], canary: int | None, weight: int
    ) -> RolloutDecision:
        return RolloutDecision(
            model=name,
            action=action,
            production=dep.production,
            canary=canary,
            from_weight=0,
            to_weight=weight,
            reasons=reasons,
            numbers={"shadow": report.to_dict()},
            at=at,
        )

    if report.status == "insufficient_data":
        return decision("insufficient_data", [f"shadow {ref} waiting", *report.reasons], None, 0)
    if report.status == "unhealthy":
        summary = f"shadow {ref} is not moved to the canary: " + "; ".join(report.reasons)
        alerts.send(
            Alert(
                model=name,
                version=dep.shadow,
                kind="shadow_unhealthy",
                severity="ticket",
                summary=summary,
                details=report.to_dict(),
            )
        )
        return decision("hold", [summary], None, 0)
    weight = cfg.rollout.steps[0]
    reason = (
        f"shadow {ref} healthy next to production {dep.production} ({report.reasons[0]}); "
        f"canary at {weight}% (rollout step 1 of {len(cfg.rollout.steps)})"
    )
    if registry.deployment(name).revision != dep.revision:
        return decision(
            "hold", ["the deployment record changed during this check; judged again"], None, 0
        )
    try:
        registry.deploy(
            name,
            production=dep.production,
            canary=dep.shadow,
            weight=weight,
            actor=actor,
            reason=reason,
        )
    except MooringError as exc:
        return decision(
            "hold", [f"shadow {ref} healthy, but it cannot be the canary: {exc}"], None, 0
        )
    return decision("advance", [reason], dep.shadow, weight)


def shadow_lines(report: Mapping[str, Any]) -> list[str]:
    """A shadow report (``ShadowReport.to_dict()``) in a few lines, for the CLI and pages.

    Examples:
        >>> shadow_lines({"shadow": 4, "rate": 0.1, "status": "insufficient_data",
        ...               "reasons": ["rows: 3 compared of 500 needed"], "rows": 3})[0]
        'shadow 4 at 10% of requests: insufficient_data, 3 rows compared'
    """
    lines = [
        f"shadow {report.get('shadow')} at {float(report.get('rate') or 0):.0%} of requests: "
        f"{report.get('status')}, {report.get('rows', 0)} rows compared"
    ]
    agreement = report.get("agreement")
    diff = report.get("score_diff") or {}
    numbers = []
    if agreement is not None:
        numbers.append(f"agreement {agreement:.2%} at threshold {report.get('threshold'):g}")
    if diff:
        numbers.append(
            "score difference mean {mean:.4f}, p50 {p50:.4f}, p95 {p95:.4f}, max {max:.4f}".format(
                **diff
            )
        )
    if report.get("error_rate") is not None:
        numbers.append(f"errors {report['error_rate']:.2%} of {sum(report['copies'].values()):g}")
    latency = report.get("latency_ms")
    if latency:
        numbers.append(f"latency p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms")
    dropped = report.get("dropped") or {}
    if any(dropped.values()):
        numbers.append("dropped " + ", ".join(f"{k} {v:g}" for k, v in sorted(dropped.items())))
    if numbers:
        lines.append("; ".join(numbers))
    lines.extend(str(r) for r in report.get("reasons") or [])
    return lines
