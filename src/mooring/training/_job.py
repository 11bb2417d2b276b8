"""A data-parallel job as its launcher writes it and every worker reads it.

The launcher (:mod:`mooring.training._distributed`) plans the job once, from the rows
it trains on, and pickles it beside the shards; the workers
(:mod:`mooring.training._worker`, Ray actors, Kubernetes pods) and YDF's tree workers
(:mod:`mooring.training._trees_workers`) read it or find ports here. This module imports
neither side, so neither imports the other to reach it.

Examples:
    >>> local_batch(256, 2, "global")
    (128, 256, 1.0)
    >>> cluster_spec(["127.0.0.1:5000", "127.0.0.1:5001"], 1)["task"]
    {'type': 'worker', 'index': 1}
"""

from __future__ import annotations

import math
import pickle
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mooring.config._model import ModelConfig, TrainingPlan, plan_training
from mooring.errors import UsageError

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.features._spec import FeatureSpec
    from mooring.training._labels import LabelEncoding

__all__ = [
    "ERROR_EXIT",
    "JOB_FOLDER",
    "ROW_COLUMN",
    "Job",
    "JobPlan",
    "cluster_spec",
    "free_ports",
    "local_batch",
    "plan_job",
]

JOB_FOLDER = "workers"
ROW_COLUMN = "__row__"
_JOB_FILE = "job.pkl"
_EPOCHS_FILE = "epochs.jsonl"
# The exit code of a worker that stopped on its own error (written to error-<i>.json).
ERROR_EXIT = 3


def local_batch(batch_size: int, workers: int, scaling: str) -> tuple[int, int, float]:
    """(rows per worker a step, global batch, learning-rate factor) for ``[training] batch``.

    ``global`` splits ``batch_size`` across the workers (rounded up to a multiple of
    them) and keeps the learning rate; ``per_worker`` gives each worker ``batch_size``
    rows and multiplies the learning rate by the workers (the linear scaling rule).
    """
    if scaling == "per_worker":
        return batch_size, batch_size * workers, float(workers)
    local = max(1, math.ceil(batch_size / workers))
    return local, local * workers, 1.0


@dataclass(frozen=True)
class JobPlan:
    """How every worker of a job steps, planned once by the launcher: the training rows
    of the whole job, the plan on the global batch, the rows each worker takes a step,
    and ``[model]`` with the global batch and the learning rate scaled for it."""

    rows: int
    plan: TrainingPlan
    local_batch: int
    global_batch: int
    model: ModelConfig


def plan_job(cfg: MooringConfig, train_rows: int) -> JobPlan:
    """The job's plan for ``train_rows`` training rows on ``[training] workers`` workers.

    Examples:
        >>> from mooring.config import MooringConfig
        >>> cfg = MooringConfig.from_mapping({"project": {"name": "m"}, "data": {"train": "t.csv"},
        ...     "model": {"batch_size": 100}, "training": {"workers": 3}})
        >>> job = plan_job(cfg, 1_000)
        >>> job.local_batch, job.global_batch, job.plan.steps_per_pass
        (34, 102, 10)
    """
    config = cfg.model
    first = plan_training(config, train_rows)
    local, global_batch, factor = local_batch(
        first.batch_size, cfg.training.workers, cfg.training.batch
    )
    scaled = config.model_copy(
        update={"batch_size": global_batch, "learning_rate": config.learning_rate * factor}
    )
    return JobPlan(train_rows, plan_training(scaled, train_rows), local, global_batch, scaled)


@dataclass
class Job:
    """What every worker needs, pickled once by the launcher (same install everywhere)."""

    cfg: MooringConfig
    spec: FeatureSpec
    label: LabelEncoding
    seed: int
    started: str
    fingerprint: str
    workers: int
    engine: str
    output_dir: Path
    shards: list[str]
    parity_path: str
    threads: int | None = None
    #: Planned by the launcher from the job's training rows (None in a job file written
    #: before jobs were planned: not resumed).
    steps: JobPlan | None = None

    @property
    def folder(self) -> Path:
        return self.output_dir / JOB_FOLDER

    def save(self) -> Path:
        path = self.folder / _JOB_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(self))
        tmp.replace(path)
        return path

    @staticmethod
    def load(folder: Path) -> Job:
        job = pickle.loads((folder / _JOB_FILE).read_bytes())
        assert isinstance(job, Job)
        return job

    def ready_file(self, index: int) -> Path:
        return self.folder / f"ready-{index}"

    def error_file(self, index: int) -> Path:
        return self.folder / f"error-{index}.json"

    def log_file(self, index: int) -> Path:
        return self.folder / f"worker-{index}.log"

    @property
    def epochs_file(self) -> Path:
        return self.folder / _EPOCHS_FILE


def cluster_spec(addresses: Sequence[str], index: int) -> dict[str, Any]:
    """``TF_CONFIG`` for worker ``index`` of ``addresses`` (worker 0 is the chief)."""
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


def free_ports(count: int, first: int = 0, host: str = "127.0.0.1") -> list[int]:
    """``count`` ports to listen on: ``first``, ``first + 1``… each checked free, or free
    ports the system picks when ``first`` is 0.

    Raises:
        UsageError: a port of ``first``'s range is in use.
    """
    if first:
        ports = list(range(first, first + count))
        for i, port in enumerate(ports):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, port))
                except OSError as exc:
                    raise UsageError(
                        f"worker {i} cannot listen on {host}:{port} ([training] port = {first} "
                        f"+ {i}): {exc.strerror}; choose another [training] port, or 0 for "
                        "free ports"
                    ) from None
        return ports
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind((host, 0))
            sockets.append(probe)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for probe in sockets:
            probe.close()
