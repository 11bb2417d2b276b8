"""Whether a window's scores still mean what they meant on the held-out rows: the checks
of the estimate's assumption, each a pure function of frozen evidence.

CBPE (:mod:`mooring.monitoring._estimate`) reads a score through the map fitted on the
held-out rows. That is right under a population shift the model has seen (older
workers, more women: the map still says what a score means) and wrong where the model
extrapolates: inputs outside anything it was trained and evaluated on, scores outside
the range the map was fitted on. Labels would tell; before they arrive, the window is
compared with what was frozen at registration (:class:`Support`):

* ``inputs``: the share of the window's rows with a column that carries the score (its
  rank correlation with the score on the held-out rows is at least :data:`CARRY_MIN`)
  outside the held-out rows' 0.1%–99.9% range, against the held-out rows' own share;
* ``score_support``: the share of scores outside the held-out scores' 0.5%–99.5% range
  (the map's support), against the 1% the held-out rows show by construction;
* ``score_move``: the Kolmogorov–Smirnov distance between the window's scores and the
  held-out ones, against its natural variation (the 99th percentile of the distance
  between same-sized samples of the held-out scores themselves);
* ``prior``: the positive rate the mapped scores imply, against the held-out rows' rate
  and the range it takes on same-sized samples of them;
* ``attribution_drift``: when the caller passes it, the share of the attributions carried
  by columns that drifted.

:func:`verdict` says why the estimate is unreliable, or None. The model is extrapolating
when its inputs or scores leave the held-out support, or when drifted columns carry most
of its attributions; a move of the score distribution alone is a population shift CBPE is
built for, and makes the estimate unreliable only when the inputs could not be checked
(no input columns, or a reference frozen before inputs were).

Examples:
    >>> rng = np.random.default_rng(0)
    >>> support = freeze_support(rng.random(4000), rng.random(4000) < 0.3)
    >>> move, prior = check_score_move(support, rng.random(500) ** 4, lambda s: s)
    >>> move.fired, prior.fired
    (True, True)
    >>> verdict([move, prior]).startswith("scores moved beyond their natural variation")
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CARRY_MIN",
    "Check",
    "InputRange",
    "Support",
    "check_attribution_drift",
    "check_inputs",
    "check_score_move",
    "check_score_support",
    "freeze_support",
    "verdict",
]

FloatArray = npt.NDArray[np.float64]

#: Quantile levels of the held-out scores frozen with the reference.
LEVELS = np.linspace(0.0, 1.0, 1001)
#: A column carries the score when its Spearman correlation with it reaches this.
CARRY_MIN = 0.1
#: The held-out inputs' range: their 0.1% to 99.9% quantiles.
INPUT_TAIL = 0.001
#: The map's support: the held-out scores' 0.5% to 99.5% quantiles (1% outside).
SCORE_TAIL = 0.005
#: A share beyond the held-out rows' own by this much (and beyond their binomial
#: noise at the window's size) says the window lies where the model was not evaluated.
MARGIN = 0.03
#: The Kolmogorov distribution's 99th percentile: the two-sample distance's at large sizes.
_KS_99 = 1.628
#: The score move counts when its distance is this many times its natural 99th percentile.
MOVE_FACTOR = 2.0
#: Drifted columns carrying at least this share of the attributions make it unreliable.
ATTRIBUTION_SHARE = 0.5
#: Binomial z of "beyond the held-out rows' own share" (one-sided, about 1 in 30,000).
_Z = 4.0


@dataclass(frozen=True)
class InputRange:
    """A numeric input column that carries the score, and its held-out range."""

    column: str
    low: float
    high: float
    carry: float  # |Spearman| with the score on the held-out rows


@dataclass(frozen=True)
class Support:
    """What the checks compare a window with, frozen at registration: the held-out scores'
    quantiles (:data:`LEVELS`) and row count, their positive rate, and the ranges of the
    inputs that carry the score with the held-out rows' own share outside them."""

    score_quantiles: tuple[float, ...]
    rows: int
    positive_rate: float
    inputs: tuple[InputRange, ...] | None = None  # None: inputs not frozen
    inputs_outside: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score_quantiles": list(self.score_quantiles),
            "rows": self.rows,
            "positive_rate": self.positive_rate,
        }
        if self.inputs is not None:
            out["inputs"] = [
                {"column": i.column, "low": i.low, "high": i.high, "carry": i.carry}
                for i in self.inputs
            ]
            out["inputs_outside"] = self.inputs_outside
        return out

    @classmethod
    def read(cls, data: object) -> Support | None:
        """The support of a stored mapping; None when absent or unreadable (a reference
        frozen before the checks: they say they could not run)."""
        if not isinstance(data, Mapping):
            return None
        quantiles, rows, rate = (
            data.get("score_quantiles"),
            data.get("rows"),
            data.get("positive_rate"),
        )
        if not isinstance(quantiles, list) or len(quantiles) != LEVELS.size:
            return None
        if not isinstance(rows, int) or not isinstance(rate, int | float):
            return None
        inputs: tuple[InputRange, ...] | None = None
        stored = data.get("inputs")
        if isinstance(stored, list):
            inputs = tuple(
                InputRange(str(i["column"]), float(i["low"]), float(i["high"]), float(i["carry"]))
                for i in stored
                if isinstance(i, Mapping) and {"column", "low", "high", "carry"} <= set(i)
            )
        outside = data.get("inputs_outside")
        return cls(
            tuple(map(float, quantiles)),
            rows,
            float(rate),
            inputs,
            float(outside) if isinstance(outside, int | float) else 0.0,
        )


def _numeric(table: pa.Table, column: str) -> FloatArray | None:
    """A scalar numeric column as float64 (nulls as NaN), or None when it is not one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column not in table.column_names:
        return None
    values = table[column]
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return None
    filled = pc.fill_null(pc.cast(values, pa.float64()), float("nan"))
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.float64)


def _outside(table: pa.Table, inputs: Sequence[InputRange]) -> npt.NDArray[np.bool_]:
    """Which rows have a frozen input outside its range (a missing column counts as none)."""
    out = np.zeros(table.num_rows, dtype=np.bool_)
    for i in inputs:
        x = _numeric(table, i.column)
        if x is not None:
            with np.errstate(invalid="ignore"):
                out |= (x < i.low) | (x > i.high)
    return out


def freeze_support(
    scores: npt.ArrayLike, labels: npt.ArrayLike, features: pa.Table | None = None
) -> Support:
    """The :class:`Support` of held-out ``scores``, their 0/1 ``labels`` and, when given,
    their input columns ``features`` (numeric columns whose rank correlation with the
    score reaches :data:`CARRY_MIN` are frozen with their range)."""
    from scipy.stats import spearmanr

    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    # Eight significant digits: what is stored, so a reference reads back equal.
    found = np.quantile(s, LEVELS) if s.size else np.zeros(LEVELS.size)
    quantiles = tuple(float(f"{v:.8g}") for v in found)
    rate = float(y.mean()) if y.size else 0.0
    if features is None or features.num_rows != s.size:
        return Support(quantiles, int(s.size), rate)
    inputs = []
    for column in features.column_names:
        x = _numeric(features, column)
        if x is None:
            continue
        known = np.isfinite(x)
        if known.sum() < 30 or np.ptp(x[known]) == 0 or np.ptp(s[known]) == 0:
            continue
        carry = abs(float(spearmanr(x[known], s[known]).statistic))
        if carry >= CARRY_MIN:
            low, high = np.quantile(x[known], [INPUT_TAIL, 1.0 - INPUT_TAIL])
            inputs.append(InputRange(column, float(low), float(high), round(carry, 4)))
    frozen = tuple(inputs)
    own = float(_outside(features, frozen).mean()) if frozen else 0.0
    return Support(quantiles, int(s.size), rate, frozen, own)


@dataclass(frozen=True)
class Check:
    """One check of the assumption on a window: its ``value`` against its ``limit``,
    whether it ``fired`` (None: it could not run), and what it found, for people."""

    name: str
    value: float | None
    limit: float | None
    fired: bool | None
    said: str
    chance: float | None = None  # what chance alone reaches, below ``limit`` (inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "fired": self.fired,
            "said": self.said,
            "chance": self.chance,
        }


def _noise(own: float, rows: int) -> float:
    """How far a share of ``own`` moves by chance on a window of ``rows`` rows (4 sigma)."""
    return _Z * float(np.sqrt(max(own, 1.0 / max(rows, 1)) * (1.0 - own) / max(rows, 1)))


def _share_limit(own: float, rows: int) -> float:
    """A share a window of ``rows`` rows shows beyond ``own`` only when it lies elsewhere."""
    return own + max(MARGIN, _noise(own, rows))


def check_inputs(support: Support | None, inputs: pa.Table | None) -> Check:
    """The share of the window's rows with an input that carries the score outside its
    held-out range, against the held-out rows' own share."""
    name = "inputs"
    if support is None or support.inputs is None:
        return Check(name, None, None, None, "inputs not checked: no input ranges were frozen "
                     "with this version (registered before they were)")  # fmt: skip
    if inputs is None or inputs.num_rows == 0:
        return Check(name, None, None, None, "inputs not checked: the window has no input columns")
    if not support.inputs:
        return Check(
            name, None, None, None, "inputs not checked: no numeric input carries the score"
        )
    outside = _outside(inputs, support.inputs)
    share = float(outside.mean())
    limit = _share_limit(support.inputs_outside, inputs.num_rows)
    worst = sorted(
        ((float(_outside(inputs, (i,)).mean()), i) for i in support.inputs),
        key=lambda pair: -pair[0],
    )
    names = ", ".join(f"{i.column} {s:.0%}" for s, i in worst[:3] if s > 0) or "none"
    said = (
        f"{share:.0%} of rows have an input outside the held-out range (held-out rows: "
        f"{support.inputs_outside:.1%}; {names}): the model extrapolates there"
    )
    chance = support.inputs_outside + _noise(support.inputs_outside, inputs.num_rows)
    return Check(name, share, limit, share > limit, said, chance)


def check_score_support(support: Support | None, scores: FloatArray) -> Check:
    """The share of scores outside the held-out scores' 0.5%–99.5% range (where the map
    was fitted), against the 1% the held-out rows show."""
    name = "score_support"
    if support is None:
        return Check(
            name, None, None, None, "score support not checked: not frozen with this version"
        )
    q = support.score_quantiles
    low, high = np.interp([SCORE_TAIL, 1.0 - SCORE_TAIL], LEVELS, q)
    share = float(np.mean((scores < low) | (scores > high)))
    limit = _share_limit(2 * SCORE_TAIL, scores.size)
    said = (
        f"{share:.0%} of scores lie outside the range the score map was fitted on "
        f"({low:.4g}–{high:.4g}; held-out rows: {2 * SCORE_TAIL:.0%})"
    )
    return Check(name, share, limit, share > limit, said)


def _ks(sorted_reference: FloatArray, window: FloatArray) -> float:
    """The Kolmogorov–Smirnov distance between two samples (the first sorted)."""
    w = np.sort(window)
    grid = np.concatenate([sorted_reference, w])
    a = np.searchsorted(sorted_reference, grid, side="right") / sorted_reference.size
    b = np.searchsorted(w, grid, side="right") / w.size
    return float(np.max(np.abs(a - b)))


def check_score_move(
    support: Support | None,
    scores: FloatArray,
    score_map: Callable[[FloatArray], FloatArray],
    maps: Sequence[Callable[[FloatArray], FloatArray]] = (),
) -> tuple[Check, Check]:
    """The move of the window's score distribution against its natural variation, and the
    positive rate its mapped scores imply against the held-out rows'.

    Natural variation at the window's ``n`` rows against the held-out ``R``: the 99th
    percentile of the two-sample Kolmogorov–Smirnov distance between samples of the same
    scores, ``1.628 * sqrt(1/n + 1/R)`` (ties only make it smaller); for the implied rate,
    the held-out mapped scores' mean within 2.576 standard errors at ``n`` and ``R`` rows,
    widened by three times its spread over ``maps`` (the map's own uncertainty).
    """
    if support is None:
        why = "not checked: no held-out score quantiles were frozen with this version"
        return (
            Check("score_move", None, None, None, f"score move {why}"),
            Check("prior", None, None, None, f"implied positive rate {why}"),
        )
    q = np.asarray(support.score_quantiles)
    n, reference_rows = scores.size, max(support.rows, 2)
    # The held-out scores read off their quantiles: the sample the window is compared with.
    size = min(reference_rows, 20_000)
    even = np.interp((np.arange(size) + 0.5) / size, LEVELS, q)
    distance = _ks(even, scores)
    limit = _KS_99 * float(np.sqrt(1.0 / n + 1.0 / reference_rows))
    moved = distance > MOVE_FACTOR * limit
    move = Check(
        "score_move",
        distance,
        MOVE_FACTOR * limit,
        moved,
        f"scores moved {'beyond' if moved else 'within'} their natural variation (distance "
        f"{distance:.2f}, natural {limit:.2f} at {n:,} rows)",
    )
    mapped = score_map(even)
    centre = float(mapped.mean())
    error = float(mapped.std()) * float(np.sqrt(1.0 / n + 1.0 / reference_rows))
    implied = float(score_map(scores).mean())
    spread = float(np.std([float(m(scores).mean()) for m in maps])) if maps else 0.0
    low, high = centre - 2.576 * error - 3 * spread, centre + 2.576 * error + 3 * spread
    shifted = not low <= implied <= high
    direction = "rose" if implied > centre else "fell"
    prior = Check(
        "prior",
        implied,
        float(high if implied > centre else low),
        shifted,
        f"the positive rate implied by the scores {direction} from "
        f"{support.positive_rate:.1%} to {implied:.1%}"
        + ("" if shifted else f" (within {max(low, 0):.1%}–{min(high, 1):.1%})"),
    )
    return move, prior


def check_attribution_drift(drifted: Mapping[str, float] | None) -> Check:
    """Drifted columns and the share of the attributions each carries (``{"temp": 0.4}``):
    fired when together they carry at least :data:`ATTRIBUTION_SHARE`."""
    name = "attribution_drift"
    if drifted is None:
        return Check(name, None, None, None, "attribution drift not checked: not given")
    share = float(sum(drifted.values()))
    top = ", ".join(f"{c} {v:.0%}" for c, v in sorted(drifted.items(), key=lambda kv: -kv[1])[:3])
    said = f"drifted columns carry {share:.0%} of the attributions" + (f" ({top})" if top else "")
    return Check(name, share, ATTRIBUTION_SHARE, share >= ATTRIBUTION_SHARE, said)


def verdict(checks: Iterable[Check]) -> str | None:
    """Why the estimate is unreliable on this window, or None when its assumption holds.

    Extrapolation (inputs or scores outside the held-out support, drifted columns carrying
    most of the attributions) decides. A score move beyond its natural variation with a
    shifted implied positive rate does too, when the inputs could not be checked or some
    of them left the held-out range beyond chance (fewer than the inputs check asks
    for alone): a population the model has seen moves its scores and its rate too, and
    the estimate follows it there.

    >>> verdict([Check("inputs", 0.4, 0.06, True, "40% of rows have …")])
    '40% of rows have …'
    """
    found = {c.name: c for c in checks}
    why = [
        found[name].said
        for name in ("inputs", "score_support", "attribution_drift")
        if name in found and found[name].fired
    ]
    inputs = found.get("inputs")
    move, prior = found.get("score_move"), found.get("prior")
    unchecked = inputs is None or inputs.fired is None or inputs.value is None
    elevated = (
        inputs is not None
        and inputs.value is not None
        and inputs.chance is not None
        and inputs.value > inputs.chance
    )
    if move is None or prior is None:
        return "; ".join(why) or None
    if (unchecked or elevated) and move.fired and prior.fired:
        why.append(f"{move.said}; {prior.said}")
        if elevated and inputs is not None and not inputs.fired:
            why.append(inputs.said)
    elif why and move.fired:
        why.append(move.said)
    return "; ".join(why) or None
