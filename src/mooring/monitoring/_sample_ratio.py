"""The sample-ratio check: is a step's traffic split as the rollout configured?

Examples:
    >>> sample_ratio(48, 3952, 5, alpha=0.01, tolerance=0.2).mismatch
    True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["SampleRatio", "sample_ratio", "split_evidence"]


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
