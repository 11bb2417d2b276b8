"""The rollout controller: a canary advances step by step while healthy, and is rolled back at once.

``[rollout] steps`` lists the canary's share of traffic (e.g. 5 → 25 → 50 → 100 percent).
At every :meth:`RolloutController.tick` the controller reads the deployment record, the
server's Prometheus counters and the prediction log, and compares the canary with
production over the current step:

- **errors**: the canary's 5xx rate against production's, absolute increase and ratio
  (judged once the canary has ``min_errors`` errors; production's rate is smoothed by
  one error, so a small production sample never makes the ratio look infinite);
- **latency**: p99 of the per-version inference-latency histograms (ratio and a slack
  in ms, because a histogram only knows its buckets);
- **load**: a canary version the server failed to load;
- **predictions**: Jensen–Shannon distance between the canary's and production's
  logged outputs since the rollout started (the contract layer's distances over
  production's quantile bins);
- **live metric**: the canary's live metric (from label feedback) against production's.

One breach rolls the canary back in the same tick (canary removed, weight 0). A
healthy canary with at least ``min_requests`` requests and ``min_step_duration`` at its
step moves to the next step; after the last one it is promoted. Every change goes
through the registry with actor ``mooring-monitor`` and a reason holding the numbers,
so it lands in the audit log; rollbacks and promotions also raise alerts.

The step's start time and the counters at that moment live in
``<home>/monitoring/<model>/rollout.json`` (atomic writes), so a restarted monitor
carries on where it stopped; without that file the step is taken to have started at
the deployment record's last change, counted from the first scrape.

Example:
    >>> controller = RolloutController(cfg, registry)  # doctest: +SKIP
    >>> controller.tick().action  # doctest: +SKIP
    'advance'
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from mooring.config import GuardrailsConfig, MooringConfig
from mooring.errors import MooringError, NotFoundError
from mooring.monitoring._state import monitoring_dir, read_json, write_json
from mooring.monitoring.alerts import Alert, AlertManager
from mooring.monitoring.scrape import (
    MetricsSnapshot,
    MetricsSource,
    MetricsUnavailableError,
    VersionCounters,
    scrape,
)
from mooring.registry import Deployment, Registry

__all__ = [
    "ACTOR",
    "GuardrailResult",
    "LiveMetric",
    "RolloutController",
    "RolloutDecision",
    "feedback_live_metric",
    "prediction_distance",
]

log = logging.getLogger("mooring.monitoring")

ACTOR = "mooring-monitor"
Action = Literal["hold", "advance", "promote", "rollback", "insufficient_data", "idle"]
Status = Literal["ok", "breach", "insufficient_data", "off"]
#: ``(version, since) -> (metric value or None, labelled rows)``: a version's live metric.
LiveMetric = Callable[[int, datetime], tuple[float | None, int]]
_PREDICTION_ROWS_CAP = 50_000


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


@dataclass(frozen=True)
class RolloutDecision:
    """What one tick decided, why, and with which numbers."""

    model: str
    action: Action
    production: int | None
    canary: int | None
    from_weight: int
    to_weight: int
    reasons: list[str]
    guardrails: list[GuardrailResult] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    at: str = ""

    @property
    def changed(self) -> bool:
        """True when the deployment record was changed."""
        return self.action in ("advance", "promote", "rollback")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        data = asdict(self)
        data["guardrails"] = [g.to_dict() for g in self.guardrails]
        return data


@dataclass
class _Step:
    canary: int
    production: int | None
    weight: int
    revision: int
    started_at: float
    rollout_started_at: float
    baseline: dict[str, VersionCounters] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "production": self.production,
            "weight": self.weight,
            "revision": self.revision,
            "started_at": self.started_at,
            "rollout_started_at": self.rollout_started_at,
            "baseline": None
            if self.baseline is None
            else {k: v.to_dict() for k, v in self.baseline.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Step:
        baseline = data.get("baseline")
        return cls(
            canary=int(data["canary"]),
            production=None if data.get("production") is None else int(data["production"]),
            weight=int(data["weight"]),
            revision=int(data["revision"]),
            started_at=float(data["started_at"]),
            rollout_started_at=float(data["rollout_started_at"]),
            baseline=None
            if baseline is None
            else {k: VersionCounters.from_dict(v) for k, v in baseline.items()},
        )


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


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


def latency_guardrail(
    canary: VersionCounters, production: VersionCounters, rules: GuardrailsConfig
) -> GuardrailResult:
    """p99 inference latency of the canary against production's over the same step."""
    if rules.p99_latency_ratio is None:
        return GuardrailResult("latency", "off", "latency guardrail is off")
    c_hist, p_hist = canary.latency, production.latency
    c_n = c_hist.count if c_hist is not None else 0.0
    p_n = p_hist.count if p_hist is not None else 0.0
    numbers: dict[str, Any] = {"canary_batches": c_n, "production_batches": p_n}
    if c_hist is None or p_hist is None or min(c_n, p_n) < rules.min_latency_samples:
        return GuardrailResult(
            "latency",
            "insufficient_data",
            f"{c_n:g} canary and {p_n:g} production timed batches; judged from "
            f"{rules.min_latency_samples} each",
            numbers=numbers,
        )
    c_p99, p_p99 = c_hist.quantile(0.99), p_hist.quantile(0.99)
    numbers.update(canary_p99_ms=c_p99 * 1000.0, production_p99_ms=p_p99 * 1000.0)
    ratio = c_p99 / p_p99 if p_p99 > 0 else math.inf
    numbers["ratio"] = ratio
    summary = f"canary p99 {c_p99 * 1000:.2f} ms vs production {p_p99 * 1000:.2f} ms"
    slack_s = rules.p99_latency_slack_ms / 1000.0
    if c_p99 > rules.p99_latency_ratio * p_p99 and c_p99 - p_p99 > slack_s:
        return GuardrailResult(
            "latency",
            "breach",
            f"{summary}: {ratio:.2f}× > {rules.p99_latency_ratio:g}× and "
            f"{(c_p99 - p_p99) * 1000:.2f} ms above (slack {rules.p99_latency_slack_ms:g} ms)",
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
    from mooring.contract.distance import (
        categorical_distributions,
        jensen_shannon,
        numeric_distributions,
    )
    from mooring.monitoring.predictions import output_table

    prod, cand = output_table(production), output_table(canary)
    shared = [c for c in prod.column_names if c in cand.column_names]
    if not shared:
        return {}
    p_stats = compute_statistics(prod.select(shared))
    c_stats = compute_statistics(cand.select(shared))
    out = {}
    for name in shared:
        p_col, c_col = p_stats[name], c_stats[name]
        dist = (
            numeric_distributions(p_col, c_col)
            if p_col.numeric is not None
            else categorical_distributions(p_col, c_col)
        )
        if dist is not None:
            out[name] = jensen_shannon(dist.baseline, dist.current)
    return out


class RolloutController:
    """Advance, promote or roll back the canary of one model, one tick at a time.

    Args:
        cfg: the project (``[rollout]`` holds the steps and guardrails).
        registry: where the deployment record lives.
        metrics: the server's /metrics URLs, or a callable returning the text
            (a server hosting the controller passes its own metrics' ``render``);
            default ``[rollout] metrics_urls``.
        alerts: where rollbacks and promotions are reported; default from
            ``[monitoring.alerts]``.
        clock: seconds since the epoch (tests pass their own).
        live_metric: ``(version, since) -> (value, labelled rows)``; default: the
            monitoring layer's live metrics from label feedback, when present.
        state_path: where the step state is kept; default
            ``<home>/monitoring/<model>/rollout.json``.

    Example:
        >>> urls = ["http://127.0.0.1:8501/metrics"]
        >>> controller = RolloutController(cfg, registry, metrics=urls)  # doctest: +SKIP
        >>> controller.watch(10.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        cfg: MooringConfig,
        registry: Registry,
        *,
        metrics: MetricsSource | None = None,
        alerts: AlertManager | None = None,
        clock: Callable[[], float] = time.time,
        live_metric: LiveMetric | None = None,
        state_path: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.project.name
        self.registry = registry
        self.metrics: MetricsSource = metrics if metrics is not None else cfg.rollout.metrics_urls
        self.alerts = alerts if alerts is not None else AlertManager.from_config(cfg)
        self.clock = clock
        self.live_metric = (
            live_metric if live_metric is not None else feedback_live_metric(cfg, registry)
        )
        self.state_path = state_path or monitoring_dir(cfg) / "rollout.json"
        self.log_url = cfg.serving.log_url or str(cfg.home / "predictions")
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------------
    def _load(self) -> tuple[_Step | None, dict[str, Any]]:
        data = read_json(self.state_path) or {}
        step = None
        if isinstance(data.get("step"), dict):
            try:
                step = _Step.from_dict(data["step"])
            except (KeyError, TypeError, ValueError) as exc:
                log.error("ignoring malformed rollout state in %s: %s", self.state_path, exc)
        return step, data

    def _save(self, step: _Step | None, decision: RolloutDecision | None = None) -> None:
        _, data = self._load()
        data["model"] = self.name
        data["step"] = None if step is None else step.to_dict()
        if decision is not None:
            data["last_decision"] = decision.to_dict()
            if decision.changed:
                data["last_change"] = decision.to_dict()
        write_json(self.state_path, data)

    def _step_for(self, dep: Deployment, stored: _Step | None, now: float) -> tuple[_Step, bool]:
        """The current step; True when it is new (started now or unknown before)."""
        assert dep.canary is not None
        if (
            stored is not None
            and stored.canary == dep.canary
            and stored.revision == dep.revision
            and stored.weight == dep.canary_weight
        ):
            return stored, False
        if stored is not None and stored.canary == dep.canary:
            rollout_start = stored.rollout_started_at
            started = now
        else:
            # No state for this canary (first sight, or the state file was lost): the step
            # began when the deployment record last changed.
            changed = _parse_time(dep.updated_at)
            started = min(changed, now) if changed is not None else now
            rollout_start = started
        step = _Step(
            canary=dep.canary,
            production=dep.production,
            weight=dep.canary_weight,
            revision=dep.revision,
            started_at=started,
            rollout_started_at=rollout_start,
        )
        return step, True

    # -- one tick ------------------------------------------------------------------
    def tick(self, snapshot: MetricsSnapshot | None = None) -> RolloutDecision:
        """Judge the canary once and act: hold, advance, promote or roll back.

        ``snapshot`` lets a caller that already scraped the server share it.
        """
        with self._lock:
            return self._tick(snapshot)

    def _decision(
        self, dep: Deployment, action: Action, reasons: list[str], **extra: Any
    ) -> RolloutDecision:
        return RolloutDecision(
            model=self.name,
            action=action,
            production=dep.production,
            canary=dep.canary,
            from_weight=dep.canary_weight,
            to_weight=extra.pop("to_weight", dep.canary_weight),
            reasons=reasons,
            at=_iso(self.clock()),
            **extra,
        )

    def _tick(self, snapshot: MetricsSnapshot | None) -> RolloutDecision:
        now = self.clock()
        dep = self.registry.deployment(self.name)
        stored, _ = self._load()
        if dep.canary is None:
            decision = self._decision(dep, "idle", ["no canary deployed"])
            if stored is not None:
                self._save(None)
            return decision
        step, fresh = self._step_for(dep, stored, now)
        try:
            snap = snapshot or scrape(self.metrics, self.name, clock=self.clock)
        except MetricsUnavailableError as exc:
            if fresh:
                self._save(step)
            return self._decision(dep, "insufficient_data", [str(exc)])
        if step.baseline is None:
            step.baseline = {
                str(v): snap.version(v) for v in (dep.canary, dep.production) if v is not None
            }
            self._save(step)
        canary_total = snap.version(dep.canary)
        canary = canary_total.since(step.baseline.get(str(dep.canary)))
        production = snap.version(dep.production).since(step.baseline.get(str(dep.production)))
        elapsed = now - step.started_at
        rules = self.cfg.rollout.guardrails
        results = [
            load_guardrail(canary_total, canary),
            error_guardrail(canary, production, rules),
            latency_guardrail(canary, production, rules),
            self._prediction_guardrail(dep, step, rules),
            self._live_guardrail(dep, step, rules),
        ]
        numbers: dict[str, Any] = {
            "step_seconds": elapsed,
            "step_started_at": _iso(step.started_at),
            "rollout_started_at": _iso(step.rollout_started_at),
            "canary_requests": canary.requests,
            "production_requests": production.requests,
        }
        breaches = [r for r in results if r.status == "breach"]
        if breaches:
            return self._rollback(dep, step, breaches, results, numbers)
        steps = self.cfg.rollout.steps
        if dep.canary_weight == 0:
            # A staged canary (0%) gets no traffic to judge: the rollout starts with step one.
            return self._advance(dep, step, steps[0], results, numbers)
        if canary.requests < self.cfg.rollout.min_requests:
            reason = (
                f"canary has {canary.requests:g} of {self.cfg.rollout.min_requests} requests "
                f"needed at {dep.canary_weight}%"
            )
            decision = self._decision(
                dep, "insufficient_data", [reason], guardrails=results, numbers=numbers
            )
            self._save(step, decision)
            return decision
        if elapsed < self.cfg.rollout.min_step_duration:
            reason = (
                f"{elapsed:.0f}s of {self.cfg.rollout.min_step_duration:g}s at "
                f"{dep.canary_weight}%; healthy so far"
            )
            decision = self._decision(dep, "hold", [reason], guardrails=results, numbers=numbers)
            self._save(step, decision)
            return decision
        later = [s for s in steps if s > dep.canary_weight]
        if later:
            return self._advance(dep, step, later[0], results, numbers)
        return self._promote(dep, step, results, numbers)

    # -- guardrails needing other sources ------------------------------------------
    def _prediction_guardrail(
        self, dep: Deployment, step: _Step, rules: GuardrailsConfig
    ) -> GuardrailResult:
        if rules.prediction_js is None:
            return GuardrailResult("predictions", "off", "prediction guardrail is off")
        from mooring.monitoring.predictions import read_prediction_log

        since = datetime.fromtimestamp(step.rollout_started_at, UTC)
        try:
            canary = read_prediction_log(
                self.log_url, self.name, version=dep.canary, since=since, last=_PREDICTION_ROWS_CAP
            )
            production = read_prediction_log(
                self.log_url,
                self.name,
                version=dep.production,
                since=since,
                last=_PREDICTION_ROWS_CAP,
            )
        except NotFoundError:
            return GuardrailResult(
                "predictions",
                "insufficient_data",
                "no prediction log yet (is [serving] log_sample_rate above 0?)",
            )
        except MooringError as exc:
            return GuardrailResult("predictions", "insufficient_data", f"prediction log: {exc}")
        except (OSError, pa.ArrowException) as exc:
            # The server writes log files in place: one may still be half-written. Next tick.
            return GuardrailResult(
                "predictions", "insufficient_data", f"prediction log not readable yet: {exc}"
            )
        numbers: dict[str, Any] = {
            "canary_rows": canary.num_rows,
            "production_rows": production.num_rows,
        }
        if min(canary.num_rows, production.num_rows) < rules.min_prediction_rows:
            return GuardrailResult(
                "predictions",
                "insufficient_data",
                f"{canary.num_rows} canary and {production.num_rows} production logged "
                f"predictions; judged from {rules.min_prediction_rows} each",
                numbers=numbers,
            )
        distances = prediction_distance(production, canary)
        numbers["jensen_shannon"] = distances
        if not distances:
            return GuardrailResult(
                "predictions", "insufficient_data", "no comparable outputs", numbers=numbers
            )
        column, worst = max(distances.items(), key=lambda item: item[1])
        summary = (
            f"{column} Jensen-Shannon distance canary vs production {worst:.3f} "
            f"({canary.num_rows} vs {production.num_rows} rows)"
        )
        if worst > rules.prediction_js:
            return GuardrailResult(
                "predictions",
                "breach",
                f"{summary} > {rules.prediction_js:g}",
                value=worst,
                threshold=rules.prediction_js,
                numbers=numbers,
            )
        return GuardrailResult("predictions", "ok", summary, value=worst, numbers=numbers)

    def _live_guardrail(
        self, dep: Deployment, step: _Step, rules: GuardrailsConfig
    ) -> GuardrailResult:
        if rules.live_metric_drop is None:
            return GuardrailResult("live_metric", "off", "live-metric guardrail is off")
        if self.live_metric is None or dep.production is None or dep.canary is None:
            return GuardrailResult("live_metric", "off", "no label feedback source")
        since = datetime.fromtimestamp(step.rollout_started_at, UTC)
        try:
            c_value, c_rows = self.live_metric(dep.canary, since)
            p_value, p_rows = self.live_metric(dep.production, since)
        except MooringError as exc:
            return GuardrailResult("live_metric", "insufficient_data", f"live metrics: {exc}")
        metric = rules.live_metric
        numbers: dict[str, Any] = {"canary_labels": c_rows, "production_labels": p_rows}
        if c_value is None or p_value is None or min(c_rows, p_rows) < rules.min_labels:
            return GuardrailResult(
                "live_metric",
                "insufficient_data",
                f"{c_rows} canary and {p_rows} production labels; judged from "
                f"{rules.min_labels} each",
                numbers=numbers,
            )
        numbers.update(canary=c_value, production=p_value)
        better_lower = _lower_is_better(metric)
        drop = (c_value - p_value) if better_lower else (p_value - c_value)
        numbers["drop"] = drop
        summary = f"live {metric} canary {c_value:.4f} vs production {p_value:.4f}"
        if drop > rules.live_metric_drop:
            return GuardrailResult(
                "live_metric",
                "breach",
                f"{summary}: worse by {drop:.4f} > {rules.live_metric_drop:g}",
                value=drop,
                threshold=rules.live_metric_drop,
                numbers=numbers,
            )
        return GuardrailResult("live_metric", "ok", summary, value=drop, numbers=numbers)

    # -- actions -------------------------------------------------------------------
    def _unchanged_since(self, dep: Deployment) -> bool:
        return self.registry.deployment(self.name).revision == dep.revision

    def _stale(
        self, dep: Deployment, results: list[GuardrailResult], numbers: dict[str, Any]
    ) -> RolloutDecision:
        return self._decision(
            dep,
            "hold",
            ["the deployment record changed during this check; judged again at the next tick"],
            guardrails=results,
            numbers=numbers,
        )

    def _rollback(
        self,
        dep: Deployment,
        step: _Step,
        breaches: list[GuardrailResult],
        results: list[GuardrailResult],
        numbers: dict[str, Any],
    ) -> RolloutDecision:
        reasons = [f"{b.name}: {b.message}" for b in breaches]
        reason = (
            f"canary {self.name}@{dep.canary} rolled back at {dep.canary_weight}%: "
            + "; ".join(reasons)
        )
        if not self._unchanged_since(dep):
            return self._stale(dep, results, numbers)
        self.registry.deploy(
            self.name,
            production=dep.production,
            canary=None,
            weight=0,
            actor=ACTOR,
            reason=reason,
        )
        decision = self._decision(
            dep, "rollback", reasons, to_weight=0, guardrails=results, numbers=numbers
        )
        log.warning("%s", reason)
        self._save(None, decision)
        self.alerts.send(
            Alert(
                model=self.name,
                version=dep.canary,
                kind="rollback",
                severity="page",
                summary=reason,
                details=decision.to_dict(),
            )
        )
        return decision

    def _advance(
        self,
        dep: Deployment,
        step: _Step,
        weight: int,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
    ) -> RolloutDecision:
        healthy = "; ".join(f"{r.name}: {r.message}" for r in results if r.status == "ok")
        reason = (
            f"canary {self.name}@{dep.canary} healthy at {dep.canary_weight}% for "
            f"{numbers['step_seconds']:.0f}s and {numbers['canary_requests']:g} requests; "
            f"advancing to {weight}%" + (f" ({healthy})" if healthy else "")
        )
        if not self._unchanged_since(dep):
            return self._stale(dep, results, numbers)
        after = self.registry.deploy(
            self.name,
            production=dep.production,
            canary=dep.canary,
            weight=weight,
            actor=ACTOR,
            reason=reason,
        )
        decision = self._decision(
            dep, "advance", [reason], to_weight=weight, guardrails=results, numbers=numbers
        )
        log.info("%s", reason)
        now = self.clock()
        fresh = _Step(
            canary=dep.canary if dep.canary is not None else 0,
            production=dep.production,
            weight=weight,
            revision=after.revision,
            started_at=now,
            rollout_started_at=step.rollout_started_at,
        )
        self._save(fresh, decision)
        return decision

    def _promote(
        self,
        dep: Deployment,
        step: _Step,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
    ) -> RolloutDecision:
        assert dep.canary is not None
        reason = (
            f"canary {self.name}@{dep.canary} healthy at every step "
            f"({', '.join(f'{s}%' for s in self.cfg.rollout.steps)}); promoted to production "
            f"after {numbers['step_seconds']:.0f}s and {numbers['canary_requests']:g} requests "
            f"at {dep.canary_weight}%"
        )
        if not self._unchanged_since(dep):
            return self._stale(dep, results, numbers)
        try:
            self.registry.promote(self.name, version=dep.canary, actor=ACTOR, reason=reason)
        except MooringError as exc:
            decision = self._decision(
                dep,
                "hold",
                [f"promotion of {self.name}@{dep.canary} refused: {exc}"],
                guardrails=results,
                numbers=numbers,
            )
            self._save(step, decision)
            return decision
        decision = self._decision(
            dep, "promote", [reason], to_weight=100, guardrails=results, numbers=numbers
        )
        log.info("%s", reason)
        self._save(None, decision)
        self.alerts.send(
            Alert(
                model=self.name,
                version=dep.canary,
                kind="promote",
                severity="info",
                summary=reason,
                details=decision.to_dict(),
            )
        )
        return decision

    # -- loop ----------------------------------------------------------------------
    def watch(
        self,
        interval_s: float,
        *,
        stop: threading.Event | None = None,
        max_ticks: int | None = None,
        on_decision: Callable[[RolloutDecision], None] | None = None,
    ) -> None:
        """Tick every ``interval_s`` seconds until ``stop`` is set (or ``max_ticks``).

        A failing tick (registry or server unreachable) is logged and retried at the
        next interval; the loop itself never dies of it.
        """
        stop = stop or threading.Event()
        ticks = 0
        while not stop.is_set():
            try:
                decision = self.tick()
            except Exception:
                log.exception("rollout tick failed; retrying in %.1fs", interval_s)
            else:
                if on_decision is not None:
                    on_decision(decision)
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                return
            stop.wait(interval_s)


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

    def live(version: int, since: datetime) -> tuple[float | None, int]:
        result = compute(cfg, version=version, since=since, registry=registry)
        return _metric_from(result, version, metric)

    return live


def _metric_from(result: Any, version: int, metric: str) -> tuple[float | None, int]:
    """Pick one version's metric and label count out of a live-metrics result."""
    data = result.to_dict() if hasattr(result, "to_dict") else result
    if isinstance(data, dict) and "versions" in data:
        data = data["versions"]
    entry: Any = None
    if isinstance(data, dict):
        entry = data.get(str(version)) or data.get(version)
    elif isinstance(data, list):
        entry = next((e for e in data if isinstance(e, dict) and e.get("version") == version), None)
    if not isinstance(entry, dict):
        return None, 0
    metrics = entry.get("metrics", entry)
    value = metrics.get(metric) if isinstance(metrics, dict) else None
    rows = entry.get("rows", entry.get("labels", entry.get("count", 0)))
    return (None if value is None else float(value)), int(rows or 0)
