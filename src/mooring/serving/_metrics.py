"""Prometheus metrics of one server, on its own registry (several apps can share a process).

Beside mooring's own metrics the registry holds prometheus-client's process collector
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ...; Linux only), so
dashboards can show a server's memory and its CPU time per answer.

In a worker of ``mooring serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set),
prometheus-client's multiprocess mode keeps every value in a file of that folder, and
:meth:`ServingMetrics.render` sums all workers' files: counters and histograms add up
(a dead worker's included, so nothing goes back when one is replaced), each gauge
merges as its meaning says (queue depth and in-flight requests add up, a version is
loaded when any live worker has it, the registry is up when every worker reads it).
The process collector cannot run there, so each worker adds its own CPU seconds (a
counter) and memory (a gauge summed over live workers) under the same names.

A scrape never fails as a whole (:func:`exposition`): a collector that raises, or a
family that cannot be written, is logged and left out, and the rest is answered. In
multiprocess mode a worker's file that cannot be read (one another worker has just
created and not yet sized: empty, so prometheus-client's reader fails on its header) is
left out of that scrape the same way.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from mooring.formats._metrics import (
    BATCH_SIZE,
    CANARY_WEIGHT,
    CONTRACT_VIOLATIONS,
    EXPLANATIONS,
    INFERENCE_LATENCY,
    LATENCY_BUCKETS,
    MODEL_FALLBACK,
    MODEL_LOAD_FAILURES,
    MODEL_LOAD_SECONDS,
    MODEL_LOADED,
    PREDICTION_LOG_DROPPED,
    PREDICTION_LOG_ROWS,
    QUEUE_DEPTH,
    REGISTRY_ERRORS,
    REGISTRY_UP,
    REQUEST_LATENCY,
    REQUESTS,
    REQUESTS_IN_FLIGHT,
    REQUESTS_REFUSED,
    ROUTED_CLIENT_ERRORS,
    SHADOW_DROPPED,
    SHADOW_LATENCY,
    SHADOW_REQUESTS,
)
from mooring.serving._pages import resident_bytes
from mooring.serving._worker_env import MULTIPROC_ENV

__all__ = [
    "CONTENT_TYPE_LATEST",
    "LATENCY_BUCKETS",
    "GuardedRegistry",
    "ServingMetrics",
    "exposition",
    "render_multiprocess",
]

log = logging.getLogger("mooring.serving.metrics")


class _Family:
    """One metric family as a collector, so each family is written on its own."""

    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterable[Metric]:
        return [self.family]


def exposition(collectors: Iterable[Collector]) -> bytes:
    """The text exposition of ``collectors``' families; one that fails is logged and left out.

    Why: ``generate_latest`` runs every collector and writes every family in one go, so
    one that raises (a callback, a file being written) would answer the whole scrape
    with a 500, and a dashboard would lose every metric for one. Here each collector is
    run, and each of its families written, on its own.

    >>> registry = CollectorRegistry()
    >>> _ = Counter("served", "Rows served.", registry=registry)
    >>> exposition([registry]).decode().splitlines()[2]
    'served_total 0.0'
    """
    parts: list[bytes] = []
    for collector in collectors:
        try:
            families = list(collector.collect())
        except Exception:
            log.exception("a metrics collector failed; its families are left out of this scrape")
            continue
        for family in families:
            try:
                parts.append(generate_latest(_Family(family)))
            except Exception:
                name = getattr(family, "name", "?")
                log.exception(
                    "metric family %s could not be written; left out of this scrape", name
                )
    return b"".join(parts)


class GuardedRegistry(CollectorRegistry):
    """A registry whose ``collect`` runs each collector on its own and skips (and logs) one
    that raises, instead of failing every family with it (see :func:`exposition`)."""

    def __init__(self) -> None:
        super().__init__()
        self._guarded_lock = threading.Lock()
        self._guarded: list[Collector] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        with self._guarded_lock:
            self._guarded.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        with self._guarded_lock:
            self._guarded.remove(collector)

    def collectors(self) -> list[Collector]:
        """The registered collectors, in registration order (a copy)."""
        with self._guarded_lock:
            return list(self._guarded)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors():
            try:
                families = list(collector.collect())
            except Exception:
                log.exception("a metrics collector failed; its families are left out")
                continue
            yield from families


class _Files:
    """prometheus-client's multiprocess merge of the files that can be read now."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = str(folder)

    def collect(self) -> Iterable[Metric]:
        files = sorted(glob.glob(os.path.join(self.folder, "*.db")))
        try:
            return _merge(files)
        except Exception:
            readable = []
            for path in files:
                try:
                    _merge([path])
                except FileNotFoundError:
                    continue  # a dead worker's live gauge, removed since the glob
                except Exception:
                    log.warning(
                        "metrics file %s cannot be read now (being written?); left out of "
                        "this scrape",
                        os.path.basename(path),
                    )
                    continue
                readable.append(path)
            return _merge(readable)


def _merge(files: list[str]) -> list[Metric]:
    """prometheus-client's merge of workers' files: counters and histograms summed."""
    from prometheus_client.multiprocess import MultiProcessCollector

    merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
    return list(merged)


def render_multiprocess(folder: Path | str) -> bytes:
    """The text exposition of every process's metrics in ``folder``, merged; a file that
    cannot be read now (another worker's, just created) is left out of this scrape."""
    return exposition([_Files(folder)])


BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServingMetrics:
    """Requests, latency, batches, queue depth, loads, contract violations, registry health."""

    def __init__(self) -> None:
        self.registry = GuardedRegistry()
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
        r = self.registry
        #: The folder of a multiprocess server's metrics (None: this process alone).
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self._cpu_seen = 0.0
        if self.multiprocess_dir is None:
            ProcessCollector(registry=r)  # CPU time and memory of this process (Linux)
        else:
            self.process_cpu = Counter(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds (all workers).",
                registry=r,
            )
            self.process_memory = Gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes (live workers, summed).",
                registry=r,
                multiprocess_mode="livesum",
            )
        self.requests = Counter(
            REQUESTS,
            "Requests answered, by model, version, protocol and HTTP status.",
            ["model", "version", "protocol", "status"],
            registry=r,
        )
        self.explanations = Counter(
            EXPLANATIONS,
            "Explanations answered, by model, version, protocol and HTTP status.",
            ["model", "version", "protocol", "status"],
            registry=r,
        )
        self.latency = Histogram(
            REQUEST_LATENCY,
            "Time from request received to response ready, by the version that answered "
            '("-": refused before a version was chosen).',
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            INFERENCE_LATENCY,
            "Time of one batch in the model.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            BATCH_SIZE,
            "Rows per executed batch.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            QUEUE_DEPTH,
            "Requests waiting for a batch.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.loaded = Gauge(
            MODEL_LOADED,
            "1 while a version is loaded and serving.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.fallback = Gauge(
            MODEL_FALLBACK,
            "1 while the deployed production version cannot be served and an earlier one "
            "answers instead (GET /admin/status and /healthz say which and why).",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.canary_weight = Gauge(
            CANARY_WEIGHT,
            "Percent of unkeyed traffic sent to the canary version.",
            ["model"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.load_failures = Counter(
            MODEL_LOAD_FAILURES,
            "Versions that failed to load, verify or warm up.",
            ["model", "version"],
            registry=r,
        )
        self.load_seconds = Histogram(
            MODEL_LOAD_SECONDS,
            "Time to load and warm up a version.",
            ["model"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
            registry=r,
        )
        self.contract_violations = Counter(
            CONTRACT_VIOLATIONS,
            "Input values outside the version's contract (kind: out_of_range, unseen_category).",
            ["model", "version", "input", "kind"],
            registry=r,
        )
        self.registry_up = Gauge(
            REGISTRY_UP,
            "1 while the deployment record can be read; 0 while the registry is unavailable.",
            ["model"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.registry_errors = Counter(
            REGISTRY_ERRORS,
            "Failed reads of the deployment record (the loaded versions keep serving).",
            ["model"],
            registry=r,
        )
        self.routed_client_errors = Counter(
            ROUTED_CLIENT_ERRORS,
            "4xx answers (but 429 and 499) to requests routed by the canary split, not pinned "
            "to a version: a version that rejects more of them than another rejects traffic "
            "the other answers.",
            ["model", "version"],
            registry=r,
        )
        self.refused = Counter(
            REQUESTS_REFUSED,
            "Requests refused at the door before a model saw them (reason: in_flight, "
            "body_bytes, receiving, connections, read_timeout); not in mooring_requests_total.",
            ["reason"],
            registry=r,
        )
        self.in_flight = Gauge(
            REQUESTS_IN_FLIGHT,
            "Inference requests admitted and not yet answered (the door's count).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.log_written = Counter(
            PREDICTION_LOG_ROWS, "Rows written to the prediction log.", registry=r
        )
        self.log_dropped = Counter(
            PREDICTION_LOG_DROPPED,
            "Rows dropped because the prediction log buffer was full or a write failed.",
            registry=r,
        )
        self.shadow_requests = Counter(
            SHADOW_REQUESTS,
            "Shadow copies of requests run on the shadow version (outcome: ok, error, timeout); "
            "never answers, not in mooring_requests_total.",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.shadow_latency = Histogram(
            SHADOW_LATENCY,
            "Time of a shadow copy from its hand-over to the shadow's outputs (answered ones).",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.shadow_dropped = Counter(
            SHADOW_DROPPED,
            "Shadow copies not run (reason: capacity: too many running; busy: the server is "
            "under load and copies go first).",
            ["model", "reason"],
            registry=r,
        )

    def observe_request(
        self, model: str, version: str, protocol: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and its latency (label children cached: hot path)."""
        key = (model, version, protocol, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(model, version, protocol, str(status)),
                self.latency.labels(model, version, protocol),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def refresh_process(self) -> None:
        """Multiprocess mode: add this worker's CPU time since the last call, set its memory."""
        if self.multiprocess_dir is None:
            return
        cpu = time.process_time()
        self.process_cpu.inc(max(0.0, cpu - self._cpu_seen))
        self._cpu_seen = cpu
        self.process_memory.set(resident_bytes())

    def render(self) -> bytes:
        """The text exposition format (every worker's, summed, in multiprocess mode)."""
        if self.multiprocess_dir is not None:
            self.refresh_process()
            return render_multiprocess(self.multiprocess_dir)
        return exposition(self.registry.collectors())
