"""Per-column summaries that statistics are made of: numbers and strings, mergeable.

A :class:`NumericSummary` keeps count, missing values, min, max, mean and the second
moment (merged with Chan's parallel formula), zeros, infinities and a quantile sketch;
a :class:`StringSummary` keeps a frequency table (exact up to a cap, bounded beyond)
and length statistics. Both merge exactly for counts and moments and serialise to
JSON and back unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract._sketch import FrequencySketch, QuantileSketch

__all__ = ["NumericSummary", "StringSummary"]


@dataclass
class NumericSummary:
    """Moments, extremes and a quantile sketch over the finite values of a column."""

    count: int = 0
    min: float = float("inf")
    max: float = float("-inf")
    mean: float = 0.0
    m2: float = 0.0
    zeros: int = 0
    infinite: int = 0
    sketch: QuantileSketch = field(default_factory=QuantileSketch)

    @property
    def std(self) -> float:
        """Population standard deviation (0.0 for fewer than two values)."""
        return float(np.sqrt(self.m2 / self.count)) if self.count > 1 else 0.0

    @property
    def variance(self) -> float:
        return self.m2 / self.count if self.count > 1 else 0.0

    def update(self, values: np.ndarray[Any, Any], *, whole: bool = False) -> None:
        """Add float64 values; ``whole``: they come from an integer column (all finite)."""
        self.add(values, whole=whole)

    def add(self, values: np.ndarray[Any, Any], *, whole: bool = False) -> np.ndarray[Any, Any]:
        """:meth:`update`, returning the finite values sorted (for range checks on them).

        The extremes and zeros are read off the sorted values, which the sketch needs
        anyway; one buffer holds first the deviations, then the sorted values, as every
        large temporary costs fresh pages from the OS.
        """
        if not whole:
            finite_mask = np.isfinite(values)
            if not finite_mask.all():
                self.infinite += int(np.isinf(values).sum())
                values = values[finite_mask]
        n = int(values.size)
        if n == 0:
            return values
        mean = float(values.mean())
        work: np.ndarray[Any, Any] = np.subtract(values, mean)
        m2 = float(np.square(work, out=work).sum())
        np.copyto(work, values)
        work.sort()
        lo, hi = float(work[0]), float(work[-1])
        if not whole and (lo == 0.0 or hi == 0.0):
            # -0.0 and 0.0 sort as equals; numpy's min and max say which one is reported.
            lo, hi = float(values.min()), float(values.max())
        self._combine(n, mean, m2, lo, hi)
        self.zeros += int(np.searchsorted(work, 0.0, "right") - np.searchsorted(work, 0.0))
        self.sketch.update_sorted(work)
        return work

    def _combine(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)

    def merge(self, other: NumericSummary) -> NumericSummary:
        out = NumericSummary(
            count=self.count,
            min=self.min,
            max=self.max,
            mean=self.mean,
            m2=self.m2,
            zeros=self.zeros + other.zeros,
            infinite=self.infinite + other.infinite,
            sketch=self.sketch.merge(other.sketch),
        )
        if other.count:
            out._combine(other.count, other.mean, other.m2, other.min, other.max)
        return out

    def quantiles(self, qs: Iterable[float]) -> list[float]:
        return [float(v) for v in self.sketch.quantiles(qs)]

    def histogram(self, bins: int = 10) -> tuple[list[float], list[int]]:
        """Equal-width histogram: ``bins + 1`` edges from min to max and counts per bin."""
        if self.count == 0:
            return [], []
        if self.min == self.max:
            return [self.min, self.max], [self.count]
        edges = np.linspace(self.min, self.max, bins + 1)
        inner = self.sketch.cdf(edges[1:-1], inclusive=False)
        cum = np.concatenate([[0.0], inner, [1.0]])
        counts = np.round(np.diff(cum) * self.count).astype(int)
        return [float(e) for e in edges], [int(c) for c in counts]

    def quantile_histogram(self, bins: int = 10) -> tuple[list[float], list[int]]:
        """Quantile histogram: edges at equal fractions of the data (ties merged)."""
        if self.count == 0:
            return [], []
        edges = np.unique(self.sketch.quantiles(np.linspace(0.0, 1.0, bins + 1)))
        if edges.size < 2:
            return [self.min, self.max], [self.count]
        inner = self.sketch.cdf(edges[1:-1], inclusive=False)
        cum = np.concatenate([[0.0], inner, [1.0]])
        counts = np.round(np.diff(cum) * self.count).astype(int)
        return [float(e) for e in edges], [int(c) for c in counts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "mean": self.mean,
            "std": self.std,
            "m2": self.m2,
            "zeros": self.zeros,
            "infinite": self.infinite,
            "quantiles": dict(
                zip(
                    ["p01", "p05", "p25", "p50", "p75", "p95", "p99"],
                    self.quantiles([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]),
                    strict=True,
                )
            )
            if self.count
            else {},
            "rank_error": self.sketch.rank_error(),
            "sketch": self.sketch.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericSummary:
        return cls(
            count=int(data["count"]),
            min=float(data["min"]) if data["min"] is not None else float("inf"),
            max=float(data["max"]) if data["max"] is not None else float("-inf"),
            mean=float(data["mean"]),
            m2=float(data["m2"]),
            zeros=int(data["zeros"]),
            infinite=int(data["infinite"]),
            sketch=QuantileSketch.from_dict(data["sketch"]),
        )


@dataclass
class StringSummary:
    """Value frequencies and lengths of a text (or boolean) column."""

    frequencies: FrequencySketch = field(default_factory=FrequencySketch)
    length_min: int | None = None
    length_max: int | None = None
    length_sum: int = 0
    count: int = 0

    @property
    def distinct(self) -> int:
        return self.frequencies.distinct

    def top(self, k: int = 20) -> list[tuple[str, int]]:
        return self.frequencies.top(k)

    def update(self, array: pa.Array) -> None:
        present = len(array) - array.null_count
        if present == 0:
            return
        known = _known_dictionary_counts(array, self.frequencies)
        if known is not None:
            words, counts = known
        else:
            # Counted in order of first appearance: new values enter the table (and, past
            # the cap, the HyperLogLog) in the same order however the data is encoded.
            table = pc.value_counts(array)
            values, freqs = table.field("values"), table.field("counts")
            if pa.types.is_dictionary(values.type):
                values = values.dictionary_decode()
            if values.null_count:
                # value_counts gives nulls an entry of their own; the summary is over present
                # values.
                keep = pc.is_valid(values)
                values, freqs = values.filter(keep), freqs.filter(keep)
            words, counts = values.to_pylist(), freqs.to_pylist()
        self.frequencies.update(_count_table(words, counts))
        # Lengths of the distinct values weighted by their counts: the same totals as per row,
        # at the cost of the (few) distinct values instead of every row. len() counts code
        # points, as Arrow's utf8_length does.
        lengths = [len(word) for word in words]
        self.length_min = _opt_min(self.length_min, min(lengths))
        self.length_max = _opt_max(self.length_max, max(lengths))
        self.length_sum += sum(map(operator.mul, lengths, counts))
        self.count += present

    def merge(self, other: StringSummary) -> StringSummary:
        return StringSummary(
            frequencies=self.frequencies.merge(other.frequencies),
            length_min=_opt_min(self.length_min, other.length_min),
            length_max=_opt_max(self.length_max, other.length_max),
            length_sum=self.length_sum + other.length_sum,
            count=self.count + other.count,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "distinct": self.distinct,
            "distinct_exact": self.frequencies.exact,
            "length_min": self.length_min,
            "length_max": self.length_max,
            "length_mean": self.length_sum / self.count if self.count else None,
            "length_sum": self.length_sum,
            "frequencies": self.frequencies.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StringSummary:
        return cls(
            frequencies=FrequencySketch.from_dict(data["frequencies"]),
            length_min=data["length_min"],
            length_max=data["length_max"],
            length_sum=int(data["length_sum"]),
            count=int(data["count"]),
        )


def _known_dictionary_counts(
    array: pa.Array, frequencies: FrequencySketch
) -> tuple[list[str], list[int]] | None:
    """Counts of a dictionary array's values by counting indices, when the order is moot.

    Only when every value used is already in the exact frequency table: adding to known
    entries changes nothing that depends on the order values are seen in. Otherwise None
    (the caller counts in order of first appearance).
    """
    if not pa.types.is_dictionary(array.type) or frequencies.hll is not None:
        return None
    dictionary = array.dictionary
    size = len(dictionary)
    if size == 0:
        return None
    indices = array.indices
    # Null rows are counted in slot 0 by the fill, then taken off again.
    codes = indices.fill_null(0) if indices.null_count else indices
    counts = _count_codes(codes.to_numpy(zero_copy_only=False), size)
    counts[0] -= indices.null_count
    used = np.flatnonzero(counts)
    words = dictionary.take(pa.array(used)).to_pylist()
    table = frequencies.counts
    if not all(word in table for word in words):
        return None
    return words, counts[used].tolist()


def _count_codes(codes: np.ndarray[Any, Any], size: int) -> np.ndarray[Any, Any]:
    """How often each of ``size`` codes occurs: ``np.bincount``, faster for a few codes.

    Counting a handful of codes one increment per row stalls on the same few counters;
    a vectorised comparison per code is several times faster there.
    """
    if size <= 8:
        return np.array([np.count_nonzero(codes == code) for code in range(size)], dtype=np.int64)
    return np.bincount(codes, minlength=size)


def _count_table(values: list[Any], counts: list[int]) -> dict[Any, int]:
    """Values with their counts; a value listed twice (a dictionary with repeats) is summed."""
    table = dict(zip(values, counts, strict=True))
    if len(table) != len(values):
        table = {}
        for value, count in zip(values, counts, strict=True):
            table[value] = table.get(value, 0) + count
    return table


def _opt_min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _opt_max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
