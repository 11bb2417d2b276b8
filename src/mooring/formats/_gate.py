"""A gate decision's JSON form, typed, as every layer reads it.

Evaluation writes it (:class:`DecisionRecord`, ``{"blessed", "gates", "warnings",
"defaults", "ungated"}``, each gate a :class:`GateRecord`), the registry stores it with a
version and refuses to deploy a version it did not bless, and the pipeline, the CLI and
the dashboard show it.

A version is *ungated* when no gate judged it: it is not blessed and every recorded gate
(if any) was skipped. Records written before the ``ungated`` key existed are read the
same way, from ``blessed`` and their gates, so the registry's schema is unchanged.

:meth:`DecisionRecord.read` reads any stored mapping without raising: a key it lacks reads
as its default, a key it does not know or whose value has the wrong type is kept as it
was (``extra``), and :meth:`DecisionRecord.to_dict` writes back the mapping it read.

Examples:
    >>> verdict({"blessed": False, "gates": []})
    'ungated'
    >>> verdict({"blessed": False, "gates": [{"name": "auc", "passed": False}]})
    'not blessed'
    >>> verdict(None)
    'unevaluated'
    >>> old = DecisionRecord.read({"blessed": True, "gates": [{"name": "auc", "passed": True}]})
    >>> old.gates[0].name, old.gates[0].skipped, old.defaults
    ('auc', False, False)
    >>> old.to_dict()
    {'blessed': True, 'gates': [{'name': 'auc', 'passed': True}]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mooring.formats._stored import (
    Check,
    is_bool,
    is_optional_number,
    is_optional_text,
    is_text,
    is_texts,
    read_fields,
    write_fields,
)

__all__ = [
    "UNGATED",
    "DecisionRecord",
    "GateRecord",
    "Verdict",
    "is_ungated",
    "judged_gates",
    "verdict",
]

Verdict = Literal["blessed", "not blessed", "ungated", "unevaluated"]
#: How a version no gate judged is described, everywhere it is shown.
UNGATED = "ungated: no gate judged it"


def _anything(value: Any) -> bool:
    return True


_GATE_CHECKS: dict[str, Check] = {
    "name": is_text,
    "metric": is_text,
    "slice": is_optional_text,
    "kind": is_text,
    "value": is_optional_number,
    "bound": _anything,
    "passed": is_bool,
    "message": is_text,
    "skipped": is_bool,
    "baseline": is_optional_number,
    "diff": is_optional_number,
    "default": is_bool,
    "waived": is_optional_text,
}


@dataclass(frozen=True)
class GateRecord:
    """One gate's recorded outcome: its ``name``, the ``metric`` and ``slice`` it judged,
    its ``kind`` (``value``, ``change`` or ``baseline``), the ``value`` measured, the
    ``bound`` it was held to, whether it ``passed`` or was ``skipped`` (a skipped gate
    passes without judging), its ``message``, the ``baseline`` value and ``diff`` of a
    change gate, whether it is one of the ``default`` gates, and the reason it was
    ``waived`` (a failed change gate, waived for a reason, passes).

    Examples:
        >>> gate = GateRecord.read({"name": "auc", "passed": False, "why": "low"})
        >>> gate.passed, gate.judged, gate.extra
        (False, True, {'why': 'low'})
    """

    name: str = ""
    metric: str = ""
    slice: str | None = None
    kind: str = "value"
    value: float | None = None
    bound: Any = None
    passed: bool = False
    message: str = ""
    skipped: bool = False
    baseline: float | None = None
    diff: float | None = None
    default: bool = False
    #: Why a failed gate that compares with production was waived (``mooring run
    #: --waive-change -r REASON``); it then passes, its values kept. ``None``: not waived.
    waived: str | None = None
    #: Keys read that are not fields, or were of the wrong type, as they were stored.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The fields the stored mapping lacked (left out again on writing); ``None`` (a gate
    #: made, not read): ``waived`` when it was not.
    missing: frozenset[str] | None = None

    @classmethod
    def read(cls, data: Mapping[Any, Any]) -> GateRecord:
        """The gate of a stored mapping, never raising."""
        typed, extra, missing = read_fields(data, _GATE_CHECKS)
        return cls(**typed, extra=extra, missing=missing)

    @property
    def judged(self) -> bool:
        """It passed or failed (it was not skipped)."""
        return not self.skipped

    def finite(self) -> GateRecord:
        """This gate with NaN and infinities as ``None`` in its numbers and bound (JSON
        has neither), as a decision records it.

        Examples:
            >>> GateRecord(value=float("nan"), bound={"upper": float("inf")}).finite().bound
            {'upper': None}
        """
        return replace(
            self,
            value=_finite(self.value),
            bound=_finite(self.bound),
            baseline=_finite(self.baseline),
            diff=_finite(self.diff),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping (:meth:`read`'s input, for any mapping it read)."""
        values = {name: getattr(self, name) for name in _GATE_CHECKS}
        missing = self.missing
        if missing is None:
            missing = frozenset() if self.waived else frozenset({"waived"})
        return write_fields(values, self.extra, missing)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None``, in mappings and lists too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _is_gates(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(g, Mapping) for g in value)


_DECISION_CHECKS: dict[str, Check] = {
    "blessed": is_bool,
    "gates": _is_gates,
    "warnings": is_texts,
    "defaults": is_bool,
    "ungated": is_bool,
}


@dataclass(frozen=True)
class DecisionRecord:
    """A recorded gate decision: ``blessed`` or not, every gate's outcome, the warnings,
    whether the ``defaults`` gates judged, and whether it is ``ungated`` (no gate judged;
    derived from the rest for records older than the key).

    Examples:
        >>> DecisionRecord.read({"blessed": False}).ungated
        True
        >>> DecisionRecord(blessed=True, gates=(GateRecord(name="auc", passed=True),)).verdict
        'blessed'
    """

    blessed: bool = False
    gates: tuple[GateRecord, ...] = ()
    warnings: tuple[str, ...] = ()
    defaults: bool = False
    ungated: bool = False
    #: Keys read that are not fields, or were of the wrong type, as they were stored.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The fields the stored mapping lacked (left out again on writing).
    missing: frozenset[str] = frozenset()

    @classmethod
    def read(cls, data: Mapping[Any, Any]) -> DecisionRecord:
        """The decision of a stored mapping, never raising."""
        typed, extra, missing = read_fields(data, _DECISION_CHECKS)
        gates = tuple(GateRecord.read(g) for g in typed.pop("gates", ()))
        blessed = bool(typed.pop("blessed", False))
        ungated = typed.pop("ungated", None)
        if ungated is None:
            ungated = not blessed and not any(g.judged for g in gates)
        return cls(
            blessed=blessed,
            gates=gates,
            warnings=tuple(typed.pop("warnings", ())),
            ungated=ungated,
            **typed,
            extra=extra,
            missing=missing,
        )

    @classmethod
    def of(cls, decision: object) -> DecisionRecord | None:
        """``decision`` typed: a record as it is, a stored mapping read, anything else
        ``None`` (no decision recorded)."""
        if isinstance(decision, DecisionRecord):
            return decision
        return cls.read(decision) if isinstance(decision, Mapping) else None

    @classmethod
    def judging(
        cls, gates: Sequence[GateRecord], *, warnings: Sequence[str] = (), defaults: bool = False
    ) -> DecisionRecord:
        """The decision ``gates`` make: blessed when at least one judged and none failed;
        ungated when none judged. Numbers that are NaN or infinite are recorded as ``None``.

        Examples:
            >>> DecisionRecord.judging([GateRecord(name="auc", passed=True)]).verdict
            'blessed'
            >>> DecisionRecord.judging([GateRecord(passed=True, skipped=True)]).verdict
            'ungated'
        """
        finite = tuple(g.finite() for g in gates)
        judged = any(g.judged for g in finite)
        return cls(
            blessed=judged and all(g.passed for g in finite),
            gates=finite,
            warnings=tuple(warnings),
            defaults=defaults,
            ungated=not judged,
        )

    def warned(self, warning: str) -> DecisionRecord:
        """This decision with ``warning`` added to its warnings."""
        return replace(self, warnings=(*self.warnings, warning))

    @property
    def judged(self) -> list[GateRecord]:
        """The gates that judged (passed or failed), leaving out the skipped ones."""
        return [g for g in self.gates if g.judged]

    @property
    def failures(self) -> list[GateRecord]:
        """The gates that did not pass."""
        return [g for g in self.gates if not g.passed]

    @property
    def skipped(self) -> list[GateRecord]:
        """The gates that were skipped."""
        return [g for g in self.gates if g.skipped]

    @property
    def waived(self) -> list[GateRecord]:
        """The gates that failed and were waived for a reason (they pass)."""
        return [g for g in self.gates if g.waived]

    @property
    def is_ungated(self) -> bool:
        """Not blessed, and no gate judged it."""
        return not self.blessed and self.ungated

    @property
    def verdict(self) -> Verdict:
        """``blessed``, ``not blessed`` (a gate failed) or ``ungated``."""
        if self.blessed:
            return "blessed"
        return "ungated" if self.is_ungated else "not blessed"

    def to_dict(self) -> dict[str, Any]:
        """The stored mapping (:meth:`read`'s input, for any mapping it read)."""
        values = {
            "blessed": self.blessed,
            "gates": [g.to_dict() for g in self.gates],
            "warnings": list(self.warnings),
            "defaults": self.defaults,
            "ungated": self.ungated,
        }
        return write_fields(values, self.extra, self.missing)


Decision = DecisionRecord | Mapping[str, Any] | None


def judged_gates(decision: Decision) -> list[GateRecord]:
    """The recorded gates that judged (passed or failed), leaving out the skipped ones."""
    record = DecisionRecord.of(decision)
    return [] if record is None else record.judged


def is_ungated(decision: Decision) -> bool:
    """True when a decision exists, did not bless, and no gate judged (all skipped or none)."""
    record = DecisionRecord.of(decision)
    return record is not None and record.is_ungated


def verdict(decision: Decision) -> Verdict:
    """``blessed``, ``not blessed`` (a gate failed), ``ungated``, or ``unevaluated`` (no
    decision: registered without mooring's evaluation)."""
    record = DecisionRecord.of(decision)
    return "unevaluated" if record is None else record.verdict
