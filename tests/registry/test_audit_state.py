"""``verify_audit`` vouches for the registry's state, not only for its chain — both backends.

Each tamper is what someone with SQL access but not the audit key can do without writing
an event: change what serves, delete or insert a version, edit a version's row, delete
the chain's head. The events, replayed, no longer explain the tables, and verify names
the model, the field, the table's value and the value the events explain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, text, update

from mooring.errors import IntegrityError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._audit import KEY_ENV
from mooring.registry._judged import register_judged
from mooring.registry._sql.tables import audit_head, deployments, versions
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir
from tests._support.audit import (
    chain_problems,
    insert_version,
    rewrite_audit,
    run_sql,
    state_messages,
)

KEY = bytes(range(32))
NAME = "income"


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Registry]:
    """A keyed registry with eight events: versions 1-4 registered (events 1-4), 1 promoted
    (5), alias champion → 2 (6), canary 3 at 20% (7), shadow 2 at 25% (8)."""
    reg = Registry.open(db_url, artifacts=tmp_path / "artifacts", audit_key=KEY)
    for i in range(4):
        register_judged(
            reg,
            NAME,
            make_model_dir(tmp_path / "src" / str(i), i),
            VersionRecord(lineage=LINEAGE, gate=BLESSED),
        )
    reg.promote(NAME, version=1, reason="go")
    reg.set_alias(NAME, "champion", version=2)
    reg.deploy(NAME, production=1, canary=3, weight=20)
    reg.set_shadow(NAME, version=2, rate=0.25)
    assert reg.verify_audit(require_key=True).ok
    yield reg
    reg.close()


def _only_state(reg: Registry, **kwargs: str) -> list[str]:
    """The state problems of a report whose chain is intact."""
    report = reg.verify_audit(require_key=True, **kwargs)
    assert chain_problems(report) == [] and not report.ok
    assert all(p.kind == "state" for p in report.problems)
    return state_messages(report)


def test_every_change_through_the_registry_is_explained(served: Registry) -> None:
    served.set_shadow(NAME, version=None)
    served.promote(NAME, version=3, reason="canary won")  # takes the canary's place
    served.rollback(NAME, reason="p99 up")
    served.remove_alias(NAME, "champion")
    served.archive(NAME, version=4, reason="superseded")
    served.restore(NAME, version=4)
    served.archive(NAME, version=2)
    served.delete(NAME, version=2, reason="gone")
    served.deploy(NAME, production=4, canary=1, weight=5, reason="next")
    report = served.verify_audit(require_key=True)
    assert report.ok, [p.message for p in report.problems]


def test_production_changed_by_sql_is_named_even_with_an_anchored_head(
    served: Registry, db_url: str
) -> None:
    anchor = served.audit_head()
    run_sql(db_url, update(deployments).values(production_version=4))
    [problem] = _only_state(served, expect_head=anchor)
    assert problem.startswith(
        "model 'income': the production version is 4 in table deployments, but the audit "
        "events explain 1 (event 7, deploy): it was changed outside the registry; set it back "
        "to 1 (from a backup)"
    )
    assert "`mooring models deploy income -p VERSION" in problem
    # Deploying through the registry audits the change, and the events explain it again.
    served.deploy(NAME, production=4, canary=3, weight=20, reason="keep 4 after the incident")
    assert served.verify_audit(require_key=True, expect_head=anchor).ok


def test_canary_and_weight_changed_by_sql_are_named(served: Registry, db_url: str) -> None:
    run_sql(db_url, update(deployments).values(canary_version=4, canary_weight=90))
    canary, weight = _only_state(served)
    assert "the canary version is 4 in table deployments, but the audit events explain 3" in canary
    assert "the canary weight is 90 in table deployments, but the audit events explain 20" in weight


def test_shadow_changed_by_sql_is_named(served: Registry, db_url: str) -> None:
    run_sql(db_url, update(deployments).values(shadow_rate=1.0))
    [rate] = _only_state(served)
    assert "the shadow rate is 1 in table deployments, but the audit events explain 0.25 " in rate
    assert "(event 8, shadow)" in rate and "mooring models shadow income" in rate
    run_sql(db_url, update(deployments).values(shadow_version=None, shadow_rate=0.0))
    [gone] = _only_state(served)
    assert "the shadow version is none in table deployments, but the audit events explain 2" in gone


def test_a_version_deleted_by_sql_is_named(served: Registry, db_url: str) -> None:
    run_sql(db_url, delete(versions).where(versions.c.version == 4))
    [problem] = _only_state(served)
    assert problem.startswith(
        "model 'income': version 4 was registered (event 4) and no event deleted it, but it is "
        "not in table versions: it was deleted outside the registry; restore its row"
    )


def test_a_version_inserted_by_sql_is_named(served: Registry, db_url: str) -> None:
    insert_version(db_url, NAME, like=1, version=9)
    [problem] = _only_state(served)
    assert problem.startswith(
        "model 'income': version 9 is in table versions, but no event registered it: it was "
        "inserted outside the registry; do not deploy it"
    )
    # The fix it gives removes the row, not the files it names (version 1's here).
    fix = "DELETE FROM versions WHERE model_name = 'income' AND version = 9"
    assert f"{fix} (not Registry.delete" in problem
    run_sql(db_url, text(fix))
    assert served.verify_audit(require_key=True).ok and served.load(NAME, version=1).is_dir()
    # A version deleted through the registry and put back by SQL is named the same way.
    served.archive(NAME, version=4)
    served.delete(NAME, version=4)
    insert_version(db_url, NAME, like=1, version=4)
    problems = _only_state(served)
    assert any("version 4 is in table versions, but event 10 deleted it" in p for p in problems)


def test_a_version_row_edited_by_sql_is_named(served: Registry, db_url: str) -> None:
    run_sql(db_url, update(versions).where(versions.c.version == 4).values(blessed=False))
    [blessed] = _only_state(served)
    assert "version 4's blessed is false in table versions, but event 4 (register) recorded " in (
        blessed
    )
    assert "set blessed back to true" in blessed
    run_sql(
        db_url,
        update(versions).where(versions.c.version == 4).values(blessed=True, status="archived"),
    )
    [status] = _only_state(served)
    assert "version 4's status is archived in table versions, but event 4 (register) " in status


def test_a_manifest_edited_by_sql_is_named(served: Registry, db_url: str) -> None:
    sha = served.get(NAME, version=2).manifest_sha256
    zeros = update(versions).where(versions.c.version == 2).values(manifest_sha256="0" * 64)
    run_sql(db_url, zeros)
    problems = _only_state(served)
    assert any("version 2's manifest_sha256 is 000000000000… in table" in p for p in problems)
    assert any(f"set manifest_sha256 back to {sha}" in p for p in problems)
    # The hash left alone and the file list changed: the manifest no longer hashes to it.
    manifest = served.get(NAME, version=3).manifest
    assert manifest is not None
    run_sql(
        db_url,
        update(versions).where(versions.c.version == 2).values(manifest_sha256=sha),
        update(versions).where(versions.c.version == 3).values(manifest=json.dumps({**manifest})),
    )
    assert served.verify_audit(require_key=True).ok  # the same list, other spacing
    run_sql(
        db_url,
        update(versions)
        .where(versions.c.version == 3)
        .values(manifest=json.dumps({**manifest, "files": {}})),
    )
    [problem] = _only_state(served)
    assert "version 3's manifest (table versions, column manifest) no longer hashes" in problem


def test_an_alias_moved_by_sql_is_named(served: Registry, db_url: str) -> None:
    run_sql(db_url, text("UPDATE aliases SET version = 4 WHERE alias = 'champion'"))
    [problem] = _only_state(served)
    assert "alias 'champion' points at version 4 in table aliases, but the audit events " in (
        problem
    )
    assert "explain 2 (event 6, alias)" in problem
    assert "`mooring models alias income champion VERSION`" in problem


def test_a_deleted_head_row_is_a_named_problem_and_writers_refuse(
    served: Registry, db_url: str
) -> None:
    last = served.history()[-1]
    run_sql(db_url, delete(audit_head))
    report = served.verify_audit(require_key=True)
    assert [(p.seq, p.kind) for p in report.problems] == [(8, "head")]
    message = report.problems[0].message
    assert message.startswith("the recorded head of the chain (table audit_head, row id 1) is ")
    assert f"VALUES (1, 8, '{last.hash}')" in message
    with pytest.raises(IntegrityError, match=r"audit_head, row id 1\) is missing.*nothing was"):
        served.promote(NAME, version=4, reason="go")
    with pytest.raises(IntegrityError, match=r"there is no head to print"):
        served.audit_head()
    # The fix the message gives restores the chain's head.
    run_sql(db_url, text(message.rpartition("put it back: ")[2]))
    assert served.verify_audit(require_key=True).ok


def test_events_from_before_a_field_existed_are_not_taken_for_tampering(
    served: Registry, db_url: str
) -> None:
    events = {e.seq: e for e in served.history()}
    # Written as an older mooring would have: the deploy without its weight, the
    # registration without the manifest's hash (chained with the registry's key).
    rewrite_audit(db_url, KEY, seq=7, start=7, after='{"canary":3,"production":1}')
    assert events[4].after is not None
    older = {k: v for k, v in events[4].after.items() if k != "manifest_sha256"}
    rewrite_audit(db_url, KEY, seq=4, start=4, after=json.dumps(older))
    assert served.verify_audit(require_key=True).ok
    # What the events cannot say is not reported...
    run_sql(
        db_url,
        update(deployments).values(canary_weight=50),
        text("UPDATE versions SET manifest_sha256 = manifest_sha256 WHERE version = 4"),
    )
    assert served.verify_audit(require_key=True).ok
    # ...what they can still is.
    run_sql(db_url, update(deployments).values(production_version=2))
    [problem] = _only_state(served)
    assert "the production version is 2 in table deployments" in problem
    # The next deployment event says the weight again, and from then on it is checked.
    served.deploy(NAME, production=2, canary=3, weight=50, reason="after the incident")
    run_sql(db_url, update(deployments).values(canary_weight=70))
    [weight] = _only_state(served)
    assert "the canary weight is 70 in table deployments, but the audit events explain 50" in weight
