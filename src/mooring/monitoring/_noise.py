"""Sampling noise of a drift distance at a window's row count: what chance alone gives.

A window of ``n`` rows drawn from exactly the training distribution still differs from
it: every share is estimated from ``n`` rows, and how far that puts a distance from zero
depends on ``n`` and on how many bins the distance sums over. A category with 300 values
seen in a window of 2,000 rows has a Jensen–Shannon distance of about 0.17 from the
training data by chance alone (past the 0.1 floor), a feature of ten quantile bins at
1,000 rows about 0.04. A fixed floor cannot know this, and natural variation calibrated in
training (:mod:`mooring.monitoring._calibration`) is measured at a ladder of sizes, or not
at all (``calibration = "off"``, a version whose training data is gone). So the drift check
asks, for every feature of every window, what distance sampling alone reaches at *this*
window's row count:

* **binned distances** (PSI, Jensen–Shannon and L∞ over the baseline's bins, rare
  categories lumped as the check lumps them): their null distribution is simulated —
  :data:`DRAWS` multinomial windows drawn from the baseline's shares, each compared with
  them by the check's own formulas (:func:`~mooring.contract._distance.row_distances`).
  The windows are drawn at the effective size ``1 / (1/n + 1/N)`` so that the baseline's
  own ``N`` rows count too. Unlike a chi-square approximation this stays right when
  expected counts are small (hundreds of categories, few rows). Results are cached per
  shares and size; sizes are rounded *down* to two significant digits, which errs towards
  more noise, i.e. towards no alarm;
* **Kolmogorov–Smirnov**: the two-sample asymptotic bound
  ``sqrt(-ln((1 - q) / 2) / 2) × sqrt(1/n + 1/N)``;
* **unseen share**: by Good–Turing, the chance that a new row carries a category never
  seen in training is about the share of training rows whose category was seen once
  (plus what a bounded frequency sketch dropped); the bound is that share's binomial
  quantile at ``n`` rows.

The quantile ``q`` is ``[monitoring] calibration_quantile``, and the check applies the
same ``calibration_margin`` as to natural variation in training: a metric decides only
past its floor and past margin × the larger of the two (:func:`natural_variation`, whose
kind — ``sampling`` or the calibration's — the report names). Wasserstein has no bound
here (its noise depends on the distribution's shape); calibration in training covers it.

Example:
    >>> noise = binned_noise([0.5, 0.3, 0.2], rows=1000, reference_rows=30_000, quantile=0.99)
    >>> sorted(noise)
    ['jensen_shannon', 'linf', 'psi']
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from mooring.contract._distance import row_distances
from mooring.contract._statistics import ColumnStatistics
from mooring.formats._drift import METRIC_OF

__all__ = [
    "DRAWS",
    "binned_noise",
    "effective_rows",
    "judge",
    "kind_label",
    "ks_noise",
    "natural_variation",
    "sampling_noise",
    "unseen_noise",
]

#: Simulated same-distribution windows per (shares, size); fewer where there are so many
#: bins that draws × bins would pass :data:`CELLS` (never fewer than 100).
DRAWS = 500
CELLS = 1_000_000
BINNED = ("psi", "jensen_shannon", "linf")
#: The report's name of each kind of natural variation → what it says.
KINDS = {
    "random": "natural variation in training: random windows",
    "consecutive": "natural variation in training: consecutive time blocks",
    "later": "natural variation in training: a later time block vs the earlier period",
    "ordered": "natural variation in training: contiguous blocks",
    "blocks": "natural variation in training: contiguous blocks in file order",
    "sampling": "sampling noise at {rows} rows",
}


def kind_label(kind: str | None, rows: int | None = None) -> str:
    """What a kind of natural variation is, in words (``rows``: the window's present values).

    >>> kind_label("sampling", 2000)
    'sampling noise at 2,000 rows'
    >>> kind_label("later")
    'natural variation in training: a later time block vs the earlier period'
    """
    text = KINDS.get(kind or "", "natural variation in training")
    return text.format(rows="the window's" if rows is None else f"{rows:,}")


def effective_rows(rows: int, reference_rows: int | None) -> float:
    """``1 / (1/rows + 1/reference_rows)``: one sample as noisy as the two together.

    >>> effective_rows(1000, 1000)
    500.0
    """
    if rows <= 0:
        return 0.0
    if not reference_rows or reference_rows <= 0:
        return float(rows)
    return 1.0 / (1.0 / rows + 1.0 / reference_rows)


def _round_down(value: float) -> int:
    """Down to two significant digits (fewer rows, more noise: the cautious side)."""
    if value < 100:
        return int(value)
    step = 10 ** (int(math.log10(value)) - 1)
    return int(value // step * step)


@functools.lru_cache(maxsize=256)
def _simulate(shares: bytes, rows: int, quantile: float) -> tuple[float, ...]:
    p = np.frombuffer(shares, dtype=np.float64)
    rng = np.random.default_rng(rows)
    draws = max(100, min(DRAWS, CELLS // max(p.size, 1)))
    drawn = rng.multinomial(rows, p, size=draws).astype(np.float64)
    base = np.broadcast_to(p, drawn.shape)
    return tuple(
        float(np.quantile(row_distances(metric, base, drawn), quantile)) for metric in BINNED
    )


def binned_noise(
    shares: npt.ArrayLike, rows: int, reference_rows: int | None, quantile: float
) -> dict[str, float]:
    """The ``quantile`` of PSI, Jensen–Shannon and L∞ between the baseline's ``shares`` and
    a same-distribution window of ``rows`` rows (the baseline measured on
    ``reference_rows``); empty when there is nothing to draw.

    Example:
        >>> a = binned_noise(np.full(300, 1 / 300), 2000, 30_000, 0.99)["jensen_shannon"]
        >>> b = binned_noise(np.full(10, 0.1), 2000, 30_000, 0.99)["jensen_shannon"]
        >>> a > 0.1 > b
        True
    """
    p = np.asarray(shares, dtype=np.float64).reshape(-1)
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    total = p.sum()
    n = _round_down(effective_rows(rows, reference_rows))
    if p.size < 2 or total <= 0 or n < 1:
        return {}
    values = _simulate((p / total).tobytes(), n, round(quantile, 6))
    return dict(zip(BINNED, values, strict=True))


def ks_noise(rows: int, reference_rows: int | None, quantile: float) -> float | None:
    """The two-sample Kolmogorov–Smirnov statistic's asymptotic ``quantile`` under no change.

    >>> round(ks_noise(1000, 1000, 0.95), 4)
    0.0607
    """
    if rows <= 0:
        return None
    return math.sqrt(-math.log((1.0 - quantile) / 2.0) / 2.0 / effective_rows(rows, reference_rows))


def unseen_noise(baseline: ColumnStatistics, rows: int, quantile: float) -> float | None:
    """The share of a same-distribution window of ``rows`` rows in categories training never
    saw, at ``quantile`` (Good–Turing: the training share of categories seen once).

    Example:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> s = compute_statistics(pa.table({"c": ["a"] * 90 + [f"x{i}" for i in range(10)]}))
        >>> round(unseen_noise(s["c"], 1000, 0.99), 3)
        0.123
    """
    strings = baseline.strings
    if strings is None or strings.count <= 0 or rows <= 0:
        return None
    counts = strings.frequencies.counts
    dropped = max(strings.count - sum(counts.values()), 0)
    once = sum(1 for c in counts.values() if c == 1)
    p = min((once + dropped) / strings.count, 1.0)
    z = NormalDist().inv_cdf(quantile)
    return min(1.0, p + z * math.sqrt(p * (1.0 - p) / rows) + 0.5 / rows) if p > 0 else 0.0


def sampling_noise(
    baseline: ColumnStatistics,
    shares: npt.ArrayLike | None,
    rows: int,
    quantile: float,
) -> dict[str, float]:
    """Every bound of this module for one column: threshold name → distance.

    ``shares`` are the baseline's shares over the bins the check compares (quantile bins
    of a number, lumped categories); ``rows`` the window's present values.
    """
    reference = baseline.present
    out: dict[str, float] = {}
    if shares is not None:
        out.update(binned_noise(shares, rows, reference, quantile))
    if baseline.numeric is not None and baseline.numeric.count > 0:
        ks = ks_noise(rows, reference, quantile)
    else:
        ks = None
        unseen = unseen_noise(baseline, rows, quantile)
        if unseen:  # none expected (every category seen more than once): the floor decides
            out["unseen"] = unseen
    if ks is not None:
        out["ks"] = ks
    return out


def natural_variation(
    calibrated: Mapping[str, float],
    kinds: Mapping[str, str],
    noise: Mapping[str, float],
) -> tuple[dict[str, float], dict[str, str]]:
    """Per metric, the larger of its calibrated natural variation and its sampling noise,
    and which one it is (``kinds``' entry, or ``sampling``).

    >>> natural_variation({"psi": 0.02}, {"psi": "later"}, {"psi": 0.05, "linf": 0.01})
    ({'psi': 0.05, 'linf': 0.01}, {'psi': 'sampling', 'linf': 'sampling'})
    """
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for key in dict.fromkeys([*calibrated, *noise]):
        mine, chance = calibrated.get(key), noise.get(key)
        if chance is not None and (mine is None or chance > mine):
            values[key], sources[key] = chance, "sampling"
        elif mine is not None:
            values[key], sources[key] = mine, kinds.get(key, "calibrated")
    return values, sources


def judge(
    metrics: Mapping[str, float | None],
    thresholds: Mapping[str, float | None],
    natural: Mapping[str, float],
    kinds: Mapping[str, str],
    margin: float,
    rows: int,
) -> list[str]:
    """The reasons a feature drifts: each metric at or past its floor and past ``margin``
    × its natural variation (where one is known), with both numbers and where the
    natural variation comes from.

    >>> judge({"psi": 0.5}, {"psi": 0.2}, {"psi": 0.1}, {"psi": "sampling"}, 1.5, 2000)
    ['psi 0.5 >= 0.2 (floor) and > 1.5 × 0.1 (sampling noise at 2,000 rows)']
    """
    reasons = []
    for key, bound in thresholds.items():
        value = metrics.get(METRIC_OF[key])
        if bound is None or value is None or value < bound or value <= 0:
            continue
        usual = natural.get(key)
        if usual is None:
            reasons.append(f"{METRIC_OF[key]} {value:.4g} >= {bound:g}")
        elif value > margin * usual:
            reasons.append(
                f"{METRIC_OF[key]} {value:.4g} >= {bound:g} (floor) and > {margin:g} × "
                f"{usual:.4g} ({kind_label(kinds.get(key), rows)})"
            )
    return reasons
