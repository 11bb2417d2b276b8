"""The network trainer: a model Keras fits in this process, or a linear model solved.

``kind = "mlp"`` (or a user builder) is fitted by ``Model.fit`` for the plan of optimizer
steps made from the training rows, one Keras epoch a round of passes, checkpointed every
round so ``resume`` goes on from the last. ``kind = "linear"`` is solved to its optimum
(:mod:`mooring.training._linear`) unless it has more parameters than that can take,
when it is stepped like a network. Both end in
:func:`~mooring.training._fit.finish_network` (export, parity, ``run.json``).
"""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np

from mooring.config._model import plan_training
from mooring.training._builders import build_model, resolve_kind
from mooring.training._fit import (
    EpochRecorder,
    Run,
    RunPlan,
    TrainingResult,
    compile_model,
    finish_network,
    run_fingerprint,
    start_state,
)
from mooring.training._linear import LBFGS_MAX_PARAMETERS, fit_linear, linear_parameters
from mooring.training._pipeline import StreamedData, TrainingData

__all__ = ["NetworkTrainer"]


class NetworkTrainer:
    """Trains ``kind = "mlp"`` or ``"linear"`` (or a builder's model) in this process."""

    def train(self, run: Run) -> TrainingResult:
        """Build the model, read the rows, plan from them, fit, export and record."""
        cfg, spec, label = run.cfg, run.spec, run.label
        config = cfg.model
        model = build_model(spec, label, config, resolve_kind(config))
        t_data = time.perf_counter()
        train_data, weights = run.load()
        notes: list[str] = []
        if config.kind == "linear":
            if linear_parameters(model, label) <= LBFGS_MAX_PARAMETERS:
                return _solve_linear(
                    run, model, train_data, weights, data_seconds=time.perf_counter() - t_data
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
        compile_model(model, label, config, plan)
        model.optimizer.build(model.trainable_variables)
        data_seconds = time.perf_counter() - t_data

        output_dir = run.output_dir
        ckpt_root = output_dir / "checkpoints"
        fingerprint = run_fingerprint(cfg, spec, label)
        state = start_state(ckpt_root, model, fingerprint, resume=run.resume)
        resumed_from = int(state["epoch"]) if state else None
        first_epoch = int(state.get("epoch", 0))
        recorder = EpochRecorder(ckpt_root, plan.early_stopping, fingerprint, state)
        all_callbacks: list[Any] = [recorder]
        if run.tensorboard:
            all_callbacks.append(
                keras.callbacks.TensorBoard(
                    log_dir=str(output_dir / "logs"),
                    update_freq="epoch",
                    profile_batch=0,
                    write_graph=False,
                )
            )
        all_callbacks.extend(run.display(RunPlan(config.kind, train_data.train_rows, plan)))

        t_fit, cpu_fit = time.perf_counter(), time.process_time()
        if first_epoch < plan.rounds and not recorder.stopped:
            # One Keras epoch is one round: `passes` passes over the rows, then validation.
            model.fit(
                train_data.train_dataset(
                    batch_size=plan.batch_size,
                    seed=run.seed,
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
                verbose=run.verbose,
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
            seed=run.seed,
            started=run.started,
            parity_table=run.parity_table,
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
            clock=run.clock,
            notes=notes,
            reference=train_data,
        )


def _solve_linear(
    run: Run,
    model: keras.Model,
    data: TrainingData,
    weights: np.ndarray[Any, Any] | None,
    *,
    data_seconds: float,
) -> TrainingResult:
    """The linear model fitted to its optimum (:mod:`mooring.training._linear`) on every
    labelled row, then exported and recorded like a network: one entry per pass over the
    rows in ``epochs``. Nothing to resume: a fit takes a few passes, so a resumed run
    fits again."""
    cfg, spec, label = run.cfg, run.spec, run.label
    config = cfg.model
    ckpt_root = run.output_dir / "checkpoints"
    fingerprint = run_fingerprint(cfg, spec, label)
    start_state(ckpt_root, model, fingerprint, resume=False)
    rows = data.train_rows + data.validation_rows  # it fits every labelled row
    plan = plan_training(config, rows)
    shown = run.display(RunPlan(config.kind, rows, plan))
    t_fit, cpu_fit = time.perf_counter(), time.process_time()
    fit = fit_linear(
        model,
        data,
        label,
        weights=weights,
        memory_limit_mb=config.memory_limit_mb,
        callbacks=shown,
    )
    fit_seconds, fit_cpu = time.perf_counter() - t_fit, time.process_time() - cpu_fit
    recorder = EpochRecorder(ckpt_root, None, fingerprint, {"history": fit.history}, save=False)
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
        output_dir=run.output_dir,
        recorder=recorder,
        plan=plan,
        seed=run.seed,
        started=run.started,
        parity_table=run.parity_table,
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
        clock=run.clock,
        fields={"linear_fit": fit.to_dict()},
        notes=notes,
        reference=data,
    )
