"""Always-valid comparisons of a canary with production, looked at after every tick.

A rollout re-tests the same growing evidence at every monitor tick. A fixed-horizon test
looked at that often rejects far more often than its level says, and a fixed sample floor
waits for evidence that may already be conclusive (or that a low-traffic canary never
collects). Every guardrail here is instead a **confidence sequence**: an interval around
the estimate that holds at every look at once, so the rollout can act the moment it
excludes a boundary. The interval is the normal-mixture sequential probability ratio test
(mSPRT, Robbins 1970; Johari et al., "Always Valid Inference", 2017) applied to an
asymptotically normal estimate with variance ``v``: the values ``θ`` where the mixture
likelihood ratio stays below ``1/α``. For one normal mixing scale ``τ`` that ratio is

    sqrt(v / (v + τ²)) · exp( (estimate − θ)² τ² / (2 v (v + τ²)) );

here it is averaged over eight scales around the margin that matters (an average of
test martingales is one), so that both a broken canary and a subtle one are decided
near their best time. Each guardrail compares its
interval with two boundaries on "how much worse the canary is": it **fails** when the
whole interval lies above ``fail_above`` (worse beyond the tolerated margin, or at all for
errors) and **passes** when the whole interval lies below ``pass_below`` (no worse than
the margin); otherwise it is **undecided**.

Examples:
    >>> test = SequentialTest(pass_below=0.02, fail_above=0.0, tau=0.02, alpha=0.005)
    >>> test.judge(estimate=0.0, variance=1e-6).state
    'pass'
    >>> test.judge(estimate=0.30, variance=1e-3).state
    'fail'
    >>> test.judge(estimate=0.0, variance=1e-2).state
    'undecided'
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Judgement",
    "SequentialTest",
    "SmoothCdf",
    "State",
    "exceedance_evidence",
    "increase_evidence",
    "mixture_radius",
    "rank_probability",
    "shifted",
    "two_rates",
]

State = Literal["pass", "fail", "undecided"]


#: The mixing scales, as multiples of a test's ``tau``: one scale is tight only for effects
#: near it, so the boundary mixes eight (its price: log 8 in the exponent).
SCALES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def mixture_radius(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the normal-mixture confidence sequence at estimator variance ``variance``.

    The estimate is within it of the truth at every look at once, with probability
    ``1 − alpha`` (asymptotically: the estimate is normal, its variance estimated).

    >>> round(mixture_radius(1e-4, 0.05, 0.05), 4)
    0.0334
    """
    if variance <= 0.0:
        return 0.0
    if not math.isfinite(variance):
        return math.inf
    # Each scale's ratio is a_k exp(b_k x) in x = radius²; their mean reaches 1/alpha at the
    # root of the convex g(x) = log Σ a_k exp(b_k x) − log(len / alpha). Newton's method from
    # an upper bound (one term alone reaching the level) descends onto it monotonically.
    terms = []
    for scale in SCALES:
        tau2 = (tau * scale) ** 2
        spread = variance + tau2
        terms.append((math.sqrt(variance / spread), tau2 / (2.0 * variance * spread)))
    level = math.log(len(SCALES) / alpha)
    x = min((level - math.log(a)) / b for a, b in terms)
    for _ in range(50):
        top = max(math.log(a) + b * x for a, b in terms)
        weights = [a * math.exp(b * x - top) for a, b in terms]
        total = sum(weights)
        g = top + math.log(total) - level
        slope = sum(w * b for w, (_, b) in zip(weights, terms, strict=True)) / total
        step = g / slope
        x -= step
        if step <= 1e-12 * max(x, 1e-300):
            break
    return math.sqrt(max(x, 0.0))


@dataclass(frozen=True)
class Judgement:
    """A guardrail's state with the interval behind it (all on the "how much worse" scale)."""

    state: State
    estimate: float
    lower: float
    upper: float
    pass_below: float
    fail_above: float
    #: How many times the present evidence the interval needs to reach a boundary, if the
    #: estimate stays where it is (1.0 once decided; inf when it sits on a boundary).
    evidence_factor: float


@dataclass(frozen=True)
class SequentialTest:
    """Pass when the interval lies below ``pass_below``, fail when above ``fail_above``.

    ``fail_above`` may sit below ``pass_below`` (errors: any increase fails, a small one
    may still pass once bounded): then whichever the interval clears first decides, and
    failing is checked first.
    """

    pass_below: float
    fail_above: float
    tau: float
    alpha: float

    def judge(self, estimate: float, variance: float) -> Judgement:
        """The state of the test at this look."""
        radius = mixture_radius(variance, self.tau, self.alpha)
        lower, upper = estimate - radius, estimate + radius
        if lower > self.fail_above:
            state: State = "fail"
        elif upper < self.pass_below:
            state = "pass"
        else:
            state = "undecided"
        return Judgement(
            state=state,
            estimate=estimate,
            lower=lower,
            upper=upper,
            pass_below=self.pass_below,
            fail_above=self.fail_above,
            evidence_factor=1.0 if state != "undecided" else self._factor(estimate, variance),
        )

    def _factor(self, estimate: float, variance: float) -> float:
        """Evidence multiple (variance divided by it) at which a boundary would be crossed.

        The radius shrinks about as ``sqrt(variance)``; a few fixed-point steps correct for
        the slowly growing logarithm.
        """
        gap = max(self.pass_below - estimate, estimate - self.fail_above)
        if gap <= 0.0 or variance <= 0.0:
            return math.inf
        factor = 1.0
        for _ in range(6):
            radius = mixture_radius(variance / factor, self.tau, self.alpha)
            factor *= (radius / gap) ** 2
            if factor > 1e6:
                return math.inf
        return max(factor, 1.0)


def two_rates(bad_a: float, n_a: float, bad_b: float, n_b: float) -> tuple[float, float]:
    """``rate_a − rate_b`` and its variance, each rate smoothed by half a count.

    The smoothing keeps a side with no failures from claiming zero variance: 0 of 15
    requests failed is not proof of a zero error rate.

    >>> d, v = two_rates(15, 15, 0, 285)
    >>> round(d, 2), v > 0
    (1.0, True)
    """
    rate_a, rate_b = bad_a / n_a, bad_b / n_b
    smooth_a, smooth_b = (bad_a + 0.5) / (n_a + 1.0), (bad_b + 0.5) / (n_b + 1.0)
    variance = smooth_a * (1 - smooth_a) / n_a + smooth_b * (1 - smooth_b) / n_b
    return rate_a - rate_b, variance


def _bucket_counts(cumulative: Sequence[float]) -> list[float]:
    out, previous = [], 0.0
    for value in cumulative:
        out.append(max(value - previous, 0.0))
        previous = value
    return out


def rank_probability(canary: Sequence[float], production: Sequence[float]) -> tuple[float, float]:
    """Mann–Whitney's ``P(canary > production) + ½ P(same bucket)`` and its variance.

    ``canary`` and ``production`` are per-bucket counts over the same buckets. The variance
    is DeLong's from the placement values, and never below the rank sum's variance under
    no difference for continuous data, ``(m + n + 1) / (12 m n)`` (few observations in few
    buckets would otherwise claim certainty).

    >>> round(rank_probability([0, 10, 0], [10, 0, 0])[0], 2)
    1.0
    >>> round(rank_probability([5, 5], [5, 5])[0], 2)
    0.5
    """
    m, n = float(sum(canary)), float(sum(production))
    if m <= 0 or n <= 0:
        return math.nan, math.inf
    below_p, below_c = 0.0, 0.0
    place_c: list[float] = []  # per bucket: share of production below a canary value there
    place_p: list[float] = []  # per bucket: share of the canary above a production value
    for c, p in zip(canary, production, strict=True):
        place_c.append((below_p + 0.5 * p) / n)
        below_p += p
        below_c += c
        place_p.append(1.0 - (below_c - 0.5 * c) / m)
    theta = sum(c * v for c, v in zip(canary, place_c, strict=True)) / m
    var_c = sum(c * (v - theta) ** 2 for c, v in zip(canary, place_c, strict=True)) / m
    var_p = sum(p * (v - theta) ** 2 for p, v in zip(production, place_p, strict=True)) / n
    variance = var_c / m + var_p / n
    return theta, max(variance, (m + n + 1.0) / (12.0 * m * n))


def shifted(
    bounds: Sequence[float], counts: Sequence[float], share: float, seconds: float
) -> list[float]:
    """Per-bucket counts of a histogram whose every value ``x`` became ``max(x(1 + share),
    x + seconds)``, values spread evenly inside their bucket (the resolution it has).
    ``counts`` are cumulative, as Prometheus keeps them; the result is per bucket.

    >>> shifted([1.0, 2.0, math.inf], [10, 10, 10], 1.0, 0.0)
    [5.0, 5.0, 0.0]
    """
    per_bucket = _bucket_counts(counts)

    def inverse(y: float) -> float:
        return min(y / (1.0 + share), y - seconds)

    out = [0.0] * len(per_bucket)
    low = 0.0
    for i, (high, mass) in enumerate(zip(bounds, per_bucket, strict=True)):
        if mass <= 0:
            low = high
            continue
        if math.isinf(high):
            out[i] += mass
            continue
        width = high - low
        target_low = 0.0
        for k, target_high in enumerate(bounds):
            # The part of [low, high] that lands in [target_low, target_high].
            a = max(low, inverse(target_low)) if k else low
            b = min(high, inverse(target_high)) if not math.isinf(target_high) else high
            if b > a:
                out[k] += mass * ((b - a) / width if width > 0 else 1.0)
            target_low = target_high
        low = high
    return out


def increase_evidence(bad_a: float, n_a: float, bad_b: float, n_b: float) -> float:
    """Evidence that side ``a`` fails more often than side ``b``: a likelihood ratio whose
    reaching ``1/alpha`` at any look happens with probability at most ``alpha`` when the
    two rates are equal.

    Given the failures so far, each one came from ``a`` with probability
    ``π0 = n_a / (n_a + n_b)`` when the rates are equal. The ratio mixes the alternatives
    ``π`` over a Beta prior with mean ``π0`` (a Bayes factor, exact for rare failures, where
    a normal approximation claims certainty from one failure); a side that fails less
    than its share gets 1 (no evidence of an increase).

    >>> round(increase_evidence(1, 3, 0, 297), 2)  # one failure on a 1% canary: none
    1.0
    >>> increase_evidence(5, 5, 0, 495) > 100  # five in a row: conclusive
    True
    """
    failures = bad_a + bad_b
    if failures <= 0 or n_a <= 0 or n_b <= 0:
        return 1.0
    share = n_a / (n_a + n_b)
    if bad_a / failures <= share:
        return 1.0
    a, b = 1.0, max(1.0 / share - 1.0, 1.0)

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    log_ratio = (
        log_beta(bad_a + a, bad_b + b)
        - log_beta(a, b)
        - bad_a * math.log(share)
        - bad_b * math.log1p(-share)
    )
    return math.exp(min(log_ratio, 700.0))


#: The alternatives :func:`exceedance_evidence` mixes: how much higher side ``a``'s rate
#: is than side ``b``'s, as log odds of an event coming from ``a`` (0.1: about 10% more
#: often; 4.2: about 65 times as often).
LOG_ODDS = (0.1, 0.2, 0.3, 0.45, 0.65, 0.9, 1.25, 1.7, 2.3, 3.1, 4.2)


def exceedance_evidence(events_a: float, n_a: float, events_b: float, n_b: float) -> float:
    """Evidence that side ``a`` has events (say, batches beyond a latency) more often than
    side ``b``: a likelihood ratio whose reaching ``1/alpha`` at any look happens with
    probability at most ``alpha`` when ``a``'s rate is no higher than ``b``'s.

    Given the events so far, each came from ``a`` with probability ``π0 = n_a / (n_a + n_b)``
    when the rates are equal (and less when ``a``'s is lower). The ratio averages the
    alternatives ``π`` above ``π0`` at the log odds in :data:`LOG_ODDS`: each is a test
    martingale under every rate of ``a`` no higher than ``b``'s, so their mean is one
    test (one-sided, exact for rare events, where a normal approximation claims
    certainty from a handful of them). Counts may be fractional (read inside a bucket).

    >>> exceedance_evidence(57, 5700, 0, 300) > 100  # production 1%, none of 300: not yet
    False
    >>> exceedance_evidence(570, 57000, 0, 3000) > 100  # none of 3,000: shown lower
    True
    >>> exceedance_evidence(3, 300, 57, 5700) < 1  # the same rate: no evidence
    True
    """
    events = events_a + events_b
    if events <= 0 or n_a <= 0 or n_b <= 0:
        return 1.0
    share = n_a / (n_a + n_b)
    base = math.log(share) - math.log1p(-share)
    terms = []
    for step in LOG_ODDS:
        logit = base + step
        # log π − log π0 and log(1 − π) − log(1 − π0), for π = sigmoid(logit).
        log_pi = -math.log1p(math.exp(-logit)) if logit > 0 else logit - math.log1p(math.exp(logit))
        log_rest = log_pi - logit
        terms.append(
            events_a * (log_pi - math.log(share)) + events_b * (log_rest - math.log1p(-share))
        )
    top = max(terms)
    log_mean = top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))
    return math.exp(min(log_mean, 700.0))


class SmoothCdf:
    """A cumulative histogram read between its bucket edges by a monotone cubic.

    Prometheus reads inside a bucket linearly, as if its batches were spread evenly:
    in a tail bucket (25–50 ms around a 25 ms p99) that hides where they lie, and a
    margin narrower than the bucket buys almost nothing. Latency thins out smoothly, so
    here the counts at the edges are joined by Fritsch–Carlson's monotone cubic in
    log-latency (the PCHIP of the counts): exact at every edge, never decreasing, and
    following the slope of the neighbouring buckets. Below the first edge the reading is
    linear; the +Inf bucket is not read into.

    >>> cdf = SmoothCdf((0.01, 0.02, 0.05, math.inf), (50.0, 90.0, 100.0, 100.0))
    >>> cdf.count_below(0.02), round(cdf.count_below(0.03), 1), round(cdf.quantile(0.9), 4)
    (90.0, 95.4, 0.02)
    """

    def __init__(self, bounds: Sequence[float], cumulative: Sequence[float]) -> None:
        finite = [i for i, b in enumerate(bounds) if math.isfinite(b)]
        self.edges = [float(bounds[i]) for i in finite]
        self.counts = [float(cumulative[i]) for i in finite]
        self.total = float(cumulative[-1]) if cumulative else 0.0
        u = [math.log(b) for b in self.edges]
        self.u = u
        steps = [u[k + 1] - u[k] for k in range(len(u) - 1)]
        secants = [
            (self.counts[k + 1] - self.counts[k]) / steps[k] if steps[k] > 0 else 0.0
            for k in range(len(steps))
        ]
        slopes = [0.0] * len(u)
        for k in range(1, len(u) - 1):
            left, right = secants[k - 1], secants[k]
            if left <= 0.0 or right <= 0.0:
                continue
            w1, w2 = 2 * steps[k] + steps[k - 1], steps[k] + 2 * steps[k - 1]
            slopes[k] = (w1 + w2) / (w1 / left + w2 / right)
        if secants:
            slopes[0], slopes[-1] = secants[0], secants[-1]
        self.steps, self.slopes = steps, slopes

    def count_below(self, x: float) -> float:
        """Observations at or below ``x``."""
        edges, counts = self.edges, self.counts
        if not edges or x <= 0.0:
            return 0.0
        if x <= edges[0]:
            return counts[0] * x / edges[0]
        if x >= edges[-1]:
            return counts[-1]
        k = bisect_right(edges, x) - 1
        return self._within(k, (math.log(x) - self.u[k]) / self.steps[k])

    def _within(self, k: int, s: float) -> float:
        """The cubic of bucket ``k`` (between edges k and k + 1) at ``s`` in [0, 1]."""
        h, low, high = self.steps[k], self.counts[k], self.counts[k + 1]
        value = (
            (1 + 2 * s) * (1 - s) ** 2 * low
            + s * (1 - s) ** 2 * h * self.slopes[k]
            + s * s * (3 - 2 * s) * high
            + s * s * (s - 1) * h * self.slopes[k + 1]
        )
        return min(max(value, low), high)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (the largest finite edge when it lies in the +Inf bucket);
        NaN without observations."""
        if self.total <= 0 or not self.edges:
            return math.nan
        rank = q * self.total
        edges, counts = self.edges, self.counts
        if rank <= counts[0]:
            return edges[0] * rank / counts[0] if counts[0] > 0 else 0.0
        if rank > counts[-1]:
            return edges[-1]
        k = bisect_left(counts, rank) - 1
        low, high = 0.0, 1.0
        for _ in range(40):  # bisection: the reading is monotone inside the bucket
            middle = 0.5 * (low + high)
            if self._within(k, middle) < rank:
                low = middle
            else:
                high = middle
        return math.exp(self.u[k] + 0.5 * (low + high) * self.steps[k])
