"""Every metric against scikit-learn on random data, including the edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mooring.errors import UsageError
from mooring.evaluation._metrics import prepare

TOL = 1e-9


def _binary_data(seed: int, n: int, *, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + 0.65 * rng.random(n), 0.0, 1.0)
    return y, (np.round(p, 2) if ties else p)


def _ece_reference(y: np.ndarray, p: np.ndarray, bins: int) -> tuple[float, float]:
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    edges = np.linspace(0, 1, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    counts = counts[counts > 0]
    gaps = np.abs(prob_true - prob_pred)
    return float(np.dot(gaps, counts) / counts.sum()), float(gaps.max())


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_sklearn(seed: int, ties: bool) -> None:
    y, p = _binary_data(seed, 1500, ties=ties)
    got = prepare("binary", labels=y, predictions=p, threshold=0.6).compute()
    pred = p >= 0.6
    ece, mce = _ece_reference(y, p, 10)
    expected = {
        "auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, p),
        "brier": skm.brier_score_loss(y, p),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "ece": ece,
        "mce": mce,
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=TOL), name


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=2, max_size=60),
    data=st.data(),
)
def test_binary_auc_and_ap_property(labels: list[int], data: st.DataObject) -> None:
    y = np.array(labels)
    scores = data.draw(
        st.lists(
            st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), min_size=y.size, max_size=y.size
        )
    )
    p = np.array(scores)
    got = prepare("binary", labels=y, predictions=p).compute(["auc", "pr_auc", "log_loss"])
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), abs=TOL)
    if 0 < y.sum() < y.size:
        assert got["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=TOL)
        assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, p), abs=TOL)
    else:
        assert got["auc"] is None


def test_single_class_leaves_ranking_metrics_undefined() -> None:
    y = np.ones(50, dtype=int)
    p = np.linspace(0.01, 0.99, 50)
    got = prepare("binary", labels=y, predictions=p).compute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(skm.roc_auc_score(y, p))
    assert got["auc"] is None
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), abs=TOL)
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, p, labels=[0, 1]), abs=TOL)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, p >= 0.5), abs=TOL)

    negatives = prepare("binary", labels=np.zeros(50), predictions=p).compute()
    assert negatives["auc"] is None
    assert negatives["pr_auc"] is None
    assert negatives["recall"] is None  # no positives: recall undefined, not 0


def test_all_predictions_equal() -> None:
    y, _ = _binary_data(3, 400, ties=False)
    p = np.full(400, 0.3)
    got = prepare("binary", labels=y, predictions=p).compute()
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=TOL)
    assert got["auc"] == 0.5
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, p), abs=TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert got["precision"] == skm.precision_score(y, p >= 0.5)  # zero_division → 0
    assert got["f1"] == skm.f1_score(y, p >= 0.5, zero_division=0)


def test_extreme_probabilities_are_clipped_like_sklearn() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([1.0, 0.0, 1.0, 0.0])
    got = prepare("binary", labels=y, predictions=p).compute(["log_loss"])
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=TOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 900, 5
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += 0.3 * rng.random(n)
    proba /= proba.sum(axis=1, keepdims=True)
    suite = prepare("multiclass", labels=y, predictions=proba, top_k=2)
    got = suite.compute()
    pred = proba.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=TOL)
    assert got["micro_f1"] == pytest.approx(skm.f1_score(y, pred, average="micro"), abs=TOL)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba), abs=TOL)
    assert got["top_k_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(y, proba, k=2, labels=range(k)), abs=TOL
    )
    per_class = suite.extras["per_class"]()
    assert isinstance(per_class, dict)
    np.testing.assert_allclose(
        per_class["precision"],
        skm.precision_score(y, pred, average=None, labels=range(k), zero_division=0),
        atol=TOL,
    )
    np.testing.assert_allclose(
        per_class["recall"], skm.recall_score(y, pred, average=None, labels=range(k)), atol=TOL
    )
    conf = proba.max(axis=1)
    ece, mce = _ece_reference((pred == y).astype(int), conf, 10)
    assert got["ece"] == pytest.approx(ece, abs=TOL)
    assert got["mce"] == pytest.approx(mce, abs=TOL)


def test_multiclass_top_k_ties_and_absent_classes() -> None:
    # Ties everywhere and class 3 never predicted nor present.
    y = np.array([0, 1, 2, 0, 1, 2, 0, 0])
    proba = np.array([[0.25, 0.25, 0.25, 0.25]] * 4 + [[0.5, 0.5, 0.0, 0.0]] * 4)
    got = prepare("multiclass", labels=y, predictions=proba, top_k=2).compute()
    pred = proba.argmax(axis=1)
    assert got["top_k_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(y, proba, k=2, labels=range(4)), abs=TOL
    )
    assert got["macro_f1"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", zero_division=0), abs=TOL
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 700)
    y[:20] = 0.0  # zero targets: MAPE must leave them out, not explode
    v = y + rng.normal(0, 1, 700)
    got = prepare("regression", labels=y, predictions=v).compute()
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, v), abs=TOL)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, v), abs=TOL)
    assert got["r2"] == pytest.approx(skm.r2_score(y, v), abs=TOL)
    nz = y != 0
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[nz], v[nz]), abs=TOL)
    assert got["mape_zero_targets"] == 20
    assert skm.mean_absolute_percentage_error(y, v) > 1e6  # what an unguarded MAPE reports


def test_regression_edge_cases() -> None:
    y = np.full(30, 4.0)
    v = np.linspace(3, 5, 30)
    got = prepare("regression", labels=y, predictions=v).compute()
    with np.errstate(divide="ignore"):
        assert not np.isfinite(skm.r2_score(y, v, force_finite=False))
    assert got["r2"] is None  # constant targets: undefined
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, v), abs=TOL)
    zeros = prepare("regression", labels=np.zeros(5), predictions=np.ones(5)).compute()
    assert zeros["mape"] is None


def test_weights_equal_materialised_resample() -> None:
    y, p = _binary_data(7, 500, ties=True)
    suite = prepare("binary", labels=y, predictions=p)
    idx = np.random.default_rng(0).integers(0, 500, 500)
    weights = np.bincount(idx, minlength=500).astype(np.float64)
    weighted = suite.compute(weights=weights)
    direct = prepare("binary", labels=y[idx], predictions=p[idx]).compute()
    for name, value in direct.items():
        assert weighted[name] == pytest.approx(value, abs=TOL), name


def test_bad_inputs_are_rejected_with_a_fix() -> None:
    with pytest.raises(UsageError, match="must be 0 or 1"):
        prepare("binary", labels=[0, 2], predictions=[0.1, 0.2])
    with pytest.raises(UsageError, match="not logits"):
        prepare("binary", labels=[0, 1], predictions=[-3.0, 2.0])
    with pytest.raises(UsageError, match="2 rows but predictions have 3"):
        prepare("regression", labels=[0, 1], predictions=[1.0, 2.0, 3.0])
    with pytest.raises(UsageError, match="NaN"):
        prepare("regression", labels=[0, 1], predictions=[1.0, float("nan")])
    with pytest.raises(UsageError, match=r"class indices 0\.\.2"):
        prepare("multiclass", labels=[0, 3], predictions=np.full((2, 3), 1 / 3))
    with pytest.raises(UsageError, match="unknown task"):
        prepare("ranking", labels=[0], predictions=[0.0])  # type: ignore[arg-type]
