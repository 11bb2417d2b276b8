"""Live traffic from the server's Prometheus metrics: rates, error rates, latency percentiles.

The server exposes cumulative counters and histograms. :class:`LiveMetrics` takes a
snapshot whenever the live page asks (at most once per ``min_interval_s``), keeps
the last ``keep`` snapshots, and turns each pair of neighbours into one point:
requests per second, the share of 5xx answers, and latency percentiles estimated
from the histogram buckets observed in that interval (the way Prometheus'
``histogram_quantile`` does). A counter that went down means the server restarted;
the new value then counts as the whole increase.

Examples:
    >>> live = LiveMetrics(lambda: b"")  # doctest: +SKIP
    >>> await live.view("income")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mooring.formats._metrics import (
    CANARY_WEIGHT,
    INFERENCE_LATENCY,
    REQUEST_LATENCY,
    REQUESTS,
    Histogram,
    bucket,
    read_samples,
    total,
)

__all__ = ["QUANTILES", "LiveMetrics", "Snapshot", "bucket_quantile", "parse_metrics", "url_source"]

QUANTILES = (0.5, 0.95, 0.99)

# Per model: version → counts; latency series name → {upper bound: cumulative count}.
Counts = dict[str, float]
Buckets = dict[float, float]


@dataclass
class ModelSnapshot:
    """One model's cumulative counters at one moment."""

    requests: dict[str, Counts] = field(default_factory=dict)
    latency: dict[str, Buckets] = field(default_factory=dict)
    latency_kind: dict[str, str] = field(default_factory=dict)
    canary_weight: float | None = None


@dataclass
class Snapshot:
    """Every model's counters at wall-clock time ``t`` (seconds since the epoch)."""

    t: float
    models: dict[str, ModelSnapshot] = field(default_factory=dict)


def parse_metrics(text: str, t: float | None = None) -> Snapshot:
    """Read the serving metrics out of a Prometheus text exposition.

    Latency per version comes from the request-latency histogram when it carries
    a ``version`` label; otherwise from the per-version inference (batch) histogram,
    with the model's request latency over all versions as the series ``all``.

    >>> snap = parse_metrics('mooring_requests_total{model="m",version="1",'
    ...     'protocol="tfserving",status="200"} 3.0\\n')
    >>> snap.models["m"].requests["1"]["total"]
    3.0
    """
    snap = Snapshot(time.time() if t is None else t)
    request_latency: dict[str, dict[str, Buckets]] = {}
    inference_latency: dict[str, dict[str, Buckets]] = {}
    requests, request_buckets = total(REQUESTS), bucket(REQUEST_LATENCY)
    latency_buckets = (request_buckets, bucket(INFERENCE_LATENCY))
    for name, labels, value in read_samples(text):
        model = labels.get("model")
        if model is None:
            continue
        entry = snap.models.setdefault(model, ModelSnapshot())
        if name == requests:
            version = labels.get("version", "-")
            counts = entry.requests.setdefault(
                version, {"total": 0.0, "errors": 0.0, "client_errors": 0.0}
            )
            counts["total"] += value
            status = labels.get("status", "")
            if status.startswith("5"):
                counts["errors"] += value
            elif status.startswith("4"):
                counts["client_errors"] += value
        elif name == CANARY_WEIGHT:
            entry.canary_weight = value
        elif name in latency_buckets:
            target = request_latency if name == request_buckets else inference_latency
            key = labels.get("version", "all")
            buckets = target.setdefault(model, {}).setdefault(key, {})
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    for model, entry in snap.models.items():
        # "-": requests refused before a version was chosen; not a version's latency.
        per_version = {
            k: v for k, v in request_latency.get(model, {}).items() if k not in ("all", "-")
        }
        if per_version:
            entry.latency = per_version
            entry.latency_kind = dict.fromkeys(per_version, "request")
            continue
        if "all" in request_latency.get(model, {}):
            entry.latency["all"] = request_latency[model]["all"]
            entry.latency_kind["all"] = "request"
        for version, buckets in inference_latency.get(model, {}).items():
            entry.latency[version] = buckets
            entry.latency_kind[version] = "inference"
    return snap


def bucket_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``{upper bound: count}``, interpolated.

    ``None`` when the histogram holds no observation; the largest finite bound
    when the quantile falls in the ``+Inf`` bucket.

    >>> round(bucket_quantile(0.5, {0.1: 0.0, 0.2: 10.0, float("inf"): 10.0}), 6)
    0.15
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    value = Histogram.from_buckets(buckets).quantile(q)
    return None if math.isnan(value) else value


def _delta(now: float, before: float) -> float:
    """Increase of a counter; a decrease means a restart, so the new value is the increase."""
    return now - before if now >= before else now


def _window(
    first: ModelSnapshot | None, last: ModelSnapshot, seconds: float
) -> dict[str, dict[str, Any]]:
    """Per series: request rate, error rate and latency percentiles between two snapshots."""
    out: dict[str, dict[str, Any]] = {}
    for version, counts in last.requests.items():
        old = first.requests.get(version, {}) if first is not None else {}
        total = _delta(counts["total"], old.get("total", 0.0))
        errors = _delta(counts["errors"], old.get("errors", 0.0))
        client = _delta(counts["client_errors"], old.get("client_errors", 0.0))
        out[version] = {
            "requests": total,
            "rate": total / seconds if seconds > 0 else None,
            "error_rate": errors / total if total > 0 else None,
            "client_error_rate": client / total if total > 0 else None,
        }
    for series, buckets in last.latency.items():
        old_buckets = first.latency.get(series, {}) if first is not None else {}
        diff = {b: _delta(c, old_buckets.get(b, 0.0)) for b, c in buckets.items()}
        entry = out.setdefault(series, {})
        entry["latency_kind"] = last.latency_kind.get(series)
        for q in QUANTILES:
            value = bucket_quantile(q, diff)
            entry[f"p{round(q * 100)}_ms"] = None if value is None else value * 1000.0
    return out


def url_source(url: str, *, timeout: float = 5.0) -> Callable[[], Awaitable[str]]:
    """A metrics source that reads a server's ``/metrics`` over HTTP."""

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read()
        return data.decode("utf-8", "replace")

    async def source() -> str:
        return await asyncio.to_thread(fetch)

    return source


class LiveMetrics:
    """Snapshots of a metrics source and the time series the live page draws.

    ``source`` returns the Prometheus text exposition (bytes or str, sync or async).
    """

    def __init__(
        self,
        source: Callable[[], bytes | str | Awaitable[str]],
        *,
        keep: int = 300,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        description: str = "this server",
    ) -> None:
        self.source = source
        self.samples: deque[Snapshot] = deque(maxlen=keep)
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.description = description
        self.error: str | None = None
        self._lock = asyncio.Lock()

    async def sample(self) -> None:
        """Take a snapshot unless the last one is younger than ``min_interval_s``."""
        async with self._lock:
            now = self.clock()
            if self.samples and now - self.samples[-1].t < self.min_interval_s:
                return
            try:
                raw = self.source()
                if isinstance(raw, Awaitable):
                    raw = await raw
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                snap = parse_metrics(text, now)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                self.error = f"cannot read the metrics of {self.description}: {exc}"
                return
            self.error = None
            self.samples.append(snap)

    def series(self, model: str) -> dict[str, Any]:
        """Points over time and a summary of the last minute for one model (JSON-ready)."""
        samples = list(self.samples)
        points: list[dict[str, Any]] = []
        for before, after in itertools.pairwise(samples):
            last = after.models.get(model)
            if last is None:
                continue
            seconds = after.t - before.t
            points.append(
                {"t": after.t, "series": _window(before.models.get(model), last, seconds)}
            )
        summary: dict[str, Any] = {}
        totals: dict[str, dict[str, float]] = {}
        canary_weight = None
        seconds = 0.0
        if samples and model in samples[-1].models:
            latest = samples[-1]
            entry = latest.models[model]
            canary_weight = entry.canary_weight
            recent = [s for s in samples if latest.t - s.t <= 60.0 and s is not latest]
            first = recent[0] if recent else None
            seconds = latest.t - first.t if first is not None else 0.0
            summary = _window(first.models.get(model) if first else None, entry, seconds)
            if first is None:
                for values in summary.values():
                    values["rate"] = None
            totals = {v: dict(c) for v, c in entry.requests.items()}
        return {
            "model": model,
            "updated_at": samples[-1].t if samples else None,
            "window_s": (samples[-1].t - samples[0].t) if len(samples) > 1 else 0.0,
            "points": points,
            "summary": summary,
            # The seconds the summary's rates, error shares and percentiles cover.
            "summary_s": seconds,
            "totals": totals,
            "canary_weight": canary_weight,
            "error": self.error,
        }
