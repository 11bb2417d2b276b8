"""The audit chain's rows in the database: reading them for verification and for writers,
and the registry's tables as the state check (:mod:`mooring.registry._audit_state`) reads them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Row, select

from mooring.errors import IntegrityError
from mooring.registry._audit import chain_key, verify_chain
from mooring.registry._audit_state import StoredState, state_problems
from mooring.registry._manifest import canonical_json
from mooring.registry._records import AuditEvent, AuditReport
from mooring.registry._sql.rows import audit_event
from mooring.registry._sql.tables import (
    aliases,
    audit_events,
    audit_head,
    deployments,
    version_artifacts,
    versions,
)

__all__ = [
    "audit_rows",
    "head_row",
    "lock_head",
    "read_head",
    "require_head",
    "select_events",
    "stored_state",
    "verify_rows",
]

_MISSING_HEAD = (
    "the audit chain's recorded head (table audit_head, row id 1) is missing: it was deleted "
    "outside the registry; {what}; run `mooring audit verify` for what else changed and how "
    "to put the row back"
)


def read_head(conn: Connection) -> tuple[int, str] | None:
    """The recorded head of the chain: (last sequence number, its hash); None when its row
    is gone (verification reports it)."""
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().first()
    return None if head is None else (int(head["seq"]), str(head["hash"]))


def require_head(conn: Connection) -> tuple[int, str]:
    """:func:`read_head`, for those that cannot go on without it.

    Raises:
        IntegrityError: the head's row is missing.
    """
    head = read_head(conn)
    if head is None:
        raise IntegrityError(_MISSING_HEAD.format(what="there is no head to print"))
    return head


def lock_head(conn: Connection) -> Row[Any]:
    """The head's row (seq, hash), locked for this write transaction.

    Raises:
        IntegrityError: the row is missing (nothing is written).
    """
    head = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).first()
    if head is None:
        raise IntegrityError(_MISSING_HEAD.format(what="nothing was written"))
    return head


def _row(r: Any) -> dict[str, Any]:
    return {**dict(r), "model": r["model_name"], "forced": bool(r["forced"])}


def audit_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every audit row, in order, with the columns :func:`verify_chain` reads."""
    return [
        _row(r) for r in conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings()
    ]


def head_row(conn: Connection, seq: int) -> dict[str, Any] | None:
    """The stored row of event ``seq`` (the head's), as :func:`audit_rows` gives it;
    None for an empty log or a missing row (which verification reports)."""
    if seq == 0:
        return None
    found = conn.execute(select(audit_events).where(audit_events.c.seq == seq)).mappings().first()
    return None if found is None else _row(found)


def _manifest_matches(text: str, digest: str) -> bool:
    """The stored manifest still hashes to the version's manifest_sha256."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return hashlib.sha256(canonical_json(data).encode()).hexdigest() == digest


def stored_state(conn: Connection) -> StoredState:
    """The versions, deployments, aliases and attached artifacts the tables hold now."""
    held = {
        (r["model_name"], int(r["version"])): {
            "manifest_sha256": r["manifest_sha256"],
            "blessed": bool(r["blessed"]),
            "artifact_key": r["artifact_key"],
            "status": r["status"],
            "manifest_matches": _manifest_matches(r["manifest"], r["manifest_sha256"]),
        }
        for r in conn.execute(select(versions)).mappings()
    }
    deployed = {
        r["model_name"]: {
            "production": r["production_version"],
            "canary": r["canary_version"],
            "weight": r["canary_weight"],
            "shadow": r["shadow_version"],
            "shadow_rate": float(r["shadow_rate"] or 0.0),
        }
        for r in conn.execute(select(deployments)).mappings()
    }
    pointed = {
        (r.model_name, r.alias): int(r.version)
        for r in conn.execute(select(aliases.c.model_name, aliases.c.alias, aliases.c.version))
    }
    attached = {
        (r["model_name"], int(r["version"]), r["artifact"]): {
            "manifest_sha256": r["manifest_sha256"],
            "artifact_key": r["artifact_key"],
            "manifest_matches": _manifest_matches(r["manifest"], r["manifest_sha256"]),
        }
        for r in conn.execute(select(version_artifacts)).mappings()
    }
    return StoredState(versions=held, deployments=deployed, aliases=pointed, attached=attached)


def verify_rows(
    conn: Connection, keys: Sequence[bytes], expect_head: tuple[int, str] | None = None
) -> AuditReport:
    """:func:`verify_chain` over the stored rows and head (with the candidate key whose HMAC
    the log carries), then the tables against what the events explain."""
    rows = audit_rows(conn)
    head = read_head(conn)
    report = verify_chain(
        rows,
        head_seq=None if head is None else head[0],
        head_hash=None if head is None else head[1],
        key=chain_key(rows, keys),
        expect_head=expect_head,
    )
    state = state_problems(rows, stored_state(conn))
    return replace(report, problems=(*report.problems, *state))


def select_events(conn: Connection, name: str | None, limit: int | None) -> list[AuditEvent]:
    """Audit events, oldest first: the last ``limit`` of them, of model ``name`` if given."""
    query = select(audit_events).order_by(audit_events.c.seq.desc())
    if name is not None:
        query = query.where(audit_events.c.model_name == name)
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).mappings().all()
    return [audit_event(r) for r in reversed(rows)]
