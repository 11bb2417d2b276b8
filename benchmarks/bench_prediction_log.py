"""The prediction log's cost per request: logged a request at a time or a batch at a time.

The server logs its answers one batch at a time (``PredictionLog.record_batch``: the
batch's merged columns and outputs, each logged request's id and rows, one
:class:`~mooring.formats._log_chunks.LogChunk`). Side by side in one run, for Adult
requests of 1 and 64 rows, three ways of logging the same requests:

* ``rows``: one dict per row (``append_request_rows``), made into a table with
  ``pa.Table.from_pylist``: the naive way;
* ``request``: one chunk per request (``PredictionLog.record``), as a server that logs
  each request after its answer does;
* ``batch``: one chunk per batch of ``--batch`` requests (``record_batch``), as the
  server does now; 16 is about the batch single rows make at c=32 on one worker.

For each, in interleaved rounds (medians):

* **loop µs**: what the event loop spends per request to hand it to the log (through
  the real ``PredictionLog`` with its writer stopped, so only the append is timed);
* **writer µs**: what the writer thread spends per request to make and write one file
  of ``--requests`` requests (Parquet, to a temporary folder), on its own thread;
* **longest wait**: the longest time another thread (standing in for the event loop: it
  wants the interpreter every 0.2 ms) waited for the interpreter while that file was
  made and written;
* **bytes held**: the memory the buffered requests hold until written (``tracemalloc``,
  per request, the batch's merged columns counted once per batch).

Nothing is asserted; the report is printed and written to
``benchmarks/results/bench_prediction_log.json``.

Usage:
    python benchmarks/bench_prediction_log.py [--rounds 5] [--requests 2000] [--batch 16]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import statistics
import tempfile
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mooring.formats._log_chunks import write_log_chunks
from mooring.formats._predictions import append_request_rows, write_log_file
from mooring.serving._log import LogTicket, PredictionLog, arrow_without_pandas

ADULT = Path(__file__).resolve().parent.parent / "examples" / "adult" / "adult.test.csv.gz"
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
WAYS = ("rows", "request", "batch")

Request = tuple[dict[str, list[Any]], dict[str, np.ndarray[Any, Any]]]


def requests(rows: int, count: int) -> list[Request]:
    """``count`` requests of ``rows`` Adult rows: columns as the server's decoder leaves
    them (lists of floats and strings) and a classifier's outputs."""
    with gzip.open(ADULT, "rt") as handle:
        header = handle.readline().strip().split(",")
        lines = [line.strip().split(",") for line in handle if line.strip()]
    out = []
    for r in range(count):
        part = [lines[(r * rows + i) % len(lines)] for i in range(rows)]
        columns: dict[str, list[Any]] = {}
        for j, name in enumerate(header[:-1]):
            values = [p[j] for p in part]
            columns[name] = [float(v) for v in values] if name in NUMERIC else values
        score = np.linspace(0.05, 0.95, rows)
        outputs = {
            "probabilities": np.stack([1 - score, score], axis=1).astype(np.float32),
            "classes": np.array([">50K" if s > 0.5 else "<=50K" for s in score], dtype=object),
        }
        out.append((columns, outputs))
    return out


def batches(reqs: list[Request], size: int) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """The requests merged into batches of ``size`` as the batcher merges them (lists
    joined; outputs as the model gives them for the batch): (columns, outputs, requests)."""
    out = []
    for start in range(0, len(reqs), size):
        part = reqs[start : start + size]
        columns = {k: list(chain.from_iterable(c[k] for c, _ in part)) for k in part[0][0]}
        outputs = {k: np.concatenate([o[k] for _, o in part]) for k in part[0][1]}
        out.append((columns, outputs, len(part)))
    return out


def buffer(way: str, reqs: list[Request], merged: list[Any], rows: int) -> tuple[float, Any]:
    """Hand the requests to the log one way, timed; (seconds, what was buffered)."""
    if way == "rows":
        stamp = datetime.now(UTC)
        kept: list[dict[str, Any]] = []
        start = time.perf_counter()
        for i, (columns, outputs) in enumerate(reqs):
            append_request_rows(
                kept,
                model="income",
                version=1,
                request_id=f"{i:032x}",
                timestamp=stamp,
                columns=columns,
                outputs=outputs,
                rows=rows,
            )
        return time.perf_counter() - start, kept
    plog = PredictionLog("memory://unused", sample_rate=1.0, buffer_rows=10**9)
    start = time.perf_counter()
    if way == "request":
        for i, (columns, outputs) in enumerate(reqs):
            plog.record(
                model="income",
                version=1,
                request_id=f"{i:032x}",
                columns=columns,
                outputs=outputs,
                rows=rows,
            )
    else:
        serial = 0
        for columns, outputs, count in merged:
            tickets: list[LogTicket | None] = []
            for _ in range(count):
                tickets.append(LogTicket(f"{serial:032x}"))
                serial += 1
            plog.record_batch(
                model="income",
                version=1,
                tickets=tickets,
                counts=[rows] * count,
                columns=columns,
                outputs=outputs,
            )
    took = time.perf_counter() - start
    return took, list(plog._chunks)


def held_bytes(way: str, reqs: list[Request], rows: int, batch: int) -> float:
    """Bytes per request the buffered requests hold (their columns made fresh, as each
    request's decoder makes them)."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fresh = [({k: list(v) for k, v in c.items()}, {k: v.copy() for k, v in o.items()})
             for c, o in reqs]  # fmt: skip
    merged = batches(fresh, batch) if way == "batch" else []
    if way == "batch":
        fresh = []  # the batch's merged columns stand in for the requests' own
    _, kept = buffer(way, fresh, merged, rows)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del kept, fresh, merged
    return held / len(reqs)


def write(way: str, kept: Any, folder: str) -> None:
    if way == "rows":
        write_log_file(folder, kept)
    else:
        write_log_chunks(folder, kept)


def timed_file(way: str, kept: Any, folder: str, count: int) -> tuple[float, float]:
    """Write one file of what was buffered on a thread, as the server's writer does;
    (µs per request, the longest wait in ms of a thread that wants the interpreter every
    0.2 ms meanwhile)."""
    holder = [kept]
    done = threading.Event()
    took: list[float] = []

    def writer() -> None:
        start = time.perf_counter()
        items = holder.pop()
        write(way, items, folder)
        while items:  # the requests are freed on this thread, one at a time as the server's
            items.pop()
        took.append(time.perf_counter() - start)
        done.set()

    longest = 0.0
    thread = threading.Thread(target=writer)
    last = time.perf_counter()
    thread.start()
    while not done.is_set():
        time.sleep(0.0002)
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    thread.join()
    return took[0] / count * 1e6, longest * 1e3


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests a file")
    parser.add_argument("--batch", type=int, default=16, help="requests a batch")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    arrow_without_pandas()  # as the server does
    cells: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for rows in (1, 64):
            count = max(20, args.requests // rows * (1 if rows == 1 else 16))
            reqs = requests(rows, count)
            merged = batches(reqs, args.batch)
            samples: dict[str, dict[str, list[float]]] = {
                w: {"loop": [], "writer": [], "wait": [], "bytes": []} for w in WAYS
            }
            for way in WAYS:  # warm up
                timed_file(way, buffer(way, reqs[:50], batches(reqs[:50], args.batch), rows)[1],
                           folder, 50)  # fmt: skip
            for r in range(args.rounds):
                order: tuple[str, ...] = WAYS if r % 2 == 0 else WAYS[::-1]
                for way in order:
                    took, kept = buffer(way, reqs, merged, rows)
                    samples[way]["loop"].append(took / count * 1e6)
                    us, wait = timed_file(way, kept, folder, count)
                    samples[way]["writer"].append(us)
                    samples[way]["wait"].append(wait)
                    samples[way]["bytes"].append(held_bytes(way, reqs, rows, args.batch))
            cells[f"{rows}_rows"] = {
                "requests": count,
                "ways": {
                    way: {
                        "loop_us_per_request": median(s["loop"]),
                        "writer_us_per_request": median(s["writer"]),
                        "longest_wait_ms": median(s["wait"]),
                        "longest_wait_ms_runs": [round(x, 2) for x in s["wait"]],
                        "bytes_held_per_request": round(statistics.median(s["bytes"])),
                    }
                    for way, s in samples.items()
                },
            }
    check = folder_rows_equal(requests(3, 40), args.batch)
    result = {
        "benchmark": "prediction_log",
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
        "rounds": args.rounds,
        "batch": args.batch,
        "same_table_every_way": check,
        "cells": cells,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_prediction_log.json").write_text(json.dumps(result, indent=2))
    print(f"the three ways write the same rows: {check}\n")
    header = ["request rows", "logged", "loop µs/request", "writer µs/request",
              "longest wait ms", "bytes held/request"]  # fmt: skip
    print(" | ".join(header))
    for name, cell in cells.items():
        for way, v in cell["ways"].items():
            print(
                f"{name:>12} | {way:>7} | {v['loop_us_per_request']:>15.2f} | "
                f"{v['writer_us_per_request']:>17.2f} | {v['longest_wait_ms']:>15.2f} | "
                f"{v['bytes_held_per_request']:>18}"
            )


def folder_rows_equal(reqs: list[Request], batch: int) -> bool:
    """Whether the three ways write the same rows (request ids aside, which each way
    numbers alike, and the timestamp, which each takes when it buffers)."""
    tables: list[pa.Table] = []
    for way in WAYS:
        with tempfile.TemporaryDirectory() as folder:
            write(way, buffer(way, reqs, batches(reqs, batch), 3)[1], folder)
            (path,) = Path(folder).rglob("*.parquet")
            tables.append(pq.read_table(path).drop(["timestamp"]))
    first = tables[0]
    return all(t.select(first.column_names).equals(first) for t in tables[1:])


if __name__ == "__main__":
    main()
