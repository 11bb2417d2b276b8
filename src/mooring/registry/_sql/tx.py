"""Pieces of the SQL store that are not the store itself: JSON columns, URL masking,
and the write transaction that appends to the audit hash chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from mooring.registry._audit import event_hash
from mooring.registry._manifest import canonical_json
from mooring.registry._sql.tables import audit_events, audit_head

__all__ = ["WriteTransaction", "dumps", "loads", "mask_url", "now"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dumps(data: Any) -> str:
    return canonical_json(data)


def loads(text_value: str | None) -> Any:
    return None if text_value is None else json.loads(text_value)


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***`` (safe to print)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


class WriteTransaction:
    """One write transaction: the connection plus the audit chain's head."""

    def __init__(
        self, conn: Connection, seq: int, head_hash: str, key: bytes | None = None
    ) -> None:
        self.conn = conn
        self.seq = seq
        self.hash = head_hash
        self.key = key

    def audit(
        self,
        *,
        actor: str,
        action: str,
        model: str | None,
        version: int | None,
        reason: str | None,
        forced: bool = False,
        before: Any = None,
        after: Any = None,
    ) -> None:
        fields: dict[str, Any] = {
            "created_at": now(),
            "actor": actor,
            "action": action,
            "model": model,
            "version": version,
            "reason": reason,
            "forced": forced,
            "before": None if before is None else dumps(before),
            "after": None if after is None else dumps(after),
            "prev_hash": self.hash,
        }
        digest = event_hash(**fields, key=self.key)
        self.seq += 1
        fields["model_name"] = fields.pop("model")
        self.conn.execute(insert(audit_events).values(seq=self.seq, hash=digest, **fields))
        self.hash = digest

    def close(self) -> None:
        self.conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=self.seq, hash=self.hash)
        )
