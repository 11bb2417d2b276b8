"""``mooring serve --workers N``: several processes on one port that act as one server.

The end-to-end test runs a real supervisor with two real workers on a registry project
and checks what a client and an operator see: both workers answer on one port, one
``/metrics`` sums them, every request lands in the prediction log once, a deployment
made through one worker reaches the other (the registry poll is set to an hour, so
only the run's notice can do it), and a worker killed with ``kill -9`` is replaced
while the other keeps answering.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mooring.config import MooringConfig, ServingConfig, load_config
from mooring.errors import ConfigError, UsageError
from mooring.formats._predictions import read_prediction_log
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving._pages import release_package_pages
from mooring.serving._workers import (
    PER_WORKER_BYTES,
    TF_THREAD_ENV,
    WORKER_ENV,
    ForkedWorker,
    Supervisor,
    WorkerRun,
    check_port_free,
    default_workers,
    tf_thread_env,
    usable_cores,
)
from tests._support.cli import run_mooring
from tests._support.serve_process import ServeProcess
from tests._support.server import BLESSED, LINEAGE, NAME, free_port
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

TOKEN = "workers-admin-token"


# -- how many ----------------------------------------------------------------------------
def test_default_workers_is_the_usable_cores_capped_by_memory() -> None:
    assert default_workers(cores=16, memory=4 * PER_WORKER_BYTES + 1) == 4
    assert default_workers(cores=2, memory=100 * PER_WORKER_BYTES) == 2
    assert default_workers(cores=8, memory=PER_WORKER_BYTES // 2) == 1  # never zero
    assert 1 <= default_workers() <= usable_cores() <= (os.cpu_count() or 1)


def test_tensorflow_s_pools_get_the_worker_s_share_and_one_inter_op_thread_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    intra, inter = TF_THREAD_ENV
    for name in TF_THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    assert tf_thread_env(2, 1, cores=8) == {intra: "4", inter: "2"}
    assert tf_thread_env(1, 3, cores=8) == {intra: "8", inter: "4"}
    assert tf_thread_env(4, 8, cores=8) == {intra: "2", inter: "3"}  # the share, and one more
    assert tf_thread_env(16, 1, cores=2) == {intra: "1", inter: "2"}  # never zero
    # What an operator set wins.
    monkeypatch.setenv(inter, "6")
    assert tf_thread_env(2, 1, cores=8) == {intra: "4", inter: "6"}


def test_one_server_process_sizes_tensorflow_s_pools_as_a_worker_would(
    tmp_path: Path, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TF_THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    # TensorFlow alone would start an inter-op pool as large as the machine; a worker's
    # is one thread per batch at once (2, at most its share of the cores), and one more.
    expected = int(tf_thread_env(1, 2)[TF_THREAD_ENV[1]])
    with ServeProcess(
        tmp_path, model_dirs["a"], args=["--workers", "1"], inference_threads=2
    ) as serve:
        assert serve.proc is not None
        assert _predict(serve.url, "one").status_code == 200
        assert _threads(serve.proc.pid).count("tf_Compute") == expected


def test_grpc_is_served_by_every_worker(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    """Both workers listen on the gRPC port (forked before any gRPC call, sharing it) and
    answer: 16 clients, each on a connection of its own, are spread over both by the
    kernel (all on one worker by chance: 1 in 32,768)."""
    import grpc

    from tests._support.grpc import predict_request, prediction_stub

    with ServeProcess(tmp_path, model_dirs["a"], grpc=True, args=["--workers", "2"]) as serve:
        assert serve.proc is not None
        supervisor = serve.proc.pid
        port = int(serve.grpc_target.rsplit(":", 1)[1])
        wait_until(
            lambda: len(_children(supervisor)) == 2 and _listeners(port) == 2,
            "two workers listening on the gRPC port",
            seen=lambda: (_children(supervisor), _listeners(port)),
        )
        workers = _children(supervisor)
        # A channel of its own subchannel pool opens a connection of its own.
        options = [("grpc.use_local_subchannel_pool", 1)]
        channels = [grpc.insecure_channel(serve.grpc_target, options) for _ in range(16)]
        try:
            for opened in channels:
                reply = prediction_stub(opened).Predict(predict_request([row()]), timeout=PATIENCE)
                assert reply.model_spec.version.value == 1
            owners = _connection_owners(port, workers)
            assert len(owners) == 16 and set(owners) == workers, (owners, workers)
        finally:
            for opened in channels:
                opened.close()


def _connection_owners(port: int, pids: set[int]) -> list[int]:
    """For each connection accepted on ``port`` (established), the process of ``pids``
    that holds it."""
    inodes = set(_sockets(port, "01"))
    owners = []
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    owners.append(pid)
    return owners


def _config(tmp_path: Path, workers: str) -> MooringConfig:
    path = tmp_path / "mooring.toml"
    path.write_text(
        f'[project]\nname = "{NAME}"\n[data]\ntrain = "t.csv"\n[serving]\nworkers = {workers}\n'
    )
    return load_config(path)


def test_workers_come_from_the_option_then_the_environment_then_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mooring.serving._process import resolve_workers

    cfg = _config(tmp_path, "3")
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert resolve_workers(2, cfg) == 2
    assert resolve_workers(None, cfg) == 5
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert resolve_workers(None, cfg) == 3
    assert resolve_workers(None, _config(tmp_path, '"auto"')) == default_workers()
    monkeypatch.setenv("WEB_CONCURRENCY", "lots")
    with pytest.raises(UsageError, match=r"WEB_CONCURRENCY='lots': expected a number"):
        resolve_workers(None, cfg)


@pytest.mark.parametrize("value", [0, 257, "many", 2.5])
def test_a_workers_setting_out_of_range_names_the_key_and_the_fix(value: Any) -> None:
    with pytest.raises(ValueError, match=r'expected "auto" or a number of processes from 1'):
        ServingConfig(workers=value)


def test_a_taken_port_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    _config(tmp_path, "2")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"--port: cannot listen on 127.0.0.1:{port}"):
            check_port_free("127.0.0.1", port, "--port")
        result = run_mooring(
            *("serve", "--workers", "2", "--port", str(port), "--model-dir", str(tmp_path)),
            cwd=tmp_path,
        )
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_that_cannot_start_stops_the_server_with_its_error(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    _config(tmp_path, "2")
    result = run_mooring(
        *("serve", "--workers", "2", "--port", str(free_port())),
        *("--model-dir", str(model_dirs["a"]), "--schema", str(tmp_path / "missing.yaml")),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "missing.yaml" in result.stderr  # the worker's own one-line error
    assert "a worker could not start" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_line_reaches_the_supervisor_without_importing_the_server() -> None:
    """Importing the command and ``supervise`` imports the workers module only: the
    server's libraries are imported when it runs (``preload_for_workers``, once the ports
    are known free, with the metrics folder set for prometheus-client), not before."""
    script = (
        "import json, sys\n"
        "import mooring.cli._serve\n"
        "from mooring.serving._process import supervise\n"
        "from mooring.serving._workers import Supervisor\n"
        "heavy = ('starlette', 'uvicorn', 'sqlalchemy', 'pyarrow', 'tensorflow',\n"
        "         'mooring.serving._app', 'mooring.registry')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []


def test_a_worker_is_forked_while_the_supervisor_runs_no_other_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.json"

    def entry(argv: list[str]) -> int:
        seen.write_text(json.dumps([argv, os.environ.get(WORKER_ENV, ""), os.getppid()]))
        return 3

    supervisor = Supervisor(
        ["serve", "--workers=1"], workers=1, host="127.0.0.1", ports=[], fork=entry
    )
    try:
        # A test process runs threads of its own; the supervisor's would not.
        monkeypatch.setattr(threading, "active_count", lambda: 1)
        supervisor._start(0)
        forked = supervisor.workers[0].proc
        assert isinstance(forked, ForkedWorker)
        assert forked.wait(timeout=60) == 3  # the entry point's status is the exit status
        argv, run, parent = json.loads(seen.read_text())
        assert argv == ["serve", "--workers=1"]
        assert run == f"0:{supervisor.folder}:{os.getpid()}" and parent == os.getpid()

        def sleeper_entry(argv: list[str]) -> int:
            time.sleep(120)
            return 0

        supervisor.fork = sleeper_entry
        supervisor._start(1)
        sleeper = supervisor.workers[1].proc
        with pytest.raises(subprocess.TimeoutExpired, match=r"timed out after 0\.2 seconds"):
            sleeper.wait(timeout=0.2)
        assert sleeper.poll() is None
        sleeper.kill()
        assert sleeper.wait(timeout=60) == -signal.SIGKILL

        # With another thread running (a monitor), a worker is a new process instead.
        monkeypatch.undo()
        supervisor.argv = ["--help"]
        stop = threading.Event()
        other = threading.Thread(target=stop.wait)
        other.start()
        try:
            supervisor._start(2)
        finally:
            stop.set()
            other.join()
        spawned = supervisor.workers[2].proc
        assert isinstance(spawned, subprocess.Popen)
        assert spawned.wait(timeout=120) == 0
    finally:
        for worker in supervisor.workers.values():
            if worker.proc.poll() is None:
                worker.proc.kill()
        shutil.rmtree(supervisor.folder, ignore_errors=True)


# -- the supervisor's memory ------------------------------------------------------------


def _mapped_rss_kib(pid: int | str, folder_or_file: Path) -> int:
    """Resident KiB of a process's mappings of a file, or of the files under a folder."""
    prefix = str(folder_or_file) + (os.sep if folder_or_file.is_dir() else "")
    total, inside = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if not fields[0].endswith(":"):
            inside = len(fields) > 5 and fields[5].startswith(prefix)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_a_package_s_unwritten_pages_are_unmapped_and_its_written_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "stowed"
    package.mkdir()
    (package / "__init__.py").write_text("")
    blob, copied = package / "data.bin", package / "copied.bin"
    payload = os.urandom(16 * 1024 * 1024)
    for path in (blob, copied):
        path.write_bytes(payload)
    module = type(sys)("stowed")
    module.__file__ = str(package / "__init__.py")
    monkeypatch.setitem(sys.modules, "stowed", module)
    digest = hashlib.sha256(payload).digest()
    with (
        blob.open("rb") as one,
        copied.open("r+b") as two,
        mmap.mmap(one.fileno(), 0, access=mmap.ACCESS_READ) as read_only,
        mmap.mmap(two.fileno(), 0, access=mmap.ACCESS_COPY) as written,
    ):
        assert hashlib.sha256(read_only).digest() == digest  # every page read in
        written[:4] = b"mine"  # a private copy of one page: this process's own
        before = _mapped_rss_kib("self", blob)
        released = release_package_pages("stowed")
        after = _mapped_rss_kib("self", blob)
        # The read-only mapping's pages are unmapped, and read back intact.
        assert before >= 15 * 1024
        assert after <= before // 4, (before, after)
        assert released >= (before - after) * 1024 // 2
        assert hashlib.sha256(read_only).digest() == digest
        # The mapping this process wrote is left alone: its copy is kept.
        assert written[:4] == b"mine"
        assert written[4:] == payload[4:]
    assert release_package_pages("a_package_never_imported") == 0


def test_tensorflow_runs_on_after_its_pages_are_handed_back() -> None:
    # In a process of its own: TensorFlow's code and constants are unmapped (its
    # relocated tables are not), and its kernels still run afterwards.
    script = (
        "import tensorflow as tf\n"
        "from mooring.serving._pages import release_package_pages\n"
        "first = float(tf.reduce_sum(tf.constant([1.0, 2.0]) * 3.0))\n"
        "released = release_package_pages('tensorflow')\n"
        "again = float(tf.reduce_sum(tf.constant([1.0, 2.0]) * 3.0))\n"
        "text = tf.strings.join([tf.constant('a'), tf.constant('b')]).numpy().decode()\n"
        "print(first, again, text, released > 64 << 20)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-4:] == ["9.0", "9.0", "ab", "True"]


def test_a_worker_run_reads_back_from_its_environment(tmp_path: Path) -> None:
    run = WorkerRun(1, tmp_path / "a:b", 4242)
    os.environ["MOORING_SERVE_WORKER"] = run.to_env()
    try:
        assert WorkerRun.from_env() == run
    finally:
        del os.environ["MOORING_SERVE_WORKER"]
    assert WorkerRun.from_env() is None
    run.folder.mkdir()
    assert run.deployment_stamp() is None
    run.announce_deployment()
    first = run.deployment_stamp()
    run.announce_deployment()
    assert first is not None and run.deployment_stamp() not in (None, first)


# -- two real workers --------------------------------------------------------------------
def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text()


def _threads(pid: int) -> list[str]:
    """The names of a process's threads."""
    names = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            names.append((task / "comm").read_text().strip())
    return names


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for a parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listeners(port: int) -> int:
    """Sockets listening on ``port`` on this machine (IPv4 and IPv6)."""
    return len(_sockets(port, "0A"))


def _sockets(port: int, state: str) -> list[str]:
    """The inodes of the TCP sockets on local ``port`` in ``state`` (``0A`` listening,
    ``01`` established), IPv4 and IPv6, as ``/proc/<pid>/fd`` links name them."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.append(f"socket:[{fields[9]}]")
    return found


def _tensorflow_rss_mib(pid: int) -> float:
    """Resident MiB of a process's mappings of TensorFlow's files."""
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.origin is not None
    return _mapped_rss_kib(pid, Path(spec.origin).resolve().parent) / 1024


def _predict(url: str, request_id: str, key: str | None = None) -> httpx.Response:
    """One prediction on a fresh connection (so the kernel picks a worker each time).

    verify=False on plain http: httpx otherwise builds a TLS context for each call (some
    25 ms of CPU, here hundreds of times beside the server)."""
    headers = {"x-request-id": request_id, "connection": "close"}
    if key is not None:
        headers["x-request-key"] = key
    return httpx.post(
        f"{url}/v1/models/{NAME}:predict",
        json={"instances": [row()]},
        headers=headers,
        timeout=PATIENCE,
        verify=False,
    )


def _logged_ids(folder: Path) -> set[str]:
    """The request ids in a prediction log folder (none before its first file)."""
    if not any(folder.rglob("*.parquet")):
        return set()
    return set(read_prediction_log(str(folder), NAME).column("request_id").to_pylist())


def _served(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("mooring_requests_total{") and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class _Client(threading.Thread):
    """Predictions on fresh connections until stopped; a refused connection is retried."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.retried = 0

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            for _ in range(5):
                try:
                    self.statuses.append(_predict(self.url, f"kill-{n}").status_code)
                    break
                except httpx.TransportError:
                    self.retried += 1
                    time.sleep(0.05)
            else:
                self.statuses.append(0)


def test_two_workers_answer_as_one_server_through_a_deployment_and_a_kill(  # noqa: PLR0915 - one scenario on one server; each step needs the one before
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    options: dict[str, Any] = {
        "log_sample_rate": 1.0,
        "log_flush_s": 0.2,
        "poll_interval_s": 3600.0,  # only the run's notice can move the other worker
        "deadline_ms": PATIENCE * 1000,
        "admin_token": TOKEN,
    }
    serve = ServeProcess(tmp_path, None, args=["--workers", "2", "--access-log"], **options)
    with Registry.from_config(load_config(serve.config)) as registry:
        for folder in (model_dirs["a"], model_dirs["b"]):
            register_judged(
                registry,
                name=NAME,
                artifact_dir=folder,
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
        registry.deploy(NAME, production=1)

    with serve:
        assert serve.proc is not None
        supervisor = serve.proc.pid
        wait_until(
            lambda: len(_children(supervisor)) == 2 and _listeners(serve.port) == 2,
            "two workers listening on the port",
            seen=lambda: (_children(supervisor), _listeners(serve.port)),
        )
        workers = _children(supervisor)
        # The workers are forked from the supervisor, which imported TensorFlow once.
        assert all(_command(pid) == _command(supervisor) for pid in workers)
        # It never runs TensorFlow: once they listen it unmaps TensorFlow's code and
        # constants (about 300 MiB resident after the import; the workers keep theirs).
        wait_until(
            lambda: _tensorflow_rss_mib(supervisor) < 64,
            "the supervisor to unmap TensorFlow's pages",
            seen=lambda: _tensorflow_rss_mib(supervisor),
        )
        assert all(_tensorflow_rss_mib(pid) > 0 for pid in workers)

        # Both workers answer on the one port; every answer is a 200 from version 1.
        first = [_predict(serve.url, f"first-{i}") for i in range(120)]
        assert [(r.status_code, r.headers.get("x-model-version")) for r in first] == [
            (200, "1")
        ] * 120
        # Each worker's TensorFlow gets its share of the cores, not all of them: its
        # inter-op pool (threads named tf_Compute) has one thread per batch running at
        # once (inference_threads, 1 here), at most that share, and one more.
        expected = int(tf_thread_env(2, 1)[TF_THREAD_ENV[1]])
        assert [_threads(pid).count("tf_Compute") for pid in sorted(workers)] == [expected] * 2
        # One /metrics, whichever worker answers it: the sum over both.
        for _ in range(4):
            scraped = httpx.get(
                f"{serve.url}/metrics", headers={"connection": "close"}, verify=False
            ).text
            assert _served(scraped) == 120

        # A deployment made through one worker reaches the other.
        moved = httpx.post(
            f"{serve.url}/admin/deployment",
            json={"production": 2, "reason": "through one worker"},
            headers={"authorization": f"Bearer {TOKEN}", "connection": "close"},
        )
        assert moved.status_code == 200, moved.text
        wait_until(
            lambda: all(
                _predict(serve.url, "probe").headers["x-model-version"] == "2" for _ in range(20)
            ),
            "both workers to answer with version 2",
        )
        after = [_predict(serve.url, f"after-{i}") for i in range(40)]
        assert {(r.status_code, r.headers["x-model-version"]) for r in after} == {(200, "2")}
        # Every request answered so far is written before a worker is killed.
        log_folder = tmp_path / ".mooring" / "predictions"
        sent = {r.headers["x-request-id"] for r in first + after}  # the server's ids, logged
        wait_until(
            lambda: sent <= _logged_ids(log_folder),
            "the 160 answered requests to be in the prediction log",
            seen=lambda: len(sent - _logged_ids(log_folder)),
        )

        # kill -9 one worker under traffic: the other answers, a new one replaces it.
        client = _Client(serve.url)
        client.start()
        wait_until(lambda: len(client.statuses) >= 20, "20 answers to the client",
                   seen=lambda: client.statuses)  # fmt: skip
        before_kill = _served(httpx.get(f"{serve.url}/metrics", verify=False).text)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        probes: list[int] = []
        for _ in range(60):  # a fixed count of probes, however long they take
            try:
                probes.append(
                    httpx.get(
                        f"{serve.url}/v2/health/ready", timeout=PATIENCE, verify=False
                    ).status_code
                )
            except httpx.TransportError:
                probes.append(0)  # a connection the dead worker's socket held
            time.sleep(0.05)
        wait_until(
            lambda: (
                len(_children(supervisor)) == 2
                and victim not in _children(supervisor)
                and _listeners(serve.port) == 2
            ),
            "a new worker to replace the killed one and listen",
            seen=lambda: (_children(supervisor), _listeners(serve.port)),
        )
        count = len(client.statuses)
        wait_until(lambda: len(client.statuses) >= count + 20, "20 more answers to the client",
                   seen=lambda: client.statuses[count:])  # fmt: skip
        client.stop.set()
        client.join(timeout=60)
        scraped = httpx.get(f"{serve.url}/metrics", verify=False).text
        assert _served(scraped) >= before_kill  # the dead worker's counts stay in the sum
    assert serve.proc.returncode == 0
    output = serve.output

    assert set(client.statuses) == {200}, client.statuses  # no 5xx, no request given up
    # Readiness: only connections caught by the dying worker fail, and never for long.
    assert probes.count(200) >= len(probes) - 3, probes
    assert 503 not in probes
    assert f"worker 0 (pid {victim}) was killed by SIGKILL" in output or (
        f"worker 1 (pid {victim}) was killed by SIGKILL" in output
    )
    # Both workers answered (the access log says which one), and all workers are gone.
    answered_by = set()
    for line in output.splitlines():
        if line.startswith("{") and '"request_id"' in line:
            answered_by.add(json.loads(line).get("worker"))
    assert answered_by == {0, 1}
    assert not any(_alive(pid) for pid in workers - {victim})
    # Every request answered before the kill is in the prediction log exactly once,
    # from files written by both workers (no name collided).
    logged = read_prediction_log(str(log_folder), NAME)
    ids = logged.column("request_id").to_pylist()
    assert sent <= set(ids)
    assert len([i for i in ids if i in sent]) == len(sent)
    files = list(log_folder.rglob("*.parquet"))
    assert len(files) == len({f.name for f in files}) >= 2


def test_a_supervisor_killed_outright_takes_its_workers_with_it(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    port = free_port()
    _config(tmp_path, "2")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mooring", "serve", "--workers", "2", "--port", str(port)),
            *("--model-dir", str(model_dirs["a"]), "--no-access-log"),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: len(_children(proc.pid)) == 2, "two workers",
                   seen=lambda: _children(proc.pid))  # fmt: skip
        workers = _children(proc.pid)
        proc.kill()
        proc.wait(timeout=PATIENCE)
        wait_until(lambda: not any(_alive(pid) for pid in workers), "the workers to exit",
                   seen=lambda: [pid for pid in workers if _alive(pid)])  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.kill()
