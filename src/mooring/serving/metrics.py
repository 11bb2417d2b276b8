"""Prometheus metrics of one server, on its own registry (several apps can share a process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "ServingMetrics"]

# Seconds; the first buckets sit below 1 ms because batched tabular inference lives there.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServingMetrics:
    """Requests, latency, batches, queue depth, loads, contract violations, registry health."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
        r = self.registry
        self.requests = Counter(
            "mooring_requests",
            "Requests answered, by model, version, protocol and HTTP status.",
            ["model", "version", "protocol", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mooring_request_latency_seconds",
            "Time from request received to response ready, by the version that answered "
            '("-": refused before a version was chosen).',
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "mooring_inference_latency_seconds",
            "Time of one batch in the model.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "mooring_batch_size_rows",
            "Rows per executed batch.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "mooring_queue_depth",
            "Requests waiting for a batch.",
            ["model", "version"],
            registry=r,
        )
        self.loaded = Gauge(
            "mooring_model_loaded",
            "1 while a version is loaded and serving.",
            ["model", "version"],
            registry=r,
        )
        self.canary_weight = Gauge(
            "mooring_canary_weight",
            "Percent of unkeyed traffic sent to the canary version.",
            ["model"],
            registry=r,
        )
        self.load_failures = Counter(
            "mooring_model_load_failures",
            "Versions that failed to load, verify or warm up.",
            ["model", "version"],
            registry=r,
        )
        self.load_seconds = Histogram(
            "mooring_model_load_seconds",
            "Time to load and warm up a version.",
            ["model"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
            registry=r,
        )
        self.contract_violations = Counter(
            "mooring_contract_violations",
            "Input values outside the version's contract (kind: out_of_range, unseen_category).",
            ["model", "version", "input", "kind"],
            registry=r,
        )
        self.registry_up = Gauge(
            "mooring_registry_up",
            "1 while the deployment record can be read; 0 while the registry is unavailable.",
            ["model"],
            registry=r,
        )
        self.registry_errors = Counter(
            "mooring_registry_errors",
            "Failed reads of the deployment record (the loaded versions keep serving).",
            ["model"],
            registry=r,
        )
        self.log_written = Counter(
            "mooring_prediction_log_rows", "Rows written to the prediction log.", registry=r
        )
        self.log_dropped = Counter(
            "mooring_prediction_log_dropped",
            "Rows dropped because the prediction log buffer was full or a write failed.",
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

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
