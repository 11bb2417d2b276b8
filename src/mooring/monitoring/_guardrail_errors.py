"""The error guardrail: the canary's error rate against production's, sequentially.

Examples:
    >>> bad = VersionCounters(requests=100, errors=20)
    >>> good = VersionCounters(requests=2000, errors=2)
    >>> error_guardrail(bad, good, GuardrailsConfig()).status
    'breach'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._guardrails import GuardrailResult, GuardrailsConfig, judged, more_of, rate
from mooring.monitoring._sequential import SequentialTest, increase_evidence, two_rates

if TYPE_CHECKING:
    from mooring.monitoring._evidence import Evidence

__all__ = ["ERRORS", "ErrorsGuardrail", "error_guardrail"]


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
        "canary_error_rate": rate(c_bad, canary.requests),
        "production_error_rate": rate(p_bad, production.requests),
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
        f"{rate(p_bad, production.requests):.4f} ({p_bad:g}/{production.requests:g})"
    )
    return judged(
        "errors",
        judgement,
        summary,
        unit="",
        numbers=numbers,
        more=more_of(canary.requests, "canary requests"),
    )


@dataclass(frozen=True, slots=True)
class ErrorsGuardrail:
    """The error guardrail on a tick's evidence: the step's counters, and production's
    over the rollout where production answered nothing at this step."""

    name: str = "errors"

    def judge(self, evidence: Evidence, rules: GuardrailsConfig) -> tuple[GuardrailResult, ...]:
        """:func:`error_guardrail` on the step's counters."""
        return (error_guardrail(evidence.canary, evidence.production, rules, evidence.rollout),)


ERRORS = ErrorsGuardrail()
