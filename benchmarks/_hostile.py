"""The hostile cells of ``bench_overload.py``: retry storms, slow bodies and pipelining.

* :func:`storms`: closed loops of ``loadgen/closedloop.c`` at multiples of the quiet
  concurrency, clients that honour ``Retry-After`` and clients that retry at once:
  goodput (200s per second) against the quiet capacity, p99 of the 200s, 503s, and the
  5xx the server charged to a version (from its ``/metrics``, before and after).
* :func:`under_attack`: normal clients (``wrk``, 8 connections) alone, then during an
  attack of :mod:`tests._support.attacks` (100 slow-body connections; 32 pipelining
  connections; one connection pipelining 65,000 tiny requests at once): their share of
  200s, p50 and p99, and the server's RSS growth.
* ``large_bodies_8`` (in :func:`under_attack`): 8 connections at a time, each sending
  a 2 MiB body that is answered 400 (real rows, ``age`` as text) and closing.
* :func:`grpc_flood`: a flood of large gRPC calls that all fail (refused at the in-flight
  limit or invalid), sent at once: their status codes and the server's RSS before, at
  its peak and after.

Each attacker and client is a process of its own; the server's memory is read from
``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLOSEDLOOP = Path(__file__).resolve().parent / "loadgen" / "closedloop.c"


def compile_closedloop(folder: Path) -> Path:
    binary = folder / "closedloop"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(CLOSEDLOOP)], check=True)
    return binary


def charged_5xx(port: int) -> float:
    """5xx answers the server counted under a version (not ``-``, shed load)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    found = re.finditer(r"mooring_requests_total\{([^}]*)\} ([\d.e+]+)", text)
    total = 0.0
    for m in found:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("status", "").startswith("5") and labels.get("version") != "-":
            total += float(m.group(2))
    return total


def closed_loop(
    binary: Path, port: int, request: Path, connections: int, seconds: float, honour: bool
) -> dict[str, Any]:
    cmd = [str(binary), "127.0.0.1", str(port), str(request), str(connections),
           str(seconds), "1" if honour else "0"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 120)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def storms(
    binary: Path,
    port: int,
    request: Path,
    *,
    quiet_connections: int,
    multiples: list[int],
    seconds: float,
    capacity_rps: float,
    pause_s: float,
) -> list[dict[str, Any]]:
    """One closed-loop run per multiple and client kind (honouring, ignoring Retry-After)."""
    cells = []
    for multiple in multiples:
        for honour in (True, False):
            time.sleep(pause_s)
            before = charged_5xx(port)
            run = closed_loop(binary, port, request, multiple * quiet_connections, seconds, honour)
            charged = charged_5xx(port) - before
            statuses = run["statuses"]
            ok = statuses.get("200", {})
            goodput = ok.get("count", 0) / run["seconds"]
            cells.append(
                {
                    "multiple": multiple,
                    "connections": multiple * quiet_connections,
                    "honour_retry_after": honour,
                    "goodput_rps": goodput,
                    "goodput_over_capacity": goodput / capacity_rps,
                    "ok_p50_ms": ok.get("p50_ms"),
                    "ok_p99_ms": ok.get("p99_ms"),
                    "refused_503": statuses.get("503", {}).get("count", 0),
                    "other_statuses": {
                        k: v["count"] for k, v in statuses.items() if k not in ("200", "503")
                    },
                    "connection_errors": run["errors"],
                    "connections_opened": run["connections_opened"],
                    "charged_5xx": charged,
                    "loadgen": run,
                }
            )
            kind = "honour" if honour else "ignore"
            print(
                f"storm {multiple}x ({kind} Retry-After): goodput {goodput:,.0f} req/s", flush=True
            )
    return cells


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def peak_rss_kib(pid: int, every_s: float, start: int) -> Iterator[list[int]]:
    """While the block runs, ``pid``'s RSS sampled every ``every_s`` seconds: the highest
    seen, from ``start`` (KiB), in the yielded list's one item."""
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            peak[0] = max(peak[0], _rss_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def _normal(wrk: Any, url: str, script: Path, seconds: float) -> dict[str, Any]:
    run: dict[str, Any] = wrk(url, script, seconds, connections=8)
    requests = run["requests"]
    run["ok_share"] = (requests - run["non_2xx"]) / requests if requests else 0.0
    return run


def under_attack(
    wrk: Any,
    url: str,
    script: Path,
    port: int,
    pid: int,
    request: Path,
    seconds: float,
) -> dict[str, Any]:
    """Normal clients alone, then during each attack; the server's RSS around each."""
    cells: dict[str, Any] = {"quiet": _normal(wrk, url, script, seconds)}
    tiny = request.parent / "tiny.http"
    tiny.write_bytes(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    large = request.parent / "large.http"
    large.write_bytes(large_invalid(request.read_bytes(), 2 * 2**20))
    attacks = {
        "slow_bodies_100": ["slow", str(port), "--connections", "100"],
        "pipelining_32": [
            "pipeline",
            str(port),
            "--request",
            str(request),
            "--connections",
            "32",
        ],
        # One connection writing 65,000 tiny requests at once, then reading the answers.
        "pipeline_65000": ["pipeline", str(port), "--request", str(tiny), "--requests", "65000"],
        # 8 connections at a time, each sending one 2 MiB body (a 400) and closing.
        "large_bodies_8": ["bodies", str(port), "--request", str(large), "--connections", "8"],
    }
    # The normal clients' window during the 65,000: short enough to end before it does
    # (about 4 s on 2 CPUs); the report says whether it was still being answered.
    windows = {"pipeline_65000": min(seconds, 2.0)}
    for name, args in attacks.items():
        before = _rss_kib(pid)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests._support.attacks", *args, "--seconds", "600"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert proc.stderr is not None
            if proc.stderr.readline().strip() != b"ready":
                raise SystemExit(f"the {name} attack did not start")
            with peak_rss_kib(pid, 0.05, before) as peak:
                run = _normal(wrk, url, script, windows.get(name, seconds))
                run["attack_still_running"] = proc.poll() is None
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=60)
        time.sleep(1.0)
        run["attack"] = json.loads(out) if out.strip() else None
        run["rss_growth_mib"] = (peak[0] - before) / 1024
        run["rss_after_mib"] = (_rss_kib(pid) - before) / 1024
        cells[name] = run
        print(f"{name}: normal clients {run['ok_share']:.1%} 200s", flush=True)
    return cells


def large_invalid(request: bytes, target_bytes: int) -> bytes:
    """A raw HTTP request like ``request`` (one JSON row) whose body is that row, with
    ``age`` as text, repeated to about ``target_bytes``: answered 400 once read."""
    head, _, body = request.partition(b"\r\n\r\n")
    row = json.loads(body)["instances"][0]
    row["age"] = "old"
    one = len(json.dumps(row)) + 2
    large = json.dumps({"instances": [row] * max(1, target_bytes // one)}).encode()
    lines = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"content-length:", b"connection:"))
    ]
    return b"\r\n".join([*lines, b"Content-Length: %d" % len(large)]) + b"\r\n\r\n" + large


def invalid_predict(rows: list[dict[str, Any]], name: str, target_bytes: int) -> bytes:
    """A serialized TF Serving PredictRequest of about ``target_bytes``: ``rows`` repeated,
    every column sent as text, so a numeric column makes it INVALID_ARGUMENT."""
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    def build(count: int) -> bytes:
        chosen = [rows[i % len(rows)] for i in range(count)]
        message = predict_pb2.PredictRequest()
        message.model_spec.name = name
        for column in rows[0]:
            proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
            proto.tensor_shape.dim.add(size=count)
            proto.string_val.extend(str(r[column]).encode() for r in chosen)
            message.inputs[column].CopyFrom(proto)
        return bytes(message.SerializeToString())

    per_row = len(build(len(rows))) / len(rows)
    return build(max(1, int(target_bytes / per_row)))


def grpc_flood(
    port: int, pid: int, method: str, message: bytes, calls: int, good: bytes
) -> dict[str, Any]:
    """``calls`` unary calls of ``method`` with ``message``, all sent at once on one grpcio
    channel, then one call with ``good``: the status codes, the seconds until the last
    answer, the server's RSS growth at its peak (sampled every 20 ms) and 2 s after the
    last answer, and the good call's status."""
    import grpc

    before = _rss_kib(pid)
    limit = 2 * len(message) + 1024
    options = [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", -1)]
    codes: dict[str, int] = {}
    with (
        peak_rss_kib(pid, 0.02, before) as peak,
        grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel,
    ):
        call = channel.unary_unary(method)
        started = time.perf_counter()
        futures = [call.future(message, timeout=600) for _ in range(calls)]
        for future in futures:
            error = future.exception()
            code = "OK" if error is None else error.code().name
            codes[code] = codes.get(code, 0) + 1
        seconds = time.perf_counter() - started
        try:
            call(good, timeout=60)
            after_call = "OK"
        except grpc.RpcError as exc:
            after_call = exc.code().name
    time.sleep(2.0)
    return {
        "calls": calls,
        "message_bytes": len(message),
        "codes": codes,
        "seconds": seconds,
        "rss_before_mib": before / 1024,
        "rss_growth_mib": (peak[0] - before) / 1024,
        "rss_after_mib": (_rss_kib(pid) - before) / 1024,
        "good_call_after": after_call,
    }
