"""A regression model's error estimated without labels: direct loss estimation (DLE).

Labels arrive late or never. At registration a small model learns, on the version's
held-out rows, how large its error is from the row itself: gradient-boosted trees of
depth 3 (numpy only) of the absolute error, and of the squared error, on the prediction,
the numeric columns and the most frequent values of each text column, each binned at
its held-out quantiles. A tree is flat beyond the last bin: where a linear model of the
error extrapolates (a temperature never seen, a prediction far out of range) and can
move against the realized error, the trees hold the nearest value they know. On a window
of served rows the expected absolute and squared errors of each row give the expected
MAE and RMSE, each with a 95% band: the sampling of the errors around their expectation,
and how far the error model's estimates of held-out windows landed from their realized
value (measured out of sample at registration).

Two checks keep a number from being shown where it cannot be trusted:

* **At registration, a self-test.** The held-out rows in their order (by their first
  timestamp column, else as given) are cut in two; an error model fitted on the first
  half estimates windows of the second (contiguous blocks, and the rows low or high in
  the columns the error depends on most) and is compared with carrying the first half's
  MAE forward. If it does no better, beyond the windows' sampling noise, the reference
  is refused ("not estimable: …") and nothing is estimated from it: the evaluation's MAE
  and RMSE are what is known.
* **On every window, its support.** When a share of the window's rows beyond
  :data:`MAX_OUTSIDE` (more than the held-out rows themselves) lies outside the range
  the error model was fitted on, in the prediction or any column, the estimate is kept
  but marked ``unreliable`` with the columns and shares that say so: beyond its range a
  tree repeats its last value, and the version's own model may err as it never did.

It assumes that the error's size depends on what the small model sees as it did on the
held-out rows; a population whose errors grow for reasons no column shows is not seen.

Examples:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=3000)
    >>> table = pa.table({"x": x})
    >>> truth = 2 * x + rng.normal(0, 1 + np.abs(x))  # noisier where |x| is large
    >>> reference = fit_loss_reference(table, 2 * x, truth)
    >>> reference.refused is None
    True
    >>> wide = np.abs(x) > 1.5  # a window of larger |x|
    >>> est = estimate_loss(reference, pa.table({"x": x[wide]}), 2 * x[wide])
    >>> est.metrics["mae"].value > 1.5, est.unreliable is None
    (True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mooring.monitoring._estimated import NO_ROWS, Estimate, EstimatedMetric

__all__ = ["Design", "LossReference", "Trees", "estimate_loss", "fit_loss_reference"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Held-out rows the small model needs.
MIN_ROWS = 200
#: Held-out rows it is fitted on at most (a seeded sample of them beyond).
MAX_ROWS = 20_000
#: Text columns contribute their most frequent values, at most this many each.
TOP_VALUES = 30
#: Bins of a numeric column (and of the prediction), cut at its held-out quantiles.
BINS = 32
#: The trees: how many, how deep, their learning rate and L2 penalty on a leaf.
TREES = 60
DEPTH = 3
RATE = 0.1
PENALTY = 1.0
#: A leaf holds at least this share of the rows (and at least 20).
LEAF_SHARE = 0.02
#: A window is unreliable when this share of its rows, beyond the share of the held-out
#: rows themselves, lies outside the range the error model was fitted on (in the
#: prediction or any column).
MAX_OUTSIDE = 0.10
#: The range of a numeric column: its held-out quantiles at these levels.
SUPPORT = (0.005, 0.995)
#: The self-test's windows: contiguous blocks of the later half, and the rows low and
#: high in each of this many columns the error depends on most.
BLOCKS = 4
SHIFTED_COLUMNS = 3
#: Rows a self-test window needs (the later half of the fewest held-out rows makes four).
MIN_WINDOW = MIN_ROWS // 8
#: What the prediction is called where a message names the columns.
PREDICTION = "the prediction"
#: A reference stored before the trees (a linear model of the error).
LINEAR = (
    "not estimable: the error model frozen with this version is an earlier linear one, "
    "which can move against the realized error; the next `mooring run` registers a "
    "version with the current one"
)
_Z = 1.96
_STREAM = 0x646C65


@dataclass(frozen=True)
class Design:
    """How a row becomes the small model's inputs: one bin code per column, 0 for a
    missing value (or, for text, a value beyond the most frequent ones).

    ``prediction`` and each of ``numeric`` hold their bin edges and the range the error
    model was fitted on (:data:`SUPPORT`); ``text`` its kept values, in the order of
    their mean absolute error (so that a split of the codes is a split of the errors),
    and the share of held-out rows with none of them.
    """

    prediction: tuple[tuple[float, ...], float, float]
    numeric: Mapping[str, tuple[tuple[float, ...], float, float]]
    text: Mapping[str, tuple[tuple[str, ...], float]]

    @property
    def names(self) -> tuple[str, ...]:
        """The columns of :meth:`codes`, in order (the prediction first)."""
        return (PREDICTION, *self.numeric, *self.text)

    @property
    def widths(self) -> tuple[int, ...]:
        """The codes each column takes (missing, or an unkept value, is 0)."""
        return (
            len(self.prediction[0]) + 2,
            *(len(edges) + 2 for edges, _, _ in self.numeric.values()),
            *(len(values) + 1 for values, _ in self.text.values()),
        )

    @classmethod
    def of(
        cls,
        table: pa.Table,
        predictions: FloatArray,
        absolute: FloatArray,
        label: str | None = None,
    ) -> Design:
        """The design of held-out rows whose absolute errors are ``absolute``."""
        numeric: dict[str, tuple[tuple[float, ...], float, float]] = {}
        text: dict[str, tuple[tuple[str, ...], float]] = {}
        for name in table.column_names:
            if name == label:
                continue
            kind = table[name].type
            if pa.types.is_integer(kind) or pa.types.is_floating(kind):
                found = _binned(_numbers(table[name]))
                if found is not None:
                    numeric[name] = found
            elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
                column = table[name]
                counts = pc.value_counts(column.drop_null()).to_pylist()
                top = sorted(counts, key=lambda c: -int(c["counts"]))[:TOP_VALUES]
                kept = [str(c["values"]) for c in top]
                values = np.asarray(column.to_pylist(), dtype=object)
                mean = {v: float(absolute[values == v].mean()) for v in kept}
                ordered = tuple(sorted(kept, key=lambda v: (mean[v], v)))
                other = float(np.mean(~np.isin(values, np.asarray(kept, dtype=object))))
                text[name] = (ordered, other)
        prediction = _binned(predictions)
        assert prediction is not None  # held-out predictions are finite
        return cls(prediction, numeric, text)

    def codes(self, table: pa.Table, predictions: npt.ArrayLike) -> IntArray:
        """The bin codes of ``table``'s rows (a column the table lacks counts as missing)."""
        p = np.asarray(predictions, dtype=np.float64).reshape(-1)
        parts = [_code(p, self.prediction[0])]
        for name, (edges, _, _) in self.numeric.items():
            values = np.asarray(_readable(table, name, pa.float64(), p.size), dtype=np.float64)
            parts.append(_code(values, edges))
        for name, (kept, _) in self.text.items():
            column = np.asarray(_readable(table, name, pa.string(), p.size), dtype=object)
            index = {v: i + 1 for i, v in enumerate(kept)}
            parts.append(np.fromiter((index.get(v, 0) for v in column), np.int64, p.size))
        return np.column_stack(parts).astype(np.int64)

    def outside(
        self, table: pa.Table, predictions: FloatArray
    ) -> dict[str, tuple[float, float, str]]:
        """Each column's share of ``table``'s rows beyond its fitted range, the share of
        the held-out rows beyond it, and the range in words."""
        out: dict[str, tuple[float, float, str]] = {}
        columns = [(PREDICTION, predictions, self.prediction)]
        for name, bins in self.numeric.items():
            values = np.asarray(_readable(table, name, pa.float64(), predictions.size))
            columns.append((name, values.astype(np.float64), bins))
        held = 1.0 - (SUPPORT[1] - SUPPORT[0])
        for name, values, (_, low, high) in columns:
            finite = values[np.isfinite(values)]
            if finite.size:
                beyond = float(np.mean((finite < low) | (finite > high)))
                out[name] = (beyond, held, f"{low:.4g} to {high:.4g}")
        for name, (kept, other) in self.text.items():
            found = _cast(table, name, pa.string())
            if found is None:
                continue  # a column the window does not hold is read as missing, not outside
            column = np.asarray(found, dtype=object)
            unseen = float(np.mean(~np.isin(column, np.asarray(kept, dtype=object))))
            out[name] = (unseen, other, f"its {len(kept)} most frequent values")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Lists, not mappings: the columns' order is the codes' order, and a stored
        mapping may come back with its keys sorted."""
        edges, low, high = self.prediction
        return {
            "prediction": [list(edges), low, high],
            "numeric": [[k, list(e), lo, hi] for k, (e, lo, hi) in self.numeric.items()],
            "text": [[k, list(v), other] for k, (v, other) in self.text.items()],
        }

    @classmethod
    def read(cls, data: object) -> Design | None:
        if not isinstance(data, Mapping):
            return None
        try:
            edges, low, high = data["prediction"]
            prediction = (tuple(map(float, edges)), float(low), float(high))
            numeric = {
                str(k): (tuple(map(float, e)), float(lo), float(hi))
                for k, e, lo, hi in data["numeric"]
            }
            text = {str(k): (tuple(map(str, v)), float(o)) for k, v, o in data["text"]}
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None
        return cls(prediction, numeric, text)


def _binned(values: FloatArray) -> tuple[tuple[float, ...], float, float] | None:
    """Bin edges (the finite values' inner quantiles, distinct) and the fitted range."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    inner = np.quantile(finite, np.linspace(0.0, 1.0, BINS + 1)[1:-1])
    low, high = np.quantile(finite, SUPPORT)
    return tuple(np.unique(inner).tolist()), float(low), float(high)


def _code(values: FloatArray, edges: Sequence[float]) -> IntArray:
    """1 + the bin of each value (a value on an edge goes above it); 0 when missing."""
    codes = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right") + 1
    return np.where(np.isfinite(values), codes, 0).astype(np.int64)


def _readable(table: pa.Table, name: str, kind: pa.DataType, rows: int) -> list[Any]:
    """``name``'s values as ``kind`` (None where missing; a list of one value per row, as
    a model with ``[N, 1]`` inputs logs them, read as that value); all None when the table
    lacks the column or holds it in a shape that does not cast (several values a row)."""
    found = _cast(table, name, kind)
    if found is None:
        return [float("nan") if kind == pa.float64() else None] * rows
    return found


def _cast(table: pa.Table, name: str, kind: pa.DataType) -> list[Any] | None:
    """:func:`_readable`'s values, or None when there are none to read."""
    if name not in table.column_names:
        return None
    column = table[name]
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = pc.list_value_length(column)
        ones = pc.min(lengths).as_py() == 1 and pc.max(lengths).as_py() == 1
        if ones and column.null_count == 0:
            column = pc.list_flatten(column)
    try:
        values: list[Any] = pc.cast(column, kind, safe=False).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return [float("nan") if v is None and kind == pa.float64() else v for v in values]


def _numbers(column: pa.ChunkedArray) -> FloatArray:
    # Unchecked: an int64 id beyond 2^53 loses its last digits, not the row.
    values = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


_NODES = 2**DEPTH - 1


@dataclass(frozen=True)
class Trees:
    """A sum of regression trees of depth :data:`DEPTH` over bin codes: ``base`` plus,
    per tree, the leaf its row reaches. A tree's node ``i`` (heap order) sends a row to
    ``2 i + 1`` when its code in column ``columns[i]`` is at most ``cuts[i]``, else to
    ``2 i + 2`` (column -1: always the first); ``leaves`` are its 2^depth values.

    >>> trees = Trees(1.0, ((0, -1, -1, -1, -1, -1, -1),), ((2,) * 7,), ((0.0,) * 4 + (5.0,) * 4,))
    >>> trees(np.array([[1], [3]])).tolist()
    [1.0, 6.0]
    """

    base: float
    columns: tuple[tuple[int, ...], ...]
    cuts: tuple[tuple[int, ...], ...]
    leaves: tuple[tuple[float, ...], ...]
    gain: tuple[float, ...] = ()

    def __call__(self, codes: IntArray) -> FloatArray:
        rows = np.arange(codes.shape[0])
        out = np.full(codes.shape[0], self.base)
        for columns, cuts, leaves in zip(self.columns, self.cuts, self.leaves, strict=True):
            column, cut = np.asarray(columns), np.asarray(cuts)
            node = np.zeros(codes.shape[0], dtype=np.int64)
            for _ in range(DEPTH):
                used = column[node]
                right = (used >= 0) & (codes[rows, np.maximum(used, 0)] > cut[node])
                node = 2 * node + 1 + right.astype(np.int64)
            out += np.asarray(leaves)[node - _NODES]
        return out

    @classmethod
    def fit(cls, codes: IntArray, target: FloatArray, widths: Sequence[int]) -> Trees:
        """Boosted trees of ``target`` on ``codes`` (squared loss), each split the one
        that most lowers the squared error among cuts leaving :data:`LEAF_SHARE` of the
        rows (at least 20) on either side."""
        n, k = codes.shape
        width = max(widths)
        least = max(20.0, LEAF_SHARE * n)
        base = float(target.mean())
        fitted = np.full(n, base)
        gain = np.zeros(k)
        placed = codes + np.arange(k, dtype=np.int64)[None, :] * width
        weights = np.empty((n, k))
        found: tuple[list[tuple[int, ...]], list[tuple[int, ...]], list[tuple[float, ...]]]
        found = ([], [], [])
        for _ in range(TREES):
            residual = target - fitted
            node = np.zeros(n, dtype=np.int64)
            columns, cuts = np.full(_NODES, -1), np.zeros(_NODES, dtype=np.int64)
            for depth in range(DEPTH):
                first, count = 2**depth - 1, 2**depth
                local = node - first
                # Every column's histogram of the residual and of the rows, per node.
                key = (local * (k * width))[:, None] + placed
                size = count * k * width
                weights[:] = residual[:, None]
                total = np.bincount(key.ravel(), weights.ravel(), size)
                many = np.bincount(key.ravel(), None, size)
                left = np.cumsum(total.reshape(count, k, width), axis=2)
                left_n = np.cumsum(many.reshape(count, k, width), axis=2)
                right, right_n = left[:, :, -1:] - left, left_n[:, :, -1:] - left_n
                score = left**2 / (left_n + PENALTY) + right**2 / (right_n + PENALTY)
                score -= left[:, :, -1:] ** 2 / (left_n[:, :, -1:] + PENALTY)
                score[(left_n < least) | (right_n < least)] = 0.0
                flat = score.reshape(count, k * width)
                pick = np.argmax(flat, axis=1)
                best = flat[np.arange(count), pick]
                split = best > 1e-12
                columns[first : first + count] = np.where(split, pick // width, -1)
                cuts[first : first + count] = np.where(split, pick % width, 0)
                for i in np.flatnonzero(split):
                    gain[columns[first + i]] += best[i]
                used = columns[node]
                later = (used >= 0) & (codes[np.arange(n), np.maximum(used, 0)] > cuts[node])
                node = 2 * node + 1 + later.astype(np.int64)
            leaf = node - _NODES
            sums = np.bincount(leaf, residual, 2**DEPTH)
            values = RATE * sums / (np.bincount(leaf, None, 2**DEPTH) + PENALTY)
            fitted += values[leaf]
            found[0].append(tuple(columns.tolist()))
            found[1].append(tuple(cuts.tolist()))
            found[2].append(tuple(values.tolist()))
        return cls(base, tuple(found[0]), tuple(found[1]), tuple(found[2]), tuple(gain.tolist()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "columns": [list(c) for c in self.columns],
            "cuts": [list(c) for c in self.cuts],
            "leaves": [list(v) for v in self.leaves],
            "gain": list(self.gain),
        }

    @classmethod
    def read(cls, data: object) -> Trees | None:
        if not isinstance(data, Mapping):
            return None
        try:
            trees = cls(
                float(data["base"]),
                tuple(tuple(map(int, c)) for c in data["columns"]),
                tuple(tuple(map(int, c)) for c in data["cuts"]),
                tuple(tuple(map(float, v)) for v in data["leaves"]),
                tuple(map(float, data.get("gain", []))),
            )
        except (KeyError, TypeError, ValueError):
            return None
        shapes = {len(c) for c in (*trees.columns, *trees.cuts)} | {_NODES}
        if shapes != {_NODES} or any(len(v) != 2**DEPTH for v in trees.leaves):
            return None
        return trees


@dataclass(frozen=True)
class ErrorModel:
    """The trees of a version's absolute and squared errors, and the spread of the
    squared error around its expectation (``kurtosis``: var(e²) / E[e²]², 2 for normal
    errors)."""

    design: Design
    absolute: Trees
    squared: Trees
    kurtosis: float

    @classmethod
    def fit(cls, table: pa.Table, p: FloatArray, y: FloatArray, label: str | None) -> ErrorModel:
        error = y - p
        design = Design.of(table, p, np.abs(error), label)
        codes = design.codes(table, p)
        absolute = Trees.fit(codes, np.abs(error), design.widths)
        squared = Trees.fit(codes, error * error, design.widths)
        _, s = _expected(absolute, squared, codes)
        spread = float(np.sum((error * error - s) ** 2) / max(np.sum(s * s), 1e-300))
        return cls(design, absolute, squared, max(spread, 2.0))

    def expected(self, table: pa.Table, p: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Each row's expected absolute and squared error."""
        return _expected(self.absolute, self.squared, self.design.codes(table, p))

    def window(self, table: pa.Table, p: FloatArray) -> tuple[float, float, float, float]:
        """A window's expected MAE and MSE, and the sampling variance of each."""
        m, s = self.expected(table, p)
        n = max(m.size, 1)
        return (
            float(m.mean()),
            float(s.mean()),
            float(np.sum(s - m * m)) / n**2,
            self.kurtosis * float(np.sum(s * s)) / n**2,
        )


def _expected(absolute: Trees, squared: Trees, codes: IntArray) -> tuple[FloatArray, FloatArray]:
    m = np.clip(absolute(codes), 0.0, None)
    return m, np.maximum(squared(codes), m * m)


@dataclass(frozen=True)
class SelfTest:
    """The error model's trial at registration: fitted on the first half of the held-out
    rows, on ``windows`` windows of the second, its estimated MAE was off by ``dle`` on
    average where carrying the first half's MAE forward was off by ``carried``; the
    windows' sampling noise was ``noise`` (the mean of their standard deviations).
    ``spread_mae`` and ``spread_rmse``: how far its estimates landed beyond the windows'
    sampling noise (root mean square, relative to the estimate): the band's term for
    what the error model does not know, beside the sampling of a window's own errors."""

    windows: int
    dle: float
    carried: float
    noise: float
    spread_mae: float
    spread_rmse: float
    ordered_by: str | None

    @property
    def passed(self) -> bool:
        """No worse than carrying the MAE forward, beyond the windows' sampling noise."""
        return self.dle <= self.carried + self.noise

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "dle": self.dle,
            "carried": self.carried,
            "noise": self.noise,
            "spread_mae": self.spread_mae,
            "spread_rmse": self.spread_rmse,
            "ordered_by": self.ordered_by,
        }

    @classmethod
    def read(cls, data: object) -> SelfTest | None:
        if not isinstance(data, Mapping):
            return None
        try:
            dle, carried, noise, spread_mae, spread_rmse = (
                float(data[k]) for k in ("dle", "carried", "noise", "spread_mae", "spread_rmse")
            )
            windows = int(data["windows"])
        except (KeyError, TypeError, ValueError):
            return None
        ordered = data.get("ordered_by")
        by = ordered if isinstance(ordered, str) else None
        return cls(windows, dle, carried, noise, spread_mae, spread_rmse, by)


@dataclass(frozen=True)
class LossReference:
    """A regression version's error model, frozen at registration (``model``), its
    held-out ``rows``, their realized ``evaluation`` MAE and RMSE (what an estimate is
    read against, and what is known when there is none), the ``self_test`` that decided
    whether it is shown, and why nothing is estimated (``refused``)."""

    model: ErrorModel | None
    rows: int
    evaluation: Mapping[str, float] = field(default_factory=dict)
    self_test: SelfTest | None = None
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "method": "dle",
            "model": "trees",
            "design": None if model is None else model.design.to_dict(),
            "absolute": None if model is None else model.absolute.to_dict(),
            "squared": None if model is None else model.squared.to_dict(),
            "kurtosis": None if model is None else model.kurtosis,
            "rows": self.rows,
            "evaluation": dict(self.evaluation),
            "self_test": None if self.self_test is None else self.self_test.to_dict(),
            "refused": self.refused,
        }

    @classmethod
    def read(cls, data: object) -> LossReference | None:
        """The reference of a stored mapping (``method = "dle"``), or None. One stored
        before the trees (a linear model) reads as refused, saying so."""
        if not isinstance(data, Mapping) or data.get("method") != "dle":
            return None
        rows = data.get("rows")
        count = rows if isinstance(rows, int) else 0
        if data.get("model") != "trees":
            return cls(None, count, refused=LINEAR) if "absolute" in data else None
        evaluation = data.get("evaluation")
        numbers = {
            str(k): float(v)
            for k, v in (evaluation.items() if isinstance(evaluation, Mapping) else ())
            if isinstance(v, int | float)
        }
        refused = data.get("refused")
        self_test = SelfTest.read(data.get("self_test"))
        model = None
        design = Design.read(data.get("design"))
        absolute, squared = Trees.read(data.get("absolute")), Trees.read(data.get("squared"))
        kurtosis = data.get("kurtosis")
        whole = design is not None and absolute is not None and squared is not None
        if whole and isinstance(kurtosis, int | float):
            assert design is not None and absolute is not None and squared is not None
            columns = len(design.names)
            used = [c for t in (absolute, squared) for node in t.columns for c in node]
            if all(-1 <= c < columns for c in used):
                model = ErrorModel(design, absolute, squared, float(kurtosis))
        if model is None and not isinstance(refused, str):
            return None
        return cls(model, count, numbers, self_test, refused if isinstance(refused, str) else None)


def _ordering(table: pa.Table) -> tuple[IntArray, str | None]:
    """The rows in time order, by the table's first timestamp or date column (a stable
    sort, missing times last), else as given."""
    for name in table.column_names:
        kind = table[name].type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            order = pc.sort_indices(table, sort_keys=[(name, "ascending", "at_end")])
            return np.asarray(order.to_numpy(), dtype=np.int64), name
    return np.arange(table.num_rows, dtype=np.int64), None


def _trial(
    table: pa.Table, p: FloatArray, y: FloatArray, label: str | None, rng: np.random.Generator
) -> SelfTest:
    """:class:`SelfTest`: an error model of the first half of the rows in order, judged
    on windows of the second half against the first half's MAE carried forward."""
    order, by = _ordering(table)
    half = order.size // 2
    early, late = order[:half], order[half:]
    fitted = early[_sample(early.size, rng)]
    model = ErrorModel.fit(table.take(fitted), p[fitted], y[fitted], label)
    carried = float(np.mean(np.abs(y[early] - p[early])))
    windows = [late[i] for i in np.array_split(np.arange(late.size), BLOCKS)]
    gain = np.asarray(model.absolute.gain)
    names = model.design.names
    codes = model.design.codes(table.take(late), p[late])
    for j in [j for j in np.argsort(-gain)[:SHIFTED_COLUMNS] if gain[j] > 0]:
        if names[j] in model.design.text:
            continue  # a text column's codes are not an order of its rows
        low, high = np.quantile(codes[:, j], [0.25, 0.75])
        windows += [late[codes[:, j] <= low], late[codes[:, j] >= high]]
    windows = [w for w in windows if w.size >= MIN_WINDOW]
    found = []
    for rows in windows:
        mae, mse, var_mae, var_mse = model.window(table.take(rows), p[rows])
        error = y[rows] - p[rows]
        real_mae, real_rmse = float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error**2)))
        var_rmse = var_mse / max(4.0 * mse, 1e-300)  # the delta method
        found.append((mae, real_mae, var_mae, float(np.sqrt(mse)), real_rmse, var_rmse))
    f = np.asarray(found, dtype=np.float64).reshape(-1, 6)
    dle = float(np.mean(np.abs(f[:, 0] - f[:, 1])))
    carry = float(np.mean(np.abs(carried - f[:, 1])))
    noise = float(np.mean(np.sqrt(f[:, 2])))

    from scipy.stats import chi2

    def spread(value: FloatArray, real: FloatArray, var: FloatArray) -> float:
        # Beyond the windows' sampling, and at its upper 80% bound: a handful of windows
        # measures it (a variance from k windows is chi-square with k degrees).
        beyond = float(np.sum((value - real) ** 2 - var)) / chi2.ppf(0.2, value.size)
        return float(np.sqrt(max(beyond, 0.0))) / max(float(np.mean(value)), 1e-300)

    return SelfTest(
        len(found),
        dle,
        carry,
        noise,
        spread(f[:, 0], f[:, 1], f[:, 2]),
        spread(f[:, 3], f[:, 4], f[:, 5]),
        by,
    )


def fit_loss_reference(
    table: pa.Table,
    predictions: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    label: str | None = None,
    seed: int = 0,
) -> LossReference:
    """The error model of ``predictions`` against ``targets`` on the held-out rows of
    ``table`` (its ``label`` column left out), tried first on their later half
    (:class:`SelfTest`): refused when it does no better there than the MAE carried
    forward. Beyond :data:`MAX_ROWS` rows each fit uses a sample drawn with ``seed``."""
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if p.shape != y.shape or p.size != table.num_rows:
        raise ValueError(
            f"{p.size} predictions, {y.size} targets and {table.num_rows} rows: give one "
            "prediction and one target per row"
        )
    usable = np.isfinite(p) & np.isfinite(y)
    if not usable.all():
        keep = np.flatnonzero(usable)
        table, p, y = table.take(keep), p[keep], y[keep]
    rows = int(p.size)
    error = y - p
    evaluation = (
        {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}
        if rows
        else {}
    )
    known = _known(evaluation)
    if rows < MIN_ROWS:
        return LossReference(
            None,
            rows,
            evaluation,
            refused=f"not estimable: the held-out data has {rows} rows; estimating the "
            f"error needs {MIN_ROWS}: evaluate on more rows{known}",
        )
    rng = np.random.default_rng((seed, _STREAM))
    trial = _trial(table, p, y, label, rng)
    if not trial.passed:
        return LossReference(
            None,
            rows,
            evaluation,
            trial,
            refused=(
                f"not estimable: on the later half of the held-out rows "
                f"({'by ' + trial.ordered_by if trial.ordered_by else 'in their order'}), "
                f"the error model's MAE was off by {trial.dle:.4g} on average over "
                f"{trial.windows} windows, carrying the earlier half's MAE forward by "
                f"{trial.carried:.4g} (sampling noise {trial.noise:.4g}): an estimate "
                f"would mislead{known}"
            ),
        )
    fitted = _sample(rows, rng)
    model = ErrorModel.fit(table.take(fitted), p[fitted], y[fitted], label)
    return LossReference(model, rows, evaluation, trial)


def _sample(rows: int, rng: np.random.Generator) -> IntArray:
    """At most :data:`MAX_ROWS` of ``rows`` rows, in their order."""
    if rows <= MAX_ROWS:
        return np.arange(rows, dtype=np.int64)
    return np.sort(rng.choice(rows, MAX_ROWS, replace=False)).astype(np.int64)


def _known(evaluation: Mapping[str, float]) -> str:
    if not evaluation:
        return ""
    return f"; the evaluation's MAE {evaluation['mae']:.4g} and RMSE {evaluation['rmse']:.4g} hold"


def estimate_loss(
    reference: LossReference, table: pa.Table, predictions: npt.ArrayLike, *, seed: int = 0
) -> Estimate:
    """The expected MAE and RMSE of a window of served rows (``table`` and the version's
    ``predictions`` of them), each with its 95% band; ``unreliable`` when too many rows
    lie outside where the error model was fitted."""
    del seed
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    rows = int(p.size)
    model = reference.model
    if reference.refused is not None or model is None:
        return Estimate(rows, {}, reference.refused or LINEAR)
    if rows == 0:
        return Estimate(0, {}, NO_ROWS)
    finite = np.isfinite(p)
    if not finite.all():
        keep = np.flatnonzero(finite)
        table, p = table.take(keep), p[keep]
        if not p.size:
            return Estimate(rows, {}, NO_ROWS)
    mae, mse, var_mae, var_mse = model.window(table, p)
    rmse = float(np.sqrt(mse))
    var_rmse = var_mse / max(4.0 * mse, 1e-300)
    trial = reference.self_test
    spreads = (0.0, 0.0) if trial is None else (trial.spread_mae, trial.spread_rmse)
    out: dict[str, EstimatedMetric] = {}
    for name, value, var, spread in (
        ("mae", mae, var_mae, spreads[0]),
        ("rmse", rmse, var_rmse, spreads[1]),
    ):
        half = _Z * float(np.sqrt(var + (spread * value) ** 2))
        out[name] = EstimatedMetric(value, max(value - half, 0.0), value + half)
    return Estimate(rows, out, unreliable=_unsupported(model, table, p))


def _unsupported(model: ErrorModel, table: pa.Table, p: FloatArray) -> str | None:
    """Why the window lies outside where the error model was fitted, or None: its rows
    beyond the fitted range of the prediction or of any column (a column the error model
    did not split on within the range may matter beyond it: the version's own model
    extrapolates there, and nothing says how it errs)."""
    found = sorted(model.design.outside(table, p).items(), key=lambda kv: kv[1][1] - kv[1][0])
    said = [
        f"{share:.0%} of its rows have {name} outside {where} ({held:.0%} of the held-out rows)"
        for name, (share, held, where) in found
        if share - held > MAX_OUTSIDE
    ]
    if not said:
        return None
    more = f"; and {len(said) - 3} more column(s)" if len(said) > 3 else ""
    return "the window lies outside where the error model was fitted: " + "; ".join(said[:3]) + more
