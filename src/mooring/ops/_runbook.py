"""An on-call sheet for one model, written from the project and its registry (Markdown).

``mooring ops runbook NAME`` writes ``<home>/ops/runbook/<NAME>.md``; the dashboard shows
the same sheet at ``/ui/models/<NAME>/runbook``. It holds what a person paged at night
needs on one page, for *this* project, never generic advice:

* what is deployed and since when (from the deployment record and the audit log);
* the service-level objectives and how fast each error budget burns now (the monitor's
  own counter samples, judged by :class:`~mooring.monitoring.SLOMonitor`);
* every alert of ``mooring ops prometheus`` (same names, same words), each with what it
  means and the first three commands to run: read-only ``mooring`` and ``curl`` commands
  spelled out for this project's config and server;
* the exact rollback command, and how to take a canary out of traffic and put it back;
* where the logs, reports, prediction log and audit trail are;
* the last incidents from the audit log (rollbacks, forced changes, the monitor's own
  decisions).

Every command sits alone on a line of a ``sh`` block and is also listed in
:attr:`Runbook.commands`, so a test can run them all against a real project.

Examples:
    >>> sheet = runbook(cfg, registry, config_path="mooring.toml")  # doctest: +SKIP
    >>> print(sheet.markdown.splitlines()[0])  # doctest: +SKIP
    # On call: income
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig
from mooring.errors import UsageError
from mooring.formats._files import atomic_write
from mooring.formats._metrics import (
    CONTRACT_VIOLATIONS,
    MODEL_LOAD_FAILURES,
    PREDICTION_LOG_ROWS,
    REQUEST_LATENCY,
    REQUESTS,
    total,
)
from mooring.monitoring._rollout import ACTOR as MONITOR_ACTOR
from mooring.monitoring._slo import SLOMonitor
from mooring.ops._prometheus import prometheus_rules, rollback_command
from mooring.registry import Deployment, Registry
from mooring.registry._records import AuditEvent
from mooring.registry._sql.store import mask_url

__all__ = ["Runbook", "runbook", "write_runbook"]

#: The prediction log's counters (rows written and dropped) share this prefix.
PREDICTION_LOG = PREDICTION_LOG_ROWS.removesuffix("_rows")

#: Audit actions that are incidents whoever took them.
_INCIDENT_ACTIONS = frozenset({"rollback", "delete", "archive"})


@dataclass(frozen=True)
class Runbook:
    """One model's on-call sheet: its Markdown and every shell command in it, in order."""

    model: str
    markdown: str
    commands: list[str] = field(default_factory=list)


class _Sheet:
    """Markdown lines and the commands written into them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.commands: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def sh(self, *commands: str) -> None:
        self.lines.append("```sh")
        self.lines.extend(commands)
        self.lines.extend(("```", ""))
        self.commands.extend(commands)


def _q(value: str) -> str:
    return shlex.quote(value)


def _metric_lines(url: str, name: str) -> str:
    """Print a metric's lines from /metrics (awk: exits 0 when there are none yet)."""
    return f"curl -sf {_q(url + '/metrics')} | awk {_q('/^' + name + '/')}"


def _checks(alert: str, model: str, cfg_flag: str, url: str, home: Path) -> list[str]:
    """The first three read-only commands for ``alert`` (a rule name of ops/prometheus)."""
    status = f"mooring status {cfg_flag}"
    health = f"curl -sf {_q(url + '/healthz')}"
    versions = f"curl -sf {_q(url + '/v1/models/' + model)}"
    audit = f"mooring audit log {_q(model)} {cfg_flag}"
    if alert.startswith("MooringAvailability"):
        return [health, _metric_lines(url, total(REQUESTS)), status]
    if alert.startswith("MooringLatency"):
        # Seconds and count per version and protocol: their ratio is the mean latency.
        return [_metric_lines(url, REQUEST_LATENCY + "_(sum|count)"), health, status]
    by_alert = {
        "MooringModelLoadFailed": [versions, _metric_lines(url, total(MODEL_LOAD_FAILURES)), audit],
        "MooringServingFallback": [health, versions, audit],
        "MooringRegistryUnavailable": [health, f"mooring models list {cfg_flag}", status],
        "MooringPredictionLogDropping": [
            _metric_lines(url, PREDICTION_LOG),
            f"du -sh {_q(str(home / 'predictions'))}",
            f"df -h {_q(str(home))}",
        ],
        "MooringDrift": [status, f"mooring models show {_q(model)} {cfg_flag}", health],
        "MooringCanaryIdle": [versions, _metric_lines(url, total(REQUESTS)), status],
        "MooringContractViolations": [
            _metric_lines(url, total(CONTRACT_VIOLATIONS)),
            f"mooring models show {_q(model)} {cfg_flag}",
            status,
        ],
    }
    return by_alert.get(alert, [health, status, audit])


def _when(iso: str | None) -> str:
    """An audit timestamp as a person reads it (UTC, to the second)."""
    if not iso:
        return "unknown"
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _since(events: Sequence[AuditEvent], role: str, version: int | None) -> str | None:
    """When ``version`` last became the model's ``role`` (production or canary)."""
    if version is None:
        return None
    for event in reversed(events):
        after, before = event.after or {}, event.before or {}
        if after.get(role) == version and before.get(role) != version:
            return event.created_at
    return None


def _is_incident(event: AuditEvent) -> bool:
    """A rollback, deletion or archive by anyone, a forced change, or a canary the rollout
    controller ended (rolled back or promoted)."""
    if event.action in _INCIDENT_ACTIONS or event.forced:
        return True
    before, after = event.before or {}, event.after or {}
    return (
        event.actor == MONITOR_ACTOR
        and before.get("canary") is not None
        and not after.get("canary")
    )


def _incidents(events: Sequence[AuditEvent], limit: int) -> list[AuditEvent]:
    """The last ``limit`` incidents, newest first."""
    return [e for e in events if _is_incident(e)][-limit:][::-1]


def _burn_table(sheet: _Sheet, cfg: MooringConfig, now: float | None) -> None:
    slo = cfg.monitoring.slo
    report = SLOMonitor(cfg).evaluate(now=now)
    if not report.statuses:
        sheet.add("No objective is set (`[monitoring.slo]`).", "")
        return
    sheet.add(
        "| objective | target | alert | windows (long / short) | burn now (long / short) "
        "| fires at |",
        "|---|---|---|---|---|---|",
    )
    for s in report.statuses:
        what = (
            "availability (5xx)"
            if s.objective == "availability"
            else f"latency ≤ {slo.latency_ms:g} ms"
        )
        burn = (
            f"{s.long.burn_rate:.2f}× / {s.short.burn_rate:.2f}×"
            if s.long.total or s.short.total
            else "no traffic sampled"
        )
        firing = " **firing**" if s.firing else ""
        sheet.add(
            f"| {what} | {s.target:g} | {s.severity}{firing} | {_span(s.long.seconds)} / "
            f"{_span(s.short.seconds)} | {burn} | {s.threshold:g}× |"
        )
    sheet.add(
        "",
        f"Burn rates come from the monitor's counter samples ({report.samples} kept, taken at "
        "each tick of `mooring monitor` or `mooring serve --monitor`); 1× spends the budget "
        "exactly over the SLO period.",
        "",
    )


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def runbook(
    cfg: MooringConfig,
    registry: Registry,
    *,
    name: str | None = None,
    config_path: str = "mooring.toml",
    url: str | None = None,
    incidents: int = 10,
    now: float | None = None,
) -> Runbook:
    """The on-call sheet of ``name`` (default: the project's model).

    ``config_path`` and ``url`` (default ``http://127.0.0.1:8501``, what ``mooring serve``
    listens on) are written into every command. Reading the registry and the monitor's
    state is all it does: nothing is scraped or changed.
    """
    model = name or cfg.project.name
    if model != cfg.project.name:
        raise UsageError(
            f"model {model!r} is not this project's model {cfg.project.name!r} ([project] name "
            f"in {config_path}); pass the mooring.toml of {model!r}'s project with -c"
        )
    base = (url or "http://127.0.0.1:8501").rstrip("/")
    cfg_flag = f"-c {_q(config_path)}"
    deployment = registry.deployment(model)
    events = registry.history(model)
    at = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
    sheet = _Sheet()
    sheet.add(
        f"# On call: {model}",
        "",
        f"Written {at.strftime('%Y-%m-%d %H:%M UTC')} from `{config_path}` for the server at "
        f"{base}. Regenerate with `mooring ops runbook {model} {cfg_flag}`; the numbers below "
        "are as of then.",
        "",
        "## Deployed",
        "",
    )
    for role, version in (("production", deployment.production), ("canary", deployment.canary)):
        if version is None:
            sheet.add(f"- **{role}**: none")
            continue
        mv = registry.get(model, version=version)
        since = _when(_since(events, role, version) or deployment.updated_at)
        share = f" at {deployment.canary_weight}% of traffic" if role == "canary" else ""
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(mv.metrics.items())[:4])
        sheet.add(
            f"- **{role}**: version {version}{share}, since {since} (registered "
            f"{_when(mv.created_at)}{'; ' + metrics if metrics else ''})"
        )
    if deployment.previous:
        sheet.add(f"- a rollback restores version {deployment.previous[-1]}")
    sheet.add("", "## Service-level objectives", "")
    _burn_table(sheet, cfg, now)
    _alerts(sheet, cfg, model, cfg_flag, base, config_path)
    _actions(sheet, cfg, model, cfg_flag, deployment, config_path)
    _places(sheet, cfg, model, cfg_flag, base)
    sheet.add("## Recent incidents", "")
    picked = _incidents(events, incidents)
    if not picked:
        sheet.add("None in the audit log.", "")
    for e in picked:
        change = _change(e.before, e.after)
        why = f": {e.reason}" if e.reason else ""
        forced = " (forced)" if e.forced else ""
        sheet.add(f"- {_when(e.created_at)} — {e.action}{forced} by {e.actor}{change}{why}")
    sheet.add("")
    return Runbook(model=model, markdown="\n".join(sheet.lines), commands=sheet.commands)


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if not before or not after:
        return ""

    def state(d: dict[str, Any]) -> str:
        canary = f", canary {d['canary']} at {d.get('weight', 0)}%" if d.get("canary") else ""
        return f"production {d.get('production')}{canary}"

    return f" ({state(before)} → {state(after)})"


def _alerts(
    sheet: _Sheet, cfg: MooringConfig, model: str, cfg_flag: str, url: str, config_path: str
) -> None:
    sheet.add(
        "## Alerts",
        "",
        f"The alerts of `mooring ops prometheus {cfg_flag}` (the same names and words); "
        "mooring's own monitor raises the SLO ones on the same numbers. First checks only "
        "read.",
        "",
    )
    seen: set[str] = set()
    for group in prometheus_rules(cfg, config_path=config_path)["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            if name is None or name in seen:
                continue
            seen.add(name)
            severity = rule["labels"]["severity"]
            text = rule["annotations"]["description"]
            sheet.add(f"### {name} ({severity})", "", text, "", "First checks:", "")
            sheet.sh(*_checks(name, model, cfg_flag, url, cfg.home))


def _actions(
    sheet: _Sheet,
    cfg: MooringConfig,
    model: str,
    cfg_flag: str,
    deployment: Deployment,
    config_path: str,
) -> None:
    production = deployment.production
    sheet.add(
        "## Act",
        "",
        "Roll back: restore the previous production version and drop any canary, in one "
        "step (servers follow within `[serving] poll_interval_s`; audited):",
        "",
    )
    sheet.lines.extend(("```sh", rollback_command(cfg, config_path, "on-call: WHY"), "```", ""))
    if deployment.canary is not None and production is not None:
        sheet.add(
            f"Take canary {deployment.canary} out of traffic and keep production "
            f"{production} (the rollout stops; nothing is deleted), then put it back at its "
            "weight to start the rollout again:",
            "",
        )
        pause = (
            f"mooring models deploy {_q(model)} --production {production} {cfg_flag} "
            f"-r {_q('on-call: WHY')}"
        )
        resume = (
            f"mooring models deploy {_q(model)} --production {production} "
            f"--canary {deployment.canary} --weight {deployment.canary_weight} {cfg_flag} "
            f"-r {_q('on-call: resume')}"
        )
        sheet.lines.extend(("```sh", pause, resume, "```", ""))
    else:
        sheet.add("No canary is deployed, so there is none to take out of traffic.", "")


def _places(sheet: _Sheet, cfg: MooringConfig, model: str, cfg_flag: str, url: str) -> None:
    home = cfg.home
    registry_url = cfg.project.registry or f"sqlite:///{home / 'registry.db'}"
    sheet.add(
        "## Where things are",
        "",
        f"- registry: `{mask_url(registry_url)}`; artifacts: "
        f"`{cfg.project.artifacts or home / 'artifacts'}`",
        f"- prediction log: `{home / 'predictions'}`; labels: `{home / 'feedback'}`",
        f"- drift reports: `{home / 'monitoring' / model / 'drift'}` (the monitor's state "
        f"beside them)",
        f"- crash files of the CLI: `{home / 'logs'}`; the server's access log is its standard "
        "output (one JSON line per request, logger `mooring.serving.access`)",
        f"- dashboard: {url}/ui/models/{model} (this sheet: {url}/ui/models/{model}/runbook)",
        "- audit trail (who changed what, and why) and its integrity check:",
        "",
    )
    sheet.sh(f"mooring audit log {_q(model)} {cfg_flag}", f"mooring audit verify {cfg_flag}")


def write_runbook(
    cfg: MooringConfig,
    registry: Registry,
    folder: Path,
    **options: Any,
) -> tuple[Path, Runbook]:
    """Write ``<folder>/<model>.md`` atomically; returns its path and the sheet."""
    sheet = runbook(cfg, registry, **options)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sheet.model}.md"
    atomic_write(path, sheet.markdown.encode("utf-8"))
    return path, sheet
