"""``project_status``: what serves, the canary and its rollout, the last run and drift check.

Reads the registry's deployment record, the newest run record under
``<home>/runs/``, ``<home>/monitoring/<model>/drift/latest.json`` (written by
the monitoring layer's drift check) when it exists and the rollout controller's
``<home>/monitoring/<model>/rollout.json``. The last rollback comes from the registry's
audit log, which keeps every one (``rollout.json`` keeps only the last change, which the
next rollout's first step replaces): the rollout controller's (a deploy by
``mooring-monitor`` that drops the canary and keeps production) or a person's
``mooring models rollback``.

Examples:
    >>> status = project_status(load_config("mooring.toml"))  # doctest: +SKIP
    >>> status.production, status.canary, status.canary_weight  # doctest: +SKIP
    (1, 2, 5)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mooring.config import MooringConfig
from mooring.errors import DataError, NotFoundError
from mooring.formats._drift import LATEST, drift_folder, read_report
from mooring.formats._pipeline_run import RunOutcome
from mooring.monitoring._baselines import comparability_note, evaluation_data_label
from mooring.monitoring._rollout import ACTOR as MONITOR
from mooring.monitoring._rollout_view import RolloutView, read_rollout, rollout_path
from mooring.monitoring._state import estimate_file, read_json
from mooring.pipeline._run import find_runs

if TYPE_CHECKING:
    from mooring.registry._records import AuditEvent

__all__ = ["REASON_CHARS", "ProjectStatus", "last_rollback", "project_status"]

#: How much of the last rollback's reason status shows (the audit log keeps all of it).
REASON_CHARS = 200


@dataclass
class ProjectStatus:
    """The state of one project's model, gathered from the registry, runs and monitoring."""

    model: str
    registry: str
    versions: int = 0
    production: int | None = None
    canary: int | None = None
    canary_weight: int = 0
    revision: int = 0
    updated_at: str | None = None
    production_metrics: dict[str, Any] = field(default_factory=dict)
    canary_metrics: dict[str, Any] = field(default_factory=dict)
    #: The evaluation data each version's metrics come from (file name, sha256 prefix).
    production_eval_data: str | None = None
    canary_eval_data: str | None = None
    #: Set when production's and the canary's metrics come from different data.
    metrics_note: str | None = None
    last_run: dict[str, Any] | None = None
    last_drift: dict[str, Any] | None = None
    #: The monitor's estimate of production's quality on its last window, before labels.
    last_estimate: dict[str, Any] | None = None
    #: The shadow report from the prediction log (errors need the monitor's scrape).
    shadow: dict[str, Any] | None = None
    #: The canary's rollout: its step and the guardrails of the last decision.
    rollout: RolloutView | None = None
    #: The last rollback in the audit log (see :func:`last_rollback`), None if never.
    last_rollback: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        data = asdict(self)
        data["rollout"] = None if self.rollout is None else self.rollout.to_dict()
        return data


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = ("auc", "log_loss", "ece", "accuracy", "macro_f1", "rmse", "mae", "r2")
    return {k: metrics[k] for k in keep if isinstance(metrics.get(k), int | float)}


def _last_run(cfg: MooringConfig) -> dict[str, Any] | None:
    runs = find_runs(cfg.home)
    if not runs:
        return None
    run = runs[0]
    result = run.result or RunOutcome()
    return {
        "run_id": run.run_id,
        "status": run.status,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "duration_s": run.duration_s,
        "version": result.version,
        "deployed_as": result.deployed_as,
        "reason": run.reason,
        "error": run.error_message,
        "cached_steps": list(run.cached_steps or ()),
        "record": str(cfg.home / "runs" / str(run.run_id) / "run.json"),
    }


def _last_drift(cfg: MooringConfig) -> dict[str, Any] | None:
    path = drift_folder(cfg.home, cfg.project.name) / LATEST
    if not path.is_file():
        return None
    try:
        report = read_report(path)
    except DataError:
        return None
    return {
        "created_at": report.created_at,
        "status": report.status,
        "version": report.version,
        "drifted": report.drifted,
        "rows": report.window.get("rows"),
        "report": str(path),
    }


def last_rollback(events: list[AuditEvent]) -> dict[str, Any] | None:
    """The newest rollback among ``events`` (oldest first, as ``Registry.history`` gives
    them): the version rolled back, when, by whom, why, the production version after it,
    and ``line``, the one line status shows (the reason cut at :data:`REASON_CHARS`).

    A rollback is the rollout controller dropping a failing canary (a deploy by
    ``mooring-monitor`` from a canary to none, production unchanged) or a ``rollback``
    (``mooring models rollback``: back to the previous production version).
    """
    for event in reversed(events):
        before, after = event.before or {}, event.after or {}
        if event.action == "rollback":
            version = before.get("production")
        elif (
            event.action == "deploy"
            and event.actor == MONITOR
            and before.get("canary") is not None
            and after.get("canary") is None
            and after.get("production") == before.get("production")
        ):
            version = before.get("canary")
        else:
            continue
        reason = " ".join((event.reason or "no reason given").split())
        shown = reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS] + "…"
        who = f"v{version}" if version is not None else "a version"
        return {
            "version": version,
            "at": event.created_at,
            "actor": event.actor,
            "reason": event.reason,
            "production_after": after.get("production"),
            "line": f"{who} at {event.created_at} by {event.actor}: {shown}",
        }
    return None


def project_status(cfg: MooringConfig) -> ProjectStatus:
    """Gather the status of the project's model (never trains, never writes)."""
    from mooring.registry import Registry
    from mooring.registry._sql.store import mask_url

    name = cfg.project.name
    url = cfg.project.registry or f"sqlite:///{cfg.home / 'registry.db'}"
    status = ProjectStatus(model=name, registry=mask_url(url))
    status.last_run = _last_run(cfg)
    status.last_drift = _last_drift(cfg)
    status.last_estimate = read_json(estimate_file(cfg.home, name))
    status.rollout = read_rollout(rollout_path(cfg.home, name), canary=None)
    if cfg.project.registry is None and not (cfg.home / "registry.db").is_file():
        return status  # nothing registered yet; do not create an empty registry
    with Registry.from_config(cfg) as registry:
        try:
            versions = registry.versions(name)
            deployment = registry.deployment(name)
        except NotFoundError:
            return status
        by_number = {mv.version: mv for mv in versions}
        status.versions = len(versions)
        status.production = deployment.production
        status.canary = deployment.canary
        status.canary_weight = deployment.canary_weight
        status.revision = deployment.revision
        status.updated_at = deployment.updated_at
        status.rollout = read_rollout(rollout_path(cfg.home, name), canary=deployment.canary)
        status.last_rollback = last_rollback(registry.history(name))
        if deployment.production in by_number:
            production = by_number[deployment.production]
            status.production_metrics = _headline(production.metrics)
            status.production_eval_data = evaluation_data_label(production)
        if deployment.canary in by_number:
            canary = by_number[deployment.canary]
            status.canary_metrics = _headline(canary.metrics)
            status.canary_eval_data = evaluation_data_label(canary)
        shown = [by_number[v] for v in (deployment.production, deployment.canary) if v in by_number]
        status.metrics_note = comparability_note(shown)
        if deployment.shadow is not None:
            from mooring.monitoring._shadow import shadow_report

            log_url = cfg.serving.log_url or str(cfg.home / "predictions")
            report = shadow_report(cfg, registry, log_url, None, deployment=deployment)
            status.shadow = report.to_dict()
    return status
