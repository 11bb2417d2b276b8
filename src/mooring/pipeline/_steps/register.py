"""Step 5, register: the model folder as an immutable registry version, with its lineage.

The version carries what the run knows about the model: lineage, headline metrics, the
gate decision, the training statistics (the drift baseline), the validated schema, the
operating threshold the evaluation chose (registration metadata: the trained artifact is
never rewritten) and its references (:mod:`mooring.monitoring._baselines`): per-segment
training statistics, its outputs on the eval data, its metrics with the eval data's
fingerprint, the drift calibration and, for a binary classifier, the score map its
performance is estimated from before labels arrive.

A new version whose ``[data] eval`` predates the traffic it will meet gets a warning in
the step's message, naming the file, the evidence and the fix
(:func:`~mooring.monitoring._baselines.stale_evaluation`): its evaluation and the outputs
its rollout compares it with would describe older traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from mooring.formats._lineage import Lineage
from mooring.formats._training_run import TrainingRun
from mooring.formats._version_record import Candidates, References, RunRecord, VersionRecord
from mooring.monitoring._baselines import freeze_references
from mooring.pipeline._context import RunContext
from mooring.pipeline._contracts import project_contract
from mooring.pipeline._fingerprint import digest
from mooring.pipeline._outputs import RegisterOutput
from mooring.pipeline._record import StepRecord
from mooring.registry._judged import register_judged

__all__ = ["run"]


def _references(ctx: RunContext) -> dict[str, Any]:
    from mooring.contract._io import read_table
    from mooring.contract._statistics import DatasetStatistics

    ws, evaluated = ctx.workspace, ctx.outputs.evaluated
    outputs = None
    if evaluated.outputs and Path(evaluated.outputs).is_file():
        outputs = DatasetStatistics.load(Path(evaluated.outputs))
    eval_path = ws.data_path("eval")
    estimation = None
    if evaluated.estimation and Path(evaluated.estimation).is_file():
        estimation = orjson.loads(Path(evaluated.estimation).read_bytes())
    attributions = None
    if Path(evaluated.report_json).is_file():
        summary = orjson.loads(Path(evaluated.report_json).read_bytes()).get("model") or {}
        attributions = summary.get("attributions")
    return freeze_references(
        ctx.config,
        train_table=read_table(ws.data_path("train"), ws.read_options),
        train_statistics=ctx.train_statistics(),
        outputs=outputs,
        metrics=evaluated.metrics,
        eval_data=str(eval_path),
        eval_fingerprint=ws.data_fingerprint("eval"),
        eval_rows=evaluated.rows,
        baseline=None
        if evaluated.baseline_version is None or evaluated.baseline_metrics is None
        else {"version": evaluated.baseline_version, "metrics": evaluated.baseline_metrics},
        estimation=estimation,
        attributions=attributions,
    )


def _stale_evaluation(ctx: RunContext, production: int | None) -> str | None:
    """Why ``[data] eval`` predates the traffic the new version will meet, or None.

    Timed data: the training data's timestamps against the evaluation data's. Untimed:
    the evaluation data against production's last logged requests, if any (a log that
    cannot be read is no evidence either way).
    """
    import pyarrow as pa

    from mooring.contract._statistics import compute_statistics
    from mooring.errors import MooringError
    from mooring.formats._predictions import feature_table, read_prediction_log
    from mooring.monitoring._baselines import stale_evaluation
    from mooring.monitoring._window import LOG_READ_OPTIONS

    ws, cfg = ctx.workspace, ctx.config
    timestamp = cfg.data.timestamp
    traffic = None
    left_out = {cfg.data.label, *cfg.features.exclude}
    train = ctx.train_statistics()
    features = [c for c in train.column_names if c not in left_out]
    if not timestamp and production is not None:
        url = cfg.serving.log_url or str(ctx.home / "predictions")
        try:
            logged = read_prediction_log(url, ctx.name, version=production, last=STALE_ROWS)
            if logged.num_rows:
                traffic = compute_statistics(feature_table(logged, features), LOG_READ_OPTIONS)
        except (MooringError, OSError, pa.ArrowException):
            traffic = None
    try:
        evaluation = ws.statistics("eval")
    except MooringError:  # a warning never fails the run; the evaluate step read the file
        return None
    return stale_evaluation(
        ws.data_path("eval").name,
        evaluation,
        train=train,
        timestamp=timestamp,
        traffic=traffic,
        features=features,
    )


#: Production's newest logged requests the evaluation data is compared with (untimed data).
STALE_ROWS = 2000


def _params(ctx: RunContext, chosen: str | None) -> dict[str, Any]:
    """The registered model's ``[model]``: the chosen candidate's, overrides applied."""
    models = dict(ctx.config.model.resolved_candidates())
    model = models.get(chosen or "", ctx.config.model)
    params = model.model_dump(mode="json", exclude={"candidates", "select"})
    if chosen is not None:
        params["candidate"] = chosen
    return params


def run(ctx: RunContext, record: StepRecord) -> RegisterOutput:
    """The register step (a model already registered is found by its manifest)."""
    from mooring.dashboard._card import render_model_card
    from mooring.registry._manifest import build_manifest

    ws = ctx.workspace
    # With [[model.candidates]], the candidate the evaluate step picked.
    trained, evaluated = ctx.outputs.chosen, ctx.outputs.evaluated
    model_key = trained.model_key if evaluated.chosen else ctx.keys["train"]
    model_dir = Path(trained.model_dir)
    manifest = build_manifest(model_dir)
    record.inputs = {"model_key": model_key, "manifest_sha256": manifest.sha256}
    record.key = digest(record.inputs)
    for mv in ctx.versions():
        if mv.manifest_sha256 == manifest.sha256:
            record.status = "cached"
            record.message = (
                f"the registry already holds this model as version {mv.version} "
                f"(registered by run {mv.lineage.run_id or '?'})"
            )
            return RegisterOutput(version=mv.version, manifest_sha256=mv.manifest_sha256)
    production, _, _ = ctx.deployment()
    training = TrainingRun.load(Path(trained.training_record))
    trainer = RunRecord.read(training.to_dict())
    distributed = training.distributed or {}
    run = trainer.updated(
        # The dashboard links a version to its evaluation report through this key.
        evaluation_report=str(Path(evaluated.report).parent),
        pipeline_run=ctx.run_id,
        kind=trained.kind or trainer.kind or "mlp",
    )
    if evaluated.candidates:
        # The registered version names the candidate it is, and the ones it beat.
        run = run.updated(
            candidates=Candidates(
                chosen=evaluated.chosen,
                select=evaluated.select,
                results=tuple(evaluated.candidates),
            )
        )
    run = run.updated(
        # The operating threshold is the registration's, read back by replay, export and
        # live quality; the model folder keeps the 0.5 it was exported with.
        threshold=evaluated.threshold,
        threshold_source=evaluated.threshold_source,
        # The server checks requests against the contract the data was validated with,
        # including a hand-edited schema file, not one re-inferred from the statistics.
        schema=ws.schema(ctx.train_statistics()).to_dict(),
        # Everything the version will be judged against, frozen now (never re-derived
        # later from whatever the config names): segments, outputs, metrics, calibration.
        references=References.read(_references(ctx)),
    )
    contract = project_contract(ctx.config)
    lineage = Lineage.of(
        data_fingerprint=ws.data_fingerprint("train"),
        eval_fingerprint=ws.data_fingerprint("eval"),
        train_data=str(ws.data_path("train")),
        # Which file the version's metrics were measured on, beside its sha256 above.
        eval_data=str(ws.data_path("eval")),
        statistics_hash=trained.statistics_hash,
        schema_hash=trained.schema_hash,
        schema_fingerprint=ctx.outputs.validated.schema_fingerprint,
        # The project's contract file it was trained under, as the audit log names it.
        contract_fingerprint=contract.fingerprint() if contract is not None else None,
        feature_spec_hash=trained.feature_spec_hash,
        model_key=model_key,
        code_version=ctx.code["code_version"],
        source_sha256=ctx.code["source_sha256"],
        run_id=ctx.run_id,
        # How it was trained: one process, or N data-parallel workers on an engine.
        training_workers=int(distributed.get("workers", 1)),
        training_engine=distributed.get("engine", "process"),
        training_restarts=len(distributed.get("restarts", [])),
    )
    mv = register_judged(
        ctx.registry,
        ctx.name,
        model_dir,
        VersionRecord(
            lineage=lineage,
            metrics=evaluated.metrics,
            gate=evaluated.decision,
            statistics=ctx.train_statistics().to_dict(),
            params=_params(ctx, evaluated.chosen),
            run=run,
            parent_version=production,
        ),
        reason=f"mooring run {ctx.run_id}",
        render_card=render_model_card,
    )
    ctx.registered()
    record.status = "done"
    stale = _stale_evaluation(ctx, production)
    record.message = f"registered {mv.ref}" + (f"; warning: {stale}" if stale else "")
    waived = evaluated.decision.waived
    if waived:
        reason = waived[0].waived or ""
        ctx.registry.record_waiver(
            ctx.name,
            version=mv.version,
            gates=[
                {"name": g.name, "value": g.value, "baseline": g.baseline, "diff": g.diff}
                for g in waived
            ],
            reason=reason,
            actor=ctx.waiver.actor if ctx.waiver is not None else None,
        )
        record.message += (
            f"; {len(waived)} gate(s) comparing with production waived ({reason}), audited"
        )
    return RegisterOutput(
        version=mv.version,
        manifest_sha256=mv.manifest_sha256,
        files=mv.file_count,
        size_bytes=mv.size_bytes,
    )
