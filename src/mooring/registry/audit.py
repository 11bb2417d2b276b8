"""The audit log's hash chain: how an event is hashed and how the chain is verified.

Each event stores the hash of the event before it; the hash of an event covers
its content and that link. With an audit key (``MOORING_AUDIT_KEY``, or the key file
``mooring init`` writes) the hash is an HMAC-SHA256: someone who can write to the
database but does not hold the key cannot recompute a valid chain after editing it.
Without a key it is a plain sha256, which only catches accidents. Editing a row
breaks its own hash, deleting a row breaks the link of the next one (and the
sequence numbers), and moving a row puts a link out of place. :func:`verify_chain`
names the row in each case. The chain's head (last sequence number and hash) is stored
separately, so a deleted last row is detected too, unless the head is moved back with
it: only a head anchored outside the database (``verify_chain(expect_head=...)``)
catches that.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig
from mooring.errors import UsageError
from mooring.formats.files import atomic_write
from mooring.registry.manifest import canonical_json
from mooring.registry.records import AuditProblem, AuditReport

__all__ = [
    "GENESIS_HASH",
    "KEY_ENV",
    "event_hash",
    "key_file",
    "load_audit_key",
    "parse_head",
    "relink_chain",
    "verify_chain",
]

#: The environment variable holding the audit key (it wins over the key file).
KEY_ENV = "MOORING_AUDIT_KEY"

#: The link of the very first event.
GENESIS_HASH = "0" * 64


def event_hash(
    *,
    created_at: str,
    actor: str,
    action: str,
    model: str | None,
    version: int | None,
    reason: str | None,
    forced: bool,
    before: str | None,
    after: str | None,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 with ``key`` (sha256 without one) over the event's stored fields
    (``before``/``after`` as their stored JSON text).

    The sequence number is deliberately not hashed: order is carried by the links,
    so a moved row is reported as out of order rather than as edited.
    """
    payload = canonical_json(
        [created_at, actor, action, model, version, reason, bool(forced), before, after, prev_hash]
    ).encode()
    if key is not None:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()


def key_file(cfg: MooringConfig) -> Path:
    """Where a project keeps its audit key: ``[project] audit_key_file``, else
    ``<home>/audit.key``."""
    given = cfg.project.audit_key_file
    return cfg.path(given) if given else cfg.home / "audit.key"


def load_audit_key(path: Path | None, *, create: bool) -> bytes | None:
    """The audit key: ``MOORING_AUDIT_KEY`` if set, else the key file at ``path``.

    A missing key file is created (32 random bytes as hex, mode 0600, written
    atomically) when ``create`` is true; otherwise there is no key.
    """
    given = os.environ.get(KEY_ENV)
    if given:
        if len(given) < 16:
            raise UsageError(
                f"{KEY_ENV} is {len(given)} characters; use a random secret of at least 16 "
                "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        return given.encode()
    if path is None:
        return None
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (secrets.token_hex(32) + "\n").encode())  # mode 0600 (mkstemp)
    try:
        return bytes.fromhex(path.read_text(encoding="utf-8").strip())
    except ValueError:
        raise UsageError(
            f"the audit key file '{path}' does not hold a hex key; restore it from a backup "
            f"(without the key the audit log cannot be verified), or set {KEY_ENV}"
        ) from None


def parse_head(text: str) -> tuple[int, str]:
    """``"SEQ:HASH"`` (as ``mooring audit head`` prints it) → (seq, hash).

    >>> parse_head("12:" + "ab" * 32)[0]
    12
    """
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(
            f"expected head {text!r} to look like SEQ:HASH (64 hex digits), as "
            "`mooring audit head` prints it"
        )
    return int(seq), digest


def relink_chain(rows: Sequence[dict[str, Any]], key: bytes | None) -> list[tuple[int, str, str]]:
    """(seq, prev_hash, hash) of ``rows`` re-chained with ``key`` (sha256 without), in order."""
    out = []
    prev = GENESIS_HASH
    for row in rows:
        digest = event_hash(**_fields(row, prev), key=key)
        out.append((row["seq"], prev, digest))
        prev = digest
    return out


def _fields(row: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    return {
        "created_at": row["created_at"],
        "actor": row["actor"],
        "action": row["action"],
        "model": row["model"],
        "version": row["version"],
        "reason": row["reason"],
        "forced": row["forced"],
        "before": row["before"],
        "after": row["after"],
        "prev_hash": prev_hash,
    }


def verify_chain(
    rows: Sequence[dict[str, Any]],
    *,
    head_seq: int,
    head_hash: str,
    key: bytes | None = None,
    expect_head: tuple[int, str] | None = None,
) -> AuditReport:
    """Check stored audit rows (ordered by ``seq``) against their hashes and links.

    ``rows`` carry the stored columns: seq, created_at, actor, action, model,
    version, reason, forced, before, after (JSON text), prev_hash, hash. With ``key``
    every event must carry its HMAC; an event that only matches a plain sha256 was
    written without the key (or rewritten by someone without it). ``expect_head``
    (seq, hash), anchored elsewhere earlier, must still be in the chain.
    """
    problems: list[AuditProblem] = []
    position = {row["hash"]: row["seq"] for row in rows}
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for row in rows:
        seq = row["seq"]
        recomputed = event_hash(**_fields(row, row["prev_hash"]), key=key)
        if (
            recomputed != row["hash"]
            and key is not None
            and (event_hash(**_fields(row, row["prev_hash"])) == row["hash"])
        ):
            problems.append(
                AuditProblem(
                    seq,
                    "unkeyed",
                    f"audit event {seq} ({row['action']}) does not carry the audit key's HMAC: "
                    "it was written without the key or rewritten by someone without it; if "
                    "this registry predates keyed audit and the log is as you expect, run "
                    "`mooring audit adopt-key` once",
                )
            )
        elif recomputed != row["hash"]:
            problems.append(
                AuditProblem(
                    seq,
                    "edited",
                    f"audit event {seq} ({row['action']}) was edited: its content no longer "
                    "matches its recorded hash",
                )
            )
        if seq > expected_seq:
            gap = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            problems.append(
                AuditProblem(
                    seq,
                    "deleted",
                    f"audit event(s) {gap} before event {seq} were deleted",
                )
            )
        elif row["prev_hash"] != expected_prev:
            linked = position.get(row["prev_hash"])
            if linked is not None and linked != seq:
                problems.append(
                    AuditProblem(
                        seq,
                        "reordered",
                        f"audit event {seq} is out of order: it was written after the event now "
                        f"at {linked}",
                    )
                )
            else:
                problems.append(
                    AuditProblem(
                        seq,
                        "deleted",
                        f"audit event {seq} does not follow the event before it: an event "
                        "between them was deleted or rewritten",
                    )
                )
        expected_prev = row["hash"]
        expected_seq = seq + 1
    last_seq = rows[-1]["seq"] if rows else 0
    last_hash = rows[-1]["hash"] if rows else GENESIS_HASH
    if head_seq > last_seq:
        problems.append(
            AuditProblem(
                last_seq + 1,
                "deleted",
                f"audit event(s) {last_seq + 1}-{head_seq} at the end of the log were deleted",
            )
        )
    elif head_seq < last_seq:
        problems.append(
            AuditProblem(
                head_seq + 1,
                "edited",
                f"audit event(s) {head_seq + 1}-{last_seq} were added outside the registry "
                f"(the recorded head of the chain is event {head_seq})",
            )
        )
    elif head_hash != last_hash:
        problems.append(
            AuditProblem(
                last_seq,
                "edited",
                f"audit event {last_seq} does not match the recorded head of the chain",
            )
        )
    if expect_head is not None:
        seq, digest = expect_head
        found = next((row for row in rows if row["seq"] == seq), None)
        if found is None or found["hash"] != digest:
            problems.append(
                AuditProblem(
                    seq,
                    "deleted" if found is None else "edited",
                    f"the anchored head {seq}:{digest[:12]}… is not in the chain "
                    + (
                        "(the log was cut short before it)"
                        if found is None
                        else f"(event {seq} now hashes to {found['hash'][:12]}…)"
                    ),
                )
            )
    return AuditReport(
        events=len(rows), head_seq=head_seq, problems=tuple(problems), keyed=key is not None
    )
