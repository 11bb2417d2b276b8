"""``mooring train``: statistics → features → fit → export → parity, with a progress bar."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from mooring._project import Project
from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.errors import ChecksFailedError, UsageError

if TYPE_CHECKING:
    from mooring.training._fit import RunPlan


def _progress_callback(
    total_epochs: int, steps: int, quiet: bool, *, label: str = "", rows: int | None = None
) -> Any:
    """A bar per epoch and a line when it ends, each naming ``label`` (the model or
    candidate) and the epoch, the line with the training rows and the metrics."""
    import keras
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    named = f"{escape(label)} " if label else ""

    class RichProgress(keras.callbacks.Callback):  # type: ignore[misc]
        """One bar per epoch; the epoch's metrics printed when it ends."""

        def __init__(self) -> None:
            super().__init__()
            self.progress = Progress(
                TextColumn("{task.fields[named]}epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[loss]}"),
                console=console,
                transient=True,
                disable=quiet or not console.is_terminal,  # no empty bar in a log file
            )
            self.task: Any = None

        def on_train_begin(self, logs: Any = None) -> None:
            self.progress.start()

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.task = self.progress.add_task(
                "train", total=steps, named=named, epoch=epoch + 1, epochs=total_epochs, loss=""
            )

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            # Called once per execution of several steps: ``batch`` is the last one's index.
            loss = (logs or {}).get("loss")
            text = f"loss {float(loss):.4f}" if loss is not None else ""
            self.progress.update(self.task, completed=batch + 1, loss=text)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.progress.remove_task(self.task)
            shown = "  ".join(
                f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if k != "learning_rate"
            )
            if not quiet:
                size = f" · {rows:,} rows" if rows is not None else ""
                console.print(
                    f"{named}epoch {epoch + 1}/{total_epochs}{size}  {shown}",
                    soft_wrap=True,
                )

        def on_train_end(self, logs: Any = None) -> None:
            self.progress.stop()

    return RichProgress()


def _pod(index: int | None, peers: str | None) -> tuple[int, list[str]] | None:
    if index is None and peers is None:
        return None
    if index is None or not peers:
        raise UsageError("--worker-index and --peers go together: give both, or neither")
    hosts = [p.strip() for p in peers.split(",") if p.strip()]
    bad = [h for h in hosts if h.rpartition(":")[2].isdigit() is False]
    if bad:
        raise UsageError(f"--peers: {bad[0]!r} is not host:port (e.g. train-0.train:2222)")
    return index, hosts


def _latest_run(home: Path) -> Path:
    runs = sorted(p for p in (home / "runs").glob("*") if (p / "checkpoints").is_dir())
    if not runs:
        raise UsageError(
            f"--resume: no earlier run with checkpoints under '{home / 'runs'}'; train without "
            "--resume, or pass --output DIR of the run to continue"
        )
    return runs[-1]


@app.command(
    "train",
    epilog="Examples: mooring train -c mooring.toml | mooring train --epochs 2 --json | "
    "mooring train --resume",
)
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Project file.")] = Path(
        "mooring.toml"
    ),
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Run folder; default <home>/runs/<UTC time>."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --output (or the latest run).")
    ] = False,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Override \\[model] epochs.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Data-parallel workers; overrides \\[training] workers."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="local or ray; overrides \\[training] engine."),
    ] = None,
    worker_index: Annotated[
        int | None,
        typer.Option(
            "--worker-index",
            min=0,
            help="Run as this worker of a job started elsewhere (a Kubernetes Indexed Job's "
            "pod index); needs --peers.",
        ),
    ] = None,
    peers: Annotated[
        str | None,
        typer.Option(
            "--peers", help="With --worker-index: every worker's host:port, comma-separated."
        ),
    ] = None,
) -> None:
    """Train the model in mooring.toml and export it as one SavedModel (+ mooring.json)."""
    from mooring.scale._training import training_launcher
    from mooring.training._train import train_model

    project = Project.load(config)
    cfg = project.config
    if epochs is not None:
        cfg.model.epochs = epochs
    if workers is not None:
        cfg.training.workers = workers
    if engine is not None:
        if engine not in ("local", "ray"):
            raise UsageError(f"--engine {engine!r}: choose local or ray")
        cfg.training.engine = engine  # type: ignore[assignment]
    pod = _pod(worker_index, peers)
    if pod is not None and output is None:
        raise UsageError(
            "--worker-index needs --output: a folder every worker shares (worker 0 writes the "
            "shards and checkpoints there)"
        )
    if output is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        output = _latest_run(project.home) if resume else project.home / "runs" / stamp
    # The data contract is the gate, as in `mooring run`: never train on data that fails it.
    validation = project.validate()
    if not validation.ok:
        from mooring.pipeline._steps.validate import failure

        raise ChecksFailedError(
            failure(validation, project.home / "reports" / "validation.json")
            + "; nothing was trained"
        )
    statistics = validation.statistics
    schema = validation.schema

    def show(plan: RunPlan) -> list[Any]:  # the plan the run follows, from its own rows
        return [
            _progress_callback(
                plan.rounds,
                plan.steps_per_round,
                quiet or as_json,
                label=project.name,
                rows=plan.rows,
            )
        ]

    if not (quiet or as_json):
        console.print(f"training [bold]{project.name}[/] → {output}")
    result = train_model(
        cfg,
        statistics=statistics,
        schema=schema,
        output_dir=output,
        resume=resume,
        show=show,
        launcher=training_launcher(cfg),
        pod=pod,
    )
    if pod is None:  # `mooring run` then evaluates this model instead of training it again
        from mooring.pipeline._steps.train import remember

        remember(project.workspace, result, statistics=statistics, schema=schema)
    if as_json:
        print_json(result.record.to_dict())
        return
    if not quiet:
        timings = result.timings
        parity = result.parity
        console.print(
            f"[green]model[/] {result.model_dir}\n"
            f"task {result.task}; epochs {len(result.epochs)}"
            + (f" (best {result.best_epoch})" if result.best_epoch else "")
            + f"; fit {timings['fit_seconds']:.1f}s, total {timings['total_seconds']:.1f}s, "
            f"{timings['examples_per_second']:,.0f} examples/s\n"
            + (
                f"train/serve parity: {parity.records} records, max diff {parity.max_abs_diff:.2g}"
                if parity is not None
                else "train/serve parity: skipped (parity_records = 0)"
            )
        )
