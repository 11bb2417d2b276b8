"""Dynamic batching: merge concurrent requests into one inference, off the event loop.

Requests wait in a bounded queue. A worker takes up to ``max_batch_size`` rows;
it waits up to ``batch_timeout`` for more only while another batch is running or
while fewer requests wait than the batcher held at once (waiting or running) since
the last batch was taken (their clients are about to send again), so batches grow
with the load and a lone request never waits. Sizing the wait by what was held, not
by the last batch alone, matters in a closed loop of n clients: two batches of n/2
that alternate (one runs while the other fills) are stable under the last-batch rule,
and cost two model calls where one would do, while a call's fixed cost is most of it.
The merged columns run in a worker thread; results are split back per request. When the
server is otherwise idle (``inline_when`` says so: one request in flight in the whole
server) and the model answers a lone request in under :data:`INLINE_MAX_S`, a lone
request runs on the event loop's own thread instead: nothing else waits for the loop,
and the two thread hand-offs are most of what batching would otherwise add to a lone
request's latency. A full queue refuses at once (:class:`OverloadedError`, 503 + Retry-After); a
request past its deadline gets :class:`DeadlineExceededError` (504) and its work
is dropped if it has not started.

Examples:
    >>> batcher = Batcher(model.predict, max_batch_size=64, batch_timeout_s=0.002,
    ...                   max_queue=1024, executor=pool)  # doctest: +SKIP
    >>> await batcher.start()  # doctest: +SKIP
    >>> out = await batcher.submit(columns, rows=1, timeout_s=5.0)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mooring.serving._errors import DeadlineExceededError, InvalidRequestError, OverloadedError

if TYPE_CHECKING:
    from mooring._tracing import RequestTrace

__all__ = ["INLINE_MAX_S", "Batcher", "OnOutputs", "merge_columns"]

log = logging.getLogger("mooring.serving")

#: A lone request runs on the event loop only while the model's lone requests take less
#: than this (a smoothed mean): a slow model never holds the loop (health, metrics).
INLINE_MAX_S = 0.005

# Columns are numpy arrays or plain lists of checked values (see validation.column_values).
Columns = Mapping[str, Any]
Outputs = dict[str, np.ndarray[Any, Any]]
#: Called once per batch that ran, before its requests get their answers, when one of
#: them was submitted with a tag: (each request's tag, each request's rows, the merged
#: columns the model ran, its outputs). A request already
#: answered (its deadline passed) has the tag None. What it raises is logged; no request
#: fails for it.
OnOutputs = Callable[[list[Any], list[int], Columns, Outputs], None]


@dataclass
class _Job:
    columns: Columns
    rows: int
    deadline: float
    future: asyncio.Future[Outputs]
    enqueued: float = field(default_factory=time.monotonic)
    abandoned: bool = False
    # The request's span when tracing is on; the batch that runs the job links to it.
    trace: RequestTrace | None = None
    # What on_outputs gets for this request (the prediction log's ticket), or None.
    tag: Any = None
    # Taken into a batch: past its deadline from then on, the model was too slow.
    started: bool = False
    # A tensor request's inner shapes (None: columns): a batch holds one kind only.
    shapes: Any = None


class Batcher:
    """A bounded queue and ``workers`` batch runners in front of one ``predict`` function."""

    def __init__(
        self,
        predict: Callable[[Columns], Outputs],
        *,
        max_batch_size: int,
        batch_timeout_s: float,
        max_queue: int,
        executor: Executor,
        workers: int = 1,
        on_batch: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        inline_when: Callable[[], bool] | None = None,
        on_outputs: OnOutputs | None = None,
    ) -> None:
        self.predict = predict
        self.on_outputs = on_outputs
        self.inline_when = inline_when
        # Smoothed seconds of a lone request's batch (measured with the hand-off while it
        # runs in the executor); inline only below INLINE_MAX_S.
        self._lone_s = math.inf
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self.max_queue = max_queue
        self.executor = executor
        self.workers = workers
        self._on_batch = on_batch
        self._on_depth = on_depth
        self._pending: deque[_Job] = deque()
        self._pending_rows = 0
        self._running = 0
        # Requests in running batches, and the most requests held at once (waiting or
        # running) since the last batch was taken: what the next batch waits for.
        self._running_jobs = 0
        self._held_peak = 0
        self._expected = 1
        # Sleeping runners: (requests waiting that wake it, its future). A submit wakes a
        # runner only when its batch could now be complete, not on every request.
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._started = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a running batch)."""
        return len(self._pending)

    async def start(self) -> None:
        """Start the batch runners on the running loop."""
        self._started = True
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.workers)]

    async def stop(self) -> None:
        """Finish what is queued and running, then stop the runners."""
        while self._pending or self._running:
            await asyncio.sleep(0.005)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def submit(
        self,
        columns: Columns,
        *,
        rows: int,
        timeout_s: float,
        trace: RequestTrace | None = None,
        tag: Any = None,
        shapes: Any = None,
    ) -> Outputs:
        """Queue one request and wait for its slice of a batch's outputs.

        With ``trace``, its ``queue`` phase ends when a batch takes it, and that batch's
        span is linked to it. ``tag`` goes to ``on_outputs`` with the batch that runs it.
        ``shapes``: the inner shapes of a tensor request's inputs; it joins a batch only
        of requests with the same ones (concatenated along the batch dimension).
        """
        if not self._started:
            raise RuntimeError("Batcher.start() was not called")
        if len(self._pending) >= self.max_queue:
            raise OverloadedError(
                f"{len(self._pending)} requests are already queued (max_queue={self.max_queue}); "
                "retry later or add replicas",
                retry_after=1,
            )
        loop = asyncio.get_running_loop()
        job = _Job(
            columns,
            rows,
            time.monotonic() + timeout_s,
            loop.create_future(),
            trace=trace,
            tag=tag,
            shapes=shapes,
        )
        self._pending.append(job)
        self._pending_rows += rows
        held = len(self._pending) + self._running_jobs
        if held > self._held_peak:
            self._held_peak = held
        self._depth_changed()
        if self._waiters:
            self._poke()
        # A timer instead of wait_for(): no extra task per request on the hot path.
        timer = loop.call_later(timeout_s, _expire, job, timeout_s)
        try:
            return await job.future
        finally:
            timer.cancel()

    def _depth_changed(self) -> None:
        if self._on_depth is not None:
            self._on_depth(len(self._pending))

    def _poke(self, *, force: bool = False) -> None:
        """Wake the runners whose wait is over: enough requests, a full batch, or ``force``."""
        waiting = len(self._pending)
        full = self._pending_rows >= self.max_batch_size
        for need, future in self._waiters:
            if not future.done() and (force or full or waiting >= need):
                future.set_result(None)

    async def _sleep(self, need: float, timeout: float | None) -> None:
        """Sleep until ``need`` requests wait (or a poke, or ``timeout``): one future and at
        most one timer, no task per wait."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (need, future)
        self._waiters.append(entry)
        timer = loop.call_later(timeout, _release, future) if timeout is not None else None
        try:
            await future
        finally:
            self._waiters.remove(entry)
            if timer is not None:
                timer.cancel()

    async def _gather(self) -> list[_Job]:
        while not self._pending:
            await self._sleep(1, None)
        # Wait for more rows while another batch occupies the model anyway, or while fewer
        # requests wait than the last batch held (its clients are sending their next ones).
        # A lone client never waits; a closed loop of n clients gets batches of n.
        if self.batch_timeout_s > 0:
            until = self._pending[0].enqueued + self.batch_timeout_s
            while (
                self._pending
                and self._pending_rows < self.max_batch_size
                and (self._running or len(self._pending) < self._expected)
            ):
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                # While a batch runs, only a full batch, its end (a forced poke) or the
                # timeout ends the wait; otherwise the expected number of requests does.
                await self._sleep(math.inf if self._running else self._expected, remaining)
        batch: list[_Job] = []
        rows = 0
        now = time.monotonic()
        while self._pending:
            job = self._pending[0]
            if batch and (rows + job.rows > self.max_batch_size or job.shapes != batch[0].shapes):
                break
            self._pending.popleft()
            self._pending_rows -= job.rows
            if job.abandoned or job.future.done():
                continue
            if job.deadline <= now:
                job.future.set_exception(
                    DeadlineExceededError("deadline passed while queued", shed=True)
                )
                continue
            job.started = True
            batch.append(job)
            rows += job.rows
            if job.trace is not None:
                job.trace.dequeued()
        self._depth_changed()
        if batch:
            # The next batch waits for as many requests as were held at once since this
            # batch's predecessor was taken: in a closed loop of n clients, two batches of
            # n/2 that alternate (one runs while the other fills) merge into one of n, one
            # model call instead of two (see the module's docstring).
            self._expected = max(len(batch), self._held_peak)
            self._held_peak = len(batch) + len(self._pending) + self._running_jobs
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            self._running += 1
            self._running_jobs += len(batch)
            try:
                await self._execute(loop, batch)
            finally:
                self._running -= 1
                self._running_jobs -= len(batch)
                if self._pending and self._waiters:
                    self._poke(force=True)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        rows = sum(job.rows for job in batch)
        if len(batch) == 1:
            merged = batch[0].columns
        else:
            merged = {k: merge_columns([job.columns[k] for job in batch]) for k in batch[0].columns}
        predict = self.predict
        # Every job of a server is traced or none is: one check per batch when off.
        first = batch[0].trace
        span = first.start_batch([job.trace for job in batch], rows) if first is not None else None
        if span is not None:
            predict = span.wrap(predict)
        lone = len(batch) == 1 and self._running == 1 and not self._pending
        inline = lone and self._lone_s < INLINE_MAX_S and self.inline_when is not None
        started = time.perf_counter()
        try:
            if inline and self.inline_when is not None and self.inline_when():
                outputs = predict(merged)
            else:
                outputs = await loop.run_in_executor(self.executor, predict, merged)
        except Exception as exc:
            if span is not None:
                span.end(exc)
            if len(batch) > 1:
                # Isolate the request that failed so it does not fail its neighbours.
                for job in batch:
                    await self._execute(loop, [job])
                return
            _fail(batch[0], exc)
            return
        if span is not None:
            span.end()
        if lone:
            took = time.perf_counter() - started
            self._lone_s = took if self._lone_s == math.inf else 0.8 * self._lone_s + 0.2 * took
        if self._on_batch is not None:
            self._on_batch(rows)
        if self.on_outputs is not None:
            self._tagged(batch, merged, outputs)
        offset = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(
                    {k: v[offset : offset + job.rows] for k, v in outputs.items()}
                )
            offset += job.rows

    def _tagged(self, batch: list[_Job], merged: Columns, outputs: Outputs) -> None:
        """Hand the batch to ``on_outputs`` when one of its requests has a tag."""
        tags = [None if job.future.done() else job.tag for job in batch]
        if all(tag is None for tag in tags) or self.on_outputs is None:
            return
        try:
            self.on_outputs(tags, [job.rows for job in batch], merged, outputs)
        except Exception:  # a tag's consumer (the log) never fails the batch's requests
            log.exception("the outputs of a batch of %d requests were not handed on", len(batch))


def merge_columns(parts: list[Any]) -> Any:
    """One column of a batch: lists are joined (the common case, no numpy per request);
    arrays (binary tensors) are concatenated; a mix becomes one list."""
    if all(type(part) is list for part in parts):
        merged: list[Any] = []
        for part in parts:
            merged += part
        return merged
    if all(isinstance(part, np.ndarray) for part in parts):
        return np.concatenate(parts)
    mixed: list[Any] = []
    for part in parts:
        mixed += part if type(part) is list else np.asarray(part).tolist()
    return mixed


def _release(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _expire(job: _Job, timeout_s: float) -> None:
    if job.future.done():
        return
    job.abandoned = True
    job.future.set_exception(
        DeadlineExceededError(
            f"no result within the deadline of {timeout_s * 1000:.0f} ms; the server is "
            "busy: retry later, send smaller batches or raise [serving] deadline_ms",
            shed=not job.started,
        )
    )


def _refused_input(exc: Exception) -> bool:
    """The model refused its input (a value or shape it cannot take): the client's error,
    not the server's. TensorFlow's ``InvalidArgumentError`` is looked up only once
    TensorFlow is imported (a model that ran has imported it).

    >>> _refused_input(ValueError("bad shape")), _refused_input(RuntimeError("broken"))
    (True, False)
    """
    if isinstance(exc, ValueError | TypeError):
        return True
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(exc, tf.errors.InvalidArgumentError)


def _fail(job: _Job, exc: Exception) -> None:
    if job.future.done():
        return
    if _refused_input(exc):
        job.future.set_exception(
            InvalidRequestError(f"the model refused the input: {str(exc).splitlines()[0][:300]}")
        )
    else:
        job.future.set_exception(exc)
