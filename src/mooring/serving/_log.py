"""The prediction log: a sample of requests written as Parquet batches, never blocking serving.

Whether a request is logged is decided when it arrives (:meth:`PredictionLog.wants`, the
sample rate); its rows are logged when its batch has run, in one append for the whole
batch (:meth:`PredictionLog.record_batch`): the batch's merged input columns and its
outputs, as the model got and gave them, with each logged request's id and rows (a
:class:`~mooring.formats._log_chunks.LogChunk`). So the event loop pays one append per
batch, not per request, and copies nothing per request; a 64-row request is one
columnar append. A batch of at least :data:`~mooring.formats._log_chunks.ARROW_ROWS`
rows has its text and float columns made Arrow arrays in that append
(:func:`~mooring.formats._log_chunks.arrow_columns` says why there and what it saves).
A writer thread assembles the chunks into Arrow columns and Parquet files under
``<home>/predictions/`` (any fsspec URL; a server of several projects writes each
model's rows to its project's folder), one file per ``flush_rows`` rows or
``flush_s`` seconds; while the writer is behind, a file takes
up to :data:`CATCH_UP` × ``flush_rows`` of the backlog, since much of a small file's
cost is per file (the Parquet footer, the atomic rename). When the buffer is full, new
rows are dropped and counted. Each file's request ids go into the writer's
:class:`~mooring.formats._predictions.RequestIndex` (an index file per 64 files, and one
when the writer stops), so a request is found without reading every file. The files'
layout and columns, and their one writer and reader, are
:mod:`mooring.formats._predictions`.
"""

from __future__ import annotations

import importlib.abc
import logging
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa

from mooring.formats._log_chunks import ARROW_ROWS, LogChunk, arrow_columns, write_log_chunks
from mooring.formats._predictions import RequestIndex

__all__ = ["CATCH_UP", "LogTicket", "PredictionLog", "arrow_without_pandas"]

log = logging.getLogger("mooring.serving")

#: A file holds at most this many times ``flush_rows`` rows, taken from a backlog.
CATCH_UP = 8


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


class LogTicket:
    """A request the prediction log takes (:meth:`PredictionLog.wants` said yes): its id
    (and the X-Request-Id its client sent, if any), per row the inputs outside the
    contract (None: every value was inside), and, once its batch has run, whether its
    rows went into the buffer."""

    __slots__ = ("buffered", "client_request_id", "request_id", "violations")

    def __init__(
        self,
        request_id: str,
        client_request_id: str | None = None,
        violations: list[list[str] | None] | None = None,
    ) -> None:
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.violations = violations
        self.buffered = False


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
        self._chunks: deque[LogChunk] = deque()
        self._lock = threading.Lock()
        # Rows buffered = added - taken; each counter has one writing thread (the event
        # loop adds, the writer takes), so no update is lost.
        self._added = 0
        self._taken = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Flushes asked for (:meth:`flush`): the rows added when each was asked, and the
        # event set once the writer has written them.
        self._flushes: list[tuple[int, threading.Event]] = []
        # Per log folder, the writer's index of the request ids in the files it wrote.
        self._indexes: dict[str, RequestIndex] = {}

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

    def flush(self, timeout: float = 10.0) -> int | None:
        """Write every row buffered now, without waiting for ``flush_rows`` or ``flush_s``;
        the rows buffered when asked (0: none), or None when the log is off (nothing is
        ever written) or the writer did not finish within ``timeout`` seconds.

        What ``POST /admin/flush`` runs, so that ``mooring live`` and ``mooring drift``
        read what the server has answered, not only what it has written. Blocks the
        calling thread (the server calls it from one of its own), never the event loop.

        >>> plog.flush()  # doctest: +SKIP
        37
        """
        if self._thread is None:
            return None
        pending = self._added - self._taken
        done = threading.Event()
        with self._lock:
            self._flushes.append((self._added, done))
        self._wake.set()
        return pending if done.wait(timeout) else None

    def wants(self, model: str, *, sampled: bool = False) -> bool:
        """Whether to log a request of ``model`` that arrives now: at the sample rate, or
        always when ``sampled`` (a request copied to the shadow, so its answer and the
        shadow's rows can be compared); never while the log is off or has no folder for
        the model."""
        if self.sample_rate <= 0 or (self.urls and model not in self.urls):
            return False
        return sampled or self.sample_rate >= 1.0 or self._random.random() < self.sample_rate

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
        client_request_id: str | None = None,
    ) -> bool:
        """Maybe log one request's rows (sampled per request); never blocks, drops when full.

        ``sampled``: log it whatever the sample rate. ``shadow``: the rows are a shadow's.
        ``client_request_id``: the X-Request-Id the request's client sent, if any.
        True when the rows went into the buffer. The server logs its answers (and its
        shadow's) a batch at a time (:meth:`record_batch`); this is for rows that come one
        request at a time.
        """
        if not self.wants(model, sampled=sampled):
            return False
        return self._buffer(
            LogChunk(
                model=model,
                version=version,
                request_ids=[request_id],
                counts=[rows],
                timestamp=datetime.now(UTC),
                columns=columns,
                outputs=outputs,
                rows=rows,
                shadow=shadow,
                client_request_ids=None if client_request_id is None else [client_request_id],
            )
        )

    def record_batch(
        self,
        *,
        model: str,
        version: int,
        tickets: Sequence[LogTicket | None],
        counts: Sequence[int],
        columns: Mapping[str, Any],
        outputs: Mapping[str, np.ndarray[Any, Any]],
        shadow: bool = False,
    ) -> bool:
        """Log the rows of one batch's logged requests in one append; never blocks.

        ``tickets[i]`` is the i-th request's ticket (None: not logged) and ``counts[i]`` its
        rows, in the order of the batch's rows in ``columns`` and ``outputs`` (the merged
        inputs the model ran and its outputs). Every logged request's ticket is marked
        ``buffered`` when the rows went into the buffer; when it is full they are dropped
        and counted instead. ``shadow``: the rows are a shadow's. True when buffered.

        Examples:
            >>> ticket = LogTicket("r1")
            >>> plog.record_batch(model="income", version=1, tickets=[ticket, None],
            ...                   counts=[1, 1], columns={"age": [39.0, 52.0]},
            ...                   outputs={"score": np.array([0.2, 0.7])})  # doctest: +SKIP
            True
        """
        if self.urls and model not in self.urls:
            return False
        logged = [t for t in tickets if t is not None]
        if not logged:
            return False
        if len(logged) == len(tickets):
            chosen_counts: Sequence[int] = counts
        else:
            columns, outputs, chosen_counts = _select(tickets, counts, columns, outputs)
        rows = sum(chosen_counts)
        clients = [t.client_request_id for t in logged]
        flags = [t.violations for t in logged]
        buffered = self._buffer(
            LogChunk(
                model=model,
                version=version,
                request_ids=[t.request_id for t in logged],
                counts=chosen_counts,
                timestamp=datetime.now(UTC),
                columns=columns,
                outputs=outputs,
                rows=rows,
                shadow=shadow,
                # None where no client sent an id: the writer makes an all-null column.
                client_request_ids=clients if any(c is not None for c in clients) else None,
                violations=flags if any(f is not None for f in flags) else None,
            )
        )
        if buffered:
            for ticket in logged:
                ticket.buffered = True
        return buffered

    def _buffer(self, chunk: LogChunk) -> bool:
        """Append a chunk unless the buffer is full (then drop and count its rows); a chunk
        of at least ``ARROW_ROWS`` rows goes in with Arrow columns (:func:`arrow_columns`)."""
        rows = chunk.rows
        if self._added - self._taken + rows > self.buffer_rows:
            self.dropped += rows
            if self._on_dropped is not None:
                self._on_dropped(rows)
            return False
        if rows >= ARROW_ROWS:
            chunk.columns = arrow_columns(chunk.columns)
        with self._lock:
            self._chunks.append(chunk)
        self._added += rows
        if self._full():
            self._wake.set()
        return True

    def _full(self) -> bool:
        """A whole file (``flush_rows`` rows) is buffered."""
        return self._added - self._taken >= self.flush_rows

    def _take(self) -> list[LogChunk]:
        """Whole chunks from the front: about ``flush_rows`` rows, or up to ``CATCH_UP``
        times that of a backlog (at least one chunk)."""
        batch: list[LogChunk] = []
        rows = 0
        backlog = self._added - self._taken
        limit = min(max(self.flush_rows, backlog), CATCH_UP * self.flush_rows)
        with self._lock:
            while self._chunks:
                item = self._chunks[0]
                if batch and rows + item.rows > limit:
                    break
                self._chunks.popleft()
                rows += item.rows
                batch.append(item)
        self._taken += rows
        return batch

    def _loop(self) -> None:
        last = time.monotonic()
        while True:
            self._wake.wait(timeout=min(self.flush_s, 1.0))
            self._wake.clear()
            stopping = self._stop.is_set()
            due = time.monotonic() - last >= self.flush_s
            asked = bool(self._flushes)
            while self._chunks and (self._full() or due or stopping or asked):
                batch = self._take()
                self._write(batch)
                _release(batch)
                last = time.monotonic()
            if asked:
                self._answer_flushes()
            if stopping:
                for index in self._indexes.values():
                    self._indexed(index.flush)
                return

    def _answer_flushes(self) -> None:
        """Tell each :meth:`flush` whose rows are all written (taken, then written: the
        loop above writes what it takes before it comes here)."""
        with self._lock:
            waiting = self._flushes
            self._flushes = [(rows, done) for rows, done in waiting if rows > self._taken]
        for rows, done in waiting:
            if rows <= self._taken:
                done.set()
        if self._flushes:
            self._wake.set()  # asked after the writer looked: the next pass writes them

    def _write(self, batch: list[LogChunk]) -> None:
        if not self.urls:
            self._write_to(self.url, batch)
            return
        by_model: dict[str, list[LogChunk]] = {}
        for chunk in batch:
            by_model.setdefault(chunk.model, []).append(chunk)
        for model, chunks in by_model.items():
            self._write_to(self.urls[model], chunks)

    def _write_to(self, url: str, batch: list[LogChunk]) -> None:
        rows = sum(c.rows for c in batch)
        try:
            path = write_log_chunks(url, batch)
        except Exception as exc:  # a log failure must never take serving down
            log.error("prediction log: %d rows not written: %s", rows, exc)
            self.dropped += rows
            if self._on_dropped is not None:
                self._on_dropped(rows)
            return
        self.written += rows
        if self._on_written is not None:
            self._on_written(rows)
        index = self._indexes.get(url)
        if index is None:
            index = self._indexes[url] = RequestIndex(url)
        ids = [request_id for chunk in batch for request_id in chunk.request_ids]
        self._indexed(lambda: index.add(path, ids))

    @staticmethod
    def _indexed(write: Callable[[], object]) -> None:
        """Update the index of request ids; a failure is logged, never raised (the log
        files stay whole, and a file no index covers is read directly)."""
        try:
            write()
        except Exception as exc:
            log.warning("prediction log: request-id index not written: %s", exc)


def _release(chunks: list[LogChunk]) -> None:
    """Free written chunks one at a time, from the last.

    A chunk of fewer than :data:`ARROW_ROWS` rows holds its requests' decoded values as
    Python objects; a file's worth freed all at once, as dropping the list does, holds
    the interpreter for one long stretch (tens of milliseconds), and the event loop
    waits that long. One chunk at a time, it can take the interpreter between two.
    """
    while chunks:
        chunks.pop()


def _select(
    tickets: Sequence[LogTicket | None],
    counts: Sequence[int],
    columns: Mapping[str, Any],
    outputs: Mapping[str, np.ndarray[Any, Any]],
) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]], list[int]]:
    """The rows of the logged requests of a batch where not every request is logged (a
    sample rate below 1): their columns, outputs and row counts."""
    spans: list[tuple[int, int]] = []
    chosen: list[int] = []
    start = 0
    for ticket, count in zip(tickets, counts, strict=True):
        if ticket is not None:
            spans.append((start, start + count))
            chosen.append(count)
        start += count
    index = np.concatenate([np.arange(a, b) for a, b in spans])
    picked: dict[str, Any] = {}
    for name, values in columns.items():
        if type(values) is list:
            picked[name] = list(chain.from_iterable(values[a:b] for a, b in spans))
        else:
            picked[name] = np.asarray(values)[index]
    return picked, {name: value[index] for name, value in outputs.items()}, chosen
