"""The versions being served for one model name: load, warm up, route, hot-swap, unload.

A new version is loaded and warmed in a worker thread while the current ones keep
answering; only then do the production/canary pointers move (one step on the
event loop, so no request sees a half-applied deployment). A replaced version is
unloaded once its in-flight requests have finished. A version that fails to load
or verify is never served: the previous production version stays, and the
failure shows in :meth:`ModelManager.status` and in the metrics. A server that has
nothing loaded yet (start-up) falls back to the newest earlier production that loads
instead (:attr:`ModelManager.fallback`); with none, :meth:`ModelManager.why_not_ready`
says why it is not ready.

A shadow version (the deployment's ``shadow``) is loaded and warmed the same way, once
production and canary are in place, with its own one-thread executor, so its batches
never wait for, or hold up, an inference thread of the versions that answer. It is
never routed to; :class:`~mooring.serving.shadow.ShadowCopier` hands it copies. A
shadow that fails to load is reported in :meth:`ModelManager.status` and changes
nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mooring.config import ServingConfig
from mooring.errors import MooringError, NotFoundError
from mooring.registry import Deployment
from mooring.serving.batcher import Batcher, Columns, OnOutputs, Outputs
from mooring.serving.contract import InputContract
from mooring.serving.errors import ModelUnavailableError
from mooring.serving.loaded import ServedModel, load_served_model
from mooring.serving.log import LogTicket, PredictionLog
from mooring.serving.metrics import ServingMetrics
from mooring.serving.sources import ModelSource

if TYPE_CHECKING:
    from mooring.tracing import RequestTrace

__all__ = ["ModelManager", "Slot", "bucket_of"]

log = logging.getLogger("mooring.serving")


def bucket_of(key: str) -> int:
    """A stable bucket 0–99 for a request key (the same key always lands on the same version)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % 100


@dataclass
class Slot:
    """One loaded version with its batcher and the count of requests using it."""

    model: ServedModel
    batcher: Batcher
    inflight: int = 0
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> int:
        return self.model.version

    async def predict(
        self,
        columns: Columns,
        rows: int,
        timeout_s: float,
        trace: RequestTrace | None = None,
        ticket: LogTicket | None = None,
    ) -> Outputs:
        """The request's outputs from its batch; with ``ticket``, its rows are logged with
        the batch (the ticket says whether they went into the log's buffer)."""
        self.inflight += 1
        try:
            return await self.batcher.submit(
                columns, rows=rows, timeout_s=timeout_s, trace=trace, tag=ticket
            )
        finally:
            self.inflight -= 1


class ModelManager:
    """Loaded versions of one model and the rule that picks one per request."""

    def __init__(
        self,
        source: ModelSource,
        cfg: ServingConfig,
        metrics: ServingMetrics,
        executor: Executor,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.source = source
        #: Where the batches of the versions that answer log their rows (None: not logged).
        self.prediction_log = prediction_log
        self.name = source.name
        self.cfg = cfg
        self.metrics = metrics
        self.executor = executor
        self.slots: dict[int, Slot] = {}
        self.production: int | None = None
        self.canary: int | None = None
        self.weight = 0
        #: The loaded shadow version (None: none, or it failed to load), its share of
        #: requests, and what the deployment record names.
        self.shadow: int | None = None
        self.shadow_rate = 0.0
        self.shadow_wanted: int | None = None
        self.shadow_error: str | None = None
        self._shadow_executor: ThreadPoolExecutor | None = None
        self.revision: int | None = None
        self.failures: dict[int, str] = {}
        self.loading: set[int] = set()
        #: Says when the server is otherwise idle (one request in flight), so a lone
        #: request may run on the event loop (see :class:`~mooring.serving.batcher.Batcher`);
        #: None: always in the executor.
        self.idle: Callable[[], bool] | None = None
        self.contract_errors: dict[int, str] = {}
        # The deployment record's source: None while it answers, else the last error and since.
        self.source_error: str | None = None
        self.source_error_since: float | None = None
        self.source_checked_at: float | None = None
        #: Set while the deployed production cannot be served and another version answers:
        #: {"wanted", "serving", "reason"}.
        self.fallback: dict[str, Any] | None = None
        #: What the deployment record names (production, earlier productions newest last).
        self.wanted: int | None = None
        self.previous: tuple[int, ...] = ()
        self._lock = asyncio.Lock()
        self._draining: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        """True once the production version is loaded and warmed."""
        return self.production is not None and self.production in self.slots

    @property
    def settled(self) -> bool:
        """Ready, or not ready for a reason :meth:`why_not_ready` can give: the deployment
        was applied (or could not be read) and nothing is loading."""
        applied = self.revision is not None or self.source_error is not None
        return self.ready or (applied and not self.loading and not self._lock.locked())

    # -- deployment ----------------------------------------------------------------
    async def refresh(self, *, force: bool = False) -> bool:
        """Read the deployment record; apply it when it changed. True if something changed.

        When the record cannot be read (the registry is down), what is loaded keeps
        serving; the error shows in :meth:`status` and ``mooring_registry_up`` until a
        read succeeds again.
        """
        try:
            deployment = await asyncio.to_thread(self.source.deployment)
        except Exception as exc:
            if self.source_error is None:
                self.source_error_since = time.time()
            self.source_error = str(exc) if isinstance(exc, MooringError) else repr(exc)
            self.metrics.registry_up.labels(self.name).set(0)
            self.metrics.registry_errors.labels(self.name).inc()
            raise
        if self.source_error is not None:
            log.info("model %s: the deployment record is readable again", self.name)
        self.source_error = self.source_error_since = None
        self.source_checked_at = time.time()
        self.metrics.registry_up.labels(self.name).set(1)
        if not force and deployment.revision == self.revision:
            return False
        await self.apply(deployment)
        return True

    async def apply(self, deployment: Deployment) -> None:
        """Load what ``deployment`` names, then move the pointers and retire the rest."""
        async with self._lock:
            self.wanted, self.previous = deployment.production, deployment.previous
            wanted = [v for v in (deployment.production, deployment.canary) if v is not None]
            for version in wanted:
                if version not in self.slots:
                    await self._load(version)
            wanted_production = deployment.production
            if wanted_production in self.slots:
                self.production = wanted_production
            elif wanted_production is not None and self.production is None:
                await self._fall_back(deployment)
            self.fallback = None
            if wanted_production is not None and self.production not in (None, wanted_production):
                self.fallback = {
                    "wanted": wanted_production,
                    "serving": self.production,
                    "reason": self.failures.get(wanted_production, "not loaded"),
                }
                log.error(
                    "model %s: production version %s cannot be served; version %s answers "
                    "instead", self.name, wanted_production, self.production,
                )  # fmt: skip
            self.metrics.fallback.labels(self.name).set(1 if self.fallback else 0)
            canary = deployment.canary
            if canary is not None and canary in self.slots and canary != self.production:
                self.canary, self.weight = canary, deployment.canary_weight
            else:
                self.canary, self.weight = None, 0
            await self._apply_shadow(deployment)
            self.revision = deployment.revision
            keep = {self.production, self.canary, self.shadow}
            for version in list(self.slots):
                if version not in keep:
                    self._retire(version)
            self._publish()

    async def _apply_shadow(self, deployment: Deployment) -> None:
        """Load the shadow (after production and canary moved) and point at it."""
        wanted = deployment.shadow
        self.shadow_wanted = wanted
        if wanted is not None and wanted in (self.production, self.canary):
            wanted = None  # it answers requests now: no copies
        if wanted is not None and wanted not in self.slots:
            if self._shadow_executor is None:
                self._shadow_executor = ThreadPoolExecutor(1, thread_name_prefix="shadow")
            await self._load(wanted, shadow=True)
            # Kept apart: a shadow's failure is not a served version's (status documents).
            self.shadow_error = self.failures.pop(wanted, None)
        if wanted is not None and wanted in self.slots:
            self.shadow, self.shadow_rate = wanted, deployment.shadow_rate
        else:
            self.shadow, self.shadow_rate = None, 0.0

    def shadow_slot(self) -> Slot | None:
        """The loaded shadow version's slot, if any."""
        return None if self.shadow is None else self.slots.get(self.shadow)

    async def _fall_back(self, deployment: Deployment) -> None:
        """Nothing serves and the deployed production failed to load: serve the newest of
        the earlier productions that loads (and verifies) instead, so the model stays up.

        The candidates are the deployment record's ``previous`` productions (the ones
        ``rollback`` would restore), newest first; a version that already failed here is
        not tried again. A running server never gets here: it keeps what it serves.
        """
        for version in reversed(deployment.previous):
            if version not in self.slots and version not in self.failures:
                await self._load(version)
            if version in self.slots:
                self.production = version
                return

    async def _load(self, version: int, *, shadow: bool = False) -> None:
        start = time.perf_counter()
        self.loading.add(version)
        try:
            path = await asyncio.to_thread(self.source.fetch, version)
            model = await asyncio.to_thread(load_served_model, self.name, version, path)
            model.contract = await asyncio.to_thread(self._contract, model)
            await asyncio.to_thread(
                model.warm_up, self.cfg.warmup_requests, self.cfg.max_batch_size
            )
        except Exception as exc:
            message = str(exc) if isinstance(exc, MooringError) else f"{type(exc).__name__}: {exc}"
            self.failures[version] = message
            self.metrics.load_failures.labels(self.name, str(version)).inc()
            log.error("model %s version %s not served: %s", self.name, version, message)
            return
        finally:
            self.loading.discard(version)
        self.failures.pop(version, None)
        labels = (self.name, str(version))
        batcher = Batcher(
            self._timed(model),
            max_batch_size=self.cfg.max_batch_size,
            batch_timeout_s=self.cfg.batch_timeout_ms / 1000.0,
            max_queue=self.cfg.shadow_max_in_flight if shadow else self.cfg.max_queue,
            executor=self._shadow_executor if shadow and self._shadow_executor else self.executor,
            workers=1 if shadow else self.cfg.inference_threads,
            on_batch=self.metrics.batch_size.labels(*labels).observe,
            on_depth=self.metrics.queue_depth.labels(*labels).set,
            inline_when=None if shadow else self.idle,
            on_outputs=None if shadow else self._logged(version),
        )
        await batcher.start()
        self.slots[version] = Slot(model, batcher)
        self.metrics.load_seconds.labels(self.name).observe(time.perf_counter() - start)
        log.info("model %s version %s loaded and warmed", self.name, version)

    def _contract(self, model: ServedModel) -> InputContract | None:
        """The version's contract; a version without one (or with a broken one) is served
        with the signature checks only, and status says why."""
        self.contract_errors.pop(model.version, None)
        try:
            found = self.source.contract_schema(model.version)
        except Exception as exc:
            message = str(exc) if isinstance(exc, MooringError) else f"{type(exc).__name__}: {exc}"
            self.contract_errors[model.version] = message
            log.warning(
                "model %s version %s: no contract checks (%s)", self.name, model.version, message
            )
            return None
        if found is None:
            return None
        schema, origin = found
        return InputContract.from_schema(schema, model.inputs, source=origin)

    def _logged(self, version: int) -> OnOutputs | None:
        """What logs a batch of ``version``'s answers: one append to the prediction log."""
        plog = self.prediction_log
        if plog is None:
            return None
        name = self.name

        def record(tags: list[Any], counts: list[int], columns: Columns, outputs: Outputs) -> None:
            plog.record_batch(
                model=name,
                version=version,
                tickets=tags,
                counts=counts,
                columns=columns,
                outputs=outputs,
            )

        return record

    def _timed(self, model: ServedModel) -> Any:
        histogram = self.metrics.inference.labels(self.name, str(model.version))

        def predict(columns: Columns) -> Outputs:
            with histogram.time():
                return model.predict(columns)

        return predict

    def _retire(self, version: int) -> None:
        slot = self.slots.pop(version)
        self.metrics.loaded.labels(self.name, str(version)).set(0)
        task = asyncio.create_task(self._drain(slot))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self, slot: Slot) -> None:
        while slot.inflight:
            await asyncio.sleep(0.01)
        await slot.batcher.stop()
        log.info("model %s version %s unloaded", self.name, slot.version)

    def _publish(self) -> None:
        for version in self.slots:
            self.metrics.loaded.labels(self.name, str(version)).set(1)
        self.metrics.canary_weight.labels(self.name).set(self.weight if self.canary else 0)

    async def close(self) -> None:
        """Finish in-flight work and stop every batcher."""
        for version in list(self.slots):
            self._retire(version)
        self.production = self.canary = self.shadow = None
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
        if self._shadow_executor is not None:
            self._shadow_executor.shutdown(wait=False, cancel_futures=True)
            self._shadow_executor = None

    # -- routing -------------------------------------------------------------------
    def route(
        self, *, version: int | None = None, label: str | None = None, key: str | None = None
    ) -> Slot:
        """The slot that answers: an explicit version or label, else the canary split."""
        if version is not None:
            slot = self.slots.get(version)
            if slot is None or version not in (self.production, self.canary):
                raise NotFoundError(
                    f"model '{self.name}' version {version} is not served; served versions: "
                    f"{self.served_versions() or 'none'}"
                )
            return slot
        if label is not None:
            target = {"production": self.production, "canary": self.canary}.get(label)
            if target is None:
                raise NotFoundError(
                    f"model '{self.name}' has no served version labelled {label!r}; labels: "
                    + ", ".join(k for k, v in self.labels().items())
                )
            return self.slots[target]
        if self.production is None:
            failure = "; ".join(f"version {v}: {m}" for v, m in self.failures.items())
            raise ModelUnavailableError(
                f"model '{self.name}' has no production version loaded yet"
                + (f" ({failure})" if failure else "")
                + "; retry shortly or deploy a version"
            )
        if self.canary is not None and self.weight > 0:
            bucket = bucket_of(key) if key else random.randrange(100)
            if bucket < self.weight:
                return self.slots[self.canary]
        return self.slots[self.production]

    def served_versions(self) -> list[int]:
        return sorted(v for v in (self.production, self.canary) if v is not None)

    def knows(self, version: int) -> bool:
        """Whether ``version`` is served, loading or failed to load here (else it is unknown)."""
        return (
            version in self.served_versions()
            or version in self.loading
            or (version in self.failures)
        )

    def labels(self) -> dict[str, int]:
        out = {}
        if self.production is not None:
            out["production"] = self.production
        if self.canary is not None:
            out["canary"] = self.canary
        return out

    def model_for_metadata(self, version: int | None = None) -> ServedModel:
        """The model whose signature describes ``version`` (default production)."""
        return self.route(version=version).model if version is not None else self._production()

    def _production(self) -> ServedModel:
        if self.production is None:
            raise ModelUnavailableError(
                f"model '{self.name}' has no production version loaded yet; retry shortly"
            )
        return self.slots[self.production].model

    def why_not_ready(self) -> dict[str, Any] | None:
        """None while ready; else the production wanted and why nothing answers for it.

        For ``/healthz`` and the admin status: ``{"wanted": 2, "reason": "..."}``, the
        reason naming each version tried and its load or verification error.
        """
        if self.ready:
            return None
        wanted = self.wanted
        if self.revision is None:
            reason = (
                f"the deployment record cannot be read ({self.source_error})"
                if self.source_error is not None
                else "the deployment record has not been read yet"
            )
        elif wanted is None:
            reason = (
                f"no production version is deployed; deploy one (mooring models deploy "
                f"{self.name} --production VERSION)"
            )
        else:
            earlier = [v for v in reversed(self.previous) if v != wanted]
            said = [
                f"version {v}: {self.failures[v]}" for v in (wanted, *earlier) if v in self.failures
            ]
            if wanted not in self.failures and wanted not in self.loading:
                said.insert(0, f"version {wanted} is not loaded")
            fix = (
                f"deploy a version that verifies (mooring models deploy {self.name} "
                "--production VERSION)"
            )
            if self.loading:
                said.append("loading version " + ", ".join(str(v) for v in sorted(self.loading)))
            elif earlier:
                said.append(f"no earlier production loads either; {fix}")
            else:
                said.append(
                    f"the deployment record names no earlier production to fall back to; {fix}"
                )
            reason = "; ".join(said)
        return {"wanted": wanted, "reason": reason}

    def _shadow_status(self) -> dict[str, Any] | None:
        wanted = self.shadow_wanted
        if wanted is None:
            return None
        return {
            "version": wanted,
            "loaded": self.shadow == wanted,
            "rate": self.shadow_rate,
            "error": None if self.shadow == wanted else self.shadow_error,
            "loading": wanted in self.loading,
        }

    def status(self) -> dict[str, Any]:
        """What is served, what failed: for status endpoints and the admin API."""
        return {
            "name": self.name,
            "ready": self.ready,
            "revision": self.revision,
            "production": self.production,
            "canary": self.canary,
            "canary_weight": self.weight,
            "shadow": self._shadow_status(),
            "loaded": sorted(self.slots),
            "failures": {str(v): m for v, m in sorted(self.failures.items())},
            "fallback": self.fallback,
            "not_ready": self.why_not_ready(),
            "contracts": {
                str(v): (
                    slot.model.contract.describe()
                    if slot.model.contract is not None
                    else {"source": None, "error": self.contract_errors.get(v)}
                )
                for v, slot in sorted(self.slots.items())
            },
            "registry": {
                "ok": self.source_error is None,
                "error": self.source_error,
                "failing_since": self.source_error_since,
                "last_read": self.source_checked_at,
            },
        }
