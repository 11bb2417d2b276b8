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
* **Wasserstein / σ**: simulated like the binned distances, over 100 equal-mass bins of
  the baseline's quantile sketch (the distribution's own shape: a skewed or heavy-tailed
  feature strays further), the distance taken on that grid as the calibration takes it;
* **unseen share**: by Good–Turing, the chance that a new row carries a category never
  seen in training is about the share of training rows whose category was seen once
  (plus what a bounded frequency sketch dropped); the bound is that share's binomial
  quantile at ``n`` rows;
* **out-of-range share**: a value of a same-distribution window falls outside the ``N``
  training values' ``[min, max]`` with chance at most ``2 / (N + 1)``; the bound is its
  binomial quantile at ``n`` rows (exact while few are expected);
* **missing share**: the rise of a binomial share at the effective size.

Below some row count a test cannot tell a shift of its floor's size from noise: its floor
is at most ``margin`` × its noise there. A feature none of whose tests can (:func:`told`;
the missing share aside, which always decides: a field gone missing is drift) has "too
few rows", not drift nor "ok", with the row count from which one can
(:func:`resolving_rows`, :func:`too_few_rows`): its distances do not decide (on so few
rows their tails, PSI's empty bins above all, are what chance gives beyond any quantile
of a simulation), and its shares only past ``margin`` × their bound at the square of the
miss rate (99.99% for ``q`` = 0.99, :func:`strict_share_noise`): a unit that changed,
putting every value out of range, is still drift. Where some test can, every test
decides past its floor and ``margin`` × its noise.

The quantile ``q`` is ``[monitoring] calibration_quantile``, and the check applies the
same ``calibration_margin`` as to natural variation in training: a metric decides only
past its floor and past margin × the larger of the two (:func:`natural_variation`, whose
kind — ``sampling`` or the calibration's — the report names). Wasserstein has no bound
here (its noise depends on the distribution's shape); calibration in training covers it.

Examples:
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
    "SHARES",
    "binned_noise",
    "effective_rows",
    "has_tests",
    "judge",
    "kind_label",
    "ks_noise",
    "missing_noise",
    "natural_variation",
    "out_of_range_noise",
    "resolving_rows",
    "sampling_noise",
    "strict_share_noise",
    "told",
    "too_few_rows",
    "unseen_noise",
    "wasserstein_noise",
]

#: Simulated same-distribution windows per (shares, size); fewer where there are so many
#: bins that draws × bins would pass :data:`CELLS` (never fewer than 100).
DRAWS = 500
CELLS = 1_000_000
BINNED = ("psi", "jensen_shannon", "linf")
#: Equal-mass bins of the baseline's quantile sketch the Wasserstein noise is drawn over.
GRID = 100
#: The tests on shares of values (the rest are distances between distributions).
SHARES = frozenset({"out_of_range", "unseen", "missing"})
#: Row counts :func:`resolving_rows` searches (beyond: no window size tells).
MAX_ROWS = 10_000_000
#: The report's name of each kind of natural variation → what it says.
KINDS = {
    "random": "natural variation in training: random windows",
    "consecutive": "natural variation in training: consecutive time blocks",
    "later": "natural variation in training: a later time block vs the earlier period",
    "ordered": "natural variation in training: contiguous blocks",
    "blocks": "natural variation in training: contiguous blocks in file order",
    "sampling": "sampling noise at {rows} rows",
    "own_time": "the training period's own rate of new values: blocks of the window's size "
    "from its later half by time against its earlier half",
    "own_file": "the training period's own rate of new values: blocks of the window's size "
    "from its later half in file order against its earlier half",
    "own_random": "the training period's own rate of new values: blocks of the window's size "
    "from a random half against the other half",
}
#: The kinds of natural variation of the unseen share that are the training period's own
#: rate of new values (:meth:`~mooring.monitoring._calibration.Calibration.own_novelty`).
OWN = frozenset({"own_time", "own_file", "own_random"})


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


@functools.lru_cache(maxsize=256)
def _simulate_two_sample(
    shares: bytes, counts: bytes, rows: int, quantile: float
) -> tuple[float, ...]:
    base = np.frombuffer(shares, dtype=np.float64)
    alpha = np.frombuffer(counts, dtype=np.float64)
    rng = np.random.default_rng(rows)
    draws = max(100, min(DRAWS, CELLS // max(base.size, 1)))
    truth = rng.dirichlet(alpha, size=draws)
    drawn = rng.multinomial(rows, truth).astype(np.float64)
    base2 = np.broadcast_to(base, drawn.shape)
    return tuple(
        float(np.quantile(row_distances(metric, base2, drawn), quantile)) for metric in BINNED
    )


def binned_noise(
    shares: npt.ArrayLike,
    rows: int,
    reference_rows: int | None,
    quantile: float,
    *,
    outside: float = 0.0,
) -> dict[str, float]:
    """The ``quantile`` of PSI, Jensen–Shannon and L∞ between the baseline's ``shares`` and
    a same-distribution window of ``rows`` rows (the baseline measured on
    ``reference_rows``); empty when there is nothing to draw.

    ``outside`` > 0 (rows' worth of mass in the bins the baseline left empty: values
    beyond its range, categories it never saw) simulates the two-sample null as it is: the
    true shares are uncertain after ``reference_rows`` rows (a Dirichlet draw, in which
    the mass beyond the ``N`` training values' range is Beta(1, N) on each side, as for
    any continuous distribution) and the window is drawn from them. Heavy for PSI on
    small data, where a few values past the baseline's range weigh a lot.

    Examples:
        >>> a = binned_noise(np.full(300, 1 / 300), 2000, 30_000, 0.99)["jensen_shannon"]
        >>> b = binned_noise(np.full(10, 0.1), 2000, 30_000, 0.99)["jensen_shannon"]
        >>> a > 0.1 > b
        True
        >>> edges = np.r_[0.0, np.full(10, 0.1), 0.0]  # open outer bins, empty in training
        >>> small = binned_noise(edges, 120, 180, 0.99, outside=2.0)["psi"]
        >>> small > binned_noise(edges, 120, 180, 0.99)["psi"]
        True
    """
    p = np.asarray(shares, dtype=np.float64).reshape(-1)
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    total = p.sum()
    if outside > 0 and reference_rows and rows > 0 and p.size >= 2 and total > 0:
        p = p / total
        empty = p <= 0
        alpha = p * reference_rows
        if empty.any():
            alpha[empty] = outside / int(empty.sum())
        return dict(
            zip(
                BINNED,
                _simulate_two_sample(
                    p.tobytes(), alpha.tobytes(), _round_down(rows), round(quantile, 6)
                ),
                strict=True,
            )
        )
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


def _seen_once(baseline: ColumnStatistics) -> float:
    """Training rows whose category was seen once (plus what the sketch dropped)."""
    strings = baseline.strings
    if strings is None:
        return 0.0
    counts = strings.frequencies.counts
    dropped = max(strings.count - sum(counts.values()), 0)
    return float(sum(1 for c in counts.values() if c == 1) + dropped)


def unseen_noise(baseline: ColumnStatistics, rows: int, quantile: float) -> float | None:
    """The share of a same-distribution window of ``rows`` rows in categories training never
    saw, at ``quantile`` (Good–Turing: the training share of categories seen once).

    Examples:
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


@functools.lru_cache(maxsize=256)
def _simulate_wasserstein(grid: bytes, rows: int, quantile: float) -> float:
    edges = np.frombuffer(grid, dtype=np.float64)
    bins = edges.size - 1
    rng = np.random.default_rng(rows + 1)
    draws = max(100, min(DRAWS, CELLS // max(bins, 1)))
    drawn = rng.multinomial(rows, np.full(bins, 1.0 / bins), size=draws)
    # Mass spread evenly inside each bin: the CDFs differ linearly between grid points.
    gap = np.abs(np.cumsum(drawn, axis=1)[:, :-1] / rows - np.arange(1, bins) / bins)
    gap = np.hstack([np.zeros((draws, 1)), gap, np.zeros((draws, 1))])
    area = (0.5 * (gap[:, :-1] + gap[:, 1:]) * np.diff(edges)).sum(axis=1)
    return float(np.quantile(area, quantile))


def wasserstein_noise(baseline: ColumnStatistics, rows: int, quantile: float) -> float | None:
    """The ``quantile`` of Wasserstein / σ between the baseline and a same-distribution
    window of ``rows`` values, drawn over the baseline's own quantiles (None: no spread).

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> x = np.random.default_rng(0).normal(size=20_000)
        >>> s = compute_statistics(pa.table({"x": x}))["x"]
        >>> 0.05 < wasserstein_noise(s, 1000, 0.99) < 0.09
        True
    """
    summary = baseline.numeric
    if summary is None or summary.count <= 1 or summary.std <= 0 or rows <= 0:
        return None
    n = _round_down(effective_rows(rows, summary.count))
    if n < 1:
        return None
    edges = np.asarray(summary.sketch.quantiles(np.linspace(0.0, 1.0, GRID + 1)), np.float64)
    if not np.all(np.isfinite(edges)) or edges[-1] <= edges[0]:
        return None
    return _simulate_wasserstein(edges.tobytes(), n, round(quantile, 6)) / summary.std


def out_of_range_noise(baseline: ColumnStatistics, rows: int, quantile: float) -> float | None:
    """The share of a same-distribution window of ``rows`` values outside the training
    ``[min, max]`` at ``quantile``: each falls outside with chance ``2 / (N + 1)`` on
    average (ties make it less: the bound is on the cautious side).

    >>> import pyarrow as pa
    >>> from mooring.contract._statistics import compute_statistics
    >>> s = compute_statistics(pa.table({"x": [float(i) for i in range(180)]}))["x"]
    >>> round(out_of_range_noise(s, 120, 0.99), 4)
    0.05
    """
    summary = baseline.numeric
    if summary is None or summary.count <= 0 or rows <= 0:
        return None
    return _outside_quantile(summary.count, rows, quantile)


def _outside_quantile(reference: int, rows: int, quantile: float) -> float:
    """The ``quantile`` of the share of ``rows`` new values outside the range of
    ``reference`` earlier ones: the mass outside is Beta(2, N - 1) (mean 2 / (N + 1)),
    each new value falls there with that chance (beta-binomial: the few training values
    at the edges make the count of new values past them vary more than a binomial)."""
    a, b = 2.0, max(reference - 1.0, 1.0)
    if rows * a / (a + b) > 50:
        # Many expected: the share is the Beta mass itself, give or take a binomial.
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if 1.0 - (1.0 - mid) ** b * (1.0 + b * mid) < quantile:
                lo = mid
            else:
                hi = mid
        z = NormalDist().inv_cdf(quantile)
        return min(1.0, hi + z * math.sqrt(hi * (1.0 - hi) / rows) + 0.5 / rows)
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    cdf = 0.0
    for k in range(rows + 1):
        log_pmf = (
            math.lgamma(rows + 1)
            - math.lgamma(k + 1)
            - math.lgamma(rows - k + 1)
            + math.lgamma(k + a)
            + math.lgamma(rows - k + b)
            - math.lgamma(rows + a + b)
            - log_norm
        )
        cdf += math.exp(log_pmf)
        if cdf >= quantile:
            return k / rows
    return 1.0


def missing_noise(baseline: ColumnStatistics, rows: int, quantile: float) -> float | None:
    """How far the missing share of a same-distribution window of ``rows`` rows rises
    above training's by chance, at ``quantile``.

    >>> import pyarrow as pa
    >>> from mooring.contract._statistics import compute_statistics
    >>> s = compute_statistics(pa.table({"x": [None, 1.0, 2.0, 3.0] * 50}))["x"]
    >>> round(missing_noise(s, 120, 0.99), 3)
    0.12
    """
    p = baseline.null_fraction
    if rows <= 0 or p <= 0:
        return None
    n = effective_rows(rows, baseline.count)
    z = NormalDist().inv_cdf(quantile)
    return z * math.sqrt(p * (1.0 - p) / n) + 0.5 / rows


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
    out = _distance_noise(baseline, shares, rows, quantile)
    if baseline.numeric is not None and baseline.numeric.count > 0:
        bounds = {"out_of_range": out_of_range_noise(baseline, rows, quantile)}
    else:
        # None expected (every category seen more than once): the floor decides.
        bounds = {"unseen": unseen_noise(baseline, rows, quantile) or None}
    bounds["missing"] = missing_noise(baseline, rows, quantile)
    out.update({k: v for k, v in bounds.items() if v is not None})
    return out


def strict_share_noise(baseline: ColumnStatistics, rows: int, quantile: float) -> dict[str, float]:
    """The bounds of the out-of-range and unseen shares alone, at ``quantile``: what a
    feature judged on too few rows for its distances is held to.

    >>> import pyarrow as pa
    >>> from mooring.contract._statistics import compute_statistics
    >>> s = compute_statistics(pa.table({"x": [float(i) for i in range(180)]}))["x"]
    >>> strict_share_noise(s, 120, 0.9999)
    {'out_of_range': 0.1}
    """
    if baseline.numeric is not None and baseline.numeric.count > 0:
        bounds = {"out_of_range": out_of_range_noise(baseline, rows, quantile)}
    else:
        bounds = {"unseen": unseen_noise(baseline, rows, quantile) or None}
    return {k: v for k, v in bounds.items() if v is not None}


def _distance_noise(
    baseline: ColumnStatistics, shares: npt.ArrayLike | None, rows: int, quantile: float
) -> dict[str, float]:
    """The bounds of the distances (PSI, Jensen–Shannon, L∞, KS, Wasserstein)."""
    reference = baseline.present
    out: dict[str, float] = {}
    numeric = baseline.numeric is not None and baseline.numeric.count > 0
    if shares is not None:
        # What the baseline's empty bins hold in truth: beyond the range of its N values,
        # one value's worth on each side; categories it never saw, those seen once.
        outside = 2.0 if numeric else max(_seen_once(baseline), 1.0)
        out.update(binned_noise(shares, rows, reference, quantile, outside=outside))
    if numeric:
        bounds = {
            "ks": ks_noise(rows, reference, quantile),
            "wasserstein": wasserstein_noise(baseline, rows, quantile),
        }
        out.update({k: v for k, v in bounds.items() if v is not None})
    return out


def _ladder() -> list[int]:
    """Row counts of two significant digits, 10 to :data:`MAX_ROWS` (what the simulations
    round to)."""
    out, step = [], 1
    while step * 10 <= MAX_ROWS:
        out += [m * step for m in range(10, 100)]
        step *= 10
    return sorted(set(out))


_LADDER = _ladder()


def told(
    noise: Mapping[str, float], thresholds: Mapping[str, float | None], margin: float
) -> list[str]:
    """The tests (the missing share aside) with a floor and a noise model that tell a
    shift of their floor's size from noise at this row count: floor past ``margin`` ×
    noise. A feature with such tests but none of them told has too few rows.

    >>> told({"psi": 0.3, "unseen": 0.01}, {"psi": 0.2, "unseen": 0.02}, 1.5)
    ['unseen']
    """
    return [
        key
        for key, floor in thresholds.items()
        if floor and key != "missing" and key in noise and floor > margin * noise[key]
    ]


def has_tests(noise: Mapping[str, float], thresholds: Mapping[str, float | None]) -> bool:
    """Whether any test (the missing share aside) has a floor and a noise model.

    >>> has_tests({"missing": 0.01}, {"missing": 0.1, "psi": 0.2})
    False
    """
    return any(v and k != "missing" and k in noise for k, v in thresholds.items())


def resolving_rows(
    baseline: ColumnStatistics,
    shares: npt.ArrayLike | None,
    thresholds: Mapping[str, float | None],
    margin: float,
    quantile: float,
) -> int | None:
    """The fewest rows at which at least one of the column's tests (the missing share
    aside) tells a shift of its floor's size from noise: its floor past ``margin`` × its
    sampling noise there. None when no row count does: the baseline itself is too small
    (its own uncertainty stays), or no test with a floor has a noise model.

    Sampling noise shrinks as rows grow, so the row count is found by bisection over
    row counts of two significant digits (those the simulations run at).

    Examples:
        >>> import pyarrow as pa
        >>> from mooring.contract._statistics import compute_statistics
        >>> x = np.random.default_rng(0).normal(size=30_000)
        >>> s = compute_statistics(pa.table({"x": x}))["x"]
        >>> 100 < resolving_rows(s, None, {"wasserstein": 0.1}, 1.5, 0.99) < 5000
        True
    """
    floors = {k: v for k, v in thresholds.items() if k != "missing" and v}
    if not floors:
        return None

    def resolves(rows: int) -> bool:
        return bool(told(sampling_noise(baseline, shares, rows, quantile), floors, margin))

    lo, hi = 0, len(_LADDER) - 1
    if not resolves(_LADDER[hi]):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if resolves(_LADDER[mid]):
            hi = mid
        else:
            lo = mid + 1
    return _LADDER[lo]


def too_few_rows(rows: int, resolving: int | None) -> str:
    """The verdict on a feature judged on fewer rows than :func:`resolving_rows`.

    >>> too_few_rows(120, 640)
    'too few rows (120; a shift of the threshold size is told from noise from about 640)'
    >>> too_few_rows(120, None)[:60]
    'too few rows (120; with this baseline no row count tells a s'
    """
    if resolving is None:
        return (
            f"too few rows ({rows:,}; with this baseline no row count tells a shift of the "
            "threshold size from noise)"
        )
    return (
        f"too few rows ({rows:,}; a shift of the threshold size is told from noise from "
        f"about {resolving:,})"
    )


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
    × its natural variation (where one is known). Each reason starts with the metric's
    name and says which test fired, the value, the natural variation at ``rows`` rows,
    the limit it passed and where the natural variation comes from.

    >>> judge({"psi": 0.5}, {"psi": 0.2}, {"psi": 0.1}, {"psi": "sampling"}, 1.5, 2000)
    ['psi 0.5 beyond its natural 0.1 at 2,000 rows (limit 0.15; floor 0.2; sampling noise)']
    >>> judge({"unseen_share": 0.052}, {"unseen": 0.02}, {"unseen": 0.031},
    ...       {"unseen": "own_time"}, 1.5, 9000)[0][:63]
    "unseen_share 5.2% vs training's own 3.1% (limit 4.65%; floor 2%"
    """
    reasons = []
    for key, bound in thresholds.items():
        value = metrics.get(METRIC_OF[key])
        if bound is None or value is None or value < bound or value <= 0:
            continue
        usual = natural.get(key)
        name = METRIC_OF[key]
        if usual is None:
            reasons.append(f"{name} {_number(key, value)} >= {_number(key, bound)} (floor)")
        elif value > margin * usual:
            reasons.append(_reason(key, value, bound, usual, kinds.get(key), margin, rows))
    return reasons


def _number(key: str, value: float) -> str:
    """A share as a percentage (``4.1%``), a distance as it is (``0.2131``)."""
    return f"{value * 100:.3g}%" if key in SHARES else f"{value:.4g}"


def _reason(
    key: str, value: float, floor: float, usual: float, kind: str | None, margin: float, rows: int
) -> str:
    """One test that fired, in words: ``unseen_share 4.1% vs training's own 3.1% (limit
    4.65%; …)`` when the training period's own rate of new values is the bar, else
    ``jensen_shannon 0.21 beyond its natural 0.12 at 9,000 rows (limit 0.18; …)``."""
    name = METRIC_OF[key]
    limit = _number(key, margin * usual)
    where = "sampling noise" if kind == "sampling" else kind_label(kind, rows)
    if kind in OWN:
        return (
            f"{name} {_number(key, value)} vs training's own {_number(key, usual)} "
            f"(limit {limit}; floor {_number(key, floor)}; {where})"
        )
    return (
        f"{name} {_number(key, value)} beyond its natural {_number(key, usual)} at "
        f"{rows:,} rows (limit {limit}; floor {_number(key, floor)}; {where})"
    )
