"""``mooring score``: batch scoring of a registered version over shards.

Exit codes: 0 when every shard is scored or was done already (rejected rows are
counted, written to ``<out>/_rejects/`` and summarised); 1 with ``--fail-on-reject``
when any row was rejected; 2 for a usage or configuration error (an unknown model or
version, a source with no file); the error's own code when a shard fails (the other
shards are written; running the command again scores the rest).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mooring.cli._app import app
from mooring.cli._common import console, err_console, print_json
from mooring.cli._engine import EngineOpt, RayAddressOpt, WorkersOpt, engine_from
from mooring.config import load_config

if TYPE_CHECKING:
    from mooring.scale._score import ScoreSummary


@app.command(
    "score",
    epilog="Examples: mooring score --data 'shards/*.parquet' --out scores/ | "
    "mooring score -c mooring.toml --version 3 --data s3://bucket/day=2024-06-01/ "
    "--out s3://bucket/scores/ --key id --engine ray --log",
)
def score_command(
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            "-d",
            help="Shards to score: a file, a folder, a glob (quote it) or an fsspec URL; "
            "repeatable.",
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="Folder or fsspec URL for <shard>.parquet, _rejects/ and _done/ markers.",
        ),
    ],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Project file (registry, \\[data], \\[serving]).")
    ] = Path("mooring.toml"),
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model name (default: \\[project] name)."),
    ] = None,
    version: Annotated[
        str,
        typer.Option("--version", "-v", help="Version number or alias (production, latest…)."),
    ] = "production",
    keys: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            "-k",
            help="Input column copied to every output row; repeatable (default: shard, row).",
        ),
    ] = None,
    engine: EngineOpt = None,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    log: Annotated[
        bool,
        typer.Option(
            "--log",
            help="Also append the scored rows to the prediction log, for mooring drift.",
        ),
    ] = False,
    fail_on_reject: Annotated[
        bool, typer.Option("--fail-on-reject", help="Exit 1 when any row was rejected.")
    ] = False,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1, help="Rows per model call.")
    ] = 8192,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Score shards with a registered version: one Parquet file of predictions per shard.

    Rows are checked as the server checks a request; rows it would refuse go to
    <out>/_rejects/ with the reason. Shards finished by an earlier run with the same
    version and unchanged input are skipped.
    """
    from mooring.pipeline._contracts import require_registry
    from mooring.scale._score import score_shards

    cfg = load_config(config)
    chosen = engine_from(cfg.project, engine, workers, ray_address)
    with require_registry(cfg) as registry, _Progress(disable=as_json) as progress:
        summary = score_shards(
            cfg,
            registry,
            data=data,
            out=out,
            model=model,
            version=int(version) if version.isdigit() else version,
            key_columns=keys or (),
            engine=chosen,
            log=log,
            batch_rows=batch_rows,
            on_start=progress.start,
            on_shard=progress.shard_done,
        )
    if as_json:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)
    if fail_on_reject and summary.rejected:
        raise typer.Exit(1)


class _Progress:
    """A Rich progress bar on stderr: shards done, rows scored."""

    def __init__(self, *, disable: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "shards · {task.fields[rows]:,} rows scored · {task.fields[rejected]:,} rejected"
            ),
            console=err_console,
            disable=disable,
            transient=False,
        )
        self.task = self.bar.add_task("score", total=None, rows=0, rejected=0)
        self.rows = self.rejected = 0

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:  # an error: its line alone, no bar left above it
            self.bar.live.transient = True
        self.bar.stop()

    def start(self, shards: int) -> None:
        self.bar.update(self.task, total=shards)

    def shard_done(self, outcome: object) -> None:
        self.rows += int(getattr(outcome, "scored", 0))
        self.rejected += int(getattr(outcome, "rejected", 0))
        self.bar.update(self.task, advance=1, rows=self.rows, rejected=self.rejected)


def _print_summary(summary: ScoreSummary) -> None:
    shards = len(summary.shards)
    console.print(
        f"scored {summary.scored:,} rows of {shards} shard(s) with {summary.model} version "
        f"{summary.version} (manifest {summary.manifest_sha256[:12]}) on {summary.engine} "
        f"in {summary.seconds:.1f}s → {escape(summary.out)}"
    )
    if summary.skipped:
        console.print(f"skipped {summary.skipped} shard(s) done by an earlier run")
    if summary.retried:
        console.print(f"retried {summary.retried} shard(s) whose worker died")
    if summary.violations:
        console.print(
            f"{summary.violations:,} scored row(s) hold values outside the contract "
            "([serving] out_of_range / unseen_category = 'serve')"
        )
    if summary.rejected:
        files = [s.rejects for s in summary.shards if s.rejects]
        console.print(
            f"[bold yellow]{summary.rejected:,} row(s) rejected[/] in {len(files)} shard(s); "
            f"reasons in {escape(summary.out)}/_rejects/"
        )
    if summary.logged:
        console.print(f"logged {summary.logged:,} row(s) to the prediction log")
    if summary.contract is None:
        console.print("the version has no contract: rows were checked against its signature only")
