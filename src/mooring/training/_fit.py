"""What every trainer shares: the run it is handed, fitting a Keras model, exporting it and
the training record.

:func:`mooring.training._train.train_model` resolves the label and the features, chooses
the trainer of the model's kind and hands it a :class:`Run`; each trainer (network,
trees, distributed) plans from the rows it really trains on, shows that
:class:`RunPlan` through the run's progress display, fits, and ends here: export ONE
SavedModel + ``mooring.json``, reload it with TensorFlow only, check train/serve parity,
and write the training record (``run.json``). This module imports no trainer.

Output folder layout::

    <output_dir>/model/         SavedModel + mooring.json (the artifact)
    <output_dir>/checkpoints/   epoch-0001/ … (weights.npz + state.json)
    <output_dir>/logs/          TensorBoard event files
    <output_dir>/run.json       the training record
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pyarrow as pa
import tensorflow as tf

from mooring.config import MooringConfig
from mooring.config._model import EarlyStoppingConfig, ModelConfig, TrainingPlan
from mooring.contract._io import ReadOptions, iter_batches, read_table
from mooring.errors import ConfigError, UsageError
from mooring.features._spec import FeatureSpec
from mooring.formats._files import atomic_write
from mooring.formats._model import load_saved_model, versions
from mooring.formats._training_run import TRAINING_FORMAT, TrainingRun
from mooring.training._checkpoints import (
    latest_checkpoint,
    restore_checkpoint,
    restore_weights,
    save_checkpoint,
)
from mooring.training._explain import reference_sample
from mooring.training._export import export_model
from mooring.training._labels import LabelEncoding
from mooring.training._parity import ParityReport, check_parity
from mooring.training._pipeline import InMemoryData, TrainingData, load_training_data

__all__ = ["Run", "RunPlan", "ShowPlan", "TrainingResult", "configure_runtime", "finish_network"]

RUN_FILE = "run.json"


@dataclass
class TrainingResult:
    """What a training run produced and measured."""

    model_dir: Path
    training_record_path: Path
    record: TrainingRun
    epochs: list[dict[str, float]]
    timings: dict[str, float]
    task: str
    label_vocabulary: list[str]
    feature_spec_hash: str
    statistics_hash: str
    schema_hash: str
    parity: ParityReport | None
    stopped_early: bool = False
    best_epoch: int | None = None
    resumed_from: int | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunPlan:
    """What a run trains, fixed before its first step from the rows it really trains on
    (labelled, outside the validation split; every labelled row for a solved linear
    model): the model's kind, those rows, and a network's plan of optimizer steps. The
    progress display is drawn from it and the run follows it, so the two cannot disagree.

    Examples:
        >>> from mooring.config._model import plan_training
        >>> plan = RunPlan("mlp", 117, plan_training(ModelConfig(), 117))
        >>> plan.rounds, plan.steps_per_round, RunPlan("gbt", 117).rounds
        (72, 28, 0)
    """

    kind: str
    rows: int
    steps: TrainingPlan | None = None  # None: trees, which take no optimizer steps

    @property
    def rounds(self) -> int:
        """Keras epochs (rounds of passes), at most; 0 for trees."""
        return self.steps.rounds if self.steps is not None else 0

    @property
    def steps_per_round(self) -> int:
        """Optimizer steps in one round; 0 for trees."""
        return self.steps.steps_per_round if self.steps is not None else 0


#: Draws a run's progress from its plan: the Keras callbacks that do (a progress bar).
ShowPlan = Callable[[RunPlan], Sequence[keras.callbacks.Callback]]


@dataclass(frozen=True)
class Run:
    """One training run as ``train_model`` hands it to a trainer: the config, the label and
    features resolved, where the rows come from, the seed, and when the run started."""

    cfg: MooringConfig
    spec: FeatureSpec
    label: LabelEncoding
    source: Any  # a path or an Arrow table
    options: ReadOptions
    seed: int
    started: str
    output_dir: Path
    clock: tuple[float, float]  # time.perf_counter() and time.process_time() at the start
    resume: bool = False
    callbacks: Sequence[keras.callbacks.Callback] = ()
    verbose: int = 0
    tensorboard: bool = False
    show: ShowPlan | None = None

    def load(self) -> tuple[TrainingData, np.ndarray[Any, Any] | None]:
        """The training data, its validation split drawn, and the class weights."""
        config = self.cfg.model
        data = load_training_data(
            self.source,
            self.spec,
            self.label,
            options=self.options,
            validation_split=config.validation_split,
            seed=self.seed,
            memory_limit_mb=config.memory_limit_mb,
        )
        return data, class_weights(config, self.label, data)

    def display(self, plan: RunPlan) -> list[keras.callbacks.Callback]:
        """The run's own callbacks, then the progress display drawn from ``plan``."""
        return [*self.callbacks, *(self.show(plan) if self.show is not None else ())]

    def parity_table(self) -> pa.Table:
        """The first ``[model] parity_records`` rows of the evaluation data (else training)."""
        cfg, n = self.cfg, self.cfg.model.parity_records
        if cfg.data.eval is not None:
            return read_table(cfg.path(cfg.data.eval), self.options).slice(0, n)
        if isinstance(self.source, pa.Table):
            return self.source.slice(0, n)
        batches, rows = [], 0
        for batch in iter_batches(self.source, self.options):
            batches.append(batch)
            rows += batch.num_rows
            if rows >= n:
                break
        return pa.Table.from_batches(batches).slice(0, n)


def configure_runtime(config: ModelConfig) -> None:
    """Threads and determinism. Thread counts only apply before TensorFlow starts."""
    threads = config.threads or os.cpu_count() or 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        # Small models: one inter-op thread avoids contention on few cores.
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        pass  # TensorFlow already running in this process: keep its settings.
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()


def _optimizer(config: ModelConfig, plan: TrainingPlan) -> keras.optimizers.Optimizer:
    rate: Any = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, plan.total_steps)
        )
    elif config.schedule == "exponential":
        rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate,
            decay_steps=plan.steps_per_round,
            decay_rate=config.decay_rate,
            staircase=True,
        )
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=0.9)
    return keras.optimizers.RMSprop(learning_rate=rate)


def compile_model(
    model: keras.Model, label: LabelEncoding, config: ModelConfig, plan: TrainingPlan
) -> None:
    if label.task == "binary":
        loss: Any = keras.losses.BinaryCrossentropy()
        metrics: list[Any] = [
            keras.metrics.AUC(name="auc"),
            keras.metrics.BinaryAccuracy(name="accuracy"),
        ]
    elif label.task == "multiclass":
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.MeanSquaredError()
        metrics = [keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(
        optimizer=_optimizer(config, plan),
        loss=loss,
        metrics=metrics,
        jit_compile=False,
        steps_per_execution=steps_per_execution(plan.steps_per_round),
    )


#: Optimizer steps run in one call of the compiled train function, at most: fewer calls
#: from Python (callbacks, logs) per round.
MOST_STEPS_PER_EXECUTION = 32


def steps_per_execution(steps_per_round: int) -> int:
    """The most steps per call, up to :data:`MOST_STEPS_PER_EXECUTION`, that divide a round.

    Keras runs a whole execution even past the round's last step, which would take
    batches from the next round; a divisor keeps every round's steps where the plan puts
    them (a prime count of steps above 32 runs one a call). On Adult (115 steps an
    epoch: 23 a call) a run's training takes about a fifth less CPU, and so do a
    150-row table's three candidates.

    Examples:
        >>> steps_per_execution(115), steps_per_execution(28), steps_per_execution(31)
        (23, 28, 31)
    """
    most = min(MOST_STEPS_PER_EXECUTION, max(1, steps_per_round))
    return max(d for d in range(1, most + 1) if steps_per_round % d == 0)


def class_weights(
    config: ModelConfig, label: LabelEncoding, data: TrainingData
) -> np.ndarray[Any, Any] | None:
    choice = config.class_weight
    if choice == "none":
        return None
    if not label.is_classification:
        raise ConfigError(
            f"[model] class_weight = {choice!r} applies to classification; the task is "
            "regression — remove class_weight"
        )
    if choice == "balanced":
        counts = np.asarray(data.class_counts, dtype=np.float64)
        if config.kind == "linear" and data.validation_class_counts is not None:
            counts = counts + data.validation_class_counts  # it fits every labelled row
        total = counts.sum()
        return np.where(counts > 0, total / (len(counts) * np.maximum(counts, 1)), 0.0)
    assert isinstance(choice, dict)
    unknown = [k for k in choice if k not in label.vocabulary]
    if unknown:
        raise ConfigError(
            f"[model] class_weight names {unknown}, which are not label values; label values are "
            f"{list(label.vocabulary)}"
        )
    return np.asarray([float(choice.get(v, 1.0)) for v in label.vocabulary])


def run_fingerprint(cfg: MooringConfig, spec: FeatureSpec, label: LabelEncoding) -> str:
    """What must match for a checkpoint to be resumable: model params, features, label."""
    params = cfg.model.model_dump(mode="json", exclude={"parity_records", "threads"})
    blob = json.dumps(
        {"model": params, "spec": spec.fingerprint(), "label": label.to_dict()}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class EpochRecorder(keras.callbacks.Callback):  # type: ignore[misc]
    """Checkpoint every epoch, time it, and decide early stopping (state kept in checkpoints)."""

    def __init__(
        self,
        root: Path,
        stopping: EarlyStoppingConfig | None,
        fingerprint: str,
        state: dict[str, Any],
        *,
        save: bool = True,
    ) -> None:
        super().__init__()
        self.root = root
        self.save = save
        self.stopping = stopping
        self.fingerprint = fingerprint
        self.history: list[dict[str, float]] = list(state.get("history", []))
        self.best: float | None = state.get("best")
        self.best_epoch: int | None = state.get("best_epoch")
        self.wait: int = int(state.get("wait", 0))
        self.stopped: bool = bool(state.get("stopped", False))
        self._start = 0.0
        self._cpu = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics: dict[str, float] = {}
        for key, value in (logs or {}).items():
            array = np.asarray(value)
            if array.ndim == 0 and array.dtype.kind in "fiu":
                metrics[key] = float(array)
        lr = self.model.optimizer.learning_rate
        metrics["learning_rate"] = float(lr.numpy() if hasattr(lr, "numpy") else lr)
        metrics["epoch"] = epoch + 1
        metrics["seconds"] = time.perf_counter() - self._start
        metrics["cpu_seconds"] = time.process_time() - self._cpu
        self.history.append(metrics)
        stopping = self.stopping
        if stopping is not None:
            value = metrics.get(stopping.monitor)
            if value is None:
                raise ConfigError(
                    f"[model.early_stopping] monitor = {stopping.monitor!r} is not a logged "
                    f"metric; logged: {sorted(k for k in metrics if k.startswith('val_'))}"
                )
            higher = "auc" in stopping.monitor or "accuracy" in stopping.monitor
            improved = self.best is None or (
                value > self.best + stopping.min_delta
                if higher
                else value < self.best - stopping.min_delta
            )
            if improved:
                self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            else:
                self.wait += 1
                if self.wait > stopping.patience:
                    self.stopped = True
                    self.model.stop_training = True
        if not self.save:  # a worker other than the chief: the chief writes the checkpoint
            return
        save_checkpoint(
            self.root,
            epoch + 1,
            self.model,
            self.model.optimizer,
            {
                "fingerprint": self.fingerprint,
                "history": self.history,
                "best": self.best,
                "best_epoch": self.best_epoch,
                "wait": self.wait,
                "stopped": self.stopped,
            },
        )


def reference_rows(data: TrainingData, seed: int) -> dict[str, Any] | None:
    """The explanation's background: a seeded sample of the training rows (in memory, all of
    them; streamed, the first row group's), as model inputs; None when there are none."""
    if isinstance(data, InMemoryData):
        columns: Mapping[str, Any] = data.features
    else:
        columns = next(iter(data.labelled()), ({}, None))[0]
    if not columns or not len(next(iter(columns.values()))):
        return None
    return reference_sample(columns, seed=seed)


def start_state(
    ckpt_root: Path, model: keras.Model, fingerprint: str, *, resume: bool
) -> dict[str, Any]:
    """With ``resume``, the newest checkpoint's state restored into ``model`` (empty when there
    is none); without, no state and the old checkpoints removed.

    Raises:
        UsageError: the checkpoint was written for another model, features or label.
    """
    if not resume:
        if ckpt_root.exists():
            shutil.rmtree(ckpt_root)
        return {}
    last = latest_checkpoint(ckpt_root)
    if last is None:
        return {}
    saved = json.loads((last / "state.json").read_text("utf-8"))
    if saved.get("fingerprint") != fingerprint:
        raise UsageError(
            f"cannot resume from '{last}': the model, features or label changed since it "
            "was written; train without --resume to start over"
        )
    return restore_checkpoint(last, model, model.optimizer)


def finish_network(  # noqa: PLR0913 - what the fit measured, for the training record
    cfg: MooringConfig,
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    *,
    output_dir: Path,
    recorder: EpochRecorder,
    plan: TrainingPlan,
    seed: int,
    started: str,
    parity_table: Callable[[], pa.Table],
    data: dict[str, Any],
    timings: dict[str, float],
    examples: int,
    resumed_from: int | None,
    clock: tuple[float, float],
    fields: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    reference: TrainingData | None = None,
) -> TrainingResult:
    """After fitting: the best epoch's weights (when early stopping keeps them), export,
    parity check and the training record — the same for one process and for several workers.

    ``reference``: the training rows a seeded sample of which the ``explain`` signature
    measures attributions from (:func:`reference_rows`)."""
    config = cfg.model
    ckpt_root = output_dir / "checkpoints"
    best_epoch = recorder.best_epoch
    stopping = plan.early_stopping
    last_epoch = recorder.history[-1]["epoch"] if recorder.history else 0
    if stopping is not None and stopping.restore_best and best_epoch and best_epoch != last_epoch:
        restore_weights(ckpt_root / f"epoch-{best_epoch:04d}", model)

    t_export = time.perf_counter()
    extra = {
        "kind": config.kind,
        "seed": seed,
        "model_config": config.model_dump(mode="json"),
        "trained_at": started,
        "epochs_trained": int(last_epoch),
        "best_epoch": best_epoch,
    }
    model_dir = export_model(
        model,
        spec,
        label,
        output_dir / "model",
        extra=extra,
        reference=None if reference is None else reference_rows(reference, seed),
    )
    export_seconds = time.perf_counter() - t_export
    t_parity = time.perf_counter()
    parity = None
    if config.parity_records > 0:
        loaded = load_saved_model(model_dir, warn=False)
        parity = check_parity(
            model, loaded, spec, label, parity_table(), records=config.parity_records
        )
    parity_seconds = time.perf_counter() - t_parity
    t_start, cpu_start = clock
    timings = {
        **timings,
        "export_seconds": export_seconds,
        "parity_seconds": parity_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "cpu_seconds": time.process_time() - cpu_start,
    }
    fit_seconds = timings["fit_seconds"]
    timings["examples_per_second"] = examples / fit_seconds if fit_seconds > 0 else 0.0
    record = training_record(
        config,
        spec,
        label,
        started=started,
        seed=seed,
        plan=plan_record(plan),
        data=data,
        epochs=recorder.history,
        best_epoch=best_epoch,
        stopped_early=recorder.stopped,
        resumed_from=resumed_from,
        timings=timings,
        parity=parity,
        warnings=[*spec.warnings, *notes],
        model_dir=model_dir,
        **(fields or {}),
    )
    return save_run(output_dir, record, spec, label, parity)


def training_record(
    config: ModelConfig,
    spec: FeatureSpec,
    label: LabelEncoding,
    *,
    started: str,
    seed: int,
    parity: ParityReport | None,
    model_dir: Path,
    **fields: Any,
) -> TrainingRun:
    """The training record (``run.json`` beside the model) every model kind writes: what
    was trained, on what, from which spec, and ``fields`` (data counts, epochs, timings,
    warnings, ...). A registered version's run record starts from it."""
    stored = {
        "format": TRAINING_FORMAT,
        "version": 1,
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "params": config.model_dump(mode="json"),
        "kind": config.kind,
        "seed": seed,
        "task": label.task,
        "label": label.to_dict(),
        "features": {f.name: _describe(f) for f in spec.features},
        "crosses": [c.name for c in spec.crosses],
        "feature_spec_hash": spec.fingerprint(),
        "statistics_hash": spec.statistics_fingerprint,
        "schema_hash": spec.schema_fingerprint,
        **fields,
        "parity": parity.to_dict() if parity is not None else None,
        "model_dir": str(model_dir),
    }
    return TrainingRun.read(stored)


def save_run(
    output_dir: Path,
    record: TrainingRun,
    spec: FeatureSpec,
    label: LabelEncoding,
    parity: ParityReport | None,
) -> TrainingResult:
    """Write ``record`` as the run's ``run.json`` (atomically) and return the result it
    describes."""
    run_path = output_dir / RUN_FILE
    atomic_write(
        run_path,
        (json.dumps(record.to_dict(), indent=2, default=_json_default) + "\n").encode("utf-8"),
    )
    return TrainingResult(
        model_dir=Path(record.model_dir),
        training_record_path=run_path,
        record=record,
        epochs=[dict(epoch) for epoch in record.epochs],
        timings=dict(record.timings),
        task=label.task,
        label_vocabulary=list(label.vocabulary),
        feature_spec_hash=spec.fingerprint(),
        statistics_hash=spec.statistics_fingerprint,
        schema_hash=spec.schema_fingerprint,
        parity=parity,
        stopped_early=record.stopped_early,
        best_epoch=record.best_epoch,
        resumed_from=record.resumed_from,
        warnings=list(record.warnings),
    )


def plan_record(plan: TrainingPlan) -> dict[str, Any]:
    """The training plan as the training record keeps it."""
    stopping = plan.early_stopping
    return {
        "batch_size": plan.batch_size,
        "steps_per_pass": plan.steps_per_pass,
        "passes_per_round": plan.passes_per_round,
        "rounds": plan.rounds,
        "total_steps": plan.total_steps,
        "early_stopping": stopping.model_dump(mode="json") if stopping is not None else None,
        "reason": plan.reason,
    }


def _describe(feature: Any) -> str:
    if feature.kind == "numeric":
        return f"numeric/{feature.transform}"
    return f"categorical/{feature.encoding}"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def load_run(output_dir: Path) -> TrainingResult:
    """The result of the run whose record ``output_dir/run.json`` is (a worker wrote it)."""
    run_path = output_dir / RUN_FILE
    record = TrainingRun.read(json.loads(run_path.read_text("utf-8")))
    saved = record.parity
    parity = (
        ParityReport(
            records=int(saved["records"]),
            max_abs_diff=float(saved["max_abs_diff"]),
            tolerance=float(saved["tolerance"]),
            outputs=list(saved["outputs"]),
            differing=list(saved.get("differing", [])),
        )
        if saved
        else None
    )
    return TrainingResult(
        model_dir=Path(record.model_dir),
        training_record_path=run_path,
        record=record,
        epochs=[dict(epoch) for epoch in record.epochs],
        timings=dict(record.timings),
        task=record.task,
        label_vocabulary=list(record.label.get("vocabulary") or []),
        feature_spec_hash=str(record.feature_spec_hash),
        statistics_hash=str(record.statistics_hash),
        schema_hash=str(record.schema_hash),
        parity=parity,
        stopped_early=record.stopped_early,
        best_epoch=record.best_epoch,
        resumed_from=record.resumed_from,
        warnings=list(record.warnings),
    )
