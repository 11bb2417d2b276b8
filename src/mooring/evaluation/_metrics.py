"""Metrics for binary, multiclass and regression models, on arrays, optionally weighted.

Every metric is computed from arrays prepared once (:func:`prepare`), then evaluated for
any vector of per-row weights. Weights are how bootstrap resamples are scored without
copying or re-sorting the data: a resample that draws row ``i`` three times is the full
data with weight 3 on row ``i`` (see :mod:`mooring.evaluation._bootstrap`).

The definitions follow scikit-learn, which the tests use as the reference:

- ``auc`` is ROC AUC (ties count one half); ``pr_auc`` is average precision, the
  step-wise area under the precision-recall curve (``average_precision_score``).
- ``log_loss`` clips probabilities to ``[eps, 1 - eps]`` with the float64 machine epsilon.
- Precision, recall and F1 are 0.0 where their denominator is 0 (scikit-learn's
  ``zero_division`` default); a row is predicted positive when its probability is
  ``>= threshold``.
- ``ece`` / ``mce``: expected and maximum calibration error over equal-width bins of the
  positive-class probability (binary) or of the top-label confidence (multiclass), with
  the bin edges of ``sklearn.calibration.calibration_curve``.
- ``mape`` leaves out rows whose target is 0 (where it is undefined) instead of dividing
  by a tiny number; ``mape_zero_targets`` counts them.

A metric that cannot be computed (ROC AUC with a single class present, R² with constant
targets) is ``None`` in results, never a made-up number.

Examples:
    >>> import numpy as np
    >>> suite = prepare("binary", labels=np.array([0, 1, 1, 0]),
    ...                 predictions=np.array([0.1, 0.8, 0.6, 0.4]))
    >>> round(suite.compute(["auc"])["auc"], 3)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from mooring.config._model import METRIC_HIGHER_IS_BETTER, PRIMARY_METRIC
from mooring.errors import UsageError

__all__ = [
    "HEADLINE",
    "HIGHER_IS_BETTER",
    "PRIMARY",
    "FloatArray",
    "IntArray",
    "MetricSuite",
    "Task",
    "calibration_bin_ids",
    "check_inputs",
    "prepare",
]

Task = Literal["binary", "multiclass", "regression"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Weights = FloatArray | None

EPS = float(np.finfo(np.float64).eps)

#: The metrics shown first in reports and bootstrapped by default, per task.
HEADLINE: dict[str, tuple[str, ...]] = {
    "binary": (
        "auc",
        "pr_auc",
        "log_loss",
        "brier",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "ece",
    ),
    "multiclass": ("accuracy", "macro_f1", "micro_f1", "log_loss", "top_k_accuracy", "ece"),
    "regression": ("rmse", "mae", "r2", "mape"),
}

#: The metric slices and windows are compared on (and candidates, unless ``select`` says).
PRIMARY: dict[str, str] = dict(PRIMARY_METRIC)

#: Direction of every metric mooring computes (used by reports, flagging and ``select``).
HIGHER_IS_BETTER: dict[str, bool] = {
    **METRIC_HIGHER_IS_BETTER,
    "flip_rate": False,
    "mean_abs_diff": False,
}


def _wsum(values: FloatArray, weights: Weights) -> float:
    return float(values.sum() if weights is None else np.dot(values, weights))


def _wcount(n: int, weights: Weights) -> float:
    return float(n if weights is None else weights.sum())


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def calibration_bin_ids(probabilities: FloatArray, bins: int) -> IntArray:
    """Equal-width bin of each probability, with scikit-learn's ``calibration_curve`` edges.

    Bin ``i`` holds ``(edge_i, edge_i+1]``; 0.0 falls in the first bin.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.searchsorted(edges[1:-1], probabilities).astype(np.int64)


@dataclass
class MetricSuite:
    """Arrays prepared once for one task; :meth:`compute` scores them for any weights."""

    task: Task
    n: int
    functions: dict[str, Callable[[Weights], float]] = field(repr=False)
    #: Metrics that are lists (per class), computed only for the full data.
    extras: dict[str, Callable[[], object]] = field(default_factory=dict, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        """Every scalar metric this suite can compute."""
        return tuple(self.functions)

    def compute(
        self, names: Sequence[str] | None = None, weights: Weights = None
    ) -> dict[str, float | None]:
        """Score the named metrics (default: all); ``None`` where a metric is undefined."""
        out: dict[str, float | None] = {}
        for name in names or self.names:
            value = float(self.functions[name](weights))
            out[name] = value if math.isfinite(value) else None
        return out

    def compute_raw(self, names: Sequence[str], weights: Weights) -> FloatArray:
        """Like :meth:`compute` but as a float array with NaN for undefined (bootstrap)."""
        return np.array([self.functions[name](weights) for name in names], dtype=np.float64)


def prepare(
    task: Task,
    *,
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    threshold: float = 0.5,
    calibration_bins: int = 10,
    top_k: int = 3,
) -> MetricSuite:
    """Check and prepare arrays for ``task``.

    Args:
        labels: binary: 0/1; multiclass: class index 0..K-1; regression: targets.
        predictions: binary: positive-class probability, shape [n]; multiclass:
            probabilities, shape [n, K]; regression: predicted values, shape [n].
        threshold: operating threshold of binary threshold metrics.
    """
    y, pred = check_inputs(task, labels, predictions)
    if task == "binary":
        return _binary(y, pred, threshold, calibration_bins)
    if task == "multiclass":
        return _multiclass(y.astype(np.int64), pred, calibration_bins, top_k)
    return _regression(y, pred)


def check_inputs(
    task: Task, labels: npt.ArrayLike, predictions: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Validate labels and predictions for ``task``; return them as float64 arrays."""
    if task == "binary":
        y = _as_float(labels, "labels")
        p = _as_float(predictions, "probabilities")
        _same_length(y, p)
        if not np.isin(y, (0.0, 1.0)).all():
            raise UsageError("binary labels must be 0 or 1; encode the positive class as 1")
        _check_unit(p)
        return y, p
    if task == "multiclass":
        yi = np.asarray(labels, dtype=np.int64)
        proba = np.asarray(predictions, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] < 2:
            raise UsageError(
                f"multiclass probabilities must have shape [rows, classes]; got {proba.shape}"
            )
        _same_length(yi, proba)
        if yi.min() < 0 or yi.max() >= proba.shape[1]:
            raise UsageError(
                f"multiclass labels must be class indices 0..{proba.shape[1] - 1}; "
                f"got values in [{yi.min()}, {yi.max()}]"
            )
        _check_unit(proba)
        return yi.astype(np.float64), proba
    if task == "regression":
        y = _as_float(labels, "labels")
        v = _as_float(predictions, "values")
        _same_length(y, v)
        return y, v
    raise UsageError(f"unknown task {task!r}; use 'binary', 'multiclass' or 'regression'")


def _as_float(values: npt.ArrayLike, what: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise UsageError(f"{what} must be one-dimensional; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise UsageError(
            f"{what} contain {int((~np.isfinite(arr)).sum())} NaN or infinite values; "
            "drop those rows or fix the model"
        )
    return arr


def _same_length(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> None:
    if a.shape[0] != b.shape[0]:
        raise UsageError(f"labels have {a.shape[0]} rows but predictions have {b.shape[0]}")
    if a.shape[0] == 0:
        raise UsageError("no rows to evaluate; the evaluation data is empty")


def _check_unit(p: FloatArray) -> None:
    if not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0:
        raise UsageError(
            "probabilities must lie in [0, 1]; got values in "
            f"[{np.nanmin(p):.4g}, {np.nanmax(p):.4g}] — pass probabilities, not logits"
        )


# --------------------------------------------------------------------------- binary


def _binary(y: FloatArray, p: FloatArray, threshold: float, bins: int) -> MetricSuite:
    n = y.size
    # Distinct scores in ascending order; code = group + n_groups * label lets one weighted
    # bincount give per-group negative then positive weight for AUC and AP.
    _, group = np.unique(p, return_inverse=True)
    n_groups = int(group.max()) + 1
    code = group.astype(np.int64) + n_groups * y.astype(np.int64)
    q = np.where(y == 1.0, p, 1.0 - p)
    row_log_loss = -np.log(np.clip(q, EPS, 1.0 - EPS))
    row_brier = (p - y) ** 2
    predicted = p >= threshold
    confusion_code = 2 * predicted.astype(np.int64) + y.astype(np.int64)  # 0 tn 1 fn 2 fp 3 tp
    bin_ids = calibration_bin_ids(p, bins)

    def group_weights(w: Weights) -> tuple[FloatArray, FloatArray]:
        counts = np.asarray(np.bincount(code, weights=w, minlength=2 * n_groups), np.float64)
        return counts[n_groups:], counts[:n_groups]

    def auc(w: Weights) -> float:
        pos, neg = group_weights(w)
        neg_up_to = np.cumsum(neg)
        total_pos, total_neg = pos.sum(), neg_up_to[-1]
        if total_pos == 0 or total_neg == 0:
            return math.nan
        # Each positive beats the negatives below it and ties half of those level with it.
        wins = np.dot(pos, neg_up_to) - 0.5 * np.dot(pos, neg)
        return float(wins / (total_pos * total_neg))

    def pr_auc(w: Weights) -> float:
        pos, neg = group_weights(w)
        total_pos = pos.sum()
        if total_pos == 0 or neg.sum() + total_pos == 0:
            return math.nan
        tps = np.cumsum(pos[::-1])
        fps = np.cumsum(neg[::-1])
        predicted_pos = tps + fps
        precision = np.divide(tps, predicted_pos, out=np.zeros_like(tps), where=predicted_pos > 0)
        recall_step = pos[::-1] / total_pos
        return float(np.dot(recall_step, precision))

    def confusion(w: Weights) -> FloatArray:
        return np.bincount(confusion_code, weights=w, minlength=4).astype(np.float64)

    def accuracy(w: Weights) -> float:
        tn, _, _, tp = confusion(w)
        return _ratio(tn + tp, _wcount(n, w))

    def precision(w: Weights) -> float:
        _, _, fp, tp = confusion(w)
        return _ratio(tp, tp + fp)

    def recall(w: Weights) -> float:
        _, fn, _, tp = confusion(w)
        return _ratio(tp, tp + fn) if tp + fn > 0 else math.nan

    def f1(w: Weights) -> float:
        _, fn, fp, tp = confusion(w)
        return _ratio(2 * tp, 2 * tp + fp + fn)

    def calibration_errors(w: Weights) -> tuple[float, float]:
        count = np.bincount(bin_ids, weights=w, minlength=bins).astype(np.float64)
        hits = np.bincount(bin_ids, weights=y if w is None else y * w, minlength=bins)
        conf = np.bincount(bin_ids, weights=p if w is None else p * w, minlength=bins)
        filled = count > 0
        gap = np.abs(hits[filled] - conf[filled]) / count[filled]
        return float(np.dot(gap, count[filled]) / count.sum()), float(gap.max())

    functions: dict[str, Callable[[Weights], float]] = {
        "auc": auc,
        "pr_auc": pr_auc,
        "log_loss": lambda w: _wsum(row_log_loss, w) / _wcount(n, w),
        "brier": lambda w: _wsum(row_brier, w) / _wcount(n, w),
        "accuracy": accuracy,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ece": lambda w: calibration_errors(w)[0],
        "mce": lambda w: calibration_errors(w)[1],
        "prevalence": lambda w: _wsum(y, w) / _wcount(n, w),
    }
    return MetricSuite("binary", n, functions)


# ----------------------------------------------------------------------- multiclass


def _multiclass(y: IntArray, proba: FloatArray, bins: int, top_k: int) -> MetricSuite:
    n, k = proba.shape
    rows = np.arange(n)
    predicted = np.argmax(proba, axis=1).astype(np.int64)
    correct = (predicted == y).astype(np.float64)
    true_p = proba[rows, y]
    # Rank of the true class as scikit-learn's top_k_accuracy_score sorts (stable, ties
    # broken towards the higher class index).
    above = (proba > true_p[:, None]).sum(axis=1)
    tied_after = ((proba == true_p[:, None]) & (np.arange(k)[None, :] > y[:, None])).sum(axis=1)
    in_top_k = ((above + tied_after) < top_k).astype(np.float64)
    row_log_loss = -np.log(np.clip(true_p, EPS, 1.0 - EPS))
    confusion_code = y * k + predicted
    confidence = proba[rows, predicted]
    bin_ids = calibration_bin_ids(confidence, bins)

    def confusion(w: Weights) -> FloatArray:
        flat = np.bincount(confusion_code, weights=w, minlength=k * k)
        return flat.reshape(k, k).astype(np.float64)

    def f1_scores(w: Weights) -> tuple[FloatArray, FloatArray]:
        cm = confusion(w)
        tp = np.diag(cm)
        actual = cm.sum(axis=1)
        predicted_count = cm.sum(axis=0)
        den = actual + predicted_count
        f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
        return f1, den > 0

    def macro_f1(w: Weights) -> float:
        f1, present = f1_scores(w)
        return float(f1[present].mean())

    def micro_f1(w: Weights) -> float:
        # Single-label multiclass: every error is one FP and one FN, so micro F1 = accuracy.
        return _wsum(correct, w) / _wcount(n, w)

    def calibration_errors(w: Weights) -> tuple[float, float]:
        count = np.bincount(bin_ids, weights=w, minlength=bins).astype(np.float64)
        hits = np.bincount(bin_ids, weights=correct if w is None else correct * w, minlength=bins)
        conf = np.bincount(
            bin_ids, weights=confidence if w is None else confidence * w, minlength=bins
        )
        filled = count > 0
        gap = np.abs(hits[filled] - conf[filled]) / count[filled]
        return float(np.dot(gap, count[filled]) / count.sum()), float(gap.max())

    def per_class() -> object:
        cm = confusion(None)
        tp = np.diag(cm)
        actual = cm.sum(axis=1)
        predicted_count = cm.sum(axis=0)
        return {
            "precision": [_ratio(a, b) for a, b in zip(tp, predicted_count, strict=True)],
            "recall": [_ratio(a, b) for a, b in zip(tp, actual, strict=True)],
            "support": [int(a) for a in actual],
            "confusion_matrix": cm.astype(np.int64).tolist(),
        }

    functions: dict[str, Callable[[Weights], float]] = {
        "accuracy": lambda w: _wsum(correct, w) / _wcount(n, w),
        "macro_f1": macro_f1,
        "micro_f1": micro_f1,
        "log_loss": lambda w: _wsum(row_log_loss, w) / _wcount(n, w),
        "top_k_accuracy": lambda w: _wsum(in_top_k, w) / _wcount(n, w),
        "ece": lambda w: calibration_errors(w)[0],
        "mce": lambda w: calibration_errors(w)[1],
    }
    return MetricSuite("multiclass", n, functions, extras={"per_class": per_class})


# ----------------------------------------------------------------------- regression


def _regression(y: FloatArray, v: FloatArray) -> MetricSuite:
    n = y.size
    err = v - y
    sq = err**2
    abs_err = np.abs(err)
    nonzero = y != 0.0
    ape = np.divide(abs_err, np.abs(y), out=np.zeros_like(abs_err), where=nonzero)
    nonzero_f = nonzero.astype(np.float64)

    def r2(w: Weights) -> float:
        total = _wcount(n, w)
        mean = _wsum(y, w) / total
        ss_tot = _wsum((y - mean) ** 2, w)
        if ss_tot <= 0.0:
            return math.nan
        return 1.0 - _wsum(sq, w) / ss_tot

    def mape(w: Weights) -> float:
        den = _wsum(nonzero_f, w)
        return _wsum(ape, w) / den if den > 0 else math.nan

    functions: dict[str, Callable[[Weights], float]] = {
        "rmse": lambda w: math.sqrt(_wsum(sq, w) / _wcount(n, w)),
        "mae": lambda w: _wsum(abs_err, w) / _wcount(n, w),
        "r2": r2,
        "mape": mape,
        "mape_zero_targets": lambda w: _wcount(n, w) - _wsum(nonzero_f, w),
        "mean_label": lambda w: _wsum(y, w) / _wcount(n, w),
        "mean_prediction": lambda w: _wsum(v, w) / _wcount(n, w),
    }
    return MetricSuite("regression", n, functions)
