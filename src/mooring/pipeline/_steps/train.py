"""Step 2, train: the configured model on the training data, exported as one SavedModel.

:func:`fit` is the work (also :meth:`mooring._project.Project.train`); :func:`run` is the
step: keyed by the data, its statistics and schema, ``[features]``, ``[model]`` and the
code, it resumes from the run's last checkpoint when a killed run is continued.

With ``[[model.candidates]]`` it trains every candidate, each into
``<run>/train/<name>/model`` and cached under its own key (the same inputs with the
candidate's ``[model]``): a re-run retrains only the candidates whose inputs changed,
and a change to ``[model] select`` alone retrains none.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mooring.config._model import ModelConfig
from mooring.formats._model import METADATA_FILE
from mooring.pipeline._cache import StepCache
from mooring.pipeline._checks import check_settings
from mooring.pipeline._context import RunContext
from mooring.pipeline._fingerprint import code_version, digest
from mooring.pipeline._outputs import TrainOutput
from mooring.pipeline._record import StepRecord
from mooring.pipeline._workspace import Workspace
from mooring.training._labels import resolve_label

if TYPE_CHECKING:
    from mooring.contract._schema import Schema
    from mooring.contract._statistics import DatasetStatistics
    from mooring.training._fit import RunPlan, ShowPlan, TrainingResult

__all__ = ["fit", "model_inputs", "remember", "run"]


def fit(
    workspace: Workspace,
    *,
    output_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    show: ShowPlan | None = None,
    verbose: int = 0,
    statistics: DatasetStatistics | None = None,
) -> TrainingResult:
    """Train the configured model on the train data; export one SavedModel.

    The run goes to ``output_dir`` (default ``<home>/runs/<UTC time>``); the model
    folder (SavedModel + ``mooring.json``) is ``result.model_dir``. ``show`` is called
    with the plan the run follows, made from the rows it trains on, for the callbacks
    that draw its progress. TensorFlow is imported only here, so the contract commands
    stay quick to start.
    """
    from mooring.scale._training import training_launcher
    from mooring.training._train import train_model

    stats = statistics or workspace.statistics("train")
    schema = workspace.schema(stats)
    if output_dir is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        output_dir = workspace.home / "runs" / stamp
    return train_model(
        workspace.config,
        statistics=stats,
        schema=schema,
        output_dir=Path(output_dir),
        resume=resume,
        callbacks=callbacks,
        show=show,
        verbose=verbose,
        launcher=training_launcher(workspace.config),
    )


def _model_inputs(ctx: RunContext, model: ModelConfig) -> dict[str, Any]:
    """What one model's training depends on (its cache key is their digest)."""
    validated = ctx.outputs.validated
    return model_inputs(
        ctx.workspace,
        model,
        statistics_hash=validated.statistics_hash,
        schema_fingerprint=validated.schema_fingerprint,
        code=ctx.code["code_version"],
    )


def model_inputs(
    ws: Workspace,
    model: ModelConfig,
    *,
    statistics_hash: str | None,
    schema_fingerprint: str | None,
    code: str,
) -> dict[str, Any]:
    """The train step's inputs for ``model``: the data, its statistics and schema, the
    feature spec, the model, the read options and the code."""
    cfg = ws.config
    return {
        "train_fingerprint": ws.data_fingerprint("train"),
        "statistics_hash": statistics_hash,
        "schema_fingerprint": schema_fingerprint,
        "features": cfg.features.model_dump(mode="json"),
        "model": model.model_dump(mode="json", exclude={"candidates", "select"}),
        "data": cfg.data.model_dump(mode="json", exclude={"train", "eval"}),
        "code_version": code,
    }


def remember(
    ws: Workspace, result: TrainingResult, *, statistics: DatasetStatistics, schema: Schema
) -> str | None:
    """Keep a model ``mooring train`` made where ``mooring run``'s train step looks first,
    so a run after it evaluates that model instead of training the same one again.

    Only a model the run would train itself: the project's one ``[model]`` (no
    candidates), from the same data, statistics, schema, features and code. Returns the
    cache key (``None``: not kept).
    """
    cfg = ws.config
    if cfg.model.candidates:
        return None
    key = digest(
        model_inputs(
            ws,
            cfg.model,
            statistics_hash=digest(statistics.to_dict()),
            schema_fingerprint=schema.fingerprint(),
            code=code_version(cfg.pipeline.code_fingerprint)["code_version"],
        )
    )
    output = _output(result, cfg.model, key, None)
    try:
        StepCache(ws.home / "pipeline" / "cache").put(
            "train", key, output.to_dict(), run_id=f"mooring train {result.model_dir.parent.name}"
        )
    except OSError:
        return None  # the model stands; a later run only trains its own
    return key


def run(ctx: RunContext, record: StepRecord) -> TrainOutput:
    """The train step: the one model, or every ``[[model.candidates]]`` (cached each).

    The settings the later steps read are checked against the task first
    (:func:`~mooring.pipeline._checks.check_settings`), so that a typo in a gate stops
    the run before anything trains rather than after everything did.
    """
    cfg = ctx.config
    statistics = ctx.train_statistics()
    check_settings(cfg, resolve_label(cfg, statistics, ctx.workspace.schema(statistics)).task)
    if not cfg.model.candidates:
        record.inputs = _model_inputs(ctx, cfg.model)
        record.key = key = digest(record.inputs)
        output, cached = _train_one(ctx, record, cfg.model, key, ctx.run_dir / "train", None)
        if cached:
            ctx.reuse(record, "train", key)
        return output
    models = cfg.model.resolved_candidates()
    keys = {name: digest(_model_inputs(ctx, model)) for name, model in models}
    record.inputs = {**_model_inputs(ctx, cfg.model), "candidates": keys}
    record.key = key = digest(record.inputs)
    outputs: dict[str, TrainOutput] = {}
    reused: list[str] = []
    for name, model in models:
        folder = ctx.run_dir / "train" / name
        one, cached = _train_one(ctx, record, model, keys[name], folder, name)
        outputs[name] = replace(one, name=name)
        if cached:
            reused.append(name)
        else:
            # Each candidate is cached on its own, so a change to another one, or to
            # [model] select only, retrains nothing that is unchanged.
            ctx.cache.put("train", keys[name], outputs[name].to_dict(), run_id=ctx.run_id)
    first = outputs[models[0][0]]
    output = replace(first, model_key=key, candidates=outputs)
    if len(reused) == len(models):
        record.status, record.reusable = "cached", True
        record.outputs = output.to_dict()
        record.message = f"{len(models)} candidate(s), all unchanged: reused"
    else:
        record.status, record.reusable = "done", True
        trained = [n for n, _ in models if n not in reused]
        record.message = f"trained {', '.join(trained)}" + (
            f"; reused {', '.join(reused)} (unchanged)" if reused else ""
        )
    return output


def _train_one(
    ctx: RunContext,
    record: StepRecord,
    model: ModelConfig,
    key: str,
    output: Path,
    name: str | None,
) -> tuple[TrainOutput, bool]:
    """One model, from the cache when its inputs are unchanged; (output, cached)."""
    entry = ctx.cache.get("train", key)
    if entry is not None and (Path(entry["outputs"]["model_dir"]) / METADATA_FILE).is_file():
        return TrainOutput.from_dict(entry["outputs"]), True
    partial = output / "model"
    if partial.is_dir() and not (partial / METADATA_FILE).is_file():
        # In the run's own folder and without mooring.json: an earlier attempt's export,
        # stopped half-way (by a mooring that wrote it in place). This attempt writes it.
        shutil.rmtree(partial)
    statistics = ctx.train_statistics()
    workspace = ctx.workspace.with_model(model) if name is not None else ctx.workspace
    resume = (output / "checkpoints").is_dir() and any((output / "checkpoints").iterdir())

    def show(plan: RunPlan) -> Sequence[Any]:  # the plan the run follows, from its own rows
        ctx.observer.training_started(name, model.kind, plan.rows, plan.rounds)
        return ctx.observer.training_callbacks(plan.rounds, plan.steps_per_round)

    result = fit(workspace, output_dir=output, resume=resume, show=show, statistics=statistics)
    record.status, record.reusable = "done", True
    record.message = (
        f"{len(result.epochs)} epoch(s)"
        + (f", resumed after epoch {result.resumed_from}" if result.resumed_from else "")
        + f" → {result.model_dir}"
    )
    return _output(result, model, key, name), False


def _output(result: TrainingResult, model: ModelConfig, key: str, name: str | None) -> TrainOutput:
    last = result.epochs[-1] if result.epochs else {}
    return TrainOutput(
        model_dir=str(result.model_dir),
        training_record=str(result.training_record_path),
        task=result.task,
        epochs=len(result.epochs),
        last_epoch={k: float(v) for k, v in last.items()},
        fit_seconds=result.timings.get("fit_seconds"),
        feature_spec_hash=result.feature_spec_hash,
        statistics_hash=result.statistics_hash,
        schema_hash=result.schema_hash,
        parity_max_abs_diff=result.parity.max_abs_diff if result.parity else None,
        resumed_from_epoch=result.resumed_from,
        kind=model.kind,
        name=name,
        model_key=key,
    )
