"""Benchmark: could mooring's door stand on public interfaces? Candidates side by side.

Every candidate answers ``POST /v1/models/m:predict`` with a fixed small JSON reply after
reading the body (the HTTP stack alone, no model), and ``POST /v1/models/slow:predict``
the same after 20 ms of simulated model time (``asyncio.sleep``), where a request holds
an admission slot (``max_in_flight`` = 32 per process). Every server runs 2 worker
processes (benchmarks/doors/serve.py forks them, each on its own ``SO_REUSEPORT``
socket; granian: ``--workers 2``). Candidates (benchmarks/doors/README.md):

* ``A``  uvicorn public ``Config(http="httptools", limit_concurrency=1024)`` +
  Starlette, admission as a pure-ASGI middleware (doors/admission.py);
* ``B``  the same with a bare ASGI app (no Starlette): the stack's ceiling;
* ``C``  mooring's door: its own protocol on httptools' public parser, served by
  ``mooring.serving.Server`` (uvloop), calling the Starlette app (``C``) or the bare
  ASGI app (``C-bare``);
* ``D-asgi``, ``D-rsgi`` granian (``--granian PATH``; skipped when absent): the bare
  ASGI app behind the same middleware, and an RSGI app with the same admission;

Measured, all servers up at once, cells interleaved (``wrk -t1``, Lua POSTing bodies):

1. throughput: c=32, single-row (~300 B) and 64-row (~15 KB) bodies, ``--rounds``
   rounds, the candidates' order rotating per round; medians of 2xx/s, p50, p99;
2. slow bodies: a quiet c=8 cell, then 100 connections each sending a POST's headers
   (Content-Length 300) and 1 body byte, held open during a second c=8 cell: the share
   of 200s, p99 against the quiet p99, and what became of the 100 connections;
3. retry storm: on the model path, c=32 (quiet) then c=512 (16x); goodput (2xx/s),
   non-2xx and socket errors; the admission capacity is 2 x 32 / 20 ms = 3200/s;
4. pipelining: 32 raw sockets writing pipelined single-row requests as fast as the
   server reads them for ``--pipe-seconds`` (responses drained, not parsed); the server's
   RSS (VmRSS summed over its process group) before, at peak, and 3 s after closing;
   a probe stops early once the server has grown by 1.5 GiB.

Writes benchmarks/results/doors-<time>.json and prints a markdown table. Every server
is killed (its process group) at the end, error or not.

    .venv/bin/python benchmarks/bench_doors.py --granian ../granian-venv/bin/granian
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from _wrk import lua_script, read_wrk, wrk_command

HERE = Path(__file__).resolve().parent
DOORS = HERE / "doors"
PATH = "/v1/models/m:predict"
MODEL_PATH = "/v1/models/slow:predict"
WORKERS = 2
MAX_IN_FLIGHT = 32
RSS_CAP_KIB = 1536 * 1024  # the pipelining probe stops early past +1.5 GiB of server RSS
OWN = ("A", "B", "C", "C-bare")


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    def url(self, path: str = PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def row(i: int) -> dict[str, Any]:
    return {
        "age": 25 + i % 40,
        "workclass": "Private",
        "fnlwgt": 77516 + 37 * i,
        "education": "Bachelors",
        "education_num": 13,
        "marital_status": "Never-married",
        "occupation": "Adm-clerical",
        "relationship": "Not-in-family",
        "race": "White",
        "sex": "Male" if i % 2 else "Female",
        "capital_gain": 2174,
        "capital_loss": 0,
        "hours_per_week": 40,
        "native_country": "United-States",
    }


def bodies() -> tuple[bytes, bytes]:
    one = json.dumps({"instances": [row(0)]}, separators=(",", ":")).encode()
    many = json.dumps({"instances": [row(i) for i in range(64)]}, separators=(",", ":")).encode()
    return one, many


def servers(granian: str | None, log_dir: Path) -> list[Server]:
    py = sys.executable
    out = []
    for name in OWN:
        port = free_port()
        cmd = [py, "serve.py", name, "--port", str(port), "--workers", str(WORKERS),
               "--max-in-flight", str(MAX_IN_FLIGHT)]  # fmt: skip
        out.append(Server(name, cmd, port, log_dir / f"{name}.log"))
    if granian:
        for name, iface, target in (
            ("D-asgi", "asgi", "admission:granian_asgi"),
            ("D-rsgi", "rsgi", "admission:granian_rsgi"),
        ):
            port = free_port()
            cmd = [granian, "--interface", iface, "--http", "1", "--no-ws", "--workers",
                   str(WORKERS), "--runtime-threads", "1", "--loop", "uvloop", "--host",
                   "127.0.0.1", "--port", str(port), "--log-level", "warning",
                   "--no-access-log", "--working-dir", str(DOORS), target]  # fmt: skip
            out.append(Server(name, cmd, port, log_dir / f"{name}.log"))
    return out


def post(port: int, path: str, body: bytes, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def start(server: Server, body: bytes, limit_s: float = 60.0) -> None:
    with server.log.open("wb") as log:
        server.proc = subprocess.Popen(
            server.cmd, cwd=DOORS, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + limit_s
    ok = 0
    while time.monotonic() < deadline and ok < 4:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-2000:]}")
        try:
            ok = ok + 1 if post(server.port, PATH, body) == 200 else 0
        except OSError:
            ok = 0
            time.sleep(0.2)
    if ok < 4:
        raise RuntimeError(f"{server.name} not ready in {limit_s} s")


def stop(server: Server) -> None:
    if server.proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=5)


def group_rss_kib(pgid: int) -> int:
    """VmRSS summed over every process of the server's process group (KiB)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_wrk(url: str, lua: Path, seconds: float, connections: int) -> dict[str, Any]:
    cmd = wrk_command(url, lua, seconds, connections, threads=1)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        return {"error": "wrk did not end in time", "cmd": " ".join(cmd)}
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:], "cmd": " ".join(cmd)}
    result = read_wrk(done.stdout)
    result["share_2xx"] = (
        (result["requests"] - result["non_2xx"]) / result["requests"] if result["requests"] else 0.0
    )
    return result


# -- probes ---------------------------------------------------------------------------
SLOW_HEAD = (
    b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 300\r\n\r\n{"
)


def _fate(s: socket.socket) -> str:
    """What the server did with a held connection: its answer's status, and whether it
    closed the connection after it ("still open": neither)."""
    s.setblocking(False)
    data = b""
    for _ in range(100):
        try:
            chunk = s.recv(65536)
        except BlockingIOError:
            break
        except OSError as exc:
            return f"{type(exc).__name__} after {len(data)} bytes"
        if not chunk:
            status = data.split(b"\r\n", 1)[0].decode("latin-1")[9:12]
            return f"{status} + closed" if data else "closed"
        data += chunk
    status = data.split(b"\r\n", 1)[0].decode("latin-1")[9:12]
    return f"{status}, left open" if data else "still open"


def slow_probe(server: Server, lua: Path, seconds: float, count: int = 100) -> dict[str, Any]:
    """``count`` connections hold a partial body while a c=8 client runs ``seconds``."""
    quiet = run_wrk(server.url(), lua, seconds, 8)
    socks: list[socket.socket] = []
    failed = 0
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            s.sendall(SLOW_HEAD)
            socks.append(s)
        except OSError:
            failed += 1
    loaded = run_wrk(server.url(), lua, seconds, 8)
    fates: dict[str, int] = {}
    for s in socks:
        fate = _fate(s)
        fates[fate] = fates.get(fate, 0) + 1
        s.close()
    return {"quiet_c8": quiet, "with_slow_c8": loaded, "slow_connections": fates,
            "slow_connect_failures": failed}  # fmt: skip


def storm(server: Server, lua: Path, quiet_s: float, storm_s: float) -> dict[str, Any]:
    url = server.url(MODEL_PATH)
    quiet = run_wrk(url, lua, quiet_s, 32)
    loud = run_wrk(url, lua, storm_s, 512)
    out = {"quiet_c32": quiet, "storm_c512": loud}
    if "rps" in quiet and "rps" in loud and quiet["rps"]:
        out["goodput_ratio"] = loud["rps"] / quiet["rps"]
    return out


class _Pipeliner:
    """Raw sockets that write a block of pipelined requests over and over and drain the
    answers (counted by their status lines, not parsed)."""

    def __init__(self, port: int, block: bytes, conns: int) -> None:
        self.port = port
        self.block = memoryview(block)
        self.sel = selectors.DefaultSelector()
        self.counts = {"responses": 0, "closed_by_server": 0, "bytes_sent": 0}
        for _ in range(conns):
            self.connect()

    def connect(self) -> None:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, [0])

    def step(self) -> None:
        for key, mask in self.sel.select(0.05):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if mask & selectors.EVENT_READ and not self.read(s):
                continue
            if mask & selectors.EVENT_WRITE:
                self.write(s, key.data)

    def read(self, s: socket.socket) -> bool:
        try:
            data = s.recv(1 << 18)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if data:
            self.counts["responses"] += data.count(b"HTTP/1.1 ")
            return True
        self.sel.unregister(s)  # closed by the server: reconnect (bounded)
        s.close()
        self.counts["closed_by_server"] += 1
        if self.counts["closed_by_server"] < 5000:
            self.connect()
        return False

    def write(self, s: socket.socket, pos: list[int]) -> None:
        try:
            sent = s.send(self.block[pos[0] :])
        except OSError:  # BlockingIOError included
            return
        self.counts["bytes_sent"] += sent
        pos[0] = (pos[0] + sent) % len(self.block)

    def close(self) -> None:
        for key in list(self.sel.get_map().values()):
            self.sel.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()


def pipeline_probe(server: Server, one: bytes, seconds: float, conns: int = 32) -> dict[str, Any]:
    """``conns`` raw sockets write pipelined requests as fast as the server reads."""
    assert server.proc is not None
    pgid = server.proc.pid
    request = (
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(one), one)
    )
    before = peak = group_rss_kib(pgid)
    clients = _Pipeliner(server.port, request * 64, conns)
    start_t = next_sample = time.monotonic()
    capped = False
    try:
        while time.monotonic() - start_t < seconds and not capped:
            clients.step()
            if time.monotonic() >= next_sample:
                peak = max(peak, group_rss_kib(pgid))
                next_sample += 0.25
                capped = peak - before > RSS_CAP_KIB  # bounded: the machine is shared
    finally:
        elapsed = time.monotonic() - start_t
        clients.close()
    settle = time.monotonic()
    while time.monotonic() - settle < 3.0:
        peak = max(peak, group_rss_kib(pgid))
        time.sleep(0.25)
    after = group_rss_kib(pgid)
    counts = clients.counts
    return {"rss_before_kib": before, "rss_peak_kib": peak, "rss_after_kib": after,
            "peak_growth_mib": (peak - before) / 1024, "after_growth_mib": (after - before) / 1024,
            "responses_per_s": counts["responses"] / elapsed,
            "server_alive": server.proc.poll() is None, "seconds": elapsed,
            "stopped_at_rss_cap": capped, **counts}  # fmt: skip


# -- report ---------------------------------------------------------------------------
def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def summarize(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in report["candidates"]:
        cells = report["throughput"].get(name, {})
        line: dict[str, Any] = {"candidate": name}
        for body in ("1row", "64row"):
            runs = [r for r in cells.get(body, []) if "rps" in r]
            line[f"{body}_rps"] = _med([r["rps"] for r in runs])
            line[f"{body}_p50"] = _med([r["p50_ms"] for r in runs if "p50_ms" in r])
            line[f"{body}_p99"] = _med([r["p99_ms"] for r in runs if "p99_ms" in r])
        slow = report["slow"].get(name, {})
        loaded, quiet = slow.get("with_slow_c8", {}), slow.get("quiet_c8", {})
        line["slow_share_2xx"] = loaded.get("share_2xx")
        line["slow_rps"] = loaded.get("rps")
        line["slow_p99"] = loaded.get("p99_ms")
        line["quiet_c8_p99"] = quiet.get("p99_ms")
        line["slow_timeouts"] = loaded.get("socket_errors")
        line["slow_fates"] = slow.get("slow_connections")
        st = report["storm"].get(name, {})
        line["storm_quiet_rps"] = st.get("quiet_c32", {}).get("rps")
        line["storm_rps"] = st.get("storm_c512", {}).get("rps")
        line["storm_non2xx"] = st.get("storm_c512", {}).get("non_2xx")
        line["storm_errors"] = st.get("storm_c512", {}).get("socket_errors")
        line["storm_ratio"] = st.get("goodput_ratio")
        pipe = report["pipeline"].get(name, {})
        line["pipe_peak_mib"] = pipe.get("peak_growth_mib")
        line["pipe_after_mib"] = pipe.get("after_growth_mib")
        line["pipe_rps"] = pipe.get("responses_per_s")
        line["pipe_closed"] = pipe.get("closed_by_server")
        rows.append(line)
    for line in rows:
        for ref in ("C", "B"):
            line[f"vs_{ref}"] = _round_ratio(report["throughput"], line["candidate"], ref)
    return rows


def _round_ratio(cells: dict[str, Any], name: str, ref: str) -> float | None:
    """The median over rounds of name's single-row 2xx/s over ref's in the same round
    (the load of the shared machine moves between rounds more than within one)."""
    ours, theirs = cells.get(name, {}).get("1row", []), cells.get(ref, {}).get("1row", [])
    ratios = [a["rps"] / b["rps"] for a, b in zip(ours, theirs, strict=False)
              if a.get("rps") and b.get("rps")]  # fmt: skip
    return _med(ratios)


def table(rows: list[dict[str, Any]]) -> str:
    head = ["cand", "1-row 2xx/s", "p50/p99 ms", "vs C (rounds)", "vs B (rounds)",
            "64-row 2xx/s", "p99 ms", "slow: 200 share", "slow p99 / quiet p99", "slow conns after",
            "storm 2xx/s (c32 → c512)", "storm non-2xx", "storm sock err",
            "pipe RSS peak/after +MiB", "pipe resp/s", "pipe closes"]  # fmt: skip
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        fates = ", ".join(f"{k}: {v}" for k, v in (r["slow_fates"] or {}).items())
        cells = [
            r["candidate"],
            fmt(r["1row_rps"]),
            f"{fmt(r['1row_p50'], 2)} / {fmt(r['1row_p99'], 2)}",
            fmt(r["vs_C"], 2),
            fmt(r["vs_B"], 2),
            fmt(r["64row_rps"]),
            fmt(r["64row_p99"], 2),
            fmt(r["slow_share_2xx"], 3),
            f"{fmt(r['slow_p99'], 1)} / {fmt(r['quiet_c8_p99'], 1)}",
            fates or "—",
            f"{fmt(r['storm_quiet_rps'])} → {fmt(r['storm_rps'])}",
            fmt(r["storm_non2xx"]),
            fmt(r["storm_errors"]),
            f"{fmt(r['pipe_peak_mib'], 1)} / {fmt(r['pipe_after_mib'], 1)}",
            fmt(r["pipe_rps"]),
            fmt(r["pipe_closed"]),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def versions(granian: str | None) -> dict[str, str]:
    out = {}
    for package in ("uvicorn", "httptools", "starlette", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    if granian:
        done = subprocess.run([granian, "--version"], capture_output=True, text=True)
        out["granian"] = done.stdout.strip()
    return out


def run(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    one, many = bodies()
    lua_one = lua_script(work, [one], "one.lua")
    lua_many = lua_script(work, [many], "many.lua")
    report["body_bytes"] = {"1row": len(one), "64row": len(many)}
    fleet = servers(args.granian, work)
    report["commands"] = {s.name: " ".join(s.cmd) for s in fleet}
    try:
        for server in fleet:
            start(server, one)
            run_wrk(server.url(), lua_one, 1, 32)  # warm-up, not recorded
            run_wrk(server.url(), lua_many, 1, 32)
        report["candidates"] = [s.name for s in fleet]
        for name in report["candidates"]:
            report["throughput"][name] = {"1row": [], "64row": []}
        for rnd in range(args.rounds):
            order = fleet[rnd % len(fleet) :] + fleet[: rnd % len(fleet)]
            report["load"][f"round{rnd}"] = os.getloadavg()
            for body, lua in (("1row", lua_one), ("64row", lua_many)):
                for server in order:
                    result = run_wrk(server.url(), lua, args.seconds, 32)
                    report["throughput"][server.name][body].append(result)
                    print(f"round {rnd} {body:6} {server.name:8} {result.get('rps', result)}",
                          flush=True)  # fmt: skip
        report["load"]["slow"] = os.getloadavg()
        for server in fleet:
            report["slow"][server.name] = slow_probe(server, lua_one, args.probe_seconds)
            print(f"slow {server.name:8} {report['slow'][server.name]['slow_connections']}",
                  flush=True)  # fmt: skip
        report["load"]["storm"] = os.getloadavg()
        for server in fleet:
            report["storm"][server.name] = storm(
                server, lua_one, args.probe_seconds, args.storm_seconds
            )
            print(
                f"storm {server.name:8} {report['storm'][server.name].get('goodput_ratio')}",
                flush=True,
            )
        report["load"]["pipeline"] = os.getloadavg()
        for server in fleet:
            report["pipeline"][server.name] = pipeline_probe(server, one, args.pipe_seconds)
            print(f"pipe {server.name:8} {report['pipeline'][server.name]}", flush=True)
        for server in fleet:
            if server.proc is not None and server.proc.poll() is not None:
                server.notes.append(f"exited {server.proc.returncode}")
            report["notes"][server.name] = [*server.notes, server.log.read_text()[-1500:]]
    finally:
        for server in fleet:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput cell (s)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--probe-seconds", type=float, default=5.0, help="slow-body and quiet cells"
    )
    parser.add_argument("--storm-seconds", type=float, default=10.0)
    parser.add_argument("--pipe-seconds", type=float, default=10.0)
    parser.add_argument("--granian", help="granian executable (its venv must have uvloop)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--render", type=Path, help="print the table of an earlier JSON, run nothing"
    )
    args = parser.parse_args()
    if args.render:
        print(table(summarize(json.loads(args.render.read_text()))))
        return
    if args.granian and not Path(args.granian).exists():
        print(f"--granian {args.granian}: not found; granian skipped", flush=True)
        args.granian = None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": stamp,
        "machine": {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()},
        "versions": versions(args.granian),
        "settings": {
            "workers": WORKERS,
            "max_in_flight_per_worker": MAX_IN_FLIGHT,
            "model_s": 0.020,
            "wrk_threads": 1,
            **vars(args) | {"out": str(args.out)},
        },
        "candidates": [],
        "throughput": {},
        "slow": {},
        "storm": {},
        "pipeline": {},
        "load": {},
        "notes": {},
    }
    if not args.granian:
        report["notes"]["D"] = "granian not given (--granian): D skipped"
    with tempfile.TemporaryDirectory(prefix="doors-") as tmp:
        try:
            run(args, Path(tmp), report)
        finally:
            report["machine"]["load_average_end"] = os.getloadavg()
            report["summary"] = summarize(report) if report["candidates"] else []
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / f"doors-{stamp}.json"
            path.write_text(json.dumps(report, indent=2, default=str))
            machine = report["machine"]
            print(f"\nload average at start {machine['load_average_start']}, "
                  f"end {machine['load_average_end']} ({os.cpu_count()} CPUs)")  # fmt: skip
            if report["summary"]:
                print(table(report["summary"]))
            print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
