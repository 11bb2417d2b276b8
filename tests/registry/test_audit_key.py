"""The keyed audit chain: a rewrite with recomputed hashes is caught with the key — both backends.

Each attack is what someone with write access to the database but not the key can do:
edit a row and recompute every hash after it (plain sha256, or HMAC with a key of
their own), or cut the log short and move the recorded head back with it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, select, update

from mooring.errors import IntegrityError, UsageError
from mooring.registry import Registry
from mooring.registry.audit import KEY_ENV, load_audit_key, relink_chain
from mooring.registry.tables import audit_events, audit_head
from tests.registry.conftest import BLESSED, LINEAGE, make_model_dir

KEY = bytes(range(32))


def _events(reg: Registry, tmp_path: Path) -> None:
    for i in range(3):
        reg.register(
            name="income",
            artifact_dir=make_model_dir(tmp_path / str(i), i),
            lineage=LINEAGE,
            gate=BLESSED,
        )
    reg.promote("income", version=1, actor="ana", reason="go")
    reg.deploy("income", production=1, canary=3, weight=20)


@pytest.fixture
def keyed(db_url: str, tmp_path: Path) -> Iterator[Registry]:
    """A registry with an audit key and five events."""
    reg = Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=KEY)
    _events(reg, tmp_path / "src")
    yield reg
    reg.close()


def _rewrite(db_url: str, key: bytes | None, *, seq: int, actor: str) -> None:
    """Edit one row, then recompute every link and the head, with ``key`` (None: sha256)."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == seq).values(actor=actor))
        rows = [
            {**dict(r), "model": r["model_name"], "forced": bool(r["forced"])}
            for r in conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings()
        ]
        last = ""
        for event, prev, last in relink_chain(rows, key):
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == event)
                .values(prev_hash=prev, hash=last)
            )
        conn.execute(update(audit_head).values(hash=last))
    engine.dispose()


def test_a_keyed_chain_verifies(keyed: Registry) -> None:
    report = keyed.verify_audit()
    assert report.ok and report.keyed and report.events == 5


def test_a_rewrite_with_recomputed_sha256_hashes_passes_without_the_key_and_fails_with_it(
    keyed: Registry, db_url: str, tmp_path: Path
) -> None:
    _rewrite(db_url, None, seq=4, actor="mallory")
    report = keyed.verify_audit()
    assert not report.ok
    assert {p.kind for p in report.problems} == {"unkeyed"}
    assert any(p.seq == 4 and "adopt-key" in p.message for p in report.problems)
    # What the key is for: the same rewrite is "intact" to a reader without it.
    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as unkeyed:
        assert unkeyed.verify_audit().ok


def test_a_rewrite_with_another_key_is_named_as_edited(keyed: Registry, db_url: str) -> None:
    _rewrite(db_url, b"not the key, but 32 bytes long!!", seq=2, actor="mallory")
    report = keyed.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(s, "edited") for s in range(1, 6)]


def test_a_cut_log_with_its_head_moved_back_is_caught_against_an_anchored_head(
    keyed: Registry, db_url: str
) -> None:
    anchor = keyed.audit_head()
    assert anchor.startswith("5:") and len(anchor) == 2 + 64
    engine = create_engine(db_url)
    with engine.begin() as conn:
        fifth = conn.execute(select(audit_events.c.prev_hash).where(audit_events.c.seq == 5))
        previous = fifth.scalar_one()
        conn.execute(delete(audit_events).where(audit_events.c.seq == 5))
        conn.execute(update(audit_head).values(seq=4, hash=previous))
    engine.dispose()
    # Two statements, no key needed: the chain alone cannot tell (the README says so)...
    assert keyed.verify_audit().ok
    # ...a head anchored elsewhere can.
    report = keyed.verify_audit(expect_head=anchor)
    assert [(p.seq, p.kind) for p in report.problems] == [(5, "deleted")]
    assert "cut short" in report.problems[0].message
    with pytest.raises(UsageError, match=r"SEQ:HASH"):
        keyed.verify_audit(expect_head="5:nothex")


def test_adopting_the_key_resigns_a_consistent_chain_once(
    registry: Registry, db_url: str, tmp_path: Path
) -> None:
    _events(registry, tmp_path / "src")  # written without a key
    with Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=KEY) as keyed:
        assert {p.kind for p in keyed.verify_audit().problems} == {"unkeyed"}
        report = keyed.adopt_audit_key(actor="ops", reason="keyed audit")
        assert report.ok and report.keyed and report.events == 6
        assert keyed.history()[-1].action == "adopt_audit_key"


def test_a_broken_chain_is_not_adopted(registry: Registry, db_url: str, tmp_path: Path) -> None:
    _events(registry, tmp_path / "src")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 2).values(actor="x"))
    engine.dispose()
    with Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=KEY) as keyed:
        with pytest.raises(IntegrityError, match=r"cannot be re-signed.*event 2"):
            keyed.adopt_audit_key(reason="keyed audit")
        assert keyed.history()[-1].action != "adopt_audit_key"


def test_the_key_file_is_created_private_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "home" / "audit.key"
    assert load_audit_key(path, create=False) is None and not path.exists()
    key = load_audit_key(path, create=True)
    assert key is not None and len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_audit_key(path, create=True) == key  # kept, not replaced
    monkeypatch.setenv(KEY_ENV, "a-secret-from-the-vault")
    assert load_audit_key(path, create=True) == b"a-secret-from-the-vault"
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(UsageError, match=r"at least 16"):
        load_audit_key(path, create=True)
    monkeypatch.delenv(KEY_ENV)
    path.write_text("not hex\n")
    with pytest.raises(UsageError, match=r"does not hold a hex key"):
        load_audit_key(path, create=True)
