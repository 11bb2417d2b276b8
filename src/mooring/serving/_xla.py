"""XLA where it pays: a version's signature compiled with XLA, used for the batch sizes
where it is faster and answers the same.

With ``[serving] xla = "auto"`` (the default) a version is judged once, after its
warm-up and before it takes traffic:

* XLA takes no string tensor, so a version with a string input (every model mooring
  trains on text columns) is served as it is; so is one with a free inner dimension (a
  sequence of any length: XLA compiles once per shape) and one XLA cannot compile.
* The signature is compiled for fixed batch sizes (:func:`batch_sizes`: the powers of
  two up to ``max_batch_size``, and it), each compiled once here and never while serving:
  a batch of ``n`` rows runs at the next size up, padded with copies of its last row, and
  its first ``n`` outputs are kept.
* At every size, plain and compiled run the same example rows (and, padded, one row
  fewer); a size is used compiled only where every output agrees within
  :data:`RTOL`/:data:`ATOL` (strings exactly) and the median of :data:`RUNS` alternating
  timed calls is at least :data:`MIN_SPEEDUP` times faster than plain.

The choice, with each size's speed-up and the largest difference seen, is part of the
version's metadata (``GET /v1/models/{name}/metadata``) and of the load's log line;
``xla = "off"`` never compiles. XLA's gain depends on the model and the batch: a small
numeric network's fixed cost per call shrinks, so it pays at 64 rows and not at 1.

Examples:
    >>> plan = judge(model, max_batch_size=64)  # doctest: +SKIP
    >>> plan.used, plan.reason  # doctest: +SKIP
    ((32, 64), 'faster at 32, 64 rows')
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mooring.serving._loaded import ServedModel

__all__ = ["ATOL", "MIN_SPEEDUP", "RTOL", "RUNS", "Compiled", "XlaPlan", "batch_sizes", "judge"]

log = logging.getLogger("mooring.serving")

#: Outputs agree when ``|xla - plain| <= ATOL + RTOL * |plain|`` everywhere.
RTOL = 1e-5
ATOL = 1e-6
#: A size runs compiled only when it is at least this many times faster than plain.
MIN_SPEEDUP = 1.1
#: Timed calls of each kind at each size (alternating; the median counts).
RUNS = 15

Outputs = dict[str, np.ndarray[Any, Any]]


def batch_sizes(max_batch_size: int) -> list[int]:
    """The fixed sizes a compiled signature runs at: powers of two, then the largest batch.

    >>> batch_sizes(64), batch_sizes(48), batch_sizes(1)
    ([1, 2, 4, 8, 16, 32, 64], [1, 2, 4, 8, 16, 32, 48], [1])
    """
    sizes, size = [], 1
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    return [*sizes, max(1, max_batch_size)]


@dataclass
class XlaPlan:
    """What was decided for one version, and on what evidence."""

    setting: str
    reason: str
    used: tuple[int, ...] = ()  # the batch sizes that run compiled
    speedup: dict[int, float] = field(default_factory=dict)  # plain / compiled, per size
    max_difference: float | None = None  # the largest |xla - plain| over every size

    def document(self) -> dict[str, Any]:
        """The plan as the metadata document shows it."""
        return {
            "setting": self.setting,
            "used": bool(self.used),
            "batch_sizes": list(self.used),
            "speedup": {str(k): round(v, 3) for k, v in sorted(self.speedup.items())},
            "max_difference": self.max_difference,
            "tolerance": {"rtol": RTOL, "atol": ATOL},
            "reason": self.reason,
        }


class Compiled:
    """The signature compiled with XLA (``jit_compile``) for the sizes in ``used``."""

    def __init__(self, model: ServedModel, sizes: list[int]) -> None:
        from mooring._tensorflow import import_tensorflow

        tf = import_tensorflow()
        folder = model.folder
        self._tf = tf
        self._model = model
        self.sizes = sizes
        self.used: tuple[int, ...] = ()
        specs = folder.signature.structured_input_signature[1]
        signature = folder.signature
        names = [folder.aliases.get(name, name) for name in model.inputs]

        def run(*tensors: Any) -> Any:
            return signature(**dict(zip(names, tensors, strict=True)))

        self._function = tf.function(
            run, jit_compile=True, input_signature=[specs[name] for name in names]
        )

    def size_for(self, rows: int) -> int | None:
        """The compiled size a batch of ``rows`` runs at, or None (plain): the next size up,
        when that size is one XLA pays at."""
        for size in self.sizes:
            if size >= rows:
                return size if size in self.used else None
        return None

    def run(self, columns: Mapping[str, Any], size: int) -> Outputs:
        """Run ``columns`` padded to ``size`` rows; the first ``rows`` of each output."""
        tf = self._tf
        tensors = []
        rows = 0
        for name, info in self._model.inputs.items():
            array = np.asarray(columns[name], dtype=info.numpy_dtype())
            rows = len(array)
            if rows < size:
                array = np.concatenate([array, np.repeat(array[-1:], size - rows, axis=0)])
            tensors.append(tf.constant(array))
        outputs = self._function(*tensors)
        out = {key: value.numpy() for key, value in outputs.items()}
        for key, value in out.items():
            if value.ndim == 0 or len(value) != size:
                raise ValueError(f"output {key!r} has shape {value.shape}, not [{size}, ...]")
        return {key: value[:rows] for key, value in out.items()}


def _agree(plain: Outputs, compiled: Outputs) -> float | None:
    """The largest difference between the two, or None when an output disagrees."""
    worst = 0.0
    for key, expected in plain.items():
        got = compiled.get(key)
        if got is None or np.shape(got) != np.shape(expected):
            return None
        if expected.dtype.kind not in "fc":
            if not np.array_equal(got, expected):
                return None
            continue
        if not np.allclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True):
            return None
        difference = np.abs(got - expected)
        finite = difference[np.isfinite(difference)]  # NaN where both are NaN
        if finite.size:
            worst = max(worst, float(finite.max()))
    return worst


def _varied(model: ServedModel, rows: int) -> dict[str, Any]:
    """Warm-up rows whose float inputs differ from row to row (a tensor model's warm-up
    rows are zeros, and padding with copies of a zero row would hide what it changes)."""
    rng = np.random.default_rng(rows)
    columns = model.example_columns(rows)
    for name, value in columns.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and not model.inputs[name].is_column:
            columns[name] = rng.normal(size=array.shape).astype(array.dtype)
    return columns


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _seconds(call: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def judge(model: ServedModel, max_batch_size: int, *, min_speedup: float = MIN_SPEEDUP) -> XlaPlan:
    """Decide, for a warmed-up version, which batch sizes run compiled (see the module).

    Sets ``model.compiled`` when any does. ``min_speedup`` 0 uses every size whose
    outputs agree (tests run the compiled path that way).
    """
    setting = "auto"
    strings = [name for name, info in model.inputs.items() if info.is_string]
    if strings:
        return XlaPlan(setting, f"not compiled: XLA takes no string input ({strings[0]!r})")
    ragged = [name for name, info in model.inputs.items() if None in info.inner]
    if ragged:
        # XLA compiles once per shape: a free inner dimension would compile while serving.
        return XlaPlan(
            setting,
            f"not compiled: input {ragged[0]!r} has a dimension of any size besides the "
            "batch's, and XLA compiles once per shape",
        )
    sizes = batch_sizes(max_batch_size)
    try:
        compiled = Compiled(model, sizes)
        compiled.run(model.example_columns(1), 1)  # XLA refuses here, if at all
    except Exception as exc:  # XLA's refusals are InvalidArgumentError, NotFoundError, ...
        reason = _first_line(exc)
        return XlaPlan(setting, f"not compiled: XLA cannot compile the signature ({reason})")
    used: list[int] = []
    speedup: dict[int, float] = {}
    worst = 0.0
    for size in sizes:
        columns = _varied(model, size)
        try:
            full = _agree(model.folder.predict(columns), compiled.run(columns, size))
            padded: float | None = 0.0
            if size > 1:  # a padded batch: one row fewer than the size
                fewer = {name: np.asarray(value)[: size - 1] for name, value in columns.items()}
                padded = _agree(model.folder.predict(fewer), compiled.run(fewer, size))
        except Exception as exc:  # an output without a batch dimension, a fixed batch size
            return XlaPlan(setting, f"not used: the compiled signature failed at {size} rows "
                           f"({_first_line(exc)})", speedup=speedup)  # fmt: skip
        if padded is None:
            # Copies of the last row changed the other rows' answers: the model reads across
            # the batch, and no padded size can be trusted.
            return XlaPlan(
                setting,
                f"not used: padding a batch of {size - 1} rows to {size} changed its outputs "
                "(they depend on the batch's other rows)",
                speedup=speedup,
            )
        if full is None:
            log.warning(
                "model %s version %s: XLA's outputs at %d rows differ from the plain "
                "signature's beyond rtol %g, atol %g; that size runs plain",
                model.name, model.version, size, RTOL, ATOL,
            )  # fmt: skip
            speedup[size] = 0.0
            continue
        worst = max(worst, full, padded)
        plain_s, xla_s = [], []
        for _ in range(RUNS):
            plain_s.append(_seconds(model.folder.predict, columns))
            xla_s.append(_seconds(compiled.run, columns, size))
        ratio = statistics.median(plain_s) / max(statistics.median(xla_s), 1e-9)
        speedup[size] = ratio
        if ratio >= min_speedup:
            used.append(size)
    compiled.used = tuple(used)
    if used:
        model.compiled = compiled
        shown = ", ".join(map(str, used))
        reason = f"faster at {shown} rows (outputs within rtol {RTOL:g}, atol {ATOL:g})"
    elif all(v == 0.0 for v in speedup.values()):
        reason = "not used: XLA's outputs differ from the plain signature's at every size"
    else:
        reason = f"not used: not {min_speedup:g}× faster at any batch size"
    return XlaPlan(setting, reason, tuple(used), speedup, worst)
