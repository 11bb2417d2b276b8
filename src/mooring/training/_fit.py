"""``train_model``: statistics + config → a trained, exported, parity-checked model.

Steps, in order — everything a user can get wrong fails before the first epoch:

1. resolve the label (task, vocabulary) and the feature spec from statistics;
2. build the model (built-in or user builder) and read the training data;
3. fit with per-epoch checkpoints, TensorBoard logs (with the tensorboard extra),
   optional early stopping;
   with ``resume=True`` continue from the last checkpoint;
4. export ONE SavedModel + ``mooring.json``; reload it with TensorFlow only and
   check train/serve parity on evaluation records;
5. write the training record (``run.json``): parameters, per-epoch metrics, timings,
   CPU seconds, hashes.

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
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pyarrow as pa
import tensorflow as tf

from mooring.config import MooringConfig
from mooring.config._model import EarlyStoppingConfig, ModelConfig, TrainingPlan, plan_training
from mooring.contract._io import ReadOptions, iter_batches, read_table
from mooring.errors import ConfigError, UsageError, has_extra
from mooring.features._infer import build_feature_spec
from mooring.features._spec import FeatureSpec
from mooring.formats._files import atomic_write
from mooring.formats._model import load_saved_model, versions
from mooring.formats._version_record import TRAINING_FORMAT
from mooring.training._builders import build_model, resolve_kind
from mooring.training._checkpoints import (
    latest_checkpoint,
    restore_checkpoint,
    restore_weights,
    save_checkpoint,
)
from mooring.training._explain import reference_sample
from mooring.training._export import export_model
from mooring.training._labels import LabelEncoding, resolve_label
from mooring.training._linear import LBFGS_MAX_PARAMETERS, fit_linear, linear_parameters
from mooring.training._parity import ParityReport, check_parity
from mooring.training._pipeline import (
    InMemoryData,
    StreamedData,
    TrainingData,
    load_training_data,
)

if TYPE_CHECKING:
    from mooring.contract._schema import Schema
    from mooring.contract._statistics import DatasetStatistics
    from mooring.training._distributed import Launcher

__all__ = ["TrainingResult", "configure_runtime", "train_model"]

RUN_FILE = "run.json"


@dataclass
class TrainingResult:
    """What a training run produced and measured."""

    model_dir: Path
    training_record_path: Path
    record: dict[str, Any]
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


def _compile(
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


def _class_weights(
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


def _run_fingerprint(cfg: MooringConfig, spec: FeatureSpec, label: LabelEncoding) -> str:
    """What must match for a checkpoint to be resumable: model params, features, label."""
    params = cfg.model.model_dump(mode="json", exclude={"parity_records", "threads"})
    blob = json.dumps(
        {"model": params, "spec": spec.fingerprint(), "label": label.to_dict()}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class _EpochRecorder(keras.callbacks.Callback):  # type: ignore[misc]
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


def _parity_table(cfg: MooringConfig, source: Any, options: ReadOptions, n: int) -> pa.Table:
    if cfg.data.eval is not None:
        return read_table(cfg.path(cfg.data.eval), options).slice(0, n)
    if isinstance(source, pa.Table):
        return source.slice(0, n)
    batches = []
    rows = 0
    for batch in iter_batches(source, options):
        batches.append(batch)
        rows += batch.num_rows
        if rows >= n:
            break
    return pa.Table.from_batches(batches).slice(0, n)


def _start_state(
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


def train_model(  # noqa: PLR0913 - keyword-only options of one training run
    cfg: MooringConfig,
    *,
    statistics: DatasetStatistics,
    schema: Schema | None,
    output_dir: Path,
    data: Any = None,
    resume: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    tensorboard: bool | None = None,
    launcher: Launcher | None = None,
    pod: tuple[int, list[str]] | None = None,
) -> TrainingResult:
    """Train, export and parity-check a model; write the training record.

    ``data`` overrides ``[data] train`` (a path or an Arrow table) and must be the
    data ``statistics`` were computed from. ``callbacks`` run after mooring's own
    (checkpointing first, so an interrupted run can always resume). With ``[training]
    workers`` above 1 the network trains on that many workers, started by ``launcher``
    (default: processes on this machine; :func:`mooring.scale.training_launcher` gives
    Ray's), and the chief's run is returned; ``pod = (index, peers)`` makes this process
    that worker of a job started elsewhere (``mooring train --worker-index``).
    ``tensorboard`` writes TensorBoard logs; by default, when the tensorboard extra is
    installed.

    Raises:
        ConfigError / DataError: bad features, label, builder or data — before training.
        ParityError: the exported model disagrees with the trained one.

    Examples:
        >>> result = train_model(cfg, statistics=stats, schema=schema,
        ...                      output_dir=Path("runs/income"))  # doctest: +SKIP
        >>> result.model_dir  # doctest: +SKIP
        PosixPath('runs/income/model')
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    config = cfg.model
    configure_runtime(config)
    seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(4), "little")
    label = resolve_label(cfg, statistics, schema)
    spec = build_feature_spec(
        cfg.features,
        statistics=statistics,
        schema=schema,
        label=label.column,
        timestamp=cfg.data.timestamp,
    )
    options = ReadOptions.from_config(cfg.data)
    source = data if data is not None else cfg.path(cfg.data.train)
    if config.kind == "linear" and pod is not None:
        raise UsageError(
            "[model] kind = 'linear' is fitted in one process (a few passes over the data); "
            "run `mooring train` without --worker-index"
        )
    if cfg.training.workers > 1 and config.kind == "mlp":
        from mooring.training._distributed import train_distributed

        return train_distributed(
            cfg,
            spec=spec,
            label=label,
            source=source,
            options=options,
            seed=seed,
            started=started,
            output_dir=Path(output_dir),
            resume=resume,
            callbacks=callbacks,
            launcher=launcher,
            pod=pod,
        )
    model = build_model(spec, label, config, resolve_kind(config)) if config.kind != "gbt" else None
    t_data = time.perf_counter()
    train_data = load_training_data(
        source,
        spec,
        label,
        options=options,
        validation_split=config.validation_split,
        seed=seed,
        memory_limit_mb=config.memory_limit_mb,
    )
    weights = _class_weights(config, label, train_data)
    if model is None:
        from mooring.training._trees import train_trees

        return train_trees(
            cfg,
            spec=spec,
            label=label,
            data=train_data,
            weights=weights,
            output_dir=Path(output_dir),
            parity_table=lambda: _parity_table(cfg, source, options, config.parity_records),
            seed=seed,
            started=started,
            clock=(t_start, cpu_start, time.perf_counter() - t_data),
            resume=resume,
        )
    notes: list[str] = []
    if config.kind == "linear":
        if linear_parameters(model, label) <= LBFGS_MAX_PARAMETERS:
            return _train_linear(
                cfg,
                model,
                spec,
                label,
                train_data,
                weights,
                output_dir=Path(output_dir),
                callbacks=callbacks,
                seed=seed,
                started=started,
                parity_table=lambda: _parity_table(cfg, source, options, config.parity_records),
                clock=(t_start, cpu_start, time.perf_counter() - t_data),
            )
        notes.append(
            f"linear: {linear_parameters(model, label):,} parameters are more than the "
            f"{LBFGS_MAX_PARAMETERS:,} fitted to the optimum; trained by {config.optimizer} "
            "for the step budget instead, and may be under-trained: give the wide columns "
            "fewer values ([features.<name>] max_tokens or bins)"
        )
    # A linear model too wide to solve is stepped like a network.
    plan = plan_training(config.model_copy(update={"kind": "mlp"}), train_data.train_rows)
    steps = plan.steps_per_round
    passes = plan.passes_per_round
    _compile(model, label, config, plan)
    model.optimizer.build(model.trainable_variables)
    data_seconds = time.perf_counter() - t_data

    output_dir = Path(output_dir)
    ckpt_root = output_dir / "checkpoints"
    fingerprint = _run_fingerprint(cfg, spec, label)
    state = _start_state(ckpt_root, model, fingerprint, resume=resume)
    resumed_from = int(state["epoch"]) if state else None
    first_epoch = int(state.get("epoch", 0))
    recorder = _EpochRecorder(ckpt_root, plan.early_stopping, fingerprint, state)
    all_callbacks: list[Any] = [recorder]
    if tensorboard is None:
        # Keras's callback needs the tensorboard extra for its summaries.
        tensorboard = has_extra("tensorboard")
    if tensorboard:
        all_callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(output_dir / "logs"),
                update_freq="epoch",
                profile_batch=0,
                write_graph=False,
            )
        )
    all_callbacks.extend(callbacks)

    t_fit, cpu_fit = time.perf_counter(), time.process_time()
    if first_epoch < plan.rounds and not recorder.stopped:
        # One Keras epoch is one round: `passes` passes over the rows, then validation.
        model.fit(
            train_data.train_dataset(
                batch_size=plan.batch_size,
                seed=seed,
                first_epoch=first_epoch * passes,
                epochs=plan.rounds * passes,
                weights=weights,
            ),
            validation_data=train_data.validation_dataset(
                batch_size=plan.batch_size, weights=weights
            ),
            epochs=plan.rounds,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            callbacks=all_callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline already shuffles, seeded per epoch
        )
    fit_seconds, fit_cpu = time.perf_counter() - t_fit, time.process_time() - cpu_fit
    rounds_run = max(0, len(recorder.history) - (resumed_from or 0))
    return finish_network(
        cfg,
        model,
        spec,
        label,
        output_dir=output_dir,
        recorder=recorder,
        plan=plan,
        seed=seed,
        started=started,
        parity_table=lambda: _parity_table(cfg, source, options, config.parity_records),
        data={
            "train_rows": train_data.train_rows,
            "validation_rows": train_data.validation_rows,
            "dropped_rows_without_label": train_data.dropped_rows,
            "streamed": isinstance(train_data, StreamedData),
            "steps_per_epoch": steps,
        },
        timings={
            "prepare_seconds": data_seconds,
            "fit_seconds": fit_seconds,
            "fit_cpu_seconds": fit_cpu,
        },
        examples=train_data.train_rows * passes * rounds_run,
        resumed_from=resumed_from,
        clock=(t_start, cpu_start),
        notes=notes,
        reference=train_data,
    )


def _train_linear(  # noqa: PLR0913 - what one linear fit needs
    cfg: MooringConfig,
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    data: TrainingData,
    weights: np.ndarray[Any, Any] | None,
    *,
    output_dir: Path,
    callbacks: Sequence[keras.callbacks.Callback],
    seed: int,
    started: str,
    parity_table: Callable[[], pa.Table],
    clock: tuple[float, float, float],
) -> TrainingResult:
    """The linear model fitted to its optimum (:mod:`mooring.training._linear`), then
    exported and recorded like a network: one entry per pass over the rows in ``epochs``.
    Nothing to resume: a fit takes a few passes, so a resumed run fits again."""
    config = cfg.model
    t_start, cpu_start, data_seconds = clock
    ckpt_root = output_dir / "checkpoints"
    fingerprint = _run_fingerprint(cfg, spec, label)
    _start_state(ckpt_root, model, fingerprint, resume=False)
    t_fit, cpu_fit = time.perf_counter(), time.process_time()
    fit = fit_linear(
        model,
        data,
        label,
        weights=weights,
        memory_limit_mb=config.memory_limit_mb,
        callbacks=callbacks,
    )
    fit_seconds, fit_cpu = time.perf_counter() - t_fit, time.process_time() - cpu_fit
    recorder = _EpochRecorder(ckpt_root, None, fingerprint, {"history": fit.history}, save=False)
    notes = list(fit.warnings)
    if cfg.training.workers > 1:
        notes.append(
            f"linear: fitted in one process ({fit.iterations} passes over the rows); "
            f"[training] workers = {cfg.training.workers} applies to networks"
        )
    return finish_network(
        cfg,
        model,
        spec,
        label,
        output_dir=output_dir,
        recorder=recorder,
        plan=plan_training(config, fit.rows),
        seed=seed,
        started=started,
        parity_table=parity_table,
        data={
            "train_rows": fit.rows,
            "validation_rows": 0,
            "dropped_rows_without_label": data.dropped_rows,
            "streamed": isinstance(data, StreamedData),
            "steps_per_epoch": 1,
        },
        timings={
            "prepare_seconds": data_seconds,
            "fit_seconds": fit_seconds,
            "fit_cpu_seconds": fit_cpu,
        },
        examples=fit.rows * fit.iterations,
        resumed_from=None,
        clock=(t_start, cpu_start),
        fields={"linear_fit": fit.to_dict()},
        notes=notes,
        reference=data,
    )


def finish_network(  # noqa: PLR0913 - what the fit measured, for the training record
    cfg: MooringConfig,
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    *,
    output_dir: Path,
    recorder: _EpochRecorder,
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
) -> dict[str, Any]:
    """The training record (``run.json`` beside the model) every model kind writes: what
    was trained, on what, from which spec, and ``fields`` (data counts, epochs, timings,
    warnings, ...). A registered version's run record starts from it."""
    return {
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


def save_run(
    output_dir: Path,
    record: dict[str, Any],
    spec: FeatureSpec,
    label: LabelEncoding,
    parity: ParityReport | None,
) -> TrainingResult:
    """Write ``record`` as the run's ``run.json`` (atomically) and return the result it
    describes."""
    run_path = output_dir / RUN_FILE
    atomic_write(
        run_path, (json.dumps(record, indent=2, default=_json_default) + "\n").encode("utf-8")
    )
    return TrainingResult(
        model_dir=Path(record["model_dir"]),
        training_record_path=run_path,
        record=record,
        epochs=record["epochs"],
        timings=record["timings"],
        task=label.task,
        label_vocabulary=list(label.vocabulary),
        feature_spec_hash=spec.fingerprint(),
        statistics_hash=spec.statistics_fingerprint,
        schema_hash=spec.schema_fingerprint,
        parity=parity,
        stopped_early=bool(record["stopped_early"]),
        best_epoch=record["best_epoch"],
        resumed_from=record["resumed_from"],
        warnings=record["warnings"],
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
    record: dict[str, Any] = json.loads(run_path.read_text("utf-8"))
    saved = record.get("parity")
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
        model_dir=Path(record["model_dir"]),
        training_record_path=run_path,
        record=record,
        epochs=record["epochs"],
        timings=record["timings"],
        task=record["task"],
        label_vocabulary=list(record["label"].get("vocabulary") or []),
        feature_spec_hash=record["feature_spec_hash"],
        statistics_hash=record["statistics_hash"],
        schema_hash=record["schema_hash"],
        parity=parity,
        stopped_early=bool(record["stopped_early"]),
        best_epoch=record["best_epoch"],
        resumed_from=record["resumed_from"],
        warnings=record["warnings"],
    )
