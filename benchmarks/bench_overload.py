"""Benchmark: ``mooring serve`` driven past its capacity, with the HTTP stack's ceiling beside it.

One run builds the Adult model (one epoch, as ``bench_serving.py`` does) and starts
``mooring serve --model-dir --schema`` in its own process with ``[serving]
max_in_flight`` and ``deadline_ms`` as given. Then, from separate processes:

1. **Capacity**: ``wrk`` (Debian's, closed loop) at c=32 for ``--capacity-s`` on single-row
   ``:predict`` requests (real Adult test rows; a Lua script rotates them).
2. **Ceiling**: the same ``wrk`` run against a trivial endpoint (a small JSON answer) on
   the same stack (uvicorn + Starlette + uvloop + httptools), so the capacity can be read
   against what the HTTP stack itself can do on this machine.
3. **Overload**: for each multiple (2×, 4× capacity) an open-loop run of ``--overload-s``
   seconds by ``benchmarks/loadgen/openloop.c`` (compiled here with ``gcc -O2``):
   requests are due on a fixed schedule whatever the answers, latency is measured from
   the scheduled time (no coordinated omission), up to ``--max-conn`` connections.
   Reported: goodput (200s per second), its ratio to capacity, the share shed with 503
   (and any 504), p50/p99 of the 200s, the slowest 503, the server's peak RSS growth
   (VmHWM, reset before the run, against VmRSS before it) and the time to recover: from
   the end of the run until a lone request is answered 200 within 3× its quiet p50.

The floors checked (and reported, never asserted): at 4× capacity goodput ≥ 80% of
capacity, successful p99 ≤ 2× the deadline, every 503 within 50 ms, RSS growth ≤ 100 MiB,
recovery < 1 s. Everything shares one machine (the load generator too), so the numbers
include that contention. Results go to ``benchmarks/results/overload-<time>.json``.

Usage::

    python benchmarks/bench_overload.py                 # full run (~2 minutes)
    python benchmarks/bench_overload.py --quick         # smoke run
    python benchmarks/bench_overload.py --max-in-flight 64 --deadline-ms 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import (  # the shared model and server helpers
    NAME,
    RESULTS,
    build_adult_model,
    free_port,
    request_rows,
    start_server,
    wait_ready,
)

LOADGEN = Path(__file__).resolve().parent / "loadgen" / "openloop.c"
PREDICT = f"/v1/models/{NAME}:predict"


def trivial_server(port: int) -> None:
    """The HTTP stack alone: uvicorn + Starlette answering a small JSON document."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def ok(request: Any) -> Response:
        await request.body()
        return Response(b'{"predictions": [0.5]}', media_type="application/json")

    app = Starlette(routes=[Route(PREDICT, ok, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def compile_loadgen(folder: Path) -> Path:
    if shutil.which("gcc") is None:
        raise SystemExit("gcc is needed to build benchmarks/loadgen/openloop.c")
    binary = folder / "openloop"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(LOADGEN)], check=True)
    return binary


def wrk(url: str, body_lua: Path, seconds: float, connections: int = 32) -> dict[str, Any]:
    """Closed-loop wrk run: requests/s and latency percentiles."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(body_lua),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    refused = int(non2xx.group(1)) if non2xx else 0
    # Capacity is what was answered 200: a refused request is not served.
    rps *= (total - refused) / total if total else 0.0
    latency = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            latency[f"p{pct}_ms"] = float(m.group(1)) * scale
    return {"rps": rps, "non_2xx": refused, **latency}


def lua_script(folder: Path, bodies: list[bytes]) -> Path:
    """A wrk script that POSTs the bodies in turn."""
    quoted = ",\n".join("[==[" + b.decode() + "]==]" for b in bodies)
    script = folder / "rows.lua"
    script.write_text(
        "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
        f"local bodies = {{{quoted}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    return script


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def quiet_p50(url: str, body: bytes, count: int = 50) -> float:
    times = []
    with httpx.Client() as client:
        for _ in range(count):
            start = time.perf_counter()
            client.post(url, content=body)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def recovery_s(url: str, body: bytes, normal_s: float, limit_s: float = 30.0) -> float:
    """Seconds from now until a lone request is answered 200 within 3× the quiet p50."""
    start = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        while time.perf_counter() - start < limit_s:
            sent = time.perf_counter()
            res = client.post(url, content=body)
            if res.status_code == 200 and time.perf_counter() - sent <= 3 * normal_s:
                return time.perf_counter() - start
    return float("inf")


def overload(
    binary: Path, port: int, pid: int, request: Path, rate: float, seconds: float, max_conn: int
) -> dict[str, Any]:
    before = memory_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    out = subprocess.run(
        [
            str(binary),
            "127.0.0.1",
            str(port),
            str(request),
            f"{rate:.1f}",
            str(seconds),
            str(max_conn),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    result["rss_growth_mib"] = (memory_kib(pid, "VmHWM") - before) / 1024
    return result


def summarize(run: dict[str, Any], capacity: float, deadline_ms: float) -> dict[str, Any]:
    statuses = run["statuses"]
    ok = statuses.get("200", {})
    shed = statuses.get("503", {})
    answered = sum(s["count"] for s in statuses.values())
    scheduled = run["scheduled"]
    goodput = ok.get("count", 0) / run["seconds"]
    return {
        "offered_rps": run["offered_rate"],
        "goodput_rps": goodput,
        "goodput_over_capacity": goodput / capacity,
        "shed_share": shed.get("count", 0) / scheduled,
        "timeout_504_share": statuses.get("504", {}).get("count", 0) / scheduled,
        "other_statuses": {k: v["count"] for k, v in statuses.items() if k not in ("200", "503")},
        "unanswered": scheduled - answered - run["unsent"],
        "unsent_by_client": run["unsent"],
        "connection_errors": run["errors"],
        "ok_p50_ms": ok.get("p50_ms"),
        "ok_p99_ms": ok.get("p99_ms"),
        "shed_p99_ms": shed.get("p99_ms"),
        "shed_max_ms": shed.get("max_ms"),
        "rss_growth_mib": run["rss_growth_mib"],
        "recovery_s": run["recovery_s"],
        "deadline_ms": deadline_ms,
    }


def floors(cell: dict[str, Any]) -> dict[str, bool]:
    return {
        "goodput >= 80% of capacity": cell["goodput_over_capacity"] >= 0.8,
        "ok p99 <= 2x deadline": (cell["ok_p99_ms"] or 0) <= 2 * cell["deadline_ms"],
        "every 503 within 50 ms": (cell["shed_max_ms"] or 0) <= 50,
        "RSS growth <= 100 MiB": cell["rss_growth_mib"] <= 100,
        "recovery < 1 s": cell["recovery_s"] < 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--max-in-flight", type=int, default=None)
    parser.add_argument("--deadline-ms", type=float, default=1000.0)
    parser.add_argument("--capacity-s", type=float, default=10.0)
    parser.add_argument("--overload-s", type=float, default=20.0)
    parser.add_argument("--multiples", default="2,4")
    parser.add_argument("--max-conn", type=int, default=4096)
    parser.add_argument(
        "--work", type=Path, default=None, help="keep the trained model here and reuse it"
    )
    parser.add_argument("--trivial-server", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trivial_server:
        trivial_server(int(args.trivial_server[0]))
        return
    if args.quick:
        args.capacity_s, args.overload_s = 2.0, 3.0
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        binary = compile_loadgen(work)
        built = work / "model_dir.txt"
        if built.exists():
            model_dir = Path(built.read_text())
        else:
            model_dir = build_adult_model(work)
            built.write_text(str(model_dir))
        bodies = [orjson.dumps({"instances": [r]}) for r in request_rows(model_dir, 64)]
        script = lua_script(work, bodies)
        request = work / "request.http"
        request.write_bytes(
            f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(bodies[0])}\r\n\r\n".encode()
            + bodies[0]
        )
        settings = [f"deadline_ms = {args.deadline_ms}"]
        if args.max_in_flight is not None:
            settings.append(f"max_in_flight = {args.max_in_flight}")

        # The stack's ceiling first, alone on the machine.
        port = free_port()
        trivial = subprocess.Popen(
            [sys.executable, __file__, "--trivial-server", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}{PREDICT}", trivial)
            ceiling = wrk(f"http://127.0.0.1:{port}{PREDICT}", script, args.capacity_s)
        finally:
            trivial.terminate()
            trivial.wait()

        proc, port, _ = start_server("mooring", model_dir, work, settings)
        url = f"http://127.0.0.1:{port}{PREDICT}"
        try:
            quiet = quiet_p50(url, bodies[0])
            capacity = wrk(url, script, args.capacity_s)
            cells = []
            for multiple in (float(m) for m in args.multiples.split(",")):
                rate = multiple * capacity["rps"]
                run = overload(
                    binary, port, proc.pid, request, rate, args.overload_s, args.max_conn
                )
                run["recovery_s"] = recovery_s(url, bodies[0], quiet)
                cell = {"multiple": multiple, **summarize(run, capacity["rps"], args.deadline_ms)}
                cell["floors"] = floors(cell)
                cells.append(cell)
                time.sleep(2)
            door = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            proc.terminate()
            proc.wait()

    refused = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'mooring_requests_refused_total\{reason="(\w+)"\} ([\d.e+]+)', door)
    }
    result = {
        "benchmark": "overload",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "max_in_flight": args.max_in_flight,
            "deadline_ms": args.deadline_ms,
            "capacity_s": args.capacity_s,
            "overload_s": args.overload_s,
            "max_conn": args.max_conn,
        },
        "ceiling_trivial_endpoint": ceiling,
        "capacity": capacity,
        "capacity_over_ceiling": capacity["rps"] / ceiling["rps"],
        "quiet_p50_ms": quiet * 1000,
        "overload": cells,
        "refused_total": refused,
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"overload-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"ceiling (trivial endpoint, wrk c=32): {ceiling['rps']:.0f} req/s")
    print(
        f"capacity (mooring, wrk c=32): {capacity['rps']:.0f} req/s "
        f"({capacity['rps'] / ceiling['rps']:.0%} of the ceiling), p99 "
        f"{capacity.get('p99_ms', float('nan')):.1f} ms"
    )
    print(
        f"{'x':>3} {'offered':>8} {'goodput':>8} {'/cap':>5} {'shed':>6} {'504':>5} "
        f"{'ok p50':>7} {'ok p99':>7} {'503 p99':>8} {'503 max':>8} {'RSS MiB':>8} {'recover':>8}"
    )
    for c in cells:
        print(
            f"{c['multiple']:>3.0f} {c['offered_rps']:>8.0f} {c['goodput_rps']:>8.0f} "
            f"{c['goodput_over_capacity']:>5.0%} {c['shed_share']:>6.1%} "
            f"{c['timeout_504_share']:>5.1%} {c['ok_p50_ms'] or 0:>7.1f} "
            f"{c['ok_p99_ms'] or 0:>7.1f} "
            f"{c['shed_p99_ms'] or 0:>8.1f} {c['shed_max_ms'] or 0:>8.1f} "
            f"{c['rss_growth_mib']:>8.1f} {c['recovery_s']:>8.2f}"
        )
        missed = [k for k, ok in c["floors"].items() if not ok]
        print("    floors: " + ("all met" if not missed else "missed: " + "; ".join(missed)))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
