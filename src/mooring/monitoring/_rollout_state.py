"""What the rollout controller decides and remembers: its decisions and the step under way.

A :class:`RolloutDecision` is one tick's verdict with the numbers it compared; a
:class:`RolloutStep` is the canary step in progress, kept in the monitor's state file
between ticks (and across restarts) with the counters at its start and the steps the
rollout has run; :class:`TickFailures` counts the monitor ticks that failed in a row.
:func:`policy_text` says the end-of-horizon policy in one line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from mooring.config._monitoring import RolloutConfig
from mooring.monitoring._counters import VersionCounters
from mooring.monitoring._guardrails import GuardrailResult
from mooring.monitoring._output_guardrails import LABELS_DECIDE

__all__ = [
    "Action",
    "RolloutConfig",
    "RolloutDecision",
    "RolloutStep",
    "TickFailures",
    "Verdict",
    "iso_time",
    "labels_decide",
    "parse_time",
    "policy_text",
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


@dataclass(frozen=True)
class RolloutStep:
    """The canary step under way: where it started, and the counters it is judged from.

    Frozen: a tick makes the next one (:func:`dataclasses.replace`) and never changes the
    one it was given.
    """

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
    #: The weights this rollout has run, in order, this step's last (a promotion names them).
    steps_run: tuple[int, ...] = ()
    #: Requests each version had answered when the split began to be counted (the first
    #: tick of the step that found the canary answering); None before.
    split_from: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "steps_run": list(self.steps_run),
            "split_from": self.split_from,
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
            steps_run=tuple(int(w) for w in data.get("steps_run") or []),
            split_from=None
            if data.get("split_from") is None
            else {str(k): float(v) for k, v in data["split_from"].items()},
            rollout_baseline=None
            if rollout_baseline is None
            else VersionCounters.from_dict(rollout_baseline),
            baseline=None
            if baseline is None
            else {k: VersionCounters.from_dict(v) for k, v in baseline.items()},
        )


@dataclass
class TickFailures:
    """Monitor ticks that failed in a row (an error inside the check): when the first and
    the last failed, where (``rollout``, ``drift``…), the last error's text and after how
    many in a row a failing rollout tick holds the rollout. Cleared by a tick that succeeds.
    """

    consecutive: int
    first_at: float
    last_at: float
    error: str
    where: str = "rollout"
    #: ``[rollout] max_failed_ticks`` when recorded.
    limit: int = 3

    @property
    def held(self) -> bool:
        """True once the rollout's own tick has failed ``limit`` times in a row."""
        return self.where == "rollout" and self.consecutive >= self.limit

    @property
    def headline(self) -> str:
        """``held: the monitor failed 5 ticks in a row since 12:03:00 UTC (rollout: …); …``.

        >>> TickFailures(1, 0.0, 0.0, "KeyError: 'x'").headline[:46]
        'the monitor failed 1 tick since 00:00:00 UTC ('
        """
        since = datetime.fromtimestamp(self.first_at, UTC).strftime("%H:%M:%S UTC")
        ticks = f"{self.consecutive} tick{'s in a row' if self.consecutive != 1 else ''}"
        text = (
            f"the monitor failed {ticks} since {since} ({self.where}: {self.error}); fix the "
            "cause or run `mooring --debug monitor` for the traceback"
        )
        if self.held:
            return f"held: {text}; the rollout neither advances nor rolls back until it succeeds"
        if self.where == "rollout":
            return f"{text} (the rollout holds, and is reported held after {self.limit} in a row)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "consecutive": self.consecutive,
            "first_at": iso_time(self.first_at),
            "last_at": iso_time(self.last_at),
            "error": self.error,
            "where": self.where,
            "limit": self.limit,
            "held": self.held,
            "headline": self.headline,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TickFailures:
        first, last = parse_time(data.get("first_at")), parse_time(data.get("last_at"))
        if first is None or last is None:
            raise ValueError(f"unreadable times {data.get('first_at')!r}, {data.get('last_at')!r}")
        return cls(
            consecutive=int(data["consecutive"]),
            first_at=first,
            last_at=last,
            error=str(data.get("error", "")),
            where=str(data.get("where", "rollout")),
            limit=int(data.get("limit", 3)),
        )


def policy_text(rollout: RolloutConfig) -> str:
    """The end-of-horizon policy in one line, with the step budget and the horizon.

    >>> policy_text(RolloutConfig())[:62]
    'bias_to_action: an undecided step advances after 30m (max_hold'
    """
    budget = _span(rollout.max_hold)
    if rollout.max_hold_requests is not None:
        budget += f" or {rollout.max_hold_requests:,} canary requests"
    horizon = _span(rollout.max_hold * len(rollout.steps))
    steps = ", ".join(f"{s}%" for s in rollout.steps)
    if rollout.policy == "bias_to_action":
        return (
            f"bias_to_action: an undecided step advances after {budget} (max_hold) when no "
            f"guardrail was shown harmful; promoted within {horizon} ({steps}) unless shown "
            "harmful, rolled back only on evidence of harm"
        )
    if rollout.policy == "strict":
        return (
            f"strict: an undecided step holds until the evidence shows the canary no worse; "
            f"alert after {budget} (max_hold) at a step ({steps})"
        )
    return (
        f"rollback: an undecided step is rolled back after {budget} (max_hold) ({steps}); "
        "one shown failing is rolled back at once"
    )


def _span(seconds: float) -> str:
    """``30m``, ``2h``, ``1h 30m``, ``45s``."""
    s = round(seconds)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return " ".join(p for p in parts if p) or "0s"


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
    if live is not None and live.status == "insufficient_data" and _labelled(live):
        return [_awaits_labels(r, live) for r in results]
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


def _labelled(live: GuardrailResult) -> bool:
    """True when labels are arriving for both versions (the live metric will decide)."""
    numbers = live.numbers
    return bool(min(numbers.get("canary_labels", 0), numbers.get("production_labels", 0)) > 0)


def _awaits_labels(result: GuardrailResult, live: GuardrailResult) -> GuardrailResult:
    """An ``outputs`` (or stale ``validated``) failure that only labels can tell from a good
    retrain waits for them.

    Once the traffic moved away from both versions' evaluation data, a canary that moved
    unlike production is either a retrain answering the new traffic differently or one
    served unlike its evaluation; with labels arriving, the live metric tells which. While
    it is undecided, its lean decides whether the step waits, as for the live metric.
    """
    if result.name not in ("outputs", "validated") or result.status != "breach":
        return result
    if not result.numbers.get("traffic_moved"):
        return result
    # Labels leaning no worse than the margin do not hold the step (the live metric's own
    # rule): an answer that moved is not harm shown. Leaning worse, the step waits.
    lean = "lean no worse, so the step goes on" if live.advisory else "are awaited"
    return replace(
        result,
        status="insufficient_data",
        message=f"labels decide, and {lean} ({live.message}): the traffic moved and the "
        f"canary moved unlike production, which labels tell from a broken canary; without "
        f"them: would fail: {result.message}",
        needed=live.needed or "labels",
        advisory=live.advisory,
    )


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
