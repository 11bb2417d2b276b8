"""Benchmark: mooring's REST server against HTTP stacks' constant replies and a naive endpoint.

One run builds the Adult model once (``train_model`` on ``examples/adult``, one epoch)
and takes 64 real rows of the Adult test file. Every server runs in its own process on
127.0.0.1 and serves that model (the ceiling serves none); REST load comes from ``wrk``
(a C load generator, its own process, closed loop: each connection sends its next
request when the previous answer arrives; ``--latency`` for p50/p90/p99). A Lua script
POSTs the rows in turn: single-row bodies are ``{"instances": [row]}`` cycling over the
64 rows, 64-row bodies are ``{"instances": rows}``. The servers:

* ``ceiling``: a trivial uvicorn + Starlette endpoint on the same stack (uvloop and
  httptools as uvicorn picks them) that reads the body, parses it with
  ``orjson.loads`` and answers a fixed small JSON document: the HTTP stack's own
  ceiling on this machine; and for each ``--workers-levels`` entry above 1,
  ``ceiling-wN``, the same endpoint on uvicorn's own ``--workers N``;
* ``granian`` / ``granian-wN``: the same constant reply on granian's own interface (RSGI,
  ``_wrk.granian_app``: the body read, not parsed, then the answer), ``granian
  --interface rsgi --http 1 --no-ws --workers N --runtime-threads 1`` for each level, as
  ``bench_doors.py`` starts it. granian is not a dependency of mooring: ``--granian
  PATH`` names its executable (its own venv), else ``granian`` beside this interpreter,
  then on ``PATH``; none found, its cells are skipped with a line saying so. The
  ratios to it are informational (the floors are set against uvicorn's);
* ``mooring-w1``, ``mooring-w2``: ``mooring serve -c <project>.toml --workers N`` from a
  SQLite registry holding the model as production, ``[serving] log_sample_rate = 1.0``
  (every request in the prediction log) and ``max_in_flight = 1024`` (these cells
  measure the batcher, not admission: ``bench_overload.py`` does that), one server per
  ``--workers-levels`` entry ("1,2"); ``--workers`` is passed explicitly, 1 included,
  when ``mooring serve`` has the option (without it, only level 1 runs, without the
  flag), and every other mooring server below gets the first level's; all mooring
  servers run with ``--no-access-log`` unless ``--access-log`` (then to a file);
* ``mooring-nolog``: the same as the first level's server with ``log_sample_rate = 0.0``:
  the prediction log's cost is ``1 - mooring / mooring-nolog`` throughput. After the
  rounds the two are also measured head to head (``--log-pairs`` pairs of
  ``--log-pair-s`` cells, 1 and 64 rows at c=32, the order alternating by pair): each
  pair's throughput ratio and each server's CPU per request (its processes' utime +
  stime over the cell, from ``/proc``). A pair's two cells are seconds apart, so a slow
  moment of the machine hits both; the logging cost floor reads these pairs when they
  ran, else the rounds;
* ``naive``: what a team writes by hand, a uvicorn + Starlette endpoint that parses the
  JSON and calls the SavedModel signature once per request on the event loop.

Cells (``wrk -t2``; ``-t1 -c1`` at c=1): single rows at c=32 for every server; single
rows at c=1 for the first level's mooring, its two constant replies on as many workers
and naive; 64-row requests at c=32 for every mooring server, naive and the two constant
replies on each level's worker count (the 64-row floor is a share of their rows/s).
Each records 200s per second (non-2xx answers are errors, not throughput), rows/s,
p50/p90/p99 and the non-2xx and socket errors.
``--rounds`` rounds (3): in a round every server is up at once and the cells are
interleaved across servers (the servers' order rotating by round), so a slow moment of
the shared machine hits all of them; a cell reports the median of its rounds and every
round's values, ratios are medians of per-round ratios. Before the rounds each server
answers a few warm-up requests and idles 2 s, then its idle memory is read: VmRSS and
Pss (``/proc/<pid>/smaps_rollup``) summed over the server process and all its
descendants (the workers); then one unrecorded ``wrk`` second per body warms it up
(``--quick``, a smoke run whose figures are not compared: 0.5 s idle, no such second).
After the rounds, each mooring server's ``/metrics`` gives the rows its prediction log
wrote and dropped. A server that exits before its cells end is reported with the end of
its log.

Beside them:

* ``in-process``: the signature called back to back at batch 64 in one process (numpy →
  tensors → outputs, no HTTP), the best of six windows: the rows/s ceiling;
* ``grpc``: ``mooring serve --model-dir --schema --grpc-port`` (``mooring-dir``, the
  ``--serving`` settings, the first level's workers) over TF Serving's ``Predict``
  (``grpc``: 1 and 64 rows, c=1 and c=32) and OIP's ``ModelInfer`` with binary tensors
  (``grpc-infer``: 1 and 64 rows, c=32), driven by ``h2load`` (``benchmarks/_h2load.py``:
  a C client; a Python gRPC client saturates first), each cell's calls checked OK by
  their DATA bytes and by grpcio calls after it; the same server's REST at 1 and 64
  rows, c=32 (``wrk``) is the comparison, and ``grpc-echo`` (c=1 and c=32), the gRPC
  library answering a fixed reply of the single-row answer's size on as many worker
  processes sharing one port, is gRPC's own ceiling. These cells are interleaved over
  ``--rounds`` rounds, as the REST cells are;
* ``shadow``: two registry servers logging every request, one with a shadow version that
  gets a copy of every request (rate 1.0), single rows at c=32 by ``wrk``, alternating
  ``--rounds`` times: the median throughput cost, both p99s and both servers' CPU per
  request (all their processes, from ``/proc``), and the shadow's copies by outcome and
  those dropped (its ``/metrics``);
* ``cold``: the time from spawning a server to its first 200: ``/v2/health/ready`` for
  ``mooring serve -c`` on the first level's registry project (``mooring-registry``,
  ``--workers`` as above; and at the second level, ``mooring-registry-w2``: the first
  worker's first ready answer) and for ``mooring serve --model-dir`` (``mooring-dir``), a
  single-row POST answered 200 for ``naive`` and for the constant replies on the first
  level's worker count (``ceiling``/``ceiling-wN``, ``granian``/``granian-wN``); each
  spawned ``--cold-runs`` times
  (5), interleaved, median reported. Each start then answers a few warm-up requests and
  idles 2 s, and its idle memory is read as above: each server **alone** on the machine,
  as a user runs it. Beside the other servers, a process shares the pages of the
  libraries it touched (TensorFlow's start-up code) with them, and PSS divides those
  pages among everyone who maps them;
* ``phases``: each step of a start timed in sequence (the server overlaps TensorFlow's
  import with its own).

``--profile``: one more single-row c=32 ``wrk`` run against the first level's mooring,
with ``py-spy record -r 250 -f raw --threads --nonblocking`` attached for
``--profile-s`` seconds to the process doing the work (the busiest of the server's
process tree: the worker where there are workers). Each sample goes to the innermost
frame that a table of stages matches (read, parse, contract, route, queue, batch
assembly, model, split, format, metrics, access log, prediction log; a sample matching
none is "HTTP stack" when its innermost frame is uvicorn, Starlette, asyncio or
mooring's door, "other" otherwise). Per thread group (main, infer_*, the prediction
log's writer, others): each stage's share of the samples and its µs per request = share
× the group's CPU time in the window (``/proc``) / the requests answered in it (wrk's
rate × the window, times the profiled process's share of the server's CPU where there
are several workers). A sample whose innermost frame waits (an executor thread's
``queue.get``, a ``threading`` wait: runnable, but waiting for work or a CPU) counts as
"waiting", outside the shares. ``--nonblocking`` reads stacks while the process runs,
so a few samples are torn. The raw samples are kept beside the report (``.pyspy.txt``).

Floors, printed as pass/MISS with the number, never asserted (logging every request, as
the example config does): single rows at c=32, each mooring level ≥ 60% of uvicorn's
constant reply on as many workers (req/s) with p99 ≤ 10 ms; single rows at c=1,
mooring's p50 ≤ 0.5 ms; 64-row requests at c=32, each level's rows/s ≥ 20% of the
constant reply's on as many workers (its req/s × 64); ``--workers 2`` ≥ 1.5×
``--workers 1`` on 64-row requests; cold start ≤ 1.5 s to the first 200; idle RSS and
PSS of mooring ≤ naive's, and two workers ≤ 450 MiB PSS (alone, where ``cold`` ran; else
beside the others); logging cost ≤ 5% (single rows and 64-row requests at c=32); shadow
at 100% costs ≤ 15%; gRPC ``Predict`` and ``ModelInfer`` single rows at c=32 ≥ 80% of
``grpc-echo``, and at 64 rows c=32 at least REST's rate. The ratios to granian's
constant reply are printed beside them, without a floor.

Everything shares the machine (servers and load generators), so the numbers include
that contention. The tables are printed as Markdown and written with the machine's
description (CPUs, load average before and after, Python, platform, wrk) to
``benchmarks/results/serving-<time>.json`` (and ``.md``); nothing is asserted in tests.

Usage::

    python benchmarks/bench_serving.py                      # full run (~10 minutes)
    python benchmarks/bench_serving.py --profile            # and the py-spy stage profile
    python benchmarks/bench_serving.py --workers-levels 1   # without `serve --workers`
    python benchmarks/bench_serving.py --quick              # smoke run: 2 s cells, 1 round
    python benchmarks/bench_serving.py --only mooring --only naive   # some servers only
    python benchmarks/bench_serving.py --quick --work build/serving   # model kept, reused
    python benchmarks/bench_serving.py --workers-levels 2 --granian ../granian-venv/bin/granian
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _h2load import MODEL_INFER, echo_server, grpc_call, h2load
from _h2load import PREDICT as PREDICT_RPC
from _wrk import (
    find_granian,
    granian_command,
    granian_version,
    lua_script,
    read_wrk,
    trivial_server,
    wrk,
    wrk_command,
)
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry._judged import register_judged

ROOT = Path(__file__).resolve().parent.parent
ADULT = ROOT / "examples" / "adult"
RESULTS = ROOT / "benchmarks" / "results"
NAME = "income"
PREDICT = f"/v1/models/{NAME}:predict"
PARTS = ("ceiling", "mooring", "mooring-nolog", "naive", "in-process", "grpc", "shadow",
         "cold", "phases")  # fmt: skip
WRK_TIMEOUT_S = 10.0  # wrk's per-request timeout (a later answer is a socket error)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- gRPC (h2load drives it: benchmarks/_h2load.py) -------------------------------------
def wait_until_grpc(port: int, message: bytes, limit_s: float = 60.0) -> None:
    """Wait until the gRPC server on ``port`` answers a Predict call OK."""
    stop_at = time.monotonic() + limit_s
    while time.monotonic() < stop_at:
        with contextlib.suppress(Exception):
            if grpc_call(port, PREDICT_RPC, message, 1)[0] == "OK":
                return
        time.sleep(0.2)
    raise SystemExit(f"no gRPC answer on port {port} within {limit_s:.0f} s")


def grpc_requests(rows: list[dict[str, Any]], work: Path) -> list[Path]:
    """Serialized TF Serving PredictRequests and OIP ModelInferRequests (binary tensors in
    ``raw_input_contents``, as tritonclient sends them) of the first row and of all rows."""
    import numpy as np
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    from mooring.serving._grpc.protos import open_inference_grpc_pb2 as oip

    def strings(chosen: list[dict[str, Any]], name: str) -> list[bytes] | None:
        values = [r[name] for r in chosen]
        if any(isinstance(v, str) for v in values):
            return [("" if v is None else v).encode() for v in values]
        return None

    def floats(chosen: list[dict[str, Any]], name: str) -> bytes:
        values = [np.nan if r[name] is None else r[name] for r in chosen]
        return np.asarray(values, "<f4").tobytes()

    def predict(chosen: list[dict[str, Any]]) -> bytes:
        message = predict_pb2.PredictRequest()
        message.model_spec.name = NAME
        for name in chosen[0]:
            proto = tensor_pb2.TensorProto()
            proto.tensor_shape.dim.add(size=len(chosen))
            texts = strings(chosen, name)
            if texts is not None:
                proto.dtype = types_pb2.DT_STRING
                proto.string_val.extend(texts)
            else:
                proto.dtype = types_pb2.DT_FLOAT
                proto.tensor_content = floats(chosen, name)
            message.inputs[name].CopyFrom(proto)
        return bytes(message.SerializeToString())

    def infer(chosen: list[dict[str, Any]]) -> bytes:
        message = oip.ModelInferRequest(model_name=NAME)
        for name in chosen[0]:
            tensor = message.inputs.add(name=name, shape=[len(chosen)])
            texts = strings(chosen, name)
            if texts is not None:
                tensor.datatype = "BYTES"
                raw = b"".join(len(t).to_bytes(4, "little") + t for t in texts)
            else:
                tensor.datatype = "FP32"
                raw = floats(chosen, name)
            message.raw_input_contents.append(raw)
        return bytes(message.SerializeToString())

    made = []
    for kind, build in (("predict", predict), ("infer", infer)):
        for label, chosen in (("single", rows[:1]), ("batch", rows)):
            path = work / f"grpc_{kind}_{label}.bin"
            path.write_bytes(build(chosen))
            made.append(path)
    return made


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


def naive_server(model_dir: Path, port: int) -> None:
    """What a team writes by hand: parse JSON, call the model, answer; one request at a time."""
    import tensorflow as tf
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    meta = json.loads((model_dir / "mooring.json").read_text())
    dtypes = {k: v["dtype"] for k, v in meta["signature"]["inputs"].items()}
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

    app = Starlette(routes=[Route(PREDICT, predict, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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
    from mooring.serving._loaded import load_served_model

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/registry.db"
        with Registry.open(url, artifacts=f"{tmp}/artifacts") as reg:
            reg.register(
                name=NAME,
                artifact_dir=model_dir,
                record=VersionRecord(lineage={"data_fingerprint": "0"}),
            )
        t = time.perf_counter()
        with Registry.open(url, artifacts=f"{tmp}/artifacts") as reg:
            path = reg.load(NAME, version=1)
            t = step("registry_open_and_fetch", t)
            model = load_served_model(NAME, 1, path)
            t = step("savedmodel_load", t)
            model.warm_up(warmup_requests, 256)
            step("warmup", t)
    return phases


# -- the model, its rows and the servers -----------------------------------------------
def start_mode(mode: str, *args: object) -> subprocess.Popen[str]:
    """Start this script in one of its own modes (``--build-model``, ``--ceiling``, …) in a
    fresh process with TensorFlow's native logs quiet; :func:`mode_output` collects it.

    The driver never imports TensorFlow itself: a server's idle memory is then its own
    (a library page the driver also mapped would be shared with it)."""
    return subprocess.Popen(
        [sys.executable, __file__, mode, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def mode_output(proc: subprocess.Popen[str]) -> str:
    """The standard output of a mode started with :func:`start_mode`, once it has ended."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out, err)
    return out


def run_mode(mode: str, *args: object) -> str:
    """Run this script in one of its own modes and return its standard output."""
    return mode_output(start_mode(mode, *args))


def build_adult_model(work: Path) -> Path:
    """Train the Adult model for one epoch; return its exported folder."""
    from mooring._tensorflow import quiet_native_logs

    with quiet_native_logs():  # TensorFlow's native start-up lines, as the CLI hides them
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # where a CPU machine reports its CUDA probe
    from mooring.config import load_config
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.training._train import train_model

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


def adult_model(work: Path) -> Path:
    """The Adult model of a ``--work`` folder: the one built there before (its path in
    ``model_dir.txt``), else one built now in its own process and recorded there."""
    built = work / "model_dir.txt"
    if built.exists() and Path(built.read_text()).is_dir():
        model_dir = Path(built.read_text())
        print(f"the Adult model built before: {model_dir}", flush=True)
        return model_dir
    t0 = time.perf_counter()
    model_dir = Path(run_mode("--build-model", work).strip().splitlines()[-1])
    built.write_text(str(model_dir))
    print(f"built the Adult model in {time.perf_counter() - t0:.1f} s: {model_dir}", flush=True)
    return model_dir


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


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0, body: bytes | None = None
) -> float:
    """Seconds until ``url`` answers: a GET answered 200 (or 405: the route exists), or
    with ``body``, that body POSTed and answered 200."""
    import httpx

    # Plain HTTP: verify=False spares each probe a TLS context (~50 ms of CPU, beside a
    # starting server, every 20 ms).
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if body is None:
                ok = httpx.get(url, timeout=2, verify=False).status_code in (200, 405)
            else:
                headers = {"Content-Type": "application/json"}
                res = httpx.post(url, content=body, headers=headers, timeout=10, verify=False)
                ok = res.status_code == 200
            if ok:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} not ready after {timeout} s")


def registry_project(model_dir: Path, work: Path, tag: str, serving: list[str]) -> Path:
    """A project (``work/<tag>.toml``, home ``work/home-<tag>``) whose SQLite registry holds
    the model as production, as `mooring run` leaves it (the schema in the run record),
    with ``serving`` as its ``[serving]`` lines; returns its mooring.toml."""
    from mooring.contract._schema import Schema
    from mooring.dashboard._card import render_model_card
    from mooring.registry import Registry

    home = work / f"home-{tag}"
    config = work / f"{tag}.toml"
    lines = "".join(f"{line}\n" for line in serving)
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = "{home}"\n[data]\ntrain = "unused.csv"\n'
        f"[serving]\n{lines}"
    )
    schema = Schema.load(work / "schema.yaml").to_dict()
    url = f"sqlite:///{home / 'registry.db'}"
    home.mkdir(parents=True, exist_ok=True)
    with Registry.open(url, artifacts=str(home / "artifacts"), cache_dir=home / "cache") as reg:
        register_judged(
            reg,
            name=NAME,
            artifact_dir=model_dir,
            record=VersionRecord(
                lineage={"data_fingerprint": "0" * 64},
                gate={"blessed": True, "gates": []},
                run=RunRecord.read({"schema": schema}),
            ),
            render_card=render_model_card,
        )
        reg.deploy(NAME, production=1)
    return config


def serving_lines(given: list[str], **fixed: Any) -> list[str]:
    """``[serving]`` lines: ``given`` (``KEY = VALUE``) without the keys of ``fixed``, then
    ``fixed`` itself."""
    kept = [item for item in given if item.split("=", 1)[0].strip() not in fixed]
    return [*kept, *(f"{key} = {json.dumps(value)}" for key, value in fixed.items())]


@functools.cache
def workers_option() -> bool:
    """Whether ``mooring serve`` has a ``--workers`` option (read from its help)."""
    env = {**os.environ, "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "mooring", "serve", "--help"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    return re.search(r"--workers\b", out.stdout + out.stderr) is not None


@dataclass
class Server:
    """A server process being started or running."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    probe: str
    body: bytes | None  # POSTed to ``probe`` (200 wanted) when set, else a GET
    spawned: float
    log: Path | None = None  # its stdout and stderr

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREDICT}"

    def wait(self) -> float:
        """Seconds from the spawn until the probe answered."""
        try:
            wait_ready(self.probe, self.proc, body=self.body)
        except SystemExit as exc:
            dead = self.exited()
            raise SystemExit(f"{self.name}: {exc}\n{dead['log_tail'] if dead else ''}") from None
        return time.perf_counter() - self.spawned

    def exited(self) -> dict[str, Any] | None:
        """The exit status and the end of the log of a server that has exited (None while
        it runs): one that exits during a cell explains its errors."""
        code = self.proc.poll()
        if code is None:
            return None
        lines: list[str] = []
        if self.log is not None and self.log.exists():
            noise = ("I0000", "W0000", "E0000")  # TensorFlow's start-up lines
            text = self.log.read_text(errors="replace")
            lines = [line for line in text.splitlines() if not line.startswith(noise)]
        return {"returncode": code, "log_tail": "\n".join(lines[-20:])}


def spawn_server(  # noqa: PLR0913 - one keyword per server setting a cell varies
    kind: str,
    model_dir: Path,
    work: Path,
    serving: list[str] | None = None,
    grpc_port: int | None = None,
    config: Path | None = None,
    workers: int | None = None,
    body: bytes | None = None,
    access_log: bool = False,
    name: str | None = None,
    logs: Path | None = None,
    granian: str | None = None,
) -> Server:
    """Start a server: ``mooring-registry`` (``mooring serve -c config``), ``mooring``
    (``--model-dir --schema``, ``serving`` as its settings), ``naive`` or ``trivial``
    (this file's endpoints), or ``granian`` (the constant reply on RSGI, ``granian`` the
    executable). ``workers`` is passed as ``--workers`` when given; ``body`` makes
    readiness a POST of it answered 200 (naive, trivial and granian only); with ``logs``,
    the server's output goes to a file there (otherwise nowhere)."""
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    quiet = [] if access_log else ["--no-access-log"]
    if kind == "mooring-registry":
        # What a project runs: `mooring serve -c mooring.toml`, the version from the registry.
        if config is None:
            raise ValueError("a registry server needs its project's mooring.toml")
        cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config),
               "--port", str(port), *quiet]  # fmt: skip
    elif kind == "mooring":
        config = work / "mooring.toml"
        settings = "".join(f"{item}\n" for item in serving or [])
        config.write_text(
            f'[project]\nname = "{NAME}"\n[data]\ntrain = "unused.csv"\n[serving]\n{settings}'
        )
        cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config), "--port",
               str(port), "--model-dir", str(model_dir), "--schema", str(work / "schema.yaml"),
               *quiet]  # fmt: skip
        if grpc_port is not None:
            cmd += ["--grpc-port", str(grpc_port)]
    elif kind in ("naive", "trivial"):
        extra = [str(model_dir)] if kind == "naive" else []
        tail = [str(workers)] if kind == "trivial" and workers is not None else []
        cmd = [sys.executable, __file__, f"--{kind}-server", *extra, str(port), *tail]
    elif kind == "granian":
        if granian is None:
            raise ValueError("a granian server needs the granian executable")
        cmd = granian_command(granian, port, workers or 1)
    else:
        raise ValueError(f"unknown server kind {kind!r}")
    if kind.startswith("mooring"):
        probe, body = f"http://127.0.0.1:{port}/v2/health/ready", None
        if workers is not None:
            cmd += ["--workers", str(workers)]
    else:
        probe = f"http://127.0.0.1:{port}{PREDICT}"
    name = name or kind
    log = None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}-{port}.log"
    spawned = time.perf_counter()
    with open(log or os.devnull, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, proc, port, probe, body, spawned, log)


def start_server(
    kind: str,
    model_dir: Path,
    work: Path,
    serving: list[str] | None = None,
    grpc_port: int | None = None,
    config: Path | None = None,
    workers: int | None = None,
    body: bytes | None = None,
) -> tuple[subprocess.Popen[bytes], int, float]:
    """Start a server (see :func:`spawn_server`) and wait until it answers: its process,
    port and the seconds from the spawn to its first good answer."""
    server = spawn_server(kind, model_dir, work, serving, grpc_port, config, workers, body)
    return server.proc, server.port, server.wait()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _kib(path: str, field: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {field} in {path}")


def tree_memory(pid: int) -> dict[str, Any]:
    """VmRSS and Pss (MiB) summed over a server and its descendants."""
    rss = pss = 0
    pids = process_tree(pid)
    for p in pids:
        try:
            rss += _kib(f"/proc/{p}/status", "VmRSS")
            pss += _kib(f"/proc/{p}/smaps_rollup", "Pss")
        except (OSError, ValueError):
            continue
    return {"processes": len(pids), "rss_mib": rss / 1024, "pss_mib": pss / 1024}


def cpu_seconds(stat_path: str) -> float:
    """utime + stime of a process or thread (``/proc/.../stat``), in seconds."""
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each process of ``pid``'s tree."""
    used = {}
    for p in process_tree(pid):
        try:
            used[p] = cpu_seconds(f"/proc/{p}/stat")
        except (OSError, IndexError):
            continue
    return used


def busiest(pid: int) -> int:
    """The process of ``pid``'s tree that used the most CPU: the worker that served."""
    used = tree_cpu(pid)
    return max(used, key=lambda p: used[p]) if used else pid


def stop_server(proc: subprocess.Popen[bytes]) -> list[int]:
    """Stop a server and wait for it; the pids of its descendants that outlived it by 5 s
    (then sent SIGKILL: they would hold memory and CPU through the rest of the run)."""
    family = process_tree(proc.pid)[1:]
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=60)
    deadline = time.monotonic() + 5
    left = family
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if _alive(p)]
    for p in left:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    return left


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def warm_up(server: Server, bodies: list[bytes], count: int = 10, limit_s: float = 60.0) -> None:
    """POST each body until it is answered 200 ``count`` times in a row, each on a new
    connection (so every worker of a server gets some)."""
    import httpx

    headers = {"Content-Type": "application/json"}
    start = time.perf_counter()
    for body in bodies:
        streak, last = 0, ""
        while streak < count:
            if time.perf_counter() - start > limit_s:
                raise SystemExit(f"{server.name} did not answer 200 in warm-up: {last}")
            try:
                res = httpx.post(  # plain HTTP: no TLS context to build per request
                    server.url, content=body, headers=headers, timeout=30, verify=False
                )
                streak, last = (streak + 1, "") if res.status_code == 200 else (0, res.text)
            except httpx.TransportError as exc:
                streak, last = 0, repr(exc)
            if streak == 0:
                time.sleep(0.1)


def head_to_head(
    pair: dict[str, Server], scripts: dict[int, Path], count: int, seconds: float
) -> dict[str, Any]:
    """The logging server against the non-logging one, cell by cell (``pair``: "log" and
    "nolog"), at c=32 for each request size: per pair the req/s ratio log / nolog, and
    each server's CPU per request (all its processes); medians over ``count`` pairs."""
    out: dict[str, Any] = {}
    for rows_n, script in sorted(scripts.items()):
        rps: dict[str, list[float]] = {"log": [], "nolog": []}
        cpu: dict[str, list[float]] = {"log": [], "nolog": []}
        for i in range(count):
            for kind in ("log", "nolog") if i % 2 == 0 else ("nolog", "log"):
                server = pair[kind]
                before = sum(tree_cpu(server.proc.pid).values())
                res = wrk(server.url, script, seconds, 32, timeout_s=WRK_TIMEOUT_S)
                used = sum(tree_cpu(server.proc.pid).values()) - before
                rps[kind].append(res["rps"])
                cpu[kind].append(used / max(res["requests"], 1) * 1e6)
            print(
                f"logging head to head, {rows_n} rows, pair {i + 1}: "
                f"{rps['log'][-1]:,.0f} vs {rps['nolog'][-1]:,.0f} req/s",
                flush=True,
            )
        ratios = [a / b for a, b in zip(rps["log"], rps["nolog"], strict=True) if b]
        out[str(rows_n)] = {
            "seconds": seconds,
            "rps": rps,
            "ratios": ratios,
            "ratio_median": statistics.median(ratios),
            "cpu_us_per_request": {k: statistics.median(v) for k, v in cpu.items()},
            "cpu_us_per_request_runs": cpu,
        }
    return out


def log_counts(server: Server) -> dict[str, float | None]:
    """The prediction log's rows written and dropped, from one ``/metrics`` answer (one
    worker's where there are several workers and each answers for itself)."""
    import httpx

    from mooring.formats._metrics import PREDICTION_LOG_DROPPED, PREDICTION_LOG_ROWS

    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    except httpx.TransportError:
        return {"written": None, "dropped": None}

    def total(name: str) -> float | None:
        values = re.findall(rf"^{name}_total(?:{{[^}}]*}})? ([\d.e+]+)$", text, re.MULTILINE)
        return sum(float(v) for v in values) if values else None

    return {"written": total(PREDICTION_LOG_ROWS), "dropped": total(PREDICTION_LOG_DROPPED)}


def shadow_copies(server: Server) -> dict[str, float]:
    """The shadow's copies by outcome (``ok``, ``timeout``, ``error``) and those dropped,
    from one ``/metrics`` answer (one worker's where there are several)."""
    import httpx

    from mooring.formats._metrics import read_samples

    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    except httpx.TransportError:
        return {}
    out: dict[str, float] = {}
    for sample in read_samples(text):
        if sample.name == "mooring_shadow_requests_total":
            key = sample.labels.get("outcome", "?")
        elif sample.name == "mooring_shadow_dropped_total":
            key = "dropped"
        else:
            continue
        out[key] = out.get(key, 0.0) + sample.value
    return out


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
                register_judged(
                    reg,
                    name=NAME,
                    artifact_dir=model_dir,
                    record=VersionRecord(
                        lineage={"data_fingerprint": "0" * 64},
                        gate={"blessed": True, "gates": []},
                        run=RunRecord.read(schema_run),
                    ),
                )
            reg.deploy(NAME, production=1)
            if kind == "shadow":
                reg.set_shadow(NAME, version=2, rate=1.0, reason="benchmark")
        configs[kind] = config
    return configs


def _schema_dict(work: Path) -> dict[str, Any]:
    from mooring.contract._schema import Schema

    return Schema.load(work / "schema.yaml").to_dict()


# -- profile: py-spy samples by stage ----------------------------------------------------
STAGES = (
    *("read", "parse", "contract", "route", "queue", "batch assembly", "model", "split"),
    *("format", "metrics", "access log", "prediction log", "HTTP stack", "other", "waiting"),
)
# (stage, a piece of the frame's file path, the functions (the end of py-spy's qualified
# name), or None for all of the file's). A sample goes to the innermost frame matching one.
STAGE_FRAMES: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("read", "mooring/serving/_door.py", ("data_received", "act", "_fast")),
    ("format", "mooring/serving/_door_core.py", ("Core.head", "Core.body")),  # framing
    ("read", "mooring/serving/_door_core.py", None),  # the door's parsing and decisions
    ("read", "mooring/serving/_door_framing.py", None),
    ("read", "mooring/serving/_http.py", ("read_body",)),
    ("read", "mooring/serving/_endpoints.py", ("_body",)),
    ("parse", "mooring/formats/_columns.py", None),  # orjson.loads runs inside (C, no frame)
    ("parse", "mooring/serving/_protocols/tfserving.py", ("parse_predict", "parse_path")),
    ("parse", "mooring/serving/_protocols/v2.py", ("parse_infer", "parse_path", "split_body",
     "binary_column", "bytes_elements")),
    ("contract", "mooring/serving/_contract.py", None),
    ("route", "mooring/serving/_models.py", ("ModelManager.route",)),
    ("route", "mooring/serving/_predict.py", ("Predictor.route",)),
    ("route", "mooring/serving/_endpoints.py", ("_route",)),
    ("queue", "mooring/serving/_batcher.py", ("submit", "_gather", "_sleep", "_poke",
     "_depth_changed", "_release", "_expire")),
    ("queue", "mooring/serving/_models.py", ("Slot.predict",)),
    ("batch assembly", "mooring/serving/_batcher.py", ("merge_columns", "_run")),
    # The executor's hand-off of a batch to the inference thread, and of its outputs back.
    ("queue", "/concurrent/futures/", None),
    ("model", "mooring/serving/_models.py", ("_timed.<locals>.predict",)),
    ("model", "mooring/serving/_loaded.py", ("predict",)),
    ("model", "mooring/formats/_model.py", None),
    ("model", "/tensorflow/", None),
    ("model", "/keras/", None),
    ("format", "mooring/serving/_protocols/tfserving.py", ("format_predict", "_lists", "_b64")),
    ("format", "mooring/serving/_protocols/v2.py", ("encode_infer", "binary_tensor")),
    ("format", "mooring/serving/_http.py", ("json_response",)),
    ("format", "mooring/serving/_door_answers.py", ("status_line", "date_header")),
    ("metrics", "/prometheus_client/", None),
    ("metrics", "mooring/serving/_metrics.py", None),
    ("prediction log", "mooring/serving/_log.py", None),
    ("prediction log", "mooring/serving/_batcher.py", ("_tagged",)),
    ("prediction log", "mooring/serving/_models.py", ("_logged.<locals>.record",)),
    ("prediction log", "mooring/formats/_log_chunks.py", None),
    ("prediction log", "mooring/formats/_predictions.py", None),
    ("prediction log", "/pyarrow/", None),
]  # fmt: skip
# Functions split in two by a line of their source: (file, function, marker, stage of the
# lines before the marker's line, stage from it on). Before the model call, a batch is
# assembled; after it, its outputs are split between the requests. `finish` counts the
# request in the metrics, then writes the access log line.
STAGE_SPLITS = [
    ("mooring/serving/_batcher.py", "_execute", "run_in_executor(", "batch assembly", "split"),
    ("mooring/serving/_predict.py", "finish", "access_log.isEnabledFor", "metrics", "access log"),
]
# When no frame matches, a sample whose innermost frame is one of these is the HTTP
# stack's (the event loop's own time shows as its outermost Python frame, Runner.run).
HTTP_STACK = ("/uvicorn/", "/starlette/", "/asyncio/", "/uvloop/", "/anyio/", "/httptools/",
              "/h11/", "mooring/serving/_door.py", "mooring/serving/_http.py")  # fmt: skip
# A sample whose innermost frame is one of these waits (for its next batch, for the log's
# next flush): the thread was runnable there, not working (on a shared machine, a woken
# thread waits for a CPU). "waiting" is left out of the shares.
WAITING = (
    ("/concurrent/futures/thread.py", ("_worker",)),
    ("/threading.py", ("wait",)),
    ("/queue.py", ("get",)),
    ("/selectors.py", ("select",)),
)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
THREAD = re.compile(r"^thread \((?P<tid>\d+)\)(?::\s*(?P<name>.*))?$")


@functools.cache
def _marker_line(file: str, marker: str) -> int | None:
    """The first line of ``file`` that holds ``marker`` (None if none or unreadable)."""
    try:
        lines = Path(file).read_text().splitlines()
    except OSError:
        return None
    return next((i for i, line in enumerate(lines, 1) if marker in line), None)


def _named(func: str, names: tuple[str, ...]) -> bool:
    return any(func == n or func.endswith("." + n) for n in names)


def frame_stage(func: str, file: str, line: int | None) -> str | None:
    """The stage a frame belongs to, if the tables name it."""
    path = file.replace("\\", "/")
    for piece, name, marker, before, after in STAGE_SPLITS:
        if piece in path and _named(func, (name,)):
            split = _marker_line(file, marker)
            return after if split is not None and line is not None and line > split else before
    for stage, piece, names in STAGE_FRAMES:
        if piece in path and (names is None or _named(func, names)):
            return stage
    return None


def sample_stage(frames: list[str]) -> tuple[str, str]:
    """A sample's stage (its frames outermost first) and its innermost frame."""
    parsed = [FRAME.match(f) for f in frames]
    leaf = parsed[-1] if parsed else None
    if leaf is not None and any(
        piece in leaf["file"] and _named(leaf["func"], names) for piece, names in WAITING
    ):
        return "waiting", frames[-1]
    for m in reversed(parsed):
        if m is not None:
            line = int(m["line"]) if m["line"] else None
            stage = frame_stage(m["func"], m["file"], line)
            if stage is not None:
                return stage, frames[-1]
    if leaf is not None and any(p in leaf["file"].replace("\\", "/") for p in HTTP_STACK):
        return "HTTP stack", frames[-1]
    return "other", frames[-1] if frames else "(no Python frame)"


def thread_group(name: str | None) -> str:
    if name == "MainThread":
        return "main"
    if name and name.startswith("infer"):
        return "infer"
    if name == "mooring-prediction-log":
        return "prediction log"
    return "others"


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = cpu_seconds(str(task / "stat"))
        except (OSError, IndexError, ValueError):
            continue
    return out


def stage_profile(raw: str, rate: float, requests: float, cpu: dict[int, float]) -> dict[str, Any]:
    """py-spy's raw samples by thread group and stage: shares and µs per request."""
    samples: Counter[tuple[str, str]] = Counter()
    leaves: dict[str, Counter[str]] = {s: Counter() for s in STAGES}
    tids: dict[str, set[int]] = {}
    for text in raw.splitlines():
        stack, _, count_s = text.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        head, *frames = stack.split(";")
        thread = THREAD.match(head)
        if thread is None:  # no thread frame: count the sample in "others"
            frames, group = [head, *frames], "others"
        else:
            group = thread_group(thread["name"])
            tids.setdefault(group, set()).add(int(thread["tid"]))
        stage, leaf = sample_stage(frames)
        samples[(group, stage)] += int(count_s)
        leaves[stage][leaf] += int(count_s)
    groups: dict[str, Any] = {}
    total_us: dict[str, float] = dict.fromkeys(STAGES[:-1], 0.0)
    for group in ("main", "infer", "prediction log", "others"):
        everything = sum(v for (g, _), v in samples.items() if g == group)
        waiting = samples[(group, "waiting")]
        n = everything - waiting  # the samples that are shared out between the stages
        if not n:
            continue
        threads = sorted(tids.get(group, ()))
        cpu_s = sum(cpu.get(t, 0.0) for t in threads) if cpu else None
        busy_s = cpu_s if cpu_s else n / rate
        stages = {}
        for stage in STAGES[:-1]:
            share = samples[(group, stage)] / n
            us = share * busy_s / requests * 1e6 if requests else None
            stages[stage] = {"samples": samples[(group, stage)], "share": share, "us": us}
            total_us[stage] += us or 0.0
        stages["waiting"] = {"samples": waiting, "share": None, "us": None}
        groups[group] = {
            "threads": threads,
            "samples": n,
            "waiting_samples": waiting,
            "sampled_busy_s": n / rate,
            "cpu_s": cpu_s,
            "busy_s": busy_s,
            "stages": stages,
        }
    return {
        "groups": groups,
        "total_us_per_request": total_us,
        "top_frames": {s: c.most_common(5) for s, c in leaves.items() if c},
    }


def profile(
    server: Server, script: Path, seconds: float, rate: int, work: Path, keep: Path | None = None
) -> dict[str, Any]:
    """py-spy on the busiest process of ``server`` during a single-row c=32 wrk run (its
    raw samples copied to ``keep``)."""
    venv_spy = Path(sys.executable).with_name("py-spy")
    spy = str(venv_spy) if venv_spy.exists() else shutil.which("py-spy")
    if spy is None:
        return {"error": "py-spy is not installed"}
    pid = busiest(server.proc.pid)
    seconds = max(1, round(seconds))
    cmd = wrk_command(server.url, script, seconds + 2, 32, timeout_s=WRK_TIMEOUT_S)
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    raw_file = work / "profile.txt"
    tree_before = tree_cpu(server.proc.pid)
    before = thread_cpu(pid)
    started = time.perf_counter()
    spy_cmd = [
        spy,
        "record",
        "-p",
        str(pid),
        "-r",
        str(rate),
        "-f",
        "raw",
        "--threads",
        "--nonblocking",
        "--full-filenames",
        "-d",
        str(seconds),
        "-o",
        str(raw_file),
    ]
    run = subprocess.run(spy_cmd, capture_output=True, text=True, check=False, timeout=300)
    window = time.perf_counter() - started
    after = thread_cpu(pid)
    tree_after = tree_cpu(server.proc.pid)
    out, _ = load.communicate(timeout=120)
    result: dict[str, Any] = {
        "server": server.name,
        "pid": pid,
        "server_pid": server.proc.pid,
        "seconds": seconds,
        "rate_hz": rate,
        "window_s": window,
        "wrk": read_wrk(out),
        "py_spy": [line for line in run.stderr.splitlines() if line.strip()][-5:],
    }
    if run.returncode != 0 or not raw_file.exists():
        result["error"] = f"py-spy failed ({run.returncode}): {run.stderr.strip()[-1500:]}"
        return result
    # The profiled process's part of the requests: all of them with one worker; with several,
    # its share of the CPU the server's processes used in the window.
    used = {p: tree_after[p] - tree_before.get(p, 0.0) for p in tree_after}
    part = used.get(pid, 0.0) / sum(used.values()) if sum(used.values()) > 0 else 1.0
    result["profiled_share_of_server_cpu"] = part
    requests = result["wrk"]["rps"] * seconds * part
    cpu = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    result["requests"] = requests
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(raw_file, keep)
        result["raw_file"] = str(keep)
    result.update(stage_profile(raw_file.read_text(), rate, requests, cpu))
    return result


# -- report ---------------------------------------------------------------------------
def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _cell(
    server: str, rows: int, concurrency: int, client: str, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """What every cell reports: throughput and latency, the medians of its rounds."""
    rps = _median([r["rps"] for r in runs]) or 0.0
    return {
        "server": server,
        "rows": rows,
        "concurrency": concurrency,
        "client": client,
        "rps": rps,
        "rows_per_s": rps * rows,
        "p50_ms": _median([r.get("p50_ms") for r in runs]),
        "p90_ms": _median([r.get("p90_ms") for r in runs]),
        "p99_ms": _median([r.get("p99_ms") for r in runs]),
        "requests": sum(r["requests"] for r in runs),
        "rounds": runs,
    }


def rest_cell(name: str, rows: int, concurrency: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A wrk cell: medians over its rounds, error counts summed, every round kept."""
    non_2xx = sum(r["non_2xx"] for r in runs)
    sockets = sum(r["socket_error_count"] for r in runs)
    return {
        **_cell(name, rows, concurrency, "wrk", runs),
        "threads": min(2, concurrency),
        "non_2xx": non_2xx,
        "socket_errors": sockets,
        "errors": non_2xx + sockets,
    }


def grpc_cell(
    server: str, rows: int, concurrency: int, runs: list[dict[str, Any]], workers: int
) -> dict[str, Any]:
    """An h2load cell: medians over its rounds, failed calls and gRPC errors summed."""
    return {
        **_cell(server, rows, concurrency, "h2load", runs),
        "workers": workers,
        "failed": sum(r["failed"] for r in runs),
        "grpc_errors": sum(r["grpc_errors"] for r in runs),
        "status_after": sorted({r["status_after"] for r in runs}),
    }


def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    def text(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(text(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine(load_start: tuple[float, ...]) -> dict[str, Any]:
    wrk_version: str | None = None
    try:
        proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_version = next(iter((proc.stdout or proc.stderr).strip().splitlines()), None)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_version,
    }


def ratio_rounds(
    cells: dict[tuple[str, int, int], dict[str, Any]],
    top: tuple[str, int, int],
    bottom: tuple[str, int, int],
) -> dict[str, Any] | None:
    """``top``'s req/s over ``bottom``'s, per round and their median (None if either is
    missing or answered nothing)."""
    if top not in cells or bottom not in cells:
        return None
    pairs = zip(cells[top]["rounds"], cells[bottom]["rounds"], strict=True)
    per_round = [a["rps"] / b["rps"] if b["rps"] else None for a, b in pairs]
    return {"per_round": per_round, "median": _median(per_round)}


def floors(  # noqa: C901, PLR0912, PLR0915 - one block per published floor, each judged on its own
    cells: dict[tuple[str, int, int], dict[str, Any]],
    ratios: dict[str, Any],
    levels: list[str],
    base: str,
    cold: dict[str, float],
    memory: dict[str, dict[str, Any]],
    log_pairs: dict[str, Any] | None = None,
    memory_alone: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each floor: its measured value (text) and pass (None: not measured in this run).

    Idle memory is judged on ``memory_alone`` (each server alone on the machine) where it
    holds the naive endpoint, else on ``memory`` (every server up at once)."""
    out: dict[str, dict[str, Any]] = {}

    def floor(name: str, value: str | None, passed: bool | None) -> None:
        out[name] = {"value": value, "pass": passed}

    for m in levels:
        c = ceiling_of(m)
        name = f"1 row c=32: {m} >= 60% of {c}'s req/s, p99 <= 10 ms (log 100%)"
        r, cell = ratios.get(f"{m} / {c}, 1 row c=32"), cells.get((m, 1, 32))
        if r is None or r["median"] is None or cell is None or cell["p99_ms"] is None:
            floor(name, None, None)
        else:
            value = f"{r['median']:.0%}, p99 {cell['p99_ms']:.1f} ms"
            floor(name, value, r["median"] >= 0.6 and cell["p99_ms"] <= 10)
    c = ceiling_of(base)
    name = f"1 row c=1: {base} p50 <= 0.5 ms (log 100%)"
    m1, c1 = cells.get((base, 1, 1)), cells.get((c, 1, 1))
    if m1 is None or m1["p50_ms"] is None:
        floor(name, None, None)
    else:
        beside = f" ({c}: {c1['p50_ms']:.2f} ms)" if c1 and c1["p50_ms"] is not None else ""
        floor(name, f"{m1['p50_ms']:.2f} ms{beside}", m1["p50_ms"] <= 0.5)
    for m in levels:
        c = ceiling_of(m)
        name = f"64 rows c=32: {m} rows/s >= 20% of {c}'s (64-row bodies; log 100%)"
        r, cell, top = (
            ratios.get(f"{m} / {c}, 64 rows c=32"),
            cells.get((m, 64, 32)),
            cells.get((c, 64, 32)),
        )
        if r is None or r["median"] is None or cell is None or top is None:
            floor(name, None, None)
        else:
            value = (
                f"{r['median']:.0%} ({cell['rows_per_s']:,.0f} of {top['rows_per_s']:,.0f} rows/s)"
            )
            floor(name, value, r["median"] >= 0.20)
    name = "64 rows c=32: --workers 2 >= 1.5x --workers 1"
    scale = ratios.get("mooring-w2 / mooring-w1, 64 rows c=32")
    if scale is None or scale["median"] is None:
        floor(name, None, None)
    else:
        floor(name, f"{scale['median']:.2f}x", scale["median"] >= 1.5)
    for kind, seconds in cold.items():
        if kind.startswith("mooring"):
            floor(f"cold start to ready <= 1.5 s: {kind}", f"{seconds:.2f} s", seconds <= 1.5)
    # Each server alone on the machine where the cold starts measured it; else beside
    # the others (sharing the libraries' pages with them).
    alone = memory_alone or {}
    where, found = ("alone", alone) if "naive" in alone else ("beside the others", memory)
    naive = found.get("naive")
    for m in levels:
        mem = found.get(m)
        for what in ("rss", "pss"):
            name = f"idle {what.upper()} ({where}): {m} <= naive's"
            if mem is None or naive is None:
                floor(name, None, None)
            else:
                mine, theirs = mem[f"{what}_mib"], naive[f"{what}_mib"]
                floor(name, f"{mine:.0f} vs {theirs:.0f} MiB", mine <= theirs)
    where, two = "alone", alone.get("mooring-w2")
    if two is None:
        where, two = "beside the others", memory.get("mooring-w2")
    name = f"idle PSS ({where}): 2 workers <= 450 MiB"
    if two is None:
        floor(name, None, None)
    else:
        floor(name, f"{two['pss_mib']:.0f} MiB", two["pss_mib"] <= 450)
    for rows_n, label in ((1, "1 row"), (64, "64 rows")):
        name = f"logging cost <= 5%: {label} c=32 ({base} vs mooring-nolog)"
        pairs = (log_pairs or {}).get(str(rows_n))
        r = ratios.get(f"{base} / mooring-nolog, {label} c=32")
        if pairs:
            cost = 1 - pairs["ratio_median"]
            value = f"{cost:.1%} head to head ({len(pairs['ratios'])} pairs)"
            floor(name, value, cost <= 0.05)
        elif r is None or r["median"] is None:
            floor(name, None, None)
        else:
            cost = 1 - r["median"]
            floor(name, f"{cost:.1%}", cost <= 0.05)
    return out


def grpc_floors(cells: dict[tuple[str, int, int], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The gRPC floors, as :func:`floors` gives them (pass None: not measured)."""
    out: dict[str, dict[str, Any]] = {}
    echo = cells.get(("grpc-echo", 1, 32))
    for server, label in (("grpc", "Predict"), ("grpc-infer", "ModelInfer")):
        name = f"1 row c=32: gRPC {label} >= 80% of the gRPC library's fixed reply"
        share = _round_ratio(cells.get((server, 1, 32)), echo)
        if echo is None or share is None:
            out[name] = {"value": None, "pass": None}
        else:
            out[name] = {"value": f"{share:.0%} ({echo['workers']} workers)", "pass": share >= 0.8}
        name = f"64 rows c=32: gRPC {label} >= REST (same server)"
        ratio = _round_ratio(cells.get((server, 64, 32)), cells.get(("mooring-dir", 64, 32)))
        if ratio is None:
            out[name] = {"value": None, "pass": None}
        else:
            out[name] = {"value": f"{ratio:.2f}x", "pass": ratio >= 1.0}
    return out


def ceiling_of(server: str, stack: str = "ceiling") -> str:
    """The constant reply on the same worker count as ``server``: uvicorn + Starlette's
    (``mooring-w2``: ``ceiling-w2``), or with ``stack="granian"`` granian's (``granian-w2``)."""
    match = re.search(r"-w(\d+)$", server)
    return f"{stack}-w{match.group(1)}" if match and match.group(1) != "1" else stack


def granian_of(server: str) -> str:
    """granian's constant reply on the same worker count as ``server``."""
    return ceiling_of(server, "granian")


def _round_ratio(mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> float | None:
    """The median of two interleaved cells' per-round throughput ratios."""
    if mine is None or theirs is None:
        return None
    pairs = zip(mine["rounds"], theirs["rounds"], strict=False)
    return _median([a["rps"] / b["rps"] for a, b in pairs if b["rps"]])


def _count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def mark(passed: bool | None) -> str:
    return "—" if passed is None else "pass" if passed else "MISS"


def render(report: dict[str, Any]) -> str:  # noqa: C901, PLR0912, PLR0915 - one table per part of the report
    """The report's tables, as Markdown."""
    s = report["summary"]
    rounds = "1 round" if report["rounds"] == 1 else f"median of {report['rounds']} rounds"
    parts = [f"## Cells ({rounds}; wrk for REST)"]
    rows = []
    for c in report["cells"]:
        errors = (
            f"{c['non_2xx']} / {c['socket_errors']}"
            if c["client"] == "wrk"
            else f"{c['failed']} / {c['grpc_errors']} not OK"
        )
        per_round = ", ".join(f"{r['rps']:,.0f}" for r in c["rounds"]) if c.get("rounds") else "—"
        rows.append(
            [
                c["server"],
                c["rows"],
                c["concurrency"],
                c["client"],
                c["rps"],
                c["rows_per_s"],
                c["p50_ms"],
                c["p90_ms"],
                c["p99_ms"],
                errors,
                per_round,
            ]
        )
    parts.append(
        markdown(
            [
                "server",
                "rows",
                "c",
                "client",
                "req/s",
                "rows/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "errors (wrk: non-2xx / socket; h2load: failed / gRPC)",
                "req/s per round",
            ],
            rows,
        )
    )
    if s["ratios"]:
        parts.append("## Ratios (req/s, median of per-round ratios)")
        parts.append(
            markdown(
                ["ratio", "median", "per round"],
                [
                    [
                        k,
                        v["median"],
                        ", ".join("—" if x is None else f"{x:.2f}" for x in v["per_round"]),
                    ]
                    for k, v in s["ratios"].items()
                ],
            )
        )
    top = s.get("ceiling")
    facts = []
    g = report.get("granian") or {}
    if g.get("path"):
        facts.append(
            ["granian (RSGI constant reply)", f"{g['version'] or g['path']} ({g['found']})"]
        )
    elif g:
        facts.append(["granian (RSGI constant reply)", g["found"]])
    if top:
        facts.append(["in-process ceiling (batch 64)", f"{top['rows_per_s']:,.0f} rows/s"])
        for c in report["cells"]:
            if c["rows"] == 64 and c["client"] == "wrk" and c["server"].startswith("mooring-w"):
                share = c["rows_per_s"] / top["rows_per_s"]
                facts.append(
                    [f"64 rows c=32: {c['server']} ÷ the in-process ceiling", f"{share:.0%}"]
                )
    for name, mem in s["memory"].items():
        facts.append(
            [
                f"idle memory: {name}",
                f"RSS {mem['rss_mib']:.0f} MiB, PSS {mem['pss_mib']:.0f} MiB "
                f"({mem['processes']} process{'es' if mem['processes'] > 1 else ''})",
            ]
        )
    for name, mem in (s.get("memory_alone") or {}).items():
        facts.append(
            [
                f"idle memory alone: {name}",
                f"RSS {mem['rss_mib']:.0f} MiB, PSS {mem['pss_mib']:.0f} MiB "
                f"({mem['processes']} process{'es' if mem['processes'] > 1 else ''}; "
                f"median of {mem['runs']} starts)",
            ]
        )
    for name, counts in s["prediction_log"].items():
        facts.append(
            [
                f"prediction log rows: {name}",
                f"written {_count(counts['written'])}, dropped {_count(counts['dropped'])}",
            ]
        )
    for name, seconds in s["cold_start_s"].items():
        runs = ", ".join(f"{x:.2f}" for x in s["cold_start_runs_s"][name])
        facts.append([f"cold start to ready: {name}", f"{seconds:.2f} s (runs: {runs})"])
    for rows_n, pairs in (s.get("logging_head_to_head") or {}).items():
        ratios_text = ", ".join(f"{x:.2f}" for x in pairs["ratios"])
        facts.append(
            [
                f"logging head to head, {rows_n} row{'s' if rows_n != '1' else ''} c=32",
                f"cost {1 - pairs['ratio_median']:.1%} (req/s ratios {ratios_text}); CPU "
                f"{pairs['cpu_us_per_request']['log']:.0f} vs "
                f"{pairs['cpu_us_per_request']['nolog']:.0f} µs/request",
            ]
        )
    if s["cold_start_phases_s"]:
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in s["cold_start_phases_s"].items())
        facts.append(["cold start phases (median)", phases])
    if "shadow_100pct" in s:
        sh = s["shadow_100pct"]
        facts.append(
            [
                "shadow at 100%: throughput cost (1 row c=32)",
                f"{sh['throughput_cost']:.0%}, p99 {sh['p99_ms_plain']:.2f} ms without, "
                f"{sh['p99_ms_shadow']:.2f} ms with ({mark(sh['floor_cost_at_most_15pct'])}"
                " <= 15%); per round "
                + ", ".join(f"{c:.0%}" for c in sh.get("cost_per_round", [])),
            ]
        )
        cpu = sh.get("cpu_us_per_request") or {}
        if cpu.get("plain") and cpu.get("shadow"):
            facts.append(
                [
                    "shadow at 100%: server CPU per request (all its processes)",
                    f"{cpu['shadow']:.0f} vs {cpu['plain']:.0f} µs "
                    f"(+{cpu['shadow'] / cpu['plain'] - 1:.0%})",
                ]
            )
        copies = sh.get("copies") or {}
        if copies:
            made = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(copies.items()))
            facts.append(["shadow copies (one worker's /metrics)", made])
    for name, dead in s["servers_exited"].items():
        facts.append([f"{name} exited during its cells", f"exit status {dead['returncode']}"])
    if s["stragglers"]:
        facts.append(["processes that outlived their server (killed)", str(s["stragglers"])])
    if facts:
        parts += ["## Other measurements", markdown(["what", "value"], facts)]
    parts.append("## Floors (never asserted)")
    parts.append(
        markdown(
            ["floor", "measured", "result"],
            [[k, v["value"], mark(v["pass"])] for k, v in s["floors"].items()],
        )
    )
    prof = report.get("profile")
    if prof:
        parts.append(f"## Profile: {prof.get('server')}, 1 row c=32, py-spy")
        if "error" in prof:
            parts.append(f"py-spy could not profile: {prof['error']}")
        else:
            groups = list(prof["groups"])
            headers = ["stage"]
            for g in groups:
                headers += [f"{g} %", f"{g} µs/req"]
            table = []
            for stage in STAGES[:-1]:
                row: list[Any] = [stage]
                for g in groups:
                    st = prof["groups"][g]["stages"][stage]
                    row += [f"{st['share']:.1%}", st["us"]]
                table.append([*row, prof["total_us_per_request"][stage]])
            all_row: list[Any] = ["all"]
            for g in groups:
                stages = prof["groups"][g]["stages"].values()
                all_row += ["", sum(st["us"] or 0.0 for st in stages)]
            table.append([*all_row, sum(prof["total_us_per_request"].values())])
            parts.append(markdown([*headers, "all µs/req"], table))
            busy = "; ".join(
                f"{g}: {v['samples']} samples ({v['waiting_samples']} more waiting), "
                f"{v['busy_s']:.2f} s of CPU"
                for g, v in prof["groups"].items()
            )
            parts.append(
                f"{prof['requests']:,.0f} requests in {prof['seconds']} s "
                f"({prof['wrk']['rps']:,.0f} req/s under the profiler). {busy}. "
                f"Raw samples: {prof.get('raw_file', '(not kept)')}"
            )
            for stage in ("other", "HTTP stack"):
                top = prof["top_frames"].get(stage, [])
                if top:
                    frames = "; ".join(f"`{f}` ({n})" for f, n in top)
                    parts.append(f"{stage}: innermost frames most sampled: {frames}")
    return "\n\n".join(parts) + "\n"


# -- orchestration ------------------------------------------------------------------
def main() -> None:  # noqa: C901, PLR0912, PLR0915 - the command line, then each cell in the order it runs
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short cells, 1 round (smoke run)")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per wrk cell (6; quick 2)"
    )
    parser.add_argument("--out", type=Path, default=None, help="the JSON report's path")
    parser.add_argument(
        "--serving",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [serving] setting for every mooring server, e.g. --serving inference_threads=1"
        " (repeatable; log_sample_rate is set per server)",
    )
    parser.add_argument(
        "--workers-levels",
        default="1,2",
        help="`mooring serve --workers` levels, one mooring server each (default 1,2)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3; quick 1)")
    parser.add_argument(
        "--cold-runs", type=int, default=None, help="cold starts per server (5; quick 1)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=PARTS,
        help="run only these servers and parts (repeatable; default: all)",
    )
    parser.add_argument(
        "--log-pairs",
        type=int,
        default=None,
        help="head-to-head pairs of the logging and non-logging servers (8; quick 2; 0: none)",
    )
    parser.add_argument(
        "--log-pair-s", type=float, default=None, help="seconds per head-to-head cell (3; quick 1)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile mooring by stage with py-spy"
    )
    parser.add_argument(
        "--profile-s", type=float, default=None, help="seconds profiled (10; quick 3)"
    )
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples/s (250)")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the trained model and the servers' files here; a model built there "
        "before (model_dir.txt, as bench_overload.py --work also keeps it) is reused",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="run mooring with its JSON access log on (default off, as the other servers)",
    )
    parser.add_argument(
        "--granian",
        default=None,
        metavar="PATH",
        help="the granian executable serving the RSGI constant reply (default: granian "
        "beside this Python, then on PATH; none found: its cells are skipped)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    # These cells measure the batcher at up to 64 closed-loop clients, not admission
    # (bench_overload.py measures that): admit them all.
    if not any(item.split("=", 1)[0].strip() == "max_in_flight" for item in args.serving):
        args.serving.append("max_in_flight = 1024")
    duration = args.duration or (2.0 if args.quick else 6.0)
    args.cold_runs = args.cold_runs or (1 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.log_pairs is None:
        args.log_pairs = 2 if args.quick else 8
    log_pair_s = args.log_pair_s or (1.0 if args.quick else 3.0)
    profile_s = args.profile_s or (3.0 if args.quick else 10.0)
    warmup = 0.5 if args.quick else 1.0  # unmeasured seconds at the start of a gRPC cell
    idle_s = 0.5 if args.quick else 2.0  # idle before a server's memory is read
    parts = set(args.only or PARTS)
    levels = [int(n) for n in args.workers_levels.split(",") if n.strip()]
    if not levels or min(levels) < 1:
        raise SystemExit("--workers-levels takes counts >= 1, e.g. 1,2")
    has_workers = workers_option()
    if not has_workers and levels != [1]:
        raise SystemExit(
            "`mooring serve` has no --workers option here: run with --workers-levels 1"
        )

    def workers(n: int) -> int | None:
        return n if has_workers else None  # without the option, the one-process server

    level_names = [f"mooring-w{n}" for n in levels] if "mooring" in parts else []
    base = f"mooring-w{levels[0]}"
    granian: str | None = None
    granian_found = "not looked for (neither ceiling nor cold runs)"
    if parts & {"ceiling", "cold"}:
        granian, granian_found = find_granian(args.granian)
        print(f"granian: {granian or '-'} ({granian_found})", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path: Path = args.out or RESULTS / f"serving-{stamp}.json"
    load_start = os.getloadavg()
    stragglers: list[int] = []
    deaths: dict[str, Any] = {}

    def stop(server: Server) -> None:
        """Stop a server, noting if it had exited on its own (and why, from its log)."""
        dead = server.exited()
        if dead is not None:
            deaths[server.name] = dead
            print(f"WARNING: {server.name} had exited ({dead['returncode']}) before the end "
                  f"of its cells:\n{dead['log_tail']}", flush=True)  # fmt: skip
        stragglers.extend(stop_server(server.proc))

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        logs = work / "logs"
        model_dir = adult_model(work)
        rows = request_rows(model_dir, 64)
        single_bodies = [json.dumps({"instances": [r]}).encode() for r in rows]
        batch_body = json.dumps({"instances": rows}).encode()
        scripts = {
            1: lua_script(work, single_bodies, "single.lua"),
            64: lua_script(work, [batch_body], "batch.lua"),
        }
        rows_file = work / "rows.json"
        rows_file.write_text(json.dumps(rows))
        top = None
        if "in-process" in parts:
            top = json.loads(run_mode("--ceiling", model_dir, rows_file, duration))
            print(f"in-process ceiling at batch 64: {top['rows_per_s']:,.0f} rows/s", flush=True)
        # TF Serving's gRPC messages, made while the REST servers start (before any cell).
        grpc_maker = start_mode("--grpc-requests", rows_file, work) if "grpc" in parts else None

        # -- the REST servers, all up at once ---------------------------------------
        projects: dict[str, Path] = {}
        # The cold starts' registry project is the first level's, with or without cells.
        for name in level_names or ([base] if "cold" in parts else []):
            lines = serving_lines(args.serving, log_sample_rate=1.0)
            projects[name] = registry_project(model_dir, work, name, lines)
        if "mooring-nolog" in parts:
            lines = serving_lines(args.serving, log_sample_rate=0.0)
            projects["mooring-nolog"] = registry_project(model_dir, work, "mooring-nolog", lines)
        servers: dict[str, Server] = {}
        if "ceiling" in parts:
            servers["ceiling"] = spawn_server("trivial", model_dir, work, name="ceiling", logs=logs)
            for n in levels:  # the same stack on uvicorn's own --workers, per level
                if n > 1:
                    servers[f"ceiling-w{n}"] = spawn_server(
                        "trivial", model_dir, work, workers=n, name=f"ceiling-w{n}", logs=logs
                    )
            for n in levels if granian else ():  # granian's constant reply, per level
                name = granian_of(f"mooring-w{n}")
                servers[name] = spawn_server(
                    "granian", model_dir, work, workers=n, name=name, logs=logs, granian=granian
                )
        ceilings = [n for n in servers if n.startswith(("ceiling", "granian"))]
        # The constant replies on each level's worker count: beside mooring at c=1 and at
        # 64 rows too (the 64-row floor is a share of their rows/s).
        tops = [
            n
            for level in levels
            for n in (ceiling_of(f"mooring-w{level}"), granian_of(f"mooring-w{level}"))
            if n in servers
        ]
        for n, name in zip(levels, level_names, strict=False):
            servers[name] = spawn_server(
                "mooring-registry",
                model_dir,
                work,
                config=projects[name],
                workers=workers(n),
                access_log=args.access_log,
                name=name,
                logs=logs,
            )
        if "mooring-nolog" in parts:
            servers["mooring-nolog"] = spawn_server(
                "mooring-registry",
                model_dir,
                work,
                config=projects["mooring-nolog"],
                workers=workers(levels[0]),
                access_log=args.access_log,
                name="mooring-nolog",
                logs=logs,
            )
        if "naive" in parts:
            servers["naive"] = spawn_server("naive", model_dir, work, name="naive", logs=logs)
        plan = [  # (rows, connections, servers), in the order a round runs them
            (
                1,
                32,
                [n for n in (*ceilings, *level_names, "mooring-nolog", "naive") if n in servers],
            ),
            (
                1,
                1,
                [n for n in (ceiling_of(base), granian_of(base), base, "naive") if n in servers],
            ),
            (64, 32, [n for n in (*tops, *level_names, "mooring-nolog", "naive") if n in servers]),
        ]
        runs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        memory: dict[str, dict[str, Any]] = {}
        log_rows: dict[str, dict[str, float | None]] = {}
        log_pairs: dict[str, Any] = {}
        prof: dict[str, Any] | None = None
        grpc_made = ""
        try:
            for server in servers.values():
                print(f"{server.name} ready in {server.wait():.1f} s", flush=True)
            # Done before any measurement starts.
            grpc_made = mode_output(grpc_maker) if grpc_maker is not None else ""
            for server in servers.values():
                warm_up(server, [single_bodies[0], batch_body])
            time.sleep(idle_s)  # idle, then each server's memory
            for server in servers.values():
                memory[server.name] = tree_memory(server.proc.pid)
                mem = memory[server.name]
                print(
                    f"{server.name}: idle RSS {mem['rss_mib']:.0f} MiB, "
                    f"PSS {mem['pss_mib']:.0f} MiB",
                    flush=True,
                )
            for rows_n, connections, names in plan:  # one unrecorded second per cell kind
                for name in names if not args.quick else ():  # a smoke run: warm_up() only
                    wrk(servers[name].url, scripts[rows_n], 1, connections)
            for r in range(args.rounds):
                for rows_n, connections, names in plan:
                    k = r % len(names) if names else 0
                    for name in names[k:] + names[:k]:
                        res = wrk(
                            servers[name].url,
                            scripts[rows_n],
                            duration,
                            connections,
                            timeout_s=WRK_TIMEOUT_S,
                        )
                        runs.setdefault((name, rows_n, connections), []).append(res)
                        print(
                            f"round {r + 1}: {name:13} {rows_n:>2} rows c={connections:<2} "
                            f"{res['rps']:>9,.0f} req/s  p99 {res.get('p99_ms', 0):7.2f} ms  "
                            f"non-2xx {res['non_2xx']}  socket errors {res['socket_error_count']}",
                            flush=True,
                        )
            if base in servers and "mooring-nolog" in servers and args.log_pairs > 0:
                log_pairs = head_to_head(
                    {"log": servers[base], "nolog": servers["mooring-nolog"]},
                    scripts,
                    args.log_pairs,
                    log_pair_s,
                )
            for name in servers:
                if name.startswith("mooring"):
                    log_rows[name] = log_counts(servers[name])
            if args.profile and base in servers:
                keep = out_path.with_suffix(".pyspy.txt")
                prof = profile(servers[base], scripts[1], profile_s, args.profile_rate, work, keep)
                print("profile:", prof.get("error") or f"{prof['requests']:,.0f} requests")
        finally:
            for server in servers.values():
                stop(server)
        cells = [rest_cell(name, rows_n, c, v) for (name, rows_n, c), v in runs.items()]

        # -- gRPC: the same server over TF Serving's Predict and OIP's ModelInfer (h2load),
        # its REST beside it (wrk), and the gRPC library's fixed reply on as many workers.
        grpc_rest: dict[int, dict[str, Any]] = {}
        if "grpc" in parts:
            # TF Serving's messages import TensorFlow: made in a process of their own.
            made = [Path(p) for p in grpc_made.split()[-4:]]
            messages = {
                (PREDICT_RPC, 1): made[0].read_bytes(),
                (PREDICT_RPC, 64): made[1].read_bytes(),
                (MODEL_INFER, 1): made[2].read_bytes(),
                (MODEL_INFER, 64): made[3].read_bytes(),
            }
            grpc_workers = workers(levels[0]) or 1
            grpc_port, echo_port = free_port(), free_port()
            server = spawn_server(
                "mooring",
                model_dir,
                work,
                args.serving,
                grpc_port,
                workers=workers(levels[0]),
                name="mooring-dir",
                logs=logs,
            )
            echo: subprocess.Popen[bytes] | None = None
            try:
                server.wait()
                warm_up(server, [single_bodies[0], batch_body])
                replies: dict[tuple[str, int], int] = {}
                for key, message in messages.items():
                    status, replies[key] = grpc_call(grpc_port, key[0], message)
                    if status != "OK":
                        raise SystemExit(f"mooring-dir answers {key[0]} with {status}")
                fixed = work / "grpc_reply.bin"
                fixed.write_bytes(b"\0" * replies[(PREDICT_RPC, 1)])
                echo = subprocess.Popen(
                    [sys.executable, __file__, "--grpc-echo-server", str(echo_port), str(fixed),
                     str(grpc_workers)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # its workers are stopped with it, as a group
                )  # fmt: skip
                wait_until_grpc(echo_port, messages[(PREDICT_RPC, 1)])
                grpc_cells_run: list[tuple[str, str, int, int]] = [
                    ("grpc-echo", PREDICT_RPC, 1, 32),
                    ("grpc-echo", PREDICT_RPC, 1, 1),
                    ("grpc", PREDICT_RPC, 1, 32),
                    ("grpc", PREDICT_RPC, 1, 1),
                    ("grpc", PREDICT_RPC, 64, 32),
                    ("grpc", PREDICT_RPC, 64, 1),
                    ("grpc-infer", MODEL_INFER, 1, 32),
                    ("grpc-infer", MODEL_INFER, 64, 32),
                    ("mooring-dir", "", 1, 32),
                    ("mooring-dir", "", 64, 32),
                ]
                grpc_runs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
                for round_i in range(args.rounds):
                    turn = round_i % len(grpc_cells_run)
                    for name, method, rows_n, c in grpc_cells_run[turn:] + grpc_cells_run[:turn]:
                        if name == "mooring-dir":
                            script = scripts[rows_n]
                            res = wrk(server.url, script, duration, c, timeout_s=WRK_TIMEOUT_S)
                        else:
                            port = echo_port if name == "grpc-echo" else grpc_port
                            res = h2load(
                                port,
                                method,
                                messages[(method, rows_n)],
                                c,
                                duration,
                                warmup,
                                reply_bytes=replies[(PREDICT_RPC, 1)]
                                if name == "grpc-echo"
                                else replies[(method, rows_n)],
                            )
                            status, _ = grpc_call(port, method, messages[(method, rows_n)], 3)
                            res["status_after"] = status
                        grpc_runs.setdefault((name, rows_n, c), []).append(res)
                        print(
                            f"{name:<11} {rows_n:>2} rows c={c:<2} {res['rps']:>9,.0f} req/s "
                            f"p99 {res.get('p99_ms') or 0:.2f} ms",
                            flush=True,
                        )
                for (name, rows_n, c), runs_ in grpc_runs.items():
                    if name == "mooring-dir":
                        grpc_rest[rows_n] = rest_cell(name, rows_n, c, runs_)
                        cells.append(grpc_rest[rows_n])
                    else:
                        cells.append(grpc_cell(name, rows_n, c, runs_, grpc_workers))
            finally:
                stop(server)
                if echo is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(echo.pid, signal.SIGTERM)
                    echo.wait(timeout=60)

        # -- shadow at 100%: two registry servers logging every request, one copying every
        # request to a shadow version, single rows at c=32 alternating.
        shadow_rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "shadow": []}
        shadow_counted: dict[str, float] = {}
        if "shadow" in parts:
            shadow_configs = shadow_projects(model_dir, work)
            pair = {
                k: spawn_server(
                    "mooring-registry",
                    model_dir,
                    work,
                    config=shadow_configs[k],
                    workers=workers(levels[0]),
                    name=f"shadow-{k}",
                    logs=logs,
                )
                for k in shadow_rounds
            }
            try:
                for server in pair.values():
                    server.wait()
                    warm_up(server, [single_bodies[0]])
                    wrk(server.url, scripts[1], 1, 32)
                for r in range(args.rounds):
                    for kind in list(pair)[r % 2 :] + list(pair)[: r % 2]:
                        pid = pair[kind].proc.pid
                        before = sum(tree_cpu(pid).values())
                        res = wrk(pair[kind].url, scripts[1], duration, 32, timeout_s=WRK_TIMEOUT_S)
                        used = sum(tree_cpu(pid).values()) - before
                        res["cpu_us_per_request"] = used / max(res["requests"], 1) * 1e6
                        shadow_rounds[kind].append(res)
                        print(
                            f"shadow at 100%, round {r + 1}: {kind} {res['rps']:,.0f} req/s, "
                            f"p99 {res.get('p99_ms', 0):.2f} ms, "
                            f"CPU {res['cpu_us_per_request']:.0f} µs/request",
                            flush=True,
                        )
                shadow_counted = shadow_copies(pair["shadow"])
                print(f"shadow copies (one worker's /metrics): {shadow_counted}", flush=True)
            finally:
                for server in pair.values():
                    stop(server)

        # -- cold start, side by side: each server spawned `cold_runs` times, interleaved.
        cold_runs: dict[str, list[float]] = {}
        alone_runs: dict[str, list[dict[str, Any]]] = {}
        if "cold" in parts:
            kinds: dict[str, dict[str, Any]] = {}
            if base in projects:
                kinds["mooring-registry"] = {
                    "kind": "mooring-registry",
                    "memory_name": base,
                    "config": projects[base],
                    "workers": workers(levels[0]),
                }
            if base in projects and len(levels) > 1:
                # The supervisor's start: it imports, then forks its workers.
                kinds[f"mooring-registry-w{levels[1]}"] = {
                    "kind": "mooring-registry",
                    "memory_name": f"mooring-w{levels[1]}",
                    "config": projects[base],
                    "workers": workers(levels[1]),
                }
            kinds["mooring-dir"] = {
                "kind": "mooring",
                "memory_name": "mooring-dir",
                "serving": args.serving,
                "workers": workers(levels[0]),
            }
            kinds["naive"] = {"kind": "naive", "memory_name": "naive", "body": single_bodies[0]}
            # The constant replies on the first level's worker count: spawn to first 200.
            top_names = [(ceiling_of(base), "trivial")]
            top_names += [(granian_of(base), "granian")] if granian else []
            for label, kind in top_names:
                kinds[label] = {
                    "kind": kind,
                    "memory_name": label,
                    "body": single_bodies[0],
                    "workers": levels[0],
                    **({"granian": granian} if kind == "granian" else {}),
                }
            for _ in range(args.cold_runs):
                for label, spec in kinds.items():
                    options = {k: v for k, v in spec.items() if k not in ("kind", "memory_name")}
                    # Idle memory alone: the server by itself on the machine, as a user
                    # runs it (beside other servers, it shares the libraries' pages).
                    alone = alone_runs.setdefault(spec["memory_name"], [])
                    server = spawn_server(spec["kind"], model_dir, work, logs=logs, **options)
                    try:
                        cold_runs.setdefault(label, []).append(server.wait())
                        warm_up(server, [single_bodies[0]])
                        time.sleep(idle_s)
                        alone.append(tree_memory(server.proc.pid))
                    finally:
                        stop(server)
                    mem = alone[-1]
                    print(
                        f"cold start {label}: {cold_runs[label][-1]:.2f} s; idle alone RSS "
                        f"{mem['rss_mib']:.0f} MiB, PSS {mem['pss_mib']:.0f} MiB",
                        flush=True,
                    )
        cold = {k: statistics.median(v) for k, v in cold_runs.items()}
        memory_alone = {
            name: {
                "processes": runs[0]["processes"],
                "rss_mib": statistics.median(r["rss_mib"] for r in runs),
                "pss_mib": statistics.median(r["pss_mib"] for r in runs),
                "runs": len(runs),
            }
            for name, runs in alone_runs.items()
        }
        phases: dict[str, float] = {}
        if "phases" in parts:
            phase_runs = []
            for _ in range(1 if args.quick else 2):
                out = run_mode("--phases", model_dir, time.time(), 8)
                phase_runs.append(json.loads(out.strip().splitlines()[-1]))
            phases = {k: statistics.median(r[k] for r in phase_runs) for k in phase_runs[0]}

    by_key = {(c["server"], c["rows"], c["concurrency"]): c for c in cells}
    ratios: dict[str, Any] = {}
    pairs: list[tuple[str, tuple[str, int, int], tuple[str, int, int]]] = []
    for m in [*level_names, "mooring-nolog", "naive"]:
        pairs.append((f"{m} / ceiling, 1 row c=32", (m, 1, 32), ("ceiling", 1, 32)))
        if ceiling_of(m) != "ceiling":
            other = ceiling_of(m)
            pairs.append((f"{m} / {other}, 1 row c=32", (m, 1, 32), (other, 1, 32)))
        # granian's constant reply on as many workers: informational, no floor.
        other = granian_of(m)
        pairs.append((f"{m} / {other}, 1 row c=32", (m, 1, 32), (other, 1, 32)))
    for m in [*level_names, "mooring-nolog"]:
        for other in (ceiling_of(m), granian_of(m)):
            pairs.append((f"{m} / {other}, 64 rows c=32", (m, 64, 32), (other, 64, 32)))
    for other in (ceiling_of(base), granian_of(base)):
        pairs.append((f"{base} / {other}, 1 row c=1", (base, 1, 1), (other, 1, 1)))
    for m in [*level_names, "mooring-nolog"]:
        pairs.append((f"{m} / naive, 1 row c=32", (m, 1, 32), ("naive", 1, 32)))
        pairs.append((f"{m} / naive, 64 rows c=32", (m, 64, 32), ("naive", 64, 32)))
    pairs.append((f"{base} / naive, 1 row c=1", (base, 1, 1), ("naive", 1, 1)))
    for m in level_names[1:]:
        for rows_n, label in ((1, "1 row"), (64, "64 rows")):
            pairs.append((f"{m} / {base}, {label} c=32", (m, rows_n, 32), (base, rows_n, 32)))
    for rows_n, label in ((1, "1 row"), (64, "64 rows")):
        pairs.append(
            (
                f"{base} / mooring-nolog, {label} c=32",
                (base, rows_n, 32),
                ("mooring-nolog", rows_n, 32),
            )
        )
    for label, a, b in pairs:
        value = ratio_rounds(by_key, a, b)
        if value is not None:
            ratios[label] = value
    summary: dict[str, Any] = {
        "ratios": ratios,
        "memory": memory,
        "memory_alone": memory_alone,
        "prediction_log": log_rows,
        "cold_start_s": cold,
        "cold_start_runs_s": cold_runs,
        "cold_start_phases_s": phases,
        "ceiling": top,
        "serving": args.serving,
        "stragglers": stragglers,
        "servers_exited": deaths,
    }
    for label in ("1 row", "64 rows"):
        logged = ratios.get(f"{base} / mooring-nolog, {label} c=32")
        if logged is not None and logged["median"] is not None:
            key = f"logging_cost_{label.replace(' ', '_')}_c32"
            summary[key] = 1 - logged["median"]
    summary["logging_head_to_head"] = log_pairs
    summary["floors"] = floors(
        by_key, ratios, level_names, base, cold, memory, log_pairs, memory_alone
    )
    summary["floors"].update(grpc_floors(by_key))
    if shadow_rounds["plain"]:
        plain, shadowed = shadow_rounds["plain"], shadow_rounds["shadow"]
        cost = [1 - s_["rps"] / p["rps"] for p, s_ in zip(plain, shadowed, strict=True)]
        summary["shadow_100pct"] = {
            "rounds": shadow_rounds,
            "throughput_cost": statistics.median(cost),
            "p99_ms_plain": _median([p.get("p99_ms") for p in plain]),
            "p99_ms_shadow": _median([s_.get("p99_ms") for s_ in shadowed]),
            "floor_cost_at_most_15pct": statistics.median(cost) <= 0.15,
            "cost_per_round": cost,
            "cpu_us_per_request": {
                k: _median([x["cpu_us_per_request"] for x in v]) for k, v in shadow_rounds.items()
            },
            "copies": shadow_counted,
        }
    report = {
        "benchmark": "serving",
        "quick": args.quick,
        "duration_s": duration,
        "rounds": args.rounds,
        "cold_runs": args.cold_runs,
        "parts": sorted(parts),
        "workers_levels": levels,
        "workers_option": has_workers,
        "access_log": args.access_log,
        "granian": {
            "path": granian,
            "found": granian_found,
            "version": granian_version(granian) if granian else None,
        },
        "machine": machine(load_start),
        "cells": cells,
        "summary": summary,
        "profile": prof,
    }
    text = render(report)
    print()
    print(text)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    out_path.with_suffix(".md").write_text(text)
    print(f"wrote {out_path} and {out_path.with_suffix('.md').name}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--grpc-echo-server":
        echo_server(int(sys.argv[2]), Path(sys.argv[3]).read_bytes(), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--naive-server":
        naive_server(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--trivial-server":
        workers_n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        trivial_server(int(sys.argv[2]), PREDICT, parse=True, workers=workers_n)
    elif len(sys.argv) > 1 and sys.argv[1] == "--phases":
        phases = cold_phases(Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps(phases))
    elif len(sys.argv) > 1 and sys.argv[1] == "--grpc-requests":
        made = grpc_requests(json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3]))
        print(*made)
    elif len(sys.argv) > 1 and sys.argv[1] == "--build-model":
        print(build_adult_model(Path(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--ceiling":
        print(json.dumps(ceiling(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))))
    else:
        main()
