"""Burn rates: hand-computed windows, a property over constant error ratios, restarts, alerts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._monitoring import BurnWindowConfig
from mooring.monitoring._alerts import Alert, AlertManager
from mooring.monitoring._scrape import counter_increase, parse_metrics
from mooring.monitoring._slo import (
    Sample,
    SampleSeries,
    SLOMonitor,
    burn_rate,
    evaluate_objective,
    increase,
)
from mooring.serving._metrics import ServingMetrics
from tests._support.rollout import NAME, Clock, project, serve

PAGE = BurnWindowConfig(severity="page", long=3600, short=300, burn_rate=14.4)
TICKET = BurnWindowConfig(severity="ticket", long=21600, short=1800, burn_rate=6.0)


def minutes(errors_per_minute: list[float], requests_per_minute: float = 100.0) -> SampleSeries:
    series = SampleSeries(horizon_s=6 * 3600 * 1.1)
    requests = errors = 0.0
    series.add(Sample(0.0, 0.0, 0.0))
    for i, bad in enumerate(errors_per_minute, start=1):
        requests += requests_per_minute
        errors += bad
        series.add(Sample(i * 60.0, requests, errors))
    return series


def test_burn_rate_by_hand() -> None:
    assert burn_rate(bad=0, total=0, target=0.999) == 0.0
    assert burn_rate(bad=1, total=1000, target=0.999) == pytest.approx(1.0)
    assert burn_rate(bad=144, total=10_000, target=0.999) == pytest.approx(14.4)


def test_page_fires_on_a_five_minute_outage_in_an_hour() -> None:
    # 55 clean minutes, then 20% errors for 5 minutes, 100 requests a minute.
    series = minutes([0.0] * 55 + [20.0] * 5)
    [status] = evaluate_objective(
        series, objective="availability", target=0.999, windows=[PAGE], now=3600.0
    )
    # long: 100 bad / 6000 → 0.01667 / 0.001 = 16.67; short: 100 / 500 → 200.
    assert status.long.bad == 100 and status.long.total == 6000
    assert status.long.burn_rate == pytest.approx(16.6667, rel=1e-4)
    assert status.short.burn_rate == pytest.approx(200.0)
    assert status.firing and status.kind == "slo_availability_page"


def test_page_stops_once_the_short_window_is_clean() -> None:
    # Same outage, then 10 clean minutes: the long window still burns, the short does not.
    series = minutes([0.0] * 45 + [20.0] * 5 + [0.0] * 10)
    [status] = evaluate_objective(
        series, objective="availability", target=0.999, windows=[PAGE], now=3600.0
    )
    assert status.long.burn_rate == pytest.approx(16.6667, rel=1e-4)
    assert status.short.burn_rate == 0.0 and not status.firing


def test_slow_burn_opens_a_ticket_not_a_page() -> None:
    # 0.8% errors for six hours: burn 8× — above the ticket's 6×, below the page's 14.4×.
    series = minutes([0.8] * 360)
    page, ticket = evaluate_objective(
        series, objective="availability", target=0.999, windows=[PAGE, TICKET], now=21600.0
    )
    assert page.long.burn_rate == pytest.approx(8.0) and not page.firing
    assert ticket.long.burn_rate == pytest.approx(8.0) and ticket.firing


def test_nothing_fires_before_the_series_covers_the_short_window() -> None:
    series = minutes([50.0, 50.0])  # two minutes of 50% errors
    [status] = evaluate_objective(
        series, objective="availability", target=0.999, windows=[PAGE], now=120.0
    )
    assert status.short.burn_rate == pytest.approx(500.0) and not status.firing


def test_counter_reset_counts_the_new_values() -> None:
    series = SampleSeries(horizon_s=7200)
    for at, requests, errors in [(0, 1000, 0), (60, 1100, 10), (120, 50, 40), (180, 150, 60)]:
        series.add(Sample(float(at), float(requests), float(errors)))
    window = series.window(3600, 180.0)
    # The server restarted between 60 and 120 s: every counter starts again from zero.
    assert increase(window, lambda s: s.requests) == 100 + 50 + 100
    assert increase(window, lambda s: s.errors) == 10 + 40 + 20
    assert counter_increase([1000.0, 1100.0, 50.0, 150.0]) == 250.0


@settings(max_examples=60, deadline=None)
@given(
    ratio=st.floats(min_value=0.0, max_value=1.0),
    rate=st.integers(min_value=1, max_value=10_000),
    target=st.sampled_from([0.9, 0.99, 0.999, 0.9999]),
    factor=st.floats(min_value=0.5, max_value=50.0),
)
def test_constant_error_ratio_burns_the_same_in_every_window(
    ratio: float, rate: int, target: float, factor: float
) -> None:
    series = SampleSeries(horizon_s=4000)
    for minute in range(61):
        series.add(Sample(minute * 60.0, minute * float(rate), minute * rate * ratio))
    window = BurnWindowConfig(severity="page", long=3600, short=300, burn_rate=factor)
    [status] = evaluate_objective(
        series, objective="availability", target=target, windows=[window], now=3600.0
    )
    expected = ratio / (1 - target)
    assert status.long.burn_rate == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert status.short.burn_rate == pytest.approx(expected, rel=1e-9, abs=1e-9)
    if expected >= factor * (1 + 1e-9):
        assert status.firing
    if expected < factor * (1 - 1e-9):
        assert not status.firing


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=40))
def test_series_stays_bounded_and_ordered(increments: list[int]) -> None:
    series = SampleSeries(horizon_s=600, max_samples=10)
    total = 0.0
    for i, step in enumerate(increments):
        total += step
        series.add(Sample(i * 30.0, total, 0.0))
    times = [s.at for s in series.samples]
    assert times == sorted(times) and len(times) <= 10
    assert series.samples[-1].requests == total


def test_monitor_samples_the_server_and_pages_once(tmp_path: Path) -> None:
    cfg = project(
        tmp_path / "home",
        monitoring={
            "slo": {
                "availability": 0.99,
                "latency_ms": 10,
                "windows": [{"severity": "page", "long": "10m", "short": "1m", "burn_rate": 10}],
            }
        },
    )
    clock = Clock(start=1_000_000.0)
    sent: list[Alert] = []

    class Sink:
        name = "collect"

        def send(self, alert: Alert) -> bool:
            sent.append(alert)
            return True

    alerts = AlertManager([Sink()], cooldown_s=3600, clock=clock)
    metrics = ServingMetrics()
    slo = SLOMonitor(cfg, alerts=alerts, clock=clock)
    for _ in range(12):
        serve(metrics, 1, 100, errors=30, latency_s=0.002)
        slo.observe(parse_metrics(metrics.render().decode(), NAME, taken_at=clock()))
        clock.advance(60)
    report = slo.evaluate(version=1, now=clock() - 60)
    availability = [s for s in report.statuses if s.objective == "availability"]
    latency = [s for s in report.statuses if s.objective == "latency"]
    assert availability[0].firing and availability[0].long.burn_rate == pytest.approx(30.0)
    assert not latency[0].firing  # every request took 2 ms, within 10 ms
    slo.evaluate(version=1, now=clock() - 60)
    assert [a.kind for a in sent] == ["slo_availability_page"]
    # The series is persisted: a new monitor continues it.
    again = SLOMonitor(cfg, alerts=None, clock=clock)
    assert len(again.series.samples) == len(slo.series.samples)


def test_requests_all_slow_never_look_like_a_restart() -> None:
    """Every request is slow: the good count stays put while the total grows. A good count
    derived as share × total came out one rounding step lower (1.0 → 0.9999999999999999
    here), which read as a server restart and counted the whole history as new."""
    from mooring.formats._metrics import Histogram
    from mooring.monitoring._scrape import MetricsSnapshot

    bounds = (0.005, 0.01, math.inf)
    series = SampleSeries(horizon_s=7200)
    for minute, slow in enumerate(range(0, 61 * 7, 7)):
        histogram = Histogram(bounds, (1.0, 1.0, 1.0 + slow * 28))
        snapshot = MetricsSnapshot("m", taken_at=minute * 60.0, request_latency=histogram)
        series.add(Sample.from_snapshot(snapshot, 0.007))
    [status] = evaluate_objective(
        series,
        objective="latency",
        target=0.99,
        windows=[BurnWindowConfig(severity="page", long=3600, short=300, burn_rate=14.4)],
        now=3600.0,
    )
    # Every request of the hour was slow: burn 1 / 0.01 = 100 in both windows, and the
    # long window counts the hour's requests only.
    assert status.long.total == 60 * 7 * 28
    assert status.long.burn_rate == pytest.approx(100.0)
