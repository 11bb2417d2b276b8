"""Benchmark: a flood of large gRPC ``ModelInfer`` calls against two source trees: the
worker's memory growth, and what the calls were answered.

Each tree (``NAME=PATH``, a source tree whose ``src/mooring`` is run, as in
``bench_trees.py``) serves a model of one float input (``y = 2x``, ``[serving] xla =
"off"``) with ``mooring serve --model-dir --grpc-port --workers 1`` and the server's
default limits, one tree at a time. Then ``--calls`` ``ModelInfer`` calls of
``--mib`` MiB each (a float tensor as raw bytes), all sent at once: on one channel, then
spread over ``--channels`` channels; then one small call. Reported per tree and shape:
the codes, the seconds until the last answer, the server's RSS growth at its peak
(sampled every 20 ms) and 2 s after the last answer, and the small call's code
(:func:`_hostile.grpc_flood`, extended to several channels here).

Writes ``benchmarks/results/grpc-flood-<time>.json``; nothing is asserted. The machine is
shared: run it more than once.

Usage::

    git archive <commit> src | tar -x -C ../before
    python benchmarks/bench_grpc_flood.py before=../before now=.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _hostile import _rss_kib, peak_rss_kib

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHOD = "/inference.GRPCInferenceService/ModelInfer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model(folder: Path) -> Path:
    """``y = 2x`` of a float32 ``[None]`` input, saved in a child process."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from tests._support.hostile_models import plain; plain(Path(sys.argv[2]))"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(folder)], check=True, env=env)
    return folder


def _message(values: int) -> bytes:
    import numpy as np

    from mooring.serving._grpc.protos import open_inference_grpc_pb2 as pb

    request = pb.ModelInferRequest(model_name="t")
    tensor = request.inputs.add(name="x", datatype="FP32")
    tensor.shape.append(values)
    request.raw_input_contents.append(np.ones(values, np.float32).tobytes())
    return bytes(request.SerializeToString())


def flood(port: int, pid: int, message: bytes, calls: int, channels: int) -> dict[str, Any]:
    """``calls`` calls of ``message`` at once over ``channels`` channels, then a small one."""
    import grpc

    before = _rss_kib(pid)
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    opened = [grpc.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(channels)]
    codes: dict[str, int] = {}
    try:
        with peak_rss_kib(pid, 0.02, before) as peak:
            started = time.perf_counter()
            futures = [
                opened[i % channels].unary_unary(METHOD).future(message, timeout=600)
                for i in range(calls)
            ]
            for future in futures:
                error = future.exception()
                code = "OK" if error is None else error.code().name
                codes[code] = codes.get(code, 0) + 1
            seconds = time.perf_counter() - started
        try:
            opened[0].unary_unary(METHOD)(_message(1), timeout=60)
            small = "OK"
        except grpc.RpcError as exc:
            small = exc.code().name
    finally:
        for channel in opened:
            channel.close()
    time.sleep(2.0)
    return {
        "calls": calls,
        "channels": channels,
        "message_bytes": len(message),
        "codes": codes,
        "seconds": round(seconds, 2),
        "rss_before_mib": round(before / 1024, 1),
        "rss_growth_mib": round((peak[0] - before) / 1024, 1),
        "rss_after_mib": round((_rss_kib(pid) - before) / 1024, 1),
        "small_call_after": small,
    }


def serve(src: Path, model: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``mooring serve`` of ``src``'s tree on ``model``, ready; its process and gRPC port."""
    import httpx

    config = work / "mooring.toml"
    config.write_text(
        '[project]\nname = "t"\n[data]\ntrain = "unused.csv"\n'
        '[serving]\nwarmup_requests = 1\nxla = "off"\n'
    )
    port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(src), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config),
           "--model-dir", str(model), "--port", str(port), "--grpc-port", str(grpc_port),
           "--workers", "1", "--no-access-log"]  # fmt: skip
    with open(work / "serve.log", "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    until = time.monotonic() + 180
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise SystemExit((work / "serve.log").read_text()[-3000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return proc, grpc_port
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not become ready in 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="NAME=PATH source trees")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--mib", type=float, default=2.25)
    parser.add_argument("--channels", type=int, default=30)
    args = parser.parse_args()
    trees = [(name, Path(path).resolve()) for name, path in (t.split("=", 1) for t in args.trees)]
    sys.path.insert(0, str(ROOT / "src"))
    message = _message(int(args.mib * 2**20 / 4))
    report: dict[str, Any] = {"trees": {n: str(p) for n, p in trees}, "results": {}}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mooring-grpc-flood-") as tmp:
        model = _model(Path(tmp) / "model")
        for name, root in trees:
            work = Path(tmp) / name
            work.mkdir()
            proc, port = serve(root / "src", model, work)
            try:
                result = {
                    "one channel": flood(port, proc.pid, message, args.calls, 1),
                    f"{args.channels} channels": flood(
                        port, proc.pid, message, args.calls, args.channels
                    ),
                }
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            report["results"][name] = result
            print(name, json.dumps(result, indent=1), flush=True)
    report["load_average"] = {"before": load_before, "after": os.getloadavg()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"grpc-flood-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
