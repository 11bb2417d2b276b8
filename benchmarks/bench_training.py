"""Benchmark: ``mooring`` training against a hand-written Keras script, side by side.

The data is the UCI Adult training set resampled with a fixed seed to ``--rows``
rows (default 300,000), written once as CSV under ``benchmarks/data/``. Two
contenders train the same model on it — the same MLP (128-64, ReLU, dropout
0.2, one sigmoid unit), the same preprocessing (normalised numbers, bucketized
capital-gain/loss, one-hot categories), the same optimizer and cosine schedule,
the same epochs, batch size and 10% validation split:

* ``mooring``: what a user runs — ``compute_statistics`` + ``infer_schema`` +
  ``train_model`` with the example project's configuration (seeded, so op
  determinism is on; TensorBoard logs and checkpoints every epoch). Export and
  the parity check are timed separately and left out of the comparison, since
  the hand-written script does neither.
* ``keras_script``: the idiomatic hand-written script — pandas ``read_csv``,
  ``adapt()`` on Normalization / Discretization / StringLookup layers, a
  ``tf.data`` pipeline from the DataFrame with ``shuffle`` + ``batch`` +
  ``prefetch``, ``model.fit``.

Each contender runs in its own fresh process with the same thread settings.
Reported: wall seconds from reading the file to a trained model, fit seconds
and training examples per second. The floor — mooring's wall time ≤ 1.15× the
script's — is evaluated and printed, never asserted.

``--workers`` measures one process against several data-parallel workers instead
(``benchmarks/_training_workers.py`` says how), written to
``results/bench_training_workers.json``.

Usage::

    python benchmarks/bench_training.py                       # 300k rows, 5 epochs
    python benchmarks/bench_training.py --rows 20000 --epochs 1 --out t.json
    python benchmarks/bench_training.py --workers --rows 100000 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT / "examples" / "adult"
LABEL = "class"
POSITIVE = ">50K"
NA_VALUES = ["?", ""]
NUMERIC = ["age", "fnlwgt", "education-num", "hours-per-week"]
BUCKETIZED = ["capital-gain", "capital-loss"]
MAX_RATIO = 1.15


def make_data(rows: int, seed: int, folder: Path) -> Path:
    """Adult resampled to ``rows`` rows (cached)."""
    import numpy as np
    import pyarrow.csv as pacsv

    path = folder / f"adult_train_{rows}_seed{seed}.csv"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    table = pacsv.read_csv(ADULT / "adult.data.csv.gz")
    index = np.random.default_rng(seed).integers(0, table.num_rows, rows)
    tmp = path.with_suffix(".tmp")
    pacsv.write_csv(table.take(index), tmp)
    tmp.rename(path)
    return path


def _threads() -> None:
    import tensorflow as tf

    cores = os.cpu_count() or 1
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, cores))


def run_mooring(path: Path, epochs: int, batch_size: int) -> dict[str, Any]:
    _threads()
    from mooring.config import load_config
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.training._train import train_model

    cfg = load_config(ADULT / "mooring.toml")
    cfg.data.train = str(path)
    cfg.data.eval = None
    cfg.model.epochs = epochs
    cfg.model.batch_size = batch_size
    cfg.model.parity_records = 200
    start = time.perf_counter()
    stats = compute_statistics(path, ReadOptions.from_config(cfg.data))
    schema = infer_schema(stats, label=cfg.data.label, contract=cfg.contract)
    stats_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        result = train_model(cfg, statistics=stats, schema=schema, output_dir=Path(out))
    total = time.perf_counter() - start
    t = result.timings
    after_fit = t["export_seconds"] + t["parity_seconds"]
    return {
        "wall_seconds": total - after_fit,
        "statistics_seconds": stats_seconds,
        "prepare_seconds": t["prepare_seconds"],
        "fit_seconds": t["fit_seconds"],
        "export_seconds": t["export_seconds"],
        "parity_seconds": t["parity_seconds"],
        "train_rows": result.record.data["train_rows"],
        "epochs": len(result.epochs),
        "final_val_auc": result.epochs[-1].get("val_auc"),
    }


def run_keras_script(path: Path, epochs: int, batch_size: int) -> dict[str, Any]:
    """The hand-written baseline: what one writes following the Keras tutorials."""
    _threads()
    import keras
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    keras.utils.set_random_seed(42)
    start = time.perf_counter()
    df = pd.read_csv(path, na_values=NA_VALUES, skipinitialspace=True)
    y = (df.pop(LABEL) == POSITIVE).astype("float32").to_numpy()
    categorical = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    for c in categorical:
        df[c] = df[c].fillna("").astype(object)
    for c in NUMERIC + BUCKETIZED:
        df[c] = df[c].astype("float32").fillna(df[c].mean())
    holdout = np.random.default_rng(42).random(len(df)) < 0.1
    train_x = {c: df[c].to_numpy()[~holdout] for c in df.columns}
    val_x = {c: df[c].to_numpy()[holdout] for c in df.columns}
    inputs, blocks = {}, []
    for c in NUMERIC:
        inputs[c] = keras.Input(shape=(1,), name=c)
        norm = keras.layers.Normalization()
        norm.adapt(train_x[c].reshape(-1, 1))
        blocks.append(norm(inputs[c]))
    for c in BUCKETIZED:
        inputs[c] = keras.Input(shape=(1,), name=c)
        disc = keras.layers.Discretization(num_bins=10, output_mode="one_hot")
        disc.adapt(train_x[c].reshape(-1, 1))
        blocks.append(disc(inputs[c]))
    for c in categorical:
        inputs[c] = keras.Input(shape=(1,), name=c, dtype="string")
        lookup = keras.layers.StringLookup(output_mode="one_hot")
        lookup.adapt(train_x[c])
        blocks.append(lookup(inputs[c]))
    x = keras.layers.Concatenate()(blocks)
    for units in (128, 64):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    n = int((~holdout).sum())
    steps = -(-n // batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(1e-3, epochs * steps)
        ),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )

    def dataset(features: dict[str, Any], labels: Any, shuffle: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(
            ({k: v.reshape(-1, 1) for k, v in features.items()}, labels.reshape(-1, 1))
        )
        if shuffle:
            ds = ds.shuffle(len(labels), seed=42)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    train_ds = dataset(train_x, y[~holdout], True)
    val_ds = dataset(val_x, y[holdout], False)
    fit_start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
    end = time.perf_counter()
    return {
        "wall_seconds": end - start,
        "prepare_seconds": fit_start - start,
        "fit_seconds": end - fit_start,
        "train_rows": n,
        "epochs": epochs,
        "final_val_auc": float(history.history["val_auc"][-1]),
    }


WORKERS = {"mooring": run_mooring, "keras_script": run_keras_script}


def measure(name: str, path: Path, epochs: int, batch_size: int) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--path",
            str(path),
            "--epochs",
            str(epochs),
            "--batch-size",
            str(batch_size),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["examples_per_second"] = result["train_rows"] * result["epochs"] / result["fit_seconds"]
    return result


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    path = make_data(args.rows, args.seed, args.data_dir)
    results = {name: measure(name, path, args.epochs, args.batch_size) for name in WORKERS}
    ratio = results["mooring"]["wall_seconds"] / results["keras_script"]["wall_seconds"]
    return {
        "benchmark": "training",
        "rows": args.rows,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
        "wall_ratio_mooring_vs_script": ratio,
        "floors": {
            f"mooring wall time <= {MAX_RATIO}x the hand-written script": ratio <= MAX_RATIO
        },
    }


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nmooring training benchmark: Adult resampled to {report['rows']:,} rows, "
        f"{report['epochs']} epochs, batch {report['batch_size']}, "
        f"{report['machine']['cpus']} CPUs"
    )
    header = f"{'contender':14s} {'wall s':>8s} {'fit s':>8s} {'examples/s':>11s} {'val AUC':>8s}"
    print(header)
    print("-" * len(header))
    for name, r in report["results"].items():
        print(
            f"{name:14s} {r['wall_seconds']:8.1f} {r['fit_seconds']:8.1f} "
            f"{r['examples_per_second']:11,.0f} {r['final_val_auc']:8.4f}"
        )
    m = report["results"]["mooring"]
    print(
        f"mooring, not compared: export {m['export_seconds']:.1f} s, parity check "
        f"{m['parity_seconds']:.1f} s; statistics {m['statistics_seconds']:.1f} s (included)"
    )
    print(f"wall ratio mooring / script: {report['wall_ratio_mooring_vs_script']:.2f}")
    for name, ok in report["floors"].items():
        print(f"  {'met   ' if ok else 'MISSED'} {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_training.json")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers", action="store_true", help="one process against 2 data-parallel workers"
    )
    parser.add_argument("--big-batch", type=int, default=4096, help="--workers: rows/worker")
    parser.add_argument("--rounds", type=int, default=3, help="--workers: interleaved rounds")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--cell-batch", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:
        from _training_workers import run_cell

        cell = run_cell(args.cell, Path(args.path), args.epochs, args.cell_batch, args.big_batch)
        print(json.dumps(cell))
        return 0
    if args.workers:
        from _training_workers import print_workers, run_workers_benchmark

        out = args.out.with_name("bench_training_workers.json")
        path = make_data(args.rows, args.seed, args.data_dir)
        report = run_workers_benchmark(path, args.epochs, args.big_batch, out, args.rounds)
        print_workers(report)
        print(f"\nresults written to {out}")
        return 0
    if args.worker:
        print(json.dumps(WORKERS[args.worker](Path(args.path), args.epochs, args.batch_size)))
        return 0
    report = run_benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
