"""Data-parallel training on several workers: the job, its shards, and the supervisor.

``[training] workers = N`` (or ``mooring train --workers N``) trains the same network
as one process, on N worker processes under TensorFlow's
``MultiWorkerMirroredStrategy``. This module is the launcher's side:

1. :func:`prepare_job` streams the training data once, in record batches, into one
   Parquet shard per worker (each batch split into N contiguous slices, every row
   keeping its number in the whole file as ``__row__``, so the validation split is the
   one a single process draws), counts the training rows on the way, and pickles the
   job (config, feature spec, label, seed, and the plan made once from those rows,
   :mod:`mooring.training._job`) beside them. A worker reads only its own shard.
2. :func:`supervise` starts the workers (processes on 127.0.0.1 here; Ray actors in
   :mod:`mooring.scale._training`; Kubernetes pods run ``mooring train --worker-index``),
   waits for each to join within ``[training] start_timeout``, relays the chief's
   epochs to the caller's callbacks, and when a worker dies (a signal, a lost node)
   stops the others and starts all of them again from the chief's last checkpoint, up
   to ``[training] max_restarts`` times. A worker's own error (bad data, a parity
   failure) is raised as itself, never retried.

Worker 0 is the chief: it alone writes checkpoints, exports the SavedModel and writes
the training record (:mod:`mooring.training._worker`). Nothing is exported before the last
epoch ends, so a failed job never leaves a half-trained model.

Examples:
    >>> DistributedTrainer(pod=(1, ["10.0.0.1:5000", "10.0.0.2:5000"])).pod[0]
    1
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mooring import errors
from mooring.contract._io import ReadOptions, iter_batches
from mooring.errors import MooringError, UsageError
from mooring.formats._files import atomic_write
from mooring.training._fit import Run, RunPlan, TrainingResult, load_run, run_fingerprint
from mooring.training._job import JOB_FOLDER, ROW_COLUMN, Job, cluster_spec, free_ports, plan_job
from mooring.training._pipeline import labelled_split
from mooring.training._worker import run_worker

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.features._spec import FeatureSpec
    from mooring.training._labels import LabelEncoding

__all__ = [
    "DistributedTrainer",
    "Launcher",
    "WorkerHandle",
    "launch_local",
    "prepare_job",
    "supervise",
]

log = logging.getLogger("mooring.training")


def prepare_job(  # noqa: PLR0913 - keyword-only parts of the job, each named
    cfg: MooringConfig,
    *,
    spec: FeatureSpec,
    label: LabelEncoding,
    source: Any,
    options: ReadOptions,
    seed: int,
    started: str,
    fingerprint: str,
    output_dir: Path,
    workers: int,
    engine: str,
    parity_table: Callable[[], pa.Table],
    threads: int | None = None,
) -> Job:
    """Write one Parquet shard per worker and the job file under ``output_dir/workers``.

    The data is read once, a record batch at a time; each batch's rows are split into
    ``workers`` contiguous slices, one per shard, so every shard holds about the same
    number of rows and memory stays bounded by one batch. The job's training rows
    (labelled, outside the validation split) are counted on the way and the job is
    planned from them (:func:`~mooring.training._job.plan_job`), once for every worker.
    """
    folder = output_dir / JOB_FOLDER
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "shards").mkdir(parents=True)
    paths = [folder / "shards" / f"part-{i:05d}.parquet" for i in range(workers)]
    writers: list[pq.ParquetWriter | None] = [None] * workers
    offset = train_rows = 0
    try:
        for batch in iter_batches(source, options):
            rows = batch.num_rows
            ids = np.arange(offset, offset + rows, dtype=np.int64)
            table = pa.Table.from_batches([batch])
            keep, mask, _ = labelled_split(table, label, ids, cfg.model.validation_split, seed)
            train_rows += int((keep & ~mask).sum())
            table = table.append_column(ROW_COLUMN, pa.array(ids))
            bounds = np.linspace(0, rows, workers + 1).astype(int)
            for i in range(workers):
                piece = table.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
                writer = writers[i]
                if writer is None:
                    writer = writers[i] = pq.ParquetWriter(paths[i], table.schema)
                writer.write_table(piece)
            offset += rows
    finally:
        for writer in writers:
            if writer is not None:
                writer.close()
    if offset < workers:
        raise UsageError(
            f"[training] workers = {workers} but the training data has {offset} rows; use "
            "fewer workers"
        )
    parity_path = folder / "parity.parquet"
    pq.write_table(parity_table(), parity_path)
    job = Job(
        cfg=cfg,
        spec=spec,
        label=label,
        seed=seed,
        started=started,
        fingerprint=fingerprint,
        workers=workers,
        engine=engine,
        output_dir=output_dir,
        shards=[str(p) for p in paths],
        parity_path=str(parity_path),
        threads=threads,
        steps=plan_job(cfg, train_rows),
    )
    job.save()
    return job


class WorkerHandle(Protocol):
    """One running worker, whatever runs it."""

    def poll(self) -> int | None:
        """The exit code once it ended (negative: the signal that ended it), else None."""

    def stop(self) -> None:
        """End it now (and anything it started)."""


StartWorkers = Callable[[Job, int], list[WorkerHandle]]


class _Process:
    """A worker process on this machine, in its own process group."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


def _local_workers(job: Job, attempt: int, *, pin: bool = False) -> list[WorkerHandle]:
    training = job.cfg.training
    cores = sorted(os.sched_getaffinity(0))
    ports = free_ports(job.workers, training.port)
    addresses = [f"127.0.0.1:{p}" for p in ports]
    handles: list[WorkerHandle] = []
    pids = []
    for index in range(job.workers):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(cluster_spec(addresses, index)),
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        with job.log_file(index).open("ab") as out:
            out.write(f"--- attempt {attempt + 1}: {addresses[index]}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                [sys.executable, "-m", "mooring.training._worker", str(job.folder), str(index)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # Each worker on a core of its own (before any thread starts), when asked.
                preexec_fn=_pin_to(cores[index % len(cores)]) if pin else None,
            )
        handles.append(_Process(popen))
        pids.append(popen.pid)
    (job.folder / "workers.json").write_text(
        json.dumps({"attempt": attempt + 1, "pids": pids, "addresses": addresses}), "utf-8"
    )
    return handles


def _pin_to(core: int) -> Callable[[], None]:
    def pin() -> None:
        os.sched_setaffinity(0, {core})

    return pin


def _log_tail(job: Job, index: int, lines: int = 8) -> str:
    try:
        text = job.log_file(index).read_text("utf-8", "replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n    ".join(text[-lines:]) or "(empty log)"


def _own_error(job: Job, index: int) -> MooringError | None:
    path = job.error_file(index)
    if not path.is_file():
        return None
    saved = json.loads(path.read_text("utf-8"))
    cls = getattr(errors, str(saved.get("type")), MooringError)
    if not (isinstance(cls, type) and issubclass(cls, MooringError)):
        cls = MooringError
    return cls(str(saved.get("message")))


_NOT_METRICS = frozenset({"epoch", "seconds", "cpu_seconds"})


class _Epochs:
    """Relays the chief's finished epochs (``epochs.jsonl``) to Keras-style callbacks."""

    def __init__(self, job: Job, callbacks: Sequence[Any]) -> None:
        self.path = job.epochs_file
        self.callbacks = list(callbacks)
        self.seen = 0

    def relay(self) -> None:
        if not self.callbacks or not self.path.is_file():
            return
        lines = self.path.read_text("utf-8").splitlines()
        for line in lines[self.seen :]:
            try:
                entry = json.loads(line)
            except ValueError:
                break  # the chief is still writing this line
            epoch = int(entry["epoch"]) - 1
            logs = {k: v for k, v in entry.items() if k not in _NOT_METRICS}
            for callback in self.callbacks:
                callback.on_epoch_begin(epoch)
                callback.on_epoch_end(epoch, logs)
            self.seen += 1


def supervise(
    job: Job,
    start: StartWorkers,
    *,
    callbacks: Sequence[Any] = (),
    poll_seconds: float = 0.2,
) -> dict[str, Any]:
    """Run the job's workers to the end, restarting all of them when one dies.

    Returns what happened: attempts, restarts, why each restart happened, seconds to join.

    Raises:
        MooringError (or its subclass): a worker's own error, as the worker raised it.
        UsageError: the workers did not all join within ``[training] start_timeout``.
        MooringError: a worker died more than ``[training] max_restarts`` times.
    """
    training = job.cfg.training
    relay = _Epochs(job, callbacks)
    for callback in relay.callbacks:
        callback.on_train_begin()
    restarts: list[str] = []
    join_seconds: list[float] = []
    attempt = 0
    while True:
        for index in range(job.workers):
            job.ready_file(index).unlink(missing_ok=True)
            job.error_file(index).unlink(missing_ok=True)
        launched = time.monotonic()
        handles = start(job, attempt)
        joined = False
        died: tuple[int, int] | None = None
        try:
            while True:
                relay.relay()
                codes = [h.poll() for h in handles]
                if not joined and all(job.ready_file(i).is_file() for i in range(job.workers)):
                    joined = True
                    join_seconds.append(time.monotonic() - launched)
                failed = [(i, c) for i, c in enumerate(codes) if c is not None and c != 0]
                for index, _code in failed:
                    own = _own_error(job, index)
                    if own is not None:
                        raise own
                if failed:
                    # The worker that died, not a peer that stopped because it did.
                    died = min(failed, key=lambda f: (f[1] >= 0, f[0]))  # signals first
                    break
                if all(c == 0 for c in codes):
                    break
                if not joined and time.monotonic() - launched > training.start_timeout:
                    late = [i for i in range(job.workers) if not job.ready_file(i).is_file()]
                    raise UsageError(
                        f"worker(s) {late} did not join the job within "
                        f"{training.start_timeout:g} s ([training] start_timeout); the last "
                        f"lines of worker {late[0]}'s log ({job.log_file(late[0])}):\n    "
                        + _log_tail(job, late[0])
                    )
                time.sleep(poll_seconds)
        finally:
            for handle in handles:
                handle.stop()
        relay.relay()
        if died is None:
            break
        index, code = died
        why = f"signal {-code}" if code < 0 else f"exit code {code}"
        if len(restarts) >= training.max_restarts:
            raise MooringError(
                f"worker {index} died ({why}) and the job already restarted "
                f"{len(restarts)} time(s) ([training] max_restarts = {training.max_restarts});"
                f" nothing was registered. The last lines of its log "
                f"({job.log_file(index)}):\n    " + _log_tail(job, index)
            )
        restarts.append(f"worker {index} died ({why})")
        log.warning(
            "worker %d died (%s); restarting the %d workers from the last checkpoint",
            index,
            why,
            job.workers,
        )
        attempt += 1
    for callback in relay.callbacks:
        callback.on_train_end()
    return {"attempts": attempt + 1, "restarts": restarts, "join_seconds": join_seconds}


def launch_local(
    job: Job, callbacks: Sequence[Any] = (), *, pin_cores: bool = False
) -> dict[str, Any]:
    """Run the job on worker processes of this machine, listening on 127.0.0.1;
    ``pin_cores`` puts worker i on the i-th core this process may use."""

    def start(job: Job, attempt: int) -> list[WorkerHandle]:
        return _local_workers(job, attempt, pin=pin_cores)

    return supervise(job, start, callbacks=callbacks)


Launcher = Callable[[Job, Sequence[Any]], dict[str, Any]]


@dataclass(frozen=True)
class DistributedTrainer:
    """Trains a network on ``[training] workers`` workers (see the module's docstring).

    ``launcher`` starts them (default: processes on this machine;
    :func:`mooring.scale.training_launcher` gives Ray's); with ``pod = (index, peers)``
    this process is worker ``index`` of a job whose workers something else started (a
    Kubernetes Indexed Job): worker 0 writes the shards, the others wait for them, and
    each trains in this process.
    """

    launcher: Launcher | None = None
    pod: tuple[int, list[str]] | None = None

    def train(self, run: Run) -> TrainingResult:
        """Shard the data, plan the job from its rows and show that plan, run the workers
        (restarting them from checkpoints when one dies) and return the chief's run, its
        record naming the workers, engine and restarts.

        Raises:
            UsageError: ``[training] engine = "ray"`` without a Ray launcher.
        """
        cfg, output_dir = run.cfg, run.output_dir
        training = cfg.training
        launcher = self.launcher
        if launcher is None:
            if training.engine != "local":
                raise UsageError(
                    f"[training] engine = {training.engine!r} needs its launcher "
                    "(mooring.scale.training_launcher); call train_model through the "
                    "pipeline or pass launcher="
                )
            launcher = launch_local
        output_dir.mkdir(parents=True, exist_ok=True)
        fingerprint = run_fingerprint(cfg, run.spec, run.label)
        cores = os.cpu_count() or 1

        def prepare(engine: str) -> Job:
            return prepare_job(
                cfg,
                spec=run.spec,
                label=run.label,
                source=run.source,
                options=run.options,
                seed=run.seed,
                started=run.started,
                fingerprint=fingerprint,
                output_dir=output_dir,
                workers=training.workers,
                engine=engine,
                parity_table=run.parity_table,
                # Local workers share this machine's cores; a Ray actor holds one CPU; a
                # pod ([model] threads, else TensorFlow's default) has the node's.
                threads={"local": max(1, cores // training.workers), "ray": 1}.get(engine),
            )

        if self.pod is not None:
            return _train_as_pod(
                cfg,
                output_dir,
                fingerprint,
                self.pod,
                resume=run.resume,
                prepare=lambda: prepare("kubernetes"),
            )
        if not run.resume:
            shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
        t_prepare = time.perf_counter()
        job = prepare(training.engine)
        shard_seconds = time.perf_counter() - t_prepare
        assert job.steps is not None  # prepare_job plans every job it writes
        shown = run.display(RunPlan(cfg.model.kind, job.steps.rows, job.steps.plan))
        outcome = launcher(job, shown)
        result = load_run(output_dir)
        result.record = record = result.record.updated(
            distributed={
                **(result.record.distributed or {}),
                **outcome,
                "shard_seconds": shard_seconds,
            }
        )
        atomic_write(
            result.training_record_path,
            (json.dumps(record.to_dict(), indent=2, default=str) + "\n").encode(),
        )
        shutil.rmtree(job.folder / "shards", ignore_errors=True)
        return result


def _train_as_pod(
    cfg: MooringConfig,
    output_dir: Path,
    fingerprint: str,
    pod: tuple[int, list[str]],
    *,
    resume: bool,
    prepare: Callable[[], Job],
) -> TrainingResult:
    """Worker ``pod[0]`` of ``pod[1]``, in this process (see :class:`DistributedTrainer`)."""
    index, peers = pod
    training = cfg.training
    if len(peers) != training.workers:
        raise UsageError(
            f"--peers lists {len(peers)} worker(s) but --workers is {training.workers}; list "
            "one host:port per worker, worker 0 first"
        )
    if not 0 <= index < len(peers):
        raise UsageError(
            f"--worker-index {index} is not one of 0…{len(peers) - 1} (one per --peers entry)"
        )
    folder = output_dir / JOB_FOLDER
    existing = _existing_job(folder, fingerprint) if resume else None
    if index == 0:
        if existing is None and not resume:
            shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
        job = existing or prepare()
    else:
        job = existing or _wait_for_job(folder, fingerprint, training.start_timeout)
    os.environ["TF_CONFIG"] = json.dumps(cluster_spec(peers, index))
    run_worker(job.folder, index)
    return load_run(output_dir)


def _existing_job(folder: Path, fingerprint: str) -> Job | None:
    try:
        job = Job.load(folder)
    except (OSError, pickle.UnpicklingError, EOFError, AssertionError):
        return None
    if (
        job.fingerprint != fingerprint
        or job.steps is None  # written before jobs were planned
        or not all(Path(p).is_file() for p in job.shards)
    ):
        return None
    return job


def _wait_for_job(folder: Path, fingerprint: str, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _existing_job(folder, fingerprint)
        if job is not None:
            return job
        time.sleep(1.0)
    raise UsageError(
        f"worker 0 wrote no job to '{folder}' within {timeout:g} s ([training] "
        "start_timeout); is --output on a volume every worker shares, and is worker 0 running?"
    )
