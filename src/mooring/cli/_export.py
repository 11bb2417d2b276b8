"""``mooring export lite``: a registered version as a gated TF Lite model. Exit 1 when refused."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mooring.cli._app import app
from mooring.cli._common import console, print_json
from mooring.config import load_config
from mooring.errors import ChecksFailedError, import_extra

export_app = typer.Typer(
    help="Export registered versions for other runtimes.", no_args_is_help=True
)
app.add_typer(export_app, name="export")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@export_app.command(
    "lite",
    epilog="Example: mooring export lite income --version 3 --mode int8 -c mooring.toml",
)
def lite_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int | None, typer.Option("--version", "-v", help="Version number.")] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="Alias (default: the latest version).")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", "-m", help="float16, dynamic or int8 (default: \\[export] mode)."),
    ] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="Project file.")] = Path(
        "mooring.toml"
    ),
    calibration_data: Annotated[
        str | None,
        typer.Option("--calibration-data", help="int8 calibration rows (default: \\[data] train)."),
    ] = None,
    eval_data: Annotated[
        str | None,
        typer.Option("--eval-data", help="Labelled rows to compare on (default: \\[data] eval)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for model.tflite + export.json."),
    ] = None,
    register: Annotated[
        bool,
        typer.Option("--register/--no-register", help="Attach a passing export to the version."),
    ] = True,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an earlier export of the same mode.")
    ] = False,
    registry: Annotated[
        str | None,
        typer.Option("--registry", envvar="MOORING_REGISTRY", help="Registry database URL."),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option("--artifacts", envvar="MOORING_ARTIFACTS", help="Artifact store."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (recorded in the audit log).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who acts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> int:
    """Convert a version to TF Lite, compare it with the SavedModel, gate it, register it."""
    # Said before seconds of conversion: the export is checked in the LiteRT interpreter.
    import_extra("ai_edge_litert.interpreter", extra="lite", needed_for="mooring export lite")
    cfg = load_config(config)
    if registry:  # the database named, the project's audit key kept
        from mooring.cli._registry import open_by_url

        reg = open_by_url(registry, artifacts, cfg)
    else:
        from mooring.pipeline._contracts import require_registry

        reg = require_registry(cfg)
    with reg:
        # An unknown model or version is named before TensorFlow is imported.
        reg.get(name, version=version, alias=alias)
        from mooring.export._convert import check_mode
        from mooring.export._lite import export_lite

        if mode is not None:
            check_mode(mode)
        result = export_lite(
            reg,
            name,
            config=cfg,
            version=version,
            alias=alias,
            mode=mode,
            calibration_data=calibration_data,
            eval_data=eval_data,
            out=out,
            register=register,
            replace=replace,
            actor=actor,
            reason=reason,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        table = Table(title=f"{result.ref} → TF Lite {result.mode}", title_justify="left")
        for header in ("", "SavedModel", "TF Lite", "change"):
            table.add_column(header)
        ratio = result.size_ratio
        table.add_row(
            "size (bytes)",
            f"{result.savedmodel_bytes:,}",
            "—" if result.tflite_bytes is None else f"{result.tflite_bytes:,}",
            "—" if ratio is None else f"×{ratio:.3f}",
        )
        saved = result.metrics.get("savedmodel", {})
        lite = result.metrics.get("tflite", {})
        for metric in [g["metric"] for g in result.gate] or list(saved)[:4]:
            delta = result.deltas.get(metric)
            table.add_row(
                metric,
                _fmt(saved.get(metric)),
                _fmt(lite.get(metric)),
                "—" if delta is None else f"{delta * 100:+.2f} pp",
            )
        latency = result.latency
        if latency.get("rows"):
            table.add_row(
                "latency, 1 row (ms)",
                _fmt(latency["savedmodel_ms_per_row"], 3),
                _fmt(latency["interpreter_ms_per_row"], 3),
                f"×{latency['speedup']:.1f} faster" if latency.get("speedup") else "—",
            )
        console.print(table)
        if result.agreement:
            agreement = result.agreement
            console.print(
                f"agreement on {result.evaluation.get('rows', 0):,} rows: mean |Δ| "
                f"{agreement['mean_abs_diff']:.4f}, max |Δ| {agreement['max_abs_diff']:.4f}"
                + (
                    f", same class {agreement['same_class'] * 100:.1f}%"
                    if "same_class" in agreement
                    else ""
                ),
                soft_wrap=True,
            )
        if result.float_ops:
            console.print(f"kept in float (int8 mode): {', '.join(result.float_ops)}")
        for warning in result.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
        if result.path is not None:
            console.print(
                f"file: {escape(str(result.path))} (sha256 {result.sha256})", soft_wrap=True
            )
    if not result.passed:
        raise ChecksFailedError(result.reason)
    if not as_json:
        # The reason is a sentence of its own ("dynamic export of income@3 passed: …").
        line = Text(result.reason)
        line.highlight_words([" passed:"], style="bold green")
        console.print(line, soft_wrap=True)
        if result.artifact is not None:
            console.print(f"registered as {result.artifact.ref}")
    return 0
