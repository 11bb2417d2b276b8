"""The latency guardrail: the canary's p50, p90 and p99 against production's plus a margin.

Examples:
    >>> from mooring.formats._metrics import Histogram
    >>> bounds = (0.01, 0.02, 0.05, math.inf)
    >>> fast = VersionCounters(requests=900, latency=Histogram(bounds, (600, 900, 900, 900)))
    >>> slow = VersionCounters(requests=300, latency=Histogram(bounds, (0, 0, 300, 300)))
    >>> latency_guardrail(slow, fast, GuardrailsConfig()).state
    'fail'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._guardrails import (
    GuardrailResult,
    GuardrailsConfig,
    Status,
    expected,
    finite,
)
from mooring.monitoring._sequential import (
    Judgement,
    SequentialTest,
    SmoothCdf,
    State,
    exceedance_evidence,
    two_rates,
)

if TYPE_CHECKING:
    from mooring.monitoring._evidence import Evidence

__all__ = ["LATENCY", "LATENCY_QUANTILES", "LatencyGuardrail", "LatencyRule", "latency_guardrail"]


#: The latency quantiles judged, each on its own margin.
LATENCY_QUANTILES = ((0.5, "p50"), (0.9, "p90"), (0.99, "p99"))
#: From this quantile on, the batches beyond it are few enough that the exact count test
#: must agree with the interval to pass (below it that test, conservative by the share of
#: batches beyond, would only slow the decision); to fail it must agree at every quantile.
RARE_FROM = 0.9


@dataclass(frozen=True)
class _Quantile:
    """One latency quantile's comparison: the canary's share beyond production's plus
    the margin, against production's share beyond its own quantile."""

    name: str
    state: State
    canary_ms: float
    production_ms: float
    margin_ms: float
    canary_beyond: float
    production_beyond: float
    estimate: float
    standard_error: float
    lower: float
    upper: float
    slower_evidence: float
    no_slower_evidence: float
    #: How many times the present canary batches a decision is expected to need.
    factor: float

    def words(self, detail: bool) -> str:
        verdict = {
            "pass": "no slower than the margin",
            "fail": "slower beyond the margin",
            "undecided": "undecided",
        }[self.state]
        text = (
            f"{self.name} {self.canary_ms:.2f} vs {self.production_ms:.2f} ms "
            f"({self.canary_ms - self.production_ms:+.2f} ms, margin {self.margin_ms:.2f} ms): "
            f"{verdict}"
        )
        if detail:
            text += (
                f" ({self.canary_beyond:.2%} of canary batches beyond "
                f"{self.production_ms + self.margin_ms:.2f} ms, production's {self.name} plus "
                f"the margin, where {self.production_beyond:.2%} would be as slow; interval of "
                f"the difference [{self.lower:+.2%}, {self.upper:+.2%}])"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["threshold_ms"] = self.production_ms + self.margin_ms
        for key in ("factor", "slower_evidence", "no_slower_evidence"):
            out[key] = finite(out[key])  # inf: not judged that way (JSON has no infinity)
        return out


def _latency_quantile(
    q: float,
    name: str,
    canary: SmoothCdf,
    production: SmoothCdf,
    rules: GuardrailsConfig,
) -> _Quantile:
    """Is the canary's ``q`` quantile no slower than production's plus the margin?

    With ``t`` production's quantile and ``m`` the margin there, the canary's quantile is
    within ``t + m`` exactly when at most a share ``1 − q`` of its batches lie beyond
    ``t + m``; production has ``1 − q`` beyond ``t``. So the estimate is the difference of
    two shares, "canary beyond ``t + m``" minus "production beyond ``t``" (read inside the
    buckets by :class:`~mooring.monitoring._sequential.SmoothCdf`, so that a margin
    narrower than a bucket still counts): below 0 is no slower than the margin. Two
    tests must agree: a confidence sequence on the difference (two independent
    proportions) and the exact count test of
    :func:`~mooring.monitoring._sequential.exceedance_evidence` (which version each batch
    beyond its line came from; to pass, at p90 and p99 only), which keeps a quantile from
    being decided on a handful of batches. Passing is one-sided at ``alpha``; failing at
    ``alpha / 3`` per quantile, so that one of three failing falsely stays within ``alpha``.
    """
    assert rules.latency_margin is not None
    c_cdf, p_cdf = canary, production
    n_c, n_p = c_cdf.total, p_cdf.total
    t = p_cdf.quantile(q)
    margin = max(rules.latency_margin * t, rules.latency_margin_ms / 1e3)
    c_beyond = max(n_c - c_cdf.count_below(t + margin), 0.0)
    p_beyond = max(n_p - p_cdf.count_below(t), 0.0)
    diff, variance = two_rates(c_beyond, n_c, p_beyond, n_p)
    alpha, tau = rules.alpha, (1.0 - q) / 2.0
    # The normal mixture's interval is two-sided; one side of it at 2α is a one-sided
    # bound at α (the other side's share of the mixture is negligible out there).
    passing = SequentialTest(pass_below=0.0, fail_above=math.inf, tau=tau, alpha=2 * alpha)
    failing = SequentialTest(
        pass_below=-math.inf, fail_above=0.0, tau=tau, alpha=2 * alpha / len(LATENCY_QUANTILES)
    )
    up, down = passing.judge(diff, variance), failing.judge(diff, variance)
    fail_level, pass_level = len(LATENCY_QUANTILES) / alpha, 1.0 / alpha
    # Failing always needs the count test too: a handful of canary batches that all fell
    # in one slow tick must not fail a median.
    slower = exceedance_evidence(c_beyond, n_c, p_beyond, n_p)
    # Half the batches lie beyond a median: to pass there the interval alone is accurate.
    no_slower = exceedance_evidence(p_beyond, n_p, c_beyond, n_c) if q >= RARE_FROM else math.inf
    state: State = "undecided"
    factor = 1.0
    if down.state == "fail" and slower >= fail_level:
        state = "fail"
    elif up.state == "pass" and no_slower >= pass_level:
        state = "pass"
    elif diff < 0.0:
        factor = _needed(up, no_slower, pass_level)
    else:
        factor = _needed(down, slower, fail_level)
    return _Quantile(
        name=name,
        state=state,
        canary_ms=c_cdf.quantile(q) * 1e3,
        production_ms=t * 1e3,
        margin_ms=margin * 1e3,
        canary_beyond=c_beyond / n_c,
        production_beyond=p_beyond / n_p,
        estimate=diff,
        standard_error=math.sqrt(variance),
        lower=down.lower,
        upper=up.upper,
        slower_evidence=slower,
        no_slower_evidence=no_slower,
        factor=factor,
    )


def _needed(interval: Judgement, evidence: float, level: float) -> float:
    """Evidence multiple a quantile's decision is expected to need: the interval's while
    it is open; once it has decided, the count test's (its logarithm grows about linearly
    with the evidence; twice the evidence while it leans no way yet)."""
    if interval.state == "undecided":
        return interval.evidence_factor
    if evidence <= 1.0:
        return 2.0
    return max(math.log(level) / math.log(evidence), 1.0)


def latency_guardrail(
    canary: VersionCounters,
    production: VersionCounters,
    rules: GuardrailsConfig,
) -> GuardrailResult:
    """Inference latency of the canary against production's, quantile by quantile.

    At p50, p90 and p99 the canary may be slower than production's same quantile by the
    margin there, ``latency_margin`` of it or ``latency_margin_ms``, whichever is more:
    the latency **passes** once each of the three is shown within it, and **fails** as
    soon as one is shown beyond it. So a median 0.24 ms slower passes on the 2 ms margin
    however much faster the tail is, and a tail 30% slower fails whatever the median.
    Each quantile is an always-valid test on the histograms of the same step (see
    :func:`_latency_quantile`); only batches timed in the same ticks are compared (a
    busy machine slows both alike). While only the p99 is open and it leans within its
    margin, the result is undecided but ``advisory``: the step does not wait for it
    (see :func:`_tail_leans_within`). At 100% production answers nothing, and latency was
    judged at the earlier steps (``unavailable``).

    Examples:
        >>> from mooring.formats._metrics import Histogram
        >>> bounds = (0.01, 0.02, 0.05, math.inf)
        >>> fast = VersionCounters(requests=900, latency=Histogram(bounds, (600, 900, 900, 900)))
        >>> slow = VersionCounters(requests=300, latency=Histogram(bounds, (0, 0, 300, 300)))
        >>> latency_guardrail(slow, fast, GuardrailsConfig()).state
        'fail'
    """
    if rules.latency_margin is None:
        return GuardrailResult("latency", "off", "latency guardrail is off")
    c_hist, p_hist = canary.latency, production.latency
    c_n = c_hist.count if c_hist is not None else 0.0
    p_n = p_hist.count if p_hist is not None else 0.0
    numbers: dict[str, Any] = {"canary_batches": c_n, "production_batches": p_n}
    if c_hist is None or c_n <= 0:
        return GuardrailResult(
            "latency",
            "insufficient_data",
            "no timed canary batches at this step yet (no traffic is no evidence)",
            numbers=numbers,
            needed="canary traffic",
        )
    if p_hist is None or p_n <= 0 or p_hist.bounds != c_hist.bounds:
        return GuardrailResult(
            "latency",
            "unavailable",
            f"production timed no batches in this step to compare with ({c_n:g} canary); "
            "latency was judged at the earlier steps",
            numbers=numbers,
        )
    c_cdf = SmoothCdf(c_hist.bounds, c_hist.counts)
    p_cdf = SmoothCdf(p_hist.bounds, p_hist.counts)
    judged = [_latency_quantile(q, name, c_cdf, p_cdf, rules) for q, name in LATENCY_QUANTILES]
    failed = [j for j in judged if j.state == "fail"]
    open_ = [j for j in judged if j.state == "undecided"]
    if failed:
        status: Status = "breach"
        deciding = max(failed, key=lambda j: j.lower)
        decides = failed
    elif open_:
        status = "insufficient_data"
        deciding = max(open_, key=lambda j: j.factor)
        decides = open_
    else:
        status = "ok"
        deciding = max(judged, key=lambda j: j.upper)
        decides = []
    names = [j.name for j in (decides or judged)]
    which = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    parts = "; ".join(j.words(detail=j in decides) for j in judged)
    batches = f"{c_n:,.0f} vs {p_n:,.0f} batches"
    needed = None
    advisory = False
    if status == "breach":
        text = f"{parts}; {batches}: slower than production beyond the margin at {which}"
    elif status == "ok":
        text = f"{parts}; {batches}: no slower than the margin at {which}"
    else:
        text = f"{parts}; {batches}: undecided at {which}"
        if math.isfinite(deciding.factor):
            needed = expected(c_n, deciding.factor, "canary batches")
        else:
            needed = f"no decision in sight at this estimate: {deciding.name} sits on its margin"
        text += f"; {needed}"
        advisory = _tail_leans_within(judged, c_n)
        if advisory:
            text += (
                f"; only the {judged[-1].name} is open and it leans within its margin (by "
                f"{TAIL_LEAN:g} standard error), so the step does not wait for it (it still "
                "fails once shown slower)"
            )
    for j in judged:
        numbers[f"canary_{j.name}_ms"] = j.canary_ms
        numbers[f"production_{j.name}_ms"] = j.production_ms
        numbers[f"margin_{j.name}_ms"] = j.margin_ms
    numbers.update(
        quantiles={j.name: j.to_dict() for j in judged},
        deciding=deciding.name,
        margin=rules.latency_margin,
        margin_ms=rules.latency_margin_ms,
        estimate=deciding.estimate,
        lower=deciding.lower,
        upper=deciding.upper,
    )
    return GuardrailResult(
        "latency",
        status,
        text,
        value=deciding.estimate,
        threshold=0.0,
        numbers=numbers,
        interval=(deciding.lower, deciding.upper),
        boundary={"pass_below": 0.0, "fail_above": 0.0},
        needed=needed,
        advisory=advisory,
    )


#: Standard errors by which an undecided tail must lean within its margin for the step
#: not to wait for it (a single look's bound, about 84% one-sided: a lean, not a proof).
TAIL_LEAN = 1.0


def _tail_leans_within(judged: list[_Quantile], canary_batches: float) -> bool:
    """Whether the step may go on without the tail: every other quantile passed, and the
    tail, undecided, leans within its margin by :data:`TAIL_LEAN` standard errors, on at
    least as many canary batches as one beyond it at the margin takes (100 for a p99).

    A p99 shown within 20% of production's takes thousands of canary batches when the
    tails are alike (1% beyond against about 0.5%); waiting for it would hold every low
    traffic step to its budget, as labels would the live metric. A tail leaning slower
    (or not clearly within) holds the step, and one shown slower fails it at any step.
    """
    *body, tail = judged
    q = LATENCY_QUANTILES[-1][0]
    return (
        all(j.state == "pass" for j in body)
        and tail.state == "undecided"
        and tail.estimate + TAIL_LEAN * tail.standard_error < 0.0
        and canary_batches * (1.0 - q) >= 1.0
    )


#: ``(canary, production, rules) -> result``: a rule that judges latency.
LatencyRule = Callable[[VersionCounters, VersionCounters, GuardrailsConfig], GuardrailResult]


@dataclass(frozen=True, slots=True)
class LatencyGuardrail:
    """The latency guardrail on a tick's evidence; ``rule`` is :func:`latency_guardrail`
    (a benchmark weighs an older rule in its place)."""

    name: str = "latency"
    rule: LatencyRule = latency_guardrail

    def judge(self, evidence: Evidence, rules: GuardrailsConfig) -> tuple[GuardrailResult, ...]:
        """The rule on the step's histograms."""
        return (self.rule(evidence.canary, evidence.production, rules),)


LATENCY = LatencyGuardrail()
