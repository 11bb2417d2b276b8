from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.contract._sketch import FrequencySketch, QuantileSketch

QS = np.linspace(0.01, 0.99, 25)


def rank_errors(sketch: QuantileSketch, data: np.ndarray) -> np.ndarray:
    """Normalised rank error of each answered quantile against the exact data."""
    ordered = np.sort(data)
    answers = sketch.quantiles(QS)
    lo = np.searchsorted(ordered, answers, side="left") / data.size
    hi = np.searchsorted(ordered, answers, side="right") / data.size
    # The answer is correct for any rank in [lo, hi]; the error is the distance to that range.
    return np.maximum(0.0, np.maximum(lo - QS, QS - hi))


def test_exact_below_capacity() -> None:
    data = np.arange(1000, dtype=float)
    sketch = QuantileSketch()
    sketch.update(data)
    assert sketch.rank_error() == 0.0
    qs = [0.0, 0.1, 0.5, 0.77, 1.0]
    expected = np.quantile(data, qs, method="inverted_cdf")
    assert list(sketch.quantiles(qs)) == list(expected)


@pytest.mark.parametrize("dist", ["normal", "lognormal", "ties"])
def test_rank_error_within_stated_bound(dist: str) -> None:
    rng = np.random.default_rng(7)
    data = {
        "normal": rng.normal(size=400_000),
        "lognormal": rng.lognormal(size=400_000),
        "ties": rng.integers(0, 5, size=400_000).astype(float),
    }[dist]
    sketch = QuantileSketch(k=512)
    for chunk in np.array_split(data, 37):
        sketch.update(chunk)
    assert sketch.rank_error() > 0
    assert rank_errors(sketch, data).max() <= sketch.rank_error()


def test_same_input_gives_identical_sketch() -> None:
    data = np.random.default_rng(1).normal(size=100_000)
    a, b = QuantileSketch(k=256), QuantileSketch(k=256)
    a.update(data)
    b.update(data)
    assert a == b


def test_cdf_and_mass() -> None:
    sketch = QuantileSketch()
    sketch.update(np.array([1.0, 2.0, 2.0, 3.0]))
    assert list(sketch.cdf([2.0])) == [0.75]
    assert list(sketch.cdf([2.0], inclusive=False)) == [0.25]
    assert list(sketch.mass([2.0, 3.0])) == [0.25, 0.5, 0.25]


def test_round_trip() -> None:
    sketch = QuantileSketch(k=128)
    sketch.update(np.random.default_rng(2).normal(size=5000))
    assert QuantileSketch.from_dict(sketch.to_dict()) == sketch


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000),
)
def test_merge_within_bound(a: list[float], b: list[float]) -> None:
    left, right = QuantileSketch(k=64), QuantileSketch(k=64)
    left.update(a)
    right.update(b)
    merged = left.merge(right)
    data = np.array(a + b)
    assert merged.n == data.size
    assert rank_errors(merged, data).max() <= max(merged.rank_error(), 1.0 / data.size) + 1e-12


def test_merge_rejects_different_k() -> None:
    with pytest.raises(ValueError, match=r"k=8 and k=16"):
        QuantileSketch(k=8).merge(QuantileSketch(k=16))


def test_frequency_exact_then_bounded() -> None:
    sketch = FrequencySketch(capacity=3)
    sketch.update({"a": 10, "b": 5, "c": 2})
    assert sketch.exact and sketch.distinct == 3
    sketch.update({"d": 1, "a": 1})
    assert not sketch.exact
    assert sketch.top(2) == [("a", 11), ("b", 5)]
    assert sketch.error == 1  # the largest dropped count bounds the undercount
    assert sketch.distinct == 4  # from the HyperLogLog seeded with every value seen


def test_distinct_beyond_capacity_is_estimated_and_mergeable() -> None:
    left, right = FrequencySketch(capacity=100), FrequencySketch(capacity=100)
    for start in range(0, 20_000, 1000):
        left.update({f"u{i}": 1 for i in range(start, start + 1000)})
    right.update({f"u{i}": 2 for i in range(15_000, 30_000)})
    assert not left.exact
    assert left.distinct == pytest.approx(20_000, rel=0.03)
    merged = left.merge(right)
    assert merged.distinct == pytest.approx(30_000, rel=0.03)
    assert FrequencySketch.from_dict(merged.to_dict()) == merged


@given(
    st.lists(st.sampled_from("abcdefg"), max_size=200),
    st.lists(st.sampled_from("abcxyz"), max_size=200),
)
def test_frequency_merge_is_exact_below_capacity(a: list[str], b: list[str]) -> None:
    left, right = FrequencySketch(), FrequencySketch()
    left.update({v: a.count(v) for v in set(a)})
    right.update({v: b.count(v) for v in set(b)})
    merged = left.merge(right)
    assert merged.counts == {v: (a + b).count(v) for v in set(a + b)}
