"""Label leakage: columns that predict the label too well to be honest features.

A column that alone ranks the label perfectly (AUC ≥ 0.99), explains it alone (R² ≥ 0.99)
or names its class (accuracy ≥ 0.99) is, in tabular data, almost always the label under
another name: a ``reject`` flag that is ``1 - label``, a status written after the outcome.
So is a pair of numeric columns of which the label is an exact linear combination
(``rent = base + extras``). :func:`column_power` measures each column alone on a sample;
:func:`find_leaks` names the leaks with their reason (``mooring init`` excludes them).

Each column is scored honestly: a categorical column's (or a binned numeric column's)
per-value label rate, mean or majority is learned on one half of the sample and scored
on the other, so a high-cardinality column that only memorises its rows is not a leak;
a numeric column is also scored by its own values (AUC, both directions) and its linear
R² with the label, which learn nothing.

Examples:
    >>> import pyarrow as pa
    >>> t = pa.table({"x": [0.1 * i for i in range(200)], "label": [i % 2 for i in range(200)]})
    >>> t = t.append_column("reject", pa.array([1 - i % 2 for i in range(200)]))
    >>> find_leaks(t, "label", task="binary", positive="1")
    {'reject': 'alone it gives AUC 1.000 (a leak: the label, or derived from it)'}
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract._io import ReadOptions, RetypeColumnError, iter_batches, read_table

__all__ = [
    "IDENTITY_R2",
    "LEAK_POWER",
    "SAMPLE_ROWS",
    "ColumnPower",
    "auc",
    "column_power",
    "find_leaks",
    "identities",
    "label_values",
    "read_sample",
    "sample_rows",
]

#: A column alone at least this good (AUC, R², accuracy) is a leak.
LEAK_POWER = 0.99
#: ... and for a class label, also this share of a constant answer's errors removed.
LEAK_ERRORS_REMOVED = 0.95
#: ... with a lower bound at least this (AUC, accuracy, R²): not luck on a small sample.
LEAK_LOWER = {"AUC": 0.98, "accuracy": 0.95, "R²": LEAK_POWER}
#: Two columns of which the label is a linear combination this close (residuals at most 3%
#: of the label's spread): an identity, not two good features (trending series reach 0.995).
IDENTITY_R2 = 0.999
#: Rows the guard measures on (a seeded random sample of larger tables).
SAMPLE_ROWS = 4000
#: Quantile bins of a numeric column when scored by its per-bin label rate or mean.
BINS = 64
#: The metric each task's power is measured by.
POWER_METRIC = {"binary": "AUC", "regression": "R²", "multiclass": "accuracy"}

_NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


@dataclass(frozen=True)
class ColumnPower:
    """One column's power to predict the label alone: ``metric`` (``AUC``, ``R²`` or
    ``accuracy``) and its ``value`` on the held half of the sample."""

    column: str
    metric: str
    value: float
    #: A one-sided 95% lower bound of ``value`` for the rows it was measured on (AUC:
    #: Hanley and McNeil's; accuracy: from the errors, at least 3 assumed; R²: the value).
    lower: float | None = None

    def line(self) -> str:
        """``'reject' (AUC 1.000)``."""
        return f"{self.column!r} ({self.metric} {self.value:.3f})"


def sample_rows(table: pa.Table, rows: int = SAMPLE_ROWS, *, seed: int = 0) -> pa.Table:
    """At most ``rows`` of ``table``, drawn at random with ``seed`` (all of a smaller one).

    >>> sample_rows(pa.table({"x": list(range(10))}), 3).num_rows
    3
    """
    if table.num_rows <= rows:
        return table
    picked = np.sort(np.random.default_rng(seed).choice(table.num_rows, rows, replace=False))
    return table.take(pa.array(picked))


def read_sample(
    source: Any, options: ReadOptions, *, total: int, rows: int = SAMPLE_ROWS, seed: int = 0
) -> pa.Table:
    """About ``rows`` rows of a file of ``total`` rows, each kept with the same chance
    (seeded), read batch by batch: a large file is never held whole.

    >>> read_sample(pa.table({"x": list(range(1000))}), ReadOptions(), total=1000,
    ...             rows=100).num_rows  # doctest: +SKIP
    97
    """
    if total <= rows:
        return read_table(source, options)
    share = rows / total
    for _ in range(64):
        rng = np.random.default_rng(seed)
        try:
            parts = [
                batch.filter(pa.array(rng.random(batch.num_rows) < share))
                for batch in iter_batches(source, options)
            ]
        except RetypeColumnError as retype:
            options = options.with_types({retype.column: retype.arrow_type})
            continue
        return pa.Table.from_batches(parts)
    return sample_rows(read_table(source, options), rows, seed=seed)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 (missing: NaN; integers beyond 2^53 rounded)."""
    return np.asarray(
        column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=float
    )


def _is_numeric(array: pa.ChunkedArray | pa.Array) -> bool:
    return any(test(array.type) for test in _NUMERIC)


def label_values(column: pa.ChunkedArray, task: str, positive: str | None) -> np.ndarray:
    """The label as numbers: 1.0/0.0 for the positive class (binary), class codes
    (multiclass), values (regression); NaN where it is missing.

    >>> label_values(pa.chunked_array([["a", "b", None]]), "binary", "b").tolist()
    [0.0, 1.0, nan]
    """
    if task == "regression":
        return _floats(column)
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    if task == "binary":
        hit = pc.equal(text, pa.scalar(str(positive))).to_numpy(zero_copy_only=False)
        out = np.where(hit == True, 1.0, 0.0)  # noqa: E712 - None (missing) is neither
        out[np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
        return out
    codes = _codes(text)
    return np.where(codes < 0, np.nan, codes.astype(float))


def _codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Each row's value as a code 0..k-1 (``-1`` for a missing value)."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _binned(values: np.ndarray) -> np.ndarray:
    """A numeric column as codes of its quantile bins (missing: one more code)."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.zeros(values.size, dtype=np.int64)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1]))
    codes = np.searchsorted(edges, values, side="right").astype(np.int64)
    codes[np.isnan(values)] = edges.size + 1
    return codes


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for 0/1 ``y`` (ties count one half).

    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return 0.5
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0.0:
        return 0.0
    return 1.0 - float(((y - predicted) ** 2).sum()) / total


def _held_out(codes: np.ndarray, y: np.ndarray, half: np.ndarray, task: str) -> float:
    """The per-code rate, mean or majority learned where ``half`` is False, scored where
    it is True (an unseen code gets the learning half's overall answer)."""
    learn, held = ~half, half
    if not learn.any() or not held.any():
        return 0.0 if task != "binary" else 0.5
    width = int(codes.max()) + 1
    if task == "multiclass":
        classes = int(y.max()) + 1
        counts = np.bincount(
            codes[learn] * classes + y[learn].astype(np.int64), minlength=width * classes
        ).reshape(width, classes)
        answer = counts.argmax(axis=1)
        answer[counts.sum(axis=1) == 0] = np.bincount(y[learn].astype(np.int64)).argmax()
        return float((answer[codes[held]] == y[held]).mean())
    sums = np.bincount(codes[learn], weights=y[learn], minlength=width)
    counts = np.bincount(codes[learn], minlength=width)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), y[learn].mean())
    predicted = means[codes[held]]
    return auc(y[held], predicted) if task == "binary" else _r2(y[held], predicted)


def _raw_power(values: np.ndarray, y: np.ndarray, task: str) -> float:
    """A numeric column's power by its own values: AUC both directions (missing values
    put below, then above, the others), or R² of the straight line."""
    present = ~np.isnan(values)
    if not present.any():
        return 0.5 if task == "binary" else 0.0
    if task == "binary":
        low, high = np.nanmin(values) - 1.0, np.nanmax(values) + 1.0
        best = 0.5
        for fill in (low, high):
            a = auc(y, np.where(present, values, fill))
            best = max(best, a, 1.0 - a)
        return best
    if task == "regression":
        x, t = values[present], y[present]
        if x.std() == 0.0 or t.std() == 0.0:
            return 0.0
        r = float(np.corrcoef(x, t)[0, 1])
        return r * r * float(present.mean())  # the rows it cannot explain count against it
    return 0.0


def column_power(
    table: pa.Table,
    label: str,
    *,
    task: str,
    positive: str | None = None,
    skip: Collection[str] = (),
    seed: int = 0,
) -> list[ColumnPower]:
    """Each column's power to predict ``label`` alone, the strongest first (see the module
    doc): AUC (binary), R² (regression) or accuracy (multiclass), on at most
    :data:`SAMPLE_ROWS` rows. ``skip``: columns not measured (ids, the timestamp).

    >>> t = pa.table({"a": [1, 2, 3, 4] * 50, "y": [0, 0, 1, 1] * 50})
    >>> column_power(t, "y", task="binary", positive="1")
    [ColumnPower(column='a', metric='AUC', value=1.0, lower=1.0)]
    """
    table = sample_rows(table, seed=seed)
    y_all = label_values(table.column(label), task, positive)
    keep = ~np.isnan(y_all)
    y = y_all[keep]
    if y.size < 2:
        return []
    half = np.zeros(y.size, dtype=bool)
    half[np.random.default_rng(seed).permutation(y.size)[: y.size // 2]] = True
    metric = POWER_METRIC[task]
    out = []
    for name in table.column_names:
        if name == label or name in skip:
            continue
        column = table.column(name)
        if _is_numeric(column):
            values = _floats(column)[keep]
            power = max(_raw_power(values, y, task), _held_out(_binned(values), y, half, task))
        else:
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                try:
                    column = column.cast(pa.string())
                except pa.ArrowException:  # lists, structs: no value to take a rate of
                    continue
            codes = _codes(column)[keep]
            codes[codes < 0] = codes.max() + 1
            power = _held_out(codes, y, half, task)
        out.append(
            ColumnPower(
                name, metric, round(float(power), 6), round(_lower(power, y, half, task), 6)
            )
        )
    return sorted(out, key=lambda p: (-p.value, p.column))


def _lower(value: float, y: np.ndarray, half: np.ndarray, task: str) -> float:
    """A one-sided 95% lower bound of ``value`` measured on the held half ``y[half]``: a
    column of 60 rows whose AUC is 0.99 by luck is not called a leak."""
    held = y[half]
    if task == "binary":
        positives = float(held.sum())
        negatives = held.size - positives
        if positives == 0 or negatives == 0:
            return 0.0
        q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
        variance = (
            value * (1 - value)
            + (positives - 1) * (q1 - value**2)
            + (negatives - 1) * (q2 - value**2)
        ) / (positives * negatives)
        return float(value - 1.645 * np.sqrt(max(variance, 0.0)))
    if task == "multiclass":
        errors = round((1.0 - value) * held.size)
        return float(max(0.0, 1.0 - (errors + 3) / max(held.size, 1)))
    return float(value)


def _is_leak(power: ColumnPower, y: np.ndarray, task: str) -> bool:
    if power.value < LEAK_POWER or (power.lower or 0.0) < LEAK_LOWER[power.metric]:
        return False
    if task != "multiclass":
        return True
    # A class label: also far better than always answering the most frequent class.
    majority = float(np.bincount(y.astype(np.int64)).max() / y.size)
    return (1.0 - power.value) <= (1.0 - LEAK_ERRORS_REMOVED) * (1.0 - majority)


def _numeric_matrix(
    table: pa.Table, names: Sequence[str], keep: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """The numeric columns that vary, as a float matrix (missing: NaN)."""
    used, columns = [], []
    for name in names:
        column = table.column(name)
        if not _is_numeric(column):
            continue
        values = _floats(column)
        values = values[keep]
        if np.isnan(values).all() or np.nanstd(values) == 0.0:
            continue
        used.append(name)
        columns.append(values)
    matrix = np.column_stack(columns) if columns else np.empty((int(keep.sum()), 0))
    return used, matrix


def _fit(y: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """R² and coefficients (intercept last) of ``y`` on ``x``'s columns, complete rows."""
    rows = ~np.isnan(x).any(axis=1)
    if rows.sum() < 10:
        return 0.0, np.zeros(x.shape[1] + 1)
    design = np.column_stack([x[rows], np.ones(int(rows.sum()))])
    coef, *_ = np.linalg.lstsq(design, y[rows], rcond=None)
    return _r2(y[rows], design @ coef), coef


def _formula(coef: np.ndarray, names: Sequence[str]) -> str:
    """``1·base + 1·extras`` (the intercept when it is not ~0).

    >>> _formula(np.array([1.0, -0.5, 3e-17]), ["a", "b"])
    '1·a - 0.5·b'
    """
    scale = max(1.0, float(np.abs(coef).max()))
    text = f"{coef[0]:.3g}·{names[0]}"
    for c, name in zip(coef[1:-1], names[1:], strict=True):
        text += f" {'-' if c < 0 else '+'} {abs(c):.3g}·{name}"
    if abs(coef[-1]) > 1e-9 * scale:
        text += f" {'-' if coef[-1] < 0 else '+'} {abs(coef[-1]):.3g}"
    return text


def identities(
    table: pa.Table,
    label: str,
    *,
    task: str,
    positive: str | None = None,
    skip: Collection[str] = (),
    alone: Collection[str] = (),
) -> dict[str, str]:
    """Pairs of numeric columns of which the label (its positive indicator, for a binary
    one) is a linear combination, R² ≥ :data:`IDENTITY_R2`, where neither column alone is
    (``alone``: columns already found alone, left out). Each column of such a pair, with
    the identity as its reason. All pairs are screened at once from the correlation
    matrix (mean-filled), and each pair the screen keeps is fitted by least squares.

    >>> t = pa.table({"a": [float(i % 7) for i in range(100)],
    ...               "b": [float(i % 11) for i in range(100)]})
    >>> t = t.append_column("y", pc.add(t["a"], t["b"]))
    >>> sorted(identities(t, "y", task="regression"))
    ['a', 'b']
    """
    if task == "multiclass":
        return {}
    table = sample_rows(table)
    y_all = label_values(table.column(label), task, positive)
    keep = ~np.isnan(y_all)
    y = y_all[keep]
    if y.size < 10 or y.std() == 0.0:
        return {}
    names = [n for n in table.column_names if n != label and n not in skip and n not in alone]
    used, x = _numeric_matrix(table, names, keep)
    if len(used) < 2:
        return {}
    filled = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
    corr = np.corrcoef(np.column_stack([y, filled]), rowvar=False)
    a = corr[0, 1:]
    r = corr[1:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        pair = (a[:, None] ** 2 + a[None, :] ** 2 - 2 * a[:, None] * a[None, :] * r) / (1 - r**2)
    pair = np.where(np.isfinite(pair) & (1 - r**2 > 1e-9), pair, 0.0)
    found: dict[str, str] = {}
    screen = np.argwhere(np.triu(pair >= 0.9, k=1))
    for i, j in sorted(screen.tolist(), key=lambda ij: -pair[ij[0], ij[1]])[:50]:
        if used[i] in found or used[j] in found:
            continue
        fitted, coef = _fit(y, x[:, [i, j]])
        single = max(_fit(y, x[:, [k]])[0] for k in (i, j))
        if fitted < IDENTITY_R2 or single >= LEAK_POWER:
            continue
        what = "the label" if task == "regression" else "the positive-class indicator"
        formula = _formula(coef, [used[i], used[j]])
        reason = f"with {{other}} it gives {what} (R² {fitted:.4f}: ≈ {formula})"
        found[used[i]] = reason.format(other=repr(used[j]))
        found[used[j]] = reason.format(other=repr(used[i]))
    return found


def find_leaks(
    table: pa.Table,
    label: str,
    *,
    task: str,
    positive: str | None = None,
    skip: Collection[str] = (),
    seed: int = 0,
) -> dict[str, str]:
    """The columns that leak the label, each with its reason (one line for the project
    file): alone a power of at least :data:`LEAK_POWER` (:func:`column_power`), or part
    of a linear identity with it (:func:`identities`). ``skip``: columns not judged.

    >>> t = pa.table({"base": [float(i % 13) for i in range(300)],
    ...               "extra": [float(i % 5) for i in range(300)]})
    >>> t = t.append_column("rent", pc.add(t["base"], t["extra"]))
    >>> list(find_leaks(t, "rent", task="regression"))
    ['base', 'extra']
    """
    powers = column_power(table, label, task=task, positive=positive, skip=skip, seed=seed)
    y = label_values(sample_rows(table, seed=seed).column(label), task, positive)
    y = y[~np.isnan(y)]
    leaks = {
        p.column: f"alone it gives {p.metric} {p.value:.3f} (a leak: the label, or derived from it)"
        for p in powers
        if _is_leak(p, y, task)
    }
    leaks.update(
        identities(table, label, task=task, positive=positive, skip=skip, alone=list(leaks))
    )
    return leaks
