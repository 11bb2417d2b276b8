"""Gradient boosted trees on several YDF workers (``[training] workers`` with ``kind = "gbt"``).

YDF trains trees across processes with its ``DistributedGradientBoostedTreesLearner``
(its ``GradientBoostedTreesLearner`` ignores ``workers=`` outside of tuning). That
learner reads its data from typed file paths, not from memory, so the training and
validation rows are written as CSV shards (one per worker, each column typed
explicitly so a category made of digits stays a category) into the run's folder; each
YDF worker (``ydf.start_worker`` in its own process on 127.0.0.1) reads the shards the
manager hands it. The distributed learner has no early stopping, subsampling or L2
regularization: every tree of ``[model.gbt] num_trees`` is grown on every row.

A YDF worker that dies is started again on its port and YDF repeats the iteration it
lost (up to ``[training] max_restarts``; past that the manager, which would wait for it
without end, is stopped and the run fails). The manager runs in a process of its own
and checkpoints every ``CHECKPOINT_TREES`` trees into ``trees-work/``, so a killed run
continued with ``--resume`` goes on from there (``resume_training``). A worker that
never listens is an error after ``[training] start_timeout``, before any training.

Examples:
    >>> CHECKPOINT_TREES
    50
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mooring.errors import MooringError, UsageError
from mooring.training._job import free_ports

if TYPE_CHECKING:
    from mooring.config import MooringConfig

__all__ = ["CHECKPOINT_TREES", "train_on_workers"]

CHECKPOINT_TREES = 50


def _write_shards(folder: Path, data: dict[str, Any], shards: int, name: str) -> str:
    """``data`` as ``shards`` CSV files; the typed path YDF reads them from."""
    rows = len(next(iter(data.values())))
    columns = {}
    for key, values in data.items():
        array = np.asarray(values)
        if array.dtype.kind == "f":
            columns[key] = pa.array(array, from_pandas=True)  # NaN → missing
        else:
            columns[key] = pa.array([v if v != "" else None for v in array], type=pa.string())
    table = pa.table(columns)
    bounds = np.linspace(0, rows, shards + 1).astype(int)
    for i in range(shards):
        piece = table.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
        pacsv.write_csv(piece, folder / f"{name}-{i:05d}-of-{shards:05d}.csv")
    return f"csv:{folder / name}@{shards}.csv"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _start_worker(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", f"import ydf; ydf.start_worker({port})"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


class _Workers:
    """The YDF worker processes; a dead one is started again on its own port."""

    def __init__(self, folder: Path, count: int, cfg: MooringConfig) -> None:
        self.folder = folder
        self.training = cfg.training
        self.ports = free_ports(count, self.training.port)
        self.procs = [_start_worker(p, self._log(i)) for i, p in enumerate(self.ports)]
        self.restarts: list[str] = []
        self._record()

    def _record(self) -> None:
        """``ydf-workers.json``: each worker's process and address, for operators."""
        (self.folder / "ydf-workers.json").write_text(
            json.dumps({"pids": [p.pid for p in self.procs], "addresses": self.addresses}),
            "utf-8",
        )

    def _log(self, index: int) -> Path:
        return self.folder / f"ydf-worker-{index}.log"

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    def wait_listening(self) -> None:
        deadline = time.monotonic() + self.training.start_timeout
        for index, port in enumerate(self.ports):
            while not _listening(port):
                if self.procs[index].poll() is not None or time.monotonic() > deadline:
                    raise UsageError(
                        f"YDF worker {index} did not listen on 127.0.0.1:{port} within "
                        f"{self.training.start_timeout:g} s ([training] start_timeout); see "
                        f"{self._log(index)}"
                    )
                time.sleep(0.1)

    def revive(self) -> None:
        """Start again any worker that died (YDF repeats the iteration it lost)."""
        for index, proc in enumerate(self.procs):
            code = proc.poll()
            if code is None:
                continue
            if len(self.restarts) >= self.training.max_restarts:
                raise MooringError(
                    f"YDF worker {index} died (exit {code}) and was already restarted "
                    f"{len(self.restarts)} time(s) ([training] max_restarts = "
                    f"{self.training.max_restarts}); nothing was registered"
                )
            why = f"signal {-code}" if code < 0 else f"exit code {code}"
            self.restarts.append(f"YDF worker {index} died ({why})")
            self.procs[index] = _start_worker(self.ports[index], self._log(index))
            self._record()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _manage(folder: Path) -> None:
    """The manager's process: train from ``manager.pkl``, save the model to ``model/``."""
    import ydf
    from yggdrasil_decision_forests.learner import abstract_learner_pb2
    from yggdrasil_decision_forests.learner.distributed_gradient_boosted_trees import (
        distributed_gradient_boosted_trees_pb2 as dgbt_pb2,
    )

    plan = pickle.loads((folder / "manager.pkl").read_bytes())
    ydf.verbose(0)
    extra = abstract_learner_pb2.TrainingConfig()
    extra.Extensions[
        dgbt_pb2.distributed_gradient_boosted_trees_config
    ].checkpoint_interval_trees = CHECKPOINT_TREES
    learner = ydf.DistributedGradientBoostedTreesLearner(
        **plan["learner"],
        features=[ydf.Feature(name, getattr(ydf.Semantic, s)) for name, s in plan["semantics"]],
        include_all_columns=False,
        workers=plan["workers"],
        working_dir=str(folder),
        resume_training=True,
        extra_training_config=extra,
    )
    model = learner.train(plan["train"], valid=plan["valid"], verbose=0)
    model.save(str(folder / "model"))


def train_on_workers(
    cfg: MooringConfig,
    learner_args: dict[str, Any],
    semantics: dict[str, str],
    train: dict[str, Any],
    valid: dict[str, Any] | None,
    output_dir: Path,
    *,
    resume: bool,
) -> tuple[Any, dict[str, Any]]:
    """Train on ``[training] workers`` YDF workers; (the YDF model, what happened).

    YDF's manager waits for a dead worker without end, so it runs in a process of its
    own that this one stops when a worker cannot be brought back.

    Raises:
        UsageError: a worker did not listen within ``[training] start_timeout``.
        MooringError: a worker died more than ``[training] max_restarts`` times, or the
            manager failed (its log's last lines).
    """
    import ydf

    workers = cfg.training.workers
    work = output_dir / "trees-work"
    if not resume:
        shutil.rmtree(work, ignore_errors=True)
    shards = output_dir / "trees-shards"
    shutil.rmtree(shards, ignore_errors=True)
    shards.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "model", ignore_errors=True)
    pool = _Workers(work, workers, cfg)
    manager: subprocess.Popen[bytes] | None = None
    log = work / "ydf-manager.log"
    try:
        plan = {
            "learner": learner_args,
            "semantics": list(semantics.items()),
            "train": _write_shards(shards, train, workers, "train"),
            "valid": _write_shards(shards, valid, 1, "valid") if valid is not None else None,
            "workers": pool.addresses,
        }
        (work / "manager.pkl").write_bytes(pickle.dumps(plan))
        pool.wait_listening()
        with log.open("ab") as out:
            manager = subprocess.Popen(
                [sys.executable, "-m", "mooring.training._trees_workers", str(work)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        while manager.poll() is None:
            pool.revive()
            time.sleep(0.5)
        if manager.returncode != 0:
            tail = log.read_text("utf-8", "replace").strip().splitlines()[-5:]
            raise MooringError(
                f"YDF's manager failed (exit {manager.returncode}); nothing was registered. "
                f"The last lines of {log}:\n    " + "\n    ".join(tail)
            )
        model = ydf.load_model(str(work / "model"))
    finally:
        if manager is not None and manager.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(manager.pid, signal.SIGKILL)
            manager.wait()
        pool.stop()
        shutil.rmtree(shards, ignore_errors=True)
    return model, {"workers": workers, "engine": "ydf", "restarts": pool.restarts}


if __name__ == "__main__":
    _manage(Path(sys.argv[1]))
