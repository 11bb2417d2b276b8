"""Prometheus text: mooring's metric names, the one reader of an exposition, histograms.

The server registers its metrics under these names (``serving/_metrics.py``), the
monitor's drift and live-quality gauges too (``monitoring/_gauges.py``); the monitor's
scrape, the dashboard's live page and the pipeline's serving cost read them back with
:func:`read_samples` and turn latency buckets into :class:`Histogram` objects, whose
quantiles are estimated the way Prometheus' ``histogram_quantile`` does.

Examples:
    >>> text = 'mooring_requests_total{model="m",version="1",protocol="v2",status="200"} 4.0'
    >>> [(s.name, s.labels["version"], s.value) for s in read_samples(text)]
    [('mooring_requests_total', '1', 4.0)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "BATCH_SIZE",
    "CANARY_WEIGHT",
    "CONTRACT_VIOLATIONS",
    "DRIFT_CHECKED",
    "DRIFT_DISTANCE",
    "DRIFT_FEATURE_DRIFTED",
    "DRIFT_STATUS",
    "DRIFT_WINDOW_ROWS",
    "EXPLANATIONS",
    "INFERENCE_LATENCY",
    "LATENCY_BUCKETS",
    "LIVE_LABELS",
    "LIVE_METRIC",
    "MODEL_FALLBACK",
    "MODEL_LOADED",
    "MODEL_LOAD_FAILURES",
    "MODEL_LOAD_SECONDS",
    "PREDICTION_LOG_DROPPED",
    "PREDICTION_LOG_ROWS",
    "QUEUE_DEPTH",
    "REGISTRY_ERRORS",
    "REGISTRY_UP",
    "REQUESTS",
    "REQUESTS_IN_FLIGHT",
    "REQUESTS_REFUSED",
    "REQUEST_LATENCY",
    "ROUTED_CLIENT_ERRORS",
    "SHADOW_DROPPED",
    "SHADOW_LATENCY",
    "SHADOW_REQUESTS",
    "Histogram",
    "Sample",
    "bucket",
    "read_samples",
    "sum_of",
    "total",
]

# The latency histograms' bounds (seconds); the first sit below 1 ms because batched tabular
# inference lives there. The generated Prometheus rules read the same bounds (mooring.ops).
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

# Counters are registered under these names; the exposition adds ``_total``.
REQUESTS = "mooring_requests"
REQUESTS_REFUSED = "mooring_requests_refused"
# 4xx answers to requests the canary split routed (not pinned to a version), by version.
ROUTED_CLIENT_ERRORS = "mooring_routed_client_errors"
MODEL_LOAD_FAILURES = "mooring_model_load_failures"
CONTRACT_VIOLATIONS = "mooring_contract_violations"
REGISTRY_ERRORS = "mooring_registry_errors"
PREDICTION_LOG_ROWS = "mooring_prediction_log_rows"
PREDICTION_LOG_DROPPED = "mooring_prediction_log_dropped"
SHADOW_REQUESTS = "mooring_shadow_requests"  # {model, version, outcome: ok|error|timeout}
SHADOW_DROPPED = "mooring_shadow_dropped"  # {model, reason: capacity|busy}
# Explanations answered (:explain), by model, version, protocol and status: never counted
# in mooring_requests or its latency, which the rollout's guardrails read.
EXPLANATIONS = "mooring_explanations"
# Histograms (exposed as ``_bucket``, ``_sum`` and ``_count``).
REQUEST_LATENCY = "mooring_request_latency_seconds"
INFERENCE_LATENCY = "mooring_inference_latency_seconds"
BATCH_SIZE = "mooring_batch_size_rows"
MODEL_LOAD_SECONDS = "mooring_model_load_seconds"
SHADOW_LATENCY = "mooring_shadow_latency_seconds"  # a shadow copy, handed over → outputs
# Gauges.
QUEUE_DEPTH = "mooring_queue_depth"
REQUESTS_IN_FLIGHT = "mooring_requests_in_flight"
MODEL_LOADED = "mooring_model_loaded"
MODEL_FALLBACK = "mooring_model_fallback"
CANARY_WEIGHT = "mooring_canary_weight"
REGISTRY_UP = "mooring_registry_up"
DRIFT_DISTANCE = "mooring_drift_distance"
DRIFT_FEATURE_DRIFTED = "mooring_drift_feature_drifted"
DRIFT_STATUS = "mooring_drift_status"
DRIFT_WINDOW_ROWS = "mooring_drift_window_rows"
DRIFT_CHECKED = "mooring_drift_checked_timestamp_seconds"
LIVE_METRIC = "mooring_live_metric"
LIVE_LABELS = "mooring_live_labels"


def total(counter: str) -> str:
    """The sample name of a counter (``mooring_requests`` → ``mooring_requests_total``)."""
    return f"{counter}_total"


def bucket(histogram: str) -> str:
    """The sample name of a histogram's buckets."""
    return f"{histogram}_bucket"


def sum_of(histogram: str) -> str:
    """The sample name of a histogram's sum."""
    return f"{histogram}_sum"


class Sample(NamedTuple):
    """One line of an exposition: name, labels and value."""

    name: str
    labels: dict[str, str]
    value: float


def read_samples(texts: str | Iterable[str]) -> Iterator[Sample]:
    """Every sample of one or several Prometheus text expositions (several: replicas)."""
    from prometheus_client.parser import text_string_to_metric_families

    for text in [texts] if isinstance(texts, str) else texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                yield Sample(sample.name, sample.labels, float(sample.value))


@dataclass(frozen=True)
class Histogram:
    """A cumulative Prometheus histogram: upper bounds (the last is +Inf) and counts.

    Examples:
        >>> h = Histogram((0.01, 0.1, math.inf), (90.0, 99.0, 100.0))
        >>> round(h.quantile(0.5), 6), round(h.share_below(0.1), 2)
        (0.005556, 0.99)
    """

    bounds: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def count(self) -> float:
        """Observations in the histogram."""
        return self.counts[-1] if self.counts else 0.0

    def since(self, earlier: Histogram | None) -> Histogram:
        """Observations made after ``earlier`` (all of them after a counter reset)."""
        if earlier is None or earlier.bounds != self.bounds:
            return self
        diff = tuple(c - e for c, e in zip(self.counts, earlier.counts, strict=True))
        if any(d < 0 for d in diff):  # the server restarted: everything here is new
            return self
        return Histogram(self.bounds, diff)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile, interpolated within its bucket as Prometheus'
        ``histogram_quantile`` does; NaN without observations. A quantile that falls in
        the +Inf bucket is reported as the largest finite bound (a lower bound).
        """
        total = self.count
        if total <= 0:
            return math.nan
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.counts, strict=True):
            if cumulative >= rank and cumulative > lower_count:
                if math.isinf(bound):
                    return lower_bound
                share = (rank - lower_count) / (cumulative - lower_count)
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, cumulative
        return lower_bound

    def quantile_bucket(self, q: float) -> tuple[float, float]:
        """The bounds ``(lower, upper)`` of the bucket holding the ``q`` quantile.

        All a histogram knows for sure: the quantile lies within them. ``upper`` is
        ``inf`` in the +Inf bucket; ``(nan, nan)`` without observations.

        >>> Histogram((0.01, 0.05, math.inf), (90.0, 99.0, 100.0)).quantile_bucket(0.99)
        (0.01, 0.05)
        """
        total = self.count
        if total <= 0:
            return math.nan, math.nan
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.counts, strict=True):
            if cumulative >= rank and cumulative > lower_count:
                return lower_bound, bound
            lower_bound, lower_count = bound, cumulative
        return lower_bound, math.inf

    def share_below(self, threshold: float) -> float:
        """Share of observations at or below ``threshold`` (linear within its bucket)."""
        total = self.count
        if total <= 0:
            return math.nan
        return self.count_below(threshold) / total

    def count_below(self, threshold: float) -> float:
        """Observations at or below ``threshold`` (linear within its bucket).

        A count, not ``share_below × count``: counters sampled over time must never
        seem to fall, and a share multiplied back can come out one rounding step lower.

        >>> Histogram((0.01, 0.1, math.inf), (90.0, 99.0, 100.0)).count_below(0.055)
        94.5
        """
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.counts, strict=True):
            if threshold <= bound:
                if math.isinf(bound):
                    return lower_count
                width = bound - lower_bound
                share = (threshold - lower_bound) / width if width > 0 else 1.0
                return lower_count + (cumulative - lower_count) * share
            lower_bound, lower_count = bound, cumulative
        return self.count

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (+Inf written as the string 'inf')."""
        return {"bounds": [_inf_out(b) for b in self.bounds], "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(float(b) for b in data["bounds"]), tuple(float(c) for c in data["counts"]))

    @classmethod
    def from_buckets(cls, buckets: Mapping[float, float]) -> Histogram:
        """From Prometheus' ``{le: cumulative count}`` samples, in any order."""
        bounds = tuple(sorted(buckets))
        return cls(bounds, tuple(buckets[b] for b in bounds))


def _inf_out(value: float) -> float | str:
    return "inf" if math.isinf(value) else value
