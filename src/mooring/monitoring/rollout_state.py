"""What the rollout controller decides and remembers: its decisions and the step under way.

A :class:`RolloutDecision` is one tick's verdict with the numbers it compared; a
:class:`RolloutStep` is the canary step in progress, kept in the monitor's state file
between ticks (and across restarts) with the counters at its start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mooring.monitoring.guardrails import GuardrailResult
from mooring.monitoring.scrape import VersionCounters

__all__ = ["Action", "RolloutDecision", "RolloutStep", "iso_time", "parse_time"]

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
    #: Consecutive ticks on which the latency guardrail saw a breach.
    latency_strikes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_strikes": self.latency_strikes,
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
        return cls(
            canary=int(data["canary"]),
            production=None if data.get("production") is None else int(data["production"]),
            weight=int(data["weight"]),
            revision=int(data["revision"]),
            started_at=float(data["started_at"]),
            rollout_started_at=float(data["rollout_started_at"]),
            latency_strikes=int(data.get("latency_strikes", 0)),
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
