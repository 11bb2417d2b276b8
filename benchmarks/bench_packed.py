"""Benchmark: the signature's call fed one tensor per dtype (packed) against one per column.

One process loads ``bench_serving.py``'s Adult model (``--work DIR`` reuses the one
built there; otherwise it is trained once, one epoch) and calls
``ServedModel.predict`` on real Adult rows, as the server's batcher does, at 1, 16 and 64
rows: alternately with the packed call (:mod:`mooring.formats._packed`) and with it
switched off (a tensor per column through the signature's direct call). ``--rounds``
rounds of ``--calls`` calls each way, the order alternating by round; medians of the
per-call µs per round, and the ratio packed ÷ per column of each round. The outputs of
both ways are compared first (they must be equal, bit for bit).

Beside them, the parts of one packed one-row call: the numpy arrays, the tensors, the
graph's call and the outputs' numpy.

Writes ``benchmarks/results/packed-<time>.json``; nothing is asserted.

    .venv/bin/python benchmarks/bench_packed.py --work build/bench-work
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import bench_serving as bs

RESULTS = Path(__file__).resolve().parent / "results"


def columns_of(rows: list[dict[str, Any]], inputs: dict[str, Any]) -> dict[str, list[Any]]:
    """Rows as the server's decoder leaves them: a list per input, text as str, numbers as
    float (NaN for a missing one)."""
    out: dict[str, list[Any]] = {}
    for name, info in inputs.items():
        values = [row.get(name) for row in rows]
        if info.is_string:
            out[name] = ["" if v is None else str(v) for v in values]
        else:
            out[name] = [float("nan") if v is None else float(v) for v in values]
    return out


def per_call(fn: Any, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="reuse the model built here")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # A worker's pools at `serve --workers 2` on this machine (serving/_workers.py).
    from mooring.serving._workers import tf_thread_env

    for key, value in tf_thread_env(2, 1).items():
        os.environ.setdefault(key, value)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-packed-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = bs.adult_model(work)
    from mooring.serving._loaded import load_served_model

    model = load_served_model("income", 1, model_dir, pack=True)
    packed = model.folder.packed
    if packed is None:
        raise SystemExit("the Adult model's signature was not packed: nothing to compare")
    rows = bs.request_rows(model_dir, 64)
    sizes: dict[str, Any] = {}
    for count in (1, 16, 64):
        columns = columns_of(rows[:count], model.inputs)
        model.folder.packed = None
        plain = model.predict(columns)
        model.folder.packed = packed
        same = all(np.array_equal(plain[k], model.predict(columns)[k]) for k in plain)
        times: dict[str, list[float]] = {"packed": [], "per column": []}
        for r in range(args.rounds):
            ways = [("packed", packed), ("per column", None)]
            for way, chosen in ways if r % 2 == 0 else ways[::-1]:
                model.folder.packed = chosen
                per_call(lambda: model.predict(columns), 20)  # noqa: B023 - called at once
                times[way].append(per_call(lambda: model.predict(columns), args.calls))  # noqa: B023
        model.folder.packed = packed
        ratios = [a / b for a, b in zip(times["packed"], times["per column"], strict=True)]
        sizes[str(count)] = {
            "same_outputs": same,
            "packed_us": statistics.median(times["packed"]),
            "per_column_us": statistics.median(times["per column"]),
            "ratio": statistics.median(ratios),
            "ratio_range": [min(ratios), max(ratios)],
            "rounds": times,
        }
    parts = one_row_parts(model, columns_of(rows[:1], model.inputs), args.calls)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "python": platform.python_version(),
        },
        "threads": {k: os.environ.get(k) for k in tf_thread_env(2, 1)},
        "sizes": sizes,
        "one_row_parts_us": parts,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"packed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| rows | per column µs | packed µs | packed ÷ per column (min–max) | same outputs |")
    print("|---|---|---|---|---|")
    for count, cell in sizes.items():
        low, high = cell["ratio_range"]
        print(f"| {count} | {cell['per_column_us']:.0f} | {cell['packed_us']:.0f} | "
              f"{cell['ratio']:.2f} ({low:.2f}–{high:.2f}) | {cell['same_outputs']} |")  # fmt: skip
    print("\none packed row, by part (µs): " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    print(f"wrote {out}")


def one_row_parts(model: Any, columns: dict[str, list[Any]], calls: int) -> dict[str, float]:
    """The parts of one packed one-row call, each timed alone (the best of 5 runs)."""
    from mooring.formats._packed import PACKED

    packed = model.folder.packed
    groups = packed.groups

    def arrays() -> list[Any]:
        return [
            np.array([columns[n] for n in g.names], dtype=PACKED[g.dtype]).T
            if g.packed
            else columns[g.names[0]]
            for g in groups
        ]

    made = arrays()
    tensors = [
        packed.make(a) if g.packed else packed.make(a, dtype=g.dtype)
        for g, a in zip(groups, made, strict=True)
    ]
    outputs = packed.flat(tensors, packed.function.captured_inputs)
    steps = {
        "numpy arrays": arrays,
        "tensors": lambda: [packed.make(a) for a in made],
        "graph call": lambda: packed.flat(tensors, packed.function.captured_inputs),
        "outputs to numpy": lambda: {k: v.numpy() for k, v in outputs.items()},
        "ServedModel.predict": lambda: model.predict(columns),
    }
    return {name: min(per_call(fn, calls) for _ in range(5)) for name, fn in steps.items()}


if __name__ == "__main__":
    main()
