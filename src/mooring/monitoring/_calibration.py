"""Drift thresholds calibrated on natural variation: how far the training data strays from itself.

A fixed threshold is wrong in both directions. On data whose features wander (seasons, a
slowly changing mix of customers) the training data already differs from itself more than
a floor like "Wasserstein 0.1 σ" allows, so every window raises an alarm; on large, stable
data the floor hides shifts the data could easily resolve. So, at registration, mooring
measures for every feature how much each drift distance varies between windows of the
monitoring window's size *inside the training data*, and a feature drifts only when its
distance exceeds both the configured floor and ``[monitoring] calibration_margin`` × that
natural variation (its ``calibration_quantile``, by default the 99th percentile, over
``calibration_windows`` comparisons per kind). The drift report shows both numbers and
which kind of comparison gave the natural variation.

How the training data is cut depends on whether its rows have a time order:

* **in time order** (``calibration = "ordered"``: the default when ``[data] timestamp``
  is set, rows sorted by it; without a timestamp, "the rows are in time order"), natural
  variation is *movement over time*, measured as a check would meet it. Two kinds of
  comparison, each at every window size, and the larger of their quantiles is taken:

  - ``consecutive``: a block of rows against the block just before it (block i + 1 vs
    block i), so change from one window to the next counts as natural;
  - ``later``: a block against the *whole earlier period* (rows ``[t, t + size)`` vs
    ``[0, t)``, with ``t`` from half the rows to the end), the way a monitoring window
    after the training period is compared with the training reference — so slow drift
    already present inside the training period counts as natural: a new window that
    moves no further than the training data's later half moved from its earlier half
    is not drift.

* **at random** (``"random"``): a window of random rows against the rest of the training
  data (the complement), never against the whole of it (a window is part of the whole, so
  whole-vs-window distances understate what a fresh sample shows); only sampling noise
  counts.

* **without a timestamp** (``"auto"`` with no ``[data] timestamp``, method ``"blocks"``):
  nobody said whether the file is in time order, and many files are (appended month by
  month). Both are measured: random windows, and contiguous blocks in file order, each
  against every row before it (as ``later`` above: a block-vs-previous-block comparison
  would double the sampling noise of a file in no order); per feature, distance and size
  the larger wins, and the report names it ("natural variation in training: contiguous
  blocks in file order"). A file in time order then does not flag a column whose shift
  between the halves of training is larger than a new window's; a file in random order
  loses nothing (its blocks are random windows).

Categories also arrive: a column of product codes, towns or aircraft sees new values every
period. Where blocks are compared in order (``ordered``, ``blocks``), each categorical
column's ``unseen`` natural variation is the quantile of the share of a later block's
values (from half the rows on) never seen in any earlier row. And whatever the order,
every categorical column has **the training period's own rate of new values**
(:meth:`Calibration.own_novelty`): the rows are halved — by time when there is a
timestamp, in file order when the rows may be in time order (``blocks``, or ``ordered``
without one), at random otherwise — and, per window size, blocks of that size are cut
from the later half and the quantile of the share of their values the earlier half never
holds is taken. It assumes that production meets new values at the pace the training
period did, and covers windows up to half the training period after it (the later
blocks are that far from the earlier half): a column of thousands of values whose new
values keep their pace (a fleet's aircraft: 1.0–4.2% of a month's rows unseen in the
eight months after four months of training, against 3.5% in 10,000-row blocks of the
training period's later half) is not flagged, while a burst of new values is. A column
whose values turn over faster than that — or long after the training period, once the
turnover since passes ``calibration_margin`` × the rate — is flagged: it is time to
retrain. The drift check takes the larger of the two (and of
the sampling noise) and says which decided.

Calibration runs at a ladder of window sizes (100 rows up to half the training data,
plus ``min_samples`` and ``window_rows``); a check's window is judged at its own row count
(log-log interpolation between sizes; beyond the ladder, sampling-noise scaling for random
windows, the largest size's value held for time-ordered ones, since movement over time
does not shrink with a larger window). The smallest size at which natural variation stays
under every floor is reported as the ``min_samples`` the data supports. Whatever the
calibration, the drift check also knows the sampling noise of each binned distance at the
window's exact row count (:mod:`mooring.monitoring._noise`), so a category with hundreds of
values is not flagged for the noise of its many small shares.

The timestamp column itself (and any date or time column) is never calibrated: it is the
time axis, not a feature, and the drift check never judges it.

Why this is its own code and not the drift check run on each window: the check summarises a
window with mergeable sketches, and calibrating on a few hundred windows
that way would cost tens of statistics passes. Here every column is coded once (the drift
check's own bin edges; a 64-quantile grid for Wasserstein and KS), the counts of every
window and of its reference come from one ``bincount`` and prefix sums, and the distances
are the contract layer's formulas applied to all windows at once
(:func:`~mooring.contract._distance.row_distances`): Wasserstein and KS are evaluated on the
grid, within a grid step of the exact values.

Examples:
    >>> calibration = calibrate(train_table, train_stats, cfg.monitoring)  # doctest: +SKIP
    >>> calibration.natural("age", rows=5000)["wasserstein"]  # doctest: +SKIP
    0.041
    >>> calibration.natural_kind("age", rows=5000)["wasserstein"]  # doctest: +SKIP
    'later'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._distance import Distributions, lump_rare, numeric_edges, row_distances
from mooring.contract._statistics import ColumnStatistics, DatasetStatistics
from mooring.monitoring._drift_thresholds import resolve_thresholds

__all__ = ["Calibration", "calibrate", "calibration_order"]

Order = Literal["random", "ordered", "blocks"]
#: How the training rows were halved for their own rate of new values: by ``time`` (the
#: timestamp), in ``file`` order (no timestamp), or at ``random``.
Split = Literal["time", "file", "random"]
SPLITS = ("time", "file", "random")
FORMAT = "mooring.drift-calibration"
LADDER = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000)
GRID = 64
#: Random calibration cuts its windows from at most max(50,000, 20 × the largest window) rows.
SUBSAMPLE_MIN = 50_000
SUBSAMPLE_FACTOR = 20
#: Metrics whose sampling noise shrinks like 1/n (the rest like 1/sqrt(n)).
_QUADRATIC = frozenset({"psi"})
NUMERIC = ("psi", "jensen_shannon", "wasserstein", "ks", "missing")
CATEGORICAL = ("psi", "jensen_shannon", "linf", "missing")
#: The comparisons each way of cutting makes (see the module docstring). ``ordered`` is
#: what calibrations stored before time-ordered comparisons existed made: contiguous
#: blocks against the rest of the rows. ``blocks`` names both comparisons of contiguous
#: blocks in file order (no timestamp says the order is time).
FAMILIES: dict[Order, tuple[str, ...]] = {
    "random": ("random",),
    "ordered": ("consecutive", "later"),
    "blocks": ("random", "blocks"),
}
#: Kinds of comparison whose natural variation is movement along the rows: it does not
#: shrink in a window larger than the largest calibrated one.
MOVEMENT = frozenset({"consecutive", "later", "ordered", "blocks"})
Array = npt.NDArray[np.float64]
Span = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]


@dataclass(frozen=True)
class Calibration:
    """Natural variation of every feature's drift distances inside the training data.

    ``features[name][metric]`` holds, for each size ``sizes[i]``, the ``quantile`` of the
    distance between a window of that many rows and its reference (the rest of the
    training data for ``random``; the previous block, or the whole earlier period, for
    ``ordered``: the larger of the two). ``sources[name][metric][i]`` names the kind of
    comparison that gave it: ``random``, ``consecutive`` or ``later``.
    """

    method: Order
    rows: int
    windows: int
    quantile: float
    sizes: tuple[int, ...]
    features: dict[str, dict[str, tuple[float, ...]]]
    suggested_min_samples: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    sources: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    novelty: dict[str, tuple[float, ...]] | None = None
    novelty_split: Split | None = None

    def own_novelty(self, name: str, rows: int) -> float | None:
        """The training period's own rate of new values of category ``name`` for a window
        of ``rows`` rows: the ``quantile`` of the share of a block of that size, cut from
        the later half of the training rows, whose values the earlier half never holds
        (:attr:`novelty_split` says how the rows were halved). Held at the largest
        size beyond it. None: not a category, or a calibration stored before the rate
        was measured (:attr:`novelty` None).

        Examples:
            >>> c = Calibration("ordered", 10_000, 50, 0.99, (100, 1000), {},
            ...                 novelty={"shop": (0.05, 0.031)}, novelty_split="time")
            >>> c.own_novelty("shop", 5000), c.own_novelty("x", 5000)
            (0.031, None)
        """
        values = None if self.novelty is None else self.novelty.get(name)
        if not values or rows <= 0 or len(values) != len(self.sizes):
            return None
        return _at(self.sizes, values, rows, self.rows, "unseen", "ordered")

    def natural(self, name: str, rows: int) -> dict[str, float]:
        """Each metric's natural variation for a window of ``rows`` rows (empty: not calibrated).

        Examples:
            >>> c = Calibration("random", 10_000, 50, 0.99, (100, 1000),
            ...                 {"x": {"wasserstein": (0.2, 0.06)}})
            >>> round(c.natural("x", 400)["wasserstein"], 3)
            0.097
        """
        per = self.features.get(name)
        if not per or rows <= 0 or not self.sizes:
            return {}
        kinds = self.sources.get(name, {})
        return {
            metric: _at(self.sizes, values, rows, self.rows, metric, self._top(kinds, metric))
            for metric, values in per.items()
        }

    def _top(self, kinds: Mapping[str, tuple[str, ...]], metric: str) -> str:
        """How ``metric`` is extrapolated past the largest size: held (``ordered``) when
        movement along the rows gave its value there, else as sampling noise."""
        if self.method != "blocks":
            return self.method
        top = kinds.get(metric, ())
        return "ordered" if top and top[-1] in MOVEMENT else "random"

    def natural_kind(self, name: str, rows: int) -> dict[str, str]:
        """Which comparison gave each metric's natural variation at ``rows`` rows.

        The kind at the calibrated size nearest ``rows`` (on a log scale): ``random``,
        ``consecutive``, ``later`` or ``blocks`` (contiguous blocks in file order;
        ``ordered`` for a calibration stored before time-ordered comparisons existed).

        Examples:
            >>> c = Calibration("ordered", 10_000, 50, 0.99, (100, 1000),
            ...                 {"x": {"wasserstein": (0.2, 0.06)}},
            ...                 sources={"x": {"wasserstein": ("consecutive", "later")}})
            >>> c.natural_kind("x", 900)
            {'wasserstein': 'later'}
        """
        per = self.features.get(name)
        if not per or rows <= 0 or not self.sizes:
            return {}
        i = int(
            np.argmin(np.abs(np.log(np.asarray(self.sizes, dtype=np.float64)) - math.log(rows)))
        )
        kinds = self.sources.get(name, {})
        return {
            metric: kinds[metric][i] if len(kinds.get(metric, ())) > i else self.method
            for metric in per
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (stored with the version at registration)."""
        return {
            "format": FORMAT,
            "method": self.method,
            "rows": self.rows,
            "windows": self.windows,
            "quantile": self.quantile,
            "sizes": list(self.sizes),
            "features": {
                n: {m: list(v) for m, v in per.items()} for n, per in self.features.items()
            },
            "suggested_min_samples": self.suggested_min_samples,
            "seconds": self.seconds,
            "notes": self.notes,
            "sources": {n: {m: list(v) for m, v in per.items()} for n, per in self.sources.items()},
            "novelty": None
            if self.novelty is None
            else {n: list(v) for n, v in self.novelty.items()},
            "novelty_split": self.novelty_split,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Read :meth:`to_dict`'s mapping."""
        stored = data.get("method")
        method: Order = stored if stored in ("ordered", "blocks") else "random"
        suggested = data.get("suggested_min_samples")
        novelty = data.get("novelty")
        split = data.get("novelty_split")
        return cls(
            method=method,
            rows=int(data["rows"]),
            windows=int(data.get("windows", 0)),
            quantile=float(data.get("quantile", 0.99)),
            sizes=tuple(int(s) for s in data["sizes"]),
            features={
                str(n): {str(m): tuple(float(x) for x in v) for m, v in per.items()}
                for n, per in data["features"].items()
            },
            suggested_min_samples=None if suggested is None else int(suggested),
            seconds=float(data.get("seconds", 0.0)),
            notes=[str(n) for n in data.get("notes", [])],
            sources={
                str(n): {str(m): tuple(str(x) for x in v) for m, v in per.items()}
                for n, per in (data.get("sources") or {}).items()
            },
            novelty=None
            if novelty is None
            else {str(n): tuple(float(x) for x in v) for n, v in novelty.items()},
            novelty_split=split if split in SPLITS else None,
        )


def _at(
    sizes: Sequence[int],
    values: Sequence[float],
    rows: int,
    total: int,
    metric: str,
    method: str = "random",
) -> float:
    power = 1.0 if metric in _QUADRATIC else 0.5
    if rows <= sizes[0]:
        return float(values[0] * (sizes[0] / rows) ** power)
    if rows >= sizes[-1]:
        if method == "ordered":
            # Movement over time does not average out in a larger window.
            return float(values[-1])
        top = sizes[-1]
        # Sampling noise of a fresh window against the whole training data, relative to
        # that of the largest calibrated window against its complement.
        ratio = (1.0 / rows + 1.0 / total) / (1.0 / top + 1.0 / max(total - top, 1))
        return float(values[-1] * ratio**power)
    i = int(np.searchsorted(sizes, rows, side="right")) - 1
    lo, hi = sizes[i], sizes[i + 1]
    a, b = max(values[i], 1e-12), max(values[i + 1], 1e-12)
    t = (math.log(rows) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return float(math.exp(math.log(a) + t * (math.log(b) - math.log(a))))


def calibration_order(config: MonitoringConfig, timestamp: str | None) -> Order | None:
    """How windows are cut for ``[monitoring] calibration`` (None: calibration is off).

    ``"auto"`` is time-ordered when ``[data] timestamp`` is set, else ``"blocks"``:
    random windows and contiguous blocks in file order, the larger natural variation
    winning (a file without a timestamp may well be in time order); ``"ordered"`` says
    the rows are in time order (sorted by the timestamp when there is one, else as they
    are in the file); ``"random"`` ignores any order.

    >>> calibration_order(MonitoringConfig(), "event_time")
    'ordered'
    >>> calibration_order(MonitoringConfig(), None)
    'blocks'
    >>> calibration_order(MonitoringConfig(calibration="ordered"), None)
    'ordered'
    """
    if config.calibration == "off":
        return None
    if config.calibration == "auto":
        return "ordered" if timestamp else "blocks"
    return config.calibration


def _sizes(config: MonitoringConfig, rows: int) -> list[int]:
    """Window sizes: the ladder up to ``window_rows`` (checks judge no larger windows by
    default), never above half the rows."""
    top = min(rows // 2, max(config.window_rows, config.min_samples))
    wanted = {s for s in LADDER if s <= top}
    wanted |= {s for s in (config.min_samples, config.window_rows) if 50 <= s <= top}
    if top >= 50:
        wanted.add(top)
    return sorted(wanted)


def _numbers(array: pa.ChunkedArray) -> Array:
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        array = pc.divide(pc.cast(pc.cast(array, pa.timestamp("us")), pa.int64()), 1_000_000.0)
    # Integers beyond 2^53 (ids, nanosecond counts) lose their last digits as floats;
    # a drift bin does not need them.
    values = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


class _Windows:
    """Pairs of row ranges over the rows in ``positions`` order: windows and their references.

    A window is ``[start, end)`` in that order; its reference another range, or (no
    ``reference``) every other row of ``positions``. Every range start and end is a
    boundary; the rows between two boundaries form a segment. One ``bincount`` per coding
    gives each segment's counts; prefix sums over the segments then give any range's
    counts by one subtraction. ``shape`` is ``(sizes, kinds of comparison, comparisons)``
    and ``families`` names each kind. ``positions`` may hold a subset of the ``rows``
    coded rows (random windows cut from a sample): the others are counted nowhere.
    ``novelty`` (kinds whose windows start from half the rows on, against every row
    before them) says which kinds also measure the share of categories new in a window.
    """

    def __init__(
        self,
        positions: npt.NDArray[np.int64],
        window: Span,
        reference: Span | None,
        shape: tuple[int, int, int],
        families: tuple[str, ...],
        rows: int | None = None,
        novelty: tuple[int, ...] = (),
    ) -> None:
        used = positions.size
        rows = used if rows is None else rows
        spans = [*window, *(reference or ())]
        self.boundaries = np.unique(np.concatenate([np.array([0, used]), *spans]))
        segments = self.boundaries.size - 1
        # The segment of each *row* (not position): codes are counted without reordering.
        self.segment = np.full(rows, segments, dtype=np.int64)
        self.segment[positions] = (
            np.searchsorted(self.boundaries, np.arange(used), side="right") - 1
        )
        self.positions = positions
        self.starts, self.ends = window
        self.window = (
            np.searchsorted(self.boundaries, window[0]),
            np.searchsorted(self.boundaries, window[1]),
        )
        self.reference = (
            None
            if reference is None
            else (
                np.searchsorted(self.boundaries, reference[0]),
                np.searchsorted(self.boundaries, reference[1]),
            )
        )
        self.shape = shape
        self.families = families
        self.novelty = novelty

    def counts(self, codes: npt.NDArray[np.int64], bins: int) -> tuple[Array, Array]:
        """The ``(comparisons, bins)`` counts of ``codes`` in every window and in its
        reference (in :attr:`shape` order)."""
        segments = self.boundaries.size - 1
        flat = np.bincount(self.segment * bins + codes, minlength=(segments + 1) * bins)
        per_segment = flat[: segments * bins].reshape(segments, bins).astype(np.float64)
        prefix = np.vstack([np.zeros(bins), np.cumsum(per_segment, axis=0)])
        window = prefix[self.window[1]] - prefix[self.window[0]]
        if self.reference is None:
            return window, prefix[-1] - window
        return window, prefix[self.reference[1]] - prefix[self.reference[0]]

    def new_share(self, labels: npt.NDArray[np.int64], missing: npt.NDArray[np.bool_]) -> Array:
        """Per window of the :attr:`novelty` kinds, ``(sizes, len(novelty), comparisons)``:
        the share of its present values whose category no earlier row (in this order) holds.

        A row is new to a window starting at ``s`` when its category first occurs at or
        after ``s``; each row's first occurrence comes from one pass over the order.
        """
        order_labels = labels[self.positions]
        present = ~missing[self.positions]
        first_of = np.full(int(labels.max(initial=0)) + 1, self.positions.size, dtype=np.int64)
        seen = np.flatnonzero(present)
        codes, first = np.unique(order_labels[seen], return_index=True)
        first_of[codes] = seen[first]
        first_row = np.where(present, first_of[order_labels], -1)
        sizes, kinds, count = self.shape
        starts = self.starts.reshape(sizes, kinds, count)
        ends = self.ends.reshape(sizes, kinds, count)
        out = np.zeros((sizes, len(self.novelty), count))
        for i in range(sizes):
            for j, kind in enumerate(self.novelty):
                s, e = starts[i, kind], ends[i, kind]
                size = int(e[0] - s[0])
                rows = s[:, None] + np.arange(size)
                block = first_row[rows]
                new = (block >= s[:, None]).sum(axis=1)
                out[i, j] = new / np.maximum((block >= 0).sum(axis=1), 1)
        return out


def _random_windows(
    positions: npt.NDArray[np.int64],
    sizes: Sequence[int],
    count: int,
    rng: np.random.Generator,
    rows: int | None = None,
) -> _Windows:
    """Windows of random rows (blocks of a random permutation), each against the rest."""
    used = positions.size
    starts = np.concatenate([rng.integers(0, used - size + 1, count) for size in sizes])
    ends = starts + np.repeat(np.asarray(sizes, dtype=np.int64), count)
    return _Windows(positions, (starts, ends), None, (len(sizes), 1, count), ("random",), rows)


def _time_windows(
    positions: npt.NDArray[np.int64],
    sizes: Sequence[int],
    count: int,
    families: tuple[str, ...] = ("consecutive", "later"),
) -> _Windows:
    """Per size, ``count`` blocks against the block before them (``consecutive``), then
    ``count`` blocks against the whole period before them (``later``), in row order;
    only the ``later`` ones when ``families`` names one kind (blocks in file order)."""
    rows = positions.size
    later_only = len(families) == 1
    parts: list[list[npt.NDArray[np.int64]]] = [[], [], [], []]
    for size in sizes:
        before = np.linspace(0, rows - 2 * size, count).round().astype(np.int64)
        after = np.linspace(rows // 2, rows - size, count).round().astype(np.int64)
        zeros = np.zeros(count, dtype=np.int64)
        spans = (
            (after, after + size, zeros, after)  # window start, end; reference start, end
            if later_only
            else (
                np.concatenate([before + size, after]),
                np.concatenate([before + 2 * size, after + size]),
                np.concatenate([before, zeros]),
                np.concatenate([before + size, after]),
            )
        )
        for i, part in enumerate(spans):
            parts[i].append(part)
    ws, we, rs, re = (np.concatenate(p) for p in parts)
    shape = (len(sizes), len(families), count)
    return _Windows(positions, (ws, we), (rs, re), shape, families, novelty=(len(families) - 1,))


@dataclass(frozen=True)
class _Coded:
    """One column coded once: ``measure(windows)`` gives every distance of every window;
    ``labels``/``missing`` (categories) also give the share of new categories."""

    measure: Callable[[_Windows], dict[str, Array]]
    labels: npt.NDArray[np.int64] | None = None
    missing: npt.NDArray[np.bool_] | None = None


def _numeric(values: Array, column: ColumnStatistics, config: MonitoringConfig) -> _Coded | None:
    edges = numeric_edges(column, config.bins)
    summary = column.numeric
    if edges is None or summary is None:
        return None
    missing = np.isnan(values)
    present = np.where(missing, 0.0, values)
    # One coding serves every metric: the drift check's bin edges refined by a quantile
    # grid; the drift bins' counts are sums of grid bins.
    quantiles = summary.sketch.quantiles(np.linspace(0.0, 1.0, GRID + 1))
    grid = np.unique(np.concatenate([edges, quantiles]))
    ng = grid.size + 1
    codes = np.where(missing, ng, np.searchsorted(grid, present, side="right")).astype(np.int64)
    # Grid bin j + 1 starts at grid[j]; drift bin i + 1 starts at edges[i].
    starts = np.concatenate([[0], np.searchsorted(grid, edges) + 1, [ng]])
    std = summary.std

    def measure(windows: _Windows) -> dict[str, Array]:
        gw, gc = windows.counts(codes, ng + 1)
        w = np.add.reduceat(gw, starts, axis=1)
        c = np.add.reduceat(gc, starts, axis=1)
        result = _binned(w, c, ("psi", "jensen_shannon"))
        # cum[:, j] = values below grid[j], as a share of each side's present values.
        fw = np.cumsum(gw[:, :-1], axis=1)[:, : grid.size]
        fc = np.cumsum(gc[:, :-1], axis=1)[:, : grid.size]
        fw = fw / np.maximum(gw[:, :-1].sum(axis=1, keepdims=True), 1.0)
        fc = fc / np.maximum(gc[:, :-1].sum(axis=1, keepdims=True), 1.0)
        gap = np.abs(fw - fc)
        result["ks"] = gap.max(axis=1) if gap.shape[1] else np.zeros(len(gap))
        if grid.size >= 2 and std > 0:
            area = (0.5 * (gap[:, :-1] + gap[:, 1:]) * np.diff(grid)).sum(axis=1)
            result["wasserstein"] = area / std
        result["missing"] = _missing(w, c)
        return result

    return _Coded(measure)


def _binned(w: Array, c: Array, metrics: Sequence[str]) -> dict[str, Array]:
    return {m: row_distances(m, c[:, :-1], w[:, :-1]) for m in metrics}


def _missing(w: Array, c: Array) -> Array:
    wn = np.maximum(w.sum(axis=1), 1.0)
    cn = np.maximum(c.sum(axis=1), 1.0)
    return np.asarray(w[:, -1] / wn - c[:, -1] / cn, dtype=np.float64)


def _categorical(
    array: pa.ChunkedArray, column: ColumnStatistics, config: MonitoringConfig
) -> _Coded | None:
    text = pc.cast(array, pa.string()).combine_chunks()
    encoded = pc.dictionary_encode(text)
    labels = [str(v) for v in encoded.dictionary.to_pylist()]
    if not labels:
        return None
    missing = np.asarray(pc.is_null(encoded.indices).to_numpy(zero_copy_only=False), dtype=bool)
    indices = np.asarray(
        pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    shares = np.bincount(indices[~missing], minlength=len(labels)).astype(np.float64)
    lumped = lump_rare(
        Distributions(labels, shares / max(shares.sum(), 1.0), shares), config.rare_share
    )
    position = {label: i for i, label in enumerate(lumped.labels)}
    rare = position.get("(rare)", len(lumped.labels))
    mapping = np.array([position.get(label, rare) for label in labels], dtype=np.int64)
    nb = len(lumped.labels)
    codes = np.where(missing, nb, mapping[indices])

    def measure(windows: _Windows) -> dict[str, Array]:
        w, reference = windows.counts(codes, nb + 1)
        return {
            **_binned(w, reference, ("psi", "jensen_shannon", "linf")),
            "missing": _missing(w, reference),
        }

    return _Coded(measure, indices, missing)


def _row_order(
    table: pa.Table, order: Order, timestamp: str | None
) -> npt.NDArray[np.int64] | None:
    """The rows in time order: by ``timestamp`` (else as they come) when ``ordered``, as
    they come for ``blocks``; None for ``random``."""
    if order == "random":
        return None
    if order == "ordered" and timestamp and timestamp in table.column_names:
        return np.asarray(
            pc.sort_indices(table, sort_keys=[(timestamp, "ascending")]), dtype=np.int64
        )
    return np.arange(table.num_rows, dtype=np.int64)


def _halves(
    table: pa.Table, order: Order, timestamp: str | None, seed: int
) -> tuple[npt.NDArray[np.int64], Split]:
    """The rows in the order the training period is halved in for its own rate of new
    values, and how: by ``time`` when ``ordered`` with a timestamp, in ``file`` order when
    the rows are said or may be in time order (``ordered`` without one, ``blocks``), at
    ``random`` otherwise (a fixed seed, its own generator: the windows' draws stay as they
    were)."""
    ordered = _row_order(table, order, timestamp)
    if ordered is None:
        rng = np.random.default_rng(seed + 1)
        return rng.permutation(table.num_rows).astype(np.int64), "random"
    timed = order == "ordered" and bool(timestamp) and timestamp in table.column_names
    return ordered, "time" if timed else "file"


def _new_to_earlier_half(
    positions: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
    missing: npt.NDArray[np.bool_],
    sizes: Sequence[int],
    count: int,
    quantile: float,
) -> tuple[float, ...]:
    """Per size, the ``quantile`` over ``count`` blocks of that size cut from the later
    half of the rows (in ``positions`` order) of the share of a block's present values
    whose category no row of the earlier half holds.

    A row is new when its category first occurs in the later half; prefix sums of new
    and present rows give every block's share by one subtraction.

    >>> _new_to_earlier_half(np.arange(8), np.array([0, 1, 0, 1, 2, 2, 0, 3]),
    ...                      np.zeros(8, bool), [2, 4], 3, 1.0)
    (1.0, 0.75)
    """
    ordered, present = labels[positions], ~missing[positions]
    first_of = np.full(int(labels.max(initial=0)) + 1, positions.size, dtype=np.int64)
    where = np.flatnonzero(present)
    codes, first = np.unique(ordered[where], return_index=True)
    first_of[codes] = where[first]
    half = positions.size // 2
    new = present & (first_of[ordered] >= half)
    cum_new = np.concatenate([[0], np.cumsum(new[half:])])
    cum_present = np.concatenate([[0], np.cumsum(present[half:])])
    out = []
    for size in sizes:
        size = min(size, positions.size - half)
        starts = np.linspace(0, positions.size - half - size, count).round().astype(np.int64)
        shares = (cum_new[starts + size] - cum_new[starts]) / np.maximum(
            cum_present[starts + size] - cum_present[starts], 1
        )
        out.append(round(float(np.quantile(shares, quantile)), 6))
    return tuple(out)


def _window_sets(
    table: pa.Table,
    order: Order,
    timestamp: str | None,
    sizes: Sequence[int],
    count: int,
    rng: np.random.Generator,
) -> list[_Windows]:
    """The comparisons ``order`` makes: blocks in row order (``ordered``, ``blocks``) and
    random windows (``random``, ``blocks``)."""
    rows = table.num_rows
    sets = []
    ordered = _row_order(table, order, timestamp)
    if ordered is not None:
        families = ("blocks",) if order == "blocks" else ("consecutive", "later")
        sets.append(_time_windows(ordered, sizes, count, families))
    if order != "ordered":
        # Random windows of at most window_rows rows need no more than this many rows to
        # be cut from: a random subset bounds the cost on large training data.
        keep = min(rows, max(SUBSAMPLE_MIN, SUBSAMPLE_FACTOR * sizes[-1]))
        subset = rng.choice(rows, keep, replace=False) if keep < rows else rng.permutation(rows)
        sets.insert(0, _random_windows(subset.astype(np.int64), sizes, count, rng, rows))
    return sets


def _quantiles(
    coded: _Coded, sets: Sequence[_Windows], quantile: float
) -> dict[str, tuple[Array, tuple[str, ...]]]:
    """Per metric, the ``(sizes, kinds)`` quantiles over every set's comparisons, and the
    kinds' names."""
    found: dict[str, list[tuple[Array, tuple[str, ...]]]] = {}
    for windows in sets:
        for metric, values in coded.measure(windows).items():
            per_kind = np.quantile(values.reshape(windows.shape), quantile, axis=2)
            found.setdefault(metric, []).append((per_kind, windows.families))
        if coded.labels is not None and coded.missing is not None and windows.novelty:
            new = windows.new_share(coded.labels, coded.missing)
            names = tuple(windows.families[k] for k in windows.novelty)
            found.setdefault("unseen", []).append((np.quantile(new, quantile, axis=2), names))
    return {
        metric: (
            np.concatenate([q for q, _ in parts], axis=1),
            tuple(name for _, names in parts for name in names),
        )
        for metric, parts in found.items()
    }


def calibrate(
    table: pa.Table,
    statistics: DatasetStatistics,
    config: MonitoringConfig,
    *,
    order: Order = "random",
    timestamp: str | None = None,
    columns: Sequence[str] | None = None,
    seed: int = 0,
) -> Calibration | None:
    """Measure each feature's natural drift distances between windows of the training data.

    Args:
        table: the training rows (the file the version was trained on).
        statistics: their statistics (the drift baseline; its bin edges are used).
        config: ``[monitoring]``: bins, rare share, floors, window sizes, quantile.
        order: ``"ordered"``: the rows are in time order (sorted by ``timestamp`` when
            given, else as they come); blocks are compared with the block before them and
            with the whole period before them. ``"random"``: windows of random rows, each
            compared with the rest. ``"blocks"``: both, blocks in file order (no
            timestamp); the larger natural variation wins.
        timestamp: the event-time column: it orders the rows and is never calibrated
            (nor is any other date or time column).
        columns: the columns to calibrate (default: every column of the statistics).

    Returns None when the data is too small to cut two windows of 50 rows.

    Examples:
        >>> calibration = calibrate(table, stats, MonitoringConfig())  # doctest: +SKIP
        >>> calibration.suggested_min_samples  # doctest: +SKIP
        500
    """
    started = time.perf_counter()
    total = table.num_rows
    sizes = _sizes(config, total)
    if not sizes:
        return None
    rng = np.random.default_rng(seed)
    count = config.calibration_windows
    sets = _window_sets(table, order, timestamp, sizes, count, rng)
    halves, split = _halves(table, order, timestamp, seed)
    features: dict[str, dict[str, tuple[float, ...]]] = {}
    sources: dict[str, dict[str, tuple[str, ...]]] = {}
    novelty: dict[str, tuple[float, ...]] = {}
    names = [n for n in (columns or statistics.column_names) if n in table.column_names]
    for name in names:
        column = statistics.columns.get(name)
        if column is None or name == timestamp or column.type == "timestamp":
            continue
        coded: _Coded | None
        if column.numeric is not None and column.numeric.count > 0:
            coded = _numeric(_numbers(table[name]), column, config)
        elif column.strings is not None and column.strings.count > 0:
            coded = _categorical(table[name], column, config)
        else:
            coded = None
        if coded is None:
            continue
        if coded.labels is not None and coded.missing is not None:
            novelty[name] = _new_to_earlier_half(
                halves, coded.labels, coded.missing, sizes, count, config.calibration_quantile
            )
        features[name], sources[name] = {}, {}
        for metric, (per_kind, kinds) in sorted(
            _quantiles(coded, sets, config.calibration_quantile).items()
        ):
            # (sizes, kinds): each kind's quantile; the larger one is the natural variation.
            features[name][metric] = tuple(round(float(q), 6) for q in per_kind.max(axis=1))
            sources[name][metric] = tuple(kinds[i] for i in per_kind.argmax(axis=1))
    calibration = Calibration(
        method=order,
        rows=total,
        windows=count,
        quantile=config.calibration_quantile,
        sizes=tuple(sizes),
        features=features,
        sources=sources,
        novelty=novelty,
        novelty_split=split,
    )
    suggested = _suggest(calibration, config)
    notes = []
    if config.window_rows > total // 2:
        notes.append(
            f"window_rows = {config.window_rows} exceeds half the {total} training rows; "
            f"windows of {sizes[-1]} rows were cut and larger ones judged by "
            + {
                "ordered": "their value",
                "random": "sampling noise",
                "blocks": "their value where blocks in file order gave it, else sampling noise",
            }[order]
        )
    return replace(
        calibration,
        suggested_min_samples=suggested,
        seconds=round(time.perf_counter() - started, 4),
        notes=notes,
    )


def _suggest(calibration: Calibration, config: MonitoringConfig) -> int | None:
    """The smallest calibrated window in which natural variation stays under every floor."""
    for size in calibration.sizes:
        fits = True
        for name in calibration.features:
            natural = calibration.natural(name, size)
            kind = "numeric" if "wasserstein" in natural or "ks" in natural else "categorical"
            floors = resolve_thresholds(config, name, kind)
            if any(
                floors.get(metric) is not None and value > float(floors[metric] or 0.0)
                for metric, value in natural.items()
            ):
                fits = False
                break
        if fits:
            return size
    return None
