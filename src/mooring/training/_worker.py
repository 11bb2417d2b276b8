"""One worker of a data-parallel job: ``python -m mooring.training._worker JOB_FOLDER INDEX``.

The worker trains under ``tf.distribute.MultiWorkerMirroredStrategy`` (its peers from
``TF_CONFIG``) with its own training loop, not Keras 3's ``Model.fit``: ``fit`` under
this strategy fails in Keras 3 (keras-team/keras#20585, keras-team/keras#20329,
tensorflow/tensorflow#72388), and ``BackupAndRestore`` has had its own bugs
(keras-team/keras#19179, keras-team/keras#20712) and does not keep the input's
position. The loop keeps that itself: every epoch's order depends only on
``(seed, epoch, worker)``, so the chief's checkpoint of epoch *k* (weights, optimizer,
early-stopping state) is all a restarted job needs to go on exactly from epoch *k*.

Each step, every worker computes the loss of its ``local_batch`` rows over the
*global* batch and Keras' optimizer sums the gradients across workers
(one all-reduce), so N workers take the steps one process takes on the global batch.
Validation runs on each worker's own validation rows; their sums (loss, accuracy, a
histogram of scores per class for the AUC) are all-reduced, so every worker sees the
same metrics and takes the same early-stopping decision.

Examples:
    >>> _auc(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    1.0
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from mooring.errors import MooringError, PeerLostError
from mooring.training._job import ERROR_EXIT, ROW_COLUMN, Job

__all__ = ["main", "run_worker"]

_AUC_BINS = 1000


def _auc(positive: np.ndarray[Any, Any], negative: np.ndarray[Any, Any]) -> float:
    """ROC AUC from weighted score histograms (ties within a bin count half)."""
    pos, neg = float(positive.sum()), float(negative.sum())
    if pos <= 0 or neg <= 0:
        return float("nan")
    below = np.concatenate([[0.0], np.cumsum(negative)[:-1]])
    wins = float((positive * (below + 0.5 * negative)).sum())
    return wins / (pos * neg)


def _write_error(folder: Path, index: int, exc: MooringError) -> None:
    path = folder / f"error-{index}.json"
    path.write_text(json.dumps({"type": type(exc).__name__, "message": str(exc)}), "utf-8")


def run_worker(folder: Path, index: int) -> None:
    """Train as worker ``index`` of the job in ``folder``; the chief (0) also exports.

    ``TF_CONFIG`` must be set, and TensorFlow not yet started, in this process.
    """
    job = Job.load(folder)
    cfg = job.cfg
    config = cfg.model
    threads = config.threads or job.threads or os.cpu_count() or 1
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
    )
    import keras

    keras.utils.set_random_seed(job.seed)
    tf.config.experimental.enable_op_determinism()
    try:
        _Trainer(job, index, strategy).run()
    except (tf.errors.UnavailableError, tf.errors.CancelledError) as exc:
        lines = [line.strip() for line in str(exc.message or "").splitlines() if line.strip()]
        # Inside a compiled step the first line is only "Graph execution error:".
        told = [line for line in lines if "aborted" in line or "unavailable" in line.lower()]
        reason = (told or lines[-1:] or [type(exc).__name__])[0][:200]
        raise PeerLostError(
            f"worker {index} of {job.workers}: a peer of the job stopped ({reason}); every "
            "worker must start again to go on from the last checkpoint (the launcher "
            "restarts them; a Kubernetes Job replaces its pods)"
        ) from None


class _Trainer:
    """The loop of one worker (see the module's docstring)."""

    def __init__(self, job: Job, index: int, strategy: Any) -> None:
        self.job = job
        self.index = index
        self.chief = index == 0
        self.strategy = strategy
        self._sum: Any = None

    def all_sum(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The element-wise sum of ``values`` over every worker (one all-reduce)."""
        import tensorflow as tf

        if self._sum is None:
            strategy = self.strategy

            def reduce(local: Any) -> Any:
                per_replica = strategy.run(tf.identity, args=(local,))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

            self._sum = tf.function(reduce, reduce_retracing=True)
        summed = self._sum(tf.constant(np.asarray(values, dtype=np.float64)))
        return np.asarray(summed.numpy())

    def run(self) -> None:
        import pyarrow.parquet as pq

        from mooring.training._builders import build_model, resolve_kind
        from mooring.training._fit import (
            EpochRecorder,
            class_weights,
            compile_model,
            finish_network,
            start_state,
        )

        job, cfg = self.job, self.job.cfg
        config = cfg.model
        assert job.steps is not None  # the launcher plans every job it writes
        plan, local, global_batch = job.steps.plan, job.steps.local_batch, job.steps.global_batch
        scaled = job.steps.model
        t_start, cpu_start = time.perf_counter(), time.process_time()
        self.all_sum(np.ones(1))  # every worker is up and reachable
        (job.folder / f"ready-{self.index}").write_text(str(os.getpid()), "utf-8")

        data, (train_rows, validation_rows, dropped) = self._load_shard()
        weights = class_weights(config, job.label, data)
        workers = job.workers
        with self.strategy.scope():
            model = build_model(job.spec, job.label, config, resolve_kind(config))
            compile_model(model, job.label, scaled, plan)
            model.optimizer.build(model.trainable_variables)
        ckpt_root = job.output_dir / "checkpoints"
        state = start_state(ckpt_root, model, job.fingerprint, resume=True)
        resumed_from = int(state["epoch"]) if state else None
        recorder = EpochRecorder(
            ckpt_root, plan.early_stopping, job.fingerprint, state, save=self.chief
        )
        recorder.set_model(model)

        t_fit, cpu_fit = time.perf_counter(), time.process_time()
        steps_run = self._fit(model, data, weights, plan, local, global_batch, recorder)
        fit_seconds, fit_cpu = time.perf_counter() - t_fit, time.process_time() - cpu_fit
        examples = self.all_sum(np.asarray([steps_run * local]))[0]
        if self.chief:
            # Export from a model built outside the strategy: the same variables, no
            # distributed values in the SavedModel.
            plain = build_model(job.spec, job.label, config, resolve_kind(config))
            for target, value in zip(plain.variables, model.variables, strict=True):
                target.assign(value.numpy())
            parity_path = job.parity_path
            finish_network(
                cfg,
                plain,
                job.spec,
                job.label,
                output_dir=job.output_dir,
                recorder=recorder,
                plan=plan,
                seed=job.seed,
                started=job.started,
                parity_table=lambda: pq.read_table(parity_path),
                data={
                    "train_rows": train_rows,
                    "validation_rows": validation_rows,
                    "dropped_rows_without_label": dropped,
                    "streamed": False,
                    "steps_per_epoch": plan.steps_per_round,
                },
                timings={
                    "prepare_seconds": t_fit - t_start,
                    "fit_seconds": fit_seconds,
                    "fit_cpu_seconds": fit_cpu,
                },
                examples=int(examples),
                resumed_from=resumed_from,
                clock=(t_start, cpu_start),
                fields={
                    "distributed": {
                        "workers": workers,
                        "engine": job.engine,
                        "strategy": "MultiWorkerMirroredStrategy",
                        "batch": cfg.training.batch,
                        "global_batch": global_batch,
                        "local_batch": local,
                        "learning_rate": scaled.learning_rate,
                        "examples_per_second_per_worker": (
                            examples / fit_seconds / workers if fit_seconds > 0 else 0.0
                        ),
                    }
                },
                reference=data,  # the chief's shard: its rows are training rows too
            )
        # The last collective: no worker leaves before the chief has exported.
        self.all_sum(np.ones(1))

    def _fit(
        self,
        model: Any,
        data: Any,
        weights: np.ndarray[Any, Any] | None,
        plan: Any,
        local: int,
        global_batch: int,
        recorder: Any,
    ) -> int:
        """Train from the recorder's last epoch to the plan's end (or early stopping);
        the steps this worker ran."""
        import tensorflow as tf

        passes = plan.passes_per_round
        step = self._step_function(model, global_batch, self.job.workers)
        columns = {k: tf.constant(v) for k, v in data.features.items()}
        targets = tf.constant(data.targets)
        row_weights = (
            weights[data.targets.reshape(-1)].astype(np.float32)
            if weights is not None and self.job.label.is_classification
            else np.ones(data.train_rows, dtype=np.float32)
        )
        sample_weights = tf.constant(row_weights)

        def gather(index: Any) -> Any:
            return (
                {k: tf.gather(v, index) for k, v in columns.items()},
                tf.gather(targets, index),
                tf.gather(sample_weights, index),
            )

        steps_run = 0
        epoch = int(recorder.history[-1]["epoch"]) if recorder.history else 0
        while epoch < plan.rounds and not recorder.stopped:
            recorder.on_epoch_begin(epoch)
            loss_sum = tf.constant(0.0, dtype=tf.float32)
            for p in range(passes):
                order = self._order(
                    data.train_rows, plan.steps_per_pass * local, epoch * passes + p
                )
                batches = (
                    tf.data.Dataset.from_tensor_slices(order.reshape(-1, local))
                    .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                    .prefetch(tf.data.AUTOTUNE)
                )
                for x, y, w in batches:
                    loss_sum += step(x, y, w)
                    steps_run += 1
            logs = self._epoch_logs(
                model, data, weights, float(loss_sum.numpy()), plan.steps_per_round
            )
            recorder.on_epoch_end(epoch, logs)
            if self.chief:
                with self.job.epochs_file.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(recorder.history[-1]) + "\n")
            epoch += 1
        return steps_run

    def _load_shard(self) -> tuple[Any, tuple[int, int, int]]:
        """This worker's shard as training data, its class counts summed over every
        worker; and the job's (training, validation, dropped) row counts."""
        import pyarrow.parquet as pq

        from mooring.training._pipeline import load_in_memory

        job = self.job
        config = job.cfg.model
        table = pq.read_table(job.shards[self.index])
        rows = np.asarray(table.column(ROW_COLUMN).to_numpy(), dtype=np.int64)
        data = load_in_memory(
            table.drop_columns([ROW_COLUMN]),
            job.spec,
            job.label,
            validation_split=config.validation_split,
            seed=job.seed,
            row_ids=rows,
        )
        classes = max(1, job.label.num_classes)
        own_counts = data.class_counts if data.class_counts is not None else np.zeros(classes)
        totals = self.all_sum(
            np.concatenate([[data.train_rows, data.validation_rows, data.dropped_rows], own_counts])
        )
        train_rows, validation_rows, dropped = (int(v) for v in totals[:3])
        if job.label.is_classification:
            data.class_counts = totals[3:].astype(np.int64)
        return data, (train_rows, validation_rows, dropped)

    def _order(self, rows: int, needed: int, epoch: int) -> np.ndarray[Any, Any]:
        """This worker's row order for one pass: seeded by (seed, pass, worker), repeated
        until ``needed`` rows (every worker takes the same number of steps)."""
        pieces, have, draw = [], 0, 0
        while have < needed:
            rng = np.random.default_rng([self.job.seed, epoch, self.index, draw])
            pieces.append(rng.permutation(rows))
            have += rows
            draw += 1
        return np.concatenate(pieces)[:needed].astype(np.int64)

    def _step_function(self, model: Any, global_batch: int, workers: int) -> Any:
        import keras
        import tensorflow as tf

        task = self.job.label.task
        if task == "binary":
            loss_fn: Any = keras.losses.BinaryCrossentropy(reduction=None)
        elif task == "multiclass":
            loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
        else:
            loss_fn = keras.losses.MeanSquaredError(reduction=None)
        self.loss_fn = loss_fn
        strategy = self.strategy
        divisor = float(global_batch)

        def replica(x: Any, y: Any, w: Any) -> Any:
            with tf.GradientTape() as tape:
                out = model(x, training=True)
                target = tf.cast(y, out.dtype) if task != "multiclass" else y
                loss = tf.reduce_sum(loss_fn(target, out, sample_weight=w)) / divisor
                if model.losses:
                    loss += tf.add_n(model.losses) / float(workers)
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        @tf.function(reduce_retracing=True)  # type: ignore[untyped-decorator]
        def step(x: Any, y: Any, w: Any) -> Any:
            result = strategy.run(replica, args=(x, y, w))
            return strategy.experimental_local_results(result)[0]

        return step

    def _epoch_logs(
        self,
        model: Any,
        data: Any,
        weights: np.ndarray[Any, Any] | None,
        loss_sum: float,
        steps: int,
    ) -> dict[str, float]:
        """The epoch's training loss and validation metrics, summed over every worker."""
        task = self.job.label.task
        stats = np.zeros(4 + 2 * _AUC_BINS)  # loss, weight, correct, abs error, histograms
        stats[0] = loss_sum
        val = np.zeros(4)
        pos_hist = np.zeros(_AUC_BINS)
        neg_hist = np.zeros(_AUC_BINS)
        n = data.validation_rows
        for start in range(0, n, 8192):
            x = {k: v[start : start + 8192] for k, v in data.val_features.items()}
            y = data.val_targets[start : start + 8192]
            flat = y.reshape(-1)
            w = (
                weights[flat.astype(np.int64)].astype(np.float32)
                if weights is not None and self.job.label.is_classification
                else np.ones(len(flat), dtype=np.float32)
            )
            out = model(x, training=False)
            target = y.astype(np.float32) if task != "multiclass" else y
            losses = np.asarray(self.loss_fn(target, out)).reshape(-1)
            pred = np.asarray(out)
            val[0] += float((losses * w).sum())
            val[1] += float(w.sum())
            if task == "binary":
                score = pred.reshape(-1)
                val[2] += float((((score > 0.5).astype(np.int64) == flat) * w).sum())
                bins = np.clip((score * _AUC_BINS).astype(np.int64), 0, _AUC_BINS - 1)
                pos_hist += np.bincount(bins, weights=w * (flat == 1), minlength=_AUC_BINS)
                neg_hist += np.bincount(bins, weights=w * (flat == 0), minlength=_AUC_BINS)
            elif task == "multiclass":
                val[2] += float(((pred.argmax(axis=1) == flat) * w).sum())
            else:
                val[3] += float((np.abs(pred.reshape(-1) - flat) * w).sum())
        stats[1:4] = val[:3] if task != "regression" else [val[0], val[1], val[3]]
        stats[4 : 4 + _AUC_BINS] = pos_hist
        stats[4 + _AUC_BINS :] = neg_hist
        total = self.all_sum(stats)
        logs = {"loss": total[0] / max(1, steps)}
        weight = total[2]
        if weight > 0:
            logs["val_loss"] = total[1] / weight
            if task == "binary":
                logs["val_accuracy"] = total[3] / weight
                logs["val_auc"] = _auc(total[4 : 4 + _AUC_BINS], total[4 + _AUC_BINS :])
            elif task == "multiclass":
                logs["val_accuracy"] = total[3] / weight
            else:
                logs["val_mae"] = total[3] / weight
        return logs


def main(argv: list[str] | None = None) -> int:
    """Run one worker; its own errors go to ``error-<index>.json`` for the launcher."""
    args = sys.argv[1:] if argv is None else argv
    folder, index = Path(args[0]), int(args[1])
    try:
        run_worker(folder, index)
    except PeerLostError as exc:
        print(f"worker {index}: {exc}", file=sys.stderr)
        return 1  # not this worker's own error: the supervisor restarts the job
    except MooringError as exc:
        _write_error(folder, index, exc)
        print(f"worker {index}: {exc}", file=sys.stderr)
        return ERROR_EXIT
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
