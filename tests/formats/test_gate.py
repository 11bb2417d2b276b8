"""The gate decision's stored form: today's records read and written back exactly, older
records read with defaults, unknown keys kept, and what ``verdict`` makes of each."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mooring.formats._gate import DecisionRecord, GateRecord, is_ungated, judged_gates, verdict
from tests._support.artifacts import BLESSED, NOT_BLESSED, SKIPPED_ONLY, UNGATED
from tests._support.stored_json import (
    decision_dicts,
    gate_dicts,
    json_values,
    unknown_keys,
    without_some,
)


@given(decision_dicts())
def test_todays_decisions_round_trip_exactly(data: dict[str, Any]) -> None:
    record = DecisionRecord.read(data)
    assert json.dumps(record.to_dict()) == json.dumps(data)
    assert record.ungated == data["ungated"]
    assert len(record.gates) == len(data["gates"])


@given(decision_dicts(), st.dictionaries(unknown_keys, json_values, min_size=1, max_size=3))
def test_unknown_keys_survive_a_rewrite(data: dict[str, Any], more: dict[str, Any]) -> None:
    stored = {**data, **more, "gates": [{**g, **more} for g in data["gates"]]}
    record = DecisionRecord.read(stored)
    assert record.to_dict() == stored
    assert dict(record.extra) == more
    assert all(dict(g.extra) == more for g in record.gates)


@given(st.data())
def test_older_records_read_with_defaults_and_write_back_as_they_were(data: st.DataObject) -> None:
    gate = without_some(data.draw(gate_dicts), data.draw)
    stored = without_some({**data.draw(decision_dicts()), "gates": [gate]}, data.draw)
    record = DecisionRecord.read(stored)
    assert record.to_dict() == stored
    assert record.defaults == stored.get("defaults", False)
    assert record.blessed == stored.get("blessed", False)
    if "gates" not in stored:
        assert record.gates == ()
        return
    read = record.gates[0]
    assert read.skipped == gate.get("skipped", False)
    assert read.passed == gate.get("passed", False)
    assert read.default == gate.get("default", False)
    assert read.missing == frozenset(GateRecord(waived="w").to_dict()) - set(gate)


@given(st.dictionaries(st.sampled_from(["blessed", "gates", "ungated", "x"]), json_values))
def test_any_mapping_reads_without_raising_and_writes_back(data: dict[str, Any]) -> None:
    record = DecisionRecord.read(data)
    assert record.to_dict() == data
    assert verdict(data) in ("blessed", "not blessed", "ungated")
    assert isinstance(record.is_ungated, bool)


def test_a_record_before_the_ungated_key_derives_it() -> None:
    assert DecisionRecord.read(SKIPPED_ONLY).is_ungated
    assert verdict(SKIPPED_ONLY) == "ungated"
    assert judged_gates(SKIPPED_ONLY) == []
    assert DecisionRecord.read(SKIPPED_ONLY).to_dict() == SKIPPED_ONLY


def test_verdicts_of_the_registry_fixtures() -> None:
    assert [verdict(d) for d in (BLESSED, NOT_BLESSED, UNGATED, None)] == [
        "blessed",
        "not blessed",
        "ungated",
        "unevaluated",
    ]
    assert is_ungated(UNGATED) and not is_ungated(NOT_BLESSED) and not is_ungated(None)
    assert [g.name for g in DecisionRecord.read(NOT_BLESSED).failures] == ["auc"]
    assert DecisionRecord.read(BLESSED).gates[0].bound == 0.88


def test_a_wrong_typed_value_is_kept_in_place() -> None:
    stored = {"blessed": "yes", "gates": [{"name": 3, "passed": True}], "ungated": None}
    record = DecisionRecord.read(stored)
    assert not record.blessed and record.gates[0].name == ""
    assert list(record.to_dict()) == ["blessed", "gates", "ungated"]
    assert record.to_dict() == stored


def test_the_evaluation_writes_the_same_json_as_it_records() -> None:
    gate = GateRecord(
        "auc in [0.8, inf]", "auc", None, "value", float("nan"), {"lower": 0.8, "upper": None},
        False, "failed: auc was not computed", baseline=float("inf"),
    )  # fmt: skip
    decision = DecisionRecord.judging([gate], warnings=["w"], defaults=True)
    written = decision.to_dict()
    assert written == {
        "blessed": False,
        "gates": [
            {
                "name": "auc in [0.8, inf]",
                "metric": "auc",
                "slice": None,
                "kind": "value",
                "value": None,
                "bound": {"lower": 0.8, "upper": None},
                "passed": False,
                "message": "failed: auc was not computed",
                "skipped": False,
                "baseline": None,
                "diff": None,
                "default": False,
            }
        ],
        "warnings": ["w"],
        "defaults": True,
        "ungated": False,
    }
    assert DecisionRecord.read(written).to_dict() == written
    assert DecisionRecord.of(decision) is decision
    assert DecisionRecord.of(["not", "a", "mapping"]) is None
