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
from sqlalchemy import create_engine, update

from mooring.errors import IntegrityError, UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._audit import KEY_ENV, load_audit_key
from mooring.registry._judged import register_judged
from mooring.registry._sql.tables import audit_events
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir
from tests._support.audit import (
    HEX_KEY,
    chain_problems,
    cut_last_event,
    rewrite_audit,
    state_messages,
)

KEY = bytes(range(32))
OTHER_KEY = b"not the key, but 32 bytes long!!"


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _events(reg: Registry, tmp_path: Path) -> None:
    for i in range(3):
        register_judged(
            reg,
            name="income",
            artifact_dir=make_model_dir(tmp_path / str(i), i),
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
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


def test_a_keyed_chain_verifies(keyed: Registry) -> None:
    report = keyed.verify_audit(require_key=True)
    assert report.ok and report.keyed and report.events == 5 and report.legacy_events == 0


def test_an_edit_with_the_sha256_chain_recomputed_after_it_names_the_events(
    keyed: Registry, db_url: str, tmp_path: Path
) -> None:
    rewrite_audit(db_url, None, seq=4, actor="mallory", start=4)
    report = keyed.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "unkeyed"), (5, "unkeyed")]
    assert "audit event 4 (promote) is chained with plain sha256" in report.problems[0].message
    # Without the key there is nothing to tell a rewrite from the real log with.
    unkeyed = Registry.open(db_url, artifacts=tmp_path / "artifacts")
    with unkeyed, pytest.raises(UsageError, match=r"cannot verify the audit log: no audit key"):
        unkeyed.verify_audit(require_key=True)


def test_the_whole_chain_recomputed_with_sha256_is_not_taken_for_an_old_log(
    keyed: Registry, db_url: str
) -> None:
    rewrite_audit(db_url, None, seq=2, actor="mallory", start=1)
    report = keyed.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(5, "unsealed")]
    assert "audit event(s) 1-5 are chained with plain sha256" in report.problems[0].message


def test_a_rewrite_with_another_key_is_named_as_edited(keyed: Registry, db_url: str) -> None:
    rewrite_audit(db_url, OTHER_KEY, seq=2, actor="mallory", start=2)
    report = keyed.verify_audit()
    assert [(p.seq, p.kind) for p in report.problems] == [(s, "edited") for s in range(2, 6)]
    assert "audit event 2 (register) was edited" in report.problems[0].message


def test_a_cut_log_with_its_head_moved_back_is_caught_against_an_anchored_head(
    keyed: Registry, db_url: str
) -> None:
    anchor = keyed.audit_head()
    assert anchor.startswith("5:") and len(anchor) == 2 + 64
    cut_last_event(db_url)
    # Two statements, no key needed: the chain alone cannot tell (the README says so)...
    report = keyed.verify_audit()
    assert chain_problems(report) == []
    # ...though the canary the cut event deployed is no longer explained by the events...
    assert "the canary version is 3 in table deployments" in state_messages(report)[0]
    # ...and a head anchored elsewhere names the cut.
    report = keyed.verify_audit(expect_head=anchor)
    assert chain_problems(report) == [(5, "deleted")]
    assert "cut short" in report.problems[0].message
    with pytest.raises(UsageError, match=r"SEQ:HASH"):
        keyed.verify_audit(expect_head="5:nothex")


def test_events_from_before_the_key_are_reported_and_bound_by_the_first_keyed_one(
    registry: Registry, db_url: str, tmp_path: Path
) -> None:
    _events(registry, tmp_path / "src")  # written without a key: plain sha256
    anchor = registry.audit_head()
    key_path = tmp_path / "home" / "audit.key"
    with Registry.open(
        db_url, artifacts=tmp_path / "artifacts", audit_key_file=key_path
    ) as upgraded:
        # Reading creates no key, and without one there is nothing to verify against.
        assert upgraded.history()[-1].seq == 5 and upgraded.audit_head() == anchor
        assert not key_path.exists()
        with pytest.raises(UsageError, match=r"key file does not exist .*audit\.key"):
            upgraded.verify_audit(require_key=True)
        # The first write creates the key file and chains its event with it.
        upgraded.set_alias("income", "champion", version=2)
        assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
        report = upgraded.verify_audit(require_key=True, expect_head=anchor)
        assert report.ok and report.events == 6 and report.legacy_events == 5
    # The old events can no longer be rewritten without the key: the keyed event after
    # them covers the link to the last of them.
    rewrite_audit(db_url, None, seq=2, actor="mallory", start=1, end=5)
    key = load_audit_key(key_path, create=False)
    with Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=key) as upgraded:
        problems = upgraded.verify_audit().problems
        assert [(p.seq, p.kind) for p in problems] == [(6, "deleted")]
        assert "audit event 6 does not follow the event before it" in problems[0].message


def test_an_old_log_with_no_keyed_event_yet_fails_until_sealed(
    registry: Registry, db_url: str, tmp_path: Path
) -> None:
    _events(registry, tmp_path / "src")
    with Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=KEY) as keyed:
        [problem] = keyed.verify_audit().problems
        assert (problem.seq, problem.kind) == (5, "unsealed")
        assert "mooring audit seal" in problem.message
        report = keyed.seal_audit(actor="ops", reason="keyed audit")
        assert report.ok and report.legacy_events == 5 and report.events == 6
        assert keyed.history()[-1].action == "seal_audit"


def test_sealing_needs_a_key(registry: Registry) -> None:
    with pytest.raises(UsageError, match=r"cannot seal the audit log: no audit key.*not config"):
        registry.seal_audit(reason="keyed audit")
    assert registry.history() == []


def test_a_keyed_log_refuses_writers_without_its_key_or_with_another(
    keyed: Registry, db_url: str, tmp_path: Path
) -> None:
    key_path = tmp_path / "elsewhere" / "audit.key"
    with Registry.open(
        db_url, artifacts=tmp_path / "artifacts", audit_key_file=key_path
    ) as keyless:
        with pytest.raises(UsageError, match=r"audit log is keyed \(event 1 .*cannot be extended"):
            keyless.set_alias("income", "champion", version=2)
        assert not key_path.exists()  # a fresh key would fork the chain: none is made
    other = Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=OTHER_KEY)
    with other, pytest.raises(IntegrityError, match=r"last audit event \(5, deploy\) does not"):
        other.set_alias("income", "champion", version=2)
    assert [e.seq for e in keyed.history()] == [1, 2, 3, 4, 5]
    assert keyed.verify_audit().ok


def test_a_writer_refuses_a_log_whose_last_event_was_edited(keyed: Registry, db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 5).values(reason="x"))
    engine.dispose()
    with pytest.raises(IntegrityError, match=r"or the event was rewritten; nothing was written"):
        keyed.promote("income", version=2, reason="go")
    assert keyed.get("income", alias="production").version == 1


def test_the_key_file_is_created_private_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "home" / "audit.key"
    assert load_audit_key(path, create=False) is None and not path.exists()
    key = load_audit_key(path, create=True)
    assert key is not None and len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_audit_key(path, create=True) == key  # kept, not replaced
    # The variable holds the same text as the file, and wins over it.
    monkeypatch.setenv(KEY_ENV, HEX_KEY)
    assert load_audit_key(path, create=True) == bytes.fromhex(HEX_KEY)
    monkeypatch.setenv(KEY_ENV, path.read_text())  # with the file's newline
    assert load_audit_key(None, create=False) == key


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("a-secret-from-the-vault", r"got 23 characters, not all of them hex digits"),
        ("REPLACE-ME", r"got 10 characters, not all of them hex digits"),
        (HEX_KEY[:-2], r"got 62 characters;"),
        (HEX_KEY + "00", r"got 66 characters;"),
        ("text:short", r"text: and a secret of 5 characters"),
    ],
)
def test_a_malformed_key_in_the_environment_is_named_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, value: str, found: str
) -> None:
    monkeypatch.setenv(KEY_ENV, value)
    named = rf"^{KEY_ENV} (does not hold an audit key|holds).*{found}"
    with pytest.raises(UsageError, match=named):
        load_audit_key(None, create=False)
    with pytest.raises(UsageError, match=r"token_hex\(32\)") as raised:
        load_audit_key(None, create=False)
    assert value not in str(raised.value)  # the secret is not echoed


def test_a_malformed_key_file_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    for text, found in (("not hex\n", "not all of them hex digits"), ("ab" * 16, "got 32")):
        path.write_text(text)
        with pytest.raises(
            UsageError,
            match=rf"audit key file '.*audit\.key' does not hold an audit key: expected 64 hex "
            rf"digits .*{found}.*restore the file from a backup",
        ):
            load_audit_key(path, create=True)


def test_the_key_file_moved_into_the_environment_verifies_and_extends_the_log(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_path = tmp_path / "home" / "audit.key"
    with Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key_file=key_path) as reg:
        _events(reg, tmp_path / "src")
    monkeypatch.setenv(KEY_ENV, key_path.read_text().strip())
    key_path.unlink()  # the variable alone, as a server from a secret store has it
    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as reg:
        assert reg.verify_audit(require_key=True).ok
        reg.set_alias("income", "champion", version=2)
        report = reg.verify_audit(require_key=True)
        assert report.ok and report.keyed and report.events == 6


def test_a_malformed_key_in_the_environment_is_refused_before_any_verdict(
    keyed: Registry, monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_ENV, HEX_KEY[:40])
    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as reg:
        with pytest.raises(UsageError, match=rf"{KEY_ENV} does not hold an audit key"):
            reg.verify_audit(require_key=True)
        with pytest.raises(UsageError, match=rf"{KEY_ENV} does not hold an audit key"):
            reg.set_alias("income", "champion", version=2)
    assert [e.seq for e in keyed.history()] == [1, 2, 3, 4, 5]


def test_a_log_keyed_with_the_variables_raw_text_by_an_older_mooring_keeps_working(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older mooring took MOORING_AUDIT_KEY's text itself as the key.
    with Registry.open(
        db_url, artifacts=tmp_path / "artifacts", audit_key=HEX_KEY.encode()
    ) as older:
        _events(older, tmp_path / "src")
    monkeypatch.setenv(KEY_ENV, HEX_KEY)
    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as reg:
        assert reg.verify_audit(require_key=True).ok
        reg.set_alias("income", "champion", version=2)  # extended with the key it carries
        assert reg.verify_audit(require_key=True).ok
    with Registry.open(
        db_url, artifacts=tmp_path / "artifacts", audit_key=HEX_KEY.encode()
    ) as older:
        assert older.verify_audit().ok and older.history()[-1].action == "alias"


def test_a_non_hex_secret_an_older_mooring_keyed_the_log_with_is_given_as_text(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "a-secret-from-the-vault"
    with Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=secret.encode()) as old:
        _events(old, tmp_path / "src")
    monkeypatch.setenv(KEY_ENV, secret)
    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as reg:
        with pytest.raises(UsageError, match=rf"plain text, keep it as {KEY_ENV}=text:VALUE"):
            reg.verify_audit(require_key=True)
        monkeypatch.setenv(KEY_ENV, f"text:{secret}")
        assert reg.verify_audit(require_key=True).ok
