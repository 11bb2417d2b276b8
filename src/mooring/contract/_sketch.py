"""Mergeable, deterministic sketches: quantiles of numbers, frequencies of strings.

:class:`QuantileSketch` is a compactor hierarchy (the idea behind KLL and
Manku–Rajagopalan–Lindsay): level ``h`` holds sorted values of weight ``2**h``;
when a level holds more than ``k`` values it is sorted and every other value is
promoted to the next level. Compaction offsets come from a seeded counter, so
the same input in the same order gives the same sketch on every run — statistics
and everything derived from them (bucket boundaries, drift bins) are reproducible.

Error bound: one compaction at level ``h`` moves the rank of any query by at
most ``2**h`` and processes at least ``k * 2**h`` weight, so after ``n`` values the
rank error of any quantile is at most ``levels * n / k`` — with the default
``k = 4096`` that is under 0.3% of ``n`` for 5 million values. Merging concatenates
levels and compacts with the same rule, so the bound holds for merged sketches
with ``n`` the total count. :meth:`QuantileSketch.rank_error` returns the bound.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import datasketches
import numpy as np
import numpy.typing as npt

__all__ = ["FrequencySketch", "QuantileSketch"]

FloatArray = npt.NDArray[np.float64]


def _encode(values: FloatArray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str) -> FloatArray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


@dataclass
class QuantileSketch:
    """Mergeable quantile sketch over finite float values.

    Examples:
        >>> s = QuantileSketch()
        >>> s.update(np.arange(1000, dtype=float))
        >>> round(float(s.quantiles([0.5])[0]))
        499
    """

    k: int = 4096
    levels: list[FloatArray] = field(default_factory=list)
    n: int = 0
    compactions: int = 0

    def update(self, values: npt.ArrayLike) -> None:
        """Add finite values (NaN and infinities must be filtered by the caller)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        self.update_sorted(np.sort(arr))

    def update_sorted(self, values: FloatArray) -> None:
        """Add finite values already in ascending order (saves sorting them again).

        The sketch may keep ``values`` itself: do not change the array afterwards.
        """
        if values.size == 0:
            return
        self.n += int(values.size)
        self._add(0, values)
        self._compress()

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Return a new sketch summarising both inputs (neither is modified)."""
        if other.k != self.k:
            raise ValueError(f"cannot merge sketches with k={self.k} and k={other.k}")
        out = QuantileSketch(
            k=self.k, n=self.n + other.n, compactions=self.compactions + other.compactions
        )
        depth = max(len(self.levels), len(other.levels))
        for h in range(depth):
            parts = [lv[h] for lv in (self.levels, other.levels) if h < len(lv) and lv[h].size]
            if parts:
                out._add(h, np.sort(np.concatenate(parts)))
        out._compress()
        return out

    def _add(self, level: int, sorted_values: FloatArray) -> None:
        while len(self.levels) <= level:
            self.levels.append(np.empty(0, dtype=np.float64))
        current = self.levels[level]
        if current.size:
            self.levels[level] = _merge_sorted(current, sorted_values)
        else:
            # A compaction passes a strided view of the level below: keep a compact copy.
            self.levels[level] = np.ascontiguousarray(sorted_values)

    def _compress(self) -> None:
        h = 0
        while h < len(self.levels):
            values = self.levels[h]
            if values.size > self.k:
                # Compact an even number of values; an odd one out stays behind.
                keep = values[values.size - (values.size % 2) :]
                body = values[: values.size - (values.size % 2)]
                offset = self.compactions % 2
                self.compactions += 1
                self.levels[h] = keep.copy()
                self._add(h + 1, body[offset::2])
            h += 1

    def _weighted(self) -> tuple[FloatArray, FloatArray]:
        values = [lv for lv in self.levels if lv.size]
        if not values:
            return np.empty(0), np.empty(0)
        weights = [np.full(lv.size, float(2**h)) for h, lv in enumerate(self.levels) if lv.size]
        v = np.concatenate(values)
        w = np.concatenate(weights)
        order = np.argsort(v, kind="stable")
        return v[order], w[order]

    def rank_error(self) -> float:
        """Upper bound on the normalised rank error of any quantile or CDF answer."""
        if self.n == 0 or self.compactions == 0:
            return 0.0
        return min(1.0, max(1, len(self.levels) - 1) / self.k)

    def quantiles(self, qs: Iterable[float]) -> FloatArray:
        """Values at the given fractions in [0, 1] (lower interpolation: an observed value)."""
        q = np.asarray(list(qs), dtype=np.float64)
        if self.n == 0:
            return np.full(q.shape, np.nan)
        v, w = self._weighted()
        cum = np.cumsum(w)
        total = cum[-1]
        idx = np.searchsorted(cum, np.clip(q, 0.0, 1.0) * total, side="left")
        return np.asarray(v[np.clip(idx, 0, v.size - 1)], dtype=np.float64)

    def cdf(self, points: Iterable[float], *, inclusive: bool = True) -> FloatArray:
        """Fraction of values ``<= p`` (or ``< p`` with ``inclusive=False``) for each point."""
        p = np.asarray(list(points), dtype=np.float64)
        if self.n == 0:
            return np.full(p.shape, np.nan)
        v, w = self._weighted()
        cum = np.concatenate([[0.0], np.cumsum(w)])
        idx = np.searchsorted(v, p, side="right" if inclusive else "left")
        return np.asarray(cum[idx] / cum[-1], dtype=np.float64)

    def mass(self, edges: npt.ArrayLike) -> FloatArray:
        """Fraction of values in each bin ``(-inf, e0), [e0, e1), …, [e_last, inf)``."""
        e = np.asarray(edges, dtype=np.float64)
        below = self.cdf(e, inclusive=False)
        return np.diff(np.concatenate([[0.0], below, [1.0]]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n": self.n,
            "compactions": self.compactions,
            "levels": [_encode(lv) for lv in self.levels],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileSketch:
        return cls(
            k=int(data["k"]),
            n=int(data["n"]),
            compactions=int(data["compactions"]),
            levels=[_decode(t) for t in data["levels"]],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (
            self.k == other.k
            and self.n == other.n
            and self.compactions == other.compactions
            and len(self.levels) == len(other.levels)
            and all(np.array_equal(a, b) for a, b in zip(self.levels, other.levels, strict=True))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


@dataclass
class FrequencySketch:
    """Counts of string values: exact up to ``capacity`` distinct values, bounded beyond.

    Past the capacity the rarest values are dropped (SpaceSaving-style): ``error``
    is then an upper bound on how much any reported count may be below the truth,
    and the distinct count comes from a HyperLogLog sketch (relative standard
    error about 0.8%) that is seeded with every value seen so far at that moment,
    so it stays correct from then on and merges across shards.

    Examples:
        >>> f = FrequencySketch()
        >>> f.update({"a": 3, "b": 1})
        >>> f.top(1)
        [('a', 3)]
    """

    capacity: int = 10_000
    counts: dict[str, int] = field(default_factory=dict)
    error: int = 0
    hll: Any = None  # datasketches.hll_sketch once the capacity has been exceeded

    @property
    def exact(self) -> bool:
        return self.hll is None

    @property
    def distinct(self) -> int:
        """Distinct values seen: exact while ``exact``, a HyperLogLog estimate beyond."""
        if self.hll is None:
            return len(self.counts)
        return max(len(self.counts), round(float(self.hll.get_estimate())))

    def update(self, counts: Mapping[str, int]) -> None:
        table = self.counts
        for value, count in counts.items():
            table[value] = table.get(value, 0) + int(count)
        if self.hll is not None:
            _hll_add(self.hll, counts)
        if len(table) > self.capacity:
            self._prune()

    def merge(self, other: FrequencySketch) -> FrequencySketch:
        out = FrequencySketch(
            capacity=max(self.capacity, other.capacity),
            counts=dict(self.counts),
            error=self.error + other.error,
        )
        if self.hll is not None or other.hll is not None:
            union = datasketches.hll_union(HLL_LG_K)
            for part in (self, other):
                union.update(part.hll if part.hll is not None else _hll_of(part.counts))
            out.hll = union.get_result()
        out.update(other.counts)
        return out

    def _prune(self) -> None:
        if self.hll is None:
            self.hll = _hll_of(self.counts)
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept, dropped = ranked[: self.capacity], ranked[self.capacity :]
        self.error += dropped[0][1] if dropped else 0
        self.counts = dict(kept)

    def top(self, k: int) -> list[tuple[str, int]]:
        """The ``k`` most frequent values, ties broken by value for a stable order."""
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "capacity": self.capacity,
            "error": self.error,
            "counts": dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        }
        if self.hll is not None:
            out["hll"] = base64.b64encode(self.hll.serialize_compact()).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrequencySketch:
        hll = None
        if data.get("hll"):
            hll = datasketches.hll_sketch.deserialize(base64.b64decode(data["hll"]))
        return cls(
            capacity=int(data["capacity"]),
            counts={str(k): int(v) for k, v in data["counts"].items()},
            error=int(data["error"]),
            hll=hll,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrequencySketch):
            return NotImplemented
        same_hll = (self.hll is None and other.hll is None) or (
            self.hll is not None
            and other.hll is not None
            and self.hll.serialize_compact() == other.hll.serialize_compact()
        )
        return (
            self.capacity == other.capacity
            and self.error == other.error
            and self.counts == other.counts
            and same_hll
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


HLL_LG_K = 14


def _merge_sorted(first: FloatArray, second: FloatArray) -> FloatArray:
    """The stable sort of ``first`` followed by ``second``, both sorted already.

    A compaction leaves at most one value behind on a level, so the usual case is one
    value merged into many: it goes in before the equal ones, as a stable sort puts it.
    """
    if first.size == 1:
        at = int(np.searchsorted(second, first[0]))
        out = np.empty(second.size + 1, dtype=np.float64)
        out[:at], out[at], out[at + 1 :] = second[:at], first[0], second[at:]
        return out
    merged = np.concatenate([first, second])
    merged.sort(kind="stable")
    return merged


def _hll_add(sketch: Any, values: Iterable[str]) -> None:
    for value in values:
        sketch.update(value)


def _hll_of(values: Iterable[str]) -> Any:
    sketch = datasketches.hll_sketch(HLL_LG_K)
    _hll_add(sketch, values)
    return sketch
