"""``mooring audit deliver``: the audit events still owed to the ``[[registry.webhooks]]``
receivers, delivered with retries (the catch-up beside the delivery after each write)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mooring.cli._common import console, print_json
from mooring.cli._models import (
    ArtifactsOpt,
    ConfigOpt,
    JsonOpt,
    RegistryOpt,
    audit_app,
    open_registry,
)
from mooring.config import load_config
from mooring.errors import UsageError
from mooring.registry._sql.store import SqlStore
from mooring.registry._webhooks import Deliverer


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
