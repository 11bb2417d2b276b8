"""Benchmark: statistics and batch scoring over Parquet shards on every engine.

Adult's 32,561 training rows (``examples/adult/adult.data.csv.gz``, read with mooring's
``read_table``) are repeated up to ``--rows`` rows (default 5 million), with a
deterministic jitter of up to ±5% on the numeric columns (zeros stay zero) so that the
shards are not copies of one another, and written as ``--shards`` Parquet files (default
32). The shards are cached under ``--data-dir`` and reused when the row count, shard
count and seed match.

Four configurations run side by side, rounds interleaved, medians reported:

* ``local_1``: this process, shard after shard (``Engine("local", workers=1)``);
* ``local_2``: a two-process ``spawn`` pool (``Engine("local", workers=2)``);
* ``ray_1`` / ``ray_2``: a Ray cluster started by the benchmark on 127.0.0.1 (one head
  node with 2 CPUs, its own port, temp folder and auth token), one or two concurrent
  tasks (``Engine("ray", workers=N, address=...)``).

Statistics are ``sharded_statistics`` (timed as a whole: listing, the per-shard
statistics, the merge). Scoring is ``score_shards`` with a registered Adult model
(``mooring run`` on a small project, trained once and cached with the shards), into a
fresh output folder each time. Each configuration also runs once more with the
per-shard work wrapped so that every worker reports its own peak resident memory
(``VmHWM``, reset with ``/proc/self/clear_refs`` at the start of each shard) and pid;
the report holds the highest peak per worker and the driver's.

The serial parts are measured on their own: listing the shards and merging the
partial statistics on the driver, an engine's fixed cost (a trivial map over as many
items as shards), the version resolved and verified on the driver, and the model load
in each worker. The projection for N workers is Amdahl's law over those measurements.

Times are reported, never asserted; the floors (speed-up from 1 to 2 workers, memory per
worker bounded by the batch and shard sizes) are evaluated and printed.

Usage::

    python benchmarks/bench_scale.py                  # 5M rows, 32 shards, 3 rounds
    python benchmarks/bench_scale.py --quick          # 400k rows, 1 round
    python benchmarks/bench_scale.py --rows 20000 --shards 4 --rounds 1 --no-ray
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import json
import os
import platform
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT / "examples" / "adult" / "adult.data.csv.gz"
ADULT_TEST = ROOT / "examples" / "adult" / "adult.test.csv.gz"
NA_VALUES = ("?", "")
JITTER = 0.05
#: Adult rows the scoring model is trained and evaluated on.
MODEL_ROWS = 8000
CONFIGS: dict[str, tuple[str, int]] = {
    "local_1": ("local", 1),
    "local_2": ("local", 2),
    "ray_1": ("ray", 1),
    "ray_2": ("ray", 2),
}
FLOORS = {"statistics": 1.5, "scoring": 1.6}
PROJECT_WORKERS = (1, 2, 4, 8, 16, 32)
RAY = Path(sys.executable).with_name("ray")
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
CELL_TIMEOUT_S = 1200

MODEL_TOML = """\
[project]
name = "income"
home = "state"

[data]
train = {train}
eval = {eval}
label = "class"
positive = ">50K"
na_values = ["?", ""]
batch_mb = {batch_mb}

[model]
task = "binary"
hidden = [16]
epochs = 1
learning_rate = 0.01
schedule = "constant"
parity_records = 20
seed = 42

[evaluation]
bootstrap = {{ samples = 0 }}

[[evaluation.gates]]
metric = "auc"
lower = 0.7
"""


# ---------------------------------------------------------------- memory, in any process


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _peak_kb() -> int:
    """This process's peak RSS since the last reset (VmHWM), else its lifetime peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _sample(seconds: float, cpu: float, peak_kb: int, reset: bool) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_kb": peak_kb,
        "peak_reset": reset,
        "maxrss_kb": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    }


class MeteredStatistics:
    """``sharded_statistics``' per-shard work, also reporting the worker's pid and peak."""

    def __init__(self, batch_mb: float) -> None:
        self.batch_mb = batch_mb

    def __call__(self, shard: str) -> dict[str, Any]:
        from mooring.contract._io import ReadOptions
        from mooring.scale._statistics import _ShardStatistics

        reset = _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        task = _ShardStatistics(
            ReadOptions(na_values=NA_VALUES, batch_mb=self.batch_mb), None, 10_000
        )
        payload = task(shard)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return {"stats": payload, **_sample(seconds, cpu, _peak_kb(), reset)}


try:  # batch scoring: mooring.scale._score (absent from older trees)
    from mooring.scale._score import ShardOutcome, ShardScorer
except ImportError:  # pragma: no cover - without batch scoring
    ShardOutcome = ShardScorer = None  # type: ignore[assignment, misc]

if ShardScorer is not None:
    # At module level, so that a spawn pool pickles them by reference (Ray by value).

    @dataclasses.dataclass(frozen=True)
    class MeteredOutcome(ShardOutcome):  # type: ignore[misc, valid-type]
        """A shard's outcome, with the worker's pid, peak and model load time."""

        pid: int = 0
        peak_kb: int = 0
        peak_reset: bool = False
        maxrss_kb: int = 0
        load_seconds: float = 0.0
        shard_seconds: float = 0.0
        cpu_seconds: float = 0.0

    @dataclasses.dataclass(frozen=True)
    class MeteredScorer(ShardScorer):  # type: ignore[misc, valid-type]
        """``ShardScorer`` whose outcome also carries the worker's pid, peak and load time."""

        def __call__(self, shard: Any) -> Any:
            from mooring.scale._model import _LOADED, served_model

            reset = _reset_peak()
            start, cpu = time.perf_counter(), time.process_time()
            fresh = (self.ref.path, self.ref.manifest_sha256) not in _LOADED
            served_model(self.ref)
            load = time.perf_counter() - start if fresh else 0.0
            outcome = super().__call__(shard)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            fields = {f.name: getattr(outcome, f.name) for f in dataclasses.fields(outcome)}
            return MeteredOutcome(
                **fields,
                pid=os.getpid(),
                peak_kb=_peak_kb(),
                peak_reset=reset,
                maxrss_kb=int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
                load_seconds=load,
                shard_seconds=seconds,
                cpu_seconds=cpu,
            )


# ---------------------------------------------------------------- data


def data_folder(data_dir: Path, rows: int, shards: int, seed: int) -> Path:
    return data_dir / f"adult_{rows}_x{shards}_seed{seed}"


def generate(data_dir: Path, rows: int, shards: int, seed: int) -> tuple[Path, list[Path]]:
    """Write (once) ``rows`` jittered Adult rows as ``shards`` Parquet files."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mooring.contract._io import ReadOptions, read_table

    folder = data_folder(data_dir, rows, shards, seed)
    meta = folder / "_meta.json"
    names = [folder / f"part-{i:04d}.parquet" for i in range(shards)]
    if meta.is_file() and all(p.is_file() for p in names):
        recorded = json.loads(meta.read_text(encoding="utf-8"))
        if recorded.get("rows") == rows and recorded.get("shards") == shards:
            return folder, names
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    source = read_table(ADULT, ReadOptions(na_values=NA_VALUES))
    n = source.num_rows
    for i, path in enumerate(names):
        start, stop = round(i * rows / shards), round((i + 1) * rows / shards)
        index = np.arange(start, stop, dtype=np.int64) % n
        part = source.take(pa.array(index))
        rng = np.random.default_rng([seed, i])
        columns = []
        for field, column in zip(part.schema, part.columns, strict=True):
            if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
                values = column.to_numpy(zero_copy_only=False).astype(np.float64)
                jitter = values * rng.uniform(-JITTER, JITTER, len(values))
                new = values + jitter
                if pa.types.is_integer(field.type):
                    new = np.where(np.isnan(new), np.nan, np.round(new))
                mask = np.isnan(values)
                column = pa.array(
                    np.where(mask, 0, new).astype(field.type.to_pandas_dtype()),
                    type=field.type,
                    mask=mask if mask.any() else None,
                )
            columns.append(column)
        table = pa.table(columns, schema=part.schema)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    meta.write_text(json.dumps({"rows": rows, "shards": shards, "seed": seed}), encoding="utf-8")
    return folder, names


def train_model(data_dir: Path, batch_mb: float) -> Path:
    """A small Adult model trained and registered by ``mooring run`` (cached); its config."""
    project = data_dir / "model-project"
    config = project / "mooring.toml"
    done = project / "_trained.json"
    if done.is_file() and config.is_file():
        return config
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    # Its first rows are enough: scoring costs the same per row whatever the model learned.
    files = {}
    for key, source in (("train", ADULT), ("eval", ADULT_TEST)):
        files[key] = project / source.name.removesuffix(".gz")
        with gzip.open(source, "rt", encoding="utf-8") as src:
            lines = [line for _, line in zip(range(MODEL_ROWS + 1), src, strict=False)]
        files[key].write_text("".join(lines), encoding="utf-8")
    config.write_text(
        MODEL_TOML.format(
            train=json.dumps(str(files["train"])),
            eval=json.dumps(str(files["eval"])),
            batch_mb=batch_mb,
        ),
        encoding="utf-8",
    )
    mooring = Path(sys.executable).with_name("mooring")
    command = [str(mooring)] if mooring.is_file() else [sys.executable, "-m", "mooring.cli"]
    start = time.perf_counter()
    proc = subprocess.run(
        [*command, "run", "-c", str(config)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mooring run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    done.write_text(json.dumps({"seconds": time.perf_counter() - start}), encoding="utf-8")
    return config


# ---------------------------------------------------------------- the Ray cluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cluster_pids(port: int, temp_dir: str, client_port: int, token: str) -> list[int]:
    """This benchmark's cluster: the Ray processes holding its auth token, or naming its
    GCS port (behind any address), its temp folder or its client server's port.

    Every process ``ray start`` spawns inherits the token, including the agents whose
    command line Ray rewrites (``ray::DashboardAgent``).
    """
    import psutil

    mark = re.compile(
        rf"(:|gcs_server_port=){port}(?!\d)|{re.escape(temp_dir)}|--port={client_port}(?!\d)"
    )
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or ())
        if proc.info["pid"] == os.getpid() or "ray" not in cmdline:
            continue
        if mark.search(cmdline):
            found.append(int(proc.info["pid"]))
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("RAY_AUTH_TOKEN") == token:
                found.append(int(proc.info["pid"]))
    return found


def _stop_cluster(port: int, temp_dir: str, client_port: int, token: str) -> list[int]:
    """SIGTERM, then SIGKILL, this cluster's processes only.

    Not ``ray stop --force``: that stops every Ray process on the machine, other
    people's clusters included.
    """
    import psutil

    procs = []
    for pid in _cluster_pids(port, temp_dir, client_port, token):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return [p.pid for p in procs]


@dataclasses.dataclass(frozen=True)
class Cluster:
    address: str
    gcs_pid: int | None

    def alive(self) -> bool:
        import psutil

        return self.gcs_pid is None or psutil.pid_exists(self.gcs_pid)


def _gcs_pid(port: int, temp_dir: str, client_port: int, token: str) -> int | None:
    import psutil

    for pid in _cluster_pids(port, temp_dir, client_port, token):
        try:
            if "gcs_server" in " ".join(psutil.Process(pid).cmdline()):
                return pid
        except psutil.NoSuchProcess:
            continue
    return None


@contextlib.contextmanager
def ray_cluster(cpus: int = 2) -> Iterator[Cluster]:
    """A one-node Ray cluster on 127.0.0.1 with its own port, temp folder and auth token."""
    port, client_port = _free_port(), _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths
    token = secrets.token_hex(32)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    os.environ.update(auth)  # this driver joins with the same token
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),  # workers import this tree
    }
    try:
        done = subprocess.run(
            [
                str(RAY),
                "start",
                "--head",
                f"--port={port}",
                f"--ray-client-server-port={client_port}",  # not 10001: others' clusters
                "--node-ip-address=127.0.0.1",
                f"--num-cpus={cpus}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
                f"--object-store-memory={512 << 20}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{done.stdout}\n{done.stderr}")
        yield Cluster(f"127.0.0.1:{port}", _gcs_pid(port, temp_dir, client_port, token))
    finally:
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        _stop_cluster(port, temp_dir, client_port, token)
        shutil.rmtree(temp_dir, ignore_errors=True)


# ---------------------------------------------------------------- the cells


# ---------------------------------------------------------------- one cell, in a fresh process


def _engine(name: str, address: str | None) -> Any:
    from mooring.scale._engine import Engine

    kind, workers = CONFIGS[name]
    return Engine(kind, workers=workers, address=address if kind == "ray" else None)  # type: ignore[arg-type]


def _per_worker(samples: list[Any]) -> dict[str, dict[str, Any]]:
    """The highest peak (and the model load time) per worker pid."""
    out: dict[str, dict[str, Any]] = {}
    for s in samples:
        get = s.get if isinstance(s, dict) else lambda k, s=s: getattr(s, k)
        row = out.setdefault(
            str(get("pid")),
            {"shards": 0, "peak_mb": 0.0, "maxrss_mb": 0.0, "load_seconds": 0.0},
        )
        row["shards"] += 1
        row["peak_mb"] = max(row["peak_mb"], get("peak_kb") / 1024)
        row["maxrss_mb"] = max(row["maxrss_mb"], get("maxrss_kb") / 1024)
        row["peak_reset"] = bool(get("peak_reset"))
        if not isinstance(s, dict):
            row["load_seconds"] = max(row["load_seconds"], float(s.load_seconds))
    return out


def cell_statistics(folder: str, engine: Any, batch_mb: float) -> dict[str, Any]:
    """``sharded_statistics`` twice (cold: new workers; warm: reused), then once metered."""
    import hashlib

    from mooring.contract._io import ReadOptions
    from mooring.contract._statistics import DatasetStatistics
    from mooring.scale._shards import list_shards
    from mooring.scale._statistics import sharded_statistics

    options = ReadOptions(na_values=NA_VALUES, batch_mb=batch_mb)
    timed = []
    for _ in range(2):
        start = time.perf_counter()
        stats = sharded_statistics(folder, options, engine=engine)
        timed.append(time.perf_counter() - start)
    digest = hashlib.sha256(
        json.dumps(stats.to_dict(), sort_keys=True, default=str).encode()
    ).hexdigest()
    # The same work with each shard's worker reporting its peak; merged as the library does.
    start = time.perf_counter()
    shards = list_shards(folder)
    listed = time.perf_counter()
    results = engine.map(MeteredStatistics(batch_mb), shards)
    mapped = time.perf_counter()
    parts = [DatasetStatistics.from_json(r["stats"]) for r in results]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    end = time.perf_counter()
    return {
        "seconds": timed[0],
        "warm_seconds": timed[1],
        "rows": stats.num_rows,
        "digest": digest,
        "metered_rows": merged.num_rows,
        "list_seconds": listed - start,
        "map_seconds": mapped - listed,
        "merge_seconds": end - mapped,
        "shard_seconds_sum": sum(r["seconds"] for r in results),
        "cpu_seconds_sum": sum(r["cpu_seconds"] for r in results),
        "workers": _per_worker(results),
    }


@contextlib.contextmanager
def _metered_scoring() -> Iterator[None]:
    """``score_shards`` with :class:`MeteredScorer` as its per-shard work."""
    from mooring.scale import _score as score_module

    saved = score_module.ShardScorer
    score_module.ShardScorer = MeteredScorer  # type: ignore[misc]
    try:
        yield
    finally:
        score_module.ShardScorer = saved  # type: ignore[misc]


def cell_scoring(folder: str, engine: Any, config: str, out: str) -> dict[str, Any]:
    """``score_shards`` of the production version into a fresh folder, every worker metered."""
    from mooring.config import load_config
    from mooring.registry import Registry
    from mooring.scale._model import resolve_model
    from mooring.scale._score import score_shards

    shutil.rmtree(out, ignore_errors=True)
    cfg = load_config(config)
    outcomes: list[Any] = []
    with Registry.from_config(cfg) as registry:
        start = time.perf_counter()
        with _metered_scoring():
            summary = score_shards(
                cfg, registry, data=folder, out=out, engine=engine, on_shard=outcomes.append
            )
        seconds = time.perf_counter() - start
        # The driver's serial part, again on its own: the version resolved and verified.
        t0 = time.perf_counter()
        resolve_model(registry, cfg.project.name, "production", contract=cfg.contract)
        resolve = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": seconds,
        "rows": summary.scored + summary.rejected,
        "scored": summary.scored,
        "rejected": summary.rejected,
        "violations": summary.violations,
        "version": summary.version,
        "resolve_seconds": resolve,
        "shard_seconds_sum": sum(float(o.shard_seconds) for o in outcomes),
        "load_seconds_sum": sum(float(o.load_seconds) for o in outcomes),
        "cpu_seconds_sum": sum(float(o.cpu_seconds) for o in outcomes),
        "workers": _per_worker(outcomes),
    }


def cell_overhead(folder: str, engine: Any, items: int) -> dict[str, Any]:
    """An engine's fixed cost: a trivial map over ``items`` items, cold then warm; the listing."""
    from mooring.scale._shards import list_shards

    timed = []
    for _ in range(2):
        start = time.perf_counter()
        engine.map(abs, list(range(-items, 0)))
        timed.append(time.perf_counter() - start)
    start = time.perf_counter()
    list_shards(folder)
    return {
        "seconds": timed[0],
        "warm_seconds": timed[1],
        "list_seconds": time.perf_counter() - start,
    }


def run_cell(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in this (fresh) process; the driver's peak is this process's."""
    engine = _engine(args.config, args.address)
    connect = 0.0
    if engine.kind == "ray":
        from mooring.scale._engine import connect_ray

        start = time.perf_counter()
        connect_ray(args.address)  # joining is not part of the cell's time
        connect = time.perf_counter() - start
    if args.cell == "statistics":
        result = cell_statistics(args.folder, engine, args.batch_mb)
    elif args.cell == "scoring":
        result = cell_scoring(args.folder, engine, args.model_config, args.score_out)
    else:
        result = cell_overhead(args.folder, engine, args.shards)
    result["connect_seconds"] = connect
    result["driver_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure(
    cell: str,
    config: str,
    args: argparse.Namespace,
    alive: Callable[[], bool] | None = None,
    **paths: str,
) -> dict[str, Any]:
    """Run one cell in a fresh interpreter (its own peak, its own Ray job).

    ``alive`` says whether the Ray cluster still runs: a driver whose cluster was stopped
    under it (``ray stop`` elsewhere on the machine) would wait forever.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--cell",
        cell,
        "--config",
        config,
        "--batch-mb",
        str(args.batch_mb),
        "--shards",
        str(args.shards),
        *(f"--{k.replace('_', '-')}={v}" for k, v in paths.items()),
    ]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + CELL_TIMEOUT_S
        while proc.poll() is None:
            if time.monotonic() > deadline or (alive is not None and not alive()):
                proc.kill()
                proc.wait()
                why = "timed out" if time.monotonic() > deadline else "the Ray cluster stopped"
                raise ClusterLostError(f"{cell} on {config}: {why}")
            time.sleep(0.5)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cell} on {config} failed:\n{stderr[-4000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


class ClusterLostError(RuntimeError):
    """A cell whose Ray cluster went away, or that never finished."""


# ---------------------------------------------------------------- the run


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in os.getloadavg()]
    except OSError:
        return None


def _summarise(runs: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in runs)
    workers: dict[str, dict[str, Any]] = {}
    for r in runs:
        workers.update({f"{i}:{pid}": w for i, (pid, w) in enumerate(r["workers"].items())})
    out = {
        "seconds_median": seconds,
        "seconds": [r["seconds"] for r in runs],
        "rows_per_s": rows / seconds,
        "driver_peak_mb": max(r["driver_peak_mb"] for r in runs),
        "workers_per_run": [len(r["workers"]) for r in runs],
        "worker_peak_mb": max(w["peak_mb"] for r in runs for w in r["workers"].values()),
        "worker_peak_mb_per_run": [max(w["peak_mb"] for w in r["workers"].values()) for r in runs],
        "worker_peaks_last_run": {pid: w["peak_mb"] for pid, w in runs[-1]["workers"].items()},
        "shard_seconds_sum_median": statistics.median(r["shard_seconds_sum"] for r in runs),
        # CPU seconds per second of shard work: how many cores one worker keeps busy
        # (Arrow's reader and TensorFlow use threads of their own).
        "cores_per_worker": statistics.median(
            r["cpu_seconds_sum"] / r["shard_seconds_sum"] for r in runs
        ),
    }
    if "warm_seconds" in runs[0]:
        warm = statistics.median(r["warm_seconds"] for r in runs)
        out["warm_seconds_median"] = warm
        out["warm_rows_per_s"] = rows / warm
    if "load_seconds_sum" in runs[0]:
        loads = [
            w["load_seconds"] for r in runs for w in r["workers"].values() if w["load_seconds"]
        ]
        out["model_load_seconds_median"] = statistics.median(loads) if loads else 0.0
    return out


def _speedups(
    task: str, raw: dict[str, list[dict[str, Any]]], cells: dict[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    speedup: dict[str, float] = {}
    floors: dict[str, Any] = {}
    for kind in ("local", "ray"):
        one, two = f"{kind}_1", f"{kind}_2"
        if one not in cells or two not in cells:
            continue
        value = cells[one]["seconds_median"] / cells[two]["seconds_median"]
        speedup[kind] = value
        speedup[f"{kind}_per_round_median"] = statistics.median(
            a["seconds"] / b["seconds"] for a, b in zip(raw[one], raw[two], strict=True)
        )
        if "warm_seconds_median" in cells[one]:
            speedup[f"{kind}_warm"] = (
                cells[one]["warm_seconds_median"] / cells[two]["warm_seconds_median"]
            )
        # Two workers can at most double the work done, and no more than the cores left
        # allow when one worker already keeps more than one core busy.
        busy = max(cells[one]["cores_per_worker"], 1e-9)
        floors[f"{task}_{kind}_1_to_2_workers_ge_{FLOORS[task]:g}x"] = {
            "met": value >= FLOORS[task],
            "measured": round(value, 3),
            "floor": FLOORS[task],
            "ceiling": round(min(2.0, CORES / busy), 3),
            "one_worker_cores": round(busy, 3),
        }
    return speedup, floors


def _projection(
    rows: int, serial: float, fixed: float, parallel: float, shards: int
) -> dict[str, Any]:
    """Amdahl: T(N) = serial + fixed + parallel / min(N, shards)."""
    out = {}
    for n in PROJECT_WORKERS:
        t = serial + fixed + parallel / min(n, shards)
        out[str(n)] = {"seconds": round(t, 3), "rows_per_s": round(rows / t)}
    return out


def _project(
    args: argparse.Namespace, results: dict[str, Any], overhead: dict[str, Any]
) -> dict[str, Any]:
    """Per-worker throughput and Amdahl's law over the measured serial parts."""
    kind = "ray" if "ray_1" in overhead else "local"
    # Per task: the warm trivial map on two workers, per item and per worker pair.
    per_task = overhead[f"{kind}_2"]["warm_seconds"] * 2 / args.shards
    fixed = overhead[f"{kind}_2"]["seconds"]  # a cold map: starting the workers
    out: dict[str, Any] = {
        "engine": kind,
        "per_task_overhead_seconds": per_task,
        "engine_start_seconds": fixed,
        "list_seconds": overhead[f"{kind}_1"]["list_seconds"],
    }
    stats = results["statistics"]["cells"]
    one = stats[f"{kind}_1"]
    merge = one["merge_seconds_median"]
    serial = out["list_seconds"] + merge
    work = stats["local_1"]["shard_seconds_sum_median"]
    parallel = work + per_task * args.shards
    out["statistics"] = {
        "per_worker_rows_per_s": args.rows / work,
        "serial_seconds": serial,
        "merge_seconds": merge,
        "fixed_seconds": fixed,
        "parallel_seconds": parallel,
        "serial_fraction": (serial + fixed) / (serial + fixed + parallel),
        "limit_rows_per_s": args.rows / (serial + fixed),
        "by_workers": _projection(args.rows, serial, fixed, parallel, args.shards),
    }
    if "scoring" in results:
        cells = results["scoring"]["cells"]
        load = cells[f"{kind}_1"]["model_load_seconds_median"]
        resolve = cells[f"{kind}_1"]["resolve_seconds_median"]
        run = cells["local_1"]
        work = run["shard_seconds_sum_median"] - run["model_load_seconds_median"]
        serial = out["list_seconds"] + resolve
        parallel = work + per_task * args.shards
        out["scoring"] = {
            "per_worker_rows_per_s": args.rows / work,
            "serial_seconds": serial,
            "resolve_seconds": resolve,
            "model_load_per_worker_seconds": load,
            "fixed_seconds": fixed + load,
            "parallel_seconds": parallel,
            "serial_fraction": (serial + fixed + load) / (serial + fixed + load + parallel),
            "limit_rows_per_s": args.rows / (serial + fixed + load),
            "by_workers": _projection(args.rows, serial, fixed + load, parallel, args.shards),
        }
    return out


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:  # noqa: C901, PLR0915 - each measurement in the order it runs
    import pyarrow

    import mooring

    load_start = _loadavg()
    t0 = time.perf_counter()
    folder, shard_paths = generate(args.data_dir, args.rows, args.shards, args.seed)
    generate_s = time.perf_counter() - t0
    shard_mb = [p.stat().st_size / 2**20 for p in shard_paths]
    _say(f"data: {args.rows:,} rows in {args.shards} shards under {folder} ({generate_s:.1f} s)")
    config = None
    if args.scoring:
        t0 = time.perf_counter()
        config = train_model(args.data_dir, args.batch_mb)
        _say(f"model: {config.parent} ({time.perf_counter() - t0:.1f} s)")
    names = [n for n in CONFIGS if args.ray or CONFIGS[n][0] == "local"]
    tasks = ["statistics", *(["scoring"] if args.scoring else [])]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {t: {n: [] for n in names} for t in tasks}
    overhead: dict[str, Any] = {}
    scores = args.data_dir / "scores"
    cluster = ray_cluster(2) if args.ray else None
    paths = {"folder": str(folder)}
    if config is not None:
        paths["model_config"] = str(config)
    restarts = 0
    handle: Cluster | None = None

    def attempt(cell: str, name: str, **extra: str) -> dict[str, Any]:
        """One cell; a Ray cell whose cluster was stopped under it (another `ray stop
        --force` on this shared machine) restarts the cluster and runs again."""
        nonlocal cluster, handle, restarts
        for _ in range(3):
            alive = handle.alive if handle is not None and CONFIGS[name][0] == "ray" else None
            try:
                return measure(cell, name, args, alive, **paths, **extra)
            except ClusterLostError as exc:
                if alive is None or handle.alive():  # type: ignore[union-attr]
                    raise
                _say(f"{exc}; restarting the cluster")
            assert cluster is not None
            cluster.__exit__(None, None, None)
            cluster = ray_cluster(2)
            handle = cluster.__enter__()
            paths["address"] = handle.address
            restarts += 1
        raise RuntimeError(f"{cell} on {name}: the Ray cluster kept stopping")

    try:
        if cluster is not None:
            handle = cluster.__enter__()
            paths["address"] = handle.address
            _say(f"ray cluster at {handle.address}")
        for name in names:
            overhead[name] = attempt("overhead", name)
            _say(
                f"overhead {name:8s} trivial map of {args.shards}: cold "
                f"{overhead[name]['seconds']:.2f} s, warm {overhead[name]['warm_seconds']:.2f} s"
            )
        # Rounds interleave the configurations, so background load drifts over all alike.
        for rnd in range(args.rounds):
            for task in tasks:
                for name in names:
                    run = attempt(task, name, score_out=str(scores / name))
                    raw[task][name].append(run)
                    peak = max(w["peak_mb"] for w in run["workers"].values())
                    _say(
                        f"round {rnd + 1}/{args.rounds} {task:10s} {name:8s} "
                        f"{run['seconds']:7.2f} s {args.rows / run['seconds']:>11,.0f} rows/s  "
                        f"workers {len(run['workers'])} peak {peak:.0f} MiB  "
                        f"driver {run['driver_peak_mb']:.0f} MiB"
                    )
    finally:
        if cluster is not None:
            cluster.__exit__(None, None, None)
        shutil.rmtree(scores, ignore_errors=True)

    results: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    for task in tasks:
        cells = {name: _summarise(raw[task][name], args.rows) for name in names}
        for name in names:
            for key in ("merge_seconds", "list_seconds", "resolve_seconds"):
                if key in raw[task][name][0]:
                    cells[name][f"{key}_median"] = statistics.median(
                        r[key] for r in raw[task][name]
                    )
        speedup, task_floors = _speedups(task, raw[task], cells)
        floors.update(task_floors)
        results[task] = {"cells": cells, "speedup_1_to_2": speedup}

    # Agreement: every engine counts every row, and merging in shard order gives the same
    # statistics everywhere (local_1 against each other engine).
    first = {n: raw["statistics"][n][0] for n in names}
    agree: dict[str, Any] = {
        "statistics_rows": {n: first[n]["rows"] for n in names},
        "statistics_equal_to_local_1": {
            n: first[n]["digest"] == first["local_1"]["digest"] for n in names if n != "local_1"
        },
        "statistics_metered_rows_equal": all(
            r["metered_rows"] == args.rows for runs in raw["statistics"].values() for r in runs
        ),
    }
    ok = (
        set(agree["statistics_rows"].values()) == {args.rows}
        and all(agree["statistics_equal_to_local_1"].values())
        and agree["statistics_metered_rows_equal"]
    )
    if args.scoring:
        agree["scoring_rows"] = {n: raw["scoring"][n][0]["rows"] for n in names}
        agree["scoring_scored"] = {n: raw["scoring"][n][0]["scored"] for n in names}
        ok = (
            ok
            and set(agree["scoring_rows"].values()) == {args.rows}
            and len(set(agree["scoring_scored"].values())) == 1
        )
        one = raw["scoring"]["local_1"][0]
        results["scoring"].update(
            {k: one[k] for k in ("scored", "rejected", "violations", "version")}
        )
    floors["engines_agree"] = {"met": ok}

    # Memory: a worker holds one shard's batches (statistics) or one shard's table and its
    # model (scoring), so its peak does not grow with the rows of the run.
    memory: dict[str, Any] = {
        "batch_mb": args.batch_mb,
        "shard_rows": args.rows / args.shards,
        "shard_file_mb_median": statistics.median(shard_mb),
        "data_file_mb_total": sum(shard_mb),
    }
    for task in tasks:
        memory[f"{task}_worker_peak_mb"] = {
            n: results[task]["cells"][n]["worker_peak_mb"] for n in names
        }
    results["memory"] = memory

    return {
        "benchmark": "scale",
        "rows": args.rows,
        "shards": args.shards,
        "rounds": args.rounds,
        "seed": args.seed,
        "batch_mb": args.batch_mb,
        "quick": args.quick,
        "ray": args.ray,
        "scoring": args.scoring,
        "data_folder": str(folder),
        "generate_seconds": generate_s,
        "configs": {n: {"engine": CONFIGS[n][0], "workers": CONFIGS[n][1]} for n in names},
        "results": results,
        "agreement": agree,
        "overhead": overhead,
        "ray_cluster_restarts": restarts,
        "projection": _project(args, results, overhead),
        "floors": floors,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)),
            "ram_gb": _ram_gb(),
            "mooring": _version("mooring-ml"),
            "pyarrow": pyarrow.__version__,
            "ray": _version("ray"),
            "tensorflow": _version("tensorflow"),
            "loadavg_start": load_start,
            "loadavg_end": _loadavg(),
        },
        "mooring_path": str(Path(mooring.__file__).parent),
    }


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def _ram_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return None


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nmooring scale benchmark: {report['rows']:,} rows in {report['shards']} Parquet "
        f"shards, median of {report['rounds']}, batch_mb={report['batch_mb']:g}"
    )
    header = (
        f"{'task':10s} {'config':8s} {'seconds':>8s} {'rows/s':>11s} {'warm rows/s':>11s} "
        f"{'workers':>7s} {'cores/w':>7s} {'MiB/worker':>10s} {'driver MiB':>10s}"
    )
    print(header)
    print("-" * len(header))
    results = report["results"]
    for task in ("statistics", "scoring"):
        if task not in results:
            continue
        for name, cell in results[task]["cells"].items():
            warm = f"{cell['warm_rows_per_s']:11,.0f}" if "warm_rows_per_s" in cell else " " * 11
            print(
                f"{task:10s} {name:8s} {cell['seconds_median']:8.2f} {cell['rows_per_s']:11,.0f} "
                f"{warm} {max(cell['workers_per_run']):7d} {cell['cores_per_worker']:7.2f} "
                f"{cell['worker_peak_mb']:10.0f} "
                f"{cell['driver_peak_mb']:10.0f}"
            )
        speed = results[task]["speedup_1_to_2"]
        parts = []
        for kind in ("local", "ray"):
            if kind in speed:
                warm = f", warm {speed[kind + '_warm']:.2f}x" if kind + "_warm" in speed else ""
                parts.append(
                    f"{kind} {speed[kind]:.2f}x (per round {speed[kind + '_per_round_median']:.2f}x"
                    f"{warm})"
                )
        print(f"{'':10s} speed-up 1 -> 2 workers: {'; '.join(parts)}")
    if "scoring" in results:
        s = results["scoring"]
        print(
            f"{'':10s} scored {s['scored']:,}, rejected {s['rejected']:,}, "
            f"contract violations served {s['violations']:,} (version {s['version']})"
        )
    mem = results["memory"]
    print(
        f"\nmemory: batch_mb {mem['batch_mb']:g}; a shard holds {mem['shard_rows']:,.0f} rows, "
        f"{mem['shard_file_mb_median']:.1f} MiB of Parquet ({mem['data_file_mb_total']:.0f} MiB "
        "in all); MiB/worker is the highest per-shard peak RSS of any worker"
    )
    p = report["projection"]
    print(
        f"\nprojection ({p['engine']} engine): per task {p['per_task_overhead_seconds'] * 1000:.0f}"
        f" ms, starting the workers {p['engine_start_seconds']:.2f} s, listing "
        f"{p['list_seconds'] * 1000:.0f} ms"
    )
    for task in ("statistics", "scoring"):
        if task not in p:
            continue
        t = p[task]
        extra = (
            f"merge {t['merge_seconds']:.2f} s"
            if "merge_seconds" in t
            else f"resolve {t['resolve_seconds']:.2f} s, model load "
            f"{t['model_load_per_worker_seconds']:.2f} s per worker"
        )
        print(
            f"  {task}: {t['per_worker_rows_per_s']:,.0f} rows/s per worker; serial+fixed "
            f"{t['serial_seconds'] + t['fixed_seconds']:.2f} s ({extra}; "
            f"{t['serial_fraction'] * 100:.0f}% at 1 worker); limit "
            f"{t['limit_rows_per_s']:,.0f} rows/s"
        )
        print("    " + "  ".join(f"N={n}: {v['rows_per_s']:,}" for n, v in t["by_workers"].items()))
    machine = report["machine"]
    start, end = machine.get("loadavg_start"), machine.get("loadavg_end")
    if start and end:
        print(
            f"\nload average (1/5/15 min) at start {start[0]:.2f} {start[1]:.2f} {start[2]:.2f}, "
            f"at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} on {machine['cpus']} CPUs"
        )
    print("\nfloors:")
    for name, row in report["floors"].items():
        measured = (
            f" ({row['measured']:.2f}x, floor {row['floor']:g}x)" if "measured" in row else ""
        )
        print(f"  {'met   ' if row['met'] else 'MISSED'} {name}{measured}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, default=None, help="default 5,000,000 (--quick: 400,000)"
    )
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=None, help="default 3 (--quick: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-mb", type=float, default=16.0, help="[data] batch_mb (mooring's default is 16)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--ray",
        action=argparse.BooleanOptionalAction,
        default=RAY.is_file(),
        help="the Ray cells, on a cluster the benchmark starts (default: when Ray is installed)",
    )
    parser.add_argument(
        "--scoring",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the scoring cells (default: when mooring.scale._score imports)",
    )
    parser.add_argument("--data-dir", type=Path, default=HERE / "results" / "scale-data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_scale.json")
    # Internal: one cell in a fresh process.
    parser.add_argument(
        "--cell", choices=("statistics", "scoring", "overhead"), help=argparse.SUPPRESS
    )
    parser.add_argument("--config", choices=tuple(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--model-config", help=argparse.SUPPRESS)
    parser.add_argument("--score-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:
        print(json.dumps(run_cell(args)))
        return 0
    args.rows = args.rows or (400_000 if args.quick else 5_000_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.scoring is None:
        args.scoring = ShardScorer is not None
    elif args.scoring and ShardScorer is None:
        parser.error("--scoring needs mooring.scale._score, which this mooring does not have")
    report = run_benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
