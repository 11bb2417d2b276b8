"""What the versions table says about each version beyond its metrics: its kind and marks.

A version's **kind** is the model family its registration recorded
(:attr:`~mooring.formats._version_record.VersionRecord.kind`: the run record's ``kind``,
as ``mooring run`` records it, else the parameters', else the lineage's), never a guess:
a version registered by hand (an imported SavedModel) without one reads ``not recorded``.
Only mooring's own MLP parameters from before kinds were recorded (``hidden`` layers,
``builder = "mlp"``) still read ``mlp``.

Its **marks** come from the registry's audit log: ``rolled back`` when it was taken
out of production by a rollback (``mooring models rollback``, the dashboard) or out
of the canary by a change whose reason says it was rolled back (the rollout
controller, actor ``mooring-monitor``: "canary income@2 rolled back at 20%: …") and
was not deployed again since; ``archived`` while its status is archived. Each mark
says when, by whom and why.

Examples:
    >>> recorded_kind({"kind": "gbt", "candidate": "trees"})
    'gbt (trees)'
    >>> recorded_kind({}, {"pipeline_run": "r1"})
    'not recorded'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mooring.formats._version_record import recorded_candidate, recorded_family

if TYPE_CHECKING:
    from mooring.registry import ModelVersion
    from mooring.registry._records import AuditEvent

__all__ = ["NOT_RECORDED", "Mark", "kind_of", "model_kind", "recorded_kind", "version_marks"]

#: The kind shown for a version whose registration recorded none.
NOT_RECORDED = "not recorded"

_ROLLED_BACK = re.compile(r"\broll(?:ed|ing)?[ -]?back\b", re.IGNORECASE)


def model_kind(*sources: Mapping[str, Any] | None) -> str:
    """The model kind the first source that records one names (``not recorded`` if none).

    >>> model_kind({"hidden": [8]}), model_kind({}, {"kind": "gbt"}), model_kind(None)
    ('mlp', 'gbt', 'not recorded')
    """
    return recorded_family(*sources) or NOT_RECORDED


def recorded_kind(*sources: Mapping[str, Any] | None) -> str:
    """:func:`model_kind`, with the candidate's name when a run of several chose it.

    >>> recorded_kind({"kind": "linear", "candidate": "linear"})
    'linear'
    """
    return _labelled(recorded_family(*sources), recorded_candidate(*sources))


def kind_of(mv: ModelVersion) -> str:
    """The version's model kind as registered, with the candidate a run of several chose."""
    return _labelled(mv.record.kind, mv.record.candidate)


def _labelled(kind: str | None, candidate: str | None) -> str:
    shown = kind or NOT_RECORDED
    return shown if not candidate or candidate == shown else f"{shown} ({candidate})"


@dataclass(frozen=True)
class Mark:
    """Something that happened to a version: what, when (UTC), by whom and why."""

    label: str  # "rolled back" | "archived"
    at: str
    actor: str
    reason: str
    change: str

    @property
    def when(self) -> str:
        """``YYYY-MM-DD HH:MM:SS`` (UTC), or ``at an unrecorded time``."""
        return self.at[:19].replace("T", " ") if self.at else "at an unrecorded time"

    @property
    def css(self) -> str:
        """The mark's class name: ``rolled-back`` or ``archived``."""
        return self.label.replace(" ", "-")


def _role(state: Mapping[str, Any] | None, role: str) -> int | None:
    value = state.get(role) if isinstance(state, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rolled_back(event: AuditEvent) -> tuple[int, str] | None:
    """The version an event rolled back and the change in words, if it rolled one back."""
    production = _role(event.before, "production")
    after_production = _role(event.after, "production")
    canary = _role(event.before, "canary")
    said = bool(_ROLLED_BACK.search(event.reason or ""))
    replaced = production is not None and production != after_production
    if production is not None and replaced and (event.action == "rollback" or said):
        restored = f"v{after_production}" if after_production is not None else "none"
        return production, f"production v{production} → {restored}"
    if canary is not None and canary != _role(event.after, "canary") and said:
        weight = event.before.get("weight") if isinstance(event.before, Mapping) else None
        at = f" at {weight}%" if isinstance(weight, int | float) else ""
        return canary, f"canary v{canary}{at} removed"
    return None


def version_marks(
    versions: Sequence[ModelVersion], events: Sequence[AuditEvent]
) -> dict[int, list[Mark]]:
    """Each version's marks (rolled back, archived), from its status and the audit log.

    ``events`` oldest first, as :meth:`Registry.history` returns them. A version deployed
    again after its rollback is no longer marked rolled back.
    """
    rolled: dict[int, Mark] = {}
    archived: dict[int, Mark] = {}
    for event in events:
        for role in ("production", "canary"):
            now = _role(event.after, role)
            if now is not None and now != _role(event.before, role):
                rolled.pop(now, None)  # deployed again
        found = _rolled_back(event)
        if found is not None:
            version, change = found
            rolled[version] = Mark(
                "rolled back", event.created_at, event.actor, event.reason or "", change
            )
        if event.action == "archive" and event.version is not None:
            archived[event.version] = Mark(
                "archived", event.created_at, event.actor, event.reason or "", "status archived"
            )
    marks: dict[int, list[Mark]] = {}
    for mv in versions:
        found_marks = [rolled[mv.version]] if mv.version in rolled else []
        if mv.status == "archived":
            found_marks.append(
                archived.get(mv.version, Mark("archived", "", "", "", "status archived"))
            )
        if found_marks:
            marks[mv.version] = found_marks
    return marks
