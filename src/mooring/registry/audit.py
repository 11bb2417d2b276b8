"""The audit log's hash chain: how an event is hashed and how the chain is verified.

Each event stores the hash of the event before it; the hash of an event covers
its content and that link. Editing a row breaks its own hash, deleting a row
breaks the link of the next one (and the sequence numbers), and moving a row
puts a link out of place. :func:`verify_chain` names the row in each case.
The chain's head (last sequence number and hash) is stored separately, so a
deleted last row is detected too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from mooring.registry.manifest import canonical_json
from mooring.registry.records import AuditProblem, AuditReport

__all__ = ["GENESIS_HASH", "event_hash", "verify_chain"]

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
) -> str:
    """sha256 over the event's stored fields (``before``/``after`` as their stored JSON text).

    The sequence number is deliberately not hashed: order is carried by the links,
    so a moved row is reported as out of order rather than as edited.
    """
    payload = canonical_json(
        [created_at, actor, action, model, version, reason, bool(forced), before, after, prev_hash]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def verify_chain(rows: Sequence[dict[str, Any]], *, head_seq: int, head_hash: str) -> AuditReport:
    """Check stored audit rows (ordered by ``seq``) against their hashes and links.

    ``rows`` carry the stored columns: seq, created_at, actor, action, model,
    version, reason, forced, before, after (JSON text), prev_hash, hash.
    """
    problems: list[AuditProblem] = []
    position = {row["hash"]: row["seq"] for row in rows}
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for row in rows:
        seq = row["seq"]
        recomputed = event_hash(
            created_at=row["created_at"],
            actor=row["actor"],
            action=row["action"],
            model=row["model"],
            version=row["version"],
            reason=row["reason"],
            forced=row["forced"],
            before=row["before"],
            after=row["after"],
            prev_hash=row["prev_hash"],
        )
        if recomputed != row["hash"]:
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
    return AuditReport(events=len(rows), head_seq=head_seq, problems=tuple(problems))
