"""Probe: does ``tf.distribute.MultiWorkerMirroredStrategy`` train mooring's Keras model?

Two worker processes on 127.0.0.1 (free ports, one ``TF_CONFIG`` each, CPU only)
run each attempt; the driver collects what every worker reports and writes one
JSON file. Re-run it after a TensorFlow / Keras upgrade to see what changed.

Attempts (``--attempts`` picks a subset, in this order by default):

* ``toy_fit``: a Keras 3 functional model with dict inputs (two numbers and a
  ``StringLookup`` over a string input), built and compiled in
  ``strategy.scope()``, ``model.fit`` on a ``tf.data`` dataset with
  ``AutoShardPolicy.DATA``;
* ``toy_fit_distributed``: the same, fitting on
  ``strategy.experimental_distribute_dataset(dataset)``;
* ``toy_ctl``: the same model, a custom training loop (``strategy.run`` +
  ``optimizer.apply_gradients``) instead of ``model.fit``;
* ``toy_fit_patched``: ``model.fit`` after a workaround for the first failure
  (model, loss and metrics built from a local batch, the trainer's cross-worker
  reduce of a peeked input batch made a no-op — private API), to see what fails next;
* ``keras_distribution``: Keras 3's own API, ``keras.distribution.initialize``
  + ``DataParallel`` on the TensorFlow backend;
* ``tf_keras_legacy``: the toy model with legacy Keras 2 (``tf_keras``,
  ``TF_USE_LEGACY_KERAS=1``); skipped when ``tf_keras`` is not installed;
* ``mooring_single``: the baseline — mooring's own builder and input pipeline on
  examples/adult, one process, no strategy;
* ``mooring_fit`` / ``mooring_ctl`` / ``mooring_fit_patched``: mooring's builder
  (``build_model``), its in-memory ``tf.data`` pipeline and its ``compile`` under
  MWMS, trained with ``model.fit`` / a custom loop / ``model.fit`` with the
  workaround above;
* ``ray_mooring_ctl`` (only with ``--ray``): ``mooring_ctl`` inside two plain Ray
  actors instead of subprocesses.

Every training attempt then saves: the chief with mooring's ``export_model``
(SavedModel + ``mooring.json``; the toy with ``tf.saved_model.save``), the other
worker to a scratch folder (the MWMS saving protocol). The AUC is measured from
the chief's SavedModel on held-out rows (adult: ``adult.test``).

Each attempt has a timeout (``--timeout``); on timeout or when the driver stops,
every worker's process group is killed, so no worker outlives the probe.

Usage::

    PYTHONPATH=src python benchmarks/probe_multiworker.py --out results.json
    PYTHONPATH=src python benchmarks/probe_multiworker.py --attempts toy_fit,mooring_ctl
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT / "examples" / "adult"

TWO_WORKER = [
    "toy_fit",
    "toy_fit_distributed",
    "toy_ctl",
    "toy_fit_patched",
    "keras_distribution",
    "tf_keras_legacy",
    "mooring_fit",
    "mooring_ctl",
    "mooring_fit_patched",
]
ONE_WORKER = ["mooring_single"]
ALL = [*TWO_WORKER[:6], "mooring_single", *TWO_WORKER[6:]]
MESSAGE_CHARS = 500


# ----------------------------------------------------------------------------- helpers


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def auc_score(y: Any, p: Any) -> float:
    """ROC AUC by ranks (ties averaged), numpy only."""
    import numpy as np

    y = np.asarray(y).reshape(-1).astype(bool)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=np.float64)
    sorted_p = p[order]
    i = 0
    while i < len(p):
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Type, message and the frames that matter: where it was raised, and the first
    frame inside keras / tensorflow (the library entry point the probe hit)."""
    frames = traceback.extract_tb(exc.__traceback__)
    library = [f for f in frames if "site-packages" in f.filename]
    first = library[0] if library else (frames[-1] if frames else None)
    last = frames[-1] if frames else None

    def where(frame: Any) -> str | None:
        if frame is None:
            return None
        name = frame.filename.split("site-packages/")[-1]
        return f"{name}:{frame.lineno} in {frame.name}: {frame.line}"

    message = str(exc)
    return {
        "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": message[:MESSAGE_CHARS],
        # Tensor values elided: what the message says, not the batch it carried.
        "message_elided": _elide(message)[:MESSAGE_CHARS],
        "first_library_frame": where(first),
        "raised_at": where(last),
        "frames": [where(f) for f in frames][-25:],
    }


def _elide(message: str) -> str:
    """``numpy=array([...])`` and long runs of numbers in a message → ``…``."""
    import re

    text = re.sub(r"numpy=\s*array\(\[.*?\]\s*(?:,\s*dtype=\w+)?\)", "numpy=…", message, flags=re.S)
    return re.sub(r"\s+", " ", text)


# ----------------------------------------------------------------------------- worker side


def _setup_tf(threads: int) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    with contextlib.suppress(Exception):
        import keras

        keras.config.disable_traceback_filtering()
    return tf


def _strategy(tf: Any) -> Any:
    # RING over gRPC: the CPU collective implementation.
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _is_chief() -> bool:
    cfg = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    return int(cfg.get("task", {}).get("index", 0)) == 0


def _save_dir(out: Path) -> Path:
    """The chief writes ``out``; another worker writes a scratch folder (then removed)."""
    if _is_chief():
        return out
    return Path(tempfile.mkdtemp(prefix="mwms-worker-save-"))


def _toy_data(n: int, seed: int) -> tuple[dict[str, Any], Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.normal(size=n).astype(np.float32)
    b = rng.normal(size=n).astype(np.float32)
    c = rng.choice(np.array(["red", "green", "blue", "other"]), size=n)
    logit = 1.5 * a - b + np.select([c == "red", c == "green"], [1.0, -1.0], 0.0)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64).reshape(-1, 1)
    return {"a": a, "b": b, "c": c.astype(object)}, y


def _toy_model(keras: Any) -> Any:
    from keras import layers, ops

    inputs = {
        "a": keras.Input(shape=(), dtype="float32", name="a"),
        "b": keras.Input(shape=(), dtype="float32", name="b"),
        "c": keras.Input(shape=(), dtype="string", name="c"),
    }
    numbers = layers.Concatenate()(
        [ops.expand_dims(inputs["a"], -1), ops.expand_dims(inputs["b"], -1)]
    )
    onehot = layers.StringLookup(vocabulary=["red", "green", "blue"], output_mode="one_hot")(
        inputs["c"]
    )
    x = layers.Concatenate()([numbers, onehot])
    x = layers.Dense(16, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs=inputs, outputs=out)


def _toy_dataset(tf: Any, x: dict[str, Any], y: Any, batch: int) -> Any:
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(4096, seed=0).batch(batch).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _skip_peek_reduce(model: Any, strategy: Any, dataset: Any) -> None:
    """Workaround for the failing step of ``fit`` under MWMS (Keras 3's TF trainer
    ``_maybe_symbolic_build`` MEAN-reduces a peeked *data batch* across workers, which
    fails for dict inputs and cannot work for strings): build model, loss and metric
    state from one local, undistributed batch, then make the peek a no-op on this
    instance. Private API — a probe of what a fix would need, not a supported path."""
    batch = next(iter(dataset.take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda *args, **kwargs: None


def _custom_loop(
    tf: Any, strategy: Any, model: Any, dataset: Any, steps: int, global_batch: int
) -> list[float]:
    """``strategy.run`` training: BCE averaged over the global batch, one optimizer step."""
    import keras

    loss_fn = keras.losses.BinaryCrossentropy(reduction="none")
    dist = iter(strategy.experimental_distribute_dataset(dataset))

    def step_fn(batch: Any) -> Any:
        x, y = batch[0], batch[1]
        w = batch[2] if len(batch) > 2 else None
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            per_example = loss_fn(tf.cast(y, tf.float32), pred)
            loss = tf.nn.compute_average_loss(
                per_example, sample_weight=w, global_batch_size=global_batch
            )
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def train_step(iterator: Any) -> Any:
        losses = strategy.run(step_fn, args=(next(iterator),))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    history = []
    for i in range(steps):
        loss = float(train_step(dist))
        if i % max(1, steps // 5) == 0 or i == steps - 1:
            history.append(loss)
    return history


def _toy_auc_from_saved(tf: Any, path: Path) -> float:
    x, y = _toy_data(5000, seed=99)
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    out = fn(**{k: tf.constant(v) for k, v in x.items()})
    return auc_score(y, next(iter(out.values())).numpy())


def attempt_toy(kind: str, args: argparse.Namespace, result: dict[str, Any]) -> None:
    if kind == "tf_keras_legacy":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        try:
            import tf_keras  # noqa: F401
        except ImportError as exc:
            result["status"] = "skipped"
            result["message"] = f"tf_keras is not installed ({exc}); legacy Keras 2 not probed"
            return
    tf = _setup_tf(args.threads)
    import keras

    if kind == "tf_keras_legacy":
        keras = tf.keras  # tf_keras under TF_USE_LEGACY_KERAS
    result["keras"] = getattr(keras, "__version__", "?")
    result["tensorflow"] = tf.__version__
    global_batch = args.batch_size
    x, y = _toy_data(args.toy_rows, seed=0)
    steps = max(1, args.toy_rows // global_batch)

    t = time.perf_counter()
    strategy = _strategy(tf)
    result["replicas_in_sync"] = int(strategy.num_replicas_in_sync)
    result["stage"] = "build"
    with strategy.scope():
        model = _toy_model(keras)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss="binary_crossentropy",
            metrics=[keras.metrics.AUC(name="auc")],
        )
    dataset = _toy_dataset(tf, x, y, global_batch)
    result["stage"] = "train"
    if kind == "toy_ctl":
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
        result["losses"] = _custom_loop(
            tf, strategy, model, dataset, steps * args.epochs, global_batch
        )
    else:
        if kind == "toy_fit_patched":
            _skip_peek_reduce(model, strategy, dataset)
        data = (
            strategy.experimental_distribute_dataset(dataset)
            if kind == "toy_fit_distributed"
            else dataset
        )
        history = model.fit(data, epochs=args.epochs, steps_per_epoch=steps, verbose=0)
        result["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    result["train_seconds"] = time.perf_counter() - t
    result["stage"] = "save"
    out = Path(args.work) / "toy_model"
    target = _save_dir(out)
    signature = tf.function(
        lambda a, b, c: {"p": model({"a": a, "b": b, "c": c}, training=False)},
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="a"),
            tf.TensorSpec([None], tf.float32, name="b"),
            tf.TensorSpec([None], tf.string, name="c"),
        ],
    )
    tf.saved_model.save(model, str(target), signatures={"serving_default": signature})
    result["saved"] = str(target) if _is_chief() else "scratch (non-chief)"
    result["stage"] = "evaluate"
    if _is_chief():
        result["auc"] = _toy_auc_from_saved(tf, out)


def attempt_keras_distribution(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Keras 3's own multi-process API on the TensorFlow backend."""
    tf = _setup_tf(args.threads)
    import keras

    cfg = json.loads(os.environ["TF_CONFIG"])
    index = int(cfg["task"]["index"])
    result["keras"] = keras.__version__
    result["tensorflow"] = tf.__version__
    result["backend"] = keras.backend.backend()
    result["stage"] = "initialize"
    keras.distribution.initialize(
        job_addresses=",".join(cfg["cluster"]["worker"]), num_processes=2, process_id=index
    )
    result["stage"] = "data_parallel"
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    x, y = _toy_data(args.toy_rows, seed=0)
    model = _toy_model(keras)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    result["stage"] = "train"
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)


def _mooring_setup(args: argparse.Namespace) -> dict[str, Any]:
    """mooring's own steps up to a compiled model: statistics, label, spec, model, data."""
    from mooring.config import load_config
    from mooring.config._model import plan_training
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.features._infer import build_feature_spec
    from mooring.training._labels import resolve_label
    from mooring.training._pipeline import load_training_data

    cfg = load_config(ADULT / "mooring.toml")
    cfg.model.kind = args.kind
    cfg.model.epochs = args.epochs
    cfg.model.parity_records = 0
    options = ReadOptions.from_config(cfg.data)
    stats = compute_statistics(cfg.path(cfg.data.train), options)
    schema = infer_schema(stats, label=cfg.data.label, contract=cfg.contract)
    label = resolve_label(cfg, stats, schema)
    spec = build_feature_spec(
        cfg.features,
        statistics=stats,
        schema=schema,
        label=label.column,
        timestamp=cfg.data.timestamp,
    )
    seed = int(cfg.model.seed or 0)
    data = load_training_data(
        cfg.path(cfg.data.train),
        spec,
        label,
        options=options,
        validation_split=cfg.model.validation_split,
        seed=seed,
        memory_limit_mb=cfg.model.memory_limit_mb,
    )
    plan = plan_training(cfg.model, data.train_rows)
    return {
        "cfg": cfg,
        "spec": spec,
        "label": label,
        "data": data,
        "plan": plan,
        "seed": seed,
        "options": options,
    }


def _mooring_eval(s: dict[str, Any], model_dir: Path) -> float:
    from mooring.contract._io import read_table
    from mooring.features._inputs import predict_saved_model

    cfg, label = s["cfg"], s["label"]
    table = read_table(cfg.path(cfg.data.eval), s["options"])
    raw, _ = label.encode(table.column(label.column))
    keep = raw >= 0
    probabilities = predict_saved_model(model_dir, table)["probabilities"][:, 1]
    return auc_score(raw[keep], probabilities[keep])


def attempt_mooring(kind: str, args: argparse.Namespace, result: dict[str, Any]) -> None:
    tf = _setup_tf(args.threads)
    import keras

    from mooring.training._builders import build_model, resolve_kind
    from mooring.training._export import export_model
    from mooring.training._fit import compile_model

    result["keras"] = keras.__version__
    result["tensorflow"] = tf.__version__
    keras.utils.set_random_seed(args.seed)
    s = _mooring_setup(args)
    cfg, spec, label, data, plan, seed = (
        s["cfg"],
        s["spec"],
        s["label"],
        s["data"],
        s["plan"],
        s["seed"],
    )
    result["model_kind"] = cfg.model.kind
    result["train_rows"] = data.train_rows
    result["plan"] = {
        "batch_size": plan.batch_size,
        "steps_per_round": plan.steps_per_round,
        "rounds": plan.rounds,
    }
    single = kind == "mooring_single"
    t = time.perf_counter()
    strategy = tf.distribute.get_strategy() if single else _strategy(tf)
    result["replicas_in_sync"] = int(strategy.num_replicas_in_sync)
    result["stage"] = "build"
    with strategy.scope():
        model = build_model(spec, label, cfg.model, resolve_kind(cfg.model))
        compile_model(model, label, cfg.model, plan)
        model.optimizer.build(model.trainable_variables)
    train = data.train_dataset(
        batch_size=plan.batch_size,
        seed=seed,
        first_epoch=0,
        epochs=plan.rounds * plan.passes_per_round,
        weights=None,
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train = train.with_options(options)
    result["stage"] = "train"
    if kind == "mooring_ctl":
        result["losses"] = _custom_loop(
            tf, strategy, model, train, plan.steps_per_round * plan.rounds, plan.batch_size
        )
    else:
        if kind == "mooring_fit_patched":
            _skip_peek_reduce(model, strategy, train)
        validation = data.validation_dataset(batch_size=plan.batch_size, weights=None)
        if validation is not None:
            validation = validation.with_options(options)
        history = model.fit(
            train,
            validation_data=validation,
            epochs=plan.rounds,
            steps_per_epoch=plan.steps_per_round,
            verbose=0,
            shuffle=False,
        )
        result["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    result["train_seconds"] = time.perf_counter() - t
    result["stage"] = "save"
    out = Path(args.work) / f"{kind}_model"
    target = _save_dir(out)
    export_model(model, spec, label, target, extra={"kind": cfg.model.kind, "probe": kind})
    result["saved"] = str(target) if _is_chief() else "scratch (non-chief)"
    result["stage"] = "evaluate"
    if _is_chief():
        result["auc"] = _mooring_eval(s, out)


def run_worker(args: argparse.Namespace) -> int:
    """One worker of one attempt; writes its report to ``args.report`` whatever happens."""
    result: dict[str, Any] = {
        "attempt": args.worker,
        "tf_config": os.environ.get("TF_CONFIG"),
        "pid": os.getpid(),
        "status": "running",
    }
    start = time.perf_counter()
    try:
        if args.worker.startswith("toy") or args.worker == "tf_keras_legacy":
            attempt_toy(args.worker, args, result)
        elif args.worker == "keras_distribution":
            attempt_keras_distribution(args, result)
        elif args.worker.startswith("mooring"):
            attempt_mooring(args.worker, args, result)
        else:
            raise SystemExit(f"unknown attempt {args.worker!r}")
        if result["status"] == "running":
            result["status"] = "ok"
    except BaseException as exc:  # the report is the point
        result["status"] = "failed"
        result.update(describe_error(exc))
    result["seconds"] = time.perf_counter() - start
    Path(args.report).write_text(json.dumps(result, indent=2, default=str) + "\n", "utf-8")
    sys.stdout.flush()
    # Skip interpreter teardown: TF's collective executors can hang at exit.
    os._exit(0 if result["status"] in ("ok", "skipped") else 1)


# ----------------------------------------------------------------------------- driver side

_LIVE: list[subprocess.Popen[bytes]] = []


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def _kill_all(*_: Any) -> None:
    for proc in list(_LIVE):
        _kill(proc)
    _LIVE.clear()


@contextlib.contextmanager
def _workers(commands: list[tuple[list[str], dict[str, str], Path]]) -> Iterator[list[Any]]:
    procs = []
    try:
        for cmd, env, log in commands:
            with open(log, "wb") as fh:
                proc = subprocess.Popen(
                    cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
                )
            _LIVE.append(proc)
            procs.append(proc)
        yield procs
    finally:
        for proc in procs:
            _kill(proc)
            if proc in _LIVE:
                _LIVE.remove(proc)


def _summarise(name: str, workers: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    statuses = [w.get("status") for w in workers]
    if all(s == "skipped" for s in statuses):
        status = "skipped"
    elif all(s == "ok" for s in statuses):
        status = "ok"
    elif any(s == "timeout" for s in statuses):
        status = "timeout"
    else:
        status = "failed"
    failed = next((w for w in workers if w.get("status") == "failed"), None)
    chief = workers[0] if workers else {}
    summary: dict[str, Any] = {
        "attempt": name,
        "status": status,
        "workers": len(workers),
        "seconds": round(seconds, 2),
        "exception": failed.get("exception") if failed else None,
        "message": (failed or next((w for w in workers if w.get("message")), {})).get("message"),
        "message_elided": failed.get("message_elided") if failed else None,
        "stage": failed.get("stage") if failed else None,
        "first_library_frame": failed.get("first_library_frame") if failed else None,
        "auc": chief.get("auc"),
        "train_seconds": chief.get("train_seconds"),
        "per_worker": workers,
    }
    return summary


def run_attempt(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = 1 if name in ONE_WORKER else args.workers
    ports = free_ports(n)
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    commands = []
    for i in range(n):
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.pop("TF_CONFIG", None)
        if n > 1:
            env["TF_CONFIG"] = tf_config(ports, i)
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            name,
            "--report",
            str(folder / f"worker{i}.json"),
            "--work",
            str(folder),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--toy-rows",
            str(args.toy_rows),
            "--threads",
            str(args.threads),
            "--kind",
            args.kind,
            "--seed",
            str(args.seed),
        ]
        commands.append((cmd, env, folder / f"worker{i}.log"))
    start = time.perf_counter()
    timed_out = False
    with _workers(commands) as procs:
        deadline = start + args.timeout
        while any(p.poll() is None for p in procs):
            if time.perf_counter() > deadline:
                timed_out = True
                break
            # One worker failed: give the others a short grace, then stop them.
            if any(p.poll() not in (None, 0) for p in procs):
                deadline = min(deadline, time.perf_counter() + args.grace)
            time.sleep(0.5)
    seconds = time.perf_counter() - start
    reports = []
    for i in range(n):
        path = folder / f"worker{i}.json"
        log = folder / f"worker{i}.log"
        if path.exists():
            report = json.loads(path.read_text("utf-8"))
        else:
            report = {
                "status": "timeout" if timed_out else "failed",
                "message": (
                    f"no report after {seconds:.0f}s (killed; the worker was blocked, "
                    "typically waiting on a collective its peer never joined)"
                    if timed_out
                    else "the worker exited without a report"
                ),
            }
        tail = log.read_text("utf-8", errors="replace")[-1500:] if log.exists() else ""
        report["log_tail"] = tail
        reports.append(report)
    return _summarise(name, reports, seconds)


def run_ray_attempt(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``mooring_ctl`` in two plain Ray actors (each sets its own TF_CONFIG)."""
    import ray

    name = "ray_mooring_ctl"
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    ports = free_ports(args.workers)
    start = time.perf_counter()
    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}},
    )
    try:

        @ray.remote(num_cpus=1)
        class Worker:
            def run(self, config: str, report: str) -> dict[str, Any]:
                os.environ["TF_CONFIG"] = config
                cmd = [
                    "--worker",
                    "mooring_ctl",
                    "--report",
                    report,
                    "--work",
                    str(folder),
                    "--epochs",
                    str(args.epochs),
                    "--batch-size",
                    str(args.batch_size),
                    "--threads",
                    str(args.threads),
                    "--kind",
                    args.kind,
                    "--seed",
                    str(args.seed),
                ]
                sys.path.insert(0, str(HERE))
                import probe_multiworker as probe

                ns = probe.parse_args(cmd)
                result: dict[str, Any] = {"attempt": name, "status": "running"}
                t = time.perf_counter()
                try:
                    probe.attempt_mooring("mooring_ctl", ns, result)
                    result["status"] = "ok"
                except BaseException as exc:
                    result["status"] = "failed"
                    result.update(probe.describe_error(exc))
                result["seconds"] = time.perf_counter() - t
                return result

        actors = [Worker.remote() for _ in range(args.workers)]  # type: ignore[attr-defined]
        refs = [
            a.run.remote(tf_config(ports, i), str(folder / f"worker{i}.json"))
            for i, a in enumerate(actors)
        ]
        try:
            reports = ray.get(refs, timeout=args.timeout)
        except ray.exceptions.GetTimeoutError:
            reports = [{"status": "timeout", "message": f"no result after {args.timeout}s"}]
        except Exception as exc:
            reports = [{"status": "failed", **describe_error(exc)}]
        for actor in actors:
            ray.kill(actor)
    finally:
        ray.shutdown()
    return _summarise(name, reports, time.perf_counter() - start)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("probe_multiworker.json"))
    parser.add_argument("--attempts", default=",".join(ALL), help="comma-separated, in order")
    parser.add_argument("--ray", action="store_true", help="also run mooring_ctl in Ray actors")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per attempt")
    parser.add_argument("--grace", type=float, default=20.0, help="after one worker fails")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--toy-rows", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=1, help="TF threads per worker")
    parser.add_argument("--kind", default="mlp", choices=["mlp", "linear"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.worker:
        return run_worker(args)
    signal.signal(signal.SIGTERM, lambda *_: (_kill_all(), sys.exit(143)))
    signal.signal(signal.SIGINT, lambda *_: (_kill_all(), sys.exit(130)))
    names = [a.strip() for a in args.attempts.split(",") if a.strip()]
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        raise SystemExit(f"unknown attempts {unknown}; known: {ALL}")
    work = Path(tempfile.mkdtemp(prefix="mwms-probe-"))
    results = []
    try:
        for name in names:
            print(f"[probe] {name} ...", flush=True)
            summary = run_attempt(name, args, work)
            results.append(summary)
            print(
                f"[probe] {name}: {summary['status']} ({summary['seconds']}s)"
                + (
                    f" {summary['exception']}: {summary['message_elided'][:300]}"
                    if summary["exception"]
                    else ""
                )
                + (f" auc={summary['auc']:.4f}" if summary.get("auc") is not None else ""),
                flush=True,
            )
        if args.ray:
            print("[probe] ray_mooring_ctl ...", flush=True)
            summary = run_ray_attempt(args, work)
            results.append(summary)
            print(f"[probe] ray_mooring_ctl: {summary['status']}", flush=True)
    finally:
        _kill_all()
        versions: dict[str, str] = {"python": platform.python_version()}
        for package in ("tensorflow", "keras", "tf_keras", "ray"):
            with contextlib.suppress(Exception):
                versions[package] = importlib.metadata.version(package)
        payload = {
            "probe": "MultiWorkerMirroredStrategy, 2 CPU workers on 127.0.0.1",
            "versions": versions,
            "settings": {
                k: v for k, v in vars(args).items() if k not in ("worker", "report", "work", "out")
            },
            "work_dir": str(work) if args.keep else None,
            "attempts": results,
        }
        args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n", "utf-8")
        print(f"[probe] wrote {args.out}", flush=True)
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
