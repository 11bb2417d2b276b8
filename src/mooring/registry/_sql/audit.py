"""The audit chain's rows in the database: reading them for verification and for writers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from mooring.registry._audit import verify_chain
from mooring.registry._records import AuditEvent, AuditReport
from mooring.registry._sql.rows import audit_event
from mooring.registry._sql.tables import audit_events, audit_head

__all__ = ["audit_rows", "head_row", "read_head", "select_events", "verify_rows"]


def read_head(conn: Connection) -> tuple[int, str]:
    """The recorded head of the chain: (last sequence number, its hash)."""
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().one()
    return int(head["seq"]), str(head["hash"])


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


def verify_rows(
    conn: Connection, key: bytes | None, expect_head: tuple[int, str] | None = None
) -> AuditReport:
    """:func:`verify_chain` over the stored rows and head."""
    seq, digest = read_head(conn)
    return verify_chain(
        audit_rows(conn), head_seq=seq, head_hash=digest, key=key, expect_head=expect_head
    )


def select_events(conn: Connection, name: str | None, limit: int | None) -> list[AuditEvent]:
    """Audit events, oldest first: the last ``limit`` of them, of model ``name`` if given."""
    query = select(audit_events).order_by(audit_events.c.seq.desc())
    if name is not None:
        query = query.where(audit_events.c.model_name == name)
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).mappings().all()
    return [audit_event(r) for r in reversed(rows)]
