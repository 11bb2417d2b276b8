"""Shadow traffic: a sampled copy of the requests production answers, run on the shadow version.

The deployment record may name a ``shadow`` version and a ``shadow_rate``. For a request
that production answered (not one pinned to another version, nor one the canary
answered), :meth:`ShadowCopier.pick` samples the rate (the router's
:func:`~mooring.serving._router.shadow_copy` decides); the chosen request's answer is
logged whatever ``[serving] log_sample_rate`` says, and once its outputs are computed
:meth:`ShadowCopier.hand_over` queues the copy and returns at once.

Copies run in batches, off the requests' path: one task per model takes the copies
waiting (up to ``[serving] max_batch_size`` rows, after :data:`GATHER_S` for more to
arrive), merges them and runs them as one call on the shadow's own batcher (one thread
of its own, see :class:`~mooring.serving._models.ModelManager`), one batch at a time,
under ``[serving] shadow_timeout_ms`` counted from each copy's hand-over. Nobody waits
for a copy's answer, so waiting for more copies costs nothing, and a batch's fixed cost
(most of a signature call's) is paid once for all of them: at 100% a shadow costs a
fraction of production's own model time. Its outputs go to the prediction log, marked
``shadow`` under each request's id, in one append per batch.

A copy never reaches the client: its errors and timeouts are caught and counted in
``mooring_shadow_requests_total{model,version,outcome}``, its time from hand-over to its
outputs in ``mooring_shadow_latency_seconds``. Copies go first under load: when
``[serving] shadow_max_in_flight`` copies are held (waiting or running), or the server
is busy (the door holds three quarters of ``max_in_flight``, or a full batch waits for
production), the copy is not made and ``mooring_shadow_dropped_total{model,reason}``
counts it.

Examples:
    >>> copier = ShadowCopier(state)  # doctest: +SKIP
    >>> shadow = copier.pick(manager, slot)  # doctest: +SKIP
    >>> if shadow is not None:  # after the answer is computed  # doctest: +SKIP
    ...     copier.hand_over(manager, slot, shadow, "r1", columns, rows, logged=True)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from typing import Any

from mooring.formats._model import role_outputs
from mooring.formats._tensors import summarize_tensors
from mooring.serving._batcher import merge_columns
from mooring.serving._errors import DeadlineExceededError, OverloadedError
from mooring.serving._harness import Slot
from mooring.serving._log import LogTicket
from mooring.serving._models import ModelManager
from mooring.serving._router import shadow_copy
from mooring.serving._state import ServerState

__all__ = ["GATHER_S", "ShadowCopier"]

log = logging.getLogger("mooring.serving")

#: How long a batch of copies waits for more after its first arrived (unless it is
#: full): no client waits for a copy, and a larger batch costs less per row.
GATHER_S = 0.1
#: How often an idle lane checks that its version is still the shadow.
IDLE_CHECK_S = 1.0


class _Copy:
    """One request's copy: its inputs, its log ticket (None: not logged) and its deadline."""

    __slots__ = ("columns", "deadline", "handed", "rows", "shapes", "ticket")

    def __init__(
        self, columns: dict[str, Any], rows: int, ticket: LogTicket | None, timeout_s: float
    ) -> None:
        self.columns = columns
        self.rows = rows
        self.ticket = ticket
        self.handed = time.monotonic()
        self.deadline = self.handed + timeout_s
        self.shapes: tuple[Any, ...] | None = None


class _Lane:
    """The copies of one shadow version waiting, and the task that runs them."""

    def __init__(self, slot: Slot) -> None:
        self.slot = slot
        self.pending: deque[_Copy] = deque()
        self.pending_rows = 0
        self.running = 0  # copies in the batch that runs now
        self.closing = False  # the shadow changed: finish what waits, then stop
        self.wake: asyncio.Future[None] | None = None

    @property
    def held(self) -> int:
        return len(self.pending) + self.running

    def poke(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Until a copy arrives (a poke) or ``seconds`` have passed."""
        loop = asyncio.get_running_loop()
        self.wake = loop.create_future()
        timer = loop.call_later(seconds, _release, self.wake)
        try:
            await self.wake
        finally:
            timer.cancel()


class ShadowCopier:
    """Samples requests for the shadow version and runs their copies in batches, unwaited."""

    def __init__(self, state: ServerState, *, seed: int | None = None) -> None:
        self.state = state
        cfg = state.serving
        self.max_in_flight = cfg.shadow_max_in_flight
        self.max_batch_size = cfg.max_batch_size
        self.timeout_s = cfg.shadow_timeout_ms / 1000.0
        self._random = random.Random(seed)
        self._lanes: dict[str, _Lane] = {}

    def pick(self, manager: ModelManager, slot: Slot) -> Slot | None:
        """The shadow's slot when this request (answered by ``slot``) gets a copy."""
        version = shadow_copy(manager.aspired, slot.version, self._random)
        return None if version is None else manager.slots.get(version)

    def busy(self, production: Slot, lane: _Lane) -> str | None:
        """Why a copy would not be made now (``busy``, ``capacity``), or None."""
        admission = self.state.admission
        if admission.in_flight * 4 >= admission.max_in_flight * 3:
            return "busy"
        if production.batcher.depth >= production.batcher.max_batch_size:
            return "busy"
        if lane.held >= self.max_in_flight:
            return "capacity"
        return None

    def hand_over(
        self,
        manager: ModelManager,
        production: Slot,
        shadow: Slot,
        request_id: str,
        columns: dict[str, Any],
        rows: int,
        *,
        logged: bool,
        client_request_id: str | None = None,
    ) -> None:
        """Queue the copy (or count it dropped) and return at once; never raises.

        ``client_request_id``: the X-Request-Id the request's client sent, logged with the
        shadow's rows as with production's."""
        try:
            lane = self._lane(manager, shadow)
            reason = self.busy(production, lane)
            if reason is not None:
                self.state.metrics.shadow_dropped.labels(manager.name, reason).inc()
                return
            ticket = LogTicket(request_id, client_request_id) if logged else None
            copy = _Copy(columns, rows, ticket, self.timeout_s)
            if not shadow.columnar:  # tensors merge only with tensors of the same shapes
                copy.shapes = tuple(v.shape[1:] for v in columns.values())
            lane.pending.append(copy)
            lane.pending_rows += rows
            lane.poke()
        except Exception:  # nothing of a copy may reach the client's request
            log.exception("shadow copy of request %s not made", request_id)

    def _lane(self, manager: ModelManager, shadow: Slot) -> _Lane:
        """``shadow``'s lane, started on its first copy; a previous shadow's lane closes."""
        lane = self._lanes.get(manager.name)
        if lane is not None and lane.slot is shadow:
            return lane
        if lane is not None:
            lane.closing = True
            lane.poke()
        lane = self._lanes[manager.name] = _Lane(shadow)
        task = asyncio.get_running_loop().create_task(self._drain(manager, lane))
        self.state.shadow_tasks.add(task)
        task.add_done_callback(self.state.shadow_tasks.discard)
        return lane

    async def _drain(self, manager: ModelManager, lane: _Lane) -> None:
        """Run ``lane``'s copies a batch at a time until it closes with none waiting."""
        while True:
            if not lane.pending:
                if lane.closing or manager.shadow_slot() is not lane.slot:
                    # Its version is no longer the shadow: let go of its model.
                    if self._lanes.get(manager.name) is lane:
                        del self._lanes[manager.name]
                    return
                await lane.sleep(IDLE_CHECK_S)
                continue
            # Wait for more copies until the batch is full or the oldest has waited enough.
            until = lane.pending[0].handed + GATHER_S
            while (
                not lane.closing
                and lane.pending_rows < self.max_batch_size
                and lane.held < self.max_in_flight
                and (remaining := until - time.monotonic()) > 0
            ):
                await lane.sleep(remaining)
            batch = self._take(manager, lane)
            if batch:
                lane.running = len(batch)
                try:
                    await self._run(manager, lane.slot, batch)
                finally:
                    lane.running = 0

    def _take(self, manager: ModelManager, lane: _Lane) -> list[_Copy]:
        """The next batch: copies in order, up to ``max_batch_size`` rows of one shape;
        those past their deadline are counted as timeouts."""
        batch: list[_Copy] = []
        rows, late = 0, 0
        now = time.monotonic()
        while lane.pending:
            copy = lane.pending[0]
            if batch and (rows + copy.rows > self.max_batch_size or copy.shapes != batch[0].shapes):
                break
            lane.pending.popleft()
            lane.pending_rows -= copy.rows
            if copy.deadline <= now:
                late += 1
                continue
            batch.append(copy)
            rows += copy.rows
        if late:
            labels = (manager.name, str(lane.slot.version), "timeout")
            self.state.metrics.shadow_requests.labels(*labels).inc(late)
        return batch

    async def _run(self, manager: ModelManager, shadow: Slot, batch: list[_Copy]) -> None:
        """One batch of copies on the shadow; its outputs counted, timed and logged."""
        metrics = self.state.metrics
        labels = (manager.name, str(shadow.version))
        rows = sum(copy.rows for copy in batch)
        if len(batch) == 1:
            columns = batch[0].columns
        else:
            columns = {k: merge_columns([c.columns[k] for c in batch]) for k in batch[0].columns}
        remaining = min(copy.deadline for copy in batch) - time.monotonic()
        try:
            async with asyncio.timeout(remaining):
                outputs = await shadow.predict(columns, rows, remaining)
        except (TimeoutError, DeadlineExceededError):
            metrics.shadow_requests.labels(*labels, "timeout").inc(len(batch))
            return
        except OverloadedError:
            metrics.shadow_dropped.labels(manager.name, "capacity").inc(len(batch))
            return
        except Exception as exc:
            metrics.shadow_requests.labels(*labels, "error").inc(len(batch))
            log.debug("shadow %s@%s failed on %d copies: %r", *labels, len(batch), exc)
            return
        done = time.monotonic()
        latency = metrics.shadow_latency.labels(*labels)
        for copy in batch:
            latency.observe(done - copy.handed)
        metrics.shadow_requests.labels(*labels, "ok").inc(len(batch))
        plog = self.state.prediction_log
        tickets = [copy.ticket for copy in batch]
        if plog is not None and any(t is not None for t in tickets):
            try:
                plog.record_batch(
                    model=manager.name,
                    version=shadow.version,
                    tickets=tickets,
                    counts=[copy.rows for copy in batch],
                    columns=columns if shadow.columnar else summarize_tensors(columns),
                    outputs=_with_roles(shadow, outputs),
                    shadow=True,
                )
            except Exception:
                log.exception("shadow rows of %d requests not logged", len(batch))


def _release(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _with_roles(slot: Slot, outputs: dict[str, Any]) -> dict[str, Any]:
    """An imported shadow's outputs also under their roles, as its log rows need them."""
    folder = slot.model.folder
    roles = folder.roles
    return role_outputs(roles, folder.task, outputs) if roles else outputs
