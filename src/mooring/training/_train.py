"""``train_model``: statistics + config → a trained, exported, parity-checked model.

It resolves the label and the features (everything a user can get wrong fails before
the first epoch), chooses the trainer of the model's kind before training
(:func:`trainer_for`: :mod:`._network`, :mod:`._trees` or :mod:`._distributed`) and
hands it the :class:`~mooring.training._fit.Run`. The trainer plans from the rows it
trains on, shows that plan, fits, exports and records (:mod:`._fit`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import keras

from mooring.config import MooringConfig
from mooring.contract._io import ReadOptions
from mooring.errors import UsageError, has_extra
from mooring.features._infer import build_feature_spec
from mooring.training._distributed import DistributedTrainer, Launcher
from mooring.training._fit import Run, ShowPlan, TrainingResult, configure_runtime
from mooring.training._labels import resolve_label
from mooring.training._network import NetworkTrainer
from mooring.training._trees import TreesTrainer

if TYPE_CHECKING:
    from mooring.contract._schema import Schema
    from mooring.contract._statistics import DatasetStatistics

__all__ = ["Trainer", "train_model", "trainer_for"]


class Trainer(Protocol):
    """Trains one kind of model from a prepared :class:`~mooring.training._fit.Run`: reads
    the rows, shows the plan made from them (``run.display``), fits, exports, checks
    parity and writes the training record."""

    def train(self, run: Run) -> TrainingResult:
        """The run, trained and recorded."""
        ...


def trainer_for(
    cfg: MooringConfig,
    *,
    launcher: Launcher | None = None,
    pod: tuple[int, list[str]] | None = None,
) -> Trainer:
    """The trainer of ``[model] kind`` and ``[training] workers``, chosen before training.

    Raises:
        UsageError: ``pod`` for a linear model, which is fitted in one process.

    Examples:
        >>> cfg = MooringConfig.from_mapping(
        ...     {"project": {"name": "m"}, "data": {"train": "t.csv"}, "model": {"kind": "gbt"}})
        >>> type(trainer_for(cfg)).__name__
        'TreesTrainer'
    """
    kind = cfg.model.kind
    if kind == "linear" and pod is not None:
        raise UsageError(
            "[model] kind = 'linear' is fitted in one process (a few passes over the data); "
            "run `mooring train` without --worker-index"
        )
    if kind == "gbt":
        return TreesTrainer()
    if kind == "mlp" and cfg.training.workers > 1:
        return DistributedTrainer(launcher, pod)
    return NetworkTrainer()


def train_model(  # noqa: PLR0913 - keyword-only options of one training run
    cfg: MooringConfig,
    *,
    statistics: DatasetStatistics,
    schema: Schema | None,
    output_dir: Path,
    data: Any = None,
    resume: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    show: ShowPlan | None = None,
    verbose: int = 0,
    tensorboard: bool | None = None,
    launcher: Launcher | None = None,
    pod: tuple[int, list[str]] | None = None,
) -> TrainingResult:
    """Train, export and parity-check a model; write the training record.

    ``data`` overrides ``[data] train`` (a path or an Arrow table) and must be the
    data ``statistics`` were computed from. ``callbacks`` run after mooring's own
    (checkpointing first, so an interrupted run can always resume); ``show`` is called
    once, with the :class:`~mooring.training._fit.RunPlan` the run follows, for the
    callbacks that draw its progress. With ``[training] workers`` above 1 the network
    trains on that many workers, started by ``launcher`` (default: processes on this
    machine; :func:`mooring.scale.training_launcher` gives Ray's), and the chief's run
    is returned; ``pod = (index, peers)`` makes this process that worker of a job
    started elsewhere (``mooring train --worker-index``). ``tensorboard`` writes
    TensorBoard logs; by default, when the tensorboard extra is installed.

    Raises:
        ConfigError / DataError: bad features, label, builder or data — before training.
        ParityError: the exported model disagrees with the trained one.

    Examples:
        >>> result = train_model(cfg, statistics=stats, schema=schema,
        ...                      output_dir=Path("runs/income"))  # doctest: +SKIP
        >>> result.model_dir  # doctest: +SKIP
        PosixPath('runs/income/model')
    """
    clock = time.perf_counter(), time.process_time()
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
    trainer = trainer_for(cfg, launcher=launcher, pod=pod)
    run = Run(
        cfg,
        spec,
        label,
        source=data if data is not None else cfg.path(cfg.data.train),
        options=ReadOptions.from_config(cfg.data),
        seed=seed,
        started=started,
        output_dir=Path(output_dir),
        clock=clock,
        resume=resume,
        callbacks=callbacks,
        verbose=verbose,
        # Keras's callback needs the tensorboard extra for its summaries.
        tensorboard=has_extra("tensorboard") if tensorboard is None else tensorboard,
        show=show,
    )
    return trainer.train(run)
