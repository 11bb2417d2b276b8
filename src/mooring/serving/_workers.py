"""Several server processes on one port: ``mooring serve --workers N``.

One event loop parses, checks and answers every request of a process, so one process
uses about one core however large the machine. With ``--workers N`` the ``mooring
serve`` process becomes a supervisor that imports neither TensorFlow nor a model and
starts N workers. Each worker is a whole server (``mooring serve --workers 1`` in a
process of its own) with its own batcher, loaded versions and prediction log
buffer, following the registry on its own:

* **Forked after the imports.** ``mooring serve`` imports, once, what every worker
  would import (TensorFlow, the server's libraries:
  :func:`mooring.serving._process.preload_for_workers`), freezes those objects for the
  collector, and forks the workers from there: each worker starts at its model's
  load. No TensorFlow runtime exists before the fork (no op has run; importing
  starts none of its threads), so the children start their own, and several workers
  are ready as soon as one alone (``benchmarks/bench_serving.py --only cold``). The
  imported objects stay shared
  between the workers, never written (the collector does not visit frozen objects).
  Once every worker listens, the supervisor unmaps TensorFlow's code and constants:
  its import ran them once, and it never runs them again
  (:func:`~mooring.serving._pages.release_package_pages`). Idle, alone on the
  machine, two workers and their supervisor hold 416 MiB PSS; the naive one-process
  endpoint holds 692. A worker is forked only while the supervisor runs no other
  thread (``--monitor`` starts its monitors after the first workers): a worker
  replaced later, with a monitor running, is started as a new process
  (``python -m mooring serve …``) and imports for itself.

* **One port.** Each worker listens on the port with ``SO_REUSEPORT``, so the kernel
  spreads new connections over the workers' own accept queues (no shared accept, no
  thundering herd). The supervisor checks the port is free before starting anyone, so
  two servers never share a port by accident. A worker listens only once its models
  have settled (loaded, or failed with a reason ``/healthz`` can give), so a worker
  that is (re)starting never takes connections it cannot answer. The gRPC port, when
  set, is shared the same way.
* **One set of metrics.** Workers write their metrics in prometheus-client's
  multiprocess mode to files in a folder of the run (``PROMETHEUS_MULTIPROC_DIR``);
  ``/metrics`` of any worker, and the monitor (``--monitor``, run by the supervisor),
  read the sum over all workers, dead ones' counters included, so counters never go
  back when a worker is replaced.
* **The prediction log** is written by each worker into the same folder; every file
  name holds a timestamp and a random part, so workers never collide.
* **Deployments** are read by every worker from the registry (every ``poll_interval_s``);
  a deployment made through one worker (``POST /admin/deployment``, the dashboard;
  both through ``ServerState.apply_deployment``) is announced to the others through a
  file of the run, which they watch every 0.1 s, so every worker applies it within a
  fraction of a second. Canary routing by request key is a hash, so a keyed request
  lands on the same version in every worker.
* **A worker that dies** (kill -9, out of memory) is replaced; the others keep
  answering, so the server stays ready. A worker that keeps dying at start-up is
  restarted with a growing delay (up to 30 s); one that exits with a configuration
  error (exit code 2) before it was ever ready stops the server with that code, since
  starting it again cannot help. When the supervisor is stopped (SIGTERM, SIGINT), the
  workers finish what they answer and stop; when it is killed, the kernel stops them
  (``PR_SET_PDEATHSIG``).

Examples:
    >>> workers = default_workers()  # the usable cores, capped by memory
    >>> Supervisor(["serve", "-c", "mooring.toml"], workers=2, ...).run()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mooring.errors import ConfigError
from mooring.serving._memory import WORKERS_ENV
from mooring.serving._pages import release_package_pages
from mooring.serving._worker_env import (
    CONCURRENCY_ENV,
    MULTIPROC_ENV,
    TF_THREAD_ENV,
    WORKER_ENV,
)

__all__ = [
    "CONCURRENCY_ENV",
    "PER_WORKER_BYTES",
    "TF_THREAD_ENV",
    "WORKER_ENV",
    "ForkedWorker",
    "Supervisor",
    "WorkerRun",
    "check_port_free",
    "default_workers",
    "reuseport_socket",
    "tf_thread_env",
    "usable_cores",
]

log = logging.getLogger("mooring.serving")

#: Memory a worker needs beside the others: its private memory (PSS less the shared
#: TensorFlow libraries) under load, with room (``benchmarks/bench_serving.py``).
PER_WORKER_BYTES = 768 * 1024 * 1024
#: Exit status of a worker that found the configuration wrong (see mooring.errors).
CONFIG_EXIT = 2
#: A worker that dies within this long of its start counts as failing to start.
QUICK_DEATH_S = 30.0
MAX_BACKOFF_S = 30.0


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota.

    Examples:
        >>> usable_cores() >= 1
        True
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by cgroup v2 ``cpu.max`` (or v1 ``cfs_quota_us``); None: no limit."""
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        base = Path("/sys/fs/cgroup/cpu")
        quota_us = int((base / "cpu.cfs_quota_us").read_text())
        period_us = int((base / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    return None


def tf_thread_env(workers: int, inference_threads: int, cores: int | None = None) -> dict[str, str]:
    """TensorFlow's pool sizes for each of ``workers`` server processes, as the variables
    of :data:`TF_THREAD_ENV`; a variable already set in the environment is kept.

    Intra-op threads, over which one op is split (a large batch's matrix products): the
    usable cores' share of a worker. Unset, TensorFlow sizes both pools to the whole
    machine in every process, and ignores a container's CPU quota. Inter-op threads,
    which run a call's ops: one per batch running at once (``[serving]
    inference_threads``, at most the share), and one more. A tabular model's graph is
    many small ops, one branch per input; spreading one call over many threads costs
    more than it saves. The one more is for isolation: a call that spins (a loop in a
    model's graph runs on one inter-op thread until it ends) would otherwise hold every
    other model's and version's calls in the worker, each on its own executor
    (:class:`~mooring.serving._models.ModelManager`), until it returns.

    Examples:
        >>> tf_thread_env(2, 1, cores=8) == {
        ...     "TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS", "4"),
        ...     "TF_NUM_INTEROP_THREADS": os.environ.get("TF_NUM_INTEROP_THREADS", "2"),
        ... }
        True
    """
    share = max(1, (usable_cores() if cores is None else cores) // workers)
    intra, inter = TF_THREAD_ENV
    return {
        intra: os.environ.get(intra, str(share)),
        inter: os.environ.get(inter, str(max(1, min(share, inference_threads)) + 1)),
    }


def available_memory() -> int | None:
    """Bytes a new process can still use: MemAvailable, capped by a cgroup v2 limit."""
    found: list[int] = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append(max(0, int(limit) - used))
    return min(found) if found else None


def default_workers(
    cores: int | None = None, memory: int | None = None, per_worker: int = PER_WORKER_BYTES
) -> int:
    """``--workers``'s default: the usable cores, capped so each worker has its memory.

    Examples:
        >>> default_workers(cores=8, memory=3 * PER_WORKER_BYTES)
        3
        >>> default_workers(cores=2, memory=64 * PER_WORKER_BYTES)
        2
        >>> default_workers(cores=4, memory=0)
        1
    """
    cores = usable_cores() if cores is None else cores
    memory = available_memory() if memory is None else memory
    if memory is None:
        return max(1, cores)
    return max(1, min(cores, memory // per_worker))


def check_port_free(host: str, port: int, what: str) -> None:
    """Refuse to start when ``port`` is taken (by any socket, shared or not).

    Raises:
        ConfigError: the port is taken or the address is not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"{what}: cannot listen on {host}:{port} ({exc.strerror or exc}); choose a "
                "free port or stop the server that holds it"
            ) from None


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket that shares ``port`` with the other workers.

    The server listens on it once the worker's lifespan has started, i.e. once its models
    are ready: until then the kernel sends no connection to it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose a free port"
        ) from None
    sock.setblocking(False)
    return sock


@dataclass(frozen=True)
class WorkerRun:
    """What a worker knows of its run (from :data:`WORKER_ENV`).

    ``check_ready``: called by :meth:`mark_ready` once the worker's models have settled,
    before it counts as ready; what it raises ends the worker's start-up (``mooring serve
    --model-dir``: a model it cannot serve), so a worker that exits with a configuration
    error (status 2) this way was never ready and stops the server.
    """

    index: int
    folder: Path
    supervisor: int
    check_ready: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_env(cls) -> WorkerRun | None:
        """This process's run when it is a worker of ``mooring serve --workers N``."""
        value = os.environ.get(WORKER_ENV)
        if not value:
            return None
        index, rest = value.split(":", 1)
        folder, supervisor = rest.rsplit(":", 1)
        return cls(int(index), Path(folder), int(supervisor))

    def to_env(self) -> str:
        return f"{self.index}:{self.folder}:{self.supervisor}"

    @property
    def metrics_dir(self) -> Path:
        return self.folder / "metrics"

    @property
    def deployments_file(self) -> Path:
        """Touched by a worker that applied a deployment; the others re-read the registry."""
        return self.folder / "deployment"

    def ready_file(self, pid: int | None = None) -> Path:
        return self.folder / f"ready-{self.index}-{pid or os.getpid()}"

    def bind_to_supervisor(self) -> None:
        """Stop with the supervisor: SIGTERM when it dies (Linux), and now if it is gone."""
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != self.supervisor:
            os.kill(os.getpid(), signal.SIGTERM)

    def mark_ready(self) -> None:
        """Ready: the ready file, holding this worker's box line for the banner."""
        from mooring import _sandbox

        if self.check_ready is not None:
            self.check_ready()
        box = _sandbox.current()
        _write_atomic(self.ready_file(), _sandbox.describe(box) if box is not None else "")

    def announce_deployment(self) -> None:
        """Tell the other workers to read the deployment record now (called once a
        deployment made through this worker is applied here:
        :meth:`~mooring.serving._state.ServerState.apply_deployment`)."""
        path = self.deployments_file
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(f"{time.time_ns()} {os.getpid()}\n")
        os.replace(tmp, path)

    def deployment_stamp(self) -> str | None:
        try:
            return self.deployments_file.read_text()
        except OSError:
            return None

    @property
    def flush_file(self) -> Path:
        """Written by a worker asked to flush its prediction log (``POST /admin/flush``);
        every worker flushes its own and acknowledges it."""
        return self.folder / "flush"

    @property
    def me(self) -> str:
        """This worker as its ready file names it: ``<index>-<pid>``."""
        return f"{self.index}-{os.getpid()}"

    def announce_flush(self) -> str:
        """Ask every worker to flush its prediction log now; the notice's stamp (its
        time and :attr:`me`: the announcing worker has flushed already)."""
        stamp = f"{time.time_ns()} {self.me}"
        _write_atomic(self.flush_file, stamp)
        return stamp

    def flush_stamp(self) -> str | None:
        try:
            return self.flush_file.read_text()
        except OSError:
            return None

    def acknowledge_flush(self, stamp: str, rows: int | None) -> None:
        """This worker has flushed for ``stamp``: ``rows`` written (None: its writer did
        not finish in time)."""
        _write_atomic(self.folder / f"flushed-{self.me}", f"{stamp}\n{rows}")

    def flush_acknowledgements(self, stamp: str) -> tuple[dict[str, int | None], list[str]]:
        """The ready workers (``<index>-<pid>``) that acknowledged ``stamp``, with the
        rows each wrote, and those that have not yet. A worker that is gone is neither."""
        acks: dict[str, int | None] = {}
        missing: list[str] = []
        for ready in self.folder.glob("ready-*-*"):
            who = ready.name.removeprefix("ready-")
            if not _alive(int(who.rsplit("-", 1)[1])):
                continue
            try:
                said, rows = (self.folder / f"flushed-{who}").read_text().split("\n", 1)
            except (OSError, ValueError):
                said, rows = "", ""
            if said == stamp:
                acks[who] = int(rows) if rows.isdigit() else None
            else:
                missing.append(who)
        return acks, missing


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a worker of this run, by its ready file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Process(Protocol):
    """What the supervisor needs of a worker process (``subprocess.Popen``'s names)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class ForkedWorker:
    """A worker forked from the supervisor, with the part of ``Popen``'s interface the
    supervisor uses: ``poll`` and ``wait`` reap it (its exit status, or ``-signal``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0.0)
            time.sleep(0.01)
        return code


@dataclass
class _Worker:
    index: int
    proc: _Process
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Start ``workers`` copies of ``mooring <argv>``, keep them running, stop them together.

    ``argv`` is the worker's command line after ``mooring`` (it must ask for one worker:
    ``--workers 1``). ``ports`` are checked free before any worker starts. ``on_ready``
    is called once, in a thread of the supervisor, when every worker first listens.

    ``fork``: the command line's entry point (``argv`` in, exit status out). With it, a
    worker is this process forked, running ``fork(argv)``, whenever no other thread runs
    here (a thread's locks would be copied held); otherwise, and without it, a worker is
    ``python -m mooring <argv>``. ``run_forever``'s ``preload`` imports, before the first
    workers start, what they would each import. ``inference_threads`` (batches a worker
    runs at once) sizes each worker's TensorFlow pools with the cores
    (:func:`tf_thread_env`).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        workers: int,
        host: str,
        ports: Sequence[tuple[int, str]],
        grace_s: float = 10.0,
        on_ready: Callable[[], None] | None = None,
        fork: Callable[[list[str]], int] | None = None,
        inference_threads: int = 1,
    ) -> None:
        self.argv = list(argv)
        self.fork = fork
        self.count = workers
        self.host = host
        self.ports = list(ports)
        self.grace_s = grace_s
        self.on_ready = on_ready
        self.folder = Path(tempfile.mkdtemp(prefix="mooring-serve-"))
        #: TensorFlow's pool sizes in each worker's environment (:func:`tf_thread_env`).
        self.tf_threads = tf_thread_env(workers, inference_threads)
        self.run = WorkerRun(0, self.folder, os.getpid())
        self.workers: dict[int, _Worker] = {}
        self.restarts = 0
        self._failures: dict[int, int] = {}
        self._ever_ready: set[int] = set()
        self._stop = threading.Event()
        self._announced = False

    @property
    def metrics_dir(self) -> Path:
        return self.run.metrics_dir

    def render_metrics(self) -> bytes:
        """The text exposition of every worker's metrics, summed (for the monitor)."""
        from mooring.serving._metrics import render_multiprocess

        return render_multiprocess(self.metrics_dir)

    def stop(self, *_: object) -> None:
        self._stop.set()

    def run_forever(
        self,
        *,
        preload: Callable[[], None] | None = None,
        started: Callable[[], None] | None = None,
    ) -> int:
        """Start the workers and supervise them until stopped; the exit status.

        ``preload`` runs once the ports are known free, with the workers' metrics
        folder in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client reads it when
        imported), before the first workers start; ``started`` once they have.
        """
        for host_port, what in self.ports:
            check_port_free(self.host, host_port, what)
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        code = 0
        try:
            if preload is not None:
                os.environ[MULTIPROC_ENV] = str(self.metrics_dir)
                preload()
            for index in range(self.count):
                self._start(index)
            if started is not None:
                started()
            code = self._supervise()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(self.folder, ignore_errors=True)
        return code

    def _start(self, index: int) -> None:
        env = {WORKER_ENV: WorkerRun(index, self.folder, os.getpid()).to_env()}
        env[MULTIPROC_ENV] = str(self.metrics_dir)
        env[CONCURRENCY_ENV] = "1"
        env[WORKERS_ENV] = str(self.count)  # each worker's share of the memory ceiling
        # TensorFlow sizes its thread pools to the whole machine in every process; N
        # workers would run N times as many threads as cores. Each gets its share. It
        # reads them when its runtime starts (a model's load), so a forked worker's own
        # environment is soon enough.
        env.update(self.tf_threads)
        proc: _Process
        if self.fork is not None and threading.active_count() == 1:
            proc = self._forked(env, self.fork)
        else:
            command = [sys.executable, "-m", "mooring", *self.argv]
            proc = subprocess.Popen(command, env={**os.environ, **env})
        self.workers[index] = _Worker(index, proc)

    def _forked(self, env: dict[str, str], run: Callable[[list[str]], int]) -> ForkedWorker:
        """Fork a worker that runs ``run(argv)`` with ``env`` added, and exits with its
        status; it never returns into the supervisor's code (its ``finally`` blocks
        would remove the run's folder)."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        pid = os.fork()
        if pid:
            return ForkedWorker(pid)
        code = 70  # EX_SOFTWARE, should the worker's own guard fail
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.environ.update(env)
            code = run(list(self.argv))
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)

    def _supervise(self) -> int:
        pending: dict[int, float] = {}  # index → when to start it again
        while not self._stop.wait(0.1):
            now = time.monotonic()
            self._note_ready()
            for index, worker in list(self.workers.items()):
                status = worker.proc.poll()
                if status is None:
                    continue
                del self.workers[index]
                _forget(self.metrics_dir, worker.proc.pid)
                ready = any(self.folder.glob(f"ready-{index}-{worker.proc.pid}"))
                if status == CONFIG_EXIT and not ready and index not in self._ever_ready:
                    log.error("worker %d stopped on a configuration error; stopping", index)
                    return CONFIG_EXIT
                quick = now - worker.started < QUICK_DEATH_S and not ready
                self._failures[index] = self._failures.get(index, 0) + 1 if quick else 0
                delay = min(MAX_BACKOFF_S, 0.5 * 2 ** self._failures[index]) if quick else 0.0
                log.error(
                    "worker %d (pid %d) %s; starting another%s",
                    index,
                    worker.proc.pid,
                    _exit_reason(status),
                    f" in {delay:g} s" if delay else "",
                )
                pending[index] = now + delay
            for index, due in list(pending.items()):
                if due <= now:
                    del pending[index]
                    self.restarts += 1
                    self._start(index)
        return 0

    def box_line(self) -> str | None:
        """The box line a ready worker wrote (every worker has the same rules)."""
        for ready in sorted(self.folder.glob("ready-*-*")):
            with contextlib.suppress(OSError):
                return ready.read_text().strip() or None
        return None

    def _note_ready(self) -> None:
        for index, worker in self.workers.items():
            if index not in self._ever_ready and any(
                self.folder.glob(f"ready-{index}-{worker.proc.pid}")
            ):
                self._ever_ready.add(index)
        if not self._announced and len(self._ever_ready) == self.count:
            self._announced = True
            log.debug("mooring serve: %d workers listening", self.count)  # the banner says it
            released = release_package_pages("tensorflow")
            if released:
                log.debug(
                    "mooring serve: the supervisor unmapped %d MiB of TensorFlow it never runs",
                    released >> 20,
                )
            if self.on_ready is not None:
                self.on_ready()

    def _stop_all(self) -> None:
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for worker in self.workers.values():
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        self.workers.clear()


def _forget(metrics_dir: Path, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters and histograms stay in the sums)."""
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid, str(metrics_dir))  # type: ignore[no-untyped-call]


def _exit_reason(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-status).name}"
        return f"was killed by signal {-status}"
    return f"exited with status {status}"
