"""The rollout controller: a canary advances step by step while healthy, and is rolled back at once.

``[rollout] steps`` lists the canary's share of traffic (e.g. 5 → 25 → 50 → 100 percent).
At every :meth:`RolloutController.tick` the controller loads its state, reads the
deployment record, scrapes the server's Prometheus counters, reads label feedback and
the prediction log into one :class:`~mooring.monitoring._evidence.Evidence`, calls
:func:`~mooring.monitoring._decide.decide` (pure: what to do and the next step), applies
the decision through the registry, saves the step and alerts. What it decides and why is
said there.

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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig, load_config
from mooring.errors import MooringError, NotFoundError
from mooring.monitoring._alerts import Alert, AlertManager
from mooring.monitoring._decide import Decision, Notice, current_step, decide
from mooring.monitoring._evidence import Evidence, LivePair
from mooring.monitoring._failing_ticks import FailingTicks
from mooring.monitoring._guardrail_live import LiveMetric, LiveUnread, live_value
from mooring.monitoring._live_source import feedback_live_metric
from mooring.monitoring._output_guardrails import OutputEvidence, read_outputs
from mooring.monitoring._rollout_state import (
    Action,
    RolloutDecision,
    RolloutStep,
    iso_time,
    policy_text,
)
from mooring.monitoring._scrape import (
    MetricsSnapshot,
    MetricsSource,
    MetricsUnavailableError,
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

    def _tick(self, snapshot: MetricsSnapshot | None) -> RolloutDecision:
        now = self.clock()
        dep = self.registry.deployment(self.name)
        stored, _ = self._load()
        if dep.canary is None and dep.shadow is not None and self.cfg.rollout.start == "shadow":
            return self._from_shadow(dep, snapshot)
        if dep.canary is None:
            if stored is not None:
                self._save(None)
            return self._unjudged(dep, "idle", "no canary deployed")
        step, fresh = current_step(dep, stored, now)
        try:
            snap = snapshot or scrape(self.metrics, self.name, clock=self.clock)
        except MetricsUnavailableError as exc:
            if fresh:
                self._save(step)
            return self._unjudged(dep, "insufficient_data", str(exc))
        if step.baseline is None:
            production = None if dep.production is None else snap.version(dep.production)
            step = replace(
                step,
                baseline={
                    str(v): snap.version(v) for v in (dep.canary, dep.production) if v is not None
                },
                rollout_baseline=production
                if step.rollout_baseline is None
                else step.rollout_baseline,
            )
            self._save(step)
        decision, after = decide(step, dep, self._evidence(dep, step, snap), self.cfg.rollout, now)
        return self._apply(dep, decision, after)

    def _unjudged(self, dep: Deployment, action: Action, reason: str) -> RolloutDecision:
        """A tick with nothing to judge (no canary, or no metrics to judge it on)."""
        return RolloutDecision(
            model=self.name,
            action=action,
            production=dep.production,
            canary=dep.canary,
            from_weight=dep.canary_weight,
            to_weight=dep.canary_weight,
            reasons=[reason],
            at=iso_time(self.clock()),
        )

    # -- evidence --------------------------------------------------------------------
    def _evidence(self, dep: Deployment, step: RolloutStep, snap: MetricsSnapshot) -> Evidence:
        """What this tick sees: the step's counters, label feedback and the prediction log."""
        assert dep.canary is not None and step.baseline is not None
        canary_total = snap.version(dep.canary)
        production_total = snap.version(dep.production)
        rules = self.cfg.rollout.guardrails
        since = datetime.fromtimestamp(step.rollout_started_at, UTC)
        return Evidence(
            canary=canary_total.since(step.baseline.get(str(dep.canary))),
            production=production_total.since(step.baseline.get(str(dep.production))),
            canary_total=canary_total,
            production_total=production_total,
            rollout=production_total.since(step.rollout_baseline),
            live=self._live(dep, since) if rules.live_metric_drop is not None else None,
            outputs=self._read_outputs(dep.canary, dep.production, since),
        )

    def _read_outputs(self, canary: int, production: int | None, since: datetime) -> OutputEvidence:
        """Both versions' logged rows since ``since``, with their references."""
        rules = self.cfg.rollout.guardrails
        return read_outputs(self.cfg, self.registry, self.log_url, canary, production, since, rules)

    def _live(self, dep: Deployment, since: datetime) -> LivePair | LiveUnread | None:
        """Both versions' live metric since the rollout started (None: no feedback source)."""
        if self.live_metric is None or dep.production is None or dep.canary is None:
            return None
        try:
            canary = live_value(self.live_metric(dep.canary, since))
            production = live_value(self.live_metric(dep.production, since))
        except NotFoundError as exc:  # no label feedback at all: judged on its outputs
            return LiveUnread(str(exc), absent=True)
        except MooringError as exc:
            return LiveUnread(str(exc))
        return canary, production

    # -- applying a decision ---------------------------------------------------------
    def _apply(
        self, dep: Deployment, decision: Decision, after: RolloutStep | None
    ) -> RolloutDecision:
        """Make the decision so: change the registry, log, save the step and alert."""
        record, action = decision.record, decision.action
        if record.changed:
            assert decision.change is not None
            if self.registry.deployment(self.name).revision != dep.revision:
                why = (
                    "the deployment record changed during this check; judged again at the next tick"
                )
                return self._held(record, why)
            try:
                after = self._change(dep, decision, after)
            except MooringError as exc:  # an unapproved canary holds at the first step
                if action == "rollback":
                    raise
                what = (
                    f"advance of {self.name}@{dep.canary} to {record.to_weight}%"
                    if action == "advance"
                    else f"promotion of {self.name}@{dep.canary}"
                )
                held = self._held(record, f"{what} refused: {exc}")
                self._save(decision.judged, held)
                return held
            log.log(
                logging.WARNING if action == "rollback" else logging.INFO, "%s", decision.change
            )
        notice = decision.notice
        if notice is not None and not record.changed:
            self._alert(dep, notice)
        self._save(after, record)
        if notice is not None and record.changed:
            self._alert(dep, notice)
        return record

    def _change(
        self, dep: Deployment, decision: Decision, after: RolloutStep | None
    ) -> RolloutStep | None:
        """The registry change of an advance, promotion or rollback; the step that follows."""
        reason, action = decision.change, decision.action
        if action == "promote":
            assert dep.canary is not None
            self.registry.promote(self.name, version=dep.canary, actor=ACTOR, reason=reason)
            return after
        changed = self.registry.deploy(
            self.name,
            production=dep.production,
            canary=dep.canary if action == "advance" else None,
            weight=decision.record.to_weight,
            actor=ACTOR,
            reason=reason,
        )
        # The step at its new weight is known by the revision the registry gave it.
        return None if after is None else replace(after, revision=changed.revision)

    @staticmethod
    def _held(record: RolloutDecision, why: str) -> RolloutDecision:
        """The decision turned into a hold at the step, saying why."""
        return replace(record, action="hold", to_weight=record.from_weight, reasons=[why])

    def _alert(self, dep: Deployment, notice: Notice) -> None:
        self.alerts.send(
            Alert(
                model=self.name,
                version=dep.canary,
                kind=notice.kind,
                severity=notice.severity,
                summary=notice.summary,
                details=notice.details,
            )
        )

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
