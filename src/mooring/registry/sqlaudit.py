"""The audit chain's rows in the database: reading them, and re-signing them with a key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from mooring.errors import IntegrityError
from mooring.registry.audit import GENESIS_HASH, relink_chain, verify_chain
from mooring.registry.records import AuditReport
from mooring.registry.sqltx import WriteTransaction
from mooring.registry.tables import audit_events, audit_head

__all__ = ["adopt_key", "audit_rows", "read_head", "verify_rows"]


def read_head(conn: Connection) -> tuple[int, str]:
    """The recorded head of the chain: (last sequence number, its hash)."""
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().one()
    return int(head["seq"]), str(head["hash"])


def audit_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every audit row, in order, with the columns :func:`verify_chain` reads."""
    return [
        {**dict(r), "model": r["model_name"], "forced": bool(r["forced"])}
        for r in conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings()
    ]


def verify_rows(
    conn: Connection, key: bytes | None, expect_head: tuple[int, str] | None = None
) -> AuditReport:
    """:func:`verify_chain` over the stored rows and head."""
    seq, digest = read_head(conn)
    return verify_chain(
        audit_rows(conn), head_seq=seq, head_hash=digest, key=key, expect_head=expect_head
    )


def adopt_key(tx: WriteTransaction, key: bytes) -> None:
    """Re-sign every event with ``key``, in the transaction ``tx`` (which then appends).

    Refused unless the stored chain is consistent (each event matching its hash,
    keyed or plain, every link and the head in place).
    """
    rows = audit_rows(tx.conn)
    seq, digest = read_head(tx.conn)
    report = verify_chain(rows, head_seq=seq, head_hash=digest, key=key)
    broken = [p.message for p in report.problems if p.kind != "unkeyed"]
    if broken:
        raise IntegrityError(
            "the audit log is broken, so it cannot be re-signed with the key: " + "; ".join(broken)
        )
    last = GENESIS_HASH
    for event, prev, last in relink_chain(rows, key):
        tx.conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == event)
            .values(prev_hash=prev, hash=last)
        )
    tx.hash = last
