"""The audit log's hash chain detects an edited, a deleted and a reordered row — both backends."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import delete, text, update

from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._audit import GENESIS_HASH, event_hash, verify_chain
from mooring.registry._judged import register_judged
from mooring.registry._sql.tables import audit_events
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir
from tests._support.audit import chain_problems, run_sql, state_messages


@pytest.fixture
def audited(registry: Registry, tmp_path: Path) -> Registry:
    """A registry with six events: 3 registers, promote, alias, canary deploy."""
    for i in range(3):
        register_judged(
            registry,
            name="income",
            artifact_dir=make_model_dir(tmp_path / str(i), i),
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
        )
    registry.promote("income", version=1, actor="ana", reason="go")
    registry.set_alias("income", "champion", version=2)
    registry.deploy("income", production=1, canary=3, weight=20)
    assert [e.seq for e in registry.history()] == [1, 2, 3, 4, 5, 6]
    return registry


def test_intact_chain_verifies(audited: Registry) -> None:
    report = audited.verify_audit()
    assert report.ok and report.events == 6 and report.head_seq == 6
    events = audited.history()
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))


def test_edited_row_is_named(audited: Registry, db_url: str) -> None:
    run_sql(db_url, update(audit_events).where(audit_events.c.seq == 4).values(reason="nothing"))
    report = audited.verify_audit()
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "edited")]
    assert "audit event 4 (promote) was edited" in report.problems[0].message


def test_deleted_row_is_named(audited: Registry, db_url: str) -> None:
    run_sql(db_url, delete(audit_events).where(audit_events.c.seq == 3))
    report = audited.verify_audit()
    assert chain_problems(report) == [(4, "deleted")]
    assert "audit event(s) 3 before event 4 were deleted" in report.problems[0].message
    # What the deleted event did is no longer explained either.
    [unexplained] = state_messages(report)
    assert "version 3 is in table versions, but no event registered it" in unexplained


def test_deleted_last_row_is_named(audited: Registry, db_url: str) -> None:
    run_sql(db_url, delete(audit_events).where(audit_events.c.seq == 6))
    report = audited.verify_audit()
    assert chain_problems(report) == [(6, "deleted")]
    # The canary it deployed is no longer explained either (nor its weight, nor its alias).
    canary, weight, alias = state_messages(report)
    assert "the canary version is 3 in table deployments, but the audit events explain " in canary
    assert "explain none (event 4, promote)" in canary
    assert "the canary weight is 20" in weight and "alias 'canary' points at version 3" in alias


def test_reordered_rows_are_named(audited: Registry, db_url: str) -> None:
    # Swap the positions of events 2 and 3 (via a free sequence number).
    run_sql(db_url, text("UPDATE audit_events SET seq = 1000 WHERE seq = 2"))
    run_sql(db_url, text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
    run_sql(db_url, text("UPDATE audit_events SET seq = 3 WHERE seq = 1000"))
    report = audited.verify_audit()
    kinds = {(p.seq, p.kind) for p in report.problems}
    assert (2, "reordered") in kinds
    assert all(kind != "edited" for _, kind in kinds)
    assert any("out of order" in p.message for p in report.problems)


def test_renumbered_deletion_is_caught(audited: Registry, db_url: str) -> None:
    # Delete event 3 and renumber 4-6 down so the sequence has no gap.
    run_sql(db_url, delete(audit_events).where(audit_events.c.seq == 3))
    for seq in (4, 5, 6):
        run_sql(db_url, update(audit_events).where(audit_events.c.seq == seq).values(seq=seq - 1))
    report = audited.verify_audit()
    assert (3, "deleted") in {(p.seq, p.kind) for p in report.problems}


def test_verify_chain_empty_and_single() -> None:
    assert verify_chain([], head_seq=0, head_hash=GENESIS_HASH).ok
    fields = dict(
        created_at="t",
        actor="a",
        action="register",
        model="m",
        version=1,
        reason=None,
        forced=False,
        before=None,
        after='{"version":1}',
        prev_hash=GENESIS_HASH,
    )
    digest = event_hash(**fields)  # type: ignore[arg-type]
    row = {**fields, "seq": 1, "hash": digest}
    assert verify_chain([row], head_seq=1, head_hash=digest).ok
    assert not verify_chain([row], head_seq=1, head_hash="f" * 64).ok
