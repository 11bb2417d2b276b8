"""Calibration against sklearn.calibration.calibration_curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from mooring.evaluation._calibration import (
    calibration,
    multiclass_calibration,
    regression_calibration,
)


@pytest.mark.parametrize("bins", [5, 10, 17])
def test_reliability_curve_matches_sklearn(bins: int) -> None:
    rng = np.random.default_rng(bins)
    p = rng.random(2000) ** 2
    y = (rng.random(2000) < p).astype(int)
    p[:5] = [0.0, 0.2, 0.4, 1.0, 0.5]  # values exactly on bin edges
    cal = calibration(y, p, bins)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins)
    filled = [b for b in cal.bins if b.count]
    np.testing.assert_allclose([b.observed for b in filled], prob_true, atol=1e-12)
    np.testing.assert_allclose([b.mean_predicted for b in filled], prob_pred, atol=1e-12)
    counts = np.array([b.count for b in filled])
    gaps = np.abs(prob_true - prob_pred)
    assert cal.ece == pytest.approx(np.dot(gaps, counts) / counts.sum(), abs=1e-12)
    assert cal.mce == pytest.approx(gaps.max(), abs=1e-12)
    assert cal.ratio == pytest.approx(p.sum() / y.sum())
    assert sum(b.count for b in cal.bins) == 2000
    assert len(cal.bins) == bins


def test_ratio_without_positives_is_undefined() -> None:
    assert calibration(np.zeros(4), np.full(4, 0.1), 10).ratio is None


def test_multiclass_top_label_and_per_class_ratio() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    cal = multiclass_calibration(y, proba, 10)
    prob_true, prob_pred = calibration_curve(
        (proba.argmax(1) == y).astype(int), proba.max(1), n_bins=10
    )
    filled = [b for b in cal.bins if b.count]
    np.testing.assert_allclose([b.observed for b in filled], prob_true)
    np.testing.assert_allclose([b.mean_predicted for b in filled], prob_pred)
    assert cal.per_class_ratio == pytest.approx([1.7 / 1, 1.0 / 1, 1.3 / 2])


def test_regression_ratio() -> None:
    cal = regression_calibration(np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    assert cal.ratio == 1.5
    assert cal.bins == []
