"""``mooring evaluate``: model report and gate decision.

Exit 0 blessed, 1 not blessed: a gate failed, or no gate judged the model (ungated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mooring.cli._app import app
from mooring.cli._common import console, print_gate, print_json
from mooring.config import load_config
from mooring.errors import ChecksFailedError, NotFoundError
from mooring.formats._gate import UNGATED


@app.command(
    "evaluate",
    epilog="Examples: mooring evaluate (the latest trained model) | "
    "mooring evaluate --model runs/income/model --baseline models/production",
)
def evaluate_command(
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", "-m", help="Model folder to evaluate; default the latest trained one."
        ),
    ] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="Project file.")] = Path(
        "mooring.toml"
    ),
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Evaluation data; default \\[data] eval.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", "-b", help="Production model folder for change gates."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report folder; default <home>/reports/evaluation-…"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> int:
    """Evaluate a model on labelled data, write report.html + report.json, apply the gates."""
    from mooring.contract._io import ReadOptions, read_table
    from mooring.dashboard._evaluation_report import render_evaluation_html
    from mooring.evaluation._model import evaluate_model_dir

    cfg = load_config(config)
    if model is None:
        from mooring.pipeline._workspace import Workspace

        model = Workspace(cfg).latest_model_dir()
        if not as_json:
            console.print(f"evaluating the latest trained model: {model}")
    source = data if data is not None else cfg.data.eval
    if source is None:
        raise NotFoundError(
            'no evaluation data: pass --data FILE or set [data] eval = "path" in mooring.toml'
        )
    path = source if "://" in source else str(cfg.path(source))
    table = read_table(path, ReadOptions.from_config(cfg.data))
    run = evaluate_model_dir(
        cfg, model, table, baseline_dir=baseline, out=out, html=render_evaluation_html
    )
    decision = run.decision
    if as_json:
        print_json(
            {
                "model": str(model),
                "blessed": decision.blessed,
                "ungated": decision.ungated,
                "report": str(run.folder),
                "metrics": run.result.to_dict()["metrics"],
                "operating_threshold": run.result.operating_threshold,
                "decision": decision.to_dict(),
            }
        )
    else:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in run.result.metrics.items() if v is not None)
        console.print(f"{run.result.task} model on {run.result.rows:,} rows: {metrics}")
        for warning in [*run.result.warnings, *decision.warnings]:
            console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        for gate in decision.gates:
            print_gate(
                skipped=gate.skipped, passed=gate.passed, message=gate.message, default=gate.default
            )
        console.print(f"report: {run.folder / 'report.html' if run.folder else '-'}")
    if decision.ungated:
        raise ChecksFailedError(
            f"{UNGATED}, so it is not blessed: [evaluation] default_gates = false and no "
            '[[evaluation.gates]] applies; declare gates (e.g. metric = "auc", lower = 0.8) '
            "or set default_gates = true"
        )
    if not decision.blessed:
        failed = "; ".join(g.message for g in decision.failures)
        judges = "default gate(s)" if decision.defaults else "gate(s)"
        raise ChecksFailedError(f"not blessed: {len(decision.failures)} {judges} failed: {failed}")
    if not as_json:
        judged = decision.judged
        by = "the default gates" if decision.defaults else f"{len(judged)} gate(s)"
        console.print(
            f"[bold green]blessed[/] by {by}: " + ", ".join(escape(g.name) for g in judged),
            soft_wrap=True,
        )
    return 0
