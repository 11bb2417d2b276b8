"""Rewriting the registry's audit log as someone with SQL access but not the key would."""

from __future__ import annotations

from sqlalchemy import create_engine, select, update

from mooring.registry._audit import event_hash
from mooring.registry._sql.tables import audit_events, audit_head


def rewrite_audit(
    db_url: str, key: bytes | None, *, seq: int, actor: str, start: int, end: int | None = None
) -> None:
    """Set event ``seq``'s actor, then recompute the links and hashes of events ``start``
    to ``end`` (default: the last, and then the head too) with ``key`` (None: plain
    sha256), in one transaction."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == seq).values(actor=actor))
        rows = conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings().all()
        prev = next((r["hash"] for r in rows if r["seq"] == start - 1), "0" * 64)
        last = rows[-1]["seq"]
        for row in (r for r in rows if start <= r["seq"] <= (end or last)):
            fields = {
                name: row[name]
                for name in ("created_at", "actor", "action", "version", "reason", "before")
            }
            digest = event_hash(
                **fields,
                model=row["model_name"],
                forced=bool(row["forced"]),
                after=row["after"],
                prev_hash=prev,
                key=key,
            )
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == row["seq"])
                .values(prev_hash=prev, hash=digest)
            )
            prev = digest
        if (end or last) == last:
            conn.execute(update(audit_head).values(hash=prev))
    engine.dispose()


def cut_last_event(db_url: str) -> None:
    """Delete the last event and move the recorded head back to the one before it."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        last = conn.execute(
            select(audit_events.c.seq, audit_events.c.prev_hash)
            .order_by(audit_events.c.seq.desc())
            .limit(1)
        ).one()
        conn.execute(audit_events.delete().where(audit_events.c.seq == last.seq))
        conn.execute(update(audit_head).values(seq=last.seq - 1, hash=last.prev_hash))
    engine.dispose()
