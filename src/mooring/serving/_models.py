"""The versions being served for one model name: load, warm up, swap, drain, unload.

:class:`ModelManager` only orchestrates; the decisions are pure functions. Each version
it touches has a :class:`~mooring.serving._harness.Harness` (loading, warming, ready,
draining, unloaded, failed). To apply a deployment it asks
:func:`~mooring.serving._aspired.plan` what to load next, loads and warms that version
in worker threads while the current ones keep answering, and asks again until the
:class:`~mooring.serving._aspired.Aspired` versions are final. Each answer is published
as one record (one step on the event loop), so no request sees a half-applied
deployment; :func:`~mooring.serving._router.answering` reads it per request. A replaced
version drains its in-flight requests, then unloads.

What the plan decides, and :meth:`ModelManager.status` reports: a version that fails
to load or verify is never served, and the previous production stays; a server with
nothing loaded yet (start-up) falls back to the newest earlier production that loads
(:attr:`ModelManager.fallback`); with none, :meth:`ModelManager.why_not_ready` says why
it is not ready. Every version runs its batches on threads of its own
(``[serving] inference_threads``; a shadow, one), so one version's slow or failing call
never holds another's batches: a model that spins for seconds on one input leaves the
other models of the server, and its own canary or production, answering in
milliseconds (the worker's TensorFlow inter-op pool has a thread more than a version's
batches for that, :func:`~mooring.serving._workers.tf_thread_env`). A shadow version is
loaded after production and canary are in place; it is never routed to
(:class:`~mooring.serving._shadow.ShadowCopier` hands it copies), and a shadow that fails
to load changes nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mooring.config import ServingConfig
from mooring.errors import MooringError, NotFoundError
from mooring.formats._model import role_outputs
from mooring.formats._tensors import summarize_tensors
from mooring.registry import Deployment
from mooring.serving._aspired import NOTHING, Aspired, Load, plan
from mooring.serving._batcher import Batcher, Columns, OnOutputs, Outputs
from mooring.serving._contract import InputContract
from mooring.serving._errors import ModelUnavailableError
from mooring.serving._harness import Harness, HarnessState, Slot
from mooring.serving._loaded import ServedModel, load_served_model
from mooring.serving._log import PredictionLog
from mooring.serving._memory import MemoryCeiling, out_of_memory
from mooring.serving._metrics import ServingMetrics
from mooring.serving._router import answering, bucket_of
from mooring.serving._sources import ModelSource

__all__ = ["ModelManager", "RecordReads", "Slot", "bucket_of"]

log = logging.getLogger("mooring.serving")

_UNDER_WAY = (HarnessState.LOADING, HarnessState.WARMING)


@dataclass(frozen=True)
class RecordReads:
    """How reading the deployment record goes: the last error and since when (None while
    it answers), and when it last answered."""

    error: str | None = None
    failing_since: float | None = None
    last_read: float | None = None


def _message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, MooringError) else f"{type(exc).__name__}: {exc}"


class ModelManager:
    """Loaded versions of one model: their harnesses, and the aspired versions that route.

    ``idle`` says when the server is otherwise idle (one request in flight), so a lone
    request may run on the event loop (see :class:`~mooring.serving._batcher.Batcher`);
    None: always on the version's own threads. ``prediction_log``: where the batches of the versions
    that answer log their rows (None: not logged).
    """

    def __init__(
        self,
        source: ModelSource,
        cfg: ServingConfig,
        metrics: ServingMetrics,
        prediction_log: PredictionLog | None = None,
        *,
        idle: Callable[[], bool] | None = None,
        memory: MemoryCeiling | None = None,
    ) -> None:
        self.source = source
        #: The process's memory ceiling: re-armed after each load, checked after each run.
        self.memory = memory
        self.name = source.name
        self.cfg = cfg
        self.metrics = metrics
        self.prediction_log = prediction_log
        self.idle = idle
        #: Which version answers as what; replaced whole, never changed in place.
        self.aspired: Aspired = NOTHING
        #: The slots of the ready versions, by version (what the aspired versions name).
        self.slots: dict[int, Slot] = {}
        #: The deployment being (or last) applied, and the revision last applied in full.
        self.deployment: Deployment | None = None
        self.revision: int | None = None
        self.reads = RecordReads()
        self._harnesses: dict[int, Harness] = {}  # loading, ready or failed; by version
        self._lock = asyncio.Lock()
        # Versions draining before they unload, and versions being packed (_pack).
        self._background: set[asyncio.Task[None]] = set()

    # -- what serves (read from the aspired versions and the harnesses) --------------
    @property
    def production(self) -> int | None:
        return self.aspired.production

    @property
    def canary(self) -> int | None:
        return self.aspired.canary

    @property
    def weight(self) -> int:
        return self.aspired.weight

    @property
    def shadow(self) -> int | None:
        """The loaded shadow version (None: none, or it failed to load)."""
        return self.aspired.shadow

    @property
    def shadow_rate(self) -> float:
        return self.aspired.shadow_rate

    @property
    def wanted(self) -> int | None:
        """The production the deployment record names."""
        return None if self.deployment is None else self.deployment.production

    @property
    def previous(self) -> tuple[int, ...]:
        """The record's earlier productions, newest last."""
        return () if self.deployment is None else self.deployment.previous

    @property
    def shadow_wanted(self) -> int | None:
        return None if self.deployment is None else self.deployment.shadow

    @property
    def failures(self) -> dict[int, str]:
        """Each version that failed to load or verify to answer, and why (a shadow's
        failure is reported apart, in :meth:`status`)."""
        return {
            v: h.error for v, h in self._harnesses.items() if h.error is not None and not h.shadow
        }

    def harness(self, version: int) -> Harness | None:
        """``version``'s harness while it loads, answers or failed (None: unknown here, or
        retired)."""
        return self._harnesses.get(version)

    @property
    def loading(self) -> set[int]:
        return {v for v, h in self._harnesses.items() if h.state in _UNDER_WAY}

    @property
    def source_error(self) -> str | None:
        """Why the deployment record cannot be read (None while it can)."""
        return self.reads.error

    @property
    def fallback(self) -> dict[str, Any] | None:
        """Set while the deployed production cannot be served and another version
        answers: ``{"wanted", "serving", "reason"}``."""
        wanted = self.aspired.fallback_for
        if wanted is None:
            return None
        reason = self.failures.get(wanted, "not loaded")
        return {"wanted": wanted, "serving": self.aspired.production, "reason": reason}

    @property
    def ready(self) -> bool:
        """True once the production version is loaded and warmed."""
        production = self.aspired.production
        return production is not None and production in self.slots

    @property
    def settled(self) -> bool:
        """Ready, or not ready for a reason :meth:`why_not_ready` can give: the deployment
        was applied (or could not be read) and nothing is loading."""
        applied = self.revision is not None or self.reads.error is not None
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
            reads = self.reads
            since = reads.failing_since if reads.error is not None else time.time()
            self.reads = RecordReads(_message_of_record(exc), since, reads.last_read)
            self.metrics.registry_up.labels(self.name).set(0)
            self.metrics.registry_errors.labels(self.name).inc()
            raise
        if self.reads.error is not None:
            log.info("model %s: the deployment record is readable again", self.name)
        self.reads = RecordReads(last_read=time.time())
        self.metrics.registry_up.labels(self.name).set(1)
        if not force and deployment.revision == self.revision:
            return False
        await self.apply(deployment)
        return True

    async def apply(self, deployment: Deployment) -> None:
        """Load what ``deployment`` needs, publishing each step the plan takes, then
        retire the versions it no longer names."""
        async with self._lock:
            self.deployment = deployment
            tried: set[int] = set()
            while True:
                states = {v: h.state for v, h in self._harnesses.items()}
                step = plan(deployment, states, current=self.aspired, tried=tried)
                self._publish(step.aspired)
                if step.load is None:
                    break
                tried.add(step.load.version)
                await self._load(step.load)
            aspired = step.aspired
            if aspired.fallback_for is not None:
                log.error(
                    "model %s: production version %s cannot be served; version %s answers "
                    "instead", self.name, aspired.fallback_for, aspired.production,
                )  # fmt: skip
            self.revision = deployment.revision
            keep = aspired.versions
            for version in [v for v in self.slots if v not in keep]:
                self._retire(version)
            for version in self.slots:
                self.metrics.loaded.labels(self.name, str(version)).set(1)

    def _publish(self, aspired: Aspired) -> None:
        """Point requests at ``aspired`` (one assignment: a request sees all of it or none)."""
        self.aspired = aspired
        self.metrics.fallback.labels(self.name).set(1 if aspired.fallback_for is not None else 0)
        self.metrics.canary_weight.labels(self.name).set(aspired.weight if aspired.canary else 0)

    def shadow_slot(self) -> Slot | None:
        """The loaded shadow version's slot, if any."""
        shadow = self.aspired.shadow
        return None if shadow is None else self.slots.get(shadow)

    async def _load(self, load: Load) -> None:
        """Load, verify and warm ``load.version`` in worker threads; its harness says how
        it went (ready, with its slot, or failed, with the error)."""
        version, shadow = load
        start = time.perf_counter()
        before = self._harnesses.get(version)
        kept = before.error if before is not None and before.shadow == shadow else None
        harness = Harness(version, shadow=shadow, error=kept)
        self._harnesses[version] = harness
        # Loaded without the memory ceiling, which is set again from the new size after.
        bounded = self.memory.loading() if self.memory is not None else contextlib.nullcontext()
        try:
            with bounded:
                path = await asyncio.to_thread(self.source.fetch, version)
                threshold = await asyncio.to_thread(self._threshold, version)
                # Packed once it is ready (_pack), not before: off the cold start.
                model = await asyncio.to_thread(
                    load_served_model, self.name, version, path, threshold=threshold
                )
                model.contract = await asyncio.to_thread(self._contract, harness, model)
                harness.warming()
                await asyncio.to_thread(
                    model.warm_up, self.cfg.warmup_requests, self.cfg.max_batch_size, self.cfg.xla
                )
        except asyncio.CancelledError:  # the server stops: as if the load never started
            if before is None:
                del self._harnesses[version]
            else:
                self._harnesses[version] = before
            raise
        except Exception as exc:
            message = _message(exc)
            harness.failed(message)
            self.metrics.load_failures.labels(self.name, str(version)).inc()
            log.error("model %s version %s not served: %s", self.name, version, message)
            return
        labels = (self.name, str(version))
        threads = 1 if shadow else self.cfg.inference_threads
        batcher = Batcher(
            self._timed(model),
            max_batch_size=self.cfg.max_batch_size,
            batch_timeout_s=self.cfg.batch_timeout_ms / 1000.0,
            max_queue=self.cfg.shadow_max_in_flight if shadow else self.cfg.max_queue,
            executor=ThreadPoolExecutor(threads, thread_name_prefix=f"infer-{version}"),
            workers=threads,
            on_batch=self.metrics.batch_size.labels(*labels).observe,
            on_depth=self.metrics.queue_depth.labels(*labels).set,
            inline_when=None if shadow else self.idle,
            on_outputs=None if shadow else self._logged(version, model),
        )
        await batcher.start()
        slot = Slot(model, batcher)
        harness.ready(slot)
        self.slots[version] = slot
        packing = asyncio.create_task(self._pack(model))
        self._background.add(packing)
        packing.add_done_callback(self._background.discard)
        self.metrics.load_seconds.labels(self.name).observe(time.perf_counter() - start)
        plan = model.xla
        xla = f"; XLA {plan.reason}" if plan is not None and plan.used else ""
        log.info("model %s version %s loaded and warmed%s", self.name, version, xla)

    async def _pack(self, model: ServedModel) -> None:
        """Call ``model``'s signature with one tensor per dtype from now on, where that
        answers as its keyword call does (:mod:`mooring.formats._packed`: a third less
        per one-row call on Adult). Done once the version answers, in a worker thread,
        so the tracing and the checking calls (about 0.15 s) do not delay its start;
        until then its calls take a tensor per column."""
        try:
            packed = await asyncio.to_thread(model.folder.pack)
        except Exception as exc:  # the calls stay as they were: slower, not wrong
            log.warning("model %s version %s: calls not packed: %s", self.name, model.version, exc)
            return
        log.debug("model %s version %s: calls packed: %s", self.name, model.version, packed)

    def _threshold(self, version: int) -> float | None:
        """The version's registered operating threshold, when the source gives one
        (``operating_threshold`` is optional in :class:`ModelSource`)."""
        ask = getattr(self.source, "operating_threshold", None)
        return None if ask is None else ask(version)

    def _contract(self, harness: Harness, model: ServedModel) -> InputContract | None:
        """The version's contract; a version without one (or with a broken one) is served
        with the signature checks only, and status says why."""
        try:
            found = self.source.contract_schema(model.version)
        except Exception as exc:
            harness.contract_error = _message(exc)
            log.warning(
                "model %s version %s: no contract checks (%s)",
                self.name,
                model.version,
                harness.contract_error,
            )
            return None
        if found is None:
            return None
        schema, origin = found
        return InputContract.from_schema(schema, model.inputs, source=origin)

    def _logged(self, version: int, model: ServedModel) -> OnOutputs | None:
        """What logs a batch of ``version``'s answers: one append to the prediction log
        (a tensor model's inputs as a summary per row, :func:`summarize_tensors`; an
        imported model's outputs also under their roles, :func:`role_outputs`)."""
        plog = self.prediction_log
        if plog is None:
            return None
        name = self.name
        columnar = model.columnar
        roles, task = model.folder.roles, model.folder.task

        def record(tags: list[Any], counts: list[int], columns: Columns, outputs: Outputs) -> None:
            if not columnar:
                columns = summarize_tensors(columns)
            if roles:
                outputs = role_outputs(roles, task, outputs)
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
        memory = self.memory
        if memory is None:

            def predict(columns: Columns) -> Outputs:
                with histogram.time():
                    return model.predict(columns)

            return predict

        def bounded(columns: Columns) -> Outputs:
            # A run stopped at the memory ceiling is answered 507 naming it; one that
            # kept too much of it retires the worker (mooring.serving._memory).
            start = time.perf_counter()
            try:
                with histogram.time():
                    return model.predict(columns)
            except Exception as exc:
                if memory.armed and out_of_memory(exc):
                    raise memory.refusal() from None
                raise
            finally:
                memory.after_run(time.perf_counter() - start)

        return bounded

    def _retire(self, version: int) -> None:
        """Take ``version`` off the routes now; it unloads once its requests have finished."""
        harness = self._harnesses.pop(version)
        del self.slots[version]
        slot = harness.draining()
        self.metrics.loaded.labels(self.name, str(version)).set(0)
        task = asyncio.create_task(self._drain(harness, slot))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drain(self, harness: Harness, slot: Slot) -> None:
        while slot.inflight:
            await asyncio.sleep(0.01)
        await slot.batcher.stop()
        slot.batcher.executor.shutdown(wait=False)
        harness.unloaded()
        if self.memory is not None:
            self.memory.arm()
        log.info("model %s version %s unloaded", self.name, harness.version)

    async def close(self) -> None:
        """Finish in-flight work and stop every batcher."""
        self.aspired = NOTHING
        for version in list(self.slots):
            self._retire(version)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # -- routing -------------------------------------------------------------------
    def route(
        self, *, version: int | None = None, label: str | None = None, key: str | None = None
    ) -> Slot:
        """The slot that answers: an explicit version or label, else the canary split."""
        target = answering(self.aspired, version, label, key)  # positional: the cheaper call
        if target is None:
            raise self._not_answering(version, label)
        return self.slots[target]

    def _not_answering(self, version: int | None, label: str | None) -> MooringError:
        if version is not None:
            return NotFoundError(
                f"model '{self.name}' version {version} is not served; served versions: "
                f"{self.served_versions() or 'none'}"
            )
        if label is not None:
            return NotFoundError(
                f"model '{self.name}' has no served version labelled {label!r}; labels: "
                + ", ".join(self.labels())
            )
        failure = "; ".join(f"version {v}: {m}" for v, m in self.failures.items())
        return ModelUnavailableError(
            f"model '{self.name}' has no production version loaded yet"
            + (f" ({failure})" if failure else "")
            + "; retry shortly or deploy a version"
        )

    def served_versions(self) -> list[int]:
        return sorted(v for v in (self.aspired.production, self.aspired.canary) if v is not None)

    def knows(self, version: int) -> bool:
        """Whether ``version`` is served, loading or failed to load here (else it is unknown)."""
        return (
            version in self.served_versions()
            or version in self.loading
            or (version in self.failures)
        )

    def labels(self) -> dict[str, int]:
        out = {}
        if self.aspired.production is not None:
            out["production"] = self.aspired.production
        if self.aspired.canary is not None:
            out["canary"] = self.aspired.canary
        return out

    def model_for_metadata(self, version: int | None = None) -> ServedModel:
        """The model whose signature describes ``version`` (default production)."""
        return self.route(version=version).model if version is not None else self._production()

    def _production(self) -> ServedModel:
        production = self.aspired.production
        if production is None:
            raise ModelUnavailableError(
                f"model '{self.name}' has no production version loaded yet; retry shortly"
            )
        return self.slots[production].model

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
                f"the deployment record cannot be read ({self.reads.error})"
                if self.reads.error is not None
                else "the deployment record has not been read yet"
            )
        elif wanted is None:
            reason = (
                f"no production version is deployed; deploy one (mooring models deploy "
                f"{self.name} --production VERSION)"
            )
        else:
            failures, loading = self.failures, self.loading
            earlier = [v for v in reversed(self.previous) if v != wanted]
            said = [f"version {v}: {failures[v]}" for v in (wanted, *earlier) if v in failures]
            if wanted not in failures and wanted not in loading:
                said.insert(0, f"version {wanted} is not loaded")
            fix = (
                f"deploy a version that verifies (mooring models deploy {self.name} "
                "--production VERSION)"
            )
            if loading:
                said.append("loading version " + ", ".join(str(v) for v in sorted(loading)))
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
        loaded = self.aspired.shadow == wanted
        harness = self.harness(wanted)
        error = harness.error if harness is not None and harness.shadow and not loaded else None
        return {
            "version": wanted,
            "loaded": loaded,
            "rate": self.aspired.shadow_rate,
            "error": error,
            "loading": harness is not None and harness.state in _UNDER_WAY,
        }

    def status(self) -> dict[str, Any]:
        """What is served, what failed: for status endpoints and the admin API."""
        aspired = self.aspired
        return {
            "name": self.name,
            "ready": self.ready,
            "revision": self.revision,
            "production": aspired.production,
            "canary": aspired.canary,
            "canary_weight": aspired.weight,
            "shadow": self._shadow_status(),
            "loaded": sorted(self.slots),
            "failures": {str(v): m for v, m in sorted(self.failures.items())},
            "fallback": self.fallback,
            "not_ready": self.why_not_ready(),
            "contracts": {
                str(v): (
                    slot.model.contract.describe()
                    if slot.model.contract is not None
                    else {"source": None, "error": self._contract_error(v)}
                )
                for v, slot in sorted(self.slots.items())
            },
            "registry": {
                "ok": self.reads.error is None,
                "error": self.reads.error,
                "failing_since": self.reads.failing_since,
                "last_read": self.reads.last_read,
            },
        }

    def _contract_error(self, version: int) -> str | None:
        harness = self.harness(version)
        return None if harness is None else harness.contract_error


def _message_of_record(exc: Exception) -> str:
    """An unreadable deployment record's error, as status and ``/healthz`` show it."""
    return str(exc) if isinstance(exc, MooringError) else repr(exc)
