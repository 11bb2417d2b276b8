"""Threshold sweep, ROC/PR curves, cost mapping and the choice of an operating threshold.

A row is predicted positive when its positive-class probability is ``>= threshold``
(scikit-learn's ``roc_curve`` convention). Everything here comes from one sort of the
scores and cumulative counts, so a sweep of any number of thresholds costs one
``searchsorted``.

Cost: each false positive costs ``false_positive``, each false negative
``false_negative``, and each true positive earns ``true_positive_benefit``; the expected
cost is reported per 1,000 predictions.

Examples:
    >>> import numpy as np
    >>> curve = ThresholdCurve.from_scores(np.array([0, 1, 1, 0]), np.array([.2, .9, .6, .7]))
    >>> sweep = curve.sweep(np.array([0.5]))
    >>> float(sweep.precision[0]), float(sweep.recall[0])
    (0.6666666666666666, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mooring.config._evaluation import CostConfig, ThresholdTarget
from mooring.evaluation._metrics import FloatArray

__all__ = [
    "CostSummary",
    "Sweep",
    "ThresholdCurve",
    "choose_threshold",
    "cost_summary",
    "jsonable",
    "sweep_grid",
]


def _div(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


@dataclass(frozen=True)
class Sweep:
    """Confusion counts and rates at each threshold of a sweep."""

    thresholds: FloatArray
    tp: FloatArray
    fp: FloatArray
    fn: FloatArray
    tn: FloatArray
    cost_per_1000: FloatArray | None

    @property
    def precision(self) -> FloatArray:
        """TP / (TP + FP); 0 where nothing is predicted positive (scikit-learn's default)."""
        return _div(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> FloatArray:
        """TP / (TP + FN), the true positive rate."""
        return _div(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> FloatArray:
        """2 TP / (2 TP + FP + FN)."""
        return _div(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def fpr(self) -> FloatArray:
        """FP / (FP + TN), the false positive rate."""
        return _div(self.fp, self.fp + self.tn)

    @property
    def predicted_positive_rate(self) -> FloatArray:
        """Share of rows predicted positive."""
        return (self.tp + self.fp) / (self.tp + self.fp + self.fn + self.tn)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain JSON-able dict of lists."""
        out = {
            "threshold": self.thresholds.tolist(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "f1": self.f1.tolist(),
            "fpr": self.fpr.tolist(),
            "predicted_positive_rate": self.predicted_positive_rate.tolist(),
        }
        if self.cost_per_1000 is not None:
            out["cost_per_1000"] = self.cost_per_1000.tolist()
        return out


@dataclass(frozen=True)
class CostSummary:
    """Expected cost at the operating threshold and the cost-optimal threshold."""

    false_positive: float
    false_negative: float
    true_positive_benefit: float
    operating_threshold: float
    cost_per_1000: float
    optimal_threshold: float
    optimal_cost_per_1000: float

    def to_dict(self) -> dict[str, float]:
        """Plain JSON-able dict."""
        return dict(self.__dict__)


class ThresholdCurve:
    """Scores sorted once, with cumulative positives, answering threshold questions."""

    def __init__(self, sorted_scores: FloatArray, positives_below: FloatArray) -> None:
        self._scores = sorted_scores
        self._pos_below = positives_below  # [k] = positives among the k lowest scores
        self.n = int(sorted_scores.size)
        self.positives = float(positives_below[-1])
        self.negatives = float(self.n - self.positives)

    @classmethod
    def from_scores(cls, labels: npt.ArrayLike, scores: npt.ArrayLike) -> ThresholdCurve:
        """Build from 0/1 labels and positive-class scores."""
        y = np.asarray(labels, dtype=np.float64)
        s = np.asarray(scores, dtype=np.float64)
        order = np.argsort(s, kind="stable")
        sorted_y = y[order]
        positives_below = np.concatenate(([0.0], np.cumsum(sorted_y)))
        return cls(s[order], positives_below)

    def counts_at(self, thresholds: FloatArray) -> tuple[FloatArray, ...]:
        """(tp, fp, fn, tn) for predicting positive when score >= threshold."""
        below = np.searchsorted(self._scores, thresholds, side="left")
        fn = self._pos_below[below]
        tn = below - fn
        tp = self.positives - fn
        fp = self.negatives - tn
        return tp, fp, fn, tn.astype(np.float64)

    def sweep(self, thresholds: FloatArray, cost: CostConfig | None = None) -> Sweep:
        """Confusion counts (and cost per 1,000 predictions) at each threshold."""
        thresholds = np.asarray(thresholds, dtype=np.float64)
        tp, fp, fn, tn = self.counts_at(thresholds)
        cost_per_1000 = None if cost is None else _cost_per_1000(tp, fp, fn, self.n, cost)
        return Sweep(thresholds, tp, fp, fn, tn, cost_per_1000)

    def candidates(self) -> FloatArray:
        """Every threshold that changes a prediction: each distinct score, plus one above all."""
        distinct = np.unique(self._scores)
        return np.concatenate((distinct, [np.nextafter(distinct[-1], np.inf)]))

    def roc_points(self, max_points: int = 200) -> dict[str, list[float]]:
        """ROC curve (fpr, tpr) at up to ``max_points`` thresholds, for plots."""
        sweep = self.sweep(self._plot_thresholds(max_points))
        return {"fpr": sweep.fpr.tolist()[::-1], "tpr": sweep.recall.tolist()[::-1]}

    def pr_points(self, max_points: int = 200) -> dict[str, list[float]]:
        """Precision-recall curve at up to ``max_points`` thresholds, for plots."""
        sweep = self.sweep(self._plot_thresholds(max_points))
        keep = (sweep.tp + sweep.fp) > 0
        return {
            "recall": sweep.recall[keep].tolist()[::-1],
            "precision": sweep.precision[keep].tolist()[::-1],
        }

    def _plot_thresholds(self, max_points: int) -> FloatArray:
        candidates = self.candidates()
        if candidates.size > max_points:
            picks = np.linspace(0, candidates.size - 1, max_points).round().astype(np.int64)
            candidates = candidates[np.unique(picks)]
        return np.concatenate(([-np.inf], candidates))

    def optimum(self, objective: str, cost: CostConfig | None = None) -> tuple[float, float]:
        """Exact best threshold over every distinct score: (threshold, objective value).

        ``objective`` is ``"cost"`` (minimised; needs ``cost``) or ``"f1"`` (maximised).
        Ties go to the highest threshold, the most conservative choice.
        """
        candidates = self.candidates()
        tp, fp, fn, _ = self.counts_at(candidates)
        if objective == "cost":
            if cost is None:
                raise ValueError("cost objective needs a CostConfig")
            values = _cost_per_1000(tp, fp, fn, self.n, cost)
            best = int(np.flatnonzero(values == values.min())[-1])
        else:
            values = _div(2 * tp, 2 * tp + fp + fn)
            best = int(np.flatnonzero(values == values.max())[-1])
        return float(candidates[best]), float(values[best])

    def target(self, metric: str, value: float) -> tuple[float, float, bool]:
        """The threshold for a precision or recall target: (threshold, achieved, reached).

        Precision: the lowest threshold (the most positives found) whose precision is at
        least ``value``. Recall: the highest threshold (the fewest false alarms) whose
        recall is at least ``value``. Unreachable (a precision no threshold attains): the
        threshold of the highest precision, ``reached`` False.

        >>> curve = ThresholdCurve.from_scores(np.array([0, 0, 1, 1]), np.array([.1, .6, .4, .9]))
        >>> curve.target("precision", 1.0)
        (0.9, 1.0, True)
        >>> curve.target("recall", 1.0)
        (0.4, 1.0, True)
        """
        candidates = self.candidates()
        tp, fp, fn, _ = self.counts_at(candidates)
        precision, recall = _div(tp, tp + fp), _div(tp, tp + fn)
        if metric == "precision":
            ok = np.flatnonzero((precision >= value) & (tp > 0))
            if ok.size == 0:
                best = int(np.flatnonzero(precision == precision.max())[0])
                return float(candidates[best]), float(precision[best]), False
            return float(candidates[ok[0]]), float(precision[ok[0]]), True
        ok = np.flatnonzero(recall >= value)
        pick = int(ok[-1])  # the threshold at the lowest score always reaches recall 1
        return float(candidates[pick]), float(recall[pick]), True


def _cost_per_1000(
    tp: FloatArray, fp: FloatArray, fn: FloatArray, n: int, cost: CostConfig
) -> FloatArray:
    total = cost.false_positive * fp + cost.false_negative * fn - cost.true_positive_benefit * tp
    result: FloatArray = 1000.0 * total / n
    return result


def choose_threshold(
    curve: ThresholdCurve, setting: float | str | ThresholdTarget, cost: CostConfig | None
) -> tuple[float, str]:
    """The operating threshold for a configured ``threshold`` setting, and how it was chosen.

    The source is ``configured`` (a number), ``f1_optimal``, ``cost_optimal``,
    ``precision_target`` or ``recall_target``.
    """
    if isinstance(setting, ThresholdTarget):
        threshold, _, _ = curve.target(setting.metric, setting.value)
        return threshold, setting.source
    if isinstance(setting, str):
        objective = "cost" if setting == "cost_optimal" else "f1"
        threshold, _ = curve.optimum(objective, cost)
        return threshold, setting
    return float(setting), "configured"


def cost_summary(
    curve: ThresholdCurve, cost: CostConfig, operating_threshold: float
) -> CostSummary:
    """Expected cost per 1,000 predictions at the operating and at the optimal threshold."""
    tp, fp, fn, _ = curve.counts_at(np.array([operating_threshold]))
    at_operating = _cost_per_1000(tp, fp, fn, curve.n, cost)
    optimal, optimal_cost = curve.optimum("cost", cost)
    return CostSummary(
        false_positive=cost.false_positive,
        false_negative=cost.false_negative,
        true_positive_benefit=cost.true_positive_benefit,
        operating_threshold=operating_threshold,
        cost_per_1000=float(at_operating[0]),
        optimal_threshold=optimal,
        optimal_cost_per_1000=optimal_cost,
    )


def sweep_grid(points: int) -> FloatArray:
    """``points`` evenly spaced thresholds on [0, 1]."""
    return np.linspace(0.0, 1.0, points)


def jsonable(value: Any) -> Any:
    """Replace NaN and infinities by ``None`` recursively (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
