"""Step 3, evaluate: the trained model on the eval data, against production when there is one.

:func:`assess` is the work (also :meth:`mooring.project.Project.evaluate`); :func:`run`
is the step: keyed by the model, the eval data and ``[evaluation]``, it evaluates again
when production changed since (the change gates compare with production). The operating
threshold it chooses is recorded here and registered with the version, and so are the
statistics of the model's outputs on the eval data (``outputs.json``, the version's
prediction-drift reference); the trained model folder is never rewritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mooring.monitoring.baselines import evaluation_outputs
from mooring.pipeline.context import RunContext
from mooring.pipeline.fingerprint import digest
from mooring.pipeline.outputs import EvaluateOutput
from mooring.pipeline.record import StepRecord
from mooring.pipeline.workspace import Workspace

if TYPE_CHECKING:
    from mooring.evaluation import EvaluationResult, EvaluationRun

__all__ = ["assess", "run"]


def assess(
    workspace: Workspace,
    *,
    model_dir: str | Path | None = None,
    baseline_dir: str | Path | None = None,
    out: str | Path | None = None,
) -> EvaluationRun:
    """Evaluate a trained model on the eval data: metrics, slices, report, gate decision.

    ``model_dir`` defaults to the latest training run; ``baseline_dir`` is the
    production model to compare with (change gates, flip rate). The HTML and JSON
    report go to ``out`` (default ``<home>/reports/evaluation-<UTC time>``).
    """
    from mooring.contract import read_table
    from mooring.dashboard import render_evaluation_html
    from mooring.evaluation import evaluate_model_dir

    table = read_table(workspace.data_path("eval"), workspace.read_options)
    return evaluate_model_dir(
        workspace.config,
        model_dir if model_dir is not None else workspace.latest_model_dir(),
        table,
        baseline_dir=baseline_dir,
        out=out,
        html=render_evaluation_html,
    )


def _baseline(ctx: RunContext, model_key: str) -> int | None:
    """The production version to compare with, unless it is this very model."""
    production, _, _ = ctx.deployment()
    mv = ctx.version(production)
    if mv is None or mv.lineage.get("model_key") == model_key:
        return None
    return mv.version


def _deployed_is(ctx: RunContext, model_key: str) -> bool:
    production, canary, _ = ctx.deployment()
    return any(
        (mv := ctx.version(v)) is not None and mv.lineage.get("model_key") == model_key
        for v in (production, canary)
    )


def run(ctx: RunContext, record: StepRecord) -> EvaluateOutput:
    """The evaluate step."""
    cfg, ws = ctx.config, ctx.workspace
    model_key = ctx.keys["train"]
    inputs = {
        "model_key": model_key,
        "eval_fingerprint": ws.data_fingerprint("eval"),
        "evaluation": cfg.evaluation.model_dump(mode="json"),
        "code_version": ctx.code["code_version"],
    }
    record.key = key = digest(inputs)
    baseline = _baseline(ctx, model_key)
    record.inputs = {**inputs, "baseline_version": baseline}
    entry = ctx.cache.get("evaluate", key)
    if entry is not None and Path(entry["outputs"].get("report_json", "")).is_file():
        same_baseline = entry["outputs"].get("baseline_version") == baseline
        if same_baseline or _deployed_is(ctx, model_key):
            ctx.reuse(record, "evaluate", key)
            return EvaluateOutput.from_dict(entry["outputs"])
        record.message = (
            f"production changed to version {baseline} since this model was evaluated "
            f"against {entry['outputs'].get('baseline_version')}: evaluating again; "
        )
    baseline_dir = ctx.registry.load(ctx.name, version=baseline) if baseline is not None else None
    evaluation = assess(
        ws,
        model_dir=Path(ctx.outputs.trained.model_dir),
        baseline_dir=baseline_dir,
        out=ctx.run_dir / "evaluation",
    )
    folder = evaluation.folder or ctx.run_dir / "evaluation"
    result = evaluation.result
    outputs = evaluation_outputs(result.task, result.predictions, result.label_vocabulary)
    if outputs is not None:
        outputs.save(folder / "outputs.json")
    record.status, record.reusable = "done", True
    record.message += "blessed" if evaluation.decision.blessed else "not blessed"
    return EvaluateOutput(
        report=str(folder / "report.html"),
        report_json=str(folder / "report.json"),
        rows=result.rows,
        metrics=_numbers(result),
        threshold=result.operating_threshold,
        threshold_source=result.threshold_source,
        baseline_version=baseline,
        blessed=evaluation.decision.blessed,
        decision=evaluation.decision.to_dict(),
        outputs=None if outputs is None else str(folder / "outputs.json"),
        baseline_metrics=None if evaluation.baseline is None else _numbers(evaluation.baseline),
    )


def _numbers(result: EvaluationResult) -> dict[str, float]:
    return {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
