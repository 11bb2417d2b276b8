"""Distances between two distributions summarised by statistics.

Each metric is a function ``(baseline, current) -> float`` over aligned
probability vectors and is looked up by name in :data:`DISTANCES`, so users can
register their own. Numeric columns are compared over the baseline's quantile
bins (deciles by default, duplicate edges from ties merged, open-ended outer
bins so values outside the training range have somewhere to go); categorical
columns over the union of their categories.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mooring.contract.statistics import ColumnStatistics

__all__ = [
    "DISTANCES",
    "Distributions",
    "categorical_distributions",
    "jensen_shannon",
    "linf",
    "numeric_distributions",
    "psi",
]

Vector = npt.NDArray[np.float64]
EPSILON = 1e-4  # smoothing for empty bins, so PSI stays finite


def _normalise(v: npt.ArrayLike) -> Vector:
    arr = np.asarray(v, dtype=np.float64)
    total = arr.sum()
    return arr / total if total > 0 else arr


def jensen_shannon(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Jensen–Shannon distance (base 2, so within [0, 1]).

    >>> round(jensen_shannon([0.5, 0.5], [0.5, 0.5]), 6)
    0.0
    >>> round(jensen_shannon([1.0, 0.0], [0.0, 1.0]), 6)
    1.0
    """
    a, b = _normalise(p), _normalise(q)
    m = 0.5 * (a + b)

    def kl(x: Vector, y: Vector) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / y[mask])))

    divergence = 0.5 * kl(a, m) + 0.5 * kl(b, m)
    return float(np.sqrt(max(divergence, 0.0)))


def psi(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Population stability index: sum((q - p) * ln(q / p)), empty bins smoothed.

    >>> round(psi([0.5, 0.5], [0.5, 0.5]), 6)
    0.0
    """
    a = _normalise(np.maximum(_normalise(p), EPSILON))
    b = _normalise(np.maximum(_normalise(q), EPSILON))
    return float(np.sum((b - a) * np.log(b / a)))


def linf(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Largest absolute difference in probability of any one bin or category."""
    a, b = _normalise(p), _normalise(q)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


DISTANCES: dict[str, Callable[[npt.ArrayLike, npt.ArrayLike], float]] = {
    "jensen_shannon": jensen_shannon,
    "psi": psi,
    "linf": linf,
}


@dataclass(frozen=True)
class Distributions:
    """Two aligned probability vectors and the labels of their bins."""

    labels: list[str]
    baseline: Vector
    current: Vector


def numeric_distributions(
    baseline: ColumnStatistics, current: ColumnStatistics, bins: int = 10
) -> Distributions | None:
    """Baseline and current mass over the baseline's quantile bins (None without data)."""
    b, c = baseline.numeric, current.numeric
    if b is None or c is None or b.count == 0 or c.count == 0:
        return None
    edges = np.unique(b.sketch.quantiles(np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    if 0 < edges.size < bins - 1:
        # Heavy ties (e.g. 92% zeros) collapse the deciles; spread the remaining
        # edges over the mass above the tie so the tail is still compared.
        tied = float(b.sketch.cdf([edges[-1]])[0])
        if tied < 1.0:
            extra = b.sketch.quantiles(np.linspace(tied, 1.0, bins - edges.size + 1)[1:-1])
            edges = np.unique(np.concatenate([edges, extra[extra > edges[-1]]]))
    # Keep the baseline's extremes as edges too: mass beyond them is out-of-range mass.
    edges = np.unique(np.concatenate([[b.min], edges, [np.nextafter(b.max, np.inf)]]))
    labels = ["< " + _fmt(edges[0])]
    labels += [f"[{_fmt(lo)}, {_fmt(hi)})" for lo, hi in itertools.pairwise(edges)]
    labels.append(">= " + _fmt(edges[-1]))
    return Distributions(labels=labels, baseline=b.sketch.mass(edges), current=c.sketch.mass(edges))


def categorical_distributions(
    baseline: ColumnStatistics, current: ColumnStatistics
) -> Distributions | None:
    """Baseline and current frequencies over the union of categories."""
    b, c = baseline.strings, current.strings
    if b is None or c is None or b.count == 0 or c.count == 0:
        return None
    labels = sorted(set(b.frequencies.counts) | set(c.frequencies.counts))
    bv = np.array([b.frequencies.counts.get(v, 0) for v in labels], dtype=np.float64)
    cv = np.array([c.frequencies.counts.get(v, 0) for v in labels], dtype=np.float64)
    return Distributions(labels=labels, baseline=_normalise(bv), current=_normalise(cv))


def _fmt(value: float) -> str:
    return f"{value:.6g}"
