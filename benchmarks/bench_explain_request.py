"""Benchmark: ``mooring explain REQUEST_ID`` on Adult, cold and warm, and the lookup behind it.

One run, end to end, as a user meets it: an Adult project (``examples/adult``, a few
epochs) trained and registered by ``mooring run``; ``mooring serve`` started on it;
``--requests`` requests of 1 to 4 Adult rows sent to ``:predict``, their
``X-Request-Id`` kept; the server stopped (SIGTERM), so its prediction log and its index
of request ids are written whole. Then ``python -m mooring explain ID --json`` in a fresh
process per call, wall clock from start to exit (and the child's CPU seconds):

* **cold**: the first call after the server wrote its files, with the OS page cache
  dropped first when this process may (``/proc/sys/vm/drop_caches``, as root; whether it
  could is recorded), else the first call in a fresh process;
* **warm**: ``--calls`` repeated calls, for requests from the oldest log file, a middle
  one and the newest, in turn;
* **--server**: while the server still runs (once its log holds the requests),
  ``--calls`` calls of ``mooring explain ID --server http://127.0.0.1:PORT``: the
  server's explainer, loaded once, explains the logged rows; no TensorFlow in the
  command.

With ``--baseline-src DIR`` the same calls run with ``PYTHONPATH=DIR`` first (another
checkout's ``src``, e.g. the code before the index), side by side in the same run.

The first call's answer is checked against the server's own ``:explain`` of the same
logged rows (sent while it ran), to 1e-6: a fast answer that differs is no answer.

The lookup alone (in this process, ``request_rows``): files read and seconds for a
request in the oldest file, the newest, and an id the log never held, through the index
and by reading every file's ids (what it did before), on this log and on the log
repeated ``--copies`` times (more files, each with fresh ids, indexed 64 to an index
file as the server's writer does).

Wall clock on a shared machine: the load average before and after is recorded; nothing
is asserted. Writes ``--out`` (``benchmarks/results/bench_explain_request.json``).

Usage::

    python benchmarks/bench_explain_request.py
    python benchmarks/bench_explain_request.py --calls 5 --baseline-src /path/to/old/src
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ADULT = HERE.parent / "examples" / "adult"
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_project(root: Path, epochs: int) -> Path:
    """The Adult example, its data and contract, with ``epochs`` and a short bootstrap."""
    project = root / "adult"
    project.mkdir(parents=True)
    for name in ("adult.data.csv.gz", "adult.test.csv.gz"):
        shutil.copy(ADULT / name, project / name)
    shutil.copytree(ADULT / "contract", project / "contract")
    toml = (ADULT / "mooring.toml").read_text(encoding="utf-8")
    toml = toml.replace("epochs = 10", f"epochs = {epochs}").replace(
        "samples = 200", "samples = 20"
    )
    (project / "mooring.toml").write_text(toml, encoding="utf-8")
    return project / "mooring.toml"


def env_for(src: str | None) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def adult_rows() -> list[dict[str, Any]]:
    with gzip.open(ADULT / "adult.test.csv.gz", "rt") as handle:
        header = handle.readline().strip().split(",")
        lines = [line.strip().split(",") for line in handle if line.strip()]
    rows = []
    for values in lines:
        row: dict[str, Any] = {}
        for name, value in zip(header[:-1], values[:-1], strict=True):
            if value == "?":
                row[name] = None
            else:
                row[name] = float(value) if name in NUMERIC else value
        rows.append(row)
    return rows


def post(url: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read()), dict(answer.headers)


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"mooring serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"mooring serve not ready after {timeout} s")


def drop_caches() -> bool:
    """Drop the OS page cache (root only); whether it was dropped."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def timed_call(
    config: Path, request_id: str, src: str | None, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One ``python -m mooring explain ID --json`` in a fresh process: wall, CPU, answer."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mooring",
            "explain",
            request_id,
            "-c",
            str(config),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env_for(src),
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"mooring explain {request_id} failed: {done.stderr[-2000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "answer": json.loads(done.stdout)}


def same(answer: dict[str, Any], served: dict[str, Any]) -> float:
    """The largest difference between two explanation bodies (inf: they differ in shape)."""
    got, want = answer["explanations"], served["explanations"]
    if len(got) != len(want):
        return float("inf")
    gap = 0.0
    for g, w in zip(got, want, strict=True):
        if list(g["attributions"]) != list(w["attributions"]):
            return float("inf")
        values = [abs(g["attributions"][c] - w["attributions"][c]) for c in g["attributions"]]
        values += [abs(g["baseline"] - w["baseline"]), abs(g["explained"] - w["explained"])]
        gap = max(gap, *values)
    return gap


def serve_and_send(
    config: Path, requests: int, src: str | None, calls: int
) -> tuple[list[str], dict[str, dict[str, Any]], float, dict[str, Any]]:
    """Serve the project, send the requests, explain three of them through the server,
    time ``mooring explain --server`` once the log holds them, stop it; (request ids in
    order, served explanations by id, seconds to ready, the --server calls)."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mooring", "serve", "-c", str(config), "--port", str(port),
         "--no-access-log"],
        env=env_for(src), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(port, proc)
        ready = time.perf_counter() - start
        rows = adult_rows()
        rng = np.random.default_rng(0)
        base = f"http://127.0.0.1:{port}/v1/models/income"
        ids: list[str] = []
        sent: dict[str, list[dict[str, Any]]] = {}
        at = 0
        for _ in range(requests):
            size = int(rng.integers(1, 5))
            instances = rows[at : at + size]
            at = (at + size) % (len(rows) - 5)
            _, headers = post(f"{base}:predict", {"instances": instances})
            request_id = {k.lower(): v for k, v in headers.items()}["x-request-id"]
            ids.append(request_id)
            sent[request_id] = instances
        served = {}
        for request_id in picks(ids):
            served[request_id], _ = post(f"{base}:explain", {"instances": sent[request_id]})
        logged(config, ids[-1])
        url = ("--server", f"http://127.0.0.1:{port}")
        asked = [timed_call(config, picks(ids)[i % 3], src, url) for i in range(calls)]
        gap = same(timed_call(config, ids[0], src, url)["answer"], served[ids[0]])
        by_url = {**summary(asked), "max_gap_to_served": gap}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return ids, served, ready, by_url


def logged(config: Path, request_id: str, timeout: float = 60.0) -> None:
    """Wait until the server's log holds ``request_id`` (it writes every log_flush_s)."""
    from mooring.errors import NotFoundError
    from mooring.formats._predictions import request_rows

    log = str(config.parent / ".mooring" / "predictions")
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            request_rows(log, "income", request_id)
            return
        except NotFoundError:
            time.sleep(0.5)
    raise SystemExit(f"request {request_id} not in the log after {timeout} s")


def picks(ids: list[str]) -> list[str]:
    """The oldest, a middle and the newest request."""
    return [ids[0], ids[len(ids) // 2], ids[-1]]


def lookups(log: Path, ids: list[str], copies: int) -> dict[str, Any]:
    """``request_rows`` through the index and by reading every file, on the log and on it
    repeated ``copies`` times."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mooring.errors import NotFoundError
    from mooring.formats import _predictions
    from mooring.formats._predictions import INDEX_FILES, RequestIndex, request_rows

    out: dict[str, Any] = {}
    big = log.parent / "predictions-repeated"
    shutil.copytree(log, big)
    files = sorted(big.rglob("part-*.parquet"))
    for copy in range(copies - 1):
        index = RequestIndex(str(big), files=INDEX_FILES)
        for path in files:
            table = pq.read_table(path)
            fresh = pa.array([f"{copy:04x}{uuid.uuid4().hex[4:]}" for _ in range(table.num_rows)])
            table = table.set_column(
                table.schema.get_field_index("request_id"), "request_id", fresh
            )
            # Newer than every file the server wrote (a later hour of the same day): a
            # scan newest first meets every copy before the server's own files.
            stamp = int(path.name.split("-")[1]) + (copy + 1) * 3_600_000
            target = path.with_name(f"part-{stamp}-{copy:08x}.parquet")
            pq.write_table(table, target)
            index.add(str(target), fresh.to_pylist())
        index.flush()
    for name, folder in (("log", log), (f"log x{copies}", big)):
        count = len(list(folder.rglob("part-*.parquet")))
        entry: dict[str, Any] = {"files": count, "index_files": len(list(folder.rglob("_ids-*")))}
        for label, request_id in (("oldest", ids[0]), ("newest", ids[-1]), ("absent", "f" * 32)):
            for way in ("index", "every file"):
                read: list[str] = []
                real_read = _predictions._read_columns
                real_candidates = _predictions._candidates

                def counted(
                    path: str, names: Any, read: list[str] = read, real: Any = real_read
                ) -> Any:
                    read.append(path)
                    return real(path, names)

                _predictions._read_columns = counted  # type: ignore[assignment]
                if way == "every file":
                    _predictions._candidates = lambda url, rid: (  # type: ignore[assignment]
                        p for _, p in _predictions._files(url)
                    )
                start = time.perf_counter()
                with contextlib.suppress(NotFoundError):
                    request_rows(str(folder), "income", request_id)
                seconds = time.perf_counter() - start
                _predictions._read_columns = real_read  # type: ignore[assignment]
                _predictions._candidates = real_candidates  # type: ignore[assignment]
                entry[f"{label} ({way})"] = {"files_read": len(read), "seconds": seconds}
        out[name] = entry
    return out


def summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [c["wall_s"] for c in calls]
    cpus = [c["cpu_s"] for c in calls]
    return {
        "calls": len(calls),
        "wall_s": walls,
        "wall_median_s": statistics.median(walls),
        "cpu_s": cpus,
        "cpu_median_s": statistics.median(cpus),
    }


def run_mode(config: Path, ids: list[str], calls: int, src: str | None) -> dict[str, Any]:
    dropped = drop_caches()
    chosen = picks(ids)
    cold = timed_call(config, chosen[0], src)
    warm = [timed_call(config, chosen[i % 3], src) for i in range(calls)]
    return {"cache_dropped": dropped, "cold": summary([cold]), "warm": summary(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_explain_request.json")
    parser.add_argument("--calls", type=int, default=6, help="warm calls per mode")
    parser.add_argument("--requests", type=int, default=2000, help="requests sent")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--copies", type=int, default=20, help="the log repeated for lookups")
    parser.add_argument("--baseline-src", help="another checkout's src, timed side by side")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "requests": args.requests,
    }
    root = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    try:
        config = make_project(root, args.epochs)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mooring", "run", "-c", str(config)],
            env=env_for(None), check=True, capture_output=True,
        )  # fmt: skip
        report["train_s"] = time.perf_counter() - start
        ids, served, ready, by_url = serve_and_send(config, args.requests, None, args.calls)
        report["serve_ready_s"] = ready
        report["url"] = by_url
        print(
            f"--server: median {by_url['wall_median_s']:.2f} s (cpu {by_url['cpu_median_s']:.2f}) "
            f"over {args.calls}; gap to served {by_url['max_gap_to_served']:.2g}",
            flush=True,
        )
        log = config.parent / ".mooring" / "predictions"
        report["log_files"] = len(list(log.rglob("part-*.parquet")))
        report["index_files"] = len(list(log.rglob("_ids-*")))
        modes = {"this tree": None}
        if args.baseline_src:
            modes["baseline"] = args.baseline_src
        report["modes"] = {}
        for name, src in modes.items():
            result = run_mode(config, ids, args.calls, src)
            first = timed_call(config, ids[0], src)["answer"]
            result["max_gap_to_served"] = same(first, served[ids[0]])
            report["modes"][name] = result
            print(
                f"{name}: cold {result['cold']['wall_median_s']:.2f} s "
                f"(cpu {result['cold']['cpu_median_s']:.2f}, cache dropped: "
                f"{result['cache_dropped']}); warm median {result['warm']['wall_median_s']:.2f} s "
                f"(cpu {result['warm']['cpu_median_s']:.2f}) over {args.calls}; "
                f"gap to served {result['max_gap_to_served']:.2g}",
                flush=True,
            )
        report["lookups"] = lookups(log, ids, args.copies)
        for name, entry in report["lookups"].items():
            print(name, json.dumps(entry), flush=True)
    finally:
        report["load_after"] = os.getloadavg()
        shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
