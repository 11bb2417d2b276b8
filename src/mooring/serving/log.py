"""The prediction log: a sample of requests written as Parquet batches, never blocking serving.

A request's rows go into a bounded buffer from the event loop: a request in TF
Serving's row format joins the open :class:`~mooring.formats.log_chunks.BodyRun` (its
JSON body and outputs' values appended to buffers shared with its neighbours: no
object kept per request), any other as one
:class:`~mooring.formats.log_chunks.LogChunk` (its columns and outputs as they are: no
per-row objects, an O(1) append). A writer thread assembles them into Arrow columns
(bodies through Arrow's JSON reader, which holds no GIL) and Parquet files under
``<home>/predictions/`` (any fsspec URL; a server of several projects writes each
model's rows to its project's folder), one file per ``flush_rows`` rows,
:data:`FILE_REQUESTS` requests or ``flush_s`` seconds; while the writer is behind
(under load, it shares the interpreter with a busy event loop), a file takes up to
:data:`CATCH_UP` × ``flush_rows`` of the backlog, since much of a small file's cost is
per file (the Parquet footer, the atomic rename). When the buffer is full, new rows
are dropped and counted. The files' layout and columns, and their
one writer and reader, are :mod:`mooring.formats.predictions`.
"""

from __future__ import annotations

import importlib.abc
import logging
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from mooring.formats.log_chunks import BodyRun, LogChunk, write_log_chunks

__all__ = ["CATCH_UP", "FILE_REQUESTS", "PredictionLog", "arrow_without_pandas"]

log = logging.getLogger("mooring.serving")

#: A file holds at most this many times ``flush_rows`` rows, taken from a backlog.
CATCH_UP = 8
#: A file holds at most this many requests, whatever their rows. Parts of the writer's
#: work on a file run over all its requests without letting another thread in (joining
#: their outputs, converting them to Arrow, freeing them), and the event loop waits
#: meanwhile: the longest wait was 12 ms at 10,000 single-row requests a file and 3.4 ms
#: at 2,000, for about the same work per request (10–12 µs;
#: ``benchmarks/bench_prediction_log.py``). Under load at c=32 the p99 fell from 33 to
#: 24 ms. Requests of many rows reach ``flush_rows`` long before this.
FILE_REQUESTS = 2_000


def arrow_without_pandas() -> None:
    """Answer pyarrow's one lazy "is pandas installed?" probe with no, in this process.

    The first Arrow array a process builds makes pyarrow import pandas, where it is
    installed, to recognise pandas objects: about 300 ms with the GIL held and 50 MB
    of memory, in a server that never hands pyarrow a pandas object. It came on the
    first log write, a pause of every request in flight. Here ``import pandas`` fails
    for the length of that probe only (pyarrow then remembers "no pandas" for its
    object checks); an explicit conversion (``Table.to_pandas``) imports pandas as
    usual, and so does ``import pandas``. Nothing happens where pandas is imported.
    """
    if "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _NO_PANDAS)
    try:
        pa.array([0.0])
    finally:
        sys.meta_path.remove(_NO_PANDAS)


class _NoPandas(importlib.abc.MetaPathFinder):
    """A finder that refuses ``pandas`` (see :func:`arrow_without_pandas`)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ImportError(f"{fullname} is not imported by the serving process")
        return None


_NO_PANDAS = _NoPandas()


class LoggedRows(Protocol):
    """What reads a logged body back: the served version (``ServedModel``)."""

    @property
    def log_schema(self) -> pa.Schema: ...

    def log_columns(self, body: bytes) -> Mapping[str, Any]: ...


class PredictionLog:
    """Sampled, asynchronous Parquet log of predictions."""

    def __init__(
        self,
        url: str | Mapping[str, str],
        *,
        sample_rate: float,
        buffer_rows: int = 10_000,
        flush_rows: int = 1000,
        flush_s: float = 10.0,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        seed: int | None = None,
    ) -> None:
        # One folder for every model, or one per model (a server of several projects).
        self.urls = (
            {name: u.rstrip("/") for name, u in url.items()} if isinstance(url, Mapping) else {}
        )
        self.url = url.rstrip("/") if isinstance(url, str) else ""
        self.sample_rate = sample_rate
        self.buffer_rows = buffer_rows
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.dropped = 0
        self.written = 0
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._random = random.Random(seed)
        # Requests kept as chunks, or as runs of row-format bodies (BodyRun). The event
        # loop appends to the newest run while the writer may take it: both hold the lock.
        self._chunks: deque[LogChunk | BodyRun] = deque()
        self._open: BodyRun | None = None
        self._lock = threading.Lock()
        # Rows (and requests) buffered = added - taken; each counter has one writing
        # thread (the event loop adds, the writer takes), so no update is lost.
        self._added = 0
        self._taken = 0
        self._added_requests = 0
        self._taken_requests = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        if self.sample_rate <= 0 or self._thread is not None:
            return
        arrow_without_pandas()
        self._thread = threading.Thread(
            target=self._loop, name="mooring-prediction-log", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Write what is buffered and stop the writer."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self._thread = None

    def record(
        self,
        *,
        model: str,
        version: int,
        request_id: str,
        columns: Mapping[str, Any],
        outputs: Mapping[str, np.ndarray[Any, Any]],
        rows: int,
        shadow: bool = False,
        sampled: bool = False,
        body: bytes | None = None,
        rows_of: LoggedRows | None = None,
    ) -> bool:
        """Maybe log one request's rows (sampled per request); never blocks, drops when full.

        ``sampled``: log it whatever the sample rate (a request copied to the shadow, so
        its answer and the shadow's rows can be compared). ``shadow``: the rows are a
        shadow's. ``body`` with ``rows_of``: the request's row-format JSON body, kept
        instead of ``columns`` and read back with ``rows_of``'s schema (or, where Arrow
        cannot read it as the server did, its decoder). True when the rows went into
        the buffer.
        """
        if self.sample_rate <= 0:
            return False
        if not sampled and self._random.random() >= self.sample_rate:
            return False
        if self.urls and model not in self.urls:
            return False  # a model this log has no folder for
        if self._added - self._taken + rows > self.buffer_rows:
            self.dropped += rows
            if self._on_dropped is not None:
                self._on_dropped(rows)
            return False
        if body is not None and rows_of is not None:
            # The body, not its columns, in a run of such bodies: read by Arrow off the
            # GIL, and no object kept per request (see BodyRun).
            schema = rows_of.log_schema
            now = time.time_ns()
            with self._lock:
                run = self._open
                if (
                    run is None
                    or run.requests >= FILE_REQUESTS
                    or run.rows + rows > self.flush_rows
                    or not run.add(
                        model, version, shadow, schema, request_id, now, rows, body, outputs
                    )
                ):
                    run = BodyRun(model, version, shadow, schema, rows_of.log_columns, outputs)
                    run.add(model, version, shadow, schema, request_id, now, rows, body, outputs)
                    self._chunks.append(run)
                    self._open = run
        else:
            chunk = LogChunk(
                model=model,
                version=version,
                request_id=request_id,
                timestamp=datetime.now(UTC),
                columns=columns,
                outputs=outputs,
                rows=rows,
                shadow=shadow,
            )
            with self._lock:
                self._chunks.append(chunk)
                self._open = None
        self._added += rows
        self._added_requests += 1
        if self._file_ready():
            self._wake.set()
        return True

    def _file_ready(self) -> bool:
        """A whole file is buffered: ``flush_rows`` rows or ``FILE_REQUESTS`` requests."""
        return (
            self._added - self._taken >= self.flush_rows
            or self._added_requests - self._taken_requests >= FILE_REQUESTS
        )

    def _take(self) -> list[LogChunk | BodyRun]:
        """Whole chunks and runs from the front: about ``flush_rows`` rows, or up to
        ``CATCH_UP`` times that of a backlog, and at most ``FILE_REQUESTS`` requests (at
        least one chunk or run; a run holds at most ``flush_rows`` rows and
        ``FILE_REQUESTS`` requests). A run taken is closed to new requests."""
        batch: list[LogChunk | BodyRun] = []
        rows = requests = 0
        backlog = self._added - self._taken
        limit = min(max(self.flush_rows, backlog), CATCH_UP * self.flush_rows)
        with self._lock:
            while self._chunks:
                item = self._chunks[0]
                count = item.requests if isinstance(item, BodyRun) else 1
                if batch and (rows + item.rows > limit or requests + count > FILE_REQUESTS):
                    break
                self._chunks.popleft()
                if item is self._open:
                    self._open = None
                rows += item.rows
                requests += count
                batch.append(item)
        self._taken += rows
        self._taken_requests += requests
        return batch

    def _loop(self) -> None:
        last = time.monotonic()
        while True:
            self._wake.wait(timeout=min(self.flush_s, 1.0))
            self._wake.clear()
            stopping = self._stop.is_set()
            due = time.monotonic() - last >= self.flush_s
            while self._chunks and (self._file_ready() or due or stopping):
                self._write(self._take())
                last = time.monotonic()
            if stopping:
                return

    def _write(self, batch: list[LogChunk | BodyRun]) -> None:
        if not self.urls:
            self._write_to(self.url, batch)
            return
        by_model: dict[str, list[LogChunk | BodyRun]] = {}
        for chunk in batch:
            by_model.setdefault(chunk.model, []).append(chunk)
        for model, chunks in by_model.items():
            self._write_to(self.urls[model], chunks)

    def _write_to(self, url: str, batch: list[LogChunk | BodyRun]) -> None:
        rows = sum(c.rows for c in batch)
        try:
            write_log_chunks(url, batch)
        except Exception as exc:  # a log failure must never take serving down
            log.error("prediction log: %d rows not written: %s", rows, exc)
            self.dropped += rows
            if self._on_dropped is not None:
                self._on_dropped(rows)
            return
        self.written += rows
        if self._on_written is not None:
            self._on_written(rows)
