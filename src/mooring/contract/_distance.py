"""Distances between two distributions summarised by statistics: the one home of every distance.

Binned distances (PSI, Jensen-Shannon, L-infinity) are functions ``(baseline, current)
-> float`` over aligned probability vectors, looked up by name in :data:`DISTANCES`, so
users can register their own. Numeric columns are compared over the baseline's quantile
bins (deciles by default, duplicate edges from ties merged, open-ended outer bins so
values outside the training range have somewhere to go); categorical columns over the
union of their categories. :func:`lump_rare` merges rare categories first so a
comparison is not dominated by sampling noise in categories holding a few rows.

Sketch distances (:data:`SKETCH_DISTANCES`) compare two
:class:`~mooring.contract._sketch.QuantileSketch` objects (the training baseline's and
the serving window's) without the raw values: the sketches' retained values and weights
give each side's empirical CDF, and

* Kolmogorov-Smirnov is ``max |F_b(x) - F_c(x)|`` over every retained value (the
  supremum of two step functions is reached at one of their jumps);
* Wasserstein-1 is ``∫ |F_b(x) - F_c(x)| dx``, summed exactly between consecutive
  retained values (the drift check divides it by the baseline's standard deviation so
  that one threshold fits every feature whatever its unit).

While a sketch has not compacted (fewer than ``k`` values) it holds every value and
both results equal ``scipy.stats.ks_2samp(...).statistic`` and
``scipy.stats.wasserstein_distance`` exactly; beyond, they are within the sketch's rank
error.

Examples:
    >>> import numpy as np
    >>> from mooring.contract._sketch import QuantileSketch
    >>> a, b = QuantileSketch(), QuantileSketch()
    >>> a.update(np.array([1.0, 2.0, 3.0])); b.update(np.array([2.0, 3.0, 4.0]))
    >>> round(ks_statistic(a, b), 6), wasserstein(a, b)
    (0.333333, 1.0)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mooring.contract._sketch import QuantileSketch
from mooring.contract._statistics import ColumnStatistics

__all__ = [
    "DISTANCES",
    "RARE_LABEL",
    "SKETCH_DISTANCES",
    "Distributions",
    "categorical_distributions",
    "jensen_shannon",
    "ks_statistic",
    "linf",
    "lump_rare",
    "numeric_distributions",
    "numeric_edges",
    "psi",
    "row_distances",
    "wasserstein",
]

Vector = npt.NDArray[np.float64]
EPSILON = 1e-4  # smoothing for empty bins, so PSI stays finite
RARE_LABEL = "(rare)"


def _normalise(v: npt.ArrayLike) -> Vector:
    """Each row (the last axis) divided by its sum; an all-zero row stays zero."""
    arr = np.asarray(v, dtype=np.float64)
    total = arr.sum(axis=-1, keepdims=True)
    out: Vector = np.divide(arr, total, out=np.zeros_like(arr), where=total > 0)
    return out


def _js_rows(p: Vector, q: Vector) -> Vector:
    a, b = _normalise(p), _normalise(q)
    m = 0.5 * (a + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ka = np.where(a > 0, a * np.log2(np.where(a > 0, a, 1.0) / np.where(m > 0, m, 1.0)), 0.0)
        kb = np.where(b > 0, b * np.log2(np.where(b > 0, b, 1.0) / np.where(m > 0, m, 1.0)), 0.0)
    divergence = 0.5 * ka.sum(axis=-1) + 0.5 * kb.sum(axis=-1)
    return np.asarray(np.sqrt(np.maximum(divergence, 0.0)), dtype=np.float64)


def _psi_rows(p: Vector, q: Vector) -> Vector:
    a = _normalise(np.maximum(_normalise(p), EPSILON))
    b = _normalise(np.maximum(_normalise(q), EPSILON))
    return np.asarray(np.sum((b - a) * np.log(b / a), axis=-1), dtype=np.float64)


def _linf_rows(p: Vector, q: Vector) -> Vector:
    a, b = _normalise(p), _normalise(q)
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:-1])
    return np.asarray(np.max(np.abs(a - b), axis=-1), dtype=np.float64)


def jensen_shannon(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Jensen–Shannon distance (base 2, so within [0, 1]).

    >>> round(jensen_shannon([0.5, 0.5], [0.5, 0.5]), 6)
    0.0
    >>> round(jensen_shannon([1.0, 0.0], [0.0, 1.0]), 6)
    1.0
    """
    return float(_js_rows(np.asarray(p, np.float64), np.asarray(q, np.float64)))


def psi(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Population stability index: sum((q - p) * ln(q / p)), empty bins smoothed.

    >>> round(psi([0.5, 0.5], [0.5, 0.5]), 6)
    0.0
    """
    return float(_psi_rows(np.asarray(p, np.float64), np.asarray(q, np.float64)))


def linf(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Largest absolute difference in probability of any one bin or category."""
    return float(_linf_rows(np.asarray(p, np.float64), np.asarray(q, np.float64)))


def row_distances(name: str, p: npt.ArrayLike, q: npt.ArrayLike) -> Vector:
    """One binned distance (``psi``, ``jensen_shannon``, ``linf``) of each row pair at once.

    ``p`` and ``q`` are ``(windows, bins)`` counts or shares; row ``i`` of the result is
    the distance ``DISTANCES[name](p[i], q[i])`` (the same formula, vectorised), which
    is what drift calibration needs for hundreds of windows.

    >>> row_distances("psi", [[5, 5], [9, 1]], [[5, 5], [5, 5]]).round(3).tolist()
    [0.0, 0.879]
    """
    rows = {"psi": _psi_rows, "jensen_shannon": _js_rows, "linf": _linf_rows}[name]
    return rows(np.atleast_2d(np.asarray(p, np.float64)), np.atleast_2d(np.asarray(q, np.float64)))


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


def numeric_edges(baseline: ColumnStatistics, bins: int = 10) -> Vector | None:
    """The bin edges numbers are compared over: the baseline's quantiles and extremes.

    Bins are ``(-inf, e0), [e0, e1), …, [e_last, inf)``; ``e0`` is the training minimum
    and ``e_last`` lies just above the training maximum, so the outer bins hold exactly
    the values outside the training range. None without numbers.
    """
    b = baseline.numeric
    if b is None or b.count == 0:
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
    return np.unique(np.concatenate([[b.min], edges, [np.nextafter(b.max, np.inf)]]))


def numeric_distributions(
    baseline: ColumnStatistics, current: ColumnStatistics, bins: int = 10
) -> Distributions | None:
    """Baseline and current mass over the baseline's quantile bins (None without data)."""
    b, c = baseline.numeric, current.numeric
    edges = numeric_edges(baseline, bins)
    if b is None or c is None or edges is None or c.count == 0:
        return None
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


def _support(*sketches: QuantileSketch) -> Vector:
    parts = [lv for s in sketches for lv in s.levels if lv.size]
    if not parts:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.concatenate(parts))


def ks_statistic(baseline: QuantileSketch, current: QuantileSketch) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two CDFs.

    Examples:
        >>> s = QuantileSketch(); s.update(np.arange(10.0))
        >>> ks_statistic(s, s)
        0.0
    """
    if baseline.n == 0 or current.n == 0:
        return float("nan")
    points = _support(baseline, current)
    gap = np.abs(baseline.cdf(points) - current.cdf(points))
    return float(gap.max()) if gap.size else 0.0


def wasserstein(baseline: QuantileSketch, current: QuantileSketch) -> float:
    """Wasserstein-1 (earth mover's) distance between the two distributions, in data units.

    Examples:
        >>> a, b = QuantileSketch(), QuantileSketch()
        >>> a.update(np.zeros(5)); b.update(np.full(5, 2.5))
        >>> wasserstein(a, b)
        2.5
    """
    if baseline.n == 0 or current.n == 0:
        return float("nan")
    points = _support(baseline, current)
    if points.size < 2:
        return 0.0
    gap = np.abs(baseline.cdf(points) - current.cdf(points))
    return float(np.sum(gap[:-1] * np.diff(points)))


#: Distances computed from the two quantile sketches, by name (users may add their own).
SKETCH_DISTANCES: dict[str, Callable[[QuantileSketch, QuantileSketch], float]] = {
    "ks": ks_statistic,
    "wasserstein": wasserstein,
}


def lump_rare(
    dist: Distributions, rare_share: float, keep: set[str] | None = None
) -> Distributions:
    """Merge categories whose baseline share is below ``rare_share`` into one ``(rare)`` bin.

    Categories never seen in training are merged too (their share is reported on its
    own as the unseen share); ``keep`` names categories never merged.

    Examples:
        >>> d = Distributions(["a", "b", "c"], np.array([0.9, 0.06, 0.04]),
        ...                   np.array([0.8, 0.1, 0.1]))
        >>> lumped = lump_rare(d, 0.05)
        >>> lumped.labels, lumped.current.tolist()
        (['a', 'b', '(rare)'], [0.8, 0.1, 0.1])
    """
    keep = keep or set()
    rare = np.array(
        [
            share < rare_share and label not in keep
            for label, share in zip(dist.labels, dist.baseline, strict=True)
        ],
        dtype=bool,
    )
    if not rare.any():
        return dist
    labels = [label for label, r in zip(dist.labels, rare, strict=True) if not r]
    baseline = np.append(dist.baseline[~rare], dist.baseline[rare].sum())
    current = np.append(dist.current[~rare], dist.current[rare].sum())
    return Distributions(labels=[*labels, RARE_LABEL], baseline=baseline, current=current)
