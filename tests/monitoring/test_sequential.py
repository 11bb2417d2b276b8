"""The always-valid tests behind the rollout guardrails, checked against scipy and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mooring.monitoring._sequential import (
    SequentialTest,
    SmoothCdf,
    exceedance_evidence,
    increase_evidence,
    mixture_radius,
    rank_probability,
    shifted,
    two_rates,
)

counts = st.lists(st.integers(0, 40), min_size=2, max_size=8)


@given(counts, counts)
@settings(max_examples=60, deadline=None)
def test_rank_probability_is_mann_whitney_with_ties_as_scipy_counts_them(
    canary: list[int], production: list[int]
) -> None:
    size = min(len(canary), len(production))
    canary, production = canary[:size], production[:size]
    if sum(canary) == 0 or sum(production) == 0:
        theta, variance = rank_probability(canary, production)
        assert math.isnan(theta) and math.isinf(variance)
        return
    theta, variance = rank_probability(canary, production)
    c = np.repeat(np.arange(size), canary)
    p = np.repeat(np.arange(size), production)
    u = stats.mannwhitneyu(c, p, alternative="two-sided", method="asymptotic").statistic
    assert theta == pytest.approx(u / (c.size * p.size), abs=1e-12)
    assert variance >= (c.size + p.size + 1) / (12.0 * c.size * p.size) - 1e-15


@given(st.floats(1e-8, 1.0), st.floats(1e-4, 1.0), st.floats(1e-4, 0.2))
@settings(max_examples=80, deadline=None)
def test_the_radius_shrinks_with_the_variance(variance: float, tau: float, alpha: float) -> None:
    wide = mixture_radius(variance, tau, alpha)
    narrow = mixture_radius(variance / 4.0, tau, alpha)
    assert 0.0 < narrow < wide
    # Wider than a single look's interval at the same level: the price of looking often.
    assert wide > stats.norm.ppf(1 - alpha / 2) * math.sqrt(variance)


def test_the_interval_holds_at_every_look_where_repeated_fixed_intervals_do_not() -> None:
    """200 looks at a growing sample of a normal mean: how often is the truth ever excluded?"""
    rng = np.random.default_rng(11)
    runs, looks, per_look, alpha = 400, 200, 5, 0.05
    sums = np.cumsum(rng.normal(0.0, 1.0, (runs, looks * per_look)), axis=1)[
        :, per_look - 1 :: per_look
    ]
    n = np.arange(1, looks + 1) * per_look
    means, variances = sums / n, 1.0 / n
    radius = np.array([mixture_radius(v, 0.1, alpha) for v in variances])
    sequential = (np.abs(means) > radius).any(axis=1).mean()
    fixed = (np.abs(means) > 1.96 * np.sqrt(variances)).any(axis=1).mean()
    assert sequential <= alpha
    assert fixed > 4 * alpha  # the obvious rule, looked at every tick, errs far more often


def test_a_test_passes_fails_or_waits_and_says_how_much_more_it_needs() -> None:
    test = SequentialTest(pass_below=0.03, fail_above=0.0, tau=0.03, alpha=0.01)
    assert test.judge(0.0, 1e-6).state == "pass"
    assert test.judge(0.5, 1e-3).state == "fail"
    waiting = test.judge(0.01, 1e-3)
    assert waiting.state == "undecided" and waiting.lower < 0.0 < waiting.upper
    # With the variance divided by the factor the interval reaches the pass boundary.
    settled = test.judge(0.01, 1e-3 / (waiting.evidence_factor * 1.01))
    assert settled.state == "pass"
    # Sitting on the one boundary of a non-inferiority test: no amount of evidence decides.
    margin = SequentialTest(pass_below=0.03, fail_above=0.03, tau=0.03, alpha=0.01)
    assert margin.judge(0.03, 1e-3).evidence_factor == math.inf


def test_two_rates_never_claim_certainty_from_no_failures() -> None:
    diff, variance = two_rates(0, 15, 0, 285)
    assert diff == 0.0 and variance > 0.0
    assert mixture_radius(variance, 0.03, 0.01) > 0.03  # 15 clean answers bound nothing


@given(st.integers(0, 50), st.integers(1, 500), st.integers(0, 50), st.integers(1, 5000))
@settings(max_examples=80, deadline=None)
def test_no_evidence_of_an_increase_when_a_side_fails_less_than_its_share(
    bad_a: int, n_a: int, bad_b: int, n_b: int
) -> None:
    bad_a, bad_b = min(bad_a, n_a), min(bad_b, n_b)
    evidence = increase_evidence(bad_a, n_a, bad_b, n_b)
    assert evidence >= 0.0
    if bad_a + bad_b and bad_a / (bad_a + bad_b) <= n_a / (n_a + n_b):
        assert evidence == 1.0


def test_increase_evidence_is_rarely_conclusive_when_the_rates_are_equal() -> None:
    """A 5% canary and production failing alike, watched over 100 ticks of 300 requests."""
    rng = np.random.default_rng(3)
    alpha, false = 0.01, 0
    for _ in range(300):
        n_a = rng.binomial(300, 0.05, 100)
        bad_a = rng.binomial(n_a, 0.01).cumsum()
        bad_b = rng.binomial(300 - n_a, 0.01).cumsum()
        seen_a, seen_b = n_a.cumsum(), (300 - n_a).cumsum()
        if any(
            increase_evidence(x, max(n, 1), y, m) >= 1 / alpha
            for x, n, y, m in zip(bad_a, seen_a, bad_b, seen_b, strict=True)
        ):
            false += 1
    assert false / 300 <= alpha
    # A 1% canary whose every answer fails is conclusive after a handful of requests.
    assert increase_evidence(5, 5, 1, 495) >= 1 / alpha


@given(st.lists(st.integers(0, 100), min_size=3, max_size=6), st.floats(0.0, 3.0))
@settings(max_examples=60, deadline=None)
def test_shifting_a_histogram_keeps_its_observations_and_moves_them_up(
    per_bucket: list[int], share: float
) -> None:
    bounds = [0.001 * 2**i for i in range(len(per_bucket) - 1)] + [math.inf]
    cumulative = list(np.cumsum(per_bucket).astype(float))
    moved = shifted(bounds, cumulative, share, 0.0)
    assert sum(moved) == pytest.approx(sum(per_bucket))
    # Nothing moves down: at every bound at least as much lies above it as before.
    assert all(sum(moved[k:]) >= sum(per_bucket[k:]) - 1e-9 for k in range(len(per_bucket)))


def test_exceedance_evidence_is_rarely_conclusive_when_the_canary_is_no_worse() -> None:
    """A 5% canary and production with 1% of batches beyond a line (or the canary fewer),
    watched over 300 ticks of 300 batches: how often does the evidence ever reach 1/α?
    (Never, in 400 runs of each.)"""
    rng = np.random.default_rng(5)
    alpha, runs = 0.01, 100
    for canary_rate in (0.01, 0.007):
        false = 0
        for _ in range(runs):
            n_a = rng.binomial(300, 0.05, 300)
            x_a = rng.binomial(n_a, canary_rate).cumsum()
            x_b = rng.binomial(300 - n_a, 0.01).cumsum()
            seen_a, seen_b = n_a.cumsum(), (300 - n_a).cumsum()
            if any(
                exceedance_evidence(x, max(n, 1), y, m) >= 1 / alpha
                for x, n, y, m in zip(x_a[::5], seen_a[::5], x_b[::5], seen_b[::5], strict=True)
            ):
                false += 1
        assert false / runs <= alpha
    # A canary with twice production's rate is shown to have more within 10,000 batches.
    assert exceedance_evidence(200, 10000, 1900, 190000) >= 1 / alpha


@given(
    st.lists(st.floats(0.0, 500.0), min_size=3, max_size=10),
    st.floats(1e-5, 20.0),
    st.floats(0.001, 0.999),
)
@settings(max_examples=80, deadline=None)
def test_the_smooth_reading_is_exact_at_the_edges_monotone_and_inverted_by_its_quantile(
    per_bucket: list[float], x: float, q: float
) -> None:
    bounds = [0.0005 * 2**i for i in range(len(per_bucket) - 1)] + [math.inf]
    cumulative = list(np.cumsum(per_bucket))
    cdf = SmoothCdf(bounds, cumulative)
    for bound, count in zip(bounds[:-1], cumulative, strict=False):
        assert cdf.count_below(bound) == pytest.approx(count)
    assert cdf.count_below(x) <= cdf.count_below(x * 1.1) + 1e-9
    if cumulative[-1] > 0 and q * cumulative[-1] <= cumulative[-2]:
        assert cdf.count_below(cdf.quantile(q)) == pytest.approx(q * cumulative[-1], rel=1e-6)
