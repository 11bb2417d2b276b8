"""Benchmark: ``mooring serve`` driven past its capacity, with the HTTP stack's ceiling beside it.

One run builds the Adult model (one epoch, with ``bench_serving.py``'s functions) and
starts ``mooring serve -c mooring.toml --model-dir --schema --workers 1`` in its own process; the
``[serving]`` table of that mooring.toml holds ``max_in_flight`` and ``deadline_ms``
only when ``--max-in-flight`` / ``--deadline-ms`` are given (otherwise the server's
defaults apply). Then, each from a separate process:

1. **Ceiling**: ``wrk`` (closed loop, 32 connections, a Lua script POSTing real Adult
   test rows in turn) for ``--capacity-s`` against a trivial endpoint on the same stack
   (uvicorn + Starlette, a small JSON answer), so the capacity below can be read against
   what the HTTP stack itself does on this machine.
2. **Capacity**: the same ``wrk`` run against mooring's single-row
   ``POST /v1/models/income:predict``: 200s per second (non-2xx answers are not counted),
   p50/p90/p99 latency.
3. **Overload**: for each multiple of the capacity (``--multiples``, 2× and 4×), an
   open-loop run of ``--overload-s`` seconds by ``benchmarks/loadgen/openloop.c``
   (compiled here with ``gcc -O2``): requests are due on a fixed schedule whatever the
   answers, latency is measured from the scheduled time (no coordinated omission), a
   new keep-alive connection is opened when none is idle, up to ``--max-conn``; a request
   that finds none is "unsent" (the client's own saturation, reported). At these rates
   the generator polls between requests, so it keeps one CPU busy. Reported:

   * goodput: 200s answered within the schedule's window, per second, and its ratio to
     the capacity;
   * the share of scheduled requests answered 503 (shed), 504, any other status, lost
     with their connection, unsent, or still unanswered 10 s after the schedule ended;
   * p50/p99 of the 200s; p99 and maximum of the 503s, the maximum split into 503s that
     were a connection's first answer (which includes the connection's set-up: the
     generator opens one when every open connection is busy, i.e. while the server
     stalls) and 503s on connections already open, and the connections opened;
   * the server's peak RSS growth: VmRSS before the run against the highest of VmRSS
     sampled every 10 ms from ``/proc/<pid>/status`` during the run and of VmHWM (reset
     through ``/proc/<pid>/clear_refs`` before the run, where the kernel allows it);
   * recovery: from the moment the last request of the schedule was due (the generator
     says so on stderr; answers may still be arriving) until a lone request on a new
     client is answered 200 within 3× the p50 of the same lone request on the quiet
     server, measured before the overload;
   * the kernel's listen-queue overflows during the run (``TcpExtListenOverflows`` of
     ``/proc/net/netstat``, the whole network namespace): a dropped connection attempt
     is retried by the client's kernel after a second, which shows up as latency.
4. **Burst of fresh connections**: ``--burst`` requests (400) all due within 10 ms, each on
   a connection of its own opened for it, ``--burst-rounds`` times (3), against the
   trivial endpoint (while it runs for the ceiling) and against mooring (after the
   overload levels, so well past ``max_in_flight``): per status, the median over rounds of
   the p50 and of the slowest answer. A connection's first answer includes the server's
   accept and per-connection set-up, which the overload levels pay at their start (the
   generator opens its connections then); this cell shows what the HTTP stack alone
   takes for the same burst.

5. **Hostile clients** (``_hostile.py``): retry storms, normal clients during slow-body
   and pipelining attacks, and a **gRPC flood** (``--grpc-flood``, 300): that many
   Predict calls of 2 MiB each (real Adult rows, every column as text, so each is
   refused at the in-flight limit or invalid) sent at once on one channel, then one good
   call; their codes and the server's RSS growth at its peak and 2 s after.

Floors, checked and reported as pass/miss per level (never asserted): at 4× capacity
goodput ≥ 80% of capacity; successful p99 ≤ 2× the deadline (the one given, or the
server's default); every 503 answered within 50 ms; RSS growth ≤ 100 MiB; recovery < 1 s.

Everything shares one machine (the server, ``wrk`` and the generator), so the numbers
include that contention. The table is printed and the results are written to
``benchmarks/results/overload-<time>.json`` with the machine's description.

Usage::

    python benchmarks/bench_overload.py                 # full run (~2 minutes)
    python benchmarks/bench_overload.py --quick         # smoke run (2 s / 3 s cells)
    python benchmarks/bench_overload.py --max-in-flight 64 --deadline-ms 500
    python benchmarks/bench_overload.py --serving 'max_pipelined = 8'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _h2load import PREDICT as PREDICT_RPC  # TF Serving's Predict, as a gRPC method
from _hostile import (  # the hostile cells
    compile_closedloop,
    grpc_flood,
    invalid_predict,
    storms,
    under_attack,
)
from _wrk import lua_script, trivial_server, wrk  # the shared wrk runner and trivial endpoint
from bench_serving import (  # the shared model and server helpers
    NAME,
    RESULTS,
    adult_model,
    free_port,
    grpc_requests,
    request_rows,
    start_server,
    wait_ready,
)

LOADGEN = Path(__file__).resolve().parent / "loadgen" / "openloop.c"
PREDICT = f"/v1/models/{NAME}:predict"
DRAIN_S = 10.0  # how long the generator waits for answers after its schedule ends


def compile_loadgen(folder: Path) -> Path:
    """Build the open-loop generator with gcc into ``folder``; exit clearly without gcc."""
    if shutil.which("gcc") is None:
        raise SystemExit("gcc is needed to build benchmarks/loadgen/openloop.c")
    binary = folder / "openloop"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(LOADGEN)], check=True)
    return binary


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit (inherited by the server and the generator)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def listen_overflows() -> int | None:
    """TcpExtListenOverflows of this network namespace (None where unreadable)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(row["ListenOverflows"]) if "ListenOverflows" in row else None
    return None


class RssSampler(threading.Thread):
    """The highest VmRSS (KiB) of a process, read every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib = memory_kib(pid, "VmRSS")
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak_kib = max(self.peak_kib, memory_kib(self.pid, "VmRSS"))
            self.samples += 1


def lone_latencies(url: str, body: bytes, count: int = 50) -> list[float]:
    """Seconds per request, one at a time on one client (the quiet server's normal)."""
    times = []
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            start = time.perf_counter()
            client.post(url, content=body).raise_for_status()
            times.append(time.perf_counter() - start)
    return sorted(times)


def recovery(url: str, body: bytes, normal_s: float, limit_s: float = 30.0) -> dict[str, Any]:
    """Seconds from now until a lone request (a new client) is answered 200 within
    ``normal_s``; None if that did not happen within ``limit_s``."""
    start = time.perf_counter()
    probes = 0
    with httpx.Client(timeout=10) as client:
        while time.perf_counter() - start < limit_s:
            sent = time.perf_counter()
            probes += 1
            try:
                res = client.post(url, content=body)
            except httpx.TransportError:
                continue
            if res.status_code == 200 and time.perf_counter() - sent <= normal_s:
                return {"recovery_s": time.perf_counter() - start, "recovery_probes": probes}
    return {"recovery_s": None, "recovery_probes": probes}  # not within limit_s


def overload(
    binary: Path,
    port: int,
    pid: int,
    request: Path,
    rate: float,
    seconds: float,
    max_conn: int,
    normal_s: float,
) -> dict[str, Any]:
    """One open-loop run, with the server's memory sampled and recovery timed."""
    before = memory_kib(pid, "VmRSS")
    try:  # reset VmHWM to the current RSS, so the run's own peak can be read after it
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    overflows = listen_overflows()
    sampler = RssSampler(pid)
    sampler.start()
    cmd = [str(binary), "127.0.0.1", str(port), str(request), f"{rate:.1f}", str(seconds),
           str(max_conn), str(DRAIN_S)]  # fmt: skip
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert gen.stderr is not None
    notes = []
    for line in gen.stderr:  # until the last request is due
        if line.strip() == "schedule done":
            break
        notes.append(line)
    probe = recovery(f"http://127.0.0.1:{port}{PREDICT}", request_body(request), normal_s)
    out, err = gen.communicate(timeout=DRAIN_S + 120)
    sampler.done.set()
    sampler.join()
    if gen.returncode != 0:
        raise SystemExit(f"openloop failed ({gen.returncode}): {''.join(notes)}{err}")
    result: dict[str, Any] = json.loads(out)
    peak = sampler.peak_kib
    if hwm_reset:
        peak = max(peak, memory_kib(pid, "VmHWM"))
    after = listen_overflows()
    result.update(probe)
    result["rss_before_mib"] = before / 1024
    result["rss_growth_mib"] = (peak - before) / 1024
    result["rss_samples"] = sampler.samples
    result["rss_hwm_used"] = hwm_reset
    result["listen_overflows"] = None if overflows is None or after is None else after - overflows
    return result


BURST_S = 0.01  # the burst's requests are all due within this many seconds


def burst(binary: Path, port: int, request: Path, connections: int, rounds: int) -> dict[str, Any]:
    """``connections`` requests due within 10 ms, each on a fresh connection, ``rounds`` times.

    Per status: answers over all rounds, and the medians over rounds of the p50 and of the
    slowest answer (ms from when each request was due).
    """
    runs = []
    for _ in range(rounds):
        cmd = [str(binary), "127.0.0.1", str(port), str(request),
               f"{connections / BURST_S:.1f}", str(BURST_S), str(connections), "5"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(out))
        time.sleep(0.5)  # let the connections close
    statuses: dict[str, Any] = {}
    for status in sorted({s for run in runs for s in run["statuses"]}):
        cells = [run["statuses"][status] for run in runs if status in run["statuses"]]
        p50s = sorted(c["p50_ms"] for c in cells)
        maxes = sorted(c["max_ms"] for c in cells)
        statuses[status] = {
            "count": sum(c["count"] for c in cells),
            "p50_ms_median": p50s[len(p50s) // 2],
            "max_ms_median": maxes[len(maxes) // 2],
            "max_ms_worst": maxes[-1],
        }
    lost = sum(run["errors"] + run["unanswered"] + run["unsent"] for run in runs)
    return {"connections": connections, "rounds": rounds, "lost": lost, "statuses": statuses}


def request_body(request: Path) -> bytes:
    return request.read_bytes().split(b"\r\n\r\n", 1)[1]


def summarize(run: dict[str, Any], capacity: float, deadline_ms: float) -> dict[str, Any]:
    statuses = run["statuses"]
    ok = statuses.get("200", {})
    shed = statuses.get("503", {})
    scheduled = run["scheduled"]
    goodput = ok.get("in_window", 0) / run["seconds"]
    return {
        "offered_rps": run["offered_rate"],
        "seconds": run["seconds"],
        "scheduled": scheduled,
        "goodput_rps": goodput,
        "goodput_over_capacity": goodput / capacity,
        "ok_after_window": ok.get("count", 0) - ok.get("in_window", 0),
        "shed_share": shed.get("count", 0) / scheduled,
        "timeouts_504": statuses.get("504", {}).get("count", 0),
        "timeout_504_share": statuses.get("504", {}).get("count", 0) / scheduled,
        "other_statuses": {
            k: v["count"] for k, v in statuses.items() if k not in ("200", "503", "504")
        },
        "connection_errors": run["errors"],
        "unsent_by_client": run["unsent"],
        "unanswered": run["unanswered"],
        "ok_p50_ms": ok.get("p50_ms"),
        "ok_p99_ms": ok.get("p99_ms"),
        "ok_max_ms": ok.get("max_ms"),
        "shed_p50_ms": shed.get("p50_ms"),
        "shed_p99_ms": shed.get("p99_ms"),
        "shed_max_ms": shed.get("max_ms"),
        # Where the slowest 503 came from: a connection's first answer includes its set-up
        # (connections are opened when every open one is busy, i.e. while the server stalls).
        "shed_max_first_on_connection_ms": shed.get("max_first_on_connection_ms"),
        "shed_max_later_on_connection_ms": shed.get("max_later_on_connection_ms"),
        "connections_opened": run.get("connections_opened"),
        "rss_before_mib": run["rss_before_mib"],
        "rss_growth_mib": run["rss_growth_mib"],
        "rss_samples": run["rss_samples"],
        "rss_hwm_used": run["rss_hwm_used"],
        "recovery_s": run["recovery_s"],
        "recovery_probes": run["recovery_probes"],
        "listen_overflows": run["listen_overflows"],
        "deadline_ms": deadline_ms,
        "loadgen": run,
    }


FLOORS = {  # each floor's name → its short label in the table
    "goodput >= 80% of capacity at 4x": "good",
    "ok p99 <= 2x deadline": "p99",
    "every 503 within 50 ms": "503",
    "RSS growth <= 100 MiB": "rss",
    "recovery < 1 s": "rec",
}


def floors(cell: dict[str, Any]) -> dict[str, bool | None]:
    """Pass/miss of each floor for one level (None: not applicable at this level)."""
    return {
        "goodput >= 80% of capacity at 4x": (
            cell["goodput_over_capacity"] >= 0.8 if cell["multiple"] >= 4 else None
        ),
        "ok p99 <= 2x deadline": (
            cell["ok_p99_ms"] is not None and cell["ok_p99_ms"] <= 2 * cell["deadline_ms"]
        ),
        "every 503 within 50 ms": (cell["shed_max_ms"] or 0) <= 50,
        "RSS growth <= 100 MiB": cell["rss_growth_mib"] <= 100,
        "recovery < 1 s": cell["recovery_s"] is not None and cell["recovery_s"] < 1.0,
    }


def machine() -> dict[str, Any]:
    def version(cmd: list[str]) -> str | None:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError:
            return None
        text = (proc.stdout or proc.stderr).strip()
        return text.splitlines()[0] if text else None

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": version(["wrk", "-v"]),
        "gcc": version(["gcc", "--version"]),
    }


def print_table(report: dict[str, Any]) -> None:
    ceiling, capacity = report["ceiling_trivial_endpoint"], report["capacity"]
    print(
        f"ceiling (trivial uvicorn + Starlette endpoint, wrk c=32): {ceiling['rps']:,.0f} req/s, "
        f"p50 {ceiling.get('p50_ms', float('nan')):.2f} ms, "
        f"p99 {ceiling.get('p99_ms', float('nan')):.2f} ms"
    )
    print(
        f"capacity (mooring, 1 row, wrk c=32): {capacity['rps']:,.0f} req/s "
        f"({report['capacity_over_ceiling']:.0%} of the ceiling), "
        f"p50 {capacity.get('p50_ms', float('nan')):.2f} ms, "
        f"p99 {capacity.get('p99_ms', float('nan')):.2f} ms, non-2xx {capacity['non_2xx']}"
    )
    s = report["settings"]
    print(
        f"overload: {s['overload_s']:g} s per level, max_in_flight "
        f"{s['max_in_flight'] or 'server default'}, deadline {s['effective_deadline_ms']:g} ms"
        f"{'' if s['deadline_ms'] else ' (server default)'}, up to {s['max_conn']} connections"
    )
    print(
        f"{'x':>3} {'offered':>8} {'goodput':>8} {'/cap':>5} {'shed':>6} {'504':>5} "
        f"{'other':>6} {'unsent':>7} {'ok p50':>7} {'ok p99':>7} {'503 max':>8} "
        f"{'RSS MiB':>7} {'recover':>7}  floors"
    )

    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f}"

    for c in report["overload"]:
        other = sum(c["other_statuses"].values()) + c["connection_errors"] + c["unanswered"]
        recover = "never" if c["recovery_s"] is None else f"{c['recovery_s']:.2f}"
        marks = " ".join(
            f"{FLOORS[k]}:{'-' if ok is None else 'pass' if ok else 'MISS'}"
            for k, ok in c["floors"].items()
        )
        print(
            f"{c['multiple']:>3g} {c['offered_rps']:>8,.0f} {c['goodput_rps']:>8,.0f} "
            f"{c['goodput_over_capacity']:>5.0%} {c['shed_share']:>6.1%} "
            f"{c['timeouts_504']:>5} {other:>6} {c['unsent_by_client']:>7} "
            f"{ms(c['ok_p50_ms']):>7} {ms(c['ok_p99_ms']):>7} {ms(c['shed_max_ms']):>8} "
            f"{c['rss_growth_mib']:>7.1f} {recover:>7}  {marks}"
        )
    for c in report["overload"]:
        print(
            f"  {c['multiple']:g}x: {c['connections_opened']} connections opened; slowest 503 "
            f"on a connection's first request {ms(c['shed_max_first_on_connection_ms'])} ms, "
            f"on a later one {ms(c['shed_max_later_on_connection_ms'])} ms"
        )
    for who, cell in report["burst"].items():
        if cell is None:
            continue
        answers = ", ".join(
            f"{status}: {v['count']} answers, p50 {v['p50_ms_median']:.1f} ms, slowest "
            f"{v['max_ms_median']:.1f} ms (worst round {v['max_ms_worst']:.1f})"
            for status, v in cell["statuses"].items()
        )
        print(
            f"  burst of {cell['connections']} fresh connections ({cell['rounds']} rounds, "
            f"medians), {who.replace('_', ' ')}: {answers}; lost {cell['lost']}"
        )
    print(
        "  504, other, unsent: counts; other: other statuses + connections lost + unanswered; "
        "unsent: client-side saturation; floors: "
        + "; ".join(f"{v} = {k}" for k, v in FLOORS.items())
    )
    print(
        "  latency from each request's scheduled time; goodput: 200s answered within the "
        "window; recover: s from the schedule's end to a lone 200 within normal latency"
    )
    print_hostile(report)


def print_hostile(report: dict[str, Any]) -> None:
    """The retry storms and the attacks, after the open-loop levels."""
    if report.get("storms"):
        print("retry storms (closed loop, closedloop.c; goodput over the c=32 capacity):")
        for c in report["storms"]:
            kind = "honour" if c["honour_retry_after"] else "ignore"
            p99 = c["ok_p99_ms"]
            print(
                f"  {c['multiple']:>2}x ({c['connections']} conn, {kind} Retry-After): "
                f"goodput {c['goodput_rps']:,.0f} req/s ({c['goodput_over_capacity']:.0%}), "
                f"ok p99 {'—' if p99 is None else f'{p99:.1f}'} ms, 503s {c['refused_503']}, "
                f"other {sum(c['other_statuses'].values())}, 5xx charged to a version "
                f"{c['charged_5xx']:g}"
            )
    attacked = report.get("under_attack")
    if attacked:
        print("normal clients (wrk c=8) alone and during attacks:")
        for name, run in attacked.items():
            extra = (
                ""
                if name == "quiet"
                else f", server RSS +{run['rss_growth_mib']:.1f} MiB "
                f"(+{run['rss_after_mib']:.1f} after)"
            )
            print(
                f"  {name}: {run['ok_share']:.1%} 200s, p50 {run.get('p50_ms', float('nan')):.2f}"
                f" ms, p99 {run.get('p99_ms', float('nan')):.2f} ms{extra}"
            )
    flood = report.get("grpc_flood")
    if flood:
        print(
            f"gRPC flood ({flood['calls']} failing calls of {flood['message_bytes'] / 2**20:.1f}"
            f" MiB at once): {flood['codes']} in {flood['seconds']:.1f} s, server RSS "
            f"+{flood['rss_growth_mib']:.0f} MiB at its peak, +{flood['rss_after_mib']:.0f} "
            f"after; a good call then: {flood['good_call_after']}"
        )


def main() -> None:  # noqa: PLR0915 - the command line, then each phase in the order it runs
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument(
        "--max-in-flight", type=int, default=None, help="[serving] max_in_flight (if given)"
    )
    parser.add_argument(
        "--deadline-ms", type=float, default=None, help="[serving] deadline_ms (if given)"
    )
    parser.add_argument(
        "--serving",
        action="append",
        default=[],
        metavar="'KEY = VALUE'",
        help="one more [serving] line (TOML), e.g. --serving 'max_pipelined = 8'",
    )
    parser.add_argument("--capacity-s", type=float, default=None, help="seconds per wrk run")
    parser.add_argument("--overload-s", type=float, default=None, help="seconds per level")
    parser.add_argument("--multiples", default="2,4", help="levels, as multiples of capacity")
    parser.add_argument("--max-conn", type=int, default=4096, help="generator's connections")
    parser.add_argument(
        "--burst", type=int, default=400, help="fresh connections in the burst cell (0: none)"
    )
    parser.add_argument("--burst-rounds", type=int, default=3, help="rounds of the burst cell")
    parser.add_argument(
        "--storms", default="4,16", help="retry storms, as multiples of 32 connections"
    )
    parser.add_argument("--storm-s", type=float, default=None, help="seconds per storm")
    parser.add_argument(
        "--attack-s", type=float, default=None, help="seconds of normal traffic per attack"
    )
    parser.add_argument(
        "--grpc-flood",
        type=int,
        default=300,
        help="failing 2 MiB gRPC calls sent at once in the last cell (0: none)",
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--work", type=Path, default=None, help="keep the trained model here and reuse it"
    )
    parser.add_argument("--trivial-server", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trivial_server:
        trivial_server(int(args.trivial_server[0]))
        return
    capacity_s = args.capacity_s or (2.0 if args.quick else 10.0)
    overload_s = args.overload_s or (3.0 if args.quick else 20.0)
    storm_s = args.storm_s or (2.0 if args.quick else 20.0)
    attack_s = args.attack_s or (2.0 if args.quick else 10.0)
    storm_multiples = [int(m) for m in args.storms.split(",") if m]
    pause_s = 1.0 if args.quick else 3.0
    multiples = [float(m) for m in args.multiples.split(",")]
    for tool in ("wrk", "gcc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (Debian: apt-get install {tool})")
    fd_limit = raise_fd_limit(args.max_conn + 1024)
    from mooring.config import ServingConfig

    effective_deadline = args.deadline_ms or ServingConfig().deadline_ms
    settings = []  # [serving] lines of the server's mooring.toml: only what was asked for
    if args.deadline_ms is not None:
        settings.append(f"deadline_ms = {args.deadline_ms}")
    if args.max_in_flight is not None:
        settings.append(f"max_in_flight = {args.max_in_flight}")
    settings.extend(args.serving)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        binary = compile_loadgen(Path(tmp))
        closed = compile_closedloop(Path(tmp))
        model_dir = adult_model(work)
        bodies = [orjson.dumps({"instances": [r]}) for r in request_rows(model_dir, 64)]
        script = lua_script(Path(tmp), bodies)
        request = Path(tmp) / "request.http"
        request.write_bytes(
            f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(bodies[0])}\r\n\r\n".encode()
            + bodies[0]
        )
        load_start = os.getloadavg()

        # The stack's ceiling first, alone on the machine.
        port = free_port()
        trivial = subprocess.Popen(
            [sys.executable, __file__, "--trivial-server", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}{PREDICT}", trivial)
            ceiling = wrk(f"http://127.0.0.1:{port}{PREDICT}", script, capacity_s)
            burst_ceiling = (
                burst(binary, port, request, args.burst, args.burst_rounds) if args.burst else None
            )
        finally:
            trivial.terminate()
            trivial.wait()
        print(f"ceiling: {ceiling['rps']:,.0f} req/s", flush=True)

        grpc_port = free_port()
        proc, port, _ = start_server(
            "mooring", model_dir, work, settings, grpc_port=grpc_port, workers=1
        )
        url = f"http://127.0.0.1:{port}{PREDICT}"
        try:
            quiet = lone_latencies(url, bodies[0])
            normal_s = 3 * quiet[len(quiet) // 2]
            capacity = wrk(url, script, capacity_s)
            print(f"capacity: {capacity['rps']:,.0f} req/s", flush=True)
            if capacity["rps"] <= 0:
                raise SystemExit(f"mooring answered no 200 under wrk: {capacity}")
            cells = []
            for multiple in multiples:
                time.sleep(pause_s)  # let the previous run's connections close
                rate = multiple * capacity["rps"]
                run = overload(
                    binary, port, proc.pid, request, rate, overload_s, args.max_conn, normal_s
                )
                cell = {"multiple": multiple, **summarize(run, capacity["rps"], effective_deadline)}
                cell["floors"] = floors(cell)
                cells.append(cell)
                print(
                    f"{multiple:g}x: goodput {cell['goodput_rps']:,.0f} req/s, "
                    f"shed {cell['shed_share']:.1%}",
                    flush=True,
                )
            time.sleep(pause_s)
            burst_mooring = (
                burst(binary, port, request, args.burst, args.burst_rounds) if args.burst else None
            )
            storm_cells = storms(
                closed,
                port,
                request,
                quiet_connections=32,
                multiples=storm_multiples,
                seconds=storm_s,
                capacity_rps=capacity["rps"],
                pause_s=pause_s,
            )
            time.sleep(pause_s)
            attacked = under_attack(wrk, url, script, port, proc.pid, request, attack_s)
            flood = None
            if args.grpc_flood:
                time.sleep(pause_s)
                rows = request_rows(model_dir, 64)
                flood = grpc_flood(
                    grpc_port,
                    proc.pid,
                    PREDICT_RPC,
                    invalid_predict(rows, NAME, 2 * 2**20),
                    args.grpc_flood,
                    grpc_requests(rows[:1], Path(tmp))[0].read_bytes(),
                )
                print(f"gRPC flood: {flood['codes']}", flush=True)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            proc.terminate()
            proc.wait()

    refused = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'mooring_requests_refused_total\{reason="(\w+)"\} ([\d.e+]+)', metrics
        )
    }
    report = {
        "benchmark": "overload",
        "quick": args.quick,
        "machine": {
            **machine(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
            "open_files_limit": fd_limit,
        },
        "settings": {
            "max_in_flight": args.max_in_flight,
            "deadline_ms": args.deadline_ms,
            "effective_deadline_ms": effective_deadline,
            "serving_lines": settings,
            "capacity_s": capacity_s,
            "overload_s": overload_s,
            "multiples": multiples,
            "max_conn": args.max_conn,
            "drain_s": DRAIN_S,
            "storm_s": storm_s,
            "storm_multiples": storm_multiples,
            "attack_s": attack_s,
        },
        "ceiling_trivial_endpoint": ceiling,
        "capacity": capacity,
        "capacity_over_ceiling": capacity["rps"] / ceiling["rps"],
        "quiet_lone_p50_ms": quiet[len(quiet) // 2] * 1000,
        "recovery_normal_ms": normal_s * 1000,
        "overload": cells,
        "burst": {"trivial_endpoint": burst_ceiling, "mooring": burst_mooring},
        "storms": storm_cells,
        "under_attack": attacked,
        "grpc_flood": flood,
        "refused_total": refused,
    }
    print()
    print_table(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"overload-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
