"""Bootstrap intervals: same indices and values as the plain scikit-learn loop, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from mooring.evaluation._bootstrap import bootstrap, bootstrap_indices, bootstrap_values
from mooring.evaluation._metrics import prepare


def _data(n: int = 800) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, n)
    return y, np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 3)


def test_values_equal_the_sklearn_loop_on_the_same_indices() -> None:
    y, p = _data()
    suite = prepare("binary", labels=y, predictions=p)
    values = bootstrap_values(suite, ["auc", "log_loss"], samples=40, seed=11)
    for b, idx in enumerate(bootstrap_indices(y.size, 40, 11)):
        assert values[b, 0] == pytest.approx(roc_auc_score(y[idx], p[idx]), abs=1e-9)
        assert values[b, 1] == pytest.approx(log_loss(y[idx], p[idx]), abs=1e-9)


def test_indices_come_from_default_rng_integers() -> None:
    rng = np.random.default_rng(3)
    first, second = list(bootstrap_indices(100, 2, 3))
    np.testing.assert_array_equal(first, rng.integers(0, 100, size=100))
    np.testing.assert_array_equal(second, rng.integers(0, 100, size=100))


def test_seeded_and_reproducible() -> None:
    y, p = _data()
    suite = prepare("binary", labels=y, predictions=p)
    a = bootstrap(suite, ["auc", "f1"], samples=100, seed=1)
    b = bootstrap(suite, ["auc", "f1"], samples=100, seed=1)
    c = bootstrap(suite, ["auc", "f1"], samples=100, seed=2)
    assert a == b
    assert a["auc"] != c["auc"]
    point = suite.compute(["auc"])["auc"]
    assert point is not None
    assert a["auc"].lower < point < a["auc"].upper
    assert a["auc"].samples == 100
    assert a["auc"].skipped == 0


def test_interval_matches_numpy_percentiles() -> None:
    y, p = _data(300)
    suite = prepare("binary", labels=y, predictions=p)
    ci = bootstrap(suite, ["brier"], samples=200, seed=4, confidence=0.9)["brier"]
    reference = [np.mean((p[idx] - y[idx]) ** 2) for idx in bootstrap_indices(300, 200, 4)]
    lo, hi = np.quantile(reference, [0.05, 0.95])
    assert ci.lower == pytest.approx(lo, abs=1e-12)
    assert ci.upper == pytest.approx(hi, abs=1e-12)


def test_resamples_where_the_metric_is_undefined_are_skipped() -> None:
    y = np.array([1] + [0] * 9)
    p = np.linspace(0.1, 0.9, 10)
    suite = prepare("binary", labels=y, predictions=p)
    ci = bootstrap(suite, ["auc"], samples=200, seed=0)["auc"]
    assert ci.skipped > 0
    assert ci.samples + ci.skipped == 200


def test_zero_samples_turns_intervals_off() -> None:
    y, p = _data(50)
    assert bootstrap(prepare("binary", labels=y, predictions=p), ["auc"], samples=0, seed=0) == {}
