"""Live metrics: parsing the server's Prometheus text, rates and percentiles over time."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from mooring.dashboard._live import LiveMetrics, bucket_quantile, parse_metrics
from mooring.dashboard._live_view import live_view
from mooring.registry import Deployment
from mooring.serving._metrics import LATENCY_BUCKETS, ServingMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def traffic(metrics: ServingMetrics, version: str, ok: int, errors: int, seconds: float) -> None:
    """``ok`` 200s and ``errors`` 503s, each taking ``seconds``, as the server records them."""
    for status, count in (("200", ok), ("503", errors)):
        metrics.requests.labels("income", version, "tfserving", status).inc(count)
    for _ in range(ok + errors):
        metrics.inference.labels("income", version).observe(seconds)
        metrics.latency.labels("income", version, "tfserving").observe(seconds)


def test_parse_the_servers_own_metrics() -> None:
    metrics = ServingMetrics()
    traffic(metrics, "1", ok=30, errors=3, seconds=0.004)
    metrics.requests.labels("income", "-", "tfserving", "400").inc(2)
    metrics.latency.labels("income", "-", "tfserving").observe(0.0001)
    metrics.canary_weight.labels("income").set(25)
    snap = parse_metrics(metrics.render().decode(), t=5.0)
    model = snap.models["income"]
    assert model.requests["1"] == {"total": 33.0, "errors": 3.0, "client_errors": 0.0}
    assert model.requests["-"]["client_errors"] == 2.0
    assert model.canary_weight == 25.0
    # Per version, the whole request's latency; refusals before a version ("-") are left out.
    assert model.latency_kind == {"1": "request"}
    assert model.latency["1"][math.inf] == 33.0


def test_without_a_version_label_per_version_latency_is_the_batch_time() -> None:
    text = (
        "# TYPE mooring_request_latency_seconds histogram\n"
        'mooring_request_latency_seconds_bucket{model="m",protocol="v2",le="0.01"} 4\n'
        'mooring_request_latency_seconds_bucket{model="m",protocol="v2",le="+Inf"} 5\n'
        "# TYPE mooring_inference_latency_seconds histogram\n"
        'mooring_inference_latency_seconds_bucket{model="m",version="1",le="0.01"} 3\n'
        'mooring_inference_latency_seconds_bucket{model="m",version="1",le="+Inf"} 3\n'
    )
    model = parse_metrics(text).models["m"]
    assert model.latency_kind == {"all": "request", "1": "inference"}
    assert model.latency["1"][math.inf] == 3.0


def test_latency_per_version_when_the_request_histogram_has_a_version_label() -> None:
    text = (
        "# TYPE mooring_request_latency_seconds histogram\n"
        'mooring_request_latency_seconds_bucket{model="m",version="2",protocol="v2",le="0.01"} 4\n'
        'mooring_request_latency_seconds_bucket{model="m",version="2",protocol="v2",le="+Inf"} 5\n'
        'mooring_request_latency_seconds_count{model="m",version="2",protocol="v2"} 5\n'
        'mooring_request_latency_seconds_sum{model="m",version="2",protocol="v2"} 0.1\n'
    )
    model = parse_metrics(text).models["m"]
    assert model.latency == {"2": {0.01: 4.0, math.inf: 5.0}}
    assert model.latency_kind == {"2": "request"}


def test_bucket_quantile_examples() -> None:
    assert bucket_quantile(0.5, {}) is None
    assert bucket_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert bucket_quantile(0.5, {0.1: 10.0, math.inf: 10.0}) == pytest.approx(0.05)
    # Everything above the last finite bound: that bound is the best estimate.
    assert bucket_quantile(0.99, {0.1: 0.0, 1.0: 0.0, math.inf: 7.0}) == 1.0
    with pytest.raises(ValueError, match="outside"):
        bucket_quantile(1.5, {1.0: 1.0})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1e-5, 20.0), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_bucket_quantile_lands_in_the_bucket_of_the_true_quantile(
    values: list[float], q: float
) -> None:
    """Prometheus' estimate lies within the bucket holding numpy's (inverted-CDF) quantile."""
    registry = CollectorRegistry()
    hist = Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=registry)
    for v in values:
        hist.observe(v)
    buckets = {
        float(s.labels["le"]): s.value
        for s in next(iter(registry.collect())).samples
        if s.name == "h_bucket"
    }
    estimate = bucket_quantile(q, buckets)
    truth = float(np.quantile(values, q, method="inverted_cdf"))
    bounds = [0.0, *LATENCY_BUCKETS]
    upper = next((b for b in LATENCY_BUCKETS if truth <= b), math.inf)
    lower = bounds[bounds.index(upper) - 1] if upper != math.inf else LATENCY_BUCKETS[-1]
    assert estimate is not None
    assert lower - 1e-12 <= estimate <= min(upper, LATENCY_BUCKETS[-1]) + 1e-12


def test_rates_errors_and_percentiles_between_snapshots() -> None:
    asyncio.run(_rates_errors_and_percentiles_between_snapshots())


async def _rates_errors_and_percentiles_between_snapshots() -> None:
    metrics = ServingMetrics()
    clock = Clock()
    live = LiveMetrics(metrics.render, clock=clock, min_interval_s=1.0)
    traffic(metrics, "1", ok=10, errors=0, seconds=0.002)
    await live.sample()
    clock.now += 2.0
    traffic(metrics, "1", ok=36, errors=4, seconds=0.03)
    traffic(metrics, "2", ok=10, errors=0, seconds=0.0003)
    await live.sample()
    clock.now += 0.5
    await live.sample()  # too soon: no new snapshot
    data = live.series("income")
    assert len(data["points"]) == 1
    point = data["points"][0]["series"]
    assert point["1"]["rate"] == pytest.approx(20.0)  # 40 requests in 2 s
    assert point["1"]["error_rate"] == pytest.approx(0.1)
    assert point["2"]["rate"] == pytest.approx(5.0) and point["2"]["error_rate"] == 0.0
    # This interval's v1 requests all took 30 ms: its percentiles sit in the (25, 50] ms bucket.
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        assert 25.0 < point["1"][key] <= 50.0
        assert 0.25 < point["2"][key] <= 0.5
    assert data["totals"]["1"]["total"] == 50.0


def test_a_restarted_server_counts_from_zero_again() -> None:
    asyncio.run(_a_restarted_server_counts_from_zero_again())


async def _a_restarted_server_counts_from_zero_again() -> None:
    clock = Clock()
    texts = iter(
        [
            'mooring_requests_total{model="m",version="1",protocol="v2",status="200"} 100\n',
            'mooring_requests_total{model="m",version="1",protocol="v2",status="200"} 6\n',
        ]
    )
    live = LiveMetrics(lambda: next(texts), clock=clock)
    await live.sample()
    clock.now += 3.0
    await live.sample()
    assert live.series("m")["points"][0]["series"]["1"]["rate"] == pytest.approx(2.0)


def test_an_unreachable_source_is_reported_not_raised() -> None:
    asyncio.run(_an_unreachable_source_is_reported_not_raised())


async def _an_unreachable_source_is_reported_not_raised() -> None:
    def broken() -> bytes:
        raise OSError("connection refused")

    live = LiveMetrics(broken, description="http://127.0.0.1:9/metrics")
    await live.sample()
    data = live.series("m")
    assert data["points"] == [] and "connection refused" in data["error"]
    view = live_view(data, Deployment(name="m"))
    assert "connection refused" in view["error"]


def test_live_view_charts_and_table() -> None:
    asyncio.run(_live_view_charts_and_table())


async def _live_view_charts_and_table() -> None:
    metrics = ServingMetrics()
    clock = Clock()
    live = LiveMetrics(metrics.render, clock=clock)
    for step in range(4):
        traffic(metrics, "1", ok=20, errors=step, seconds=0.003)
        traffic(metrics, "2", ok=5, errors=0, seconds=0.004)
        await live.sample()
        clock.now += 2.0
    view: dict[str, Any] = live_view(
        live.series("income"), Deployment(name="income", production=1, canary=2, canary_weight=20)
    )
    assert view["points"] == 3
    rate = view["charts"]["rate"]
    assert rate.count('<polyline class="series"') == 2
    assert 'data-label="v1 production"' in rate and 'data-label="v2 canary"' in rate
    latency = view["charts"]["latency"]
    # Each version's whole-request latency (the server labels it by version).
    assert "v1 production p50" in latency and "v2 canary p99" in latency
    assert "(batch)" not in latency
    rows = {r["series"]: r for r in view["rows"]}
    assert rows["v1 production"]["requests"] == str(80 + 0 + 1 + 2 + 3)
    assert rows["v1 production"]["error_rate"].endswith("%")
    assert rows["v2 canary"]["error_rate"] == "0%"
