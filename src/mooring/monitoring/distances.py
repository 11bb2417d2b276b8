"""Drift distances the contract layer lacks: Kolmogorov-Smirnov and Wasserstein from sketches.

Both are computed from two :class:`~mooring.contract.sketch.QuantileSketch` objects (the
training baseline's and the serving window's) without the raw values: the sketches'
retained values and weights give each side's empirical CDF, and

* Kolmogorov-Smirnov is ``max |F_b(x) - F_c(x)|`` over every retained value (the
  supremum of two step functions is reached at one of their jumps);
* Wasserstein-1 is ``∫ |F_b(x) - F_c(x)| dx``, summed exactly between consecutive
  retained values, then divided by the baseline's standard deviation so that one
  threshold fits every feature whatever its unit.

While a sketch has not compacted (fewer than ``k`` values) it holds every value and
both results equal ``scipy.stats.ks_2samp(...).statistic`` and
``scipy.stats.wasserstein_distance`` exactly; beyond, they are within the sketch's rank
error. Binned distances (PSI, Jensen-Shannon, L-infinity) come from
:mod:`mooring.contract.distance`; :func:`lump_rare` merges rare categories first so the
comparison is not dominated by sampling noise in categories holding a few rows.

Example:
    >>> import numpy as np
    >>> from mooring.contract.sketch import QuantileSketch
    >>> a, b = QuantileSketch(), QuantileSketch()
    >>> a.update(np.array([1.0, 2.0, 3.0])); b.update(np.array([2.0, 3.0, 4.0]))
    >>> ks_statistic(a, b), wasserstein(a, b)
    (0.3333333333333333, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from mooring.contract.distance import Distributions
from mooring.contract.sketch import QuantileSketch

__all__ = [
    "RARE_LABEL",
    "SKETCH_DISTANCES",
    "ks_statistic",
    "lump_rare",
    "wasserstein",
]

FloatArray = npt.NDArray[np.float64]
RARE_LABEL = "(rare)"


def _support(*sketches: QuantileSketch) -> FloatArray:
    parts = [lv for s in sketches for lv in s.levels if lv.size]
    if not parts:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.concatenate(parts))


def ks_statistic(baseline: QuantileSketch, current: QuantileSketch) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two CDFs.

    Example:
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

    Example:
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

    Example:
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
