"""The guardrails that compare a canary with production, one function per signal.

Each returns a :class:`GuardrailResult`: ``ok``, ``breach``, ``insufficient_data`` (not
enough evidence yet: never a reason to roll back, and the step waits for it),
``unavailable`` (no source of evidence at all, e.g. no label feedback: reported, and the
step does not wait) or ``off``, with the numbers behind it. The rollout controller
(:mod:`mooring.monitoring._rollout`) feeds them the differences of the server's counters
over the current step, the prediction log and label feedback; the checks of the canary's
outputs live in :mod:`mooring.monitoring._output_guardrails`.

Example:
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
    State,
    increase_evidence,
    rank_probability,
    shifted,
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
        return f"about {max(math.ceil(count * (factor - 1.0)), 1):,} more {what} expected"

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

    Example:
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


#: The least rank margin: where the buckets cannot resolve the latency margin, a canary
#: passes once shown slower than production in fewer than 55% of pairs.
MIN_RANK_MARGIN = 0.05


def latency_guardrail(
    canary: VersionCounters,
    production: VersionCounters,
    rules: GuardrailsConfig,
) -> GuardrailResult:
    """Inference latency of the canary against production's: a rank test with a margin.

    The estimate is Mann–Whitney's ``P(canary slower than production) − ½`` over the
    histograms of the same step (ties within a bucket count half: the buckets'
    resolution). It **passes** when that probability is shown below what production made
    slower by the margin (``latency_margin`` of production's p99, or
    ``latency_margin_ms`` where that is more) would give, and **fails** when the canary is
    shown slower than production made slower by the margin in more than half of the
    pairs. So a healthy canary on a noisy machine passes and a real regression fails
    within a few hundred requests. Only batches timed in the same ticks are compared (a busy machine
    slows both alike): at 100% production answers nothing, and latency was judged at the
    earlier steps (``unavailable``).

    Example:
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
    prod = [c - b for c, b in zip(p_hist.counts, (0.0, *p_hist.counts[:-1]), strict=True)]
    cand = [c - b for c, b in zip(c_hist.counts, (0.0, *c_hist.counts[:-1]), strict=True)]
    theta, variance = rank_probability(cand, prod)
    c_p99, p_p99 = c_hist.quantile(0.99), p_hist.quantile(0.99)
    # The margin is on the p99: a share of it, or the milliseconds where those are more.
    floor = rules.latency_margin_ms / 1e3 / p_p99 if p_p99 > 0 else 0.0
    share = max(rules.latency_margin, floor)
    slower = shifted(p_hist.bounds, p_hist.counts, share, 0.0)
    # Fails: the canary is slower than production made slower by the margin.
    beyond, beyond_variance = rank_probability(cand, slower)
    failing = SequentialTest(
        pass_below=-math.inf, fail_above=0.0, tau=MIN_RANK_MARGIN, alpha=rules.alpha
    ).judge(beyond - 0.5, beyond_variance)
    # Passes: the canary is no slower than production by what the margin would show.
    theta_margin, _ = rank_probability(slower, prod)
    boundary = max(theta_margin - 0.5, MIN_RANK_MARGIN)
    numbers.update(
        canary_p99_ms=c_p99 * 1000.0,
        production_p99_ms=p_p99 * 1000.0,
        canary_p50_ms=c_hist.quantile(0.5) * 1000.0,
        production_p50_ms=p_hist.quantile(0.5) * 1000.0,
        slower_share=theta,
        slower_share_at_margin=0.5 + boundary,
        slower_than_margin_share=beyond,
        slower_than_margin_interval=[0.5 + failing.lower, 0.5 + failing.upper],
        margin=share,
    )
    judgement = SequentialTest(
        pass_below=boundary, fail_above=math.inf, tau=boundary, alpha=rules.alpha
    ).judge(theta - 0.5, variance)
    if failing.state == "fail":
        judgement = replace(judgement, state="fail", evidence_factor=1.0)
    margin = f"{share:.0%} slower"
    summary = (
        f"canary slower than production in {theta:.1%} of pairs (at the margin, {margin}: "
        f"{0.5 + boundary:.1%}), slower than production made {margin} in {beyond:.1%} "
        f"(interval {0.5 + failing.lower:.1%}–{0.5 + failing.upper:.1%}); p50 "
        f"{numbers['canary_p50_ms']:.2f} vs {numbers['production_p50_ms']:.2f} ms, p99 "
        f"{c_p99 * 1000:.2f} vs {p_p99 * 1000:.2f} ms ({c_n:g} vs {p_n:g} batches)"
    )
    return _judged(
        "latency",
        judgement,
        summary,
        unit="",
        numbers=numbers,
        more=_more(c_n, "canary batches"),
        fails="fails once slower than production made slower by the margin in over half the pairs",
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

    Example:
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
