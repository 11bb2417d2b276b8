"""The latency guardrail: p50, p90 and p99 each judged on production's plus the margin."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._monitoring import GuardrailsConfig
from mooring.formats._metrics import LATENCY_BUCKETS, Histogram
from mooring.monitoring._guardrail_latency import latency_guardrail
from mooring.monitoring._scrape import VersionCounters

RULES = GuardrailsConfig()
BOUNDS = (*LATENCY_BUCKETS, math.inf)


def _timed(*counts: float) -> VersionCounters:
    bounds = (0.001, 0.002, 0.005, 0.01, 0.025, math.inf)
    return VersionCounters(counts[-1], 0, Histogram(bounds, counts))


def _edges(n: float, cumulative_ms: dict[float, float]) -> VersionCounters:
    """A histogram on the server's buckets from its cumulative counts at some edges (ms)."""
    counts, last = [], 0.0
    for bound in BOUNDS:
        last = cumulative_ms.get(round(bound * 1e3, 2), last) if math.isfinite(bound) else n
        counts.append(last)
    return VersionCounters(n, 0, Histogram(BOUNDS, tuple(counts)))


def _lognormal(n: float, median_ms: float, sigma: float, add_ms: float = 0.0) -> VersionCounters:
    """``n`` batches of a log-normal latency, as the buckets would count them on average."""
    counts = []
    for bound in BOUNDS:
        x = bound * 1e3 - add_ms
        share = (
            1.0
            if math.isinf(x)
            else (NormalDist(math.log(median_ms), sigma).cdf(math.log(x)) if x > 0 else 0.0)
        )
        counts.append(n * share)
    return VersionCounters(n, 0, Histogram(BOUNDS, tuple(counts)))


def test_a_slower_median_within_the_absolute_margin_passes_on_a_faster_tail() -> None:
    # Counts that read, as Prometheus reads them, p50 1.05 vs 0.81 ms and p99 9.43 vs
    # 12.7 ms over 837 vs 5,793 batches: a retrained canary whose median is 0.24 ms
    # slower and whose tail is faster.
    production = _edges(
        5793,
        {0.25: 50, 0.5: 650, 0.75: 2450, 1.0: 4310, 2.0: 4950, 5.0: 5225, 10.0: 5723, 25.0: 5790},
    )
    canary = _edges(837, {0.5: 20, 0.75: 120, 1.0: 410, 2.0: 580, 5.0: 763.6, 10.0: 837})
    assert production.latency is not None and canary.latency is not None
    assert round(canary.latency.quantile(0.5) * 1e3, 2) == 1.05
    assert round(canary.latency.quantile(0.99) * 1e3, 2) == 9.43
    assert round(production.latency.quantile(0.5) * 1e3, 2) == 0.81
    result = latency_guardrail(canary, production, RULES)
    assert result.state == "pass", result.message
    assert result.message.startswith("p50 1.02 vs 0.80 ms (+0.22 ms, margin 2.00 ms)")
    assert "no slower than the margin at p50, p90 and p99" in result.message
    p50 = result.numbers["quantiles"]["p50"]
    assert p50["state"] == "pass" and p50["margin_ms"] == 2.0
    assert result.numbers["canary_p99_ms"] < result.numbers["production_p99_ms"]


def test_a_tail_thirty_percent_slower_fails_whatever_the_median() -> None:
    production = _lognormal(20000, 8.0, 0.5)
    # The same median, p99 about 40% (and over 8 ms) slower.
    canary = _lognormal(4000, 8.0, 0.65)
    result = latency_guardrail(canary, production, RULES)
    assert result.state == "fail", result.message
    states = {name: q["state"] for name, q in result.numbers["quantiles"].items()}
    assert states["p50"] == "pass" and states["p99"] == "fail"
    assert "slower than production beyond the margin at p99" in result.message
    assert result.numbers["deciding"] == "p99"


def test_twenty_ms_slower_fails_within_a_hundred_batches() -> None:
    production = _lognormal(1900, 8.0, 0.5)
    canary = _lognormal(100, 8.0, 0.5, add_ms=20.0)
    result = latency_guardrail(canary, production, RULES)
    assert result.state == "fail", result.message
    assert result.numbers["quantiles"]["p50"]["lower"] > 0


def test_a_few_batches_are_undecided_and_say_how_many_more_a_decision_needs() -> None:
    fast = _timed(0.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0)  # 1-2 ms
    two = _timed(0.0, 1.0, 2.0, 2.0, 2.0, 2.0)
    result = latency_guardrail(two, fast, RULES)
    assert result.state == "undecided"
    assert result.needed is not None and result.needed.endswith("more canary batches expected")
    assert f"; {result.needed}" in result.message
    # 2-5 ms against 1-2 ms may be just the 2 ms the margin allows: not a failure.
    near = _timed(0.0, 0.0, 30.0, 30.0, 30.0, 30.0)
    assert latency_guardrail(near, fast, RULES).state != "fail"
    # No production batches in the step (at 100%): judged at the earlier steps.
    assert latency_guardrail(near, VersionCounters(), RULES).status == "unavailable"
    assert latency_guardrail(VersionCounters(), fast, RULES).status == "insufficient_data"
    off = GuardrailsConfig(latency_margin=False)
    assert latency_guardrail(near, fast, off).status == "off"


@given(
    st.lists(st.integers(0, 400), min_size=4, max_size=12),
    st.integers(1, 40),
    st.integers(0, 3),
)
@settings(max_examples=60, deadline=None)
def test_a_canary_no_slower_than_production_never_fails(
    per_bucket: list[int], divisor: int, faster: int
) -> None:
    """The same shape (a share of production's counts), or moved down a few buckets."""
    bounds = (*LATENCY_BUCKETS[: len(per_bucket) - 1], math.inf)
    production_counts = [float(c) for c in per_bucket]
    canary_per_bucket = [c / divisor for c in production_counts]
    canary_per_bucket = [*canary_per_bucket[faster:], *([0.0] * faster)]
    if sum(production_counts) == 0 or sum(canary_per_bucket) == 0:
        return

    def cumulative(values: list[float]) -> tuple[float, ...]:
        out, total = [], 0.0
        for v in values:
            total += v
            out.append(total)
        return tuple(out)

    production = VersionCounters(0, 0, Histogram(bounds, cumulative(production_counts)))
    canary = VersionCounters(0, 0, Histogram(bounds, cumulative(canary_per_bucket)))
    assert latency_guardrail(canary, production, RULES).state != "fail"


@pytest.mark.parametrize(("batches", "state"), [(1000, "undecided"), (10000, "pass")])
def test_an_equal_tail_takes_thousands_of_batches_to_show_within_twenty_percent(
    batches: int, state: str
) -> None:
    # 1% of batches lie beyond a p99, and a 20% margin moves that share to about 0.5%:
    # telling the two apart takes thousands of canary batches; the medians pass at once.
    production = _lognormal(4 * batches, 8.0, 0.5)
    canary = _lognormal(batches, 8.0, 0.5)
    result = latency_guardrail(canary, production, RULES)
    assert result.state == state, result.message
    assert result.numbers["quantiles"]["p50"]["state"] == "pass"
    if state == "undecided":
        assert result.numbers["deciding"] == "p99"
        assert "undecided at p99; about" in result.message
        # Leaning within its margin, the tail does not hold the step.
        assert result.advisory and "the step does not wait for it" in result.message


def test_a_tail_leaning_slower_holds_the_step_until_it_is_shown() -> None:
    production = _lognormal(1200, 8.0, 0.5)
    canary = _lognormal(300, 8.0, 0.65)  # p99 about 40% slower, 300 batches: not yet shown
    result = latency_guardrail(canary, production, RULES)
    assert result.state == "undecided" and not result.advisory, result.message
    assert result.numbers["quantiles"]["p99"]["estimate"] > 0
