"""Benchmark: each model's serving signature compiled with XLA against the plain one.

Two models, real Adult rows:

* ``adult``: the example project's model (mooring-trained, one epoch). Its string
  inputs keep XLA out; the report says so and times nothing.
* ``adult-numeric``: a model a team would bring — a Keras MLP (256-256, one sigmoid unit)
  on Adult's six numeric columns as one ``[None, 6]`` float32 tensor, trained one epoch.

For a model XLA compiles, every batch size the server compiles
(:func:`mooring.serving._xla.batch_sizes` of ``--max-batch``) is timed both ways on the
same rows, ``--calls`` calls a cell, the cells interleaved over ``--rounds`` rounds; the
report gives each size's median µs per call, the ratio plain / XLA, the largest output
difference, and what the server's own judgement at load (``[serving] xla = "auto"``)
chose on a fresh load. Writes ``results/bench_xla.json``.

Usage::

    python benchmarks/bench_xla.py                 # 5 rounds of 200 calls a cell
    python benchmarks/bench_xla.py --quick --out t.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def adult_numbers(
    name: str = "adult.data.csv.gz",
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One of Adult's files: the six numeric columns (float32) and the label (0/1)."""
    import csv

    from bench_serving import ADULT

    with gzip.open(ADULT / name, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle, skipinitialspace=True))
    x = np.array([[float(r[c]) for c in NUMERIC] for r in rows], dtype=np.float32)
    y = np.array([1.0 if r["class"].strip().startswith(">50K") else 0.0 for r in rows])
    return x, y.astype(np.float32)


def build_numeric(folder: Path) -> Path:
    """The ``adult-numeric`` MLP, trained one epoch and exported with ``model.export``."""
    import keras

    x, y = adult_numbers()
    keras.utils.set_random_seed(7)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    inputs = keras.Input((len(NUMERIC),), name="numbers")
    hidden = keras.layers.Dense(256, activation="relu")(norm(inputs))
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, batch_size=256, verbose=0)
    model.export(str(folder), verbose=False)
    return folder


def time_sizes(
    model: Any, rows: Any, sizes: list[int], rounds: int, calls: int
) -> list[dict[str, Any]]:
    """Plain against compiled at every size, interleaved over rounds; medians per call."""
    from mooring.serving import _xla

    compiled = model.compiled
    cells: dict[int, dict[str, list[float]]] = {s: {"plain": [], "xla": []} for s in sizes}
    difference: dict[int, float | None] = {}
    for size in sizes:
        columns = rows(size)
        difference[size] = _xla._agree(model.folder.predict(columns), compiled.run(columns, size))
    for i in range(rounds):
        for size in sizes:
            columns = rows(size)
            order = ("plain", "xla") if i % 2 == 0 else ("xla", "plain")
            for kind in order:
                start = time.perf_counter()
                for _ in range(calls):
                    if kind == "plain":
                        model.folder.predict(columns)
                    else:
                        compiled.run(columns, size)
                cells[size][kind].append((time.perf_counter() - start) / calls * 1e6)
    out = []
    for size in sizes:
        plain = statistics.median(cells[size]["plain"])
        xla = statistics.median(cells[size]["xla"])
        out.append(
            {
                "rows": size,
                "plain_us": round(plain, 1),
                "xla_us": round(xla, 1),
                "ratio_plain_over_xla": round(plain / xla, 3),
                "max_difference": difference[size],
                "rounds_plain_us": [round(v, 1) for v in cells[size]["plain"]],
                "rounds_xla_us": [round(v, 1) for v in cells[size]["xla"]],
            }
        )
    return out


def measure(name: str, folder: Path, rows: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One model: compile at every size (judged with no speed floor), time, then the
    server's own judgement on a fresh load."""
    from mooring.serving._loaded import load_served_model
    from mooring.serving._xla import batch_sizes, judge

    model = load_served_model(name, 1, folder)
    model.warm_up(8, args.max_batch)
    plan = judge(model, args.max_batch, min_speedup=0.0)
    report: dict[str, Any] = {"model": name, "compiled": model.compiled is not None}
    if model.compiled is None:
        report["reason"] = plan.reason
        return report
    report["sizes"] = time_sizes(model, rows, batch_sizes(args.max_batch), args.rounds, args.calls)
    fresh = load_served_model(name, 1, folder)
    fresh.warm_up(8, args.max_batch, "auto")
    assert fresh.xla is not None
    report["server_choice"] = fresh.xla.document()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="1 round of 20 calls, sizes to 8")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_xla.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls, args.max_batch = 1, 20, 8

    from bench_serving import build_adult_model

    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        adult = build_adult_model(work / "adult")
        reports.append(measure("adult", adult, None, args))
        numeric = build_numeric(work / "adult-numeric")
        test, _ = adult_numbers("adult.test.csv.gz")
        reports.append(measure("adult-numeric", numeric, lambda n: {"numbers": test[:n]}, args))
    for report in reports:
        if not report["compiled"]:
            print(f"{report['model']}: {report['reason']}")
            continue
        print(f"{report['model']}: µs per call, plain → XLA (ratio)")
        for cell in report["sizes"]:
            print(
                f"  {cell['rows']:>4} rows: {cell['plain_us']:>8.1f} → {cell['xla_us']:>8.1f} "
                f"({cell['ratio_plain_over_xla']:.2f}×), max difference {cell['max_difference']}"
            )
        print(f"  the server chose: {report['server_choice']['reason']}")
    result = {
        "benchmark": "xla",
        "quick": args.quick,
        "rounds": args.rounds,
        "calls": args.calls,
        "max_batch": args.max_batch,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "models": reports,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
