"""The server's own Prometheus metrics, read back: per-version counters and latency histograms.

The serving layer exports ``mooring_requests_total{model,version,protocol,status}``,
``mooring_inference_latency_seconds`` (one histogram per version: the time of a batch in
the model), ``mooring_request_latency_seconds`` (per version and protocol: the whole
request; summed over both for the SLOs) and
``mooring_model_load_failures_total{model,version}``. A :class:`MetricsSnapshot` holds one
model's share of them at one moment; the rollout controller and the SLO monitor work on
differences between two snapshots (counters only grow, except when a server restarts,
which :meth:`VersionCounters.since` and :func:`counter_increase` allow for).

Several replicas are read and summed, so a fleet behind a load balancer is judged as one.

Examples:
    >>> text = 'mooring_requests_total{model="m",version="1",protocol="v2",status="200"} 4.0'
    >>> parse_metrics(text, "m").versions["1"].requests
    4.0
"""

from __future__ import annotations

import http.client
import itertools
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mooring.errors import MooringError
from mooring.formats._metrics import (
    INFERENCE_LATENCY,
    MODEL_LOAD_FAILURES,
    REQUEST_LATENCY,
    REQUESTS,
    ROUTED_CLIENT_ERRORS,
    SHADOW_DROPPED,
    SHADOW_LATENCY,
    SHADOW_REQUESTS,
    Histogram,
    bucket,
    read_samples,
    total,
)
from mooring.monitoring._counters import VersionCounters

__all__ = [
    "Histogram",
    "MetricsSnapshot",
    "MetricsSource",
    "MetricsUnavailableError",
    "ShadowCounters",
    "VersionCounters",
    "counter_increase",
    "parse_metrics",
    "scrape",
]

#: Where metrics come from: URLs of /metrics endpoints, or a callable returning the text.
MetricsSource = Sequence[str] | Callable[[], bytes | str]

_REQUESTS = total(REQUESTS)
_INFERENCE = bucket(INFERENCE_LATENCY)
_REQUEST_LATENCY = bucket(REQUEST_LATENCY)
_LOAD_FAILURES = total(MODEL_LOAD_FAILURES)
_ROUTED_CLIENT_ERRORS = total(ROUTED_CLIENT_ERRORS)
_SHADOW_REQUESTS = total(SHADOW_REQUESTS)
_SHADOW_DROPPED = total(SHADOW_DROPPED)
_SHADOW_LATENCY = bucket(SHADOW_LATENCY)


class MetricsUnavailableError(MooringError):
    """A /metrics endpoint could not be read."""

    http_status = 503


@dataclass(frozen=True)
class ShadowCounters:
    """A shadow version's copies by outcome (ok, error, timeout) and their latency."""

    outcomes: dict[str, float] = field(default_factory=dict)
    latency: Histogram | None = None

    @property
    def copies(self) -> float:
        """Copies run, whatever their outcome."""
        return sum(self.outcomes.values())

    @property
    def failures(self) -> float:
        """Copies that raised or timed out."""
        return self.copies - self.outcomes.get("ok", 0.0)


@dataclass(frozen=True)
class MetricsSnapshot:
    """One model's counters at one moment, summed over replicas.

    ``versions`` is keyed by the version label ("1", "2"…; "-" for requests answered
    before a version was chosen). ``requests``/``errors``/``request_latency`` cover the
    whole model, for service-level objectives.
    """

    model: str
    taken_at: float
    versions: dict[str, VersionCounters] = field(default_factory=dict)
    request_latency: Histogram | None = None
    #: Shadow copies by shadow version, and copies dropped by reason (capacity, busy).
    shadow: dict[str, ShadowCounters] = field(default_factory=dict)
    shadow_dropped: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> float:
        """Requests answered for the model, every version and protocol."""
        return sum(v.requests for v in self.versions.values())

    @property
    def errors(self) -> float:
        """5xx answers for the model."""
        return sum(v.errors for v in self.versions.values())

    def version(self, number: int | None) -> VersionCounters:
        """Counters of one version (zeros when it has none yet)."""
        if number is None:
            return VersionCounters()
        return self.versions.get(str(number), VersionCounters())


def _is_error(status: str) -> bool:
    return status.startswith("5")


def _merge_histograms(
    parts: Mapping[tuple[str, ...], dict[float, float]],
) -> dict[tuple[str, ...], Histogram]:
    return {key: Histogram.from_buckets(buckets) for key, buckets in parts.items()}


def parse_metrics(
    texts: str | Iterable[str], model: str, *, taken_at: float | None = None
) -> MetricsSnapshot:
    """One model's counters from Prometheus text (several texts: replicas, summed).

    Examples:
        >>> snap = parse_metrics(['mooring_requests_total{model="m",version="2",'
        ...                       'protocol="v2",status="503"} 2.0'], "m")
        >>> snap.version(2).errors
        2.0
    """
    requests: dict[str, list[float]] = {}
    inference: dict[tuple[str, ...], dict[float, float]] = {}
    overall: dict[tuple[str, ...], dict[float, float]] = {}
    failures: dict[str, float] = {}
    shadow: dict[str, dict[str, float]] = {}
    shadow_latency: dict[tuple[str, ...], dict[float, float]] = {}
    dropped: dict[str, float] = {}
    for name, labels, value in read_samples(texts):
        if labels.get("model") != model:
            continue
        if name == _REQUESTS:
            entry = requests.setdefault(labels.get("version", "-"), [0.0, 0.0, 0.0])
            entry[0] += value
            if _is_error(labels.get("status", "")):
                entry[1] += value
        elif name == _ROUTED_CLIENT_ERRORS:
            entry = requests.setdefault(labels.get("version", "-"), [0.0, 0.0, 0.0])
            entry[2] += value
        elif name == _INFERENCE:
            buckets = inference.setdefault((labels.get("version", "-"),), {})
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + value
        elif name == _REQUEST_LATENCY:
            buckets = overall.setdefault(("all",), {})
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + value
        elif name == _LOAD_FAILURES:
            version = labels.get("version", "-")
            failures[version] = failures.get(version, 0.0) + value
        elif name == _SHADOW_REQUESTS:
            outcomes = shadow.setdefault(labels.get("version", "-"), {})
            outcome = labels.get("outcome", "error")
            outcomes[outcome] = outcomes.get(outcome, 0.0) + value
        elif name == _SHADOW_LATENCY:
            buckets = shadow_latency.setdefault((labels.get("version", "-"),), {})
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + value
        elif name == _SHADOW_DROPPED:
            reason = labels.get("reason", "-")
            dropped[reason] = dropped.get(reason, 0.0) + value
    latency = _merge_histograms(inference)
    names = set(requests) | {k[0] for k in latency} | set(failures)
    versions = {
        v: VersionCounters(
            requests=requests.get(v, [0.0, 0.0, 0.0])[0],
            errors=requests.get(v, [0.0, 0.0, 0.0])[1],
            client_errors=requests.get(v, [0.0, 0.0, 0.0])[2],
            latency=latency.get((v,)),
            load_failures=failures.get(v, 0.0),
        )
        for v in names
    }
    merged = _merge_histograms(overall)
    shadow_hist = _merge_histograms(shadow_latency)
    return MetricsSnapshot(
        model=model,
        taken_at=time.time() if taken_at is None else taken_at,
        versions=versions,
        request_latency=merged.get(("all",)),
        shadow={
            v: ShadowCounters(outcomes=shadow.get(v, {}), latency=shadow_hist.get((v,)))
            for v in set(shadow) | {k[0] for k in shadow_hist}
        },
        shadow_dropped=dropped,
    )


def _fetch(url: str, timeout_s: float) -> str:
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise MetricsUnavailableError(
            f"cannot read metrics from '{url}' ({exc}); check that the server runs there, or "
            "set [rollout] metrics_urls / --metrics-url to its /metrics address"
        ) from None
    return body.decode("utf-8", errors="replace")


def scrape(
    source: MetricsSource,
    model: str,
    *,
    timeout_s: float = 5.0,
    clock: Callable[[], float] = time.time,
) -> MetricsSnapshot:
    """Read every replica's /metrics (or call ``source``) and return ``model``'s snapshot.

    Raises:
        MetricsUnavailableError: an endpoint did not answer; a partial sum would look
            like a drop in traffic, so no snapshot is made.

    Examples:
        >>> snap = scrape(["http://127.0.0.1:8501/metrics"], "income")  # doctest: +SKIP
        >>> snap.version(3).error_rate  # doctest: +SKIP
        0.0
    """
    if callable(source):
        raw = source()
        texts = [raw.decode("utf-8") if isinstance(raw, bytes) else raw]
    else:
        if not source:
            raise MetricsUnavailableError(
                "no metrics URL configured; set [rollout] metrics_urls or pass --metrics-url"
            )
        texts = [_fetch(url, timeout_s) for url in source]
    return parse_metrics(texts, model, taken_at=clock())


def counter_increase(values: Sequence[float]) -> float:
    """How much a counter grew over consecutive samples, allowing for resets to zero.

    Like Prometheus' ``increase()``: a drop means the process restarted, and the new
    value counts in full.

    >>> counter_increase([5.0, 8.0, 2.0, 4.0])
    7.0
    """
    total = 0.0
    for before, after in itertools.pairwise(values):
        total += after - before if after >= before else after
    return total
