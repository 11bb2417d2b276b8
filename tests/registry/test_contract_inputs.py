"""A canary or shadow must read what production's clients send; contract changes are audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mooring.errors import ConflictError, UsageError
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry._policy import input_differences
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir

NAME = "income"
COLUMNS = {"age": "integer", "workclass": "string", "hours-per-week": "integer"}


def _record(columns: dict[str, str]) -> dict[str, Any]:
    """The two parts of a run record that say what a version reads."""
    return {
        "features": dict.fromkeys(columns, "numeric/normalize"),
        "schema": {
            "format": "mooring.schema",
            "label": "class",
            "columns": {
                **{n: {"type": t} for n, t in columns.items()},
                "class": {"type": "string"},
            },
        },
    }


def _register(registry: Registry, tmp_path: Path, seed: int, columns: dict[str, str]) -> int:
    folder = make_model_dir(tmp_path, seed)
    mv = register_judged(
        registry,
        name=NAME,
        artifact_dir=folder,
        record=VersionRecord(lineage=LINEAGE, gate=BLESSED, run=RunRecord.read(_record(columns))),
    )
    return mv.version


def test_a_canary_lacking_an_input_is_refused_naming_it(registry: Registry, tmp_path: Path) -> None:
    v1 = _register(registry, tmp_path, 1, COLUMNS)
    without = {k: v for k, v in COLUMNS.items() if k != "workclass"}
    v2 = _register(registry, tmp_path, 2, without)
    registry.deploy(NAME, production=v1)
    with pytest.raises(ConflictError, match="'workclass': clients send it and the new version"):
        registry.deploy(NAME, production=v1, canary=v2, weight=50)
    assert registry.deployment(NAME).canary is None
    with pytest.raises(UsageError, match="needs a reason"):
        registry.deploy(NAME, production=v1, canary=v2, weight=50, force=True)
    dep = registry.deploy(
        NAME,
        production=v1,
        canary=v2,
        weight=50,
        force=True,
        reason="clients migrated",
        actor="ana",
    )
    assert (dep.canary, dep.canary_weight) == (v2, 50)
    event = registry.history(NAME)[-1]
    assert event.forced and event.actor == "ana"
    assert event.reason is not None and "clients migrated" in event.reason
    assert "'workclass'" in event.reason


def test_a_shadow_needing_a_column_or_reading_another_type_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    v1 = _register(registry, tmp_path, 1, COLUMNS)
    v2 = _register(registry, tmp_path, 2, {**COLUMNS, "region": "string"})
    v3 = _register(registry, tmp_path, 3, {**COLUMNS, "age": "string"})
    v4 = _register(registry, tmp_path, 4, {**COLUMNS, "age": "float"})
    registry.deploy(NAME, production=v1)
    with pytest.raises(ConflictError, match="'region': the new version needs it"):
        registry.set_shadow(NAME, version=v2, rate=0.5)
    with pytest.raises(ConflictError, match="'age': clients send integer, the new version reads"):
        registry.set_shadow(NAME, version=v3, rate=0.5)
    # integer and float both travel as numbers: the same input.
    assert registry.set_shadow(NAME, version=v4, rate=0.5).shadow == v4
    forced = registry.set_shadow(NAME, version=v2, rate=0.5, force=True, reason="testing region")
    assert forced.shadow == v2


def test_versions_that_record_no_inputs_are_not_judged(registry: Registry, tmp_path: Path) -> None:
    v1 = _register(registry, tmp_path, 1, COLUMNS)
    bare = register_judged(
        registry,
        name=NAME,
        artifact_dir=make_model_dir(tmp_path, 9),
        record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
    )
    registry.deploy(NAME, production=v1)
    assert registry.deploy(NAME, production=v1, canary=bare.version, weight=10).canary == 2


def test_input_differences_names_every_difference_once() -> None:
    found = input_differences(
        {"a": "integer", "b": "string", "c": "float"},
        {"a": "float", "b": "integer", "d": "string"},
    )
    assert found == [
        "'c': clients send it and the new version refuses it (unexpected field)",
        "'d': the new version needs it and clients do not send it (missing field)",
        "'b': clients send string, the new version reads integer",
    ]


def test_contract_changes_are_chained_audit_events_with_a_reason(registry: Registry) -> None:
    registry.record_contract(
        NAME, action="contract_adopted", before=None, after={"fingerprint": "f1"}, reason="first"
    )
    with pytest.raises(UsageError, match="needs a reason"):
        registry.record_contract(
            NAME, action="contract_accepted", before=None, after={"fingerprint": "f2"}, reason=" "
        )
    with pytest.raises(UsageError, match="contract action 'contract_deleted' is not one of"):
        registry.record_contract(NAME, action="contract_deleted", before=None, after={}, reason="x")
    registry.record_contract(
        NAME,
        action="contract_accepted",
        before={"fingerprint": "f1"},
        after={"fingerprint": "f2"},
        reason="workclass dropped upstream",
        actor="ana",
    )
    events = registry.contract_events(NAME)
    assert [(e.action, e.after, e.actor) for e in events][-1] == (
        "contract_accepted",
        {"fingerprint": "f2"},
        "ana",
    )
    assert [e.version for e in events] == [None, None]
    assert registry.verify_audit().ok
