"""Step 3, evaluate: the trained model on the eval data, against production when there is one.

:func:`assess` is the work (also :meth:`mooring._project.Project.evaluate`); :func:`run`
is the step: keyed by the model, the eval data and ``[evaluation]``, it evaluates again
when production changed since (the change gates compare with production). The operating
threshold it chooses is recorded here and registered with the version, and so are the
statistics of the model's outputs on the eval data (``outputs.json``, the version's
prediction-drift reference); the trained model folder is never rewritten.

With ``[[model.candidates]]`` every candidate is evaluated on the same records
(:func:`mooring.evaluation.evaluate_candidates`), gated, timed and sized; the output
describes the chosen one (or, when none passes, the best by ``select``) and lists all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from mooring.formats._files import atomic_write
from mooring.monitoring._baselines import evaluation_outputs
from mooring.pipeline._context import RunContext
from mooring.pipeline._fingerprint import digest
from mooring.pipeline._outputs import EvaluateOutput
from mooring.pipeline._record import StepRecord
from mooring.pipeline._workspace import Workspace

if TYPE_CHECKING:
    from mooring.evaluation._gates import Waiver
    from mooring.evaluation._model import EvaluationRun
    from mooring.evaluation._result import EvaluationResult

__all__ = ["assess", "run"]


def assess(
    workspace: Workspace,
    *,
    model_dir: str | Path | None = None,
    baseline_dir: str | Path | None = None,
    out: str | Path | None = None,
    waiver: Waiver | None = None,
) -> EvaluationRun:
    """Evaluate a trained model on the eval data: metrics, slices, report, gate decision.

    ``model_dir`` defaults to the latest training run; ``baseline_dir`` is the
    production model to compare with (change gates, flip rate), whose failed
    comparisons ``waiver`` waives. The HTML and JSON
    report go to ``out`` (default ``<home>/reports/evaluation-<UTC time>``).
    """
    from mooring.contract._io import read_table
    from mooring.dashboard._evaluation_report import render_evaluation_html
    from mooring.evaluation._model import evaluate_model_dir

    table = read_table(workspace.data_path("eval"), workspace.read_options)
    return evaluate_model_dir(
        workspace.config,
        model_dir if model_dir is not None else workspace.latest_model_dir(),
        table,
        baseline_dir=baseline_dir,
        out=out,
        html=render_evaluation_html,
        waiver=waiver,
    )


def _baseline(ctx: RunContext, model_keys: set[str]) -> int | None:
    """The production version to compare with, unless it is this very model (a candidate)."""
    production, _, _ = ctx.deployment()
    mv = ctx.version(production)
    if mv is None or mv.lineage.model_key in model_keys:
        return None
    return mv.version


def _deployed_is(ctx: RunContext, model_keys: set[str]) -> bool:
    production, canary, _ = ctx.deployment()
    return any(
        (mv := ctx.version(v)) is not None and mv.lineage.model_key in model_keys
        for v in (production, canary)
    )


def _model_keys(ctx: RunContext) -> set[str]:
    trained = ctx.outputs.trained
    if not trained.candidates:
        return {ctx.keys["train"]}
    return {str(c.model_key) for c in trained.candidates.values()}


def run(ctx: RunContext, record: StepRecord) -> EvaluateOutput:
    """The evaluate step."""
    cfg, ws = ctx.config, ctx.workspace
    model_keys = _model_keys(ctx)
    inputs: dict[str, Any] = {
        "model_key": ctx.keys["train"],
        "eval_fingerprint": ws.data_fingerprint("eval"),
        # An acknowledgement of a near-perfect result changes the gate's verdict, not this.
        "evaluation": cfg.evaluation.model_dump(mode="json", exclude={"accept_perfect"}),
        "code_version": ctx.code["code_version"],
    }
    if cfg.model.candidates:
        inputs["select"] = cfg.model.select
        inputs["cpu_hour_price"] = cfg.pipeline.cpu_hour_price
    if ctx.waiver is not None:  # a waived decision is another evaluation's
        inputs["waive_change"] = ctx.waiver.reason
    record.key = key = digest(inputs)
    # Candidates are compared with production even when it is one of them (that one's
    # change is nil), so a re-pick is never waved through as a "first model".
    baseline = _baseline(ctx, set() if cfg.model.candidates else model_keys)
    record.inputs = {**inputs, "baseline_version": baseline}
    entry = ctx.cache.get("evaluate", key)
    if entry is not None and Path(entry["outputs"].get("report_json", "")).is_file():
        same_baseline = entry["outputs"].get("baseline_version") == baseline
        if same_baseline or _deployed_is(ctx, model_keys):
            ctx.reuse(record, "evaluate", key)
            return EvaluateOutput.from_dict(entry["outputs"])
        record.message = (
            f"production changed to version {baseline} since this model was evaluated "
            f"against {entry['outputs'].get('baseline_version')}: evaluating again; "
        )
    baseline_dir = ctx.registry.load(ctx.name, version=baseline) if baseline is not None else None
    if cfg.model.candidates:
        return _candidates(ctx, record, baseline, baseline_dir)
    evaluation = assess(
        ws,
        model_dir=Path(ctx.outputs.trained.model_dir),
        baseline_dir=baseline_dir,
        out=ctx.run_dir / "evaluation",
        waiver=ctx.waiver,
    )
    folder = evaluation.folder or ctx.run_dir / "evaluation"
    result = evaluation.result
    outputs = evaluation_outputs(
        result.task, result.predictions, result.label_vocabulary, result.operating_threshold
    )
    if outputs is not None:
        outputs.save(folder / "outputs.json")
    estimation = _save_estimation(result, folder, evaluation.baseline, baseline)
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
        decision=evaluation.decision,
        outputs=None if outputs is None else str(folder / "outputs.json"),
        estimation=estimation,
        baseline_metrics=None if evaluation.baseline is None else _numbers(evaluation.baseline),
    )


def _candidates(
    ctx: RunContext, record: StepRecord, baseline: int | None, baseline_dir: Path | None
) -> EvaluateOutput:
    """Every candidate on the same records; the pick is the best that passes, by select."""
    from mooring.contract._io import read_table
    from mooring.dashboard._evaluation_report import render_evaluation_html
    from mooring.errors import UsageError
    from mooring.evaluation._candidates import evaluate_candidates

    cfg, ws, trained = ctx.config, ctx.workspace, ctx.outputs.trained
    try:
        select = cfg.model.selection_metric(trained.task)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    folder = ctx.run_dir / "evaluation"
    run = evaluate_candidates(
        cfg,
        {name: out.model_dir for name, out in trained.candidates.items()},
        read_table(ws.data_path("eval"), ws.read_options),
        select=select,
        baseline_dir=baseline_dir,
        out=folder,
        html=render_evaluation_html,
        waiver=ctx.waiver,
    )
    lead = run.lead
    result, decision = lead.result, lead.decision
    assert decision is not None  # evaluate_candidates decides every candidate
    outputs = evaluation_outputs(
        result.task, result.predictions, result.label_vocabulary, result.operating_threshold
    )
    lead_folder = folder / lead.name
    if outputs is not None:
        outputs.save(lead_folder / "outputs.json")
    estimation = _save_estimation(result, lead_folder, run.production, baseline)
    record.status, record.reusable = "done", True
    chosen = run.chosen
    record.message += f"{len(run.candidates)} candidate(s) by {select}: " + (
        f"chosen {chosen.name} ({chosen.kind})" if chosen else "none passed its gates"
    )
    return EvaluateOutput(
        report=str(lead_folder / "report.html"),
        report_json=str(lead_folder / "report.json"),
        rows=result.rows,
        metrics=_numbers(result),
        threshold=result.operating_threshold,
        threshold_source=result.threshold_source,
        baseline_version=baseline,
        blessed=decision.blessed,
        decision=decision,
        outputs=None if outputs is None else str(lead_folder / "outputs.json"),
        estimation=estimation,
        baseline_metrics=None if run.production is None else _numbers(run.production),
        chosen=None if chosen is None else chosen.name,
        select=select,
        candidates=run.summaries(),
    )


def _save_estimation(
    result: EvaluationResult,
    folder: Path,
    production: EvaluationResult | None,
    production_version: int | None,
) -> str | None:
    """``estimation.json`` in ``folder``: the score map of a binary model's held-out
    scores (:mod:`mooring.monitoring._estimate`), frozen with the version, and
    production's on the same rows (its rollout compares their estimates); its path."""
    from mooring.monitoring._estimate import reference_of

    reference = reference_of(result, production, production_version)
    if reference is None:
        return None
    path = folder / "estimation.json"
    atomic_write(path, orjson.dumps(reference, option=orjson.OPT_INDENT_2))
    return str(path)


def _numbers(result: EvaluationResult) -> dict[str, float]:
    return {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
