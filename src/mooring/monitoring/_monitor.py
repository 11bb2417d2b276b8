"""The monitor: one loop that runs the rollout controller, the SLOs, drift checks and retraining.

Each tick scrapes the server once and shares the scrape: the rollout controller judges
the canary, the SLO monitor adds a sample and judges the burn rates. Every
``drift_interval_s`` the drift check runs on the production version's logged traffic;
drift raises an alert and may start retraining, as may a drop of the live metric.

``mooring monitor --watch`` runs it in the foreground; a server hosts it with
:meth:`Monitor.start` / :meth:`Monitor.stop` (a daemon thread), reading the server's
metrics in process.

A part of the tick that raises (the rollout, the shadow report, the SLOs, drift, the
live metric) never ends the tick: its error is in the report's ``errors``, recorded in
the rollout state file (ticks failed in a row, since when, the error: ``mooring status``
and the dashboard show it) and alerted (``monitor_failed``); the other parts carry on.

Examples:
    >>> urls = ["http://127.0.0.1:8501/metrics"]
    >>> monitor = Monitor(cfg, registry, metrics=urls)  # doctest: +SKIP
    >>> report = monitor.tick()  # doctest: +SKIP
    >>> report.rollout.action  # doctest: +SKIP
    'hold'
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from mooring.config import MooringConfig
from mooring.errors import MooringError
from mooring.formats._drift import DriftReport, RenderDrift
from mooring.monitoring._alerts import Alert, AlertManager
from mooring.monitoring._live_source import feedback_live_metric
from mooring.monitoring._retrain import RetrainRun, RetrainTrigger
from mooring.monitoring._rollout import RolloutController, RolloutDecision
from mooring.monitoring._scrape import (
    MetricsSnapshot,
    MetricsSource,
    MetricsUnavailableError,
    scrape,
)
from mooring.monitoring._shadow import shadow_report
from mooring.monitoring._slo import SLOMonitor, SLOReport
from mooring.monitoring._summary import drift_headline, drift_summary
from mooring.registry import Deployment, Registry

__all__ = ["Monitor", "MonitorReport"]

log = logging.getLogger("mooring.monitoring")

DriftCheck = Callable[[], Any]


@dataclass
class MonitorReport:
    """What one tick saw and did."""

    at: str
    rollout: RolloutDecision | None = None
    slo: SLOReport | None = None
    drift: dict[str, Any] | None = None
    retrain: RetrainRun | None = None
    #: The shadow report (:mod:`mooring.monitoring._shadow`) while a shadow is deployed.
    shadow: dict[str, Any] | None = None
    #: Production's quality estimated on the drift window, before labels
    #: (:meth:`Monitor._estimated`).
    estimated: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "at": self.at,
            "rollout": None if self.rollout is None else self.rollout.to_dict(),
            "slo": None if self.slo is None else self.slo.to_dict(),
            "drift": self.drift,
            "retrain": None if self.retrain is None else self.retrain.to_dict(),
            "shadow": self.shadow,
            "estimated": self.estimated,
            "errors": self.errors,
        }


class Monitor:
    """Rollout, SLOs, drift and retraining for one model, tick by tick.

    Args:
        cfg: the project.
        registry: the model registry (deployment record, audit log, baselines).
        metrics: /metrics URLs or a callable returning the text; default
            ``[rollout] metrics_urls``.
        config_path: the project file (for the retraining command).
        drift_interval_s: seconds between drift checks; None turns drift checks off.
        drift_check: what checks drift; default the monitoring layer's ``check_drift``
            on the production version (report written under home).
        render_drift: renders the drift report's HTML page beside its JSON (the
            composition root passes the dashboard's ``render_drift_html``); None: JSON only.
        alerts: shared alert manager; default from ``[monitoring.alerts]``.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        cfg: MooringConfig,
        registry: Registry,
        *,
        metrics: MetricsSource | None = None,
        config_path: Path | None = None,
        drift_interval_s: float | None = 300.0,
        drift_check: DriftCheck | None = None,
        render_drift: RenderDrift | None = None,
        alerts: AlertManager | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.name = cfg.project.name
        self.metrics: MetricsSource = metrics if metrics is not None else cfg.rollout.metrics_urls
        self.clock = clock
        self.alerts = alerts if alerts is not None else AlertManager.from_config(cfg, clock=clock)
        self.rollout = RolloutController(
            cfg,
            registry,
            metrics=self.metrics,
            alerts=self.alerts,
            clock=clock,
            config_path=config_path,
        )
        self.slo = SLOMonitor(cfg, alerts=self.alerts, clock=clock)
        self.retrain = RetrainTrigger(cfg, config_path=config_path, alerts=self.alerts, clock=clock)
        self._live = feedback_live_metric(cfg, registry, metric=cfg.monitoring.retrain.metric)
        self.drift_interval_s = drift_interval_s
        self.render_drift = render_drift
        self.drift_check = drift_check or self._check_drift
        self._last_drift: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: MonitorReport | None = None

    # -- one tick ------------------------------------------------------------------
    def tick(self) -> MonitorReport:
        """Scrape once; judge the canary and the SLOs; check drift when due."""
        now = self.clock()
        report = MonitorReport(at=datetime.fromtimestamp(now, UTC).isoformat())
        snapshot: MetricsSnapshot | None = None
        try:
            snapshot = scrape(self.metrics, self.name, clock=self.clock)
        except MetricsUnavailableError as exc:
            report.errors.append(str(exc))
        # Without a snapshot the controller tries on its own and reports why it cannot
        # judge; a tick of it that raises is recorded by the controller and comes back as
        # a hold saying so.
        try:
            report.rollout = self.rollout.tick(snapshot)
        except MooringError as exc:  # the model is not in the registry (yet)
            report.errors.append(f"rollout: {exc}")
        else:
            if "failures" in report.rollout.numbers:
                report.errors.append(f"rollout: {report.rollout.reasons[0]}")
        production = None
        with self._part("shadow", report):
            try:
                deployment = self.registry.deployment(self.name)
                production = deployment.production
                report.shadow = self._shadow(deployment, snapshot, report.rollout)
            except MooringError as exc:
                report.errors.append(f"registry: {exc}")
        if snapshot is not None:
            with self._part("slo", report):
                self.slo.observe(snapshot)
                report.slo = self.slo.evaluate(version=production, now=now)
        if self.drift_interval_s is not None and (
            self._last_drift is None or now - self._last_drift >= self.drift_interval_s
        ):
            self._last_drift = now
            with self._part("drift", report):
                report.drift, report.retrain = self._drift(report)
            with self._part("estimate", report):
                report.estimated, run = self._estimated(production)
                report.retrain = report.retrain or run
        if report.retrain is None:
            with self._part("live metric", report):
                report.retrain = self._live_metric(production, report)
        self.last_report = report
        return report

    @contextlib.contextmanager
    def _part(self, part: str, report: MonitorReport) -> Iterator[None]:
        """Run one part of the tick; an error in it is recorded and alerted, not raised."""
        try:
            yield
        except Exception as exc:
            report.errors.append(f"{part}: {type(exc).__name__}: {exc}")
            try:
                self.rollout.failing.failed(part, exc)
            except Exception:
                log.exception("cannot record the failure of the monitor's %s", part)
        else:
            try:
                self.rollout.failing.succeeded(part)
            except Exception:
                log.exception("cannot record that the monitor's %s succeeded", part)

    def _shadow(
        self, dep: Deployment, snapshot: MetricsSnapshot | None, rollout: RolloutDecision | None
    ) -> dict[str, Any] | None:
        """The shadow report: the rollout controller's when it judged one this tick."""
        if rollout is not None and isinstance(rollout.numbers.get("shadow"), dict):
            found: dict[str, Any] = rollout.numbers["shadow"]
            return found
        if dep.shadow is None:
            return None
        log_url = self.cfg.serving.log_url or str(self.cfg.home / "predictions")
        return shadow_report(self.cfg, self.registry, log_url, snapshot, deployment=dep).to_dict()

    def _check_drift(self) -> Any:
        from mooring.monitoring._drift import check_drift

        return check_drift(self.cfg, self.registry, html=self.render_drift)

    def _drift(self, report: MonitorReport) -> tuple[dict[str, Any] | None, RetrainRun | None]:
        try:
            result = self.drift_check()
        except MooringError as exc:
            report.errors.append(f"drift: {exc}")
            return None, None
        except (OSError, pa.ArrowException) as exc:
            # A log file the server is still writing; the next check reads it whole.
            report.errors.append(f"drift: prediction log not readable yet: {exc}")
            return None, None
        status = getattr(result, "status", None)
        drifted = list(getattr(result, "drifted", []) or [])
        version = getattr(result, "version", None)
        summary = {"status": status, "drifted": drifted, "version": version}
        if status != "drift":
            return summary, None
        # A bounded summary and the report's path; never the whole report, nor every name.
        details = (
            drift_summary(result)
            if isinstance(result, DriftReport)
            else {**summary, "drifted": drifted[:10], "drifted_count": len(drifted)}
        )
        self.alerts.send(
            Alert(
                model=self.name,
                version=version,
                kind="drift",
                severity="ticket",
                summary=f"{self.name}@{version}: drift in {drift_headline(drifted) or 'traffic'}",
                details=details,
            )
        )
        try:
            return summary, self.retrain.on_drift(result)
        except MooringError as exc:
            report.errors.append(f"retrain: {exc}")
            return summary, None

    def _live_metric(self, production: int | None, report: MonitorReport) -> RetrainRun | None:
        section = self.cfg.monitoring.retrain
        if production is None or section.metric_drop is None or not section.enabled:
            return None
        live = self._live
        if live is None:
            return None
        try:
            since = datetime.fromtimestamp(self.clock() - 7 * 86400, UTC)
            value, labels, _ = live(production, since)  # value, labelled rows, its error
            reference = _evaluation_value(
                self.registry.get(self.name, version=production).metrics, section.metric
            )
            return self.retrain.on_live_metric(
                version=production, live=value, reference=reference, labels=labels
            )
        except MooringError as exc:
            report.errors.append(f"live metric: {exc}")
            return None

    def _estimated(self, production: int | None) -> tuple[dict[str, Any] | None, RetrainRun | None]:
        """Production's ``[monitoring.retrain] metric`` estimated on the drift window (its
        last ``window_rows`` logged rows), and a retraining run when the estimate's whole
        band has stayed ``metric_drop`` worse than its evaluation value (below it; above it
        for an error such as ``mae``) for ``estimated_windows``
        windows in a row (a window counts once: a tick without new rows adds nothing)."""
        section = self.cfg.monitoring.retrain
        if production is None:
            return None, None
        import pyarrow.compute as pc

        from mooring.evaluation._metrics import HIGHER_IS_BETTER
        from mooring.formats._predictions import TIMESTAMP, read_prediction_log
        from mooring.monitoring._estimate import version_estimate
        from mooring.monitoring._state import estimate_file, read_json, write_json

        log_url = self.cfg.serving.log_url or str(self.cfg.home / "predictions")
        try:
            rows = read_prediction_log(
                log_url, self.name, version=production, last=self.cfg.monitoring.window_rows
            )
        except (MooringError, OSError, pa.ArrowException):
            return None, None  # no log yet, or a file being written: the next window
        if rows.num_rows == 0:
            return None, None
        mv = self.registry.get(self.name, version=production)
        estimate = version_estimate(mv, mv.record.run.task or "binary", rows)
        metric = estimate.metrics.get(section.metric)
        reference = _evaluation_value(mv.metrics, section.metric)
        end = str(pc.max(rows[TIMESTAMP]).as_py())
        found: dict[str, Any] = {
            "version": production,
            "rows": estimate.rows,
            "metric": section.metric,
            "estimate": None if metric is None else metric.to_dict(),
            "evaluation": reference,
            "refused": estimate.refused,
            "unreliable": estimate.unreliable,
            "window_end": end,
        }
        path = estimate_file(self.cfg.home, self.name)
        state = read_json(path) or {}
        below = int(state.get("worse_windows", 0)) if state.get("version") == production else 0
        # A window whose estimate is unreliable says nothing of the quality: the count of
        # windows worse than the evaluation is held, neither grown nor reset.
        unreliable = estimate.unreliable is not None and metric is not None
        if unreliable:
            self._unreliable(found)
        elif state.get("version") != production or state.get("window_end") != end:
            drop = section.metric_drop
            fell = (
                metric is not None
                and reference is not None
                and drop is not None
                and (
                    metric.high < reference - drop
                    if HIGHER_IS_BETTER.get(section.metric, True)
                    else metric.low > reference + drop  # an error (mae, rmse) grew
                )
            )
            below = below + 1 if fell else 0
        found["worse_windows"] = below
        run = self.retrain.on_estimate(
            version=production, estimate=None if unreliable else metric, reference=reference,
            rows=estimate.rows, windows=below,
        )  # fmt: skip
        if run is not None:
            below = found["worse_windows"] = 0
        write_json(path, {**found, "worse_windows": below})
        return found, run

    def _unreliable(self, found: dict[str, Any]) -> None:
        """Tell people that production's estimate cannot be trusted on its window (a ticket,
        once per cooldown): its number is not shown, nor acted on, until it can."""
        from mooring.monitoring._estimate import estimate_line

        version = found.get("version")
        self.alerts.send(
            Alert(
                model=self.name,
                version=version if isinstance(version, int) else None,
                kind="estimate_unreliable",
                severity="ticket",
                summary=f"{self.name}@{version}: {estimate_line(found)}",
                details={"estimate": found},
            )
        )

    # -- loop and hosting ----------------------------------------------------------
    def watch(
        self,
        interval_s: float,
        *,
        max_ticks: int | None = None,
        on_report: Callable[[MonitorReport], None] | None = None,
    ) -> None:
        """Tick every ``interval_s`` seconds until :meth:`stop` (or ``max_ticks``).

        A tick that fails is logged; the loop carries on.
        """
        ticks = 0
        while not self._stop.is_set():
            try:
                report = self.tick()
            except Exception:
                log.exception("monitor tick failed; retrying in %.1fs", interval_s)
            else:
                if on_report is not None:
                    on_report(report)
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                return
            self._stop.wait(interval_s)

    def start(self, interval_s: float = 10.0) -> Monitor:
        """Run :meth:`watch` in a daemon thread (for a server hosting the monitor)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.watch, args=(interval_s,), name="mooring-monitor", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread started by :meth:`start` (after the tick in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _evaluation_value(metrics: dict[str, Any] | None, name: str) -> float | None:
    """A metric's evaluation-time value from a version's stored metrics (flat or 'overall')."""
    if not metrics:
        return None
    for source in (metrics, metrics.get("overall"), metrics.get("metrics")):
        if isinstance(source, dict):
            value = source.get(name)
            if isinstance(value, int | float):
                return float(value)
            if isinstance(value, dict) and isinstance(value.get("value"), int | float):
                return float(value["value"])
    return None
