"""Reading the server's Prometheus text back: per-version counters, histograms, quantiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.monitoring._scrape import (
    Histogram,
    MetricsUnavailableError,
    VersionCounters,
    counter_increase,
    parse_metrics,
    scrape,
)
from mooring.serving._metrics import LATENCY_BUCKETS, ServingMetrics
from tests._support.rollout import NAME, serve


def test_parse_the_servers_own_metrics() -> None:
    metrics = ServingMetrics()
    serve(metrics, 1, 90, errors=3)
    serve(metrics, 2, 10, errors=4, status="503")
    metrics.requests.labels(NAME, "1", "v2", "400").inc(5)  # a client error is not an error
    metrics.requests.labels("other", "1", "v2", "500").inc(7)  # another model
    metrics.load_failures.labels(NAME, "3").inc()
    snap = parse_metrics(metrics.render().decode(), NAME, taken_at=5.0)
    one, two = snap.version(1), snap.version(2)
    assert (one.requests, one.errors) == (95, 3)
    assert (two.requests, two.errors) == (10, 4)
    assert snap.version(3).load_failures == 1 and snap.version(9) == VersionCounters()
    assert one.latency is not None and one.latency.count == 90
    assert snap.requests == 105 and snap.errors == 7 and snap.taken_at == 5.0
    assert snap.request_latency is not None and snap.request_latency.count == 100


def test_replicas_are_summed() -> None:
    a, b = ServingMetrics(), ServingMetrics()
    serve(a, 1, 10, errors=1)
    serve(b, 1, 30, errors=2)
    snap = parse_metrics([a.render().decode(), b.render().decode()], NAME)
    assert (snap.version(1).requests, snap.version(1).errors) == (40, 3)
    latency = snap.version(1).latency
    assert latency is not None and latency.count == 40


def test_differences_allow_for_a_restart() -> None:
    bounds = (0.1, math.inf)
    before = VersionCounters(100, 5, Histogram(bounds, (90.0, 100.0)))
    after = VersionCounters(130, 6, Histogram(bounds, (110.0, 130.0)))
    diff = after.since(before)
    assert (diff.requests, diff.errors) == (30, 1)
    assert diff.latency == Histogram(bounds, (20.0, 30.0))
    restarted = VersionCounters(7, 1, Histogram(bounds, (7.0, 7.0)))
    assert restarted.since(before) == restarted


def test_quantile_by_hand() -> None:
    h = Histogram((0.001, 0.002, 0.005, math.inf), (50.0, 90.0, 99.0, 100.0))
    assert h.quantile(0.5) == pytest.approx(0.001)
    assert h.quantile(0.7) == pytest.approx(0.0015)
    assert h.quantile(0.99) == pytest.approx(0.005)
    assert h.quantile(0.999) == pytest.approx(0.005)  # in +Inf: the largest finite bound
    assert h.share_below(0.0015) == pytest.approx(0.7)
    assert math.isnan(Histogram((1.0, math.inf), (0.0, 0.0)).quantile(0.5))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-5, max_value=5.0), min_size=1, max_size=300),
    st.floats(min_value=0.01, max_value=0.999),
)
def test_quantile_lies_in_the_bucket_of_the_true_quantile(values: list[float], q: float) -> None:
    metrics = ServingMetrics()
    for value in values:
        metrics.inference.labels(NAME, "1").observe(value)
    latency = parse_metrics(metrics.render().decode(), NAME).version(1).latency
    assert latency is not None
    estimate = latency.quantile(q)
    rank = math.ceil(q * len(values))
    true = float(np.sort(values)[max(rank - 1, 0)])
    edges = (0.0, *LATENCY_BUCKETS)
    upper = next(b for b in LATENCY_BUCKETS if true <= b)
    lower = max(e for e in edges if e < upper)
    assert lower - 1e-12 <= estimate <= upper + 1e-12


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(min_value=0, max_value=100), min_size=1), min_size=1))
def test_counter_increase_is_the_sum_of_increments_across_restarts(runs: list[list[int]]) -> None:
    values: list[float] = []
    expected = 0.0
    for run in runs:  # each run is a process whose counter starts at 0
        total = 0.0
        values.append(total)
        for step in run:
            total += step
            values.append(total)
        expected += total
    assert counter_increase(values) == pytest.approx(expected)


def test_unreachable_endpoint_is_a_clear_error() -> None:
    with pytest.raises(MetricsUnavailableError, match="cannot read metrics"):
        scrape(["http://127.0.0.1:9/metrics"], NAME, timeout_s=1)
    with pytest.raises(MetricsUnavailableError, match="no metrics URL"):
        scrape([], NAME)
    with pytest.raises(MetricsUnavailableError, match=r"cannot read metrics from .*:x/metrics"):
        scrape(["http://127.0.0.1:x/metrics"], NAME, timeout_s=1)
