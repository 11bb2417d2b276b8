"""Interventional TreeSHAP over a YDF forest: exact Shapley values against background rows.

YDF's own ``predict_shap`` is path-dependent TreeSHAP: where a row's value is unknown,
the trees' node counts stand in for the data. KernelSHAP, and the question "how far does
this column move the row from what the model answers on its data", are interventional:
a column absent from a coalition takes a background row's value. For one background row
``b`` the game ``v(S) = f(x_S, b_rest)`` of a tree is a sum over its leaves of
``value · [A ⊆ S] · [B ∩ S = ∅]``, where along the leaf's path ``A`` holds the columns
only ``x`` passes and ``B`` those only ``b`` passes (a column neither passes rules the
leaf out). Such a game's Shapley values are closed-form: ``(|A|-1)!|B|!/(|A|+|B|)!``
for each column in ``A``, minus ``|A|!(|B|-1)!/(|A|+|B|)!`` for each in ``B``; averaged
over the background rows they sum, per row, to ``f(x) - mean_b f(b)`` exactly.

Examples:
    >>> w_in, w_out = _weights(3)
    >>> float(w_in[1, 0]), float(w_out[0, 1]), float(w_in[1, 1])
    (1.0, 1.0, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from math import factorial
from typing import Any

import numpy as np

__all__ = ["Unreadable", "forest", "interventional_shap"]

Array = np.ndarray[Any, Any]


def _weights(width: int) -> tuple[Array, Array]:
    """Shapley weights of a column in ``A`` (``[|A|, |B|]``) and in ``B``, up to ``width``."""
    w_in = np.zeros((width + 1, width + 1))
    w_out = np.zeros((width + 1, width + 1))
    for a in range(width + 1):
        for b in range(width + 1 - a):
            if a:
                w_in[a, b] = factorial(a - 1) * factorial(b) / factorial(a + b)
            if b:
                w_out[a, b] = factorial(a) * factorial(b - 1) / factorial(a + b)
    return w_in, w_out


class _Encoded:
    """Rows as YDF's trees read them: numbers as floats, categories as dictionary indices."""

    def __init__(self, model: Any, feed: Mapping[str, Array]) -> None:
        spec = model.data_spec()
        self.columns: dict[int, Array] = {}
        for index, column in enumerate(spec.columns):
            if column.name not in feed:
                continue
            values = feed[column.name]
            if column.categorical.items:
                lookup = {k: v.index for k, v in column.categorical.items.items()}
                # Missing ("" or NaN) is -1; a value outside the dictionary is <OOD>, 0.
                self.columns[index] = np.asarray(
                    [-1 if _missing(v) else lookup.get(str(v), 0) for v in values], np.int64
                )
            else:
                self.columns[index] = np.asarray(values, np.float64)


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def _passes(condition: Any, rows: _Encoded) -> Array | None:
    """Whether each row takes the condition's positive branch; None for a kind of
    condition this module does not read (the caller falls back)."""
    kind = type(condition).__name__
    values = rows.columns.get(condition.attribute)
    if values is None:
        return None
    if kind == "NumericalHigherThanCondition":
        missing = np.isnan(values)
        higher: Array = np.where(missing, condition.missing, values >= condition.threshold)
        return higher
    if kind == "CategoricalIsInCondition":
        mask = np.zeros(max(int(values.max(initial=0)), max(condition.mask, default=0)) + 1, bool)
        mask[list(condition.mask)] = True
        inside: Array = np.where(values < 0, condition.missing, mask[np.maximum(values, 0)])
        return inside
    if kind == "IsMissingInCondition":
        absent: Array = np.isnan(values) if values.dtype.kind == "f" else values < 0
        return absent
    return None


class Unreadable(Exception):  # noqa: N818 - internal: the caller falls back
    """A condition this module does not read."""


def forest(model: Any) -> list[Any]:
    """The root of each of the model's trees, read from YDF once (a few ms a tree)."""
    return [model.get_tree(index).root for index in range(model.num_trees())]


def interventional_shap(
    model: Any,
    feed: Mapping[str, Array],
    background: Mapping[str, Array],
    columns: list[str],
    roots: list[Any] | None = None,
) -> Array:
    """``[rows, len(columns)]`` interventional Shapley values of the forest's raw output
    (the sum of its trees' leaves), averaged over the ``background`` rows; ``feed`` and
    ``background`` are YDF inputs keyed by its column names, ``columns`` those names in
    the order wanted; ``roots`` the trees of :func:`forest`, read once by the caller.

    Raises:
        Unreadable: a tree holds a condition this module cannot evaluate.
    """
    spec = model.data_spec()
    position = {i: columns.index(c.name) for i, c in enumerate(spec.columns) if c.name in columns}
    x, b = _Encoded(model, feed), _Encoded(model, background)
    rows = len(next(iter(feed.values())))
    w_in, w_out = _weights(len(columns))
    phi = np.zeros((rows, len(columns)))

    def leaf(value: float, xs: dict[int, Array], bs: dict[int, Array]) -> None:
        if not xs:
            return
        keys = list(xs)
        px = np.stack([xs[k] for k in keys], axis=1)[:, None, :]  # [n, 1, k]
        pb = np.stack([bs[k] for k in keys], axis=1)[None, :, :]  # [1, m, k]
        only_x, only_b = px & ~pb, ~px & pb
        possible = ~(~px & ~pb).any(axis=2)  # [n, m]
        a, c = only_x.sum(axis=2), only_b.sum(axis=2)
        weight_in = np.where(possible, w_in[a, c], 0.0)[..., None]
        weight_out = np.where(possible, w_out[a, c], 0.0)[..., None]
        share = (only_x * weight_in - only_b * weight_out).mean(axis=1)  # [n, k]
        for i, k in enumerate(keys):
            phi[:, position[k]] += value * share[:, i]

    def walk(node: Any, xs: dict[int, Array], bs: dict[int, Array]) -> None:
        if not hasattr(node, "condition"):
            leaf(float(node.value.value), xs, bs)
            return
        condition = node.condition
        cx, cb = _passes(condition, x), _passes(condition, b)
        if cx is None or cb is None or condition.attribute not in position:
            raise Unreadable(type(condition).__name__)
        k = condition.attribute
        for child, sx, sb in ((node.pos_child, cx, cb), (node.neg_child, ~cx, ~cb)):
            walk(
                child,
                {**xs, k: xs[k] & sx if k in xs else sx},
                {**bs, k: bs[k] & sb if k in bs else sb},
            )

    for root in forest(model) if roots is None else roots:
        walk(root, {}, {})
    return phi
