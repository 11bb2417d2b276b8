"""Benchmark: calls an event loop makes, alone and beside a thread running Python.

A call that releases the GIL (a numpy ufunc over 500 elements or more, pyarrow making
numbers) must take it back before the loop goes on; beside another thread running
Python (a server's inference thread, its log writer) that wait lasts until the other
thread lets go, up to the interpreter's switch interval (``sys.getswitchinterval()``,
5 ms). A call that holds the GIL throughout costs the same either way. Each call is
timed alone and beside a thread spinning a Python loop, ``--rounds`` rounds of
``--calls`` calls, alternating; the table gives the medians of µs per call and their
ratio. The inputs are what mooring's loop sees for a 64-row Adult request: the body
(about 20 KB of JSON) and a 1,024-row batch's float and text columns.

Writes ``benchmarks/results/gil-release-<time>.json``; nothing is asserted.

    .venv/bin/python benchmarks/bench_gil_release.py
"""

from __future__ import annotations

import argparse
import array
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

RESULTS = Path(__file__).resolve().parent / "results"

_ROW = {
    "age": 39.0, "workclass": "State-gov", "fnlwgt": 77516.0, "education": "Bachelors",
    "education_num": 13.0, "marital_status": "Never-married", "occupation": "Adm-clerical",
    "relationship": "Not-in-family", "race": "White", "sex": "Male", "capital_gain": 2174.0,
    "capital_loss": 0.0, "hours_per_week": 40.0, "native_country": "United-States",
}  # fmt: skip


def calls() -> dict[str, Callable[[], object]]:
    """The calls timed, by name: what the loop did, and what it does instead."""
    body = orjson.dumps({"instances": [{**_ROW, "age": 17.0 + i} for i in range(64)]})
    floats = [0.5 * i for i in range(1024)]
    text = [f"Private-{i % 7}" for i in range(1024)]
    return {
        "a 20 KB body's colons, numpy compare": lambda: int(
            np.count_nonzero(np.frombuffer(body, np.uint8) == ord(":"))
        ),
        "a 20 KB body's colons, bytes.count": lambda: body.count(b":"),
        "1,024 floats to Arrow (pa.array)": lambda: pa.array(floats, pa.float64()),
        "1,024 floats to numpy (array.array)": lambda: np.frombuffer(
            array.array("d", floats), np.float64
        ),
        "1,024 strings to Arrow (pa.array)": lambda: pa.array(text, pa.string()),
        "the 20 KB body parsed (orjson.loads)": lambda: orjson.loads(body),
    }


def _spin(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i


def timed(call: Callable[[], object], n: int) -> float:
    """µs per call over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def run(rounds: int, n: int) -> dict[str, dict[str, list[float]]]:
    """Per call, µs per call in each round, alone and beside a spinning thread."""
    table = calls()
    for call in table.values():  # first calls (pyarrow's lazy imports) are not timed
        call()
    found: dict[str, dict[str, list[float]]] = {k: {"alone": [], "busy": []} for k in table}
    for r in range(rounds):
        for busy in (r % 2 == 0, r % 2 != 0):
            stop = threading.Event()
            spinner = threading.Thread(target=_spin, args=(stop,), daemon=True)
            if busy:
                spinner.start()
            try:
                for name, call in table.items():
                    found[name]["busy" if busy else "alone"].append(timed(call, n))
            finally:
                stop.set()
                if busy:
                    spinner.join()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds each way (6)")
    parser.add_argument("--calls", type=int, default=100, help="calls a round (100)")
    args = parser.parse_args()
    found = run(args.rounds, args.calls)
    rows = []
    for name, times in found.items():
        alone, busy = statistics.median(times["alone"]), statistics.median(times["busy"])
        rows.append({"call": name, "alone_us": alone, "busy_us": busy, "ratio": busy / alone})
    print("| call | alone µs | beside a busy thread µs | ratio |\n|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['call']} | {row['alone_us']:,.1f} | {row['busy_us']:,.1f} | "
              f"{row['ratio']:.1f}× |")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"gil-release-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report: dict[str, Any] = {
        "benchmark": "gil-release",
        "rounds": args.rounds,
        "calls": args.calls,
        "switch_interval_s": sys.getswitchinterval(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "load": os.getloadavg(),
        },
        "rows": rows,
        "rounds_us": found,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
