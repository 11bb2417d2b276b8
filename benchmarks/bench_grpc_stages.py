"""Benchmark: where a gRPC ``Predict`` call's time goes, stage by stage, beside grpcio's own.

The same server is started five times from copies of this tree's ``src/``, each copy's
``PredictionService`` cut short after one more stage of a call (the rest of the tree
unchanged), and beside them two grpcio servers on uvloop:

* ``echo``: grpcio's fixed reply, the request's bytes not even parsed (as
  ``bench_serving.py``'s ``grpc-echo``);
* ``echo+work``: what any model server's call does at least: the ``PredictRequest``
  parsed, a hop to a worker thread and back, a ``PredictResponse`` serialized, one
  trailing metadata entry;
* ``handler``: mooring's handler answers a fixed ``PredictResponse`` at once (the request
  parsed, admitted before parsing by its interceptor, nothing else);
* ``gate``: the same through the gate (admission, the call's metadata and deadline, its
  metrics and access-log line);
* ``decode``: routed to the version and the request's tensors read into columns;
* ``serve``: the contract checked and the batch predicted, the fixed reply answered;
* ``full``: the server as it is, its outputs written into the reply.

One worker each (``mooring serve --model-dir --grpc-port --workers 1``, every request in
the prediction log), ``h2load`` at c=32 on one single-row ``Predict`` of an Adult row
(``bench_serving.py``'s request), ``--rounds`` interleaved rounds of ``--duration``
seconds, the servers' order rotating by round. The difference of two neighbours' µs per
call (1 / throughput) is that stage's cost on the event loop, where the server spends
its time. Medians. Writes ``benchmarks/results/grpc-stages-<time>.json``; nothing is
asserted.

    .venv/bin/python benchmarks/bench_grpc_stages.py --work build/bench-work
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_serving as bs
from _h2load import PREDICT, grpc_call, h2load

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SERVICE = Path("mooring/serving/_grpc/tfserving.py")
STAGES = ("handler", "gate", "decode", "serve", "full")

# Where each stage's copy answers (the text after which its early return goes).
_PREDICT = "    ) -> predict_pb2.PredictResponse:\n        return await self.gate.run(\n"
_DECODED = (
    "        columns, rows = decode(request.inputs, model.inputs, predictor.policy_for(model))\n"
)
_SERVED = (
    "        outputs = await predictor.serve(call, manager, slot, columns, rows)\n"
    "        response = predict_pb2.PredictResponse()\n"
)
_FIXED = """
from tensorflow_serving.apis import predict_pb2 as _pb2

_STAGE_REPLY = _pb2.PredictResponse()
_STAGE_REPLY.model_spec.name = "income"
_STAGE_REPLY.outputs["probabilities"].float_val.extend([0.25, 0.75])
"""


def stage_tree(stage: str, into: Path) -> Path:
    """A copy of ``src/`` whose ``Predict`` answers a fixed reply after ``stage``."""
    src = into / stage / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "_site"))
    if stage == "full":
        return src
    path = src / SERVICE
    text = path.read_text()
    for anchor in (_PREDICT, _DECODED, _SERVED):
        if text.count(anchor) != 1:
            raise SystemExit(
                f"{SERVICE}: the line {anchor.strip()[:60]!r} moved; update {__file__}"
            )
    early = "        return _STAGE_REPLY\n"
    if stage == "handler":
        text = text.replace(
            _PREDICT, _PREDICT.replace("        return await", early + "        return await")
        )
    elif stage == "gate":
        fixed = "        async def _fixed(call):\n            return _STAGE_REPLY\n\n"
        head, _, tail = text.partition(_PREDICT)
        body, sep, rest = tail.partition("\n    async def _predict(")
        body = body.replace("lambda call: self._predict(call, request)", "_fixed")
        text = (
            head
            + _PREDICT.replace("        return await", fixed + "        return await")
            + body
            + sep
            + rest
        )
    elif stage == "decode":
        text = text.replace(_DECODED, _DECODED + early)
    elif stage == "serve":
        served, _, rest = _SERVED.partition("\n")
        text = text.replace(_SERVED, served + "\n" + early + rest)
    path.write_text(text + _FIXED)
    return src


def echo_work_server(port: int, reply: bytes) -> None:
    """grpcio on uvloop answering every ``Predict`` as a model server must at least: the
    request parsed, a hop to a worker thread, a reply serialized, a trailing entry."""
    import asyncio
    import concurrent.futures

    import grpc
    import tensorflow  # noqa: F401 - TF Serving's protos import it
    import uvloop
    from grpc import aio
    from tensorflow_serving.apis import predict_pb2

    pool = concurrent.futures.ThreadPoolExecutor(1)
    answer_proto = predict_pb2.PredictResponse.FromString(reply)

    def work() -> Any:
        return answer_proto

    async def answer(request: Any, context: Any) -> Any:
        context.invocation_metadata()
        out = await asyncio.get_running_loop().run_in_executor(pool, work)
        context.set_trailing_metadata((("x-request-id", "0123456789abcdef"),))
        return out

    async def serve() -> None:
        server = aio.server()
        handler = grpc.unary_unary_rpc_method_handler(
            answer,
            request_deserializer=predict_pb2.PredictRequest.FromString,
            response_serializer=predict_pb2.PredictResponse.SerializeToString,
        )
        service, method = PREDICT.strip("/").split("/")
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(service, {method: handler})]
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(serve())


def fixed_reply() -> bytes:
    """The single-row reply the two grpcio servers answer."""
    from tensorflow_serving.apis import predict_pb2

    reply = predict_pb2.PredictResponse()
    reply.model_spec.name = bs.NAME
    reply.model_spec.version.value = 1
    tensor = reply.outputs["probabilities"]
    tensor.dtype = 1
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=2)
    tensor.float_val.extend([0.25, 0.75])
    return bytes(reply.SerializeToString())


def main() -> None:  # noqa: PLR0915 - one run, start to end
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="reuse the model built here")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-grpc-stages-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = bs.adult_model(work)
    shutil.copy(work / "schema.yaml", work / "stages-schema.yaml")
    single = bs.grpc_requests(bs.request_rows(model_dir, 64), work)[0].read_bytes()
    reply = fixed_reply()
    trees = Path(tempfile.mkdtemp(prefix="stages-", dir=work))
    settings = (
        '[project]\nname = "income"\n[data]\ntrain = "unused.csv"\n'
        "[serving]\nmax_in_flight = 1024\nlog_sample_rate = 1.0\n"
    )
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    try:
        for stage in STAGES:
            src = stage_tree(stage, trees)
            port, grpc_port = bs.free_port(), bs.free_port()
            env = {**os.environ, "PYTHONPATH": str(src)}
            config = trees / stage / "mooring.toml"  # its own home: its own prediction log
            config.write_text(settings)
            cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config),
                   "--port", str(port), "--grpc-port", str(grpc_port), "--model-dir",
                   str(model_dir), "--schema", str(work / "stages-schema.yaml"),
                   "--no-access-log", "--workers", "1"]  # fmt: skip
            log = (trees / f"{stage}.log").open("wb")
            procs.append(subprocess.Popen(cmd, cwd=trees / stage, env=env, stdout=log, stderr=log))
            ports[stage] = grpc_port
        reply_file = trees / "reply.bin"
        reply_file.write_bytes(reply)
        for name, target in (("echo", "--echo"), ("echo+work", "--echo-work")):
            port = bs.free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, target, str(port), str(reply_file)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            ports[name] = port
        for name, port in ports.items():
            bs.wait_until_grpc(port, single, limit_s=180)
            status, _ = grpc_call(port, PREDICT, single, 5)
            if status != "OK":
                raise SystemExit(f"{name}: Predict answered {status}")
        names = ["echo", "echo+work", *STAGES]
        runs: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                cell = h2load(ports[name], PREDICT, single, 32, args.duration, reply_bytes=0)
                runs[name].append(cell["rps"])
                print(f"round {r + 1} {name:10s} {cell['rps']:8.0f} req/s", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(trees, ignore_errors=True)
    medians = {n: statistics.median(v) for n, v in runs.items()}
    us = {n: 1e6 / v for n, v in medians.items() if v > 0}
    rows = []
    before = None
    for name in names:
        added = None if before is None or name not in us else us[name] - us[before]
        rows.append((name, medians[name], us.get(name), added))
        before = name if name in STAGES or name == "echo" else before
    print(f"\n{'server':10s} {'req/s':>8s} {'µs/call':>8s} {'+µs':>6s} {'÷ echo':>7s}")
    for name, rps, per, added in rows:
        plus = "" if added is None else f"{added:+6.0f}"
        print(f"{name:10s} {rps:8.0f} {per or 0:8.0f} {plus:>6s} {rps / medians['echo']:7.2f}")
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "python": platform.python_version(),
        },
        "commit": commit,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "requests_per_s": runs,
        "median_requests_per_s": medians,
        "us_per_call": us,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"grpc-stages-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in ("--echo", "--echo-work"):
        served = Path(sys.argv[3]).read_bytes()
        if sys.argv[1] == "--echo":
            from _h2load import echo_server

            echo_server(int(sys.argv[2]), served, 1)
        else:
            echo_work_server(int(sys.argv[2]), served)
    else:
        main()
