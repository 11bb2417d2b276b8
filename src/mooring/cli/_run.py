"""``mooring run``, ``mooring init``, ``mooring status``: the whole lifecycle, from the shell."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mooring._project import Project
from mooring._scaffold import scaffold_config
from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.config import load_config
from mooring.errors import ChecksFailedError, UsageError
from mooring.formats._files import atomic_write
from mooring.formats._pipeline_run import PipelineRun, RunOutcome
from mooring.pipeline import RunObserver, StepRecord, project_status
from mooring.registry._audit import key_file, load_audit_key

if TYPE_CHECKING:
    from mooring.monitoring._rollout_view import RolloutView

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Project file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

_MARKS = {
    "done": "[green]✓[/]",
    "cached": "[cyan]↺[/]",
    "skipped": "[dim]–[/]",
    "rejected": "[red]✗[/]",
    "failed": "[red]![/]",
}


class _ConsoleObserver(RunObserver):
    """One line per step, a spinner while a step runs, epoch bars while training."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.training: tuple[str, int | None] = ("", None)  # the model training: label, rows

    def run_started(self, run_id: str, resumed: bool) -> None:
        verb = "continuing interrupted run" if resumed else "run"
        console.print(f"{verb} [bold]{run_id}[/]")

    def step_started(self, name: str) -> None:
        if name == "train" or not console.is_terminal:
            return  # the epoch bars of training take the screen; no spinner in a log file
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn(f"{name}…"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.progress.add_task(name, total=None)
        self.progress.start()

    def step_finished(self, record: StepRecord) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        mark = _MARKS.get(record.status, " ")
        timing = f"{record.duration_s:6.1f}s" if record.status != "cached" else "  cache"
        console.print(
            f"{mark} {record.name:<9} {timing}  {escape(record.message)}",
            soft_wrap=True,
            markup=True,
        )

    def training_started(self, name: str | None, kind: str, rows: int, epochs: int) -> None:
        self.training = (name or kind, rows)
        what = f"candidate {escape(name)} ({kind})" if name else f"the {kind} model"
        # Trees: no Keras epochs; a linear model: solved, one epoch a pass over the rows.
        rounds = {"gbt": "", "linear": f", solved in at most {epochs} passes"}.get(
            kind, f", {epochs} epoch(s)"
        )
        console.print(f"training {what}: {rows:,} rows{rounds}")

    def training_callbacks(self, epochs: int, steps_per_epoch: int) -> Sequence[Any]:
        from mooring.cli._train import _progress_callback

        label, rows = self.training
        return [_progress_callback(epochs, steps_per_epoch, False, label=label, rows=rows)]


@app.command(
    "run",
    epilog=(
        "Examples: mooring run | mooring run -c mooring-demo/mooring.toml --json | "
        "mooring run --train-data fresh.csv (retrain on new data) | mooring run --force | "
        "mooring run --waive-change -r 'production v3 read a leaking column'"
    ),
)
def run_command(
    config: ConfigOpt = Path("mooring.toml"),
    train_data: Annotated[
        Path | None,
        typer.Option("--train-data", help="Train on this file instead of \\[data] train."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-run every step: no cache, no resume.")
    ] = False,
    waive_change: Annotated[
        bool,
        typer.Option(
            "--waive-change",
            help="Waive the failed gates that compare with production (change thresholds, "
            "no worse than production, flip rate), when production is no fair reference "
            "(e.g. it read a leak); needs -r REASON, recorded with the version, on its card "
            "and in the audit log. Gates on the model itself still apply.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
    accept_perfect: Annotated[
        bool,
        typer.Option(
            "--accept-perfect",
            help="Bless a near-perfect evaluation (AUC or R² at least 0.995), which is "
            "otherwise held as a likely leak; needs --reason (audited).",
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            "-r",
            help="Why: the reason of --waive-change or --accept-perfect (recorded with the "
            "version and in the audit log).",
        ),
    ] = None,
) -> int:
    """validate → train → evaluate → gate → register → replay → deploy, cached and resumable.

    Steps whose inputs did not change reuse their earlier outputs; a killed run is
    continued by the next one. The first model becomes production, later ones a canary
    at \\[rollout] steps[0] percent. Train and eval data that share their file or their
    rows are refused before training; a near-perfect evaluation is held until
    acknowledged (--accept-perfect -r REASON, or \\[evaluation] accept_perfect). Exit 0
    deployed (or nothing to do), 1 the data contract, a gate or the replay test failed
    (nothing deployed), 2 usage error.
    """
    given = (reason or "").strip()
    if accept_perfect and not given:
        raise UsageError(
            '--accept-perfect needs a reason: add -r "why this model is truly this good" '
            "(recorded in the audit log)"
        )
    if waive_change and not given:
        raise UsageError(
            "--waive-change needs a reason: pass -r 'why production is no fair reference' "
            "(e.g. -r 'production v3 read reject, a leak'); the version and the audit log "
            "record it"
        )
    if reason is not None and not (accept_perfect or waive_change):
        raise UsageError(
            f"-r {reason!r} is the reason of --waive-change or --accept-perfect, and neither "
            "was given; add the one it explains, or drop -r"
        )
    project = Project.load(config)
    observer = RunObserver() if as_json else _ConsoleObserver()
    result = project.run(
        train_data=train_data,
        force=force,
        observer=observer,
        accept_perfect=reason if accept_perfect else None,
        waive_change=reason if waive_change else None,
    )
    if as_json:
        print_json(result.to_dict())
    else:
        _print_summary(result.to_dict())
    if not result.ok:
        raise ChecksFailedError(f"run {result.run_id} rejected: {result.reason}")
    return 0


def _money(value: Any) -> str:
    return "—" if value is None else f"{value:.6f}"


def _print_summary(record: dict[str, Any]) -> None:
    run = PipelineRun.read(record)
    result = run.result or RunOutcome()
    cost = run.cost or {}
    dep = result.deployment or {}
    canary = (
        f", canary {dep.get('canary')} at {dep.get('canary_weight')}%"
        if dep.get("canary") is not None
        else ""
    )
    cached = run.cached_steps or ()
    console.print(
        f"[bold]{run.status}[/] in {run.duration_s or 0:.1f}s, "
        f"{run.cpu_seconds or 0:.1f} CPU-s" + (f"; cached: {', '.join(cached)}" if cached else "")
    )
    if result.version is not None:
        console.print(
            f"model {run.model} version {result.version}; "
            f"serving: production {dep.get('production')}{canary}"
        )
    if cost.get("cpu_hour_price") is not None:
        console.print(
            f"cost: run {_money(cost.get('run_cost'))}, training "
            f"{_money(cost.get('training_cost'))} at {cost['cpu_hour_price']} per CPU-hour"
        )
    if result.report:
        console.print(f"report: {result.report}")


@app.command(
    "init",
    epilog=(
        "Examples: mooring init data/train.csv --eval data/test.csv | "
        "mooring init adult.data.csv.gz --eval adult.test.csv.gz --label class --na-value '?' "
        "--name income"
    ),
)
def init_command(
    data: Annotated[Path, typer.Argument(help="Training data (CSV or Parquet).")],
    eval_data: Annotated[
        Path | None, typer.Option("--eval", help="Held-out evaluation data of the same shape.")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="Label column (default: guessed).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Model name (default: the project folder's name, else <label>_model).",
        ),
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(
            "--timestamp",
            help="Event-time column for \\[data] timestamp (default: the column holding "
            "timestamps, if any; '' for none).",
        ),
    ] = None,
    na_value: Annotated[
        list[str] | None,
        typer.Option("--na-value", help="Another token that means missing (repeatable)."),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="The CSV's field separator, e.g. ';' (default: the file's own, of ',', ';', "
            "tab and '|').",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="A column to leave out of the features (repeatable)."),
    ] = None,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout",
            help="Without --eval: the share of the rows held out for evaluation, written with "
            "the rest to two Parquet files beside the project file (the latest rows by the "
            "timestamp column, else a seeded random sample); 0: none.",
        ),
    ] = 0.2,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the project file.")
    ] = Path("mooring.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Propose a commented mooring.toml from a dataset: schema, features, label, gates, rollout."""
    if out.exists() and not force:
        raise UsageError(f"'{out}' already exists; pass --force to overwrite it, or --out PATH")
    scaffold = scaffold_config(
        data,
        out_dir=out.resolve().parent,
        label=label,
        eval_data=eval_data,
        name=name,
        na_values=na_value or (),
        delimiter=delimiter,
        exclude=exclude or (),
        timestamp=timestamp,
        holdout=holdout,
    )
    split = scaffold.holdout.payloads() if scaffold.holdout is not None else {}
    taken = [name for name in split if (out.parent / name).exists()]
    if taken and not force:
        raise UsageError(
            f"'{out.parent / taken[0]}' already exists; pass --force to overwrite it, --eval "
            "FILE to hold out nothing, or --out PATH elsewhere"
        )
    for name, payload in split.items():  # before the project file that names them
        atomic_write(out.parent / name, payload)
    atomic_write(out, scaffold.text.encode("utf-8"))
    cfg = load_config(out)  # what we wrote must load
    # The audit log's HMAC key, outside the database (kept if one is there already).
    load_audit_key(key_file(cfg), create=True)
    if as_json:
        print_json({"config": str(out), **scaffold.to_dict()})
        return
    console.print(
        f"wrote [bold]{escape(str(out))}[/] ({scaffold.rows:,} rows, "
        f"{len(scaffold.columns)} columns)"
    )
    console.print(f"name: {escape(scaffold.name)} ({escape(scaffold.name_reason)})", soft_wrap=True)
    console.print(
        f"label: {escape(scaffold.label)} ({escape(scaffold.label_reason)}); task {scaffold.task}"
    )
    if scaffold.positive is not None:
        console.print(f"positive class: {escape(scaffold.positive)}")
    if scaffold.timestamp is not None:
        console.print(
            f"timestamp: {escape(scaffold.timestamp)} ({escape(scaffold.timestamp_reason or '')})"
            ", set as \\[data] timestamp",
            soft_wrap=True,
        )
    if scaffold.delimiter_detected:
        console.print(
            f"delimiter: {scaffold.delimiter!r} (the one that splits the file's lines alike), "
            "set as \\[data] delimiter"
        )
    if scaffold.holdout is not None:
        part = scaffold.holdout
        console.print(
            f"holdout: {escape(part.how)} → {escape(part.eval_file)}, the other "
            f"{part.train.num_rows:,} → {escape(part.train_file)}; set as \\[data] eval and train",
            soft_wrap=True,
        )
    if scaffold.ids:
        console.print(
            f"ids: {escape(', '.join(scaffold.ids))} (near-unique), set as \\[features] exclude",
            soft_wrap=True,
        )
    if scaffold.empty:
        console.print(
            f"empty: {escape(', '.join(scaffold.empty))} (no value in any row), set as "
            "\\[features] exclude",
            soft_wrap=True,
        )
    for column, why in scaffold.leaks.items():
        console.print(
            f"[yellow]leak:[/] {escape(column)}: {escape(why)}; set as \\[features] exclude",
            soft_wrap=True,
        )
    for warning in scaffold.warnings:
        console.print(f"[yellow]note:[/] {escape(warning)}", soft_wrap=True)
    console.print(f"next: edit {out}, then `mooring run -c {out}`")


@app.command("status", epilog="Examples: mooring status | mooring status -c mooring.toml --json")
def status_command(config: ConfigOpt = Path("mooring.toml"), as_json: JsonOpt = False) -> None:
    """What is in production, the canary's rollout and its guardrails, the last run and drift."""
    from mooring.monitoring._estimate import estimate_line
    from mooring.monitoring._rollout_state import policy_text
    from mooring.monitoring._summary import drift_headline

    cfg = load_config(config)
    status = project_status(cfg)
    policy = policy_text(cfg.rollout)
    from mooring.serving._box import box_line

    box = box_line(cfg)
    if as_json:
        print_json({**status.to_dict(), "rollout_policy": policy, "box": box})
        return
    # The title above the table, not as its title: a table folds a long registry URL.
    console.print(escape(f"{status.model} ({status.registry})"))
    table = Table()
    table.add_column("what", style="bold")
    table.add_column("state", overflow="fold")

    def metrics(values: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.4g}" for k, v in values.items())

    production = (
        f"version {status.production}  {metrics(status.production_metrics)}"
        f"  (on {status.production_eval_data})"
        if status.production is not None
        else "nothing deployed"
    )
    table.add_row("production", production)
    table.add_row(
        "canary",
        f"version {status.canary} at {status.canary_weight}%  {metrics(status.canary_metrics)}"
        f"  (on {status.canary_eval_data})"
        if status.canary is not None
        else "none",
    )
    if status.shadow is not None:
        from mooring.monitoring._shadow import shadow_lines

        table.add_row("shadow", "\n".join(shadow_lines(status.shadow)))
    if status.metrics_note:
        table.add_row("note", status.metrics_note)
    table.add_row("versions", str(status.versions))
    run = status.last_run
    if run is None:
        table.add_row("last run", "none (mooring run)")
    else:
        detail = run.get("reason") or run.get("error") or ""
        table.add_row(
            "last run",
            f"{run['run_id']} {run['status']}"
            + (f", version {run['version']}" if run.get("version") is not None else "")
            + (f" ({run['deployed_as']})" if run.get("deployed_as") else "")
            + f", finished {run.get('finished_at') or '—'}"
            + (f": {detail}" if detail else ""),
        )
    drift = status.last_drift
    if drift is None:
        table.add_row("last drift check", "none")
    else:
        drifted = drift_headline(drift.get("drifted") or []) or "no feature"
        table.add_row(
            "last drift check",
            f"{drift.get('created_at')} {drift.get('status')} ({drifted} drifted"
            + (f", {drift['rows']} rows" if drift.get("rows") is not None else "")
            + ")",
        )
    if status.last_estimate is not None:
        table.add_row("estimated quality", escape(estimate_line(status.last_estimate)))
    if status.rollout is not None:
        table.add_row("rollout", escape(_rollout_summary(status.rollout)))
        for failure in status.rollout.failures:
            if failure.held:
                continue  # the rollout's row says it first
            table.add_row(f"monitor ({failure.where})", escape(failure.headline))
    table.add_row("rollout policy", escape(policy))
    table.add_row("box", escape(box))
    if status.last_rollback is not None:
        table.add_row("last rollback", escape(status.last_rollback["line"]))
    console.print(table)
    decision = status.rollout.decision if status.rollout is not None else None
    if decision is not None and decision.shown:
        console.print(f"guardrails at the last decision ({escape(decision.at or 'time unknown')}):")
        for g in decision.shown:
            console.print(f"  · {escape(g.line)}", soft_wrap=True)


def _rollout_summary(view: RolloutView) -> str:
    """The step under way and the last decision; or why no rollout is shown.

    A rollout held by its failing monitor says so first.
    """
    held = view.held_by_failures
    first = [held.headline] if held is not None else []
    if view.under_way and view.step is not None:
        decision = view.decision
        ran = view.step.steps_run
        steps = [f"steps run: {', '.join(f'{w}%' for w in ran)}"] if len(ran) > 1 else []
        if decision is None:
            return "\n".join(
                [
                    *first,
                    view.step.headline,
                    *steps,
                    "not judged at this step yet (next `mooring monitor` tick)",
                ]
            )
        return "\n".join(
            [
                *first,
                view.step.headline,
                *steps,
                f"last decision: {decision.headline}",
                *decision.why,
            ]
        )
    lines = [*first, view.note or "no rollout is under way"]
    if view.last_decision is not None:
        lines.append(f"last decision: {view.last_decision.headline}")
    return "\n".join(lines)
