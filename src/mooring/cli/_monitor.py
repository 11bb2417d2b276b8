"""``mooring monitor``: rollout guardrails, SLO burn rates, drift checks and retraining triggers.

Without ``--watch`` it runs one tick and exits (cron-friendly; state carries over
between runs under ``<home>/monitoring/<model>/``); with ``--watch`` it ticks every
``--interval`` until interrupted. Exit code 1 when the tick rolled a canary back. A
retraining run started by a one-shot tick is waited for, so its record is complete.

``[rollout]`` is read again from the file at every tick, so a change of steps or policy
takes effect in a running ``--watch``. A tick that fails inside (a guardrail that cannot
read a column) never stops the command: the error is printed, recorded for ``mooring
status`` and alerted; ``mooring --debug monitor`` prints its traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mooring.cli._app import app
from mooring.cli._common import console, print_json, seconds_option, state
from mooring.config import load_config
from mooring.errors import UsageError


@app.command(
    "monitor",
    epilog="Examples: mooring monitor -c mooring.toml --json | mooring monitor --watch",
)
def monitor(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="mooring.toml of the project to monitor.")
    ] = Path("mooring.toml"),
    watch: Annotated[bool, typer.Option("--watch", help="Keep ticking until interrupted.")] = False,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between ticks with --watch, e.g. 10s.")
    ] = "10s",
    metrics_url: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics-url",
            help="The server's /metrics (repeat for replicas); default: rollout.metrics_urls.",
        ),
    ] = None,
    drift_every: Annotated[
        str, typer.Option("--drift-every", help="Time between drift checks, e.g. 5m.")
    ] = "5m",
    drift: Annotated[
        bool, typer.Option("--drift/--no-drift", help="Check drift of the logged traffic.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each tick's report as JSON.")
    ] = False,
) -> int:
    """Advance or roll back the canary, judge SLO burn rates, check drift, trigger retraining."""
    from mooring.dashboard._drift_report import render_drift_html
    from mooring.monitoring._monitor import Monitor, MonitorReport
    from mooring.registry import Registry

    every = seconds_option(interval, "--interval")
    if every <= 0:
        raise UsageError(f"--interval {interval!r} must be above zero, e.g. 10s")
    cfg = load_config(config)
    if state.debug:
        # A failing tick's traceback, which the monitor logs at DEBUG level.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        monitor_log = logging.getLogger("mooring.monitoring")
        monitor_log.setLevel(logging.DEBUG)
        monitor_log.addHandler(handler)
    registry = Registry.from_config(cfg)
    runner = Monitor(
        cfg,
        registry,
        metrics=metrics_url or None,
        config_path=config.resolve(),
        drift_interval_s=seconds_option(drift_every, "--drift-every") if drift else None,
        render_drift=render_drift_html,
    )
    rolled_back = False

    def show(report: MonitorReport) -> None:
        nonlocal rolled_back
        if report.rollout is not None and report.rollout.action == "rollback":
            rolled_back = True
        if as_json:
            print_json(report.to_dict())
            return
        _print(report)

    try:
        if watch:
            runner.watch(every, on_report=show)
        else:
            report = runner.tick()
            if report.retrain is not None:
                # One shot: stay until the retraining command ends, so its record is complete.
                report.retrain.wait()
            show(report)
    except KeyboardInterrupt:
        pass
    finally:
        registry.close()
    return 1 if rolled_back and not watch else 0


def _print(report: object) -> None:
    from mooring.monitoring._estimate import estimate_line
    from mooring.monitoring._monitor import MonitorReport
    from mooring.monitoring._rollout_view import GuardrailView, decision_line, reasons_beyond
    from mooring.monitoring._shadow import shadow_lines
    from mooring.monitoring._summary import drift_headline

    assert isinstance(report, MonitorReport)
    r = report.rollout
    if r is not None:
        # The decision in one line, then what the guardrails' lines do not say, then each
        # guardrail once (an advance's reason alone repeats them all).
        views = [GuardrailView.from_result(g) for g in r.guardrails]
        line = decision_line(r.action, r.canary, r.from_weight, r.to_weight, views, r.numbers)
        console.print(f"[bold]{report.at}[/] rollout: {escape(line)}")
        for reason in reasons_beyond(r.reasons, views):
            console.print(f"  {escape(reason)}", soft_wrap=True)
        for g in views:
            if g.state != "off":
                console.print(f"  · {escape(g.line)}", soft_wrap=True)
    if report.slo is not None:
        for s in report.slo.statuses:
            mark = "[bold red]FIRING[/]" if s.firing else "ok"
            console.print(
                f"  slo {s.objective}/{s.severity}: {mark} burn {s.long.burn_rate:.2f}× "
                f"({s.long.seconds:g}s) / {s.short.burn_rate:.2f}× ({s.short.seconds:g}s), "
                f"threshold {s.threshold:g}×"
            )
    if report.drift is not None:
        drifted = drift_headline(report.drift.get("drifted") or []) or "-"
        console.print(escape(f"  drift: {report.drift.get('status')} (drifted: {drifted})"))
    if report.shadow is not None:
        for line in shadow_lines(report.shadow):
            console.print(f"  {escape(line)}", soft_wrap=True)
    if report.estimated is not None:
        console.print(f"  {escape(estimate_line(report.estimated))}", soft_wrap=True)
    if report.retrain is not None:
        console.print(f"  retraining started: {' '.join(report.retrain.command)}", soft_wrap=True)
    # An error the rollout already gave as its reason (e.g. the server's /metrics could not
    # be read) is said once, under the rollout line.
    said = set(r.reasons) if r is not None else set()
    for error in report.errors:
        if error not in said:
            console.print(f"  [yellow]{escape(error)}[/]", soft_wrap=True)
