"""The webhook cursors in the database: how far each receiver of the audit events has got.

A cursor only moves forward (an older writer finishing late cannot move it back), so two
processes delivering to the same receiver at once send some events twice, never skip one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from mooring.registry._sql.tables import audit_events, webhook_cursors
from mooring.registry._sql.tx import now

__all__ = ["cursor_of", "events_after", "move_cursor", "note_failure"]


def cursor_of(conn: Connection, receiver: str) -> tuple[int, int, str | None]:
    """``receiver``'s cursor: (last acknowledged seq, failures since, last error); a
    receiver never seen starts at 0 (it gets the whole log)."""
    row = conn.execute(
        select(webhook_cursors).where(webhook_cursors.c.receiver == receiver)
    ).first()
    if row is None:
        return 0, 0, None
    return int(row.seq), int(row.failures), row.last_error


def events_after(conn: Connection, seq: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` stored audit rows after ``seq``, in order, with every column (the
    hashed ``before``/``after`` as their stored JSON text)."""
    rows = conn.execute(
        select(audit_events)
        .where(audit_events.c.seq > seq)
        .order_by(audit_events.c.seq)
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def _ensure(conn: Connection, receiver: str) -> None:
    exists = conn.execute(
        select(webhook_cursors.c.seq).where(webhook_cursors.c.receiver == receiver)
    ).first()
    if exists is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(webhook_cursors).values(
                        receiver=receiver, seq=0, updated_at=now(), failures=0, last_error=None
                    )
                )
        except IntegrityError:  # another process created it first
            pass


def move_cursor(conn: Connection, receiver: str, seq: int) -> None:
    """Record that ``receiver`` acknowledged every event up to ``seq`` (never backwards)."""
    _ensure(conn, receiver)
    conn.execute(
        update(webhook_cursors)
        .where(webhook_cursors.c.receiver == receiver, webhook_cursors.c.seq < seq)
        .values(seq=seq, updated_at=now(), failures=0, last_error=None)
    )


def note_failure(conn: Connection, receiver: str, attempts: int, error: str) -> None:
    """Record ``attempts`` more failed deliveries of the event after ``receiver``'s cursor."""
    _ensure(conn, receiver)
    conn.execute(
        update(webhook_cursors)
        .where(webhook_cursors.c.receiver == receiver)
        .values(
            failures=webhook_cursors.c.failures + attempts,
            last_error=error[:2000],
            updated_at=now(),
        )
    )
