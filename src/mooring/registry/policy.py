"""Which version may be deployed: the blessing rule the store enforces in every write."""

from __future__ import annotations

from sqlalchemy import RowMapping

from mooring.errors import ChecksFailedError, ConflictError, UsageError
from mooring.registry.sqltx import loads

__all__ = ["check_deployable"]


def check_deployable(
    row: RowMapping, name: str, version: int, role: str, force: bool, reason: str | None
) -> bool:
    """Raise unless version ``row`` may take ``role``; return True when force was needed.

    A ready, blessed version may; an unblessed one only with ``force`` and a reason (the
    audit log records it); an archived one never.
    """
    if row["status"] != "ready":
        raise ConflictError(
            f"{name}@{version} is archived and cannot become {role}; restore it first "
            f"(Registry.restore) or choose another version"
        )
    if row["blessed"]:
        return False
    if not force:
        gate = loads(row["gate"])
        failed = [
            f"{g.get('name')}={g.get('value')} (bound {g.get('bound')})"
            for g in (gate or {}).get("gates", [])
            if isinstance(g, dict) and not g.get("passed")
        ]
        why = (
            f"failed gates: {', '.join(failed)}"
            if failed
            else ("no gate decision was recorded" if gate is None else "its gate did not bless it")
        )
        raise ChecksFailedError(
            f"{name}@{version} is not blessed ({why}), so it cannot become {role}; fix the "
            "model, or override with force=True and a reason (CLI: --force --reason TEXT)"
        )
    if not (reason and reason.strip()):
        raise UsageError(
            f"forcing unblessed {name}@{version} to {role} needs a reason; pass "
            "reason='…' (CLI: --reason TEXT) so the audit log records why"
        )
    return True
