"""Which versions were rolled back, from the audit log, and the refusal to promote one.

A version is rolled back by an event that took it out of production or canary for being
unhealthy: ``mooring models rollback`` (production back to the previous version), or a
deployment that drops it as canary with a reason saying it was rolled back (the rollout
controller's ``canary income@3 rolled back at 5%: …``). A version deployed again after
that (as canary, shadow or production, deliberately) is no longer taken as rolled back.
Promoting one still rolled back needs ``force`` and a reason, which the audit log keeps.

Examples:
    >>> rolled_back([], 3) is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mooring.errors import ConflictError, UsageError
from mooring.registry._records import AuditEvent

__all__ = ["check_not_rolled_back", "rolled_back"]

_ROLLED_BACK = re.compile(r"\broll(?:ed|ing)?[ -]?back\b", re.IGNORECASE)
#: The longest share of the rollback's reason a refusal quotes.
_REASON_CHARS = 300


def _role(state: Mapping[str, Any] | None, role: str) -> int | None:
    value = state.get(role) if isinstance(state, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rolls_back(event: AuditEvent, version: int) -> bool:
    """True when ``event`` rolled ``version`` back (from production or as canary)."""
    before, after = event.before, event.after
    if event.action == "rollback":
        return _role(before, "production") == version != _role(after, "production")
    was_canary = _role(before, "canary") == version != _role(after, "canary")
    return was_canary and bool(_ROLLED_BACK.search(event.reason or ""))


def rolled_back(events: Sequence[AuditEvent], version: int) -> AuditEvent | None:
    """The event that rolled ``version`` back, unless it was deployed again since.

    ``events`` oldest first, as :meth:`Registry.history` gives them.
    """
    found = None
    for event in events:
        if _rolls_back(event, version):
            found = event
            continue
        for role in ("production", "canary", "shadow"):
            now = _role(event.after, role)
            if now == version and now != _role(event.before, role):
                found = None  # deployed again, deliberately (a shadow is judged again too)
    return found


def check_not_rolled_back(
    name: str, version: int, events: Sequence[AuditEvent], force: bool, reason: str | None
) -> tuple[str | None, bool]:
    """Refuse to promote a rolled-back version unless forced with a reason.

    Returns the reason to record (saying what was overridden) and whether force was
    needed.
    """
    event = rolled_back(events, version)
    if event is None:
        return reason, False
    weight = event.before.get("weight") if isinstance(event.before, Mapping) else None
    role = "production" if event.action == "rollback" else "canary"
    at = f" at {weight}%" if role == "canary" and isinstance(weight, int | float) else ""
    why = " ".join((event.reason or "no reason recorded").split())
    if len(why) > _REASON_CHARS:
        why = why[: _REASON_CHARS - 1].rstrip() + "…"
    what = (
        f"{name}@{version} was rolled back as {role}{at} by {event.actor} at "
        f"{event.created_at} (audit event {event.seq}): {why}"
    )
    if not force:
        raise ConflictError(
            f"{what}. Promoting it would put back what was taken out; deploy it as canary "
            f"again to let the monitor judge it (mooring models deploy {name} -p PRODUCTION "
            f"--canary {version} -w 5), or override with force=True and a reason "
            "(CLI: --force -r REASON)"
        )
    if not (reason and reason.strip()):
        raise UsageError(
            f"forcing {name}@{version}, which was rolled back, to production needs a reason "
            f"({what}); pass reason='…' (CLI: -r REASON) so the audit log records why"
        )
    return f"{reason} [promoted although: {what}]", True
