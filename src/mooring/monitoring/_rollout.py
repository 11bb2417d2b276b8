"""The rollout controller: a canary advances step by step while healthy, and is rolled back at once.

``[rollout] steps`` lists the canary's share of traffic (e.g. 5 → 25 → 50 → 100 percent).
At every :meth:`RolloutController.tick` the controller reads the deployment record, the
server's Prometheus counters and the prediction log, and compares the canary with
production over the current step. Each guardrail is *pass*, *fail* or *undecided*:

- **errors**, **latency** and the **live metric** are sequential tests
  (:mod:`mooring.monitoring._sequential`): intervals valid at every look, so the step
  acts as soon as the evidence allows and no fixed sample floor holds it back. Errors
  are 5xx answers and 4xx ones beyond production's rate (a canary that rejects what
  production answers is broken); any increase beyond the interval fails, also when
  production has no errors. Latency is a rank test on the two histograms with a
  practical margin. The live metric (labels) fails when worse than production beyond
  ``live_metric_drop``; a conclusive win carries guardrails still undecided;
- **load**: a canary version the server failed to load;
- **outputs** (:mod:`mooring.monitoring._output_guardrails`): NaN or constant answers
  (``broken``), the canary's live outputs against its own evaluation-time outputs
  (``outputs``), its evaluation metric against production's on the same data
  (``validated``), and canary vs production (``divergence``: reported, decisive only
  when configured). A live metric that passes overrides them: labels decide.

One failing guardrail rolls the canary back in the same tick (canary removed, weight 0).
A step advances when every enabled guardrail passes (and ``min_requests`` and
``min_step_duration``, both off by default, are met); after the last step the canary is
promoted. No traffic and no labels are no evidence: such a guardrail stays undecided,
never failing or passing for lack of data. An undecided step has a budget
(``max_hold``, and ``max_hold_requests`` if set); when it is spent the end-of-horizon
``policy`` decides: ``bias_to_action`` (the default: advance, or promote at the last step,
when no guardrail was shown harmful and the canary got traffic at the step), ``strict``
(hold and raise a ``rollout_stalled`` alert) or ``rollback``; the audit reason holds the
undecided guardrails' numbers.

**The split**: every tick compares the canary's share of the step's requests with its
weight (:func:`~mooring.monitoring._guardrails.sample_ratio`, a sequential test on the
counts); a sample-ratio mismatch holds the step (never advances or promotes it) and
raises a ``sample_ratio_mismatch`` alert; a guardrail shown failing still rolls back.

**A failing tick** (an error inside the check, e.g. a guardrail that cannot read a
column) is recorded in the state file (ticks failed in a row, since when, the error),
alerted (``monitor_failed``), and after ``max_failed_ticks`` in a row the rollout is
reported held by it (``monitor_held``, a page) until a tick succeeds; the tick returns
a ``hold`` decision instead of raising. With ``config_path`` the ``[rollout]`` table is
read again from the file at every tick, so a change of steps or policy takes effect;
a promotion names the steps the rollout ran, which the state file records.

With ``[rollout] start = "shadow"`` a deployment
with a shadow and no canary is judged by the shadow report
(:func:`~mooring.monitoring._shadow.shadow_step`): a healthy shadow becomes the canary
at the first step. Every change goes
through the registry with actor ``mooring-monitor`` and a reason holding the numbers,
so it lands in the audit log; rollbacks and promotions also raise alerts.

The step's start time and the counters at that moment live in
``<home>/monitoring/<model>/rollout.json`` (atomic writes), so a restarted monitor
carries on where it stopped; without that file the step is taken to have started at
the deployment record's last change, counted from the first scrape.

Examples:
    >>> controller = RolloutController(cfg, registry)  # doctest: +SKIP
    >>> controller.tick().action  # doctest: +SKIP
    'advance'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig, load_config
from mooring.config._monitoring import GuardrailsConfig
from mooring.errors import MooringError, NotFoundError
from mooring.monitoring._alerts import Alert, AlertManager
from mooring.monitoring._failing_ticks import FailingTicks
from mooring.monitoring._guardrails import (
    GuardrailResult,
    LiveMetric,
    SampleRatio,
    Status,
    error_guardrail,
    feedback_live_metric,
    latency_guardrail,
    live_metric_guardrail,
    load_guardrail,
    sample_ratio,
)
from mooring.monitoring._output_guardrails import judge_outputs
from mooring.monitoring._rollout_state import (
    Action,
    RolloutDecision,
    RolloutStep,
    iso_time,
    labels_decide,
    parse_time,
    policy_text,
    step_verdict,
)
from mooring.monitoring._scrape import (
    MetricsSnapshot,
    MetricsSource,
    MetricsUnavailableError,
    VersionCounters,
    scrape,
)
from mooring.monitoring._shadow import shadow_step
from mooring.monitoring._state import monitoring_dir, read_json, write_json
from mooring.registry import Deployment, Registry

__all__ = ["ACTOR", "RolloutController", "RolloutDecision"]

log = logging.getLogger("mooring.monitoring")

ACTOR = "mooring-monitor"


class RolloutController:
    """Advance, promote or roll back the canary of one model, one tick at a time.

    Args:
        cfg: the project (``[rollout]`` holds the steps and guardrails).
        registry: where the deployment record lives.
        metrics: the server's /metrics URLs, or a callable returning the text
            (a server hosting the controller passes its own metrics' ``render``);
            default ``[rollout] metrics_urls``.
        metrics_url: one /metrics URL (shorthand for ``metrics=[url]``).
        alerts: where rollbacks and promotions are reported; default from
            ``[monitoring.alerts]``.
        clock: seconds since the epoch (tests pass their own).
        live_metric: ``(version, since) -> (value, labelled rows)``; default: the
            monitoring layer's live metrics from label feedback, when present.
        state_path: where the step state is kept; default
            ``<home>/monitoring/<model>/rollout.json``.
        config_path: the project file, whose ``[rollout]`` is read again at every tick
            (None: the configuration given stays).

    Examples:
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
        metrics_url: str | None = None,
        alerts: AlertManager | None = None,
        clock: Callable[[], float] = time.time,
        live_metric: LiveMetric | None = None,
        state_path: Path | None = None,
        config_path: Path | None = None,
    ) -> None:
        # Its own copy: reading [rollout] again replaces the copy's section, never the
        # caller's (a server hosting the monitor keeps the configuration it started with).
        self.cfg = cfg.model_copy() if config_path is not None else cfg
        self.config_path = config_path
        #: What the last reading of ``config_path`` changed or why it failed (None: nothing).
        self.config_note: str | None = None
        self.name = cfg.project.name
        self.registry = registry
        if metrics is None and metrics_url is not None:
            metrics = [metrics_url]
        self.metrics: MetricsSource = metrics if metrics is not None else cfg.rollout.metrics_urls
        self.alerts = alerts if alerts is not None else AlertManager.from_config(cfg)
        self.clock = clock
        self.live_metric = (
            live_metric if live_metric is not None else feedback_live_metric(cfg, registry)
        )
        self.state_path = state_path or monitoring_dir(cfg) / "rollout.json"
        self.log_url = cfg.serving.log_url or str(cfg.home / "predictions")
        #: The monitor's parts failing tick after tick, kept in the same state file.
        self.failing = FailingTicks(self.cfg, self.state_path, self.alerts, clock)
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------------
    def _load(self) -> tuple[RolloutStep | None, dict[str, Any]]:
        data = read_json(self.state_path) or {}
        step = None
        if isinstance(data.get("step"), dict):
            try:
                step = RolloutStep.from_dict(data["step"])
            except (KeyError, TypeError, ValueError) as exc:
                log.error("ignoring malformed rollout state in %s: %s", self.state_path, exc)
        return step, data

    def _save(self, step: RolloutStep | None, decision: RolloutDecision | None = None) -> None:
        _, data = self._load()
        data["model"] = self.name
        data["policy"] = policy_text(self.cfg.rollout)
        data["step"] = None if step is None else step.to_dict()
        if decision is not None:
            data["last_decision"] = decision.to_dict()
            if decision.changed:
                data["last_change"] = decision.to_dict()
        write_json(self.state_path, data)

    def _step_for(
        self, dep: Deployment, stored: RolloutStep | None, now: float
    ) -> tuple[RolloutStep, bool]:
        """The current step; True when it is new (started now or unknown before)."""
        assert dep.canary is not None
        if (
            stored is not None
            and stored.canary == dep.canary
            and stored.revision == dep.revision
            and stored.weight == dep.canary_weight
        ):
            return stored, False
        steps_run = [dep.canary_weight] if dep.canary_weight > 0 else []
        if stored is not None and stored.canary == dep.canary:
            rollout_start = stored.rollout_started_at
            started = now
            ran = stored.steps_run
            steps_run = ran + steps_run if not ran or ran[-1] != dep.canary_weight else ran
        else:
            # No state for this canary (first sight, or the state file was lost): the step
            # began when the deployment record last changed.
            changed = parse_time(dep.updated_at)
            started = min(changed, now) if changed is not None else now
            rollout_start = started
        step = RolloutStep(
            canary=dep.canary,
            production=dep.production,
            weight=dep.canary_weight,
            revision=dep.revision,
            started_at=started,
            rollout_started_at=rollout_start,
            steps_run=steps_run,
        )
        return step, True

    # -- one tick ------------------------------------------------------------------
    def tick(self, snapshot: MetricsSnapshot | None = None) -> RolloutDecision:
        """Judge the canary once and act: hold, advance, promote or roll back.

        ``snapshot`` lets a caller that already scraped the server share it.
        """
        with self._lock:
            try:
                self._reload()
                decision = self._tick(snapshot)
            except NotFoundError:
                raise  # no such model (yet): nothing to roll out, not a failing check
            except Exception as exc:
                return self._failed_tick(exc)
            self.failing.succeeded("rollout")
            if self.config_note is not None:
                decision.numbers.setdefault("config", self.config_note)
            return decision

    # -- the configuration, read again ---------------------------------------------
    def _reload(self) -> None:
        """Read ``[rollout]`` from ``config_path`` again; keep the last good one on error."""
        self.config_note = None
        if self.config_path is None:
            return
        try:
            fresh = load_config(self.config_path).rollout
        except (MooringError, OSError) as exc:
            self.config_note = (
                f"[rollout] of {self.config_path} not read again ({exc}); the monitor keeps "
                "the rollout configuration it read last"
            )
            log.warning("%s", self.config_note)
            return
        old = self.cfg.rollout
        if fresh == old:
            return
        changed = [
            f"{key} {getattr(old, key)!r} → {getattr(fresh, key)!r}"
            for key in type(old).model_fields
            if getattr(old, key) != getattr(fresh, key)
        ]
        self.cfg.rollout = fresh
        self.config_note = f"[rollout] changed in {self.config_path}: " + "; ".join(changed)
        log.info("%s", self.config_note)

    # -- failing ticks -------------------------------------------------------------
    def _failed_tick(self, exc: Exception) -> RolloutDecision:
        """The rollout tick raised: record it and hold, saying so (the loop carries on)."""
        record = self.failing.failed("rollout", exc)
        stored, _ = self._load()
        canary = stored.canary if stored is not None else None
        weight = stored.weight if stored is not None else 0
        decision = RolloutDecision(
            model=self.name,
            action="hold",
            production=stored.production if stored is not None else None,
            canary=canary,
            from_weight=weight,
            to_weight=weight,
            reasons=[record.headline],
            numbers={"failures": record.to_dict()},
            at=iso_time(self.clock()),
        )
        try:
            self._save(stored, decision)
        except OSError as write_error:
            log.error("cannot record the failed tick in %s: %s", self.state_path, write_error)
        return decision

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
            at=iso_time(self.clock()),
            **extra,
        )

    def _tick(self, snapshot: MetricsSnapshot | None) -> RolloutDecision:
        now = self.clock()
        dep = self.registry.deployment(self.name)
        stored, _ = self._load()
        if dep.canary is None and dep.shadow is not None and self.cfg.rollout.start == "shadow":
            return self._from_shadow(dep, snapshot)
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
            if step.rollout_baseline is None and dep.production is not None:
                step.rollout_baseline = snap.version(dep.production)
            self._save(step)
        step.ticks += 1
        canary_total = snap.version(dep.canary)
        canary = canary_total.since(step.baseline.get(str(dep.canary)))
        production = snap.version(dep.production).since(step.baseline.get(str(dep.production)))
        rollout = snap.version(dep.production).since(step.rollout_baseline)
        elapsed = now - step.started_at
        rules = self.cfg.rollout.guardrails
        live = self._live_guardrail(dep, step, rules)
        results = labels_decide(
            [
                load_guardrail(canary_total, canary),
                error_guardrail(canary, production, rules, rollout),
                latency_guardrail(canary, production, rules),
                *self._output_guardrails(dep, step, rules),
                live,
            ]
        )
        numbers: dict[str, Any] = {
            "step_seconds": elapsed,
            "step_ticks": step.ticks,
            "step_started_at": iso_time(step.started_at),
            "rollout_started_at": iso_time(step.rollout_started_at),
            "canary_requests": canary.requests,
            "production_requests": production.requests,
        }
        split = self._split(dep, step, canary_total, snap.version(dep.production), canary)
        numbers["sample_ratio"] = split.to_dict()
        at_once = self._at_once(
            dep, step, results, numbers, split.message if split.mismatch else None
        )
        if at_once is not None:
            return at_once
        waiting = [
            f"{r.name}: {r.message}"
            for r in results
            if r.status == "insufficient_data" and not r.advisory
        ]
        if canary.requests < self.cfg.rollout.min_requests:
            waiting.insert(
                0,
                f"requests: canary has {canary.requests:g} of {self.cfg.rollout.min_requests} "
                f"needed at {dep.canary_weight}%",
            )
        if waiting:
            return self._wait(dep, step, waiting, results, numbers, elapsed, canary.requests)
        if elapsed < self.cfg.rollout.min_step_duration:
            reason = (
                f"{elapsed:.0f}s of {self.cfg.rollout.min_step_duration:g}s at "
                f"{dep.canary_weight}%; every guardrail passes so far"
            )
            decision = self._decision(dep, "hold", [reason], guardrails=results, numbers=numbers)
            self._save(step, decision)
            return decision
        return self._next(dep, step, results, numbers)

    def _split(
        self,
        dep: Deployment,
        step: RolloutStep,
        canary_total: VersionCounters,
        production_total: VersionCounters,
        canary: VersionCounters,
    ) -> SampleRatio:
        """The step's split against its weight, counted from the tick the canary answered.

        A canary still loading when the step began gets no share until it is ready, and a
        replica applies a new weight a poll later: the counts start at the first tick that
        finds the canary answering, so neither reads as a mismatch.
        """
        if step.split_from is None:
            if canary.requests > 0:
                step.split_from = {
                    "canary": canary_total.requests,
                    "production": production_total.requests,
                }
            return SampleRatio(
                0.0,
                0.0,
                dep.canary_weight,
                1.0,
                False,
                f"split: not judged yet at {dep.canary_weight}%: counted from the first tick "
                "that finds the canary answering (a canary still loading gets no share)",
                judged=False,
            )
        since_canary = canary_total.requests - step.split_from["canary"]
        since_production = production_total.requests - step.split_from["production"]
        if since_canary < 0 or since_production < 0:  # a server restarted: counters reset
            since_canary, since_production = canary_total.requests, production_total.requests
        return sample_ratio(
            since_canary,
            since_production,
            dep.canary_weight,
            alpha=self.cfg.rollout.guardrails.alpha,
            tolerance=self.cfg.rollout.sample_ratio_tolerance,
        )

    def _at_once(
        self,
        dep: Deployment,
        step: RolloutStep,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
        mismatch: str | None,
    ) -> RolloutDecision | None:
        """What acts before the step's own evidence: a failing guardrail rolls back, a
        sample-ratio mismatch holds, and a staged canary (0%, no traffic to judge) starts
        the rollout with step one. None: the step's evidence decides."""
        if step_verdict(results) == "fail":
            breaches = [r for r in results if r.status == "breach"]
            return self._rollback(dep, step, breaches, results, numbers)
        if mismatch is not None:
            return self._mismatch(dep, step, mismatch, results, numbers)
        if dep.canary_weight == 0:
            return self._advance(dep, step, self.cfg.rollout.steps[0], results, numbers)
        return None

    def _mismatch(
        self,
        dep: Deployment,
        step: RolloutStep,
        message: str,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
    ) -> RolloutDecision:
        """Hold a step whose traffic is not split as configured, and alert."""
        reason = f"held at {dep.canary_weight}%: {message}"
        self.alerts.send(
            Alert(
                model=self.name,
                version=dep.canary,
                kind="sample_ratio_mismatch",
                severity="ticket",
                summary=f"{self.name}@{dep.canary}: {reason}",
                details={"sample_ratio": numbers.get("sample_ratio"), "numbers": numbers},
            )
        )
        decision = self._decision(dep, "hold", [reason], guardrails=results, numbers=numbers)
        self._save(step, decision)
        return decision

    def _next(
        self,
        dep: Deployment,
        step: RolloutStep,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
        note: str = "",
    ) -> RolloutDecision:
        later = [s for s in self.cfg.rollout.steps if s > dep.canary_weight]
        if later:
            return self._advance(dep, step, later[0], results, numbers, note)
        return self._promote(dep, step, results, numbers, note)

    def _from_shadow(self, dep: Deployment, snapshot: MetricsSnapshot | None) -> RolloutDecision:
        """``start = "shadow"``: the shadow report decides whether it becomes the canary."""
        try:
            snap = snapshot or scrape(self.metrics, self.name, clock=self.clock)
        except MetricsUnavailableError:
            snap = None  # the report says it cannot judge errors
        decision = shadow_step(
            self.cfg,
            self.registry,
            self.log_url,
            dep,
            snap,
            self.alerts,
            actor=ACTOR,
            at=iso_time(self.clock()),
        )
        self._save(None, decision)
        return decision

    def _wait(
        self,
        dep: Deployment,
        step: RolloutStep,
        waiting: list[str],
        results: list[GuardrailResult],
        numbers: dict[str, Any],
        elapsed: float,
        requests: float,
    ) -> RolloutDecision:
        """Hold an undecided step; once its budget is spent, the end-of-horizon policy decides."""
        rollout = self.cfg.rollout
        reasons = [f"undecided at {dep.canary_weight}%: {len(waiting)} guardrail(s)", *waiting]
        spent = None
        if elapsed >= rollout.max_hold:
            spent = f"{elapsed:.0f}s, past max_hold = {rollout.max_hold:g}s"
        elif rollout.max_hold_requests is not None and requests >= rollout.max_hold_requests:
            spent = f"{requests:g} canary requests, max_hold_requests = {rollout.max_hold_requests}"
        if spent is None:
            decision = self._decision(
                dep, "insufficient_data", reasons, guardrails=results, numbers=numbers
            )
            self._save(step, decision)
            return decision
        undecided = "; ".join(waiting)
        policy = rollout.policy
        if policy == "rollback":
            budget = GuardrailResult(
                "budget",
                "breach",
                f"undecided after {spent} (policy = rollback): {undecided}",
            )
            return self._rollback(dep, step, [budget], results, numbers)
        if policy == "bias_to_action" and requests > 0:
            last = not [s for s in rollout.steps if s > dep.canary_weight]
            act = "promoted at the horizon" if last else "advanced on schedule"
            note = (
                f"{act}, undecided after {spent} (policy = bias_to_action: no guardrail was "
                f"shown harmful): {undecided}"
            )
            return self._next(dep, step, results, numbers, note)
        if policy == "bias_to_action":
            reasons[0] = (
                f"held at {dep.canary_weight}% for {spent}: the canary answered no request at "
                "this step, so there is nothing to act on (policy = bias_to_action advances a "
                "step that got traffic); check that the server routes to it"
            )
        else:
            reasons[0] = (
                f"held at {dep.canary_weight}% for {spent}, undecided on {len(waiting)} "
                "guardrail(s); policy = strict: the canary stays at its weight until the "
                "evidence decides or someone promotes or rolls it back"
            )
        self.alerts.send(
            Alert(
                model=self.name,
                version=dep.canary,
                kind="rollout_stalled",
                severity="ticket",
                summary=f"{self.name}@{dep.canary}: " + reasons[0],
                details={"waiting": waiting, "numbers": numbers},
            )
        )
        decision = self._decision(
            dep, "insufficient_data", reasons, guardrails=results, numbers=numbers
        )
        self._save(step, decision)
        return decision

    # -- guardrails needing other sources ------------------------------------------
    def _output_guardrails(
        self, dep: Deployment, step: RolloutStep, rules: GuardrailsConfig
    ) -> list[GuardrailResult]:
        assert dep.canary is not None
        since = datetime.fromtimestamp(step.rollout_started_at, UTC)
        return judge_outputs(
            self.cfg, self.registry, self.log_url, dep.canary, dep.production, since, rules
        )

    def _live_guardrail(
        self, dep: Deployment, step: RolloutStep, rules: GuardrailsConfig
    ) -> GuardrailResult:
        if rules.live_metric_drop is None:
            return GuardrailResult("live_metric", "off", "live-metric guardrail is off")
        if self.live_metric is None or dep.production is None or dep.canary is None:
            return GuardrailResult("live_metric", "off", "no label feedback source")
        since = datetime.fromtimestamp(step.rollout_started_at, UTC)
        try:
            canary = self.live_metric(dep.canary, since)
            production = self.live_metric(dep.production, since)
        except NotFoundError as exc:
            # No label feedback at all: the rollout is judged on its outputs.
            status: Status = "insufficient_data" if rules.require_labels else "unavailable"
            return GuardrailResult("live_metric", status, f"live metrics: {exc}")
        except MooringError as exc:
            return GuardrailResult("live_metric", "insufficient_data", f"live metrics: {exc}")
        return live_metric_guardrail(canary, production, rules)

    # -- actions -------------------------------------------------------------------
    def _unchanged_since(self, dep: Deployment) -> bool:
        return self.registry.deployment(self.name).revision == dep.revision

    def _refused(
        self,
        dep: Deployment,
        step: RolloutStep,
        what: str,
        exc: MooringError,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
    ) -> RolloutDecision:
        """Hold at the step when the registry refused its change (an approval missing)."""
        decision = self._decision(
            dep, "hold", [f"{what} refused: {exc}"], guardrails=results, numbers=numbers
        )
        self._save(step, decision)
        return decision

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
        step: RolloutStep,
        breaches: list[GuardrailResult],
        results: list[GuardrailResult],
        numbers: dict[str, Any],
    ) -> RolloutDecision:
        reasons = [f"{b.name} [{b.state}]: {b.message}" for b in breaches]
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
        step: RolloutStep,
        weight: int,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
        note: str = "",
    ) -> RolloutDecision:
        healthy = "; ".join(
            f"{r.name} [{r.state}]: {r.message}"
            for r in results
            if r.status == "ok" or _not_waited_for(r)
        )
        judged = note or _all_pass(results)
        reason = (
            f"canary {self.name}@{dep.canary} at {dep.canary_weight}% for "
            f"{numbers['step_seconds']:.0f}s, {numbers.get('step_ticks', 0)} tick(s) and "
            f"{numbers['canary_requests']:g} requests, {judged}; advancing to {weight}%"
            + (f" ({healthy})" if healthy else "")
        )
        if not self._unchanged_since(dep):
            return self._stale(dep, results, numbers)
        try:
            after = self.registry.deploy(
                self.name,
                production=dep.production,
                canary=dep.canary,
                weight=weight,
                actor=ACTOR,
                reason=reason,
            )
        except MooringError as exc:  # an unapproved canary holds at the first step
            what = f"advance of {self.name}@{dep.canary} to {weight}%"
            return self._refused(dep, step, what, exc, results, numbers)
        decision = self._decision(
            dep, "advance", [reason], to_weight=weight, guardrails=results, numbers=numbers
        )
        log.info("%s", reason)
        now = self.clock()
        fresh = RolloutStep(
            canary=dep.canary if dep.canary is not None else 0,
            production=dep.production,
            weight=weight,
            revision=after.revision,
            started_at=now,
            rollout_started_at=step.rollout_started_at,
            rollout_baseline=step.rollout_baseline,
            steps_run=[*step.steps_run, weight],
        )
        self._save(fresh, decision)
        return decision

    def _promote(
        self,
        dep: Deployment,
        step: RolloutStep,
        results: list[GuardrailResult],
        numbers: dict[str, Any],
        note: str = "",
    ) -> RolloutDecision:
        assert dep.canary is not None
        judged = note or _all_pass(results)
        ran = list(step.steps_run)
        if not ran or ran[-1] != dep.canary_weight:
            ran.append(dep.canary_weight)
        reason = (
            f"canary {self.name}@{dep.canary} passed every step it ran "
            f"({', '.join(f'{s}%' for s in ran)}); promoted to production "
            f"after {numbers['step_seconds']:.0f}s and {numbers['canary_requests']:g} requests "
            f"at {dep.canary_weight}%, {judged}"
        )
        if not self._unchanged_since(dep):
            return self._stale(dep, results, numbers)
        try:
            self.registry.promote(self.name, version=dep.canary, actor=ACTOR, reason=reason)
        except MooringError as exc:
            what = f"promotion of {self.name}@{dep.canary}"
            return self._refused(dep, step, what, exc, results, numbers)
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


def _not_waited_for(result: GuardrailResult) -> bool:
    """Undecided, but leaning within its margin: the step does not wait for it."""
    return result.status == "insufficient_data" and result.advisory


def _all_pass(results: list[GuardrailResult]) -> str:
    """How the guardrails judged a step that moves on its evidence, in words.

    >>> _all_pass([GuardrailResult("latency", "insufficient_data", "p99 open", advisory=True)])
    'every guardrail passes but latency, undecided and leaning within its margin (not waited for)'
    """
    open_ = [r.name for r in results if _not_waited_for(r)]
    if not open_:
        return "every guardrail passes"
    return (
        f"every guardrail passes but {', '.join(open_)}, undecided and leaning within its "
        "margin (not waited for)"
    )
