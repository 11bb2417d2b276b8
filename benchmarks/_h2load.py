"""gRPC load from ``h2load`` and the gRPC library's own ceiling, for ``bench_serving.py``.

A Python gRPC client saturates its core before a server does, so unary gRPC calls are
sent by ``h2load`` (Debian's ``nghttp2-client``, C): a POST of one length-prefixed
message with ``content-type: application/grpc`` and ``te: trailers``, closed loop.
h2load counts HTTP statuses, and a gRPC error is an HTTP 200 whose trailers carry
``grpc-status``; so every cell is paired with grpcio calls that check the status
(:func:`grpc_call`), and h2load's DATA bytes are checked against the reply's framed
size: a call answered with an error carries an empty message (its 5-byte prefix) or
none, so ``ok`` is the DATA bytes, less 5 for every call answered, over the reply's size,
and ``grpc_errors`` the rest.

:func:`echo_server` is the ceiling: a ``grpc.aio`` server on uvloop, as mooring's
workers run it, answering every unary call with a fixed reply, in ``workers`` processes
sharing one port (``SO_REUSEPORT``) as mooring's workers share theirs.
"""

from __future__ import annotations

import re
import shutil
import statistics
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

PREDICT = "/tensorflow.serving.PredictionService/Predict"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def framed(message: bytes) -> bytes:
    """One gRPC message as it travels in DATA frames: not compressed, 4-byte length."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def echo_server(port: int, reply: bytes, workers: int = 1) -> None:
    """The gRPC library's ceiling: ``reply`` to every Predict and ModelInfer call, in
    ``workers`` processes on one port; returns when they end."""
    import multiprocessing

    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=echo_server, args=(port, reply, 1)) for _ in range(workers)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        return

    import grpc
    import uvloop
    from grpc import aio

    async def answer(request: bytes, context: Any) -> bytes:
        return reply

    async def serve() -> None:
        server = aio.server(options=[("grpc.so_reuseport", 1)])
        handler = grpc.unary_unary_rpc_method_handler(answer)
        handlers = [
            grpc.method_handlers_generic_handler(service, {method: handler})
            for service, method in (p.strip("/").split("/") for p in (PREDICT, MODEL_INFER))
        ]
        server.add_generic_rpc_handlers(handlers)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(serve())


def grpc_call(port: int, method: str, message: bytes, count: int = 20) -> tuple[str, int]:
    """``count`` calls of ``method`` by grpcio on a new channel: the status name of the
    first that is not OK ("OK" when all are) and the reply's size in bytes."""
    import grpc

    size = 0
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method)
        for _ in range(count):
            try:
                reply = call(message, timeout=30)
            except grpc.RpcError as exc:
                return exc.code().name, size
            size = len(reply)
    return "OK", size


def _number(pattern: str, out: str) -> float:
    found = re.search(pattern, out)
    if found is None:
        raise SystemExit(f"h2load's report has no {pattern!r}:\n{out[-2000:]}")
    return float(found.group(1))


def h2load(
    port: int,
    method: str,
    message: bytes,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
    *,
    reply_bytes: int,
) -> dict[str, Any]:
    """Closed-loop unary calls of ``method`` with ``message`` for ``seconds`` (after an
    uncounted ``warmup`` run), ``concurrency`` streams in flight: one per connection up to 4
    connections (so workers sharing a port each get some), the rest as streams on them.

    Returns req/s (calls answered OK per second), p50/p90/p99 in ms from h2load's
    per-request log, and the calls h2load saw fail and those answered with an error.
    """
    if shutil.which("h2load") is None:
        raise SystemExit("h2load is needed (Debian: apt-get install nghttp2-client)")
    connections = min(4, concurrency)
    streams = -(-concurrency // connections)
    with tempfile.TemporaryDirectory() as tmp:
        body, log = Path(tmp) / "body.bin", Path(tmp) / "requests.log"
        body.write_bytes(framed(message))

        def run(duration: float, *extra: str) -> str:
            # h2load's --warm-up-time resets its counts but not its DATA bytes: the warm-up
            # is a run of its own, not counted.
            cmd = ["h2load", "-D", str(max(1, round(duration))), "-c", str(connections),
                   "-m", str(streams), "-t", "1", "-d", str(body),
                   "-H", "content-type: application/grpc", "-H", "te: trailers", *extra,
                   f"http://127.0.0.1:{port}{method}"]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
            return done.stdout

        if warmup > 0:
            run(warmup)
        out = run(seconds, f"--log-file={log}")
        micros = sorted(
            int(line.split("\t")[2]) for line in log.read_text().splitlines() if line.count("\t")
        )
    done = int(_number(r"requests: \d+ total, \d+ started, (\d+) done", out))
    failed = int(_number(r"(\d+) failed", out))
    data = int(_number(r"\((\d+)\) data", out))
    # data = ok * (reply + 5) + 5 per error with an empty message: counting every error
    # as one errs by 5 / reply of a call per error without a message.
    ok = max(0, min(done - failed, (data - 5 * (done - failed)) // max(reply_bytes, 1)))
    elapsed = _number(r"finished in ([\d.]+)s", out)

    def percentile(q: float) -> float | None:
        if not micros:
            return None
        return micros[min(len(micros) - 1, int(q * len(micros)))] / 1000.0

    return {
        "rps": ok / elapsed if elapsed else 0.0,
        "requests": done,
        "ok": ok,
        "failed": failed,
        "grpc_errors": max(0, done - failed - ok),
        "p50_ms": percentile(0.50),
        "p90_ms": percentile(0.90),
        "p99_ms": percentile(0.99),
        "mean_ms": statistics.fmean(micros) / 1000.0 if micros else None,
        "connections": connections,
        "streams_per_connection": streams,
    }
