"""Threshold sweep, curves and cost against scikit-learn and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mooring.config._evaluation import CostConfig
from mooring.evaluation._thresholds import ThresholdCurve, choose_threshold, cost_summary


def _data(seed: int = 0, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 2)


def test_sweep_matches_sklearn_confusion_at_each_threshold() -> None:
    y, p = _data()
    cost = CostConfig(false_positive=1.0, false_negative=4.0, true_positive_benefit=0.5)
    thresholds = np.linspace(0, 1, 41)
    sweep = ThresholdCurve.from_scores(y, p).sweep(thresholds, cost)
    assert sweep.cost_per_1000 is not None
    for i, t in enumerate(thresholds):
        pred = p >= t
        tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert (sweep.tp[i], sweep.fp[i], sweep.fn[i], sweep.tn[i]) == (tp, fp, fn, tn)
        assert sweep.precision[i] == pytest.approx(
            skm.precision_score(y, pred, zero_division=0), abs=1e-12
        )
        assert sweep.recall[i] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
        assert sweep.f1[i] == pytest.approx(skm.f1_score(y, pred, zero_division=0), abs=1e-12)
        assert sweep.fpr[i] == pytest.approx(fp / (fp + tn), abs=1e-12)
        expected_cost = 1000 * (1.0 * fp + 4.0 * fn - 0.5 * tp) / y.size
        assert sweep.cost_per_1000[i] == pytest.approx(expected_cost, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])),
        min_size=1,
        max_size=40,
    ),
    st.floats(0, 10),
    st.floats(0, 10),
)
def test_cost_optimal_threshold_is_the_brute_force_minimum(
    rows: list[tuple[int, float]], c_fp: float, c_fn: float
) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    cost = CostConfig(false_positive=c_fp, false_negative=c_fn)
    threshold, best = ThresholdCurve.from_scores(y, p).optimum("cost", cost)
    brute = []
    for t in [*np.unique(p), 1.1]:
        pred = p >= t
        fp = int((pred & (y == 0)).sum())
        fn = int((~pred & (y == 1)).sum())
        brute.append(1000 * (c_fp * fp + c_fn * fn) / y.size)
    assert best == pytest.approx(min(brute), abs=1e-9)
    pred = p >= threshold
    fp, fn = int((pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
    assert 1000 * (c_fp * fp + c_fn * fn) / y.size == pytest.approx(best, abs=1e-9)


def test_f1_optimal_threshold() -> None:
    y, p = _data(2)
    threshold, best = ThresholdCurve.from_scores(y, p).optimum("f1")
    brute = max(skm.f1_score(y, p >= t) for t in np.unique(p))
    assert best == pytest.approx(brute, abs=1e-12)
    assert skm.f1_score(y, p >= threshold) == pytest.approx(brute, abs=1e-12)


def test_choose_threshold_settings() -> None:
    y, p = _data(3)
    curve = ThresholdCurve.from_scores(y, p)
    cost = CostConfig(false_positive=1.0, false_negative=5.0)
    assert choose_threshold(curve, 0.7, None) == (0.7, "configured")
    t, source = choose_threshold(curve, "cost_optimal", cost)
    assert source == "cost_optimal"
    assert t == curve.optimum("cost", cost)[0]
    summary = cost_summary(curve, cost, 0.5)
    assert summary.optimal_cost_per_1000 <= summary.cost_per_1000
    # A false negative five times dearer than a false positive pushes the threshold down.
    assert summary.optimal_threshold < 0.5


def test_roc_and_pr_points_lie_on_sklearn_curves() -> None:
    y, p = _data(4)
    curve = ThresholdCurve.from_scores(y, p)
    roc = curve.roc_points()
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    assert roc["fpr"][0] == 0.0 and roc["tpr"][0] == 0.0
    assert roc["fpr"][-1] == 1.0 and roc["tpr"][-1] == 1.0
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    reference = set(zip(np.round(fpr, 12), np.round(tpr, 12), strict=True))
    assert all(
        (round(a, 12), round(b, 12)) in reference
        for a, b in zip(roc["fpr"], roc["tpr"], strict=True)
    )
    pr = curve.pr_points()
    assert pr["recall"][-1] == 1.0
