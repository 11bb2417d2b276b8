"""Benchmark: mooring's server against the endpoints teams write by hand.

One run builds the Adult model (``train_model`` on ``examples/adult``, one epoch),
then starts each server on 127.0.0.1 in its own process and drives it from a
separate load-generator process (an asyncio client on raw keep-alive HTTP/1.1
connections, one connection per concurrent client; each client sends its next
request when the previous answer arrives):

* ``mooring``: ``mooring serve --model-dir --schema`` with the default ``[serving]``
  settings (dynamic batching, TF Serving's row format, every request checked against
  the signature and the training data's contract);
* ``naive``: a uvicorn + Starlette endpoint that parses the same JSON and calls
  the SavedModel signature once per request on the event loop;
* ``predict``: the same endpoint calling Keras ``model.predict`` once per request
  (the Keras model rebuilt from the run's last checkpoint).

Cells: single-row requests at concurrency 1, 8, 32, 64; 64-row requests at 8 and
32. ``mooring`` also serves gRPC (``--grpc-port``) and is driven over TF Serving's gRPC
``Predict`` (``grpc`` cells: 1 and 64 rows at concurrency 1 and 32) by
``--grpc-procs`` load processes (2), each a ``grpc.aio`` client sending pre-serialized
requests on one channel; each cell records the load processes' CPU use
(``client_cpu``: 1.0 = one core busy the whole time), to show whether the client
saturated; a ``grpc-echo`` cell (single rows, c=32) drives a grpc.aio server whose
Predict returns the request unchanged: the framework's own ceiling on the machine.
The floor's cell (single rows at c=32, mooring against naive) is then run head to
head: both servers up, alternating, ``--rounds`` times (3); the summary's ratio and
p99 are the medians of those rounds. Shadow traffic's cost is run the same way: two
``mooring serve -c`` registry servers, each logging every request, one with a shadow
version that gets a copy of every request (rate 1.0), alternating single rows at c=32
``--rounds`` times; the summary gives the median throughput cost and both client
p99s. The in-process ceiling is the signature called
back to back at batch 64 in one process (numpy → tensors → outputs, no HTTP), the
best of six windows. Cold start is the time from spawning a server to its first
200: ``/v2/health/ready`` for ``mooring serve --model-dir`` (``mooring``) and for
``mooring serve -c`` on a SQLite registry holding the model as production
(``mooring-registry``), the predict URL for ``naive``; each is spawned
``--cold-runs`` times (5), interleaved, and the median is reported. ``--phases``
times each step of a start in sequence (the server overlaps TensorFlow's import
with its own).

Every server and the load generator share the machine, so the numbers include
that contention; they are printed and written to ``benchmarks/results/``, never
asserted in tests.

Usage::

    python benchmarks/bench_serving.py            # full run (a few minutes)
    python benchmarks/bench_serving.py --quick    # smoke run: short cells, fewer levels
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADULT = ROOT / "examples" / "adult"
RESULTS = ROOT / "benchmarks" / "results"
NAME = "income"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- load generator (its own process) -------------------------------------------------
async def drive(
    port: int, path: str, body: bytes, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """Closed-loop load: ``concurrency`` connections, each with one request in flight."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + duration

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= end:
                    return
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip())
                if length:
                    await reader.readexactly(length)
                done = time.perf_counter()
                if sent >= measure_from:
                    latencies.append(done - sent)
                    statuses[status] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return summarize(latencies, Counter({str(s): n for s, n in statuses.items()}), duration, "200")


def summarize(
    latencies: list[float], statuses: Counter[str], duration: float, ok: str
) -> dict[str, Any]:
    """A cell's throughput, latency percentiles and status counts (``ok``: the good one)."""
    latencies = sorted(latencies)

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
        )

    return {
        "requests": len(latencies),
        "rps": len(latencies) / duration,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "errors": sum(n for s, n in statuses.items() if s != ok),
        "statuses": dict(statuses),
    }


def run_load(
    port: int, path: str, body_file: Path, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--load", str(port), path, str(body_file),
           str(concurrency), str(duration), str(warmup)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


async def drive_grpc(
    port: int, body: bytes, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """Closed-loop gRPC load: ``concurrency`` callers on one channel, one call in flight each.

    The request is sent as serialized bytes and the answer kept as bytes (no protobuf work
    in the client); latencies are returned whole so several processes can be merged.
    """
    from grpc import aio

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + duration
    cpu = time.process_time()
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")

        async def client() -> None:
            while True:
                sent = time.perf_counter()
                if sent >= end:
                    return
                try:
                    await predict(body, timeout=30)
                    code = "OK"
                except aio.AioRpcError as exc:
                    code = exc.code().name
                done = time.perf_counter()
                if sent >= measure_from:
                    latencies.append(done - sent)
                    statuses[code] += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return {
        "latencies": latencies,
        "statuses": dict(statuses),
        "client_cpu": (time.process_time() - cpu) / wall,
    }


def run_grpc_load(
    port: int, body_file: Path, concurrency: int, duration: float, warmup: float, procs: int
) -> dict[str, Any]:
    """``drive_grpc`` in ``procs`` processes (concurrency split between them), merged."""
    procs = max(1, min(procs, concurrency))
    shares = [concurrency // procs + (i < concurrency % procs) for i in range(procs)]
    running = [
        subprocess.Popen(
            [sys.executable, __file__, "--grpc-load", str(port), str(body_file), str(share),
             str(duration), str(warmup)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]  # fmt: skip
    parts = []
    for proc in running:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"the gRPC load generator failed ({proc.returncode})")
        parts.append(json.loads(out))
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    latencies = [x for part in parts for x in part["latencies"]]
    return {
        **summarize(latencies, statuses, duration, "OK"),
        "client_procs": procs,
        "client_cpu": [round(part["client_cpu"], 3) for part in parts],
    }


def grpc_echo_server(port: int) -> None:
    """The gRPC framework's own ceiling: a grpc.aio server whose Predict returns the request
    bytes unchanged (no protobuf parse, no model), on uvloop as mooring's server runs."""
    import grpc
    import uvloop
    from grpc import aio

    async def serve() -> None:
        server = aio.server()

        async def predict(request: bytes, context: Any) -> bytes:
            return request

        handler = grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {"Predict": grpc.unary_unary_rpc_method_handler(predict)},
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(serve())


def grpc_requests(rows: list[dict[str, Any]], work: Path) -> tuple[Path, Path]:
    """Serialized TF Serving PredictRequests of the first row and of all rows."""
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    def request(chosen: list[dict[str, Any]]) -> bytes:
        message = predict_pb2.PredictRequest()
        message.model_spec.name = NAME
        for name in chosen[0]:
            values = [r[name] for r in chosen]
            proto = tensor_pb2.TensorProto()
            proto.tensor_shape.dim.add(size=len(values))
            if any(isinstance(v, str) for v in values):
                proto.dtype = types_pb2.DT_STRING
                proto.string_val.extend(("" if v is None else v).encode() for v in values)
            else:
                import numpy as np

                floats = [np.nan if v is None else v for v in values]
                proto.dtype = types_pb2.DT_FLOAT
                proto.tensor_content = np.asarray(floats, "<f4").tobytes()
            message.inputs[name].CopyFrom(proto)
        return bytes(message.SerializeToString())

    single, batch = work / "grpc_single.bin", work / "grpc_batch.bin"
    single.write_bytes(request(rows[:1]))
    batch.write_bytes(request(rows))
    return single, batch


# -- baseline servers (their own processes) --------------------------------------------
def _columns_from_rows(rows: list[dict[str, Any]], dtypes: dict[str, str]) -> dict[str, Any]:
    import numpy as np

    cols: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        if dtype == "string":
            cols[name] = np.array([r[name] or "" for r in rows], dtype=object)
        else:
            values = [np.nan if r[name] is None else r[name] for r in rows]
            cols[name] = np.array(values, dtype=np.float32)
    return cols


def naive_server(model_dir: Path, port: int, use_predict: bool) -> None:
    """What a team writes by hand: parse JSON, call the model, answer; one request at a time."""
    import numpy as np
    import tensorflow as tf
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    meta = json.loads((model_dir / "mooring.json").read_text())
    dtypes = {k: v["dtype"] for k, v in meta["signature"]["inputs"].items()}
    if use_predict:
        keras_model = _rebuild_keras(model_dir)

        def infer(cols: dict[str, Any]) -> dict[str, Any]:
            raw = keras_model.predict(cols, verbose=0)
            return {"probabilities": np.asarray(raw).tolist()}

    else:
        fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]

        def infer(cols: dict[str, Any]) -> dict[str, Any]:
            out = fn(**{k: tf.constant(v) for k, v in cols.items()})
            return {
                "probabilities": out["probabilities"].numpy().tolist(),
                "classes": [c.decode() for c in out["classes"].numpy()],
            }

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        result = infer(_columns_from_rows(body["instances"], dtypes))
        rows = len(body["instances"])
        return JSONResponse(
            {"predictions": [{k: v[i] for k, v in result.items()} for i in range(rows)]}
        )

    app = Starlette(routes=[Route(f"/v1/models/{NAME}:predict", predict, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _rebuild_keras(model_dir: Path) -> Any:
    from mooring.config import ModelConfig
    from mooring.features import FeatureSpec
    from mooring.training import LabelEncoding, build_model
    from mooring.training.checkpoints import latest_checkpoint, restore_weights

    meta = json.loads((model_dir / "mooring.json").read_text())
    spec = FeatureSpec.from_dict(meta["feature_spec"])
    label_d = dict(meta["label"])
    label_d["vocabulary"] = tuple(label_d["vocabulary"])
    label = LabelEncoding(**label_d)
    config = ModelConfig.model_validate(
        json.loads((model_dir.parent / "model_config.json").read_text())
    )
    model = build_model(spec, label, config)
    checkpoint = latest_checkpoint(model_dir.parent / "checkpoints")
    if checkpoint is None:
        raise SystemExit("no checkpoint to rebuild the Keras model from")
    restore_weights(checkpoint, model)
    return model


def ceiling(model_dir: Path, rows_file: Path, seconds: float) -> dict[str, Any]:
    """The signature called back to back at batch 64 in one process: the rows/s ceiling."""
    import tensorflow as tf

    meta = json.loads((model_dir / "mooring.json").read_text())
    dtypes = {k: v["dtype"] for k, v in meta["signature"]["inputs"].items()}
    rows = json.loads(rows_file.read_text())
    cols = _columns_from_rows(rows, dtypes)
    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    for _ in range(20):
        fn(**{k: tf.constant(v) for k, v in cols.items()})
    # A ceiling is a best case: on a shared machine one window can land on a busy moment,
    # so the rate is the best of several short windows (and all of them are recorded).
    rates = []
    for _ in range(6):
        calls = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / 6:
            out = fn(**{k: tf.constant(v) for k, v in cols.items()})
            out["probabilities"].numpy()
            calls += 1
        rates.append(calls / (time.perf_counter() - start))
    best = max(rates)
    return {
        "batch": len(rows),
        "calls_per_s": best,
        "rows_per_s": best * len(rows),
        "window_rows_per_s": [r * len(rows) for r in rates],
    }


def cold_phases(model_dir: Path, spawned_at: float, warmup_requests: int) -> dict[str, float]:
    """Time each step of a cold start in this fresh process (seconds, wall clock).

    ``python`` is from the parent's spawn to the first line here (interpreter start);
    ``registry`` registers the model in a fresh SQLite registry (not timed) and times
    opening it plus the verified fetch a server does.
    """
    phases: dict[str, float] = {"python": time.time() - spawned_at}

    def step(name: str, start: float) -> float:
        now = time.perf_counter()
        phases[name] = now - start
        return now

    t = time.perf_counter()
    from mooring.cli import load_commands

    load_commands("serve")  # what `mooring serve` imports before serving
    t = step("import_mooring_cli", t)
    from mooring._tensorflow import import_tensorflow

    import_tensorflow()  # as the server does: without Keras (overlapped there, not here)
    t = step("import_tensorflow", t)
    from mooring.registry import Registry
    from mooring.serving import load_served_model

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/registry.db"
        with Registry.open(url, artifacts=f"{tmp}/artifacts") as reg:
            reg.register(name=NAME, artifact_dir=model_dir, lineage={"data_fingerprint": "0"})
        t = time.perf_counter()
        with Registry.open(url, artifacts=f"{tmp}/artifacts") as reg:
            path = reg.load(NAME, version=1)
            t = step("registry_open_and_fetch", t)
            model = load_served_model(NAME, 1, path)
            t = step("savedmodel_load", t)
            model.warm_up(warmup_requests, 256)
            step("warmup", t)
    return phases


# -- orchestration ------------------------------------------------------------------
def build_adult_model(work: Path) -> Path:
    """Train the Adult model for one epoch; return its exported folder."""
    from mooring.config import load_config
    from mooring.contract import ReadOptions, compute_statistics
    from mooring.contract.schema import infer_schema
    from mooring.training import train_model

    cfg = load_config(ADULT / "mooring.toml")
    cfg.model.epochs = 1
    cfg.model.parity_records = 20
    stats = compute_statistics(cfg.path(cfg.data.train), ReadOptions.from_config(cfg.data))
    schema = infer_schema(stats, label=cfg.data.label)
    schema.save(work / "schema.yaml")  # the contract mooring checks at the door
    result = train_model(
        cfg, statistics=stats, schema=schema, output_dir=work / "run", tensorboard=False
    )
    (work / "run" / "model_config.json").write_text(cfg.model.model_dump_json())
    return result.model_dir


def request_rows(model_dir: Path, count: int) -> list[dict[str, Any]]:
    """Real rows of the Adult test file, typed as the signature expects (missing → null)."""
    import pyarrow.csv as pacsv

    meta = json.loads((model_dir / "mooring.json").read_text())
    inputs = meta["signature"]["inputs"]
    table = pacsv.read_csv(
        ADULT / "adult.test.csv.gz",
        convert_options=pacsv.ConvertOptions(null_values=["?", ""], strings_can_be_null=True),
    ).slice(0, count)
    rows = []
    for record in table.to_pylist():
        row: dict[str, Any] = {}
        for name, spec in inputs.items():
            value = record.get(name)
            if spec["dtype"] == "string":
                row[name] = None if value is None else str(value).strip()
            else:
                row[name] = None if value is None else float(value)
        rows.append(row)
    return rows


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> float:
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code in (200, 405):
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} not ready after {timeout} s")


def registry_project(model_dir: Path, work: Path) -> Path:
    """A project whose SQLite registry holds the model as production, as `mooring run`
    leaves it (the schema in the run record); returns its mooring.toml."""
    from mooring.contract.schema import Schema
    from mooring.dashboard.card import render_model_card
    from mooring.registry import Registry

    home = work / "home"
    config = work / "registry.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = "{home}"\n[data]\ntrain = "unused.csv"\n'
        "[serving]\nlog_sample_rate = 0.0\n"
    )
    schema = Schema.load(work / "schema.yaml").to_dict()
    url = f"sqlite:///{home / 'registry.db'}"
    home.mkdir(parents=True, exist_ok=True)
    with Registry.open(url, artifacts=str(home / "artifacts"), cache_dir=home / "cache") as reg:
        reg.register(
            name=NAME,
            artifact_dir=model_dir,
            lineage={"data_fingerprint": "0" * 64},
            gate={"blessed": True, "gates": []},
            run_record={"schema": schema},
            render_card=render_model_card,
        )
        reg.deploy(NAME, production=1)
    return config


def shadow_projects(model_dir: Path, work: Path) -> dict[str, Path]:
    """Two registry projects logging every request: ``shadow`` copies every request to a
    shadow version (the same model registered again, rate 1.0), ``plain`` has no shadow.
    Returns their mooring.toml files."""
    from mooring.config import load_config
    from mooring.registry import Registry

    configs: dict[str, Path] = {}
    schema_run = {"schema": _schema_dict(work)}
    for kind in ("plain", "shadow"):
        home = work / f"home-{kind}"
        config = work / f"{kind}.toml"
        config.write_text(
            f'[project]\nname = "{NAME}"\nhome = "{home}"\n[data]\ntrain = "unused.csv"\n'
            "[serving]\nlog_sample_rate = 1.0\nmax_in_flight = 1024\n"
        )
        with Registry.from_config(load_config(config)) as reg:
            for _ in range(2):
                reg.register(
                    name=NAME,
                    artifact_dir=model_dir,
                    lineage={"data_fingerprint": "0" * 64},
                    gate={"blessed": True, "gates": []},
                    run_record=schema_run,
                )
            reg.deploy(NAME, production=1)
            if kind == "shadow":
                reg.set_shadow(NAME, version=2, rate=1.0, reason="benchmark")
        configs[kind] = config
    return configs


def _schema_dict(work: Path) -> dict[str, Any]:
    from mooring.contract.schema import Schema

    return Schema.load(work / "schema.yaml").to_dict()


def start_server(
    kind: str,
    model_dir: Path,
    work: Path,
    serving: list[str] | None = None,
    grpc_port: int | None = None,
    config: Path | None = None,
) -> tuple[subprocess.Popen[bytes], int, float]:
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if kind == "mooring-registry":
        # What a project runs: `mooring serve -c mooring.toml`, the version from the registry.
        cmd = [sys.executable, "-m", "mooring", "serve", "--config",
               str(config or work / "registry.toml"), "--port", str(port),
               "--no-access-log"]  # fmt: skip
        probe = f"http://127.0.0.1:{port}/v2/health/ready"
    elif kind == "mooring":
        config = work / "mooring.toml"
        settings = "".join(f"{item}\n" for item in serving or [])
        config.write_text(
            f'[project]\nname = "{NAME}"\n[data]\ntrain = "unused.csv"\n[serving]\n{settings}'
        )
        cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config), "--port",
               str(port), "--model-dir", str(model_dir), "--schema", str(work / "schema.yaml"),
               "--no-access-log"]  # fmt: skip
        if grpc_port is not None:
            cmd += ["--grpc-port", str(grpc_port)]
        probe = f"http://127.0.0.1:{port}/v2/health/ready"
    else:
        cmd = [sys.executable, __file__, f"--{kind}-server", str(model_dir), str(port)]
        probe = f"http://127.0.0.1:{port}/v1/models/{NAME}:predict"
    spawned = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(probe, proc)
    return proc, port, time.perf_counter() - spawned


HEADER = (
    f"{'server':9} {'rows':>4} {'c':>3} {'req/s':>9} {'rows/s':>9} {'p50 ms':>8} "
    f"{'p99 ms':>8} {'errors':>6}"
)


def _line(x: dict[str, Any]) -> str:
    return (
        f"{x['server']:9} {x['rows']:>4} {x['concurrency']:>3} {x['rps']:>9.0f} "
        f"{x['rps'] * x['rows']:>9.0f} {x['p50_ms']:>8.2f} {x['p99_ms']:>8.2f} {x['errors']:>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="short cells, fewer levels (smoke run)"
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per cell")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_serving.json")
    parser.add_argument(
        "--serving",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [serving] setting for mooring, e.g. --serving inference_threads=1 (repeatable)",
    )
    parser.add_argument(
        "--cold-runs", type=int, default=None, help="cold starts per server (median reported)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only these servers (repeatable)"
    )
    parser.add_argument(
        "--grpc-procs", type=int, default=2, help="gRPC load-generator processes (default 2)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="head-to-head rounds of the floor's cell, 1 row at c=32 (median reported)",
    )
    args = parser.parse_args()
    # These cells measure the batcher at up to 64 closed-loop clients, not admission
    # (bench_overload.py measures that): admit them all.
    if not any(item.startswith("max_in_flight") for item in args.serving):
        args.serving.append("max_in_flight = 1024")
    duration = args.duration or (1.5 if args.quick else 6.0)
    args.cold_runs = args.cold_runs or (1 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 3)
    warmup = 0.5 if args.quick else 1.0
    levels = [1, 32] if args.quick else [1, 8, 32, 64]
    batch_levels = [8] if args.quick else [8, 32]
    contenders = ["mooring", "naive"] if args.quick else ["mooring", "naive", "predict"]
    contenders = [c for c in contenders if not args.only or c in args.only]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        model_dir = build_adult_model(work)
        print(f"built the Adult model in {time.perf_counter() - t0:.1f} s: {model_dir}")
        rows = request_rows(model_dir, 64)
        single = work / "single.json"
        single.write_bytes(json.dumps({"instances": rows[:1]}).encode())
        batch = work / "batch.json"
        batch.write_bytes(json.dumps({"instances": rows}).encode())
        rows_file = work / "rows.json"
        rows_file.write_text(json.dumps(rows))
        grpc_single, grpc_batch = grpc_requests(rows, work)
        cmd = [sys.executable, __file__, "--ceiling", str(model_dir), str(rows_file)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run(
            [*cmd, str(duration)], capture_output=True, text=True, check=True, env=env
        )
        top = json.loads(out.stdout)
        print(f"in-process ceiling at batch 64: {top['rows_per_s']:,.0f} rows/s")

        cells: list[dict[str, Any]] = []
        path = f"/v1/models/{NAME}:predict"
        for kind in contenders:
            grpc_port = free_port() if kind == "mooring" else None
            proc, port, _ = start_server(kind, model_dir, work, args.serving, grpc_port)
            try:
                for c in levels:
                    r = run_load(port, path, single, c, duration, warmup)
                    cells.append({"server": kind, "rows": 1, "concurrency": c, **r})
                    print(_line(cells[-1]), flush=True)
                for c in batch_levels if kind != "predict" else []:
                    r = run_load(port, path, batch, c, duration, warmup)
                    cells.append({"server": kind, "rows": 64, "concurrency": c, **r})
                    print(_line(cells[-1]), flush=True)
                # The same server over TF Serving's gRPC Predict.
                for rows_n, body_file in ((1, grpc_single), (64, grpc_batch)):
                    for c in [1, 32] if grpc_port is not None else []:
                        r = run_grpc_load(
                            grpc_port, body_file, c, duration, warmup, args.grpc_procs
                        )
                        cells.append({"server": "grpc", "rows": rows_n, "concurrency": c, **r})
                        print(_line(cells[-1]), f"client cpu {r['client_cpu']}", flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        # The gRPC framework's ceiling on this machine, for the grpc cells beside it.
        echo_port = free_port()
        echo = subprocess.Popen(
            [sys.executable, __file__, "--grpc-echo-server", str(echo_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(2.0)
            r = run_grpc_load(echo_port, grpc_single, 32, duration, warmup, args.grpc_procs)
            cells.append({"server": "grpc-echo", "rows": 1, "concurrency": 32, **r})
            print(_line(cells[-1]), f"client cpu {r['client_cpu']}", flush=True)
        finally:
            echo.terminate()
            echo.wait(timeout=60)
        # The floor's cell head to head: both servers up, single rows at c=32 alternating
        # between them `rounds` times, so a slow moment on a shared host falls on one
        # round of both, not on one server's only cell.
        rounds: dict[str, list[dict[str, Any]]] = {"mooring": [], "naive": []}
        if {"mooring", "naive"} <= set(contenders):
            servers = {k: start_server(k, model_dir, work, args.serving) for k in rounds}
            try:
                for _ in range(args.rounds):
                    for kind, (_, port, _) in servers.items():
                        rounds[kind].append(run_load(port, path, single, 32, duration, warmup))
            finally:
                for proc, _, _ in servers.values():
                    proc.terminate()
                    proc.wait(timeout=60)
        # Shadow at 100%: the same registry server with and without a shadow version that
        # gets a copy of every request, both up, single rows at c=32 alternating.
        shadow_rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "shadow": []}
        if "mooring" in contenders:
            projects = shadow_projects(model_dir, work)
            servers = {
                k: start_server("mooring-registry", model_dir, work, config=projects[k])
                for k in shadow_rounds
            }
            try:
                for _ in range(args.rounds):
                    for kind, (_, port, _) in servers.items():
                        r = run_load(port, path, single, 32, duration, warmup)
                        shadow_rounds[kind].append(r)
                        cell = {"server": f"{kind}", "rows": 1, "concurrency": 32, **r}
                        print("shadow at 100%:", _line(cell), flush=True)
            finally:
                for proc, _, _ in servers.values():
                    proc.terminate()
                    proc.wait(timeout=60)
        # Cold start, side by side: each server spawned `cold_runs` times, interleaved.
        registry_project(model_dir, work)
        cold_kinds = ["mooring", "mooring-registry", "naive"]
        cold_runs: dict[str, list[float]] = {k: [] for k in cold_kinds}
        for _ in range(args.cold_runs):
            for kind in cold_kinds:
                proc, _, started = start_server(kind, model_dir, work, args.serving)
                proc.terminate()
                proc.wait(timeout=60)
                cold_runs[kind].append(started)
        cold = {k: statistics.median(v) for k, v in cold_runs.items()}
        phase_runs = []
        for _ in range(1 if args.quick else 2):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
            cmd = [sys.executable, __file__, "--phases", str(model_dir), str(time.time()), "8"]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            phase_runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        phases = {k: statistics.median(r[k] for r in phase_runs) for k in phase_runs[0]}

    summary: dict[str, Any] = {
        "cold_start_s": cold,
        "cold_start_runs_s": cold_runs,
        "cold_start_phases_s": phases,
        "ceiling": top,
        "serving": args.serving,
    }
    grpc_cells = {(x["rows"], x["concurrency"]): x for x in cells if x["server"] == "grpc"}
    rest_single_32 = next(
        (
            x
            for x in cells
            if x["server"] == "mooring" and x["rows"] == 1 and x["concurrency"] == 32
        ),
        None,
    )
    if grpc_cells and rest_single_32 is not None:
        best = max((x for x in grpc_cells.values() if x["rows"] == 64), key=lambda x: x["rps"])
        ratio = grpc_cells[(1, 32)]["rps"] / rest_single_32["rps"]
        fraction = best["rps"] * 64 / top["rows_per_s"]
        summary["grpc_single_row_c32_vs_rest"] = ratio
        summary["grpc_rows64_fraction_of_ceiling"] = fraction
        summary["grpc_floors"] = {
            "single_row_c32_at_least_rest": ratio >= 1.0,
            "rows64_at_least_70pct_of_ceiling": fraction >= 0.70,
        }
    if shadow_rounds["plain"]:
        plain, shadowed = shadow_rounds["plain"], shadow_rounds["shadow"]
        cost = [1 - s_["rps"] / p["rps"] for p, s_ in zip(plain, shadowed, strict=True)]
        summary["shadow_100pct"] = {
            "rounds": shadow_rounds,
            "throughput_cost": statistics.median(cost),
            "p99_ms_plain": statistics.median(p["p99_ms"] for p in plain),
            "p99_ms_shadow": statistics.median(s_["p99_ms"] for s_ in shadowed),
            "floor_cost_at_most_15pct": statistics.median(cost) <= 0.15,
        }
    if not {"mooring", "naive"} <= set(contenders):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"cells": cells, "summary": summary}, indent=2) + "\n")
        return
    ratios = [m["rps"] / n["rps"] for m, n in zip(rounds["mooring"], rounds["naive"], strict=True)]
    summary["single_row_c32_rounds"] = rounds
    summary["single_row_c32_speedup_vs_naive"] = statistics.median(ratios)
    summary["single_row_c32_p99_ms"] = statistics.median(m["p99_ms"] for m in rounds["mooring"])
    best64 = max(
        (x for x in cells if x["server"] == "mooring" and x["rows"] == 64), key=lambda x: x["rps"]
    )
    summary["rows64_fraction_of_ceiling"] = best64["rps"] * 64 / top["rows_per_s"]

    print()
    print(HEADER)
    for x in cells:
        print(_line(x))
    print(f"in-process ceiling (batch 64): {top['rows_per_s']:,.0f} rows/s")
    print(
        f"cold start to ready (median of {args.cold_runs}): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in cold.items())
    )
    print("cold start phases (median): " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    for i, (m, n) in enumerate(zip(rounds["mooring"], rounds["naive"], strict=True), 1):
        print(
            f"head to head, 1 row c=32, round {i}: mooring {m['rps']:,.0f} req/s "
            f"(p99 {m['p99_ms']:.2f} ms), naive {n['rps']:,.0f} req/s: {m['rps'] / n['rps']:.2f}x"
        )
    print(
        f"single-row c=32 (median of {args.rounds} rounds): mooring / naive = "
        f"{summary['single_row_c32_speedup_vs_naive']:.2f}x, "
        f"mooring p99 {summary['single_row_c32_p99_ms']:.2f} ms"
    )
    print(f"64-row requests: {summary['rows64_fraction_of_ceiling']:.0%} of the in-process ceiling")
    if "grpc_floors" in summary:
        print(
            f"gRPC: single-row c=32 is {summary['grpc_single_row_c32_vs_rest']:.2f}x REST's; "
            f"64-row requests reach {summary['grpc_rows64_fraction_of_ceiling']:.0%} of the "
            f"in-process ceiling; floors {summary['grpc_floors']}"
        )

    if "shadow_100pct" in summary:
        sh = summary["shadow_100pct"]
        print(
            f"shadow at 100% (median of {args.rounds} rounds, single rows c=32, every request "
            f"logged on both): throughput cost {sh['throughput_cost']:.0%}, client p99 "
            f"{sh['p99_ms_plain']:.2f} ms without, {sh['p99_ms_shadow']:.2f} ms with"
        )

    report = {
        "benchmark": "serving",
        "quick": args.quick,
        "duration_s": duration,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "cells": cells,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        port_s, path, body_file, c_s, dur_s, warm_s = sys.argv[2:8]
        body = Path(body_file).read_bytes()
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        result = asyncio.run(drive(int(port_s), path, body, int(c_s), float(dur_s), float(warm_s)))
        print(json.dumps(result))
    elif len(sys.argv) > 1 and sys.argv[1] == "--grpc-load":
        port_s, body_file, c_s, dur_s, warm_s = sys.argv[2:7]
        body = Path(body_file).read_bytes()
        result = asyncio.run(drive_grpc(int(port_s), body, int(c_s), float(dur_s), float(warm_s)))
        print(json.dumps(result))
    elif len(sys.argv) > 1 and sys.argv[1] == "--grpc-echo-server":
        grpc_echo_server(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] in ("--naive-server", "--predict-server"):
        naive_server(
            Path(sys.argv[2]), int(sys.argv[3]), use_predict=sys.argv[1] == "--predict-server"
        )
    elif len(sys.argv) > 1 and sys.argv[1] == "--phases":
        phases = cold_phases(Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps(phases))
    elif len(sys.argv) > 1 and sys.argv[1] == "--ceiling":
        print(json.dumps(ceiling(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))))
    else:
        main()
