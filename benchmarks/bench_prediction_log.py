"""The prediction log's cost per request: rows built on the event loop vs columnar chunks.

Both ways write the same Parquet files (``tests/formats/test_predictions.py`` checks the
tables are equal). This measures, for requests of 1 and 64 Adult-shaped rows:

* **loop**: what the server's event loop spends to hand one request to the log (the
  old way: one dict per row, values converted with ``tolist``; the new way: one
  :class:`~mooring.formats.predictions.LogChunk` holding the arrays);
* **writer**: what the writer thread spends per request to make the Parquet bytes
  (``pa.Table.from_pylist`` of the rows vs Arrow columns from the chunks), written to
  memory so the disk does not decide;

in interleaved rounds, medians, microseconds per request. Both run in one process on
one thread: this is the work, not the contention the writer's GIL time adds to serving.

* **file size**: the writer thread writing one file of N single-row requests kept as
  their JSON bodies (as the server keeps TF Serving row-format requests), for N = 1,000,
  2,000 (``FILE_REQUESTS``, the server's cap) and 10,000 (``log_flush_rows``' default,
  the file a single-row server wrote before the cap), interleaved, the requests kept
  as one :class:`~mooring.formats.log_chunks.LogChunk` each (``chunks``) and as the
  server keeps them, a :class:`~mooring.formats.log_chunks.BodyRun` (``run``): its µs
  per request, and the longest time another thread (standing in for the event loop:
  it wakes every 0.2 ms) waited for the interpreter while the file was made, written
  and its requests freed.
* **buffering**: what the event loop spends to buffer 2,000 such requests either way
  (µs per request, with a fresh outputs dict per request as the batcher hands them)
  and the memory they hold until written (``tracemalloc``, bytes per request).

Usage:
    python benchmarks/bench_prediction_log.py [--rounds 5] [--requests 2000]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mooring.formats.log_chunks import (
    BodyRun,
    LogChunk,
    log_chunks_table,
    rows_schema,
    write_log_chunks,
)
from mooring.formats.predictions import append_request_rows
from mooring.serving.log import FILE_REQUESTS, arrow_without_pandas

ADULT = Path(__file__).resolve().parent.parent / "examples" / "adult" / "adult.test.csv.gz"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")


def requests(rows: int, count: int) -> list[tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]]:
    """``count`` requests of ``rows`` Adult rows, as the server's decoder leaves them."""
    with gzip.open(ADULT, "rt") as handle:
        header = handle.readline().strip().split(",")
        lines = [line.strip().split(",") for line in handle if line.strip()]
    out = []
    for r in range(count):
        part = [lines[(r * rows + i) % len(lines)] for i in range(rows)]
        columns: dict[str, Any] = {}
        for j, name in enumerate(header[:-1]):
            values = [p[j] for p in part]
            if name in NUMERIC:
                columns[name] = np.array([float(v) for v in values], dtype=np.float32)
            else:
                columns[name] = np.array(values, dtype=object)
        score = np.linspace(0.05, 0.95, rows)
        outputs = {
            "probabilities": np.stack([1 - score, score], axis=1).astype(np.float32),
            "classes": np.array([b">50K" if s > 0.5 else b"<=50K" for s in score], dtype=object),
        }
        out.append((columns, outputs))
    return out


def to_parquet(table: pa.Table) -> int:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return len(sink.getvalue())


def run_rows(reqs: list[Any], rows: int) -> tuple[float, float]:
    stamp = datetime.now(UTC)
    buffer: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i, (columns, outputs) in enumerate(reqs):
        append_request_rows(
            buffer,
            model="income",
            version=1,
            request_id=f"r{i}",
            timestamp=stamp,
            columns=columns,
            outputs=outputs,
            rows=rows,
        )
    loop = time.perf_counter() - start
    start = time.perf_counter()
    to_parquet(pa.Table.from_pylist(buffer))
    return loop, time.perf_counter() - start


def run_chunks(reqs: list[Any], rows: int) -> tuple[float, float]:
    stamp = datetime.now(UTC)
    buffer: list[LogChunk] = []
    start = time.perf_counter()
    for i, (columns, outputs) in enumerate(reqs):
        buffer.append(
            LogChunk(
                model="income",
                version=1,
                request_id=f"r{i}",
                timestamp=stamp,
                columns=columns,
                outputs=outputs,
                rows=rows,
            )
        )
    loop = time.perf_counter() - start
    start = time.perf_counter()
    to_parquet(log_chunks_table(buffer))
    return loop, time.perf_counter() - start


def body_chunks(count: int) -> list[LogChunk]:
    """``count`` single-row requests as the server buffers them: JSON body and outputs."""
    reqs = requests(1, min(count, 4096))
    schema = rows_schema({k: "float32" if k in NUMERIC else "string" for k in reqs[0][0]})
    chunks = []
    for i in range(count):
        columns, outputs = reqs[i % len(reqs)]
        row = {k: (float(v[0]) if k in NUMERIC else str(v[0])) for k, v in columns.items()}
        chunks.append(
            LogChunk(
                model="income",
                version=1,
                request_id=f"{i:032x}",
                timestamp=datetime.now(UTC),
                columns={},
                outputs={k: v.copy() for k, v in outputs.items()},
                rows=1,
                body=json.dumps({"instances": [row]}).encode(),
                schema=schema,
            )
        )
    return chunks


def body_run(count: int) -> list[BodyRun]:
    """The same ``count`` requests as the server buffers them now: one run of bodies."""
    chunks = body_chunks(count)
    first = chunks[0]
    assert first.schema is not None and first.body is not None
    run = BodyRun(first.model, first.version, False, first.schema, None, first.outputs)
    for chunk in chunks:
        stamp = (chunk.timestamp - EPOCH) // timedelta(microseconds=1) * 1000
        args = (chunk.request_id, stamp, 1, chunk.body or b"", chunk.outputs)
        assert run.add(first.model, first.version, False, first.schema, *args)
    return [run]


def buffer_cost(count: int, kept: str) -> tuple[float, float]:
    """What the event loop spends to buffer ``count`` single-row body requests one way,
    and the memory they hold: (µs per request, bytes per request)."""
    chunks = body_chunks(count)
    schema = chunks[0].schema
    assert schema is not None
    took = _buffer(chunks, schema, kept, [])  # timed without tracemalloc, which slows it
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    items: list[Any] = []
    _buffer(chunks, schema, kept, items)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del chunks, items
    return took / count * 1e6, held / count


def _buffer(chunks: list[LogChunk], schema: pa.Schema, kept: str, items: list[Any]) -> float:
    """Buffer the requests of ``chunks`` into ``items`` as the server does; seconds."""
    start = time.perf_counter()
    run: BodyRun | None = None
    for c in chunks:
        # A new outputs dict per request, as the batcher hands each request its slice.
        outputs = {k: v[:1] for k, v in c.outputs.items()}
        body = c.body or b""
        if kept == "chunks":
            items.append(
                LogChunk(
                    model="income",
                    version=1,
                    request_id=c.request_id,
                    timestamp=datetime.now(UTC),
                    columns={},
                    outputs=outputs,
                    rows=1,
                    body=body,
                    schema=schema,
                )
            )
        else:
            args = (c.request_id, time.time_ns(), 1, body, outputs)
            if run is None or not run.add("income", 1, False, schema, *args):
                run = BodyRun("income", 1, False, schema, None, outputs)
                run.add("income", 1, False, schema, *args)
                items.append(run)
    return time.perf_counter() - start


def run_file(count: int, folder: str, kept: str = "chunks") -> tuple[float, float]:
    """Write one file of ``count`` body requests (kept as ``chunks`` or a ``run``) on a
    thread, as the server's writer does; (µs per request, longest wait in ms of a thread
    that wants the interpreter every 0.2 ms meanwhile)."""
    holder: list[Any] = [body_chunks(count) if kept == "chunks" else body_run(count)]
    done = threading.Event()
    took: list[float] = []

    def write() -> None:
        start = time.perf_counter()
        write_log_chunks(folder, holder.pop())  # the requests are freed on this thread
        took.append(time.perf_counter() - start)
        done.set()

    longest = 0.0
    writer = threading.Thread(target=write)
    last = time.perf_counter()
    writer.start()
    while not done.is_set():
        time.sleep(0.0002)
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    writer.join()
    return took[0] / count * 1e6, longest * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    cells: dict[str, Any] = {}
    for rows in (1, 64):
        count = max(20, args.requests // (1 if rows == 1 else 16))
        reqs = requests(rows, count)
        samples: dict[str, list[float]] = {
            k: [] for k in ("rows_loop", "rows_writer", "chunks_loop", "chunks_writer")
        }
        for _ in range(args.rounds):  # interleaved
            loop, writer = run_rows(reqs, rows)
            samples["rows_loop"].append(loop / count * 1e6)
            samples["rows_writer"].append(writer / count * 1e6)
            loop, writer = run_chunks(reqs, rows)
            samples["chunks_loop"].append(loop / count * 1e6)
            samples["chunks_writer"].append(writer / count * 1e6)
        med = {k: statistics.median(v) for k, v in samples.items()}
        cells[f"{rows}_rows"] = {
            "requests": count,
            "us_per_request": {k: round(v, 2) for k, v in med.items()},
            "loop_ratio_rows_over_chunks": round(med["rows_loop"] / med["chunks_loop"], 1),
            "writer_ratio_rows_over_chunks": round(med["rows_writer"] / med["chunks_writer"], 2),
        }
    arrow_without_pandas()  # as the server does
    sizes = sorted({1000, FILE_REQUESTS, 10_000})
    ways = ("chunks", "run")
    files = {(n, k): {"us": [], "wait_ms": []} for n in sizes for k in ways}
    buffered: dict[str, dict[str, list[float]]] = {k: {"us": [], "bytes": []} for k in ways}
    with tempfile.TemporaryDirectory() as folder:
        for kept in ways:  # warm up Arrow's JSON reader and Parquet writer
            run_file(200, folder, kept)
        for _ in range(args.rounds):  # interleaved
            for n in sizes:
                for kept in ways:
                    us, wait = run_file(n, folder, kept)
                    files[n, kept]["us"].append(us)
                    files[n, kept]["wait_ms"].append(wait)
            for kept in ways:
                us, held = buffer_cost(FILE_REQUESTS, kept)
                buffered[kept]["us"].append(us)
                buffered[kept]["bytes"].append(held)
    cells["file_size"] = {
        f"{n}_{kept}": {
            "requests": n,
            "kept_as": kept,
            "us_per_request": round(statistics.median(v["us"]), 2),
            "longest_wait_ms": round(statistics.median(v["wait_ms"]), 2),
            "longest_wait_ms_runs": [round(x, 2) for x in v["wait_ms"]],
        }
        for (n, kept), v in files.items()
    }
    cells["buffering"] = {
        kept: {
            "requests": FILE_REQUESTS,
            "loop_us_per_request": round(statistics.median(v["us"]), 2),
            "bytes_held_per_request": round(statistics.median(v["bytes"])),
        }
        for kept, v in buffered.items()
    }
    result = {
        "benchmark": "prediction_log",
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
        "rounds": args.rounds,
        "cells": cells,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_prediction_log.json").write_text(json.dumps(result, indent=2))
    print(f"{'request':>10} | {'loop µs rows→chunks':>24} | {'writer µs rows→chunks':>26}")
    for name, cell in cells.items():
        if name in ("file_size", "buffering"):
            continue
        us = cell["us_per_request"]
        print(
            f"{name:>10} | {us['rows_loop']:>9.1f} → {us['chunks_loop']:<8.2f} "
            f"({cell['loop_ratio_rows_over_chunks']}×) | {us['rows_writer']:>9.1f} → "
            f"{us['chunks_writer']:<8.1f} ({cell['writer_ratio_rows_over_chunks']}×)"
        )

    print(
        f"\n{'requests a file':>16} | {'kept as':>7} | {'writer µs/request':>18} | "
        f"{'longest wait, ms':>17}"
    )
    for cell in cells["file_size"].values():
        print(
            f"{cell['requests']:>16} | {cell['kept_as']:>7} | {cell['us_per_request']:>18.1f} | "
            f"{cell['longest_wait_ms']:>17.2f}"
        )
    print(f"\n{'buffered as':>11} | {'event loop µs/request':>22} | {'bytes held/request':>19}")
    for kept, cell in cells["buffering"].items():
        print(
            f"{kept:>11} | {cell['loop_us_per_request']:>22.2f} | "
            f"{cell['bytes_held_per_request']:>19}"
        )


if __name__ == "__main__":
    main()
