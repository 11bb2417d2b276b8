"""What the rollout controller decides and remembers: its decisions and the step under way.

A :class:`RolloutDecision` is one tick's verdict with the numbers it compared; a
:class:`RolloutStep` is the canary step in progress, kept in the monitor's state file
between ticks (and across restarts) with the counters at its start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mooring.monitoring._guardrails import GuardrailResult
from mooring.monitoring._output_guardrails import LABELS_DECIDE
from mooring.monitoring._scrape import VersionCounters

__all__ = [
    "Action",
    "RolloutDecision",
    "RolloutStep",
    "Verdict",
    "iso_time",
    "labels_decide",
    "parse_time",
    "step_verdict",
]

Action = Literal["hold", "advance", "promote", "rollback", "insufficient_data", "idle"]


@dataclass(frozen=True)
class RolloutDecision:
    """What one tick decided, why, and with which numbers."""

    model: str
    action: Action
    production: int | None
    canary: int | None
    from_weight: int
    to_weight: int
    reasons: list[str]
    guardrails: list[GuardrailResult] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    at: str = ""

    @property
    def changed(self) -> bool:
        """True when the deployment record was changed."""
        return self.action in ("advance", "promote", "rollback")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        data = asdict(self)
        data["guardrails"] = [g.to_dict() for g in self.guardrails]
        return data


@dataclass
class RolloutStep:
    """The canary step under way: where it started, and the counters it is judged from."""

    canary: int
    production: int | None
    weight: int
    revision: int
    started_at: float
    rollout_started_at: float
    baseline: dict[str, VersionCounters] | None = None
    #: Production's counters when the rollout began: at 100% production answers nothing
    #: in the step, and the canary is compared with production's rollout instead.
    rollout_baseline: VersionCounters | None = None
    #: Ticks judged at this step.
    ticks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "rollout_baseline": None
            if self.rollout_baseline is None
            else self.rollout_baseline.to_dict(),
            "canary": self.canary,
            "production": self.production,
            "weight": self.weight,
            "revision": self.revision,
            "started_at": self.started_at,
            "rollout_started_at": self.rollout_started_at,
            "baseline": None
            if self.baseline is None
            else {k: v.to_dict() for k, v in self.baseline.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutStep:
        baseline = data.get("baseline")
        rollout_baseline = data.get("rollout_baseline")
        return cls(
            canary=int(data["canary"]),
            production=None if data.get("production") is None else int(data["production"]),
            weight=int(data["weight"]),
            revision=int(data["revision"]),
            started_at=float(data["started_at"]),
            rollout_started_at=float(data["rollout_started_at"]),
            ticks=int(data.get("ticks", 0)),
            rollout_baseline=None
            if rollout_baseline is None
            else VersionCounters.from_dict(rollout_baseline),
            baseline=None
            if baseline is None
            else {k: VersionCounters.from_dict(v) for k, v in baseline.items()},
        )


def iso_time(at: float) -> str:
    """Seconds since the epoch as ISO 8601 (UTC)."""
    return datetime.fromtimestamp(at, UTC).isoformat()


def parse_time(text: str | None) -> float | None:
    """ISO 8601 (a naive time is UTC) as seconds since the epoch; None when unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


Verdict = Literal["fail", "pass", "undecided"]


def labels_decide(results: list[GuardrailResult]) -> list[GuardrailResult]:
    """Let the labels decide what they can judge better than the other guardrails.

    A live metric that passes (no worse than production within its margin) overrides
    the output guardrails (outputs, validated, divergence): the canary is judged on
    quality, not on answering differently. A conclusive win (its interval wholly better)
    also carries guardrails that are still undecided, when their own estimate leans no
    worse than production. A failing guardrail is never overridden.
    """
    live = next((r for r in results if r.name == "live_metric"), None)
    if live is None or live.status != "ok":
        return results
    win = bool(live.numbers.get("win"))
    out = []
    for r in results:
        overridable = r.name in LABELS_DECIDE and r.status in ("breach", "insufficient_data")
        # A win carries an undecided guardrail only while that one's own estimate says the
        # canary is no worse than production (never one leaning towards failing).
        leaning_well = r.value is None or r.value <= 0.0
        carried = win and r.name != "live_metric" and r.status == "insufficient_data"
        if overridable or (carried and leaning_well):
            verdict = "would fail" if r.status == "breach" else "undecided"
            why = "a conclusive win" if win else "no worse"
            r = GuardrailResult(
                r.name,
                "ok",
                f"labels decide ({why}: {live.message}); without them: {verdict}: {r.message}",
                value=r.value,
                threshold=r.threshold,
                numbers=r.numbers,
                interval=r.interval,
                boundary=r.boundary,
            )
        out.append(r)
    return out


def step_verdict(results: list[GuardrailResult]) -> Verdict:
    """``fail`` when any guardrail fails, ``pass`` when every judging one passes.

    Guardrails that are off or have no source of evidence (``unavailable``) do not judge;
    an ``advisory`` one that is undecided (the labels, by default) does not hold the step.

    >>> ok = GuardrailResult("errors", "ok", "")
    >>> step_verdict([ok, GuardrailResult("latency", "insufficient_data", "")])
    'undecided'
    """
    if any(r.status == "breach" for r in results):
        return "fail"
    if any(r.status == "insufficient_data" and not r.advisory for r in results):
        return "undecided"
    return "pass"
