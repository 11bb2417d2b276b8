"""The rollout's evidence for people: the step under way and each guardrail's numbers.

The rollout controller (:mod:`mooring.monitoring._rollout`) keeps the step under way and
its last decision in ``<home>/monitoring/<model>/rollout.json``, with the end-of-horizon
policy it applies, the steps the rollout has run and the monitor's failing ticks.
:func:`read_rollout` reads that file back for ``mooring status`` and the dashboard, and
never raises: a missing, unreadable or malformed file is a :class:`RolloutView` whose
``note`` says so.
:class:`GuardrailView` shows a guardrail the same way everywhere (``mooring monitor``
too): its state, estimate, interval (valid at every look), the boundaries it must cross
and how many more requests or labels a decision is expected to need.

Examples:
    >>> g = GuardrailView.from_mapping({"name": "errors", "status": "insufficient_data",
    ...     "value": 0.0, "interval": [-0.5, 0.5], "needed": "about 90 more requests expected",
    ...     "boundary": {"pass_below": 0.03, "fail_above": 0.0}})
    >>> g.state, g.bounds
    ('undecided', 'passes below +0.03, fails above +0')
    >>> g.line[:52]
    'errors [undecided] estimate +0 interval [-0.5, +0.5]'
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mooring.monitoring._guardrails import GuardrailResult
from mooring.monitoring._rollout_state import RolloutStep, TickFailures, iso_time

__all__ = [
    "DecisionView",
    "FailureView",
    "GuardrailView",
    "RolloutView",
    "StepView",
    "decision_line",
    "read_rollout",
    "reasons_beyond",
    "rollout_path",
]

_STATES = {"ok": "pass", "breach": "fail", "insufficient_data": "undecided"}
#: The first reason of an undecided step, which only counts what its guardrails say.
_UNDECIDED_COUNT = re.compile(r"undecided at \d+%: \d+ guardrail\(s\)")
_REWRITE = "the next `mooring monitor` tick rewrites it"


def rollout_path(home: Path, model: str) -> Path:
    """``<home>/monitoring/<model>/rollout.json``, where the rollout controller keeps its state."""
    return home / "monitoring" / model / "rollout.json"


def _number(value: Any) -> float | None:
    """A finite number, else None (JSON writes infinite boundaries as null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _fmt(value: float) -> str:
    return f"{value:+.4g}"


def _duration(seconds: float) -> str:
    """``45s``, ``12m 3s``, ``2h 5m``, ``3d 4h``."""
    s = max(int(seconds), 0)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if s >= size:
            return f"{s // size}{unit} {s % size // sub_size}{sub}"
    return f"{s // 60}m {s % 60}s" if s >= 60 else f"{s}s"


@dataclass(frozen=True)
class GuardrailView:
    """One guardrail as a person reads it; built from ``GuardrailResult.to_dict()``."""

    name: str
    state: str
    status: str
    message: str = ""
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    boundary: dict[str, float | None] | None = None
    needed: str | None = None
    advisory: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> GuardrailView:
        """Read one saved guardrail; ValueError naming the field when it is not one."""
        name, status = data.get("name"), data.get("status")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a guardrail has no name (got {name!r})")
        if not isinstance(status, str):
            raise ValueError(f"guardrail {name!r} has no status (got {status!r})")
        state = data.get("state")
        raw_interval = data.get("interval")
        interval = None
        if isinstance(raw_interval, list | tuple) and len(raw_interval) == 2:
            lo, hi = (_number(v) for v in raw_interval)
            interval = None if lo is None or hi is None else (lo, hi)
        raw_boundary = data.get("boundary")
        boundary = (
            {k: _number(raw_boundary.get(k)) for k in ("pass_below", "fail_above")}
            if isinstance(raw_boundary, Mapping)
            else None
        )
        needed, message = data.get("needed"), data.get("message")
        return cls(
            name=name,
            state=state if isinstance(state, str) else _STATES.get(status, status),
            status=status,
            message=message if isinstance(message, str) else "",
            estimate=_number(data.get("value")),
            interval=interval,
            boundary=boundary,
            needed=needed if isinstance(needed, str) and needed else None,
            advisory=data.get("advisory") is True,
        )

    @classmethod
    def from_result(cls, result: GuardrailResult) -> GuardrailView:
        """The view of a guardrail the controller just judged."""
        return cls.from_mapping(result.to_dict())

    @property
    def estimate_text(self) -> str:
        """The estimate as ``+0.012``, or ``—``."""
        return "—" if self.estimate is None else _fmt(self.estimate)

    @property
    def interval_text(self) -> str:
        """The interval as ``[-0.03, +0.05]``, or ``—``."""
        if self.interval is None:
            return "—"
        return f"[{_fmt(self.interval[0])}, {_fmt(self.interval[1])}]"

    @property
    def bounds(self) -> str:
        """``passes below +0.03, fails above +0`` (finite boundaries only), or ``""``."""
        b = self.boundary or {}
        parts = []
        if (below := b.get("pass_below")) is not None:
            parts.append(f"passes below {_fmt(below)}")
        if (above := b.get("fail_above")) is not None:
            parts.append(f"fails above {_fmt(above)}")
        return ", ".join(parts)

    @property
    def evidence(self) -> str:
        """Estimate, interval and boundaries; the message for a guardrail without interval."""
        if self.interval is None:
            return self.message
        text = f"interval {self.interval_text}"
        if self.estimate is not None:
            text = f"estimate {_fmt(self.estimate)} {text}"
        if self.bounds:
            text += f" ({self.bounds})"
        if self.message.startswith("labels decide"):
            text += " — labels decide"
        return text

    @property
    def line(self) -> str:
        """``name [state] estimate … interval [lo, hi] (passes below …, fails above …); needed``."""
        label = f"{self.state}, advisory" if self.advisory else self.state
        text = f"{self.name} [{label}] {self.evidence}".rstrip()
        return f"{text}; {self.needed}" if self.needed else text


@dataclass(frozen=True)
class StepView:
    """The canary step under way."""

    canary: int
    production: int | None
    weight: int
    ticks: int
    started_at: str
    seconds_at_step: float
    rollout_started_at: str
    seconds_in_rollout: float
    #: The weights the rollout has run, in order, this step's last.
    steps_run: list[int] = field(default_factory=list)

    @property
    def headline(self) -> str:
        ticks = f"{self.ticks} tick{'s' if self.ticks != 1 else ''}"
        against = f" against production v{self.production}" if self.production is not None else ""
        return (
            f"canary v{self.canary} at {self.weight}%{against}: {ticks}, "
            f"{_duration(self.seconds_at_step)} at this step "
            f"({_duration(self.seconds_in_rollout)} since the rollout began)"
        )


@dataclass(frozen=True)
class FailureView:
    """A part of the monitor failing tick after tick (``rollout``, ``drift``…)."""

    where: str
    consecutive: int
    first_at: str
    last_at: str
    error: str
    held: bool
    headline: str

    @classmethod
    def from_mapping(cls, data: Any) -> FailureView:
        """Read one saved failure record; ValueError naming the field when it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a failure record is not an object (got {type(data).__name__})")
        record = TickFailures.from_dict(dict(data))
        return cls(
            where=record.where,
            consecutive=record.consecutive,
            first_at=iso_time(record.first_at),
            last_at=iso_time(record.last_at),
            error=record.error,
            held=record.held,
            headline=record.headline,
        )


@dataclass(frozen=True)
class DecisionView:
    """What the controller decided at its last tick, with its guardrails."""

    action: str
    at: str
    canary: int | None
    from_weight: int
    to_weight: int
    reasons: list[str] = field(default_factory=list)
    guardrails: list[GuardrailView] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, data: Any) -> DecisionView:
        """Read ``last_decision``; ValueError naming the field when it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError(f"last_decision is not an object (got {type(data).__name__})")
        action, guardrails = data.get("action"), data.get("guardrails", [])
        if not isinstance(action, str):
            raise ValueError(f"last_decision has no action (got {action!r})")
        if not isinstance(guardrails, list):
            raise ValueError("last_decision.guardrails is not a list")
        if any(not isinstance(g, Mapping) for g in guardrails):
            raise ValueError("last_decision.guardrails holds an entry that is not an object")
        canary, reasons, at = data.get("canary"), data.get("reasons"), data.get("at")
        return cls(
            action=action,
            at=at if isinstance(at, str) else "",
            canary=canary if isinstance(canary, int) and not isinstance(canary, bool) else None,
            from_weight=int(data.get("from_weight") or 0),
            to_weight=int(data.get("to_weight") or 0),
            reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
            guardrails=[GuardrailView.from_mapping(g) for g in guardrails],
        )

    @property
    def shown(self) -> list[GuardrailView]:
        """The guardrails that were judging (not those turned off)."""
        return [g for g in self.guardrails if g.state != "off"]

    @property
    def why(self) -> list[str]:
        """The reasons besides the guardrails' own messages (e.g. the requests still due)."""
        own = tuple(f"{g.name}: " for g in self.guardrails)
        return [r for r in self.reasons if not r.startswith(own)] if own else self.reasons

    @property
    def headline(self) -> str:
        weights = (
            f"{self.from_weight}% → {self.to_weight}%"
            if self.from_weight != self.to_weight
            else f"{self.to_weight}%"
        )
        who = f" canary v{self.canary} at {weights}" if self.canary is not None else ""
        return f"{self.action}{who}" + (f" ({self.at})" if self.at else "")


def decision_line(
    action: str,
    canary: int | None,
    from_weight: int,
    to_weight: int,
    guardrails: list[GuardrailView],
    numbers: Mapping[str, Any] | None = None,
) -> str:
    """A rollout decision in one short line: what it did, its guardrails counted or named by
    state, the evidence left to their own lines (a decision's reasons repeat it all).

    Examples:
        >>> g = [GuardrailView("errors", "pass", "ok"), GuardrailView("latency", "undecided",
        ...      "insufficient_data"), GuardrailView("live", "unavailable", "unavailable")]
        >>> line = decision_line("insufficient_data", 2, 5, 5, g, {"step_seconds": 63,
        ...     "canary_requests": 263})
        >>> line.split("; ")[0]
        'insufficient_data: canary v2 at 5% after 1m 3s and 263 canary requests'
        >>> line.split("; ")[1:]
        ['guardrails: 1 pass', '1 unavailable', 'undecided: latency']
    """
    weights = f"{from_weight}% → {to_weight}%" if from_weight != to_weight else f"at {to_weight}%"
    line = f"{action}: canary v{canary} {weights}" if canary is not None else action
    numbers = numbers or {}
    seconds, requests = numbers.get("step_seconds"), numbers.get("canary_requests")
    if isinstance(seconds, int | float) and isinstance(requests, int | float):
        line += f" after {_duration(seconds)} and {requests:,.0f} canary requests"
    shown = [g for g in guardrails if g.state != "off"]
    if not shown:
        return line
    # Those that pass or have no evidence are counted; the others named (they decide).
    counts = {state: sum(g.state == state for g in shown) for state in ("pass", "unavailable")}
    named: dict[str, list[str]] = {}
    for g in shown:
        if g.state not in counts:
            named.setdefault(g.state, []).append(g.name + (" (advisory)" if g.advisory else ""))
    parts = [f"{n} {state}" for state, n in counts.items() if n or state == "pass"]
    parts += [f"{state}: {', '.join(names)}" for state, names in named.items()]
    return f"{line}; guardrails: {'; '.join(parts)}"


def reasons_beyond(reasons: list[str], guardrails: list[GuardrailView]) -> list[str]:
    """The reasons of a decision that its guardrails' own lines do not already say: a reason
    quoting a guardrail's message, or only counting the undecided ones, is left out.

    Examples:
        >>> g = [GuardrailView("errors", "undecided", "insufficient_data", "3 of 20 requests")]
        >>> reasons_beyond(["undecided at 10%: 1 guardrail(s)", "errors: 3 of 20 requests",
        ...                 "held at 10% for 30m"], g)
        ['held at 10% for 30m']
    """
    said = [g.message for g in guardrails if g.message]
    return [
        r for r in reasons if not any(m in r for m in said) and not _UNDECIDED_COUNT.fullmatch(r)
    ]


@dataclass(frozen=True)
class RolloutView:
    """The rollout as ``rollout.json`` tells it; ``note`` says why none is shown."""

    state_file: str
    under_way: bool = False
    note: str | None = None
    step: StepView | None = None
    last_decision: DecisionView | None = None
    #: The end-of-horizon policy the monitor applied at its last tick, in one line.
    policy: str | None = None
    #: The parts of the monitor whose ticks fail now, the rollout's first.
    failures: list[FailureView] = field(default_factory=list)

    @property
    def held_by_failures(self) -> FailureView | None:
        """The rollout's own failing ticks, once they hold it (``max_failed_ticks``)."""
        return next((f for f in self.failures if f.held), None)

    @property
    def decision(self) -> DecisionView | None:
        """The last decision when it judged the canary under way (None before its first)."""
        d, step = self.last_decision, self.step
        if d is None or step is None or not self.under_way or d.canary != step.canary:
            return None
        return d

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (each guardrail with its one-line ``line``; lists, no tuples)."""
        data = asdict(self)
        if self.last_decision is not None:
            for g, view in zip(
                data["last_decision"]["guardrails"], self.last_decision.guardrails, strict=True
            ):
                g["line"] = view.line
                g["interval"] = None if view.interval is None else list(view.interval)
        return data


def _load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The file's JSON object, or None with a note saying what is wrong with it."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read {path} ({exc.strerror or exc}); check its permissions"
    except orjson.JSONDecodeError as exc:
        return None, f"{path} is not valid JSON ({exc}); {_REWRITE}"
    if not isinstance(data, dict):
        return None, f"{path} holds a {type(data).__name__}, not an object; {_REWRITE}"
    return data, None


def _not_judged(canary: int | None, why: str) -> str:
    if canary is None:
        return "no rollout is under way"
    return (
        f"no rollout shown: canary v{canary} is deployed but no monitor tick has judged it "
        f"yet ({why}); run `mooring monitor`"
    )


def read_rollout(path: Path, *, canary: int | None, now: float | None = None) -> RolloutView:
    """The rollout under way for the deployment whose canary is ``canary`` (None: none).

    A step saved for another canary than the deployment's (changed since the last
    monitor tick) is not under way. ``now``: seconds since the epoch (default: the clock).
    """
    now = time.time() if now is None else now
    data, problem = _load(path)
    if data is None:
        if problem is None:
            return RolloutView(str(path), note=_not_judged(canary, f"no {path}"))
        return RolloutView(str(path), note=f"no rollout shown: {problem}")
    notes: list[str] = []
    decision = None
    if data.get("last_decision") is not None:
        try:
            decision = DecisionView.from_mapping(data["last_decision"])
        except (TypeError, ValueError, OverflowError) as exc:
            notes.append(f"the last decision in {path} is malformed ({exc}); {_REWRITE}")
    step = None
    raw_step = data.get("step")
    if raw_step is not None:
        try:
            if not isinstance(raw_step, dict):
                raise TypeError(f"step is a {type(raw_step).__name__}, not an object")
            saved = RolloutStep.from_dict(raw_step)
            step = StepView(
                canary=saved.canary,
                production=saved.production,
                weight=saved.weight,
                ticks=saved.ticks,
                started_at=iso_time(saved.started_at),
                seconds_at_step=max(now - saved.started_at, 0.0),
                rollout_started_at=iso_time(saved.rollout_started_at),
                seconds_in_rollout=max(now - saved.rollout_started_at, 0.0),
                steps_run=list(saved.steps_run),
            )
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            why = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            notes.insert(0, f"no rollout shown: {path} has a malformed step ({why}); {_REWRITE}")
    under_way = step is not None and step.canary == canary
    if step is not None and not under_way:
        now_canary = f"canary v{canary}" if canary is not None else "no canary"
        notes.insert(
            0,
            f"no rollout under way: {path} describes canary v{step.canary}, but the "
            f"deployment has {now_canary} now; {_REWRITE}",
        )
    elif raw_step is None:
        notes.insert(0, _not_judged(canary, f"{path} has no step"))
    failures = _failures(data.get("failures"), notes, path)
    policy = data.get("policy")
    return RolloutView(
        str(path),
        under_way=under_way,
        note="; ".join(notes) or None,
        step=step,
        last_decision=decision,
        policy=policy if isinstance(policy, str) and policy else None,
        failures=failures,
    )


def _failures(raw: Any, notes: list[str], path: Path) -> list[FailureView]:
    """The failure records of ``rollout.json``, the rollout's first; a bad one is a note."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        notes.append(f"the failure records in {path} are not an object; {_REWRITE}")
        return []
    out = []
    for part, record in raw.items():
        try:
            out.append(FailureView.from_mapping(record))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            notes.append(f"the failure record {part!r} in {path} is malformed ({exc}); {_REWRITE}")
    return sorted(out, key=lambda f: f.where != "rollout")
