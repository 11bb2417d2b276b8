"""The load guardrail: a canary the server failed to load (and so never answers).

Examples:
    >>> failed = VersionCounters(load_failures=2)
    >>> load_guardrail(failed, VersionCounters()).status
    'breach'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._guardrails import GuardrailResult, GuardrailsConfig

if TYPE_CHECKING:
    from mooring.monitoring._evidence import Evidence

__all__ = ["LOAD", "LoadGuardrail", "load_guardrail"]


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


@dataclass(frozen=True, slots=True)
class LoadGuardrail:
    """The load guardrail on a tick's evidence (the canary's counters since the server
    started, and over the step)."""

    name: str = "load"

    def judge(self, evidence: Evidence, rules: GuardrailsConfig) -> tuple[GuardrailResult, ...]:
        """:func:`load_guardrail`; ``rules`` has no key for it (a failed load is no noise)."""
        return (load_guardrail(evidence.canary_total, evidence.canary),)


LOAD = LoadGuardrail()
