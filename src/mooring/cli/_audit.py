"""``mooring audit …``: the registry's tamper-evident audit log from the command line:
its events (``log``), the check of its HMAC chain and of what its events explain
(``verify``), the chain's head to anchor elsewhere (``head``), a keyed event binding the
events before the key (``seal``), and the events still owed to the
``[[registry.webhooks]]`` receivers (``deliver``).

Example:
    mooring audit verify -c mooring.toml --expect-head 42:3f9c…
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.cli._registry import (
    ActorOpt,
    ArtifactsOpt,
    ConfigOpt,
    JsonOpt,
    ReasonOpt,
    RegistryOpt,
    open_or_say_none,
    open_registry,
)
from mooring.config import load_config
from mooring.errors import UsageError
from mooring.registry._records import AuditProblem, AuditReport
from mooring.registry._sql.store import SqlStore
from mooring.registry._webhooks import Deliverer

audit_app = typer.Typer(help="The registry's tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """Only what changed: 'production: 1 → 2' (hashes and storage keys left out)."""
    hidden = {"artifact_key", "manifest_sha256"}
    if before is None:
        return ", ".join(f"{k}={v}" for k, v in (after or {}).items() if k not in hidden)
    if after is None:
        return "removed " + ", ".join(f"{k}={v}" for k, v in before.items() if k not in hidden)
    keys = sorted(set(before) | set(after))
    return (
        ", ".join(
            f"{k}: {before.get(k)} → {after.get(k)}" for k in keys if before.get(k) != after.get(k)
        )
        or "no change"
    )


@audit_app.command("log", epilog="Example: mooring audit log income --limit 20")
def log_command(
    name: Annotated[str | None, typer.Argument(help="Only this model's events.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Last N events.")] = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show audit events, oldest first."""
    opened = open_or_say_none(registry, artifacts, config, as_json, "no audit events yet")
    if opened is None:
        return
    with opened as reg:
        events = reg.history(name, limit=limit)
        if as_json:
            print_json([e.to_dict() for e in events])
            return
        table = Table(title="audit log", title_justify="left")
        for header in ("seq", "time", "actor", "action", "model", "version", "change", "reason"):
            table.add_column(header, overflow="fold", no_wrap=header == "time")
        for e in events:
            change = _change(e.before, e.after)
            reason = f"FORCED: {e.reason}" if e.forced else (e.reason or "")
            table.add_row(
                str(e.seq),
                e.created_at[:19].replace("T", " "),
                e.actor,
                e.action,
                e.model or "",
                "" if e.version is None else str(e.version),
                change,
                reason,
            )
        console.print(table)


ExpectHeadOpt = Annotated[
    str | None,
    typer.Option(
        "--expect-head",
        help="A head printed earlier by `mooring audit head` (SEQ:HASH) that must still be "
        "in the chain: catches a log cut short and its head moved back.",
    ),
]


@audit_app.command(
    "verify",
    epilog="Examples: mooring audit verify -c mooring.toml (exit 1: the chain is broken) | "
    "mooring audit verify --expect-head 42:3f9c…",
)
def verify_command(
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    expect_head: ExpectHeadOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the audit log's HMAC chain with the audit key, and replay its events against
    the registry's versions, deployments and aliases; name every edited, deleted, reordered
    or unkeyed event and every value no event explains (exit 1). Without the key it
    refuses (exit 2) rather than vouch."""
    with open_registry(registry, artifacts, config) as reg:
        report: AuditReport = reg.verify_audit(expect_head=expect_head, require_key=True)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(
            f"audit log intact: {report.events} events, HMAC chain verified with the audit key"
            + (f", head {expect_head.strip()} still in it" if expect_head else "")
            + "; the events explain every version, deployment and alias",
            soft_wrap=True,  # one line, so the head can be copied whole
        )
        if report.legacy_events:
            console.print(
                f"note: the first {report.legacy_events} event(s) predate the key (plain "
                "sha256); the keyed events after them bind them"
            )
    else:
        console.print(f"[bold red]audit log broken[/]: {len(report.problems)} problem(s)")
        for problem in report.problems:
            console.print(f"  - {_where(problem)}: {escape(problem.message)}", soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def _where(problem: AuditProblem) -> str:
    """``event 7 (state)``, or ``state`` for a problem no event is behind."""
    return f"event {problem.seq} ({problem.kind})" if problem.seq else problem.kind


@audit_app.command("head", epilog="Example: mooring audit head -c mooring.toml >> anchors.txt")
def head_command(
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the chain's head (SEQ:HASH): anchor it elsewhere, then verify --expect-head."""
    with open_registry(registry, artifacts, config) as reg:
        head = reg.audit_head()
    if as_json:
        print_json({"head": head})
    else:
        typer.echo(head)


@audit_app.command("seal", epilog='Example: mooring audit seal -c mooring.toml -r "keyed audit"')
def seal_command(
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Append a keyed event now (creating the key file if needed): it binds the events a
    registry wrote before it had an audit key, which any later write would also do."""
    with open_registry(registry, artifacts, config) as reg:
        report = reg.seal_audit(actor=actor, reason=reason)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(
        f"audit log sealed with the key: {report.events} events "
        f"({report.legacy_events} from before the key); head {report.head_seq}"
    )
    if not report.ok:
        console.print(
            f"[bold red]but the log has {len(report.problems)} problem(s)[/]: "
            "run `mooring audit verify`"
        )
        raise typer.Exit(1)


@audit_app.command(
    "deliver",
    epilog="Example: mooring audit deliver -c mooring.toml (from cron: exit 1 while a "
    "receiver is behind the log)",
)
def deliver_command(
    attempts: Annotated[
        int | None,
        typer.Option(
            "--attempts",
            min=1,
            help="Attempts per event (default: each receiver's max_attempts), with backoff.",
        ),
    ] = None,
    registry: RegistryOpt = None,
    artifacts: ArtifactsOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send every audit event a registry webhook receiver has not acknowledged yet, in
    order, signed; exit 1 when one is still behind (its cursor keeps the rest)."""
    path = config or Path("mooring.toml")
    receivers = load_config(path).registry.webhooks if path.is_file() else []
    if not receivers:
        raise UsageError(
            f"no [[registry.webhooks]] in {path}: nothing to deliver to; add a receiver, e.g. "
            '[[registry.webhooks]] url = "https://hooks.example.com/mooring" secret_env = '
            '"MOORING_HOOK_SECRET"'
        )
    with open_registry(registry, artifacts, config) as reg:
        if not isinstance(reg.store, SqlStore):  # pragma: no cover - the one store there is
            raise UsageError("audit webhooks need the registry's SQL store")
        reports = Deliverer(reg.store, receivers).deliver(attempts=attempts)
    if as_json:
        print_json([r.to_dict() for r in reports])
    else:
        table = Table(title="audit event delivery", title_justify="left")
        for header in ("receiver", "delivered now", "acknowledged up to", "status"):
            table.add_column(header, overflow="fold")
        for r in reports:
            status = "up to date" if r.ok else f"[red]behind[/]: {escape(r.error or '')}"
            table.add_row(escape(r.receiver), str(r.delivered), f"event {r.cursor}", status)
        console.print(table)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)
