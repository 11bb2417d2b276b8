"""Benchmark: the model kinds against scikit-learn's baselines on the same splits, one run.

* Adult (the bundled train/test files): mooring's ``gbt`` and ``mlp`` with defaults
  (no epochs/batch size set) against scikit-learn's logistic regression and
  HistGradientBoosting on the same rows (one-hot categories, NaN for missing): test AUC;
  the GBT's training seconds (YDF fit only, and train_model end to end).
* scikit-learn's wine and diabetes tables (column names as shipped), 25% test split
  (seed 0): mooring's ``mlp`` with defaults against logistic / linear regression.
* Served single-row latency: p50 of ``load_served_model(...).predict`` in process
  (the server's model call, without HTTP) for the GBT and the MLP on Adult rows.
* ``imported-cnn`` (only with ``--only imported-cnn``): a Keras CNN built here (``image``
  float32 [None, 32, 32, 3], two Conv2D + max pooling, Dense(64), 10 softmax outputs,
  random weights, seed 7) exported with ``model.export``. Side by side, interleaved over
  ``--rounds`` rounds of ``--cell-s`` seconds a cell (the order rotated by round):
  images/s of its ``serving_default`` signature called back to back in this process on
  batches of 1 and 32 images; and ``wrk -t2 -c32`` POSTing 1 and 32 images a request to
  each of ``--servers``, each its own process: ``mooring-app``
  (``build_app([DirectorySource(...)])`` + ``Server``, the default ``[serving]``
  settings, the collector set as ``mooring serve`` sets it), ``mooring-serve``
  (``mooring serve --model-dir``, ``--workers`` when given) and ``ceiling``
  (``_wrk.trivial_server``: uvicorn + Starlette, the body parsed with orjson, a fixed
  small answer). Each mooring server is sent each of ``--bodies``: ``json``, TF
  Serving columnar bodies ``{"inputs": {"image": [...]}}`` to ``/v1/models/cnn:predict``;
  ``binary``, the Open Inference Protocol's binary tensor extension (as tritonclient
  sends it) to ``/v2/models/cnn/infer``: ``Inference-Header-Content-Length``, a JSON
  header, the images as little-endian float32, the output asked for as binary. The
  ceiling gets the JSON bodies. Per cell: requests/s, images/s, p50/p99, every non-2xx
  and socket error, the cores the server kept busy. One answer of each size and format
  from each mooring server is checked against the signature's own (1e-5) before the
  load (a binary answer decoded from its header length and the output's raw bytes).
  Ratios are medians of per-round ratios; floor, per server and format: served ÷
  in-process images/s at 32 images ≥ 0.70. ``--profile-s``: after the rounds, py-spy
  on each mooring server's busiest process under 32-image load of each format (shares
  of samples by function). Written to ``--cnn-out``
  (``results/bench_models_imported_cnn.json``) with the machine's description and load
  average before and after.

Floors are evaluated and printed, never asserted. ``--quick`` uses an Adult sample and
few trees (the smoke test), and one round of 2 s cells for ``imported-cnn``; its numbers
say nothing about the floors.

Usage::

    python benchmarks/bench_models.py --out benchmarks/results/bench_models.json
    python benchmarks/bench_models.py --quick --out benchmarks/results/bench_models_quick.json
    python benchmarks/bench_models.py --only imported-cnn --rounds 3 --cell-s 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT / "examples" / "adult"
FLOORS = {
    "adult_gbt_auc": (">=", 0.926),
    "adult_mlp_auc": (">=", 0.919),
    "wine_accuracy": (">=", 0.95),
    "diabetes_rmse": ("<=", 55.0),
    "gbt_fit_seconds": ("<=", 15.0),
    "gbt_p50_over_mlp_p50": ("<=", 2.0),
}
SECTIONS = ("adult", "small", "imported-cnn")
CNN_NAME = "cnn"
CNN_PREDICT = f"/v1/models/{CNN_NAME}:predict"
CNN_INFER = f"/v2/models/{CNN_NAME}/infer"
CNN_METADATA = f"/v2/models/{CNN_NAME}"
CNN_BODIES = ("json", "binary")  # TF Serving columnar JSON; the OIP binary tensor extension
CNN_SHAPE = (32, 32, 3)
CNN_BATCHES = (1, 32)  # images per call / per request
CNN_CONNECTIONS = 32
CNN_FLOOR = 0.70  # served images/s ÷ in-process images/s at 32 images per request
CNN_TOLERANCE = 1e-5
CNN_REPORT = "bench_models_imported_cnn.json"


def _adult(folder: Path, rows: int | None) -> dict[str, Path]:
    import pandas as pd

    out = {}
    for key, name in (("train", "adult.data.csv.gz"), ("test", "adult.test.csv.gz")):
        frame = pd.read_csv(ADULT / name, skipinitialspace=True)
        frame = frame.head(rows) if rows else frame
        out[key] = folder / f"adult_{key}.csv"
        frame.to_csv(out[key], index=False)
    return out


def _train(
    root: Path, name: str, train: Path, label: str, model: dict[str, Any], **data: Any
) -> Any:
    from mooring.config import MooringConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.training._train import train_model

    cfg = MooringConfig.from_mapping(
        {"project": {"name": name}, "data": {"train": str(train), "label": label, **data},
         "model": model},
        root=root,
    )  # fmt: skip
    stats = compute_statistics(train, ReadOptions.from_config(cfg.data))
    schema = infer_schema(stats, label=label)
    start = time.perf_counter()
    result = train_model(
        cfg, statistics=stats, schema=schema, output_dir=root / name, tensorboard=False
    )
    return result, time.perf_counter() - start


def _p50_ms(model_dir: Path, rows: list[dict[str, Any]], repeats: int) -> float:
    from mooring.features._inputs import columns_from_records, model_spec
    from mooring.serving._loaded import load_served_model

    served = load_served_model("bench", 1, model_dir)
    spec = model_spec(served.folder)
    feeds = [columns_from_records([row], spec) for row in rows]
    for feed in feeds[:20]:
        served.predict(feed)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        served.predict(feeds[i % len(feeds)])
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def bench_adult(root: Path, quick: bool) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from mooring.contract._io import ReadOptions, read_table
    from mooring.features._inputs import predict_saved_model

    paths = _adult(root, 3000 if quick else None)
    data = {"positive": ">50K", "na_values": ["?", ""]}
    gbt_model = {"kind": "gbt", "task": "binary", **({"gbt": {"num_trees": 20}} if quick else {})}
    gbt, gbt_total = _train(root, "adult_gbt", paths["train"], "class", gbt_model, **data)
    mlp_model = {"kind": "mlp", "task": "binary", **({"max_steps": 200} if quick else {})}
    mlp, mlp_total = _train(root, "adult_mlp", paths["train"], "class", mlp_model, **data)
    test = read_table(paths["test"], ReadOptions(na_values=("?", "")))
    y = (np.asarray(test.column("class").to_pylist()) == ">50K").astype(int)
    features = test.drop(["class"])
    auc = {}
    for key, result in (("gbt", gbt), ("mlp", mlp)):
        out = predict_saved_model(result.model_dir, features)
        auc[key] = float(roc_auc_score(y, out["probabilities"][:, 1]))
    train = pd.read_csv(paths["train"], na_values=["?"])
    frame = pd.concat([train, features.to_pandas()], keys=["train", "test"])
    x = pd.get_dummies(frame.drop(columns=["class"]), dummy_na=False).astype(float)
    x_train, x_test = x.loc["train"], x.loc["test"]
    y_train = (train["class"] == ">50K").astype(int)
    hgb = HistGradientBoostingClassifier(random_state=0).fit(x_train, y_train)
    auc["sklearn_hist_gradient_boosting"] = float(roc_auc_score(y, hgb.predict_proba(x_test)[:, 1]))
    scaled_mean = x_train.mean()
    scaled_std: Any = x_train.std()
    scaled_std = scaled_std.where(scaled_std > 0, 1.0)
    lr = LogisticRegression(max_iter=2000).fit(
        ((x_train - scaled_mean) / scaled_std).fillna(0), y_train
    )
    lr_p = lr.predict_proba(((x_test - scaled_mean) / scaled_std).fillna(0))[:, 1]
    auc["sklearn_logistic_regression"] = float(roc_auc_score(y, lr_p))
    rows = features.slice(0, 200).to_pylist()
    repeats = 200 if quick else 2000
    gbt_p50 = _p50_ms(gbt.model_dir, rows, repeats)
    mlp_p50 = _p50_ms(mlp.model_dir, rows, repeats)
    return {
        "train_rows": gbt.record.data["train_rows"],
        "test_rows": len(y),
        "auc": auc,
        "gbt_trees": gbt.record.trees,
        "gbt_fit_seconds": gbt.timings["fit_seconds"],
        "gbt_train_model_seconds": gbt_total,
        "mlp_train_model_seconds": mlp_total,
        "mlp_plan": mlp.record.plan,
        "mlp_rounds_run": len(mlp.epochs),
        "served_single_row_p50_ms": {"gbt": gbt_p50, "mlp": mlp_p50},
        "latency_method": "in-process load_served_model(...).predict, one row per call",
        "gbt_top_features": dict(list((gbt.record.feature_importances or {}).items())[:5]),
    }


def bench_small(root: Path) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mooring.features._inputs import predict_saved_model

    out: dict[str, Any] = {}
    for name, loader in (("wine", load_wine), ("diabetes", load_diabetes)):
        frame = loader(as_frame=True).frame
        classify = name == "wine"
        if classify:
            frame["target"] = "class_" + frame["target"].astype(str)
        train, test = train_test_split(
            frame, test_size=0.25, random_state=0, stratify=frame["target"] if classify else None
        )
        cols = [c for c in frame.columns if c != "target"]
        path = root / f"{name}.csv"
        train.to_csv(path, index=False)
        result, seconds = _train(root, name, path, "target", {})
        pred = predict_saved_model(
            result.model_dir, pa.Table.from_pandas(test[cols], preserve_index=False)
        )
        truth = test["target"].to_numpy()
        if classify:
            ours = float(np.mean(np.array([c.decode() for c in pred["classes"]]) == truth))
            base = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            theirs = float(base.fit(train[cols], train["target"]).score(test[cols], truth))
            out[name] = {
                "metric": "accuracy",
                "mooring_mlp": ours,
                "sklearn_logistic_regression": theirs,
            }
        else:
            ours = float(np.sqrt(np.mean((pred["value"] - truth) ** 2)))
            fitted = LinearRegression().fit(train[cols], train["target"]).predict(test[cols])
            theirs = float(np.sqrt(np.mean((fitted - truth) ** 2)))
            out[name] = {"metric": "rmse", "mooring_mlp": ours, "sklearn_linear_regression": theirs}
        out[name].update(
            train_rows=len(train), seconds=seconds, plan=result.record.plan["reason"],
            rounds_run=len(result.epochs), best_round=result.best_epoch,
        )  # fmt: skip
    return out


# -- an imported CNN: its own signature in process against mooring serving it ------------
def build_cnn(folder: Path) -> Path:
    """A small CNN as a team would bring it: ``image`` float32 [None, 32, 32, 3] → 10 classes.

    Two 3×3 convolutions (32 and 64 filters, ReLU) each followed by 2×2 max pooling, a
    Dense(64) layer and a 10-way softmax; random weights (seed 7), exported with Keras 3's
    ``model.export`` (a SavedModel with a ``serving_default`` signature).
    """
    import keras

    keras.utils.set_random_seed(7)
    image = keras.Input(CNN_SHAPE, name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    keras.Model(image, out).export(str(folder), verbose=False)
    return folder


def cnn_server(folder: Path, port: int) -> None:
    """mooring serving ``folder`` as model ``cnn`` on 127.0.0.1:``port`` in one process:
    ``build_app([DirectorySource(...)])`` with the default ``[serving]`` settings behind
    mooring's own :class:`~mooring.serving.Server` (no prediction log, no access log).

    The collector is set as ``mooring serve`` sets it: TensorFlow's objects frozen
    (``gc.freeze``) before the model loads, the thresholds raised once it is ready
    (``collect_for_serving``). Without that, each full collection walks TensorFlow's
    objects, and a 32-image body (about 130,000 Python objects once parsed) set off
    enough of them to halve the throughput (measured while writing this benchmark)."""
    import gc

    from mooring._tensorflow import quiet_native_logs
    from mooring.config import ServingConfig
    from mooring.serving import DirectorySource, Server, build_app
    from mooring.serving._process import collect_for_serving

    with quiet_native_logs():
        import tensorflow  # noqa: F401 - imported before the freeze, as mooring serve does
    gc.freeze()
    app = build_app(
        [DirectorySource(folder, CNN_NAME)], ServingConfig(), on_ready=collect_for_serving
    )
    Server(app, host="127.0.0.1", port=port).run()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_command(part: str, folder: Path, port: int, workers: int | None) -> list[str]:
    """The command line of one of the servers the cells drive."""
    if part == "mooring-app":
        return [sys.executable, __file__, "--cnn-server", str(folder), str(port)]
    if part == "ceiling":
        return [sys.executable, __file__, "--trivial-server", str(port)]
    config = folder.parent / "mooring.toml"
    config.write_text(f'[project]\nname = "{CNN_NAME}"\n[data]\ntrain = "unused.csv"\n')
    cmd = [sys.executable, "-m", "mooring", "serve", "--config", str(config), "--model-dir",
           str(folder), "--port", str(port), "--no-access-log"]  # fmt: skip
    return [*cmd, "--workers", str(workers)] if workers else cmd


def _spawn(cmd: list[str], log: Path) -> Any:
    import subprocess

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def _post(
    url: str, body: bytes, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    status, content, _ = _post_full(url, body, timeout, headers)
    return status, content


def _post_full(
    url: str, body: bytes, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    import httpx

    # Plain HTTP: verify=False spares building a TLS context per call (about 30 ms of CPU).
    res = httpx.post(url, content=body, timeout=timeout, verify=False,
                     headers=headers or {"Content-Type": "application/json"})  # fmt: skip
    return res.status_code, res.content, dict(res.headers)


def _wait_ready(url: str, body: bytes, proc: Any, log: Path, timeout: float = 180.0) -> float:
    """Seconds until ``body`` POSTed to ``url`` is answered 200."""
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if _post(url, body, timeout=10)[0] == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready after {timeout} s")


def _own_cpu_s(pid: int) -> float:
    """utime + stime of one process (``/proc``), seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    from bench_serving import process_tree

    """utime + stime of a process and its descendants, seconds."""
    return sum(_own_cpu_s(p) for p in process_tree(pid))


def _settle(pid: int, limit_s: float = 15.0) -> float:
    """Wait until a server is idle again (under 10% of a core over 0.25 s), so that the
    requests still queued when ``wrk`` stops do not run into the next cell; seconds waited."""
    start = time.perf_counter()
    before = _cpu_s(pid)
    while time.perf_counter() - start < limit_s:
        time.sleep(0.25)
        now = _cpu_s(pid)
        if now - before < 0.025:
            break
        before = now
    return time.perf_counter() - start


def _busiest(pid: int, seconds: float = 1.0) -> int:
    from bench_serving import process_tree

    """The process of ``pid``'s tree that used the most CPU over the next ``seconds``."""
    before = {p: _own_cpu_s(p) for p in process_tree(pid)}
    time.sleep(seconds)
    used = {p: _own_cpu_s(p) - c for p, c in before.items()}
    return max(used, key=lambda p: used[p]) if used else pid


def _body(values: Any) -> bytes:
    """TF Serving's columnar request: ``{"inputs": {"image": [...]}}``."""
    return json.dumps({"inputs": {"image": values.tolist()}}, separators=(",", ":")).encode()


def _binary_body(values: Any, output: str) -> tuple[bytes, int]:
    """The Open Inference Protocol's binary tensor extension, as tritonclient sends it: a
    JSON header (the input's shape, ``FP32``, ``binary_data_size``; the output asked for
    as binary) followed by the images as little-endian float32 → (body, header length)."""
    import numpy as np

    blob = np.ascontiguousarray(values, dtype="<f4").tobytes()
    header = {
        "inputs": [{"name": "image", "shape": list(values.shape), "datatype": "FP32",
                    "parameters": {"binary_data_size": len(blob)}}],
        "outputs": [{"name": output, "parameters": {"binary_data": True}}],
    }  # fmt: skip
    head = json.dumps(header, separators=(",", ":")).encode()
    return head + blob, len(head)


def _binary_headers(header_length: int) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(header_length),
    }


def _binary_lua(folder: Path, bodies: list[bytes], header_length: int, name: str) -> Path:
    """A wrk script (``folder/name``) that POSTs binary bodies in turn, each read from a
    file of its own (a Lua long string would not keep arbitrary bytes)."""
    paths = []
    for i, body in enumerate(bodies):
        path = folder / f"{Path(name).stem}-{i}.bin"
        path.write_bytes(body)
        paths.append(f"[==[{path}]==]")
    headers = "".join(
        f"wrk.headers['{k}'] = '{v}'\n" for k, v in _binary_headers(header_length).items()
    )
    script = folder / name
    script.write_text(
        f"wrk.method = 'POST'\n{headers}local bodies = {{}}\n"
        f"for _, path in ipairs({{{', '.join(paths)}}}) do\n"
        "  local f = assert(io.open(path, 'rb'))\n"
        "  bodies[#bodies + 1] = f:read('*a')\n  f:close()\nend\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
    )
    return script


def _output_name(base: str) -> str:
    """The model's first output as its Open Inference Protocol metadata names it."""
    import httpx

    res = httpx.get(base + CNN_METADATA, timeout=30.0)
    if res.status_code != 200:
        raise SystemExit(f"GET {CNN_METADATA} answered {res.status_code}: {res.text[:500]}")
    name: str = res.json()["outputs"][0]["name"]
    return name


def _check_binary(
    url: str, bodies: dict[int, tuple[bytes, int]], expected: dict[int, Any], output: str
) -> dict[str, Any]:
    """POST one binary body of each size; the answer's JSON header (its length from the
    response's ``Inference-Header-Content-Length``) and ``output``'s binary bytes, read
    as little-endian float32 in the shape the header gives, against the model's own."""
    import numpy as np

    worst = 0.0
    for size, (body, header_length) in bodies.items():
        status, content, headers = _post_full(url, body, headers=_binary_headers(header_length))
        if status != 200:
            raise SystemExit(f"binary {size}-image request answered {status}: {content[:500]!r}")
        length = headers.get("inference-header-content-length")
        if length is None:
            raise SystemExit(f"binary answer without Inference-Header-Content-Length: {headers}")
        head = json.loads(content[: int(length)])
        offset = int(length)
        got = None
        for out in head["outputs"]:
            nbytes = (out.get("parameters") or {}).get("binary_data_size")
            if out["name"] == output:
                if nbytes is None or out["datatype"] != "FP32":
                    raise SystemExit(f"output {output} not binary FP32: {out}")
                raw = content[offset : offset + nbytes]
                got = np.frombuffer(raw, dtype="<f4").reshape(out["shape"]).astype(np.float64)
            offset += nbytes or 0
        if offset != len(content):
            raise SystemExit(f"answer of {len(content)} bytes, header and data say {offset}")
        if got is None:
            raise SystemExit(f"no output {output} in the answer: {head}")
        if got.shape != expected[size].shape:
            raise SystemExit(f"answer shape {got.shape}, the model's {expected[size].shape}")
        worst = max(worst, float(np.max(np.abs(got - expected[size]))))
    if worst > CNN_TOLERANCE:
        raise SystemExit(f"binary answers differ from the model's own by {worst:g}")
    return {"max_abs_difference": worst, "tolerance": CNN_TOLERANCE, "equal": True,
            "output": output}  # fmt: skip


def _inprocess_cell(signature: Any, batches: list[Any], seconds: float) -> dict[str, Any]:
    """The signature called back to back for ``seconds`` over ``batches`` in turn:
    ``tf.constant(batch)`` in, the outputs read back as numpy (what a server also does)."""
    import tensorflow as tf

    size = len(batches[0])
    calls = 0
    cpu = time.process_time()
    start = time.perf_counter()
    end = start + seconds
    now = start
    while now < end:
        out = signature(image=tf.constant(batches[calls % len(batches)]))
        for value in out.values():
            value.numpy()
        calls += 1
        now = time.perf_counter()
    elapsed = now - start
    return {
        "calls": calls,
        "images_per_s": calls * size / elapsed,
        "ms_per_call": elapsed / calls * 1000.0,
        "cores_busy": (time.process_time() - cpu) / elapsed,
    }


def _wrk_cell(url: str, script: Path, images: int, seconds: float, pid: int) -> dict[str, Any]:
    """``wrk -t2 -c32`` for ``seconds``: requests/s (200s only), images/s, latency, the
    non-2xx and socket errors, and the cores the server and wrk kept busy."""
    import resource

    from _wrk import wrk
    from bench_serving import process_tree

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = {p: _own_cpu_s(p) for p in process_tree(pid)}
    start = time.perf_counter()
    cell = wrk(url, script, seconds, connections=CNN_CONNECTIONS, timeout_s=10.0)
    elapsed = time.perf_counter() - start
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (done.ru_utime - children.ru_utime) + (done.ru_stime - children.ru_stime)
    busy = {p: (_own_cpu_s(p) - c) / elapsed for p, c in server_cpu.items()}
    cell["images_per_s"] = cell["rps"] * images
    cell["server_cores_busy"] = sum(busy.values())
    cell["server_cores_by_process"] = sorted((round(b, 2) for b in busy.values()), reverse=True)
    cell["wrk_cores_busy"] = wrk_cpu / elapsed
    cell["settle_s"] = _settle(pid)
    return cell


def _check_answers(url: str, bodies: dict[int, bytes], expected: dict[int, Any]) -> dict[str, Any]:
    """POST one body of each size; the answer's ``outputs`` against the model's own."""
    import numpy as np

    worst = 0.0
    for size, body in bodies.items():
        status, content = _post(url, body)
        if status != 200:
            raise SystemExit(f"{size}-image request answered {status}: {content[:500]!r}")
        got = np.asarray(json.loads(content)["outputs"], dtype=np.float64)
        if got.shape != expected[size].shape:
            raise SystemExit(f"answer shape {got.shape}, the model's {expected[size].shape}")
        worst = max(worst, float(np.max(np.abs(got - expected[size]))))
    if worst > CNN_TOLERANCE:
        raise SystemExit(f"served answers differ from the model's own by {worst:g}")
    return {"max_abs_difference": worst, "tolerance": CNN_TOLERANCE, "equal": True}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _profile(url: str, script: Path, pid: int, seconds: float, raw: Path) -> dict[str, Any]:
    """``py-spy record`` (100 Hz, raw) on the busiest process of ``pid``'s tree while
    ``wrk`` sends 32-image bodies: each function's share of the samples, as the innermost
    frame (self) and anywhere on the stack (total), mooring's and the libraries' own."""
    import shutil
    import subprocess
    from collections import Counter

    from _wrk import wrk_command

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = wrk_command(url, script, seconds + 3, connections=CNN_CONNECTIONS, timeout_s=10.0)
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = _busiest(pid)
    subprocess.run([spy, "record", "-p", str(target), "-d", str(max(1, round(seconds))), "-r",
                    "100", "-f", "raw", "--threads", "--nonblocking", "-o", str(raw)],
                   capture_output=True, check=False)  # fmt: skip
    load.communicate()
    _settle(pid)
    own, anywhere, total = Counter[str](), Counter[str](), 0
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count = line.rpartition(" ")
        frames = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames[1:]):
            anywhere[frame] += int(count)
    if not total:
        return {}
    share = {"self": own.most_common(12), "total": anywhere.most_common(25)}
    return {"pid": target, "samples": total,
            **{k: {f: n / total for f, n in v} for k, v in share.items()}}  # fmt: skip


def bench_imported_cnn(
    root: Path,
    rounds: int,
    seconds: float,
    parts: list[str],
    workers: int | None,
    profile_s: float,
    formats: list[str] | None = None,
) -> dict[str, Any]:
    """In-process images/s of the CNN's signature against mooring serving it over REST,
    each server fed TF Serving's columnar JSON and the Open Inference Protocol's binary
    tensors (``formats``), and the HTTP stack's ceiling on the JSON bodies, interleaved
    in ``rounds``."""
    import numpy as np

    from mooring._tensorflow import quiet_native_logs

    with quiet_native_logs():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    from _wrk import lua_script, wrk
    from bench_serving import process_tree, stop_server

    formats = formats or list(CNN_BODIES)
    folder = build_cnn(root / "cnn")
    # Pixel values in [0, 1] with 4 decimals: 745 KB of JSON for 32 images. The model is
    # fed the same numbers as float32, as the server casts them (and as the binary bodies
    # carry them).
    values = np.round(np.random.default_rng(0).random((64, *CNN_SHAPE)), 4)
    images = values.astype(np.float32)
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    batches = {n: [images[i : i + n] for i in range(0, 64, n)] for n in CNN_BATCHES}
    bodies = {n: [_body(values[i : i + n]) for i in range(0, 64, n)] for n in CNN_BATCHES}
    scripts = {n: lua_script(root, bodies[n], f"cnn{n}.lua") for n in CNN_BATCHES}
    expected = {
        n: next(iter(signature(image=tf.constant(batches[n][0])).values())).numpy()
        for n in CNN_BATCHES
    }
    servers: dict[str, tuple[Any, str, Path]] = {}
    ready: dict[str, float] = {}
    try:
        for part in parts:  # one at a time: a start's seconds are its own
            port = _free_port()
            log = root / f"{part}.log"
            proc = _spawn(_server_command(part, folder, port, workers), log)
            servers[part] = (proc, f"http://127.0.0.1:{port}", log)
            ready[part] = _wait_ready(servers[part][1] + CNN_PREDICT, bodies[1][0], proc, log)
        targets, checks, binary, output = _targets(
            root, servers, formats, scripts, bodies, images, expected
        )
        for n in CNN_BATCHES:  # warm up: one unrecorded second per body size and target
            _inprocess_cell(signature, batches[n], 1.0)
            for proc, url, by_size in targets.values():
                wrk(url, by_size[n], 2.0, connections=CNN_CONNECTIONS, timeout_s=10.0)
                _settle(proc.pid)
        order = ["in-process", *targets]
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {
            p: {n: [] for n in CNN_BATCHES} for p in order
        }
        for r in range(rounds):
            turn = order[r % len(order) :] + order[: r % len(order)]
            for n in CNN_BATCHES:
                for part in turn:
                    if part == "in-process":
                        cell = _inprocess_cell(signature, batches[n], seconds)
                    else:
                        proc, url, by_size = targets[part]
                        cell = _wrk_cell(url, by_size[n], n, seconds, proc.pid)
                    runs[part][n].append(cell)
                    print(f"  round {r + 1} {part:20s} {n:2d} image(s): "
                          f"{cell['images_per_s']:8.1f} images/s", flush=True)  # fmt: skip
        profiles = {
            k: _profile(url, by_size[32], proc.pid, profile_s,
                        root / f"{k.replace(' ', '-')}.pyspy.txt")
            for k, (proc, url, by_size) in targets.items()
            if profile_s > 0 and k != "ceiling"
        }  # fmt: skip
        exited = {k: proc.poll() for k, (proc, _, _) in servers.items()}
        processes = {k: len(process_tree(proc.pid)) for k, (proc, _, _) in servers.items()}
    finally:
        for proc, _, _ in servers.values():
            stop_server(proc)
    report = _cnn_report(runs, rounds, seconds)
    request: dict[str, Any] = {"connections": CNN_CONNECTIONS}
    if "json" in formats or "ceiling" in servers:
        request["json"] = {
            "form": 'TF Serving columnar JSON {"inputs": {"image": [...]}}, 4 decimals a value, '
            f"POST {CNN_PREDICT}",
            "body_bytes": {str(n): len(bodies[n][0]) for n in CNN_BATCHES},
            "distinct_bodies": {str(n): len(bodies[n]) for n in CNN_BATCHES},
        }
    if binary:
        request["binary"] = {
            "form": "Open Inference Protocol binary tensor extension: "
            f"POST {CNN_INFER}, Inference-Header-Content-Length, a JSON header (image FP32 "
            f"[n, 32, 32, 3], binary_data_size; output {output} binary_data) + little-endian "
            "float32; the answer's output as binary",
            "body_bytes": {str(n): len(binary[n][0][0]) for n in CNN_BATCHES},
            "header_bytes": {str(n): binary[n][0][1] for n in CNN_BATCHES},
            "distinct_bodies": {str(n): len(binary[n]) for n in CNN_BATCHES},
        }
    report.update(
        model=_model_facts(folder),
        request=request,
        answers_checked=checks,
        ready_s_from_spawn=ready,
        server_processes=processes,
        exited_during_run={k: v for k, v in exited.items() if v is not None},
        profile=profiles,
    )
    return report


def _targets(
    root: Path,
    servers: dict[str, tuple[Any, str, Path]],
    formats: list[str],
    scripts: dict[int, Path],
    bodies: dict[int, list[bytes]],
    images: Any,
    expected: dict[int, Any],
) -> tuple[dict[str, tuple[Any, str, dict[int, Path]]], dict[str, Any], dict[int, Any], Any]:
    """Each server with each body format it is sent → (server process, URL, wrk script by
    images); one answer of each size checked per mooring target before any load. Also
    the binary bodies (with their header lengths) and the output they ask for."""
    targets: dict[str, tuple[Any, str, dict[int, Path]]] = {}
    checks: dict[str, Any] = {}
    binary: dict[int, list[tuple[bytes, int]]] = {}
    output = None
    for part, (proc, base, _) in servers.items():
        if part == "ceiling":
            targets[part] = (proc, base + CNN_PREDICT, scripts)
            continue
        if "json" in formats:
            url = base + CNN_PREDICT
            checks[f"{part} json"] = _check_answers(
                url, {n: bodies[n][0] for n in CNN_BATCHES}, expected
            )
            targets[f"{part} json"] = (proc, url, scripts)
        if "binary" not in formats:
            continue
        if output is None:
            output = _output_name(base)
            binary = {
                n: [_binary_body(images[i : i + n], output) for i in range(0, 64, n)]
                for n in CNN_BATCHES
            }
            bin_scripts = {
                n: _binary_lua(root, [b for b, _ in binary[n]], binary[n][0][1],
                               f"cnn{n}-binary.lua")
                for n in CNN_BATCHES
            }  # fmt: skip
        url = base + CNN_INFER
        checks[f"{part} binary"] = _check_binary(
            url, {n: binary[n][0] for n in CNN_BATCHES}, expected, output
        )
        targets[f"{part} binary"] = (proc, url, bin_scripts)
    return targets, checks, binary, output


def _model_facts(folder: Path) -> dict[str, Any]:
    return {
        "input": "image float32 [None, 32, 32, 3]",
        "layers": "Conv2D(32, 3, relu) + MaxPool, Conv2D(64, 3, relu) + MaxPool, Dense(64, "
        "relu), Dense(10, softmax); random weights, seed 7",
        "export": "keras Model.export (SavedModel, serving_default)",
        "saved_model_bytes": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
    }


def _cnn_report(
    runs: dict[str, dict[int, list[dict[str, Any]]]], rounds: int, seconds: float
) -> dict[str, Any]:
    cells: dict[str, dict[str, Any]] = {}
    for part, by_size in runs.items():
        for n, values in by_size.items():
            keys = [k for k, v in values[0].items() if isinstance(v, int | float)]
            cell: dict[str, Any] = {k: _median([float(v[k]) for v in values]) for k in keys}
            if part != "in-process":
                cell["non_2xx_total"] = sum(v["non_2xx"] for v in values)
                cell["socket_errors_total"] = sum(v["socket_error_count"] for v in values)
            cell["rounds"] = values
            cells[f"{part} {n}"] = cell
    ratios: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    for part in (p for p in runs if p != "in-process"):
        for n in CNN_BATCHES:
            per_round = [
                s["images_per_s"] / i["images_per_s"]
                for s, i in zip(runs[part][n], runs["in-process"][n], strict=True)
            ]
            ratios[f"{part} {n} / in-process {n}"] = {
                "median": _median(per_round), "rounds": per_round,
            }  # fmt: skip
        if part == "ceiling":
            continue
        ratio = ratios[f"{part} 32 / in-process 32"]["median"]
        floors[f"{part}: images/s ÷ in-process, 32 images"] = {
            "value": ratio, "floor": f">= {CNN_FLOOR}", "met": ratio >= CNN_FLOOR,
        }  # fmt: skip
        errors = sum(
            cells[f"{part} {n}"]["non_2xx_total"] + cells[f"{part} {n}"]["socket_errors_total"]
            for n in CNN_BATCHES
        )
        floors[f"{part}: non-2xx and socket errors"] = {
            "value": errors, "floor": "== 0", "met": errors == 0,
        }  # fmt: skip
    return {
        "method": {
            "rounds": rounds,
            "cell_seconds": seconds,
            "in-process": 'tf.saved_model.load(dir).signatures["serving_default"]'
            "(image=tf.constant(batch)), outputs read as numpy, back to back, in the driver",
            "mooring-app": "build_app([DirectorySource(dir, 'cnn')], ServingConfig()) + "
            "mooring.serving.Server in one process, default [serving] settings, the "
            "collector set as mooring serve sets it; wrk -t2 -c32",
            "mooring-serve": "mooring serve --config <name = cnn> --model-dir dir "
            "--no-access-log (--workers as given, else its default); wrk -t2 -c32",
            "json": f"TF Serving columnar JSON POSTed to {CNN_PREDICT}",
            "binary": f"the Open Inference Protocol's binary tensor extension POSTed to "
            f"{CNN_INFER} (raw float32 in, the output as raw float32)",
            "ceiling": "uvicorn + Starlette answering a fixed small JSON after orjson.loads "
            "of the body (benchmarks/_wrk.py trivial_server); wrk -t2 -c32",
            "order": "per round and body size: every target (server and body format) "
            "in turn, rotated by round",
            "medians": "cells: median of rounds; ratios: median of per-round ratios",
        },
        "cells": cells,
        "ratios": ratios,
        "floors": floors,
    }


def _print_cnn(report: dict[str, Any]) -> None:
    print("imported CNN (median of rounds):")
    for name, cell in report["cells"].items():
        line = f"  {name:23s} {cell['images_per_s']:9.1f} images/s"
        if "rps" in cell:
            line += (f"  {cell['rps']:8.1f} req/s  p50 {cell.get('p50_ms', 0):7.2f} ms"
                     f"  p99 {cell.get('p99_ms', 0):7.2f} ms  non-2xx {cell['non_2xx_total']}"
                     f"  socket errors {cell['socket_errors_total']}"
                     f"  server cores {cell['server_cores_busy']:.2f}")  # fmt: skip
        print(line)
    for name, ratio in report["ratios"].items():
        print(f"  {name:48s} {ratio['median']:.3f}")


def _machine(load_start: tuple[float, ...]) -> dict[str, Any]:
    import subprocess

    try:
        proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_version = next(iter((proc.stdout or proc.stderr).strip().splitlines()), None)
    except OSError:
        wrk_version = None
    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:
        tf_version = None
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "platform": platform.platform(),
        "tensorflow": tf_version,
        "wrk": wrk_version,
    }


def _floors(adult: dict[str, Any] | None, small: dict[str, Any] | None) -> dict[str, Any]:
    """The model floors of the sections that ran."""
    measured: dict[str, float] = {}
    if adult is not None:
        p50 = adult["served_single_row_p50_ms"]
        measured.update(
            adult_gbt_auc=adult["auc"]["gbt"],
            adult_mlp_auc=adult["auc"]["mlp"],
            gbt_fit_seconds=adult["gbt_fit_seconds"],
            gbt_p50_over_mlp_p50=p50["gbt"] / p50["mlp"] if p50["mlp"] > 0 else float("inf"),
        )
    if small is not None:
        measured.update(
            wine_accuracy=small["wine"]["mooring_mlp"],
            diabetes_rmse=small["diabetes"]["mooring_mlp"],
        )
    return {
        key: {"value": measured[key], "floor": f"{op} {limit}",
              "met": measured[key] >= limit if op == ">=" else measured[key] <= limit}
        for key, (op, limit) in FLOORS.items() if key in measured
    }  # fmt: skip


def _print_floors(floors: dict[str, Any]) -> None:
    for key, row in floors.items():
        verdict = "met" if row["met"] else "MISSED"
        print(f"  {key:56s} {row['value']:10.4f}  {row['floor']:10s} {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="an Adult sample; smoke test only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_models.json")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, default=None,
        help="run this section (repeatable); default: adult and small",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="imported-cnn: rounds (3)")
    parser.add_argument("--cell-s", type=float, default=5.0, help="imported-cnn: seconds a cell")
    parser.add_argument(
        "--servers", default="mooring-app,mooring-serve,ceiling",
        help="imported-cnn: the servers driven (mooring-app, mooring-serve, ceiling)",
    )  # fmt: skip
    parser.add_argument(
        "--bodies", default=",".join(CNN_BODIES),
        help="imported-cnn: the body formats sent to mooring (json, binary)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=None,
        help="imported-cnn: mooring serve --workers (default: its own)",
    )  # fmt: skip
    parser.add_argument(
        "--profile-s", type=float, default=0.0,
        help="imported-cnn: after the rounds, py-spy each mooring server this long",
    )  # fmt: skip
    parser.add_argument("--cnn-out", type=Path, default=HERE / "results" / CNN_REPORT)
    parser.add_argument("--cnn-server", nargs=2, metavar=("DIR", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--trivial-server", metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cnn_server:
        cnn_server(Path(args.cnn_server[0]), int(args.cnn_server[1]))
        return 0
    if args.trivial_server:
        from _wrk import trivial_server

        trivial_server(int(args.trivial_server), CNN_PREDICT, parse=True)
        return 0
    sections = args.only or ["adult", "small"]
    load_start = os.getloadavg()
    adult = small = cnn = None
    with tempfile.TemporaryDirectory(prefix="bench-models-") as scratch:
        root = Path(scratch)
        if "adult" in sections:
            adult = bench_adult(root, args.quick)
        if "small" in sections:
            small = bench_small(root)
        if "imported-cnn" in sections:
            rounds, seconds = (1, 2.0) if args.quick else (args.rounds, args.cell_s)
            parts = [p for p in args.servers.split(",") if p]
            formats = [f for f in args.bodies.split(",") if f]
            if not set(formats) <= set(CNN_BODIES):
                parser.error(f"--bodies: {args.bodies!r}, choose from {','.join(CNN_BODIES)}")
            cnn = bench_imported_cnn(
                root, rounds, seconds, parts, args.workers, args.profile_s, formats
            )
    machine = _machine(load_start)
    if cnn is not None:
        cnn_report = {"benchmark": "models: imported CNN", "quick": args.quick,
                      "machine": machine, **cnn}  # fmt: skip
        args.cnn_out.parent.mkdir(parents=True, exist_ok=True)
        args.cnn_out.write_text(json.dumps(cnn_report, indent=2) + "\n", encoding="utf-8")
        _print_cnn(cnn)
    floors = _floors(adult, small)
    if adult is not None or small is not None:
        report = {
            "benchmark": "models",
            "quick": args.quick,
            "machine": {"python": machine["python"], "cpus": machine["cpus"]},
            "adult": adult,
            "small": small,
            "floors": floors,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("floors:")
    _print_floors(floors)
    if cnn is not None:
        _print_floors(cnn["floors"])
    print(f"load average: start {load_start}, end {machine['load_average_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
