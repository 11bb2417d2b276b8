"""A canary, shadow or new production version must answer what production's clients send,
as the server's decoder judges it; contract changes are audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mooring.errors import ConflictError, UsageError
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Registry
from mooring.registry._clients import Door, door_of
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir

NAME = "income"
COLUMNS = {"age": "integer", "workclass": "string", "hours-per-week": "integer"}


def _record(columns: dict[str, str], excluded: tuple[str, ...] = ()) -> dict[str, Any]:
    """The two parts of a run record that say what a version reads (and ``excluded``:
    columns of its contract it does not read)."""
    return {
        "features": dict.fromkeys(columns, "numeric/normalize"),
        "schema": {
            "format": "mooring.schema",
            "label": "class",
            "columns": {
                **{n: {"type": t} for n, t in columns.items()},
                **{n: {"type": "integer"} for n in excluded},
                "class": {"type": "string"},
            },
        },
    }


def _register(
    registry: Registry,
    tmp_path: Path,
    seed: int,
    columns: dict[str, str],
    excluded: tuple[str, ...] = (),
) -> int:
    folder = make_model_dir(tmp_path, seed)
    mv = register_judged(
        registry,
        name=NAME,
        artifact_dir=folder,
        record=VersionRecord(
            lineage=LINEAGE, gate=BLESSED, run=RunRecord.read(_record(columns, excluded))
        ),
    )
    return mv.version


def test_a_canary_lacking_an_input_is_refused_naming_it(registry: Registry, tmp_path: Path) -> None:
    v1 = _register(registry, tmp_path, 1, COLUMNS)
    without = {k: v for k, v in COLUMNS.items() if k != "workclass"}
    v2 = _register(registry, tmp_path, 2, without)
    registry.deploy(NAME, production=v1)
    refusal = r"v2 as canary would answer production v1's clients 400: instances\[0\]: unexpected"
    with pytest.raises(ConflictError, match=refusal + " field 'workclass'"):
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
    with pytest.raises(ConflictError, match="missing field 'region'"):
        registry.set_shadow(NAME, version=v2, rate=0.5)
    with pytest.raises(ConflictError, match=r"instances\.age\[0\]: expected a string"):
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


def test_a_column_the_new_version_excludes_but_its_contract_knows_is_no_refusal(
    registry: Registry, tmp_path: Path
) -> None:
    # Production read `reject`; the new version excludes it and its contract still names
    # it, so the server takes it from production's clients and ignores it (a 200).
    v1 = _register(registry, tmp_path, 1, {**COLUMNS, "reject": "integer"})
    v2 = _register(registry, tmp_path, 2, COLUMNS, excluded=("reject",))
    registry.deploy(NAME, production=v1)
    assert registry.deploy(NAME, production=v1, canary=v2, weight=10).canary == v2
    assert not registry.history(NAME)[-1].forced
    assert registry.promote(NAME, version=v2).production == v2


def test_promote_refuses_what_production_clients_would_get_400s_from(
    registry: Registry, tmp_path: Path
) -> None:
    v1 = _register(registry, tmp_path, 1, COLUMNS)
    v2 = _register(registry, tmp_path, 2, {**COLUMNS, "region": "string"})
    registry.deploy(NAME, production=v1)
    with pytest.raises(ConflictError, match="v2 as production would answer production v1's"):
        registry.promote(NAME, version=v2)
    with pytest.raises(ConflictError, match="missing field 'region'"):
        registry.deploy(NAME, production=v2)
    assert registry.deployment(NAME).production == v1
    with pytest.raises(UsageError, match="needs a reason"):
        registry.promote(NAME, version=v2, force=True)
    dep = registry.promote(NAME, version=v2, force=True, reason="clients send region now")
    assert dep.production == v2
    event = registry.history(NAME)[-1]
    assert event.forced and event.reason is not None and "missing field 'region'" in event.reason


def test_the_door_reads_the_signature_mooring_json_records() -> None:
    signature = {
        "signature": {
            "inputs": {
                "ids": {"dtype": "int64", "shape": [None, 3]},
                "score": {"dtype": "float32", "shape": [None]},
            }
        }
    }
    door = door_of(signature, RunRecord(), None)
    assert door is not None and not door.columnar and door.source == "mooring.json"
    assert door.request() == {"instances": [{"ids": [1, 1, 1], "score": 0.5}]}
    assert door.answer(door.request()) is None
    assert door_of({}, RunRecord(), None) is None
    # A float sent to an integer tensor is refused by the tensor decoder, naming it.
    floats = Door({"ids": door.inputs["ids"]}).answer({"instances": [{"ids": [0.5, 1, 1]}]})
    assert floats is not None and "ids" in floats


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
