"""One signature call fed one tensor per dtype, not one per column.

A tabular signature takes one ``[None]`` tensor per column, and making each of those
tensors from Python costs about as much as a column's share of the call itself: at one
row, the fourteen tensors of the Adult model took a third of ``SavedModelFolder.predict``
(``benchmarks/README.md``, the one-row path). :class:`PackedCall` wraps the signature in
a function of its own that takes the string columns as one ``[None, k]`` tensor and the
float columns of each width as another, unstacks them inside the graph and calls the
signature there, where TensorFlow inlines it: two tensors to make instead of fourteen,
and one graph optimised whole. Columns of other dtypes keep a tensor each.

It is TensorFlow's own machinery on a public API (``tf.function`` with an input
signature), but a rewrite of the model's call all the same, so :func:`pack_signature`
uses it only when it answers a few example rows exactly as the signature's keyword call
does; otherwise every call stays as it was.

Examples:
    >>> packed = pack_signature(folder, tf)  # doctest: +SKIP
    >>> packed({"age": [39.0], "workclass": ["Private"]})["probabilities"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mooring.formats._model import SavedModelFolder

__all__ = ["PackedCall", "pack_signature", "same_outputs"]

#: Dtypes whose columns are packed into one tensor: strings, and floats (a float column's
#: values are checked numbers by then, and numpy converts them as TensorFlow would).
PACKED = {"string": object, "float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class Group:
    """Columns fed as one tensor: ``[None, len(names)]`` when ``packed``, else ``[None]``."""

    dtype: str
    names: tuple[str, ...]
    packed: bool


@dataclass(frozen=True)
class PackedCall:
    """The signature called with one tensor per :class:`Group`; outputs as the signature's."""

    groups: tuple[Group, ...]
    function: Any  # the traced concrete function
    make: Any  # the tensor maker (tf.constant)
    # The concrete function's flat call (tensors, captured inputs) when TensorFlow has
    # one: the public call binds its arguments in Python first, as much again as the
    # tensors cost at one row. Checked with the rest by pack_signature.
    flat: Any = None

    def __call__(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        feed = []
        make = self.make
        for group in self.groups:
            if group.packed:
                kind = PACKED[group.dtype]
                values = np.array([columns[name] for name in group.names], dtype=kind).T
                feed.append(make(values))
            else:
                feed.append(make(columns[group.names[0]], dtype=group.dtype))
        if self.flat is not None:
            flat: dict[str, Any] = self.flat(feed, self.function.captured_inputs)
            return flat
        result: dict[str, Any] = self.function(*feed)
        return result


def groups_of(inputs: Mapping[str, Any]) -> tuple[Group, ...]:
    """The inputs (name → :class:`~mooring.formats._model.TensorInfo`) as groups: one per
    packed dtype, in the inputs' order, then one per other column.

    >>> from mooring.formats._model import TensorInfo
    >>> found = groups_of({"a": TensorInfo("a", "float32", (None,)),
    ...                    "b": TensorInfo("b", "string", (None,)),
    ...                    "c": TensorInfo("c", "int64", (None,)),
    ...                    "d": TensorInfo("d", "float32", (None,))})
    >>> [(g.dtype, g.names, g.packed) for g in found]
    [('float32', ('a', 'd'), True), ('string', ('b',), True), ('int64', ('c',), False)]
    """
    by_dtype: dict[str, list[str]] = {}
    alone: list[Group] = []
    for name, info in inputs.items():
        if info.dtype in PACKED:
            by_dtype.setdefault(info.dtype, []).append(name)
        else:
            alone.append(Group(info.dtype, (name,), packed=False))
    return (*(Group(d, tuple(names), packed=True) for d, names in by_dtype.items()), *alone)


def pack_signature(folder: SavedModelFolder, tf: Any) -> PackedCall | None:
    """The folder's signature as a :class:`PackedCall`, when it answers example rows as
    the keyword call does; None for a signature that is not one column per input, or
    one the packed call answers differently (or fails on)."""
    if not folder.columnar or not folder.inputs:
        return None
    groups = groups_of(folder.inputs)
    if all(not g.packed or len(g.names) == 1 for g in groups):
        return None  # nothing to gain: as many tensors either way
    signature, aliases = folder.signature, folder.aliases
    specs = [
        tf.TensorSpec([None, len(g.names)] if g.packed else [None], tf.as_dtype(g.dtype))
        for g in groups
    ]

    def call(*tensors: Any) -> Any:
        feed = {}
        for group, tensor in zip(groups, tensors, strict=True):
            parts = tf.unstack(tensor, num=len(group.names), axis=1) if group.packed else [tensor]
            for name, column in zip(group.names, parts, strict=True):
                feed[aliases.get(name, name)] = column
        return signature(**feed)

    try:
        function = tf.function(call, input_signature=specs, autograph=False)
        concrete = function.get_concrete_function()
        flat = getattr(concrete, "_call_flat", None)
        packed = PackedCall(groups, concrete, tf.constant, flat)
        same = all(_agrees(folder, packed, rows, tf) for rows in (1, 3))
    except Exception:  # the keyword call is the reference; any doubt keeps it
        return None
    return packed if same else None


def _agrees(folder: SavedModelFolder, packed: PackedCall, rows: int, tf: Any) -> bool:
    """Whether the packed call answers ``rows`` example rows exactly as the keyword call."""
    columns: dict[str, list[Any]] = {}
    for i, (name, info) in enumerate(folder.inputs.items()):
        if info.is_string:
            columns[name] = [f"{i}-{r}" if r else "" for r in range(rows)]
        else:
            columns[name] = [float(r + i) if info.dtype in PACKED else r for r in range(rows)]
    feed = {
        folder.aliases.get(name, name): tf.constant(
            columns[name], dtype=tf.string if info.is_string else info.dtype
        )
        for name, info in folder.inputs.items()
    }
    return same_outputs(packed(columns), folder.signature(**feed))


def same_outputs(found: Any, keyword: Mapping[str, Any]) -> bool:
    """Whether a call's outputs (tensors by name) equal the keyword call's exactly, NaN
    where NaN; what every faster way of calling a signature is checked by."""
    return bool(
        isinstance(found, Mapping)
        and found.keys() == keyword.keys()
        and all(
            np.array_equal(
                found[k].numpy(), keyword[k].numpy(), equal_nan=keyword[k].dtype.is_floating
            )
            for k in keyword
        )
    )
