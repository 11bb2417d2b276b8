"""Step 2, train: the configured model on the training data, exported as one SavedModel.

:func:`fit` is the work (also :meth:`mooring.project.Project.train`); :func:`run` is the
step: keyed by the data, its statistics and schema, ``[features]``, ``[model]`` and the
code, it resumes from the run's last checkpoint when a killed run is continued.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mooring.config import plan_training
from mooring.formats.model import METADATA_FILE
from mooring.pipeline.context import RunContext
from mooring.pipeline.fingerprint import digest
from mooring.pipeline.outputs import TrainOutput
from mooring.pipeline.record import StepRecord
from mooring.pipeline.workspace import Workspace

if TYPE_CHECKING:
    from mooring.contract import DatasetStatistics
    from mooring.training import TrainingResult

__all__ = ["fit", "run"]


def fit(
    workspace: Workspace,
    *,
    output_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    verbose: int = 0,
    statistics: DatasetStatistics | None = None,
) -> TrainingResult:
    """Train the configured model on the train data; export one SavedModel.

    The run goes to ``output_dir`` (default ``<home>/runs/<UTC time>``); the model
    folder (SavedModel + ``mooring.json``) is ``result.model_dir``. TensorFlow is
    imported only here, so the contract commands stay quick to start.
    """
    from mooring.training import train_model

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
        verbose=verbose,
    )


def run(ctx: RunContext, record: StepRecord) -> TrainOutput:
    """The train step."""
    cfg, ws = ctx.config, ctx.workspace
    validated = ctx.outputs.validated
    record.inputs = {
        "train_fingerprint": ws.data_fingerprint("train"),
        "statistics_hash": validated.statistics_hash,
        "schema_fingerprint": validated.schema_fingerprint,
        "features": cfg.features.model_dump(mode="json"),
        "model": cfg.model.model_dump(mode="json"),
        "data": cfg.data.model_dump(mode="json", exclude={"train", "eval"}),
        "code_version": ctx.code["code_version"],
    }
    record.key = key = digest(record.inputs)
    entry = ctx.cache.get("train", key)
    if entry is not None and (Path(entry["outputs"]["model_dir"]) / METADATA_FILE).is_file():
        ctx.reuse(record, "train", key)
        return TrainOutput.from_dict(entry["outputs"])
    statistics = ctx.train_statistics()
    output = ctx.run_dir / "train"
    resume = (output / "checkpoints").is_dir() and any((output / "checkpoints").iterdir())
    rows = statistics.num_rows * (1.0 - cfg.model.validation_split)
    plan = plan_training(cfg.model, int(rows))
    callbacks = ctx.observer.training_callbacks(plan.rounds, plan.steps_per_round)
    result = fit(ws, output_dir=output, resume=resume, callbacks=callbacks, statistics=statistics)
    last = result.epochs[-1] if result.epochs else {}
    record.status, record.reusable = "done", True
    record.message = (
        f"{len(result.epochs)} epoch(s)"
        + (f", resumed after epoch {result.resumed_from}" if result.resumed_from else "")
        + f" → {result.model_dir}"
    )
    return TrainOutput(
        model_dir=str(result.model_dir),
        training_record=str(result.run_record_path),
        task=result.task,
        epochs=len(result.epochs),
        last_epoch={k: float(v) for k, v in last.items()},
        fit_seconds=result.timings.get("fit_seconds"),
        feature_spec_hash=result.feature_spec_hash,
        statistics_hash=result.statistics_hash,
        schema_hash=result.schema_hash,
        parity_max_abs_diff=result.parity.max_abs_diff if result.parity else None,
        resumed_from_epoch=result.resumed_from,
    )
