"""A version's lineage, typed: today's lineages read and written back exactly, older ones
and unknown keys kept, read by attribute only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.formats._lineage import Lineage, LineageFacts
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from tests._support.artifacts import LINEAGE, make_model_dir
from tests._support.stored_json import (
    imported_lineage,
    json_values,
    trained_lineage,
    unknown_keys,
    without_some,
)


@given(trained_lineage | imported_lineage)
def test_todays_lineages_round_trip_exactly(data: dict[str, Any]) -> None:
    lineage = Lineage.read(data)
    # The registry stores it as canonical JSON (sorted keys).
    assert json.dumps(lineage.to_dict(), sort_keys=True) == json.dumps(data, sort_keys=True)
    assert lineage == Lineage.read(json.loads(json.dumps(data)))
    assert not lineage.extra


@given(trained_lineage, st.dictionaries(unknown_keys, json_values, min_size=1, max_size=3))
def test_unknown_keys_survive_a_rewrite(data: dict[str, Any], more: dict[str, Any]) -> None:
    lineage = Lineage.read({**data, **more})
    assert lineage.to_dict() == {**data, **more}
    assert dict(lineage.extra) == more


@given(st.data())
def test_older_lineages_read_with_their_keys_absent(data: st.DataObject) -> None:
    stored = without_some(data.draw(trained_lineage), data.draw)
    lineage = Lineage.read(stored)
    assert lineage.to_dict() == stored
    assert lineage.run_id == stored.get("run_id")
    assert lineage.eval_data == stored.get("eval_data")
    assert lineage.model_key == stored.get("model_key")


@given(
    st.dictionaries(
        st.sampled_from(["run_id", "training_workers", "allowed_ops", "x"]), json_values
    )
)
def test_any_mapping_reads_without_raising_and_writes_back(data: dict[str, Any]) -> None:
    lineage = Lineage.read(data)
    assert lineage.to_dict() == data
    assert lineage.run_id is None or isinstance(lineage.run_id, str)
    assert lineage.training_workers is None or isinstance(lineage.training_workers, int)


def test_a_wrong_typed_value_is_kept_and_the_field_reads_as_not_recorded() -> None:
    ops = [{"op": "PrintV2", "reason": "audit"}]
    stored = {"training_workers": "2", "run_id": True, "allowed_ops": ops, "code_version": 3}
    lineage = Lineage.read(stored)
    assert lineage.training_workers is None and lineage.run_id is None
    assert lineage.allowed_ops == tuple(ops) and lineage.code_version is None
    assert lineage.to_dict() == stored
    assert Lineage.read({"allowed_ops": ["PrintV2"]}).extra == {"allowed_ops": ["PrintV2"]}


def test_read_by_attribute_only() -> None:
    lineage = Lineage.read(LINEAGE)
    assert lineage.code_version == "0123abc" and lineage.run_id is None
    assert "run_id" not in lineage.to_dict() and lineage.to_dict() == LINEAGE
    with pytest.raises(TypeError, match="not subscriptable"):
        lineage["code_version"]  # type: ignore[index]
    assert not isinstance(lineage, Mapping)
    assert Lineage.read(["not", "a", "mapping"]) == Lineage()
    assert Lineage.read(lineage) is lineage
    assert VersionRecord(lineage=LINEAGE).lineage == lineage


def test_facts_given_as_none_are_written_as_null() -> None:
    written = Lineage.of(run_id="r1", contract_fingerprint=None)
    assert written.to_dict() == {"run_id": "r1", "contract_fingerprint": None}
    assert Lineage(run_id="r1").to_dict() == {"run_id": "r1"}
    assert Lineage.read(written.to_dict()).to_dict() == written.to_dict()
    again = written.updated(contract_fingerprint="c", label=None)
    assert again.to_dict() == {"run_id": "r1", "contract_fingerprint": "c", "label": None}


def test_merged_writes_the_other_over_this() -> None:
    imported = Lineage.read({"origin": "imported", "eval_data": "a.csv", "x": 1})
    evaluated = Lineage.of(eval_data="b.csv", label="y")
    assert imported.merged(evaluated).to_dict() == {
        "origin": "imported",
        "eval_data": "b.csv",
        "x": 1,
        "label": "y",
    }


def test_the_data_the_card_shows_and_the_package_versions() -> None:
    lineage = Lineage.read({"train": "old.csv", "run_id": "r", "eval_data": "e.csv"})
    assert lineage.data == {"train": "old.csv", "eval_data": "e.csv"}
    assert Lineage.of(keras_version="3").package_versions == {
        "mooring": None,
        "tensorflow": None,
        "keras": "3",
    }


def test_every_fact_is_a_field() -> None:
    named = {f.name for f in fields(Lineage)} - {"extra", "missing"}
    assert named == set(LineageFacts.__annotations__)


def test_a_registered_lineage_reads_back_typed(tmp_path: Path) -> None:
    registry = Registry.open(
        f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path / "artifacts"
    )
    try:
        given = Lineage.of(**LINEAGE, run_id="r1", contract_fingerprint=None)
        mv = registry.register("income", make_model_dir(tmp_path), VersionRecord(lineage=given))
        got = registry.get("income", version=mv.version)
    finally:
        registry.close()
    assert isinstance(got.lineage, Lineage) and got.record.lineage == got.lineage
    assert got.lineage.run_id == "r1"
    assert got.lineage.to_dict() == {
        **given.to_dict(),
        "mooring_version": got.lineage.mooring_version,
        "tensorflow_version": got.lineage.tensorflow_version,
        "keras_version": got.lineage.keras_version,
    }
    assert got.to_dict()["lineage"] == got.lineage.to_dict()
    assert json.loads(json.dumps(got.to_dict()))["lineage"]["contract_fingerprint"] is None
