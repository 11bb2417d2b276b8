"""Calibration: reliability curve, expected and maximum calibration error, and the ratio
of the sum of predictions to the sum of labels.

Binary models are judged on the positive-class probability against the 0/1 label;
multiclass models on the top-label confidence against whether the top label was right
(per-class ratios are reported as well); regression models only get the ratio
sum(predictions) / sum(labels), their overall bias.

Bins are equal-width on [0, 1] with scikit-learn's ``calibration_curve`` edges, so
``observed`` and ``mean_predicted`` of the non-empty bins equal its ``prob_true`` and
``prob_pred``.

Examples:
    >>> import numpy as np
    >>> cal = calibration(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]), bins=2)
    >>> cal.ratio
    1.05
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mooring.evaluation._metrics import FloatArray, calibration_bin_ids

__all__ = ["Calibration", "ReliabilityBin", "calibration", "multiclass_calibration"]


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability curve."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed: float | None


@dataclass(frozen=True)
class Calibration:
    """Reliability curve and summary errors."""

    bins: list[ReliabilityBin]
    ece: float | None
    mce: float | None
    ratio: float | None  # sum(predictions) / sum(labels); None when the labels sum to 0
    per_class_ratio: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "ece": self.ece,
            "mce": self.mce,
            "ratio": self.ratio,
            "per_class_ratio": self.per_class_ratio,
            "bins": [b.__dict__ for b in self.bins],
        }


def _reliability(outcome: FloatArray, confidence: FloatArray, bins: int) -> Calibration:
    ids = calibration_bin_ids(confidence, bins)
    count = np.bincount(ids, minlength=bins)
    hits = np.bincount(ids, weights=outcome, minlength=bins)
    conf = np.bincount(ids, weights=confidence, minlength=bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out: list[ReliabilityBin] = []
    gaps: list[float] = []
    for i in range(bins):
        if count[i] == 0:
            out.append(ReliabilityBin(float(edges[i]), float(edges[i + 1]), 0, None, None))
            continue
        observed = float(hits[i] / count[i])
        predicted = float(conf[i] / count[i])
        gaps.append(abs(observed - predicted))
        out.append(
            ReliabilityBin(float(edges[i]), float(edges[i + 1]), int(count[i]), predicted, observed)
        )
    filled = count[count > 0]
    ece = float(np.dot(np.array(gaps), filled) / filled.sum()) if gaps else None
    mce = max(gaps) if gaps else None
    return Calibration(out, ece, mce, None)


def _ratio(predicted: float, actual: float) -> float | None:
    return predicted / actual if actual != 0 else None


def calibration(labels: npt.ArrayLike, probabilities: npt.ArrayLike, bins: int = 10) -> Calibration:
    """Binary calibration on the positive-class probability."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    curve = _reliability(y, p, bins)
    return Calibration(curve.bins, curve.ece, curve.mce, _ratio(float(p.sum()), float(y.sum())))


def multiclass_calibration(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, bins: int = 10
) -> Calibration:
    """Top-label calibration, with per-class sum(probability) / count(label) ratios."""
    y = np.asarray(labels, dtype=np.int64)
    proba = np.asarray(probabilities, dtype=np.float64)
    predicted = proba.argmax(axis=1)
    confidence = proba[np.arange(y.size), predicted]
    curve = _reliability((predicted == y).astype(np.float64), confidence, bins)
    counts = np.bincount(y, minlength=proba.shape[1])
    per_class = [_ratio(float(s), float(c)) for s, c in zip(proba.sum(axis=0), counts, strict=True)]
    return Calibration(curve.bins, curve.ece, curve.mce, None, per_class)


def regression_calibration(labels: npt.ArrayLike, values: npt.ArrayLike) -> Calibration:
    """Regression: only the ratio sum(predictions) / sum(labels)."""
    y = np.asarray(labels, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    return Calibration([], None, None, _ratio(float(v.sum()), float(y.sum())))
