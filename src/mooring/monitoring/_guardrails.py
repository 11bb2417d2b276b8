"""A guardrail's verdict, and what every guardrail is: a name and a judgement of evidence.

Each guardrail (one module each: :mod:`~mooring.monitoring._guardrail_load`,
:mod:`~mooring.monitoring._guardrail_errors`, :mod:`~mooring.monitoring._guardrail_latency`,
:mod:`~mooring.monitoring._output_guardrails`, :mod:`~mooring.monitoring._guardrail_live`)
judges one tick's :class:`~mooring.monitoring._evidence.Evidence` and returns
:class:`GuardrailResult` records: ``ok``, ``breach``, ``insufficient_data`` (not enough
evidence yet: never a reason to roll back, and the step waits for it), ``unavailable``
(no source of evidence at all, e.g. no label feedback: reported, and the step does not
wait) or ``off``, with the numbers behind them. The rollout's decision
(:mod:`mooring.monitoring._decide`) runs them in one ordered tuple.

Examples:
    >>> GuardrailResult("errors", "breach", "20/100 vs 2/2000").state
    'fail'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from mooring.config._monitoring import GuardrailsConfig
from mooring.monitoring._sequential import Judgement, State

if TYPE_CHECKING:
    from mooring.monitoring._evidence import Evidence

__all__ = [
    "Guardrail",
    "GuardrailResult",
    "GuardrailsConfig",
    "Status",
    "expected",
    "finite",
    "judged",
    "more_of",
    "rate",
    "standard_error",
]

Status = Literal["ok", "breach", "insufficient_data", "unavailable", "off"]

_STATES = {"ok": "pass", "breach": "fail", "insufficient_data": "undecided"}


@dataclass(frozen=True)
class GuardrailResult:
    """One guardrail's verdict on the canary, with the numbers behind it.

    ``status`` is the controller's word (``ok``, ``breach``, ``insufficient_data``,
    ``unavailable``, ``off``); :attr:`state` says the same as a test does: ``pass``,
    ``fail`` or ``undecided``. Sequential guardrails also carry their ``estimate``, its
    ``interval`` (valid at every look), the ``boundary`` it must cross and what a
    decision is expected to need (``needed``), all in the guardrail's own unit.
    """

    name: str
    status: Status
    message: str
    value: float | None = None
    threshold: float | None = None
    numbers: dict[str, Any] = field(default_factory=dict)
    interval: tuple[float, float] | None = None
    boundary: dict[str, float | None] | None = None
    needed: str | None = None
    #: Undecided without holding the step (labels arrive too slowly to wait for, unless
    #: ``require_labels``); failing still rolls back, a win still carries.
    advisory: bool = False

    @property
    def state(self) -> str:
        """``pass``, ``fail``, ``undecided``, or ``unavailable``/``off`` (not judging)."""
        return _STATES.get(self.status, self.status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (with :attr:`state`)."""
        out = asdict(self)
        out["state"] = self.state
        if self.interval is not None:
            out["interval"] = list(self.interval)
        return out


_STATUS: dict[State, Status] = {"pass": "ok", "fail": "breach", "undecided": "insufficient_data"}


def judged(
    name: str,
    judgement: Judgement,
    summary: str,
    *,
    unit: str,
    numbers: dict[str, Any],
    more: Callable[[float], str],
    fails: str | None = None,
) -> GuardrailResult:
    """A sequential test's judgement as a guardrail result, in words and numbers.

    ``fails``: how the guardrail fails, where that is another test than the interval's.
    """
    j = judgement
    interval = f"interval [{j.lower:+.4g}, {j.upper:+.4g}]{unit}"
    fails = fails or f"fails above {j.fail_above:+.4g}{unit}"
    if j.state == "fail":
        text = f"{summary}: worse beyond its interval ({fails})"
    elif j.state == "pass":
        text = f"{summary}: no worse than the margin ({interval} below {j.pass_below:+.4g}{unit})"
    else:
        text = f"{summary}: undecided ({interval}; passes below {j.pass_below:+.4g}{unit}, {fails})"
    needed = None
    if j.state == "undecided":
        needed = (
            more(j.evidence_factor)
            if math.isfinite(j.evidence_factor)
            else ("no decision in sight at this estimate: it sits on a boundary")
        )
        text += f"; {needed}"
    numbers.update(estimate=j.estimate, lower=j.lower, upper=j.upper)
    return GuardrailResult(
        name,
        _STATUS[j.state],
        text,
        value=j.estimate,
        threshold=finite(j.fail_above),
        numbers=numbers,
        interval=(j.lower, j.upper),
        boundary={"pass_below": finite(j.pass_below), "fail_above": finite(j.fail_above)},
        needed=needed,
    )


def finite(value: float) -> float | None:
    """JSON has no infinity: an open boundary is recorded as none."""
    return value if math.isfinite(value) else None


def rate(errors: float, requests: float) -> float:
    return errors / requests if requests > 0 else 0.0


def more_of(count: float, what: str) -> Callable[[float], str]:
    def text(factor: float) -> str:
        return expected(count, factor, what)

    return text


#: Evidence needed beyond this many times what came so far (once at least
#: ``_FAR_AFTER`` came: before that, any test is early) is out of a step's reach.
_FAR = 20.0
_FAR_AFTER = 100.0


def expected(seen: float, factor: float, what: str) -> str:
    """What more an undecided test needs, from its evidence factor; when that is far more
    than the plenty that came so far, the estimate sits near a boundary: say who decides.

    >>> expected(2, 5537.0, "canary batches")  # early: nothing to say yet
    'about 11,072 more canary batches expected'
    >>> expected(700, 1535.0, "labels per version")[:62]
    'about 1,073,800 more labels per version expected (1,534 times '
    """
    more = max(math.ceil(seen * (factor - 1.0)), 1)
    text = f"about {more:,} more {what} expected"
    if seen >= _FAR_AFTER and more > _FAR * seen:
        text += (
            f" ({more / seen:,.0f} times what came so far): the estimate sits near a "
            "boundary, so the step's budget (max_hold) will likely run out first and the "
            "end-of-horizon policy decide"
        )
    return text


def standard_error(metric: str, value: float, rows: int, positives: int | None) -> float | None:
    """The sampling standard error of a live metric, where a formula is known.

    AUC: Hanley & McNeil (1982) from the positive and negative counts; shares
    (accuracy, precision, recall, F1…): the binomial ``sqrt(v (1 - v) / n)``; other
    metrics: None (judged on the margin alone).

    >>> round(standard_error("auc", 0.8, 400, 100), 4)
    0.0283
    """
    if rows <= 0:
        return None
    if metric in ("auc", "roc_auc"):
        if positives is None or not 0 < positives < rows:
            return None
        pos, neg, a = positives, rows - positives, value
        q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
        var = (a * (1 - a) + (pos - 1) * (q1 - a * a) + (neg - 1) * (q2 - a * a)) / (pos * neg)
        return math.sqrt(max(var, 0.0))
    if 0.0 <= value <= 1.0 and metric in _SHARES:
        return math.sqrt(value * (1.0 - value) / rows)
    return None


_SHARES = {"accuracy", "precision", "recall", "f1", "balanced_accuracy", "pr_auc", "error_rate"}


class Guardrail(Protocol):
    """One guardrail: its ``name``, and its judgement of a tick's evidence under the rules
    (``[rollout.guardrails]``, :class:`GuardrailsConfig`, which the guardrails' modules
    take from here).

    ``judge`` is pure (the evidence was gathered before) and returns its results in order
    (the output checks return several). The rollout controller and the simulation run the
    same tuple of them, :data:`mooring.monitoring._decide.GUARDRAILS`.
    """

    @property
    def name(self) -> str:
        """The guardrail's name, as its results carry it."""
        ...

    def judge(self, evidence: Evidence, rules: GuardrailsConfig) -> tuple[GuardrailResult, ...]:
        """The guardrail's results on ``evidence`` (empty: it has nothing to judge)."""
        ...
