"""Benchmark: a normal client beside floods of the door (tiny chunks, 4 MiB bodies, idle sockets).

One run builds the Adult model (one epoch, with ``bench_serving.py``'s functions; reused
from ``--work``) and starts ``mooring serve --model-dir --schema --workers 2`` with the
default ``[serving]`` limits. A **normal client** (this process, one thread) then POSTs
one real Adult row to ``/v1/models/income:predict``, 10 ms apart, in turn on a keep-alive
connection of its own (as a client library's pool does; opened again after a failure, which
counts as one) and on a new connection (which meets the accept queue and either worker),
with a 10 s timeout: alone
first, then beside each attack, each from a process of its own (asyncio, raw sockets),
started ``--settle-s`` before the client's window:

* ``tiny_chunks``: 4 connections, each sending a 3.9 MiB chunked body in chunks of 6
  data bytes (``6\\r\\n......\\r\\n``: framing within its data), as fast as the server
  reads, again and again.
* ``large_bodies``: 64 connections, each sending 4 MiB bodies (real rows, ``age`` as
  text: answered 400 once read and parsed) back to back, a new connection when one closes.
* ``idle_sockets``: 9,000 connections that send nothing, each opened again as soon as the
  server closes it (the process's open-file limit is raised for them).

Per scenario: the share of the client's requests answered 200, p50 and p99 of all its
requests (a timeout counts as 10 s), the worst, the server's CPU seconds, the kernel's
listen-queue overflows, and p99 against the unloaded p99 measured just before the attack
(for half the window: the machine is shared, and its load moves). The floor (reported,
never asserted): ≥ 95% 200s and p99 ≤ 3× that unloaded p99.

Everything shares one machine (server, attackers and client), so the numbers include
that contention. The table is printed; the JSON goes to
``benchmarks/results/door-floods-<label>.json``.

Usage::

    python benchmarks/bench_door_floods.py --label now --work build/door-work
    python benchmarks/bench_door_floods.py --seconds 5 --only tiny_chunks   # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hostile import large_invalid  # a large body answered 400 once read
from bench_overload import listen_overflows  # the kernel's dropped connection attempts
from bench_serving import (  # the shared model and server helpers
    PREDICT,
    RESULTS,
    adult_model,
    request_rows,
    spawn_server,
    stop_server,
)

TIMEOUT_S = 10.0  # the normal client's timeout (a timeout counts as this long)
GAP_S = 0.01  # between the normal client's requests
SCENARIOS = ("tiny_chunks", "large_bodies", "idle_sockets")
CHUNK_BODY = int(3.9 * 2**20)
LARGE_BODY = 4 * 2**20 - 4096


# -- the attackers (each in a process of its own: --attack KIND) ---------------------------
async def _read_answers(reader: asyncio.StreamReader) -> None:
    """Read and drop whatever the server answers until it closes."""
    while await reader.read(65536):
        pass


async def _tiny_chunks(port: int, body: bytes, connections: int) -> None:
    head = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    pieces = [b"6\r\n" + body[i : i + 6] + b"\r\n" for i in range(0, len(body) - 5, 6)]
    rest = body[len(pieces) * 6 :]
    last = b"%x\r\n%s\r\n" % (len(rest), rest) if rest else b""
    framed = b"".join(pieces) + last + b"0\r\n\r\n"

    async def one() -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(head)
                for at in range(0, len(framed), 65536):
                    writer.write(framed[at : at + 65536])
                    await writer.drain()
                await asyncio.wait_for(reader.read(65536), 30)
                writer.close()
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one() for _ in range(connections)))


async def _large_bodies(port: int, request: bytes, connections: int) -> None:
    async def one() -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                while True:
                    writer.write(request)
                    await writer.drain()
                    answer = await asyncio.wait_for(reader.read(65536), 30)
                    if not answer or b"connection: close" in answer.lower():
                        break
                writer.close()
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one() for _ in range(connections)))


async def _idle_sockets(port: int, connections: int) -> None:
    opened = 0

    async def one() -> None:
        nonlocal opened
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                opened += 1
                await _read_answers(reader)  # until the server closes it
                writer.close()
            except OSError:
                await asyncio.sleep(0.05)

    tasks = []
    for i in range(connections):
        tasks.append(asyncio.ensure_future(one()))
        if i % 200 == 199:
            await asyncio.sleep(0.01)  # a ramp, so the listen queue is not the attack
    await asyncio.gather(*tasks)


def attack(kind: str, port: int, payload: Path | None) -> None:
    """Run one attack until killed; 'ready' on stderr once it is under way."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print("ready", file=sys.stderr, flush=True)
    if kind == "tiny_chunks":
        assert payload is not None
        asyncio.run(_tiny_chunks(port, payload.read_bytes(), 4))
    elif kind == "large_bodies":
        assert payload is not None
        asyncio.run(_large_bodies(port, payload.read_bytes(), 64))
    elif kind == "idle_sockets":
        asyncio.run(_idle_sockets(port, 9000))
    else:
        raise SystemExit(f"unknown attack {kind!r}")


# -- the normal client ---------------------------------------------------------------------
def normal(port: int, body: bytes, seconds: float) -> dict[str, Any]:
    """One row at a time for ``seconds``, in turn on a keep-alive connection of its own
    (opened again after a failure) and on a new connection: statuses and latency."""
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    kept: http.client.HTTPConnection | None = None
    until = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < until:
        turn += 1
        fresh = turn % 2 == 0
        t0 = time.perf_counter()
        status = "timeout"
        conn = None
        try:
            if fresh or kept is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
            else:
                conn = kept
            conn.request("POST", PREDICT, body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            status = str(answer.status)
            if fresh:
                conn.close()
            elif answer.will_close:
                conn.close()
                kept = None
            else:
                kept = conn
        except (OSError, http.client.HTTPException) as exc:
            status = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            if conn is not None:
                conn.close()
            if not fresh:
                kept = None
        latencies.append(min(time.perf_counter() - t0, TIMEOUT_S))
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(GAP_S)
    latencies.sort()
    n = len(latencies)

    def q(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] * 1000

    return {
        "requests": n,
        "statuses": statuses,
        "ok_share": statuses.get("200", 0) / n if n else 0.0,
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "max_ms": latencies[-1] * 1000 if n else None,
    }


def cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process and its children alive now."""
    from bench_serving import process_tree

    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    model_dir = adult_model(work)
    row = request_rows(model_dir, 1)[0]
    body = orjson.dumps({"instances": [row]})
    tmp = Path(tempfile.mkdtemp(dir=work))
    request = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    large = tmp / "large.http"
    large.write_bytes(large_invalid(request, LARGE_BODY))
    chunked = tmp / "chunked.json"
    padding = CHUNK_BODY - len(body)
    chunked.write_bytes(body[:-1] + b" " * padding + body[-1:])
    payloads = {"tiny_chunks": chunked, "large_bodies": large, "idle_sockets": None}

    server = spawn_server("mooring", model_dir, work, [], workers=args.workers, logs=tmp)
    server.wait()
    port = server.port
    report: dict[str, Any] = {"workers": args.workers, "seconds": args.seconds, "cells": {}}
    try:
        normal(port, body, 2.0)  # warm both workers
        quiet = normal(port, body, args.seconds)
        report["cells"]["unloaded"] = quiet
        print(_line("unloaded", quiet, quiet), flush=True)
        for kind in args.only or SCENARIOS:
            # The machine is shared: the unloaded p99 again just before each attack.
            before = normal(port, body, args.seconds / 2)
            cpu0 = cpu_s(server.proc.pid)
            overflows = listen_overflows()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--attack", kind, "--port", str(port),
                 *(["--payload", str(payloads[kind])] if payloads[kind] else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                assert proc.stderr is not None
                if proc.stderr.readline().strip() != b"ready":
                    raise SystemExit(f"the {kind} attack did not start")
                time.sleep(args.settle_s)
                cell = normal(port, body, args.seconds)
                cell["attack_alive"] = proc.poll() is None
            finally:
                proc.kill()
                proc.wait()
            cell["server_cpu_s"] = cpu_s(server.proc.pid) - cpu0
            after = listen_overflows()
            cell["listen_overflows"] = (
                after - overflows if after is not None and overflows is not None else None
            )
            cell["unloaded_before"] = before
            cell["p99_vs_unloaded"] = cell["p99_ms"] / before["p99_ms"]
            cell["floor"] = cell["ok_share"] >= 0.95 and cell["p99_vs_unloaded"] <= 3.0
            report["cells"][kind] = cell
            print(_line(" before it", before, before), flush=True)
            print(_line(kind, cell, before), flush=True)
            time.sleep(args.settle_s + 6)  # the attack's sockets time out and close
        report["server_exited"] = server.exited()
    finally:
        stop_server(server.proc)
    return report


def _line(name: str, cell: dict[str, Any], quiet: dict[str, Any]) -> str:
    return (
        f"{name:13} 200s {cell['ok_share']:6.1%} of {cell['requests']:4}  "
        f"p50 {cell['p50_ms']:7.1f} ms  p99 {cell['p99_ms']:7.1f} ms "
        f"({cell['p99_ms'] / quiet['p99_ms']:5.1f}x)  max {cell['max_ms']:7.0f} ms  "
        f"{cell['statuses']}  overflows {cell.get('listen_overflows')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--label", default="now", help="names the JSON (e.g. before, after)")
    parser.add_argument("--seconds", type=float, default=15.0, help="the client's window")
    parser.add_argument("--settle-s", type=float, default=3.0, help="attack before the window")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="one scenario")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers")
    parser.add_argument("--work", type=Path, default=None, help="keep the model here")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--attack", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--payload", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        attack(args.attack, args.port, args.payload)
        return
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server's 9,000 sockets
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        report = run(args, work)
    report["label"] = args.label
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    import mooring

    report["source"] = str(Path(str(mooring.__file__)).resolve().parents[1])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"door-floods-{args.label}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
