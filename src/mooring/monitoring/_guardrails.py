"""The guardrails that compare a canary with production, one function per signal.

Each returns a :class:`GuardrailResult`: ``ok``, ``breach``, ``insufficient_data`` (not
enough evidence yet: never a reason to roll back, and the step waits for it),
``unavailable`` (no source of evidence at all, e.g. no label feedback: reported, and the
step does not wait) or ``off``, with the numbers behind it. The rollout controller
(:mod:`mooring.monitoring._rollout`) feeds them the differences of the server's counters
over the current step, the prediction log and label feedback; the checks of the canary's
outputs live in :mod:`mooring.monitoring._output_guardrails`.

Examples:
    >>> bad = VersionCounters(requests=100, errors=20)
    >>> good = VersionCounters(requests=2000, errors=2)
    >>> error_guardrail(bad, good, GuardrailsConfig()).status
    'breach'
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from mooring.config import MooringConfig
from mooring.config._monitoring import GuardrailsConfig
from mooring.monitoring._scrape import VersionCounters
from mooring.monitoring._sequential import (
    Judgement,
    SequentialTest,
    SmoothCdf,
    State,
    exceedance_evidence,
    increase_evidence,
    two_rates,
)
from mooring.registry import Registry

__all__ = [
    "GuardrailResult",
    "LiveMetric",
    "LiveValue",
    "Status",
    "error_guardrail",
    "feedback_live_metric",
    "latency_guardrail",
    "live_metric_guardrail",
    "load_guardrail",
    "standard_error",
]

Status = Literal["ok", "breach", "insufficient_data", "unavailable", "off"]
#: ``(version, since) -> (metric value or None, labelled rows[, standard error])``.
LiveMetric = Callable[[int, datetime], tuple[Any, ...]]
#: A side of the live-metric comparison: value, labelled rows and its standard error.
LiveValue = tuple[float | None, int, float | None]


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


def _judged(
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
        threshold=_finite(j.fail_above),
        numbers=numbers,
        interval=(j.lower, j.upper),
        boundary={"pass_below": _finite(j.pass_below), "fail_above": _finite(j.fail_above)},
        needed=needed,
    )


def _finite(value: float) -> float | None:
    """JSON has no infinity: an open boundary is recorded as none."""
    return value if math.isfinite(value) else None


def _rate(errors: float, requests: float) -> float:
    return errors / requests if requests > 0 else 0.0


def _more(count: float, what: str) -> Callable[[float], str]:
    def text(factor: float) -> str:
        return _expected(count, factor, what)

    return text


#: Evidence needed beyond this many times what came so far (once at least
#: ``_FAR_AFTER`` came: before that, any test is early) is out of a step's reach.
_FAR = 20.0
_FAR_AFTER = 100.0


def _expected(seen: float, factor: float, what: str) -> str:
    """What more an undecided test needs, from its evidence factor; when that is far more
    than the plenty that came so far, the estimate sits near a boundary: say who decides.

    >>> _expected(2, 5537.0, "canary batches")  # early: nothing to say yet
    'about 11,072 more canary batches expected'
    >>> _expected(700, 1535.0, "labels per version")[:62]
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


def error_guardrail(
    canary: VersionCounters,
    production: VersionCounters,
    rules: GuardrailsConfig,
    reference: VersionCounters | None = None,
) -> GuardrailResult:
    """The canary's error rate against production's, as a sequential test on two rates.

    Errors are 5xx answers and 4xx ones: production's 4xx rate is the clients' share of
    bad requests, so a canary returning more of them rejects traffic production answers.
    It fails on any increase shown beyond its interval, or when which version the errors
    came from shows one (:func:`~mooring.monitoring._sequential.increase_evidence`, exact
    on rare errors; also when production has none), and passes once the increase is
    bounded below ``error_rate_margin``.
    ``reference``: production's counters over the whole rollout, used when production
    answered nothing in this step (at 100%).

    Examples:
        >>> bad = VersionCounters(requests=100, errors=20)
        >>> good = VersionCounters(requests=2000, errors=2)
        >>> error_guardrail(bad, good, GuardrailsConfig()).state
        'fail'
    """
    c_bad = canary.errors + canary.client_errors
    p_bad = production.errors + production.client_errors
    numbers: dict[str, Any] = {
        "canary_requests": canary.requests,
        "canary_errors": canary.errors,
        "canary_client_errors": canary.client_errors,
        "production_requests": production.requests,
        "production_errors": production.errors,
        "production_client_errors": production.client_errors,
        "canary_error_rate": _rate(c_bad, canary.requests),
        "production_error_rate": _rate(p_bad, production.requests),
    }
    margin = rules.error_rate_margin
    if margin is None:
        return GuardrailResult("errors", "off", "error guardrail is off", numbers=numbers)
    if canary.requests <= 0:
        return GuardrailResult(
            "errors",
            "insufficient_data",
            "the canary answered no requests at this step yet (no traffic is no evidence)",
            numbers=numbers,
            needed="canary traffic",
        )
    against = "production"
    if production.requests <= 0 and reference is not None and reference.requests > 0:
        production, against = reference, "production over the rollout"
        p_bad = production.errors + production.client_errors
        numbers["compared_with"] = against
    if production.requests <= 0:
        return GuardrailResult(
            "errors",
            "insufficient_data",
            "production answered no requests to compare with",
            numbers=numbers,
            needed="production traffic",
        )
    diff, variance = two_rates(c_bad, canary.requests, p_bad, production.requests)
    judgement = SequentialTest(
        pass_below=margin, fail_above=0.0, tau=margin, alpha=rules.alpha
    ).judge(diff, variance)
    # Failing is its own test of "no increase", exact on rare errors: which version each
    # error came from, against the versions' shares of the requests.
    evidence = increase_evidence(c_bad, canary.requests, p_bad, production.requests)
    numbers["increase_evidence"] = evidence
    if evidence >= 1.0 / rules.alpha and judgement.state != "fail":
        judgement = replace(judgement, state="fail", evidence_factor=1.0)
    summary = (
        f"canary error rate {numbers['canary_error_rate']:.4f} ({c_bad:g}/{canary.requests:g}, "
        f"{canary.client_errors:g} of them 4xx) vs {against} "
        f"{_rate(p_bad, production.requests):.4f} ({p_bad:g}/{production.requests:g})"
    )
    return _judged(
        "errors",
        judgement,
        summary,
        unit="",
        numbers=numbers,
        more=_more(canary.requests, "canary requests"),
    )


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
            out[key] = _finite(out[key])  # inf: not judged that way (JSON has no infinity)
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
            needed = _expected(c_n, deciding.factor, "canary batches")
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


def load_guardrail(canary_total: VersionCounters, canary_step: VersionCounters) -> GuardrailResult:
    """A canary the server failed to load (and so never answers) is rolled back."""
    failures = canary_total.load_failures
    if failures > 0 and canary_step.requests == 0:
        return GuardrailResult(
            "load",
            "breach",
            f"the server failed to load the canary ({failures:g} load failures) and it "
            "answers no requests",
            value=failures,
            numbers={"load_failures": failures},
        )
    return GuardrailResult("load", "ok", "canary loaded", numbers={"load_failures": failures})


_LOWER_IS_BETTER = {"log_loss", "brier", "ece", "mse", "rmse", "mae", "mape", "error_rate"}


def _lower_is_better(metric: str) -> bool:
    return metric in _LOWER_IS_BETTER


def feedback_live_metric(
    cfg: MooringConfig, registry: Registry, *, metric: str | None = None
) -> LiveMetric | None:
    """A version's live ``metric`` from label feedback (None without the feedback module)."""
    try:
        feedback = importlib.import_module("mooring.monitoring._feedback")
    except ImportError:
        return None
    compute = getattr(feedback, "live_metrics", None)
    if compute is None:
        return None
    metric = metric or cfg.rollout.guardrails.live_metric

    def live(version: int, since: datetime) -> tuple[float | None, int, float | None]:
        result = compute(cfg, version=version, since=since, registry=registry)
        return _metric_from(result, version, metric)

    return live


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


def _metric_from(result: Any, version: int, metric: str) -> tuple[float | None, int, float | None]:
    """One version's metric, label count and standard error out of a live-metrics result."""
    data = result.to_dict() if hasattr(result, "to_dict") else result
    if isinstance(data, dict) and "versions" in data:
        data = data["versions"]
    entry: Any = None
    if isinstance(data, dict):
        entry = data.get(str(version)) or data.get(version)
    elif isinstance(data, list):
        entry = next((e for e in data if isinstance(e, dict) and e.get("version") == version), None)
    if not isinstance(entry, dict):
        return None, 0, None
    metrics = entry.get("metrics", entry)
    value = metrics.get(metric) if isinstance(metrics, dict) else None
    rows = int(entry.get("rows", entry.get("labels", entry.get("count", 0))) or 0)
    if value is None:
        return None, rows, None
    positives = entry.get("positives")
    se = standard_error(
        metric, float(value), rows, positives if isinstance(positives, int) else None
    )
    return float(value), rows, se


def _side(value: tuple[Any, ...]) -> LiveValue:
    """A live-metric callable's answer as ``(value, rows, standard error)``."""
    v, rows = value[0], int(value[1])
    se = value[2] if len(value) > 2 else None
    return (None if v is None else float(v)), rows, (None if se is None else float(se))


def live_metric_guardrail(
    canary: tuple[Any, ...], production: tuple[Any, ...], rules: GuardrailsConfig
) -> GuardrailResult:
    """The canary's live metric (from label feedback) against production's, sequentially.

    Each side is ``(value, labelled rows[, standard error])``. The estimate is how much
    worse the canary is; it fails when its interval lies above ``live_metric_drop`` and
    passes when below it. An interval wholly below 0 is a conclusive **win**
    (``numbers["win"]``): it carries the step while other guardrails are undecided. While
    undecided it holds the step only when its estimate leans worse than the margin (or
    with ``require_labels``): labels arrive slowly, and an equal canary would wait for
    thousands of them. Without
    any label on either side the guardrail is ``unavailable`` (the rollout is judged on
    its outputs) unless ``require_labels``. A metric without a known standard error is
    judged on its value alone once ``min_labels`` labels arrive.

    Examples:
        >>> live_metric_guardrail((0.80, 3000, 0.008), (0.90, 4000, 0.006),
        ...                       GuardrailsConfig()).state
        'fail'
    """
    (c_value, c_rows, c_se), (p_value, p_rows, p_se) = _side(canary), _side(production)
    metric = rules.live_metric
    numbers: dict[str, Any] = {"canary_labels": c_rows, "production_labels": p_rows}
    margin = rules.live_metric_drop
    if margin is None:
        return GuardrailResult("live_metric", "off", "live-metric guardrail is off")
    if c_rows == 0 and p_rows == 0 and not rules.require_labels:
        return GuardrailResult(
            "live_metric",
            "unavailable",
            "no labels for either version since the rollout started; judged on outputs",
            numbers=numbers,
        )
    advisory = not rules.require_labels
    if c_value is None or p_value is None or min(c_rows, p_rows) < rules.min_labels:
        return GuardrailResult(
            "live_metric",
            "insufficient_data",
            f"{c_rows} canary and {p_rows} production labels; its interval is trusted from "
            f"{rules.min_labels} each (no labels are no evidence)",
            numbers=numbers,
            needed=f"{max(rules.min_labels - min(c_rows, p_rows), 0)} more labels",
            advisory=advisory,
        )
    numbers.update(canary=c_value, production=p_value)
    drop = (c_value - p_value) if _lower_is_better(metric) else (p_value - c_value)
    numbers["drop"] = drop
    summary = (
        f"live {metric} canary {c_value:.4f} vs production {p_value:.4f} "
        f"({c_rows} vs {p_rows} labels)"
    )
    if c_se is None or p_se is None:
        status: Status = "breach" if drop > margin else "ok"
        return GuardrailResult(
            "live_metric",
            status,
            f"{summary}: worse by {drop:.4f} (margin {margin:g}; no standard error is known "
            f"for {metric}, so judged on the value alone)",
            value=drop,
            threshold=margin,
            numbers=numbers,
        )
    variance = c_se**2 + p_se**2
    numbers["standard_error"] = math.sqrt(variance)
    test = SequentialTest(pass_below=margin, fail_above=margin, tau=margin, alpha=rules.alpha)
    judgement = test.judge(drop, variance)
    numbers["win"] = judgement.upper < 0.0
    if numbers["win"]:
        summary += ": conclusively better"
    result = _judged(
        "live_metric",
        judgement,
        summary,
        unit="",
        numbers=numbers,
        more=_more(min(c_rows, p_rows), "labels per version"),
    )
    if result.status == "insufficient_data":
        if advisory and drop <= margin:
            result = replace(
                result,
                advisory=True,
                message=result.message + "; the labels lean no worse than the margin, so the "
                "step does not wait for them (require_labels = true makes it)",
            )
        else:
            result = replace(
                result,
                message=result.message + "; the labels lean worse than the margin: the step "
                "waits for them",
            )
    return result


@dataclass(frozen=True)
class SampleRatio:
    """The canary's observed share of a step's requests against its configured weight.

    ``evidence`` is a Bayes factor against "the split is the weight" that reaches
    ``1/alpha`` at any look with probability at most ``alpha`` while the split is right;
    ``mismatch`` when it has, and the observed share is off by more than the tolerance.
    """

    canary: float
    total: float
    weight: int
    evidence: float
    mismatch: bool
    message: str
    judged: bool = True

    @property
    def share(self) -> float:
        """The canary's observed share of the requests (0 without any)."""
        return self.canary / self.total if self.total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (with the observed share)."""
        return {**asdict(self), "share": self.share}


def split_evidence(canary: float, total: float, expected: float) -> float:
    """Evidence that requests are split at another share than ``expected``, two-sided.

    A Beta-mixture Bayes factor on the binomial: the alternatives ``π`` are mixed over a
    Beta prior with mean ``expected`` (``Beta(1, 1/π0 − 1)`` below one half, its mirror
    above), against the point ``π0 = expected``. Under the null it is a non-negative
    martingale, so it reaches ``1/alpha`` at any look with probability at most ``alpha``.

    >>> split_evidence(48, 4000, 0.05) > 1e6  # 1.2% of 4,000 at a 5% weight
    True
    >>> split_evidence(205, 4000, 0.05) < 1  # 5.1%: none
    True
    """
    if total <= 0 or not 0.0 < expected < 1.0:
        return 1.0
    k, n = min(max(canary, 0.0), total), total
    if expected <= 0.5:
        a, b = 1.0, 1.0 / expected - 1.0
    else:
        a, b = expected / (1.0 - expected), 1.0

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    log_ratio = (
        log_beta(k + a, n - k + b)
        - log_beta(a, b)
        - k * math.log(expected)
        - (n - k) * math.log1p(-expected)
    )
    return math.exp(min(log_ratio, 700.0))


def _evidence_text(value: float) -> str:
    """``0.31``, ``450``, ``1e6``: a Bayes factor in a few characters."""
    if value < 1000:
        return f"{value:.3g}"
    return f"1e{math.floor(math.log10(value))}"


def sample_ratio(
    canary: float, production: float, weight: int, *, alpha: float, tolerance: float | None
) -> SampleRatio:
    """Is the step's traffic split as the rollout configured? (a sample-ratio check)

    ``canary`` and ``production``: requests each answered over the step; ``weight``: the
    canary's configured percentage. The server draws the version of every request that
    names none at random (a request with a routing key goes by its key's hash, the
    same key to the same version), so the canary's count is binomial at ``weight``%. A
    mismatch (``evidence`` past ``1/alpha`` and the share off by more than
    ``tolerance`` × the weight) means the split is not the configured one: the
    comparison behind every guardrail is then of other traffic than the rollout routes,
    so the rollout holds. Not judged at 0% or 100%, without production, or when off.

    >>> sample_ratio(48, 3952, 5, alpha=0.01, tolerance=0.2).mismatch
    True
    >>> sample_ratio(205, 3795, 5, alpha=0.01, tolerance=0.2).mismatch
    False
    """
    total = canary + production
    if tolerance is None or not 0 < weight < 100:
        why = "off" if tolerance is None else f"not judged at a {weight}% weight"
        return SampleRatio(canary, total, weight, 1.0, False, f"split: {why}", judged=False)
    expected = weight / 100.0
    evidence = split_evidence(canary, total, expected)
    share = canary / total if total > 0 else 0.0
    off = abs(share - expected) > tolerance * expected
    mismatch = evidence >= 1.0 / alpha and off
    seen = (
        f"canary got {share:.1%} of {total:,.0f} requests at a {weight}% weight"
        if total > 0
        else f"no requests yet at a {weight}% weight"
    )
    bound = f"1/alpha = {1.0 / alpha:g}"
    if mismatch:
        message = (
            f"{seen}: sample-ratio mismatch (evidence {_evidence_text(evidence)} > {bound}); "
            "the split is not what the rollout configured, so the guardrails compare other "
            "traffic than the rollout routes: check that every replica follows the registry "
            "(one on an older deployment keeps the older weight), and whether clients pin "
            "versions or send a routing key (x-request-key splits keys, not requests; set "
            "[rollout] sample_ratio_tolerance = false for such traffic); the rollout holds "
            "until the split matches"
        )
    elif evidence >= 1.0 / alpha:
        message = (
            f"{seen}: off the weight (evidence {_evidence_text(evidence)}) but within "
            f"{tolerance:.0%} of it; not a mismatch"
        )
    else:
        shown = _evidence_text(evidence)
        message = f"{seen}: consistent with the weight (evidence {shown} < {bound})"
    return SampleRatio(canary, total, weight, evidence, mismatch, message)
