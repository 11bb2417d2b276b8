"""Rewriting the registry's audit log and its tables as someone with SQL access but not
the key would, and reading what ``verify_audit`` says about it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, insert, select, update

from mooring.registry._audit import event_hash
from mooring.registry._records import AuditReport
from mooring.registry._sql.tables import audit_events, audit_head, versions

#: A well-formed audit key as the key file and MOORING_AUDIT_KEY hold it (64 hex digits).
HEX_KEY = "00112233445566778899aabbccddeeff" * 2


def run_sql(db_url: str, *statements: Any) -> None:
    """Run SQLAlchemy statements (Core or ``text``) in one transaction, outside the registry."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    engine.dispose()


def chain_problems(report: AuditReport) -> list[tuple[int, str]]:
    """(seq, kind) of the problems with the chain itself (every kind but ``state``)."""
    return [(p.seq, p.kind) for p in report.problems if p.kind != "state"]


def state_messages(report: AuditReport) -> list[str]:
    """The messages of the ``state`` problems: values in the tables no event explains."""
    return [p.message for p in report.problems if p.kind == "state"]


def rewrite_audit(
    db_url: str,
    key: bytes | None,
    *,
    seq: int,
    start: int,
    end: int | None = None,
    actor: str | None = None,
    after: str | None = None,
) -> None:
    """Set event ``seq``'s actor and/or ``after`` (JSON text), then recompute the links and
    hashes of events ``start`` to ``end`` (default: the last, and then the head too) with
    ``key`` (None: plain sha256), in one transaction. With the registry's own key this
    writes what an older writer would have (an event without a field added since)."""
    changes = {name: value for name, value in (("actor", actor), ("after", after)) if value}
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == seq).values(**changes))
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


def insert_version(db_url: str, name: str, *, like: int, version: int) -> None:
    """Insert version ``version`` of ``name`` by SQL, a copy of version ``like``'s row
    (no event: what someone slipping a model into the registry would do)."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        row = (
            conn.execute(
                select(versions).where(versions.c.model_name == name, versions.c.version == like)
            )
            .mappings()
            .one()
        )
        conn.execute(insert(versions).values({**row, "version": version}))
    engine.dispose()
