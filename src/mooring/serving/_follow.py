"""Follow the deployment record: poll, and hot-swap when it changes.

A worker of ``mooring serve --workers N`` also follows its run's deployment notices
(:func:`follow_notices`), waits for its models before it listens (:func:`settled`) and
keeps its share of the multiprocess gauges current (:func:`refresh_gauges`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from mooring.serving._models import ModelManager
from mooring.serving._state import ServerState
from mooring.serving._workers import WorkerRun

__all__ = ["follow", "follow_notices", "refresh_gauges", "settled"]

# How often a worker reads its run's deployment notice, and refreshes the gauges that
# cannot be computed at scrape time in multiprocess mode.
NOTICE_POLL_S = 0.1
GAUGE_REFRESH_S = 1.0

log = logging.getLogger("mooring.serving")


async def follow(manager: ModelManager, interval_s: float) -> None:
    """Apply the deployment now, then every ``interval_s`` when its revision changed.

    A registry that cannot be reached is logged and retried; what is loaded keeps serving.
    """
    while True:
        was_ok = manager.source_error is None
        try:
            await manager.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if was_ok:  # once per outage, not once per poll
                log.warning(
                    "model %s: deployment not read (%s); serving what is loaded, retrying every "
                    "%g s",
                    manager.name,
                    exc,
                    interval_s,
                )
        await asyncio.sleep(interval_s)


async def settled(state: ServerState, limit_s: float) -> None:
    """Wait until every model is ready, or has settled not ready (at most ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not all(m.settled for m in state.managers.values()):
        await asyncio.sleep(0.01)


async def follow_notices(state: ServerState, worker: WorkerRun) -> None:
    """Re-read the deployment record when another worker announces a deployment; flush
    the prediction log when one asks for it (``POST /admin/flush``)."""
    seen = worker.deployment_stamp()
    flushed = worker.flush_stamp()
    while True:
        await asyncio.sleep(NOTICE_POLL_S)
        asked = worker.flush_stamp()
        if asked is not None and asked != flushed:
            flushed = asked
            if not asked.endswith(f" {worker.me}"):  # not this worker's own: it flushed
                await _flush(state, worker, asked)
        stamp = worker.deployment_stamp()
        if stamp == seen:
            continue
        seen = stamp
        for manager in state.managers.values():
            try:
                await manager.refresh()
            except Exception as exc:  # the registry's outage is reported by follow()
                log.debug("model %s: deployment notice not applied: %s", manager.name, exc)


async def _flush(state: ServerState, worker: WorkerRun, stamp: str) -> None:
    """Write this worker's buffered log rows and acknowledge the notice ``stamp``."""
    plog = state.prediction_log
    try:
        rows = None if plog is None else await asyncio.to_thread(plog.flush)
        await asyncio.to_thread(worker.acknowledge_flush, stamp, 0 if plog is None else rows)
    except OSError as exc:  # the run's folder is gone: the server is stopping
        log.debug("flush notice not acknowledged: %s", exc)


async def refresh_gauges(state: ServerState) -> None:
    """Multiprocess metrics: this worker's in-flight count, CPU time and memory."""
    while True:
        state.metrics.in_flight.set(state.admission.in_flight)
        state.metrics.refresh_process()
        await asyncio.sleep(GAUGE_REFRESH_S)
