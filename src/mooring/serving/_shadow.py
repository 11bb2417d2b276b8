"""Shadow traffic: a sampled copy of the requests production answers, run on the shadow version.

The deployment record may name a ``shadow`` version and a ``shadow_rate``. For a request
that production answered (not one pinned to another version, nor one the canary
answered), :meth:`ShadowCopier.pick` samples the rate (the router's
:func:`~mooring.serving._router.shadow_copy` decides); the chosen request's answer is
logged whatever ``[serving] log_sample_rate`` says, and once its outputs are computed
:meth:`ShadowCopier.hand_over` schedules the copy as a task and returns at once. The
task first yields, so the client's answer is written before the copy starts; it runs on
the shadow's own batcher (one thread of its own, see
:class:`~mooring.serving._models.ModelManager`) under ``[serving] shadow_timeout_ms``,
and its outputs go to the prediction log marked ``shadow`` under the same request id.

A copy never reaches the client: its errors and timeouts are caught and counted in
``mooring_shadow_requests_total{model,version,outcome}``, its time in
``mooring_shadow_latency_seconds``. Copies go first under load: when
``[serving] shadow_max_in_flight`` copies are running, or the server is busy (the door
holds three quarters of ``max_in_flight``, or a full batch waits for production), the
copy is not made and ``mooring_shadow_dropped_total{model,reason}`` counts it.

Example:
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
from typing import Any

from mooring.formats._model import role_outputs
from mooring.formats._tensors import summarize_tensors
from mooring.serving._errors import DeadlineExceededError, OverloadedError
from mooring.serving._harness import Slot
from mooring.serving._models import ModelManager
from mooring.serving._router import shadow_copy
from mooring.serving._state import ServerState

__all__ = ["ShadowCopier"]

log = logging.getLogger("mooring.serving")


class ShadowCopier:
    """Samples requests for the shadow version and runs their copies without waiting."""

    def __init__(self, state: ServerState, *, seed: int | None = None) -> None:
        self.state = state
        cfg = state.serving
        self.max_in_flight = cfg.shadow_max_in_flight
        self.timeout_s = cfg.shadow_timeout_ms / 1000.0
        self._random = random.Random(seed)

    def pick(self, manager: ModelManager, slot: Slot) -> Slot | None:
        """The shadow's slot when this request (answered by ``slot``) gets a copy."""
        version = shadow_copy(manager.aspired, slot.version, self._random)
        return None if version is None else manager.slots.get(version)

    def busy(self, production: Slot) -> str | None:
        """Why a copy would not be made now (``busy``, ``capacity``), or None."""
        door = self.state.door
        if door.in_flight * 4 >= door.limits.max_in_flight * 3:
            return "busy"
        if production.batcher.depth >= production.batcher.max_batch_size:
            return "busy"
        if len(self.state.shadow_tasks) >= self.max_in_flight:
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
        """Schedule the copy (or count it dropped) and return at once; never raises.

        ``client_request_id``: the X-Request-Id the request's client sent, logged with the
        shadow's rows as with production's."""
        try:
            reason = self.busy(production)
            if reason is not None:
                self.state.metrics.shadow_dropped.labels(manager.name, reason).inc()
                return
            task = asyncio.get_running_loop().create_task(
                self._run(manager, shadow, request_id, columns, rows, logged, client_request_id)
            )
            self.state.shadow_tasks.add(task)
            task.add_done_callback(self.state.shadow_tasks.discard)
        except Exception:  # nothing of a copy may reach the client's request
            log.exception("shadow copy of request %s not made", request_id)

    async def _run(
        self,
        manager: ModelManager,
        shadow: Slot,
        request_id: str,
        columns: dict[str, Any],
        rows: int,
        logged: bool,
        client_request_id: str | None = None,
    ) -> None:
        await asyncio.sleep(0)  # the client's answer is written before the copy starts
        metrics = self.state.metrics
        labels = (manager.name, str(shadow.version))
        start = time.perf_counter()
        try:
            outputs = await asyncio.wait_for(
                shadow.predict(columns, rows, self.timeout_s), self.timeout_s
            )
        except (TimeoutError, DeadlineExceededError):
            metrics.shadow_requests.labels(*labels, "timeout").inc()
            return
        except OverloadedError:
            metrics.shadow_dropped.labels(manager.name, "capacity").inc()
            return
        except Exception as exc:
            metrics.shadow_requests.labels(*labels, "error").inc()
            log.debug("shadow %s@%s failed on %s: %r", *labels, request_id, exc)
            return
        metrics.shadow_latency.labels(*labels).observe(time.perf_counter() - start)
        metrics.shadow_requests.labels(*labels, "ok").inc()
        plog = self.state.prediction_log
        if logged and plog is not None:
            try:
                plog.record(
                    model=manager.name,
                    version=shadow.version,
                    request_id=request_id,
                    columns=columns if shadow.columnar else summarize_tensors(columns),
                    outputs=_with_roles(shadow, outputs),
                    rows=rows,
                    shadow=True,
                    sampled=True,
                    client_request_id=client_request_id,
                )
            except Exception:
                log.exception("shadow rows of request %s not logged", request_id)


def _with_roles(slot: Slot, outputs: dict[str, Any]) -> dict[str, Any]:
    """An imported shadow's outputs also under their roles, as its log rows need them."""
    folder = slot.model.folder
    roles = folder.roles
    return role_outputs(roles, folder.task, outputs) if roles else outputs
