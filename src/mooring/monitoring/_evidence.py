"""What one rollout tick saw, as one frozen record: the evidence the decision is made of.

The rollout controller gathers it (server counters read back and differenced over the
step, label feedback, the prediction log) and hands it to
:func:`~mooring.monitoring._decide.decide`; every guardrail judges it
(:class:`~mooring.monitoring._guardrails.Guardrail`). The simulation builds the same
record from simulated traffic, so both run the same decisions.

Examples:
    >>> seen = Evidence(canary=VersionCounters(requests=40, errors=1),
    ...                 production=VersionCounters(requests=760, errors=2))
    >>> seen.canary.requests, seen.live is None
    (40, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._guardrail_live import LiveUnread, LiveValue
from mooring.monitoring._output_guardrails import OutputEvidence

__all__ = ["Evidence", "LivePair"]

#: Both versions' live metric: ``(canary, production)``, each ``(value, labels, error)``.
LivePair = tuple[LiveValue, LiveValue]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One tick's evidence on a canary step.

    Attributes:
        canary / production: each version's counters over the step (since its start).
        canary_total / production_total: their counters since the servers started (load
            failures; the split is counted from the first tick the canary answered).
        rollout: production's counters over the whole rollout (what the canary is compared
            with at 100%, where production answers nothing in the step).
        live: both versions' live metric since the rollout started; why it could not be
            read (:class:`~mooring.monitoring._guardrail_live.LiveUnread`); or None when
            there is no label feedback source.
        outputs: the rows and references the output checks judge (None: not read).
    """

    canary: VersionCounters
    production: VersionCounters
    canary_total: VersionCounters = field(default_factory=VersionCounters)
    production_total: VersionCounters = field(default_factory=VersionCounters)
    rollout: VersionCounters = field(default_factory=VersionCounters)
    live: LivePair | LiveUnread | None = None
    outputs: OutputEvidence | None = None
