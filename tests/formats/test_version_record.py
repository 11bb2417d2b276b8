"""A version's typed record: stored run records read back losslessly and tolerantly, one
place deciding task and kind, and what ``Registry.register`` refuses."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.errors import UsageError
from mooring.formats._candidate import CandidateRecord
from mooring.formats._version_record import (
    Candidates,
    References,
    RunRecord,
    VersionRecord,
)
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry._manifest import canonical_json
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir

SCHEMA = {
    "format": "mooring.schema",
    "columns": {"age": {"type": "integer"}, "sex": {"type": "string"}},
}
REFS = {
    "format": "mooring.references",
    "segments": {"sex": {"Female": {"format": "mooring.statistics", "num_rows": 3}}},
    "outputs": None,
    "evaluation": {"metrics": {"auc": 0.9}, "data": "/d/adult.test.csv", "rows": 10},
    "calibration": None,
    "settings": {"bins": 10, "rare_share": 0.01, "segments": ["sex"]},
}
# A run record as `mooring run` stores it today: the training run's run.json, then the
# evaluation's facts (nulls included), the schema and the frozen references.
STORED: dict[str, Any] = {
    "format": "mooring.run",
    "version": 1,
    "started": "2024-05-01T12:00:00+00:00",
    "params": {"kind": "gbt", "epochs": 3},
    "kind": "gbt",
    "seed": 42,
    "task": "binary",
    "label": {"task": "binary", "vocabulary": ["<=50K", ">50K"]},
    "features": {"age": {"kind": "numeric"}, "sex": {"kind": "categorical"}},
    "epochs": [],
    "best_epoch": None,
    "parity": None,
    "model_dir": "/w/model",
    "evaluation_report": "/w/.mooring/runs/r1/evaluation",
    "pipeline_run": "r1",
    "chosen_candidate": "trees",
    "select": None,
    "candidates": [{"name": "trees", "kind": "gbt", "chosen": True}, {"name": "mlp"}],
    "threshold": 0.42,
    "threshold_source": "cost",
    "schema": SCHEMA,
    "references": REFS,
}

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["binary", "regression", "gbt", "mlp", "mooring.run", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    [
        "schema",
        "features",
        "threshold",
        "threshold_source",
        "kind",
        "task",
        "chosen_candidate",
        "select",
        "candidates",
        "references",
        "evaluation_report",
        "report",
        "evaluation",
        "pipeline_run",
        "prediction_statistics",
        "format",
        "hidden",
        "builder",
        "candidate",
        "columns",
        "segments",
        "outputs",
        "calibration",
        "settings",
        "type",
    ]
)
_names = st.sampled_from(["age", "sex", "x"])
_maps = st.dictionaries(st.text(max_size=6), _json, max_size=3)
_columns = st.dictionaries(_names, st.fixed_dictionaries({"type": _json}) | _json, max_size=3)
# Run records laid out as today's, each typed key present or not, with right or wrong types.
_laid_out = st.fixed_dictionaries(
    {},
    optional={
        "schema": st.fixed_dictionaries({"columns": _columns | _json}) | _json,
        "features": st.dictionaries(_names, _json, max_size=3) | _json,
        "threshold": st.floats(0, 1) | st.integers() | _json,
        "threshold_source": _json,
        "kind": _json,
        "task": _json,
        "chosen_candidate": _json,
        "select": _json,
        "candidates": st.lists(_maps, max_size=3) | _json,
        "references": st.fixed_dictionaries(
            {}, optional={k: _maps | _json for k in ("segments", "outputs", "evaluation")}
        )
        | _json,
        "evaluation_report": _json,
        "pipeline_run": _json,
        "prediction_statistics": _maps | _json,
        "format": _json,
        "seed": _json,
    },
)
# ... and mappings of those keys at every depth.
_records = _laid_out | st.recursive(
    st.dictionaries(_KEYS | st.text(max_size=6), _json, max_size=8),
    lambda inner: st.dictionaries(_KEYS, inner | _json | st.lists(inner, max_size=2), max_size=6),
    max_leaves=10,
)


def test_todays_stored_record_writes_back_the_identical_mapping() -> None:
    run = RunRecord.read(copy.deepcopy(STORED))
    assert run.to_dict() == STORED
    assert canonical_json(run.to_dict()) == canonical_json(STORED)
    assert (run.kind, run.task, run.threshold, run.threshold_source) == (
        "gbt",
        "binary",
        0.42,
        "cost",
    )
    assert run.candidates == Candidates(
        chosen="trees",
        select=None,
        results=tuple(CandidateRecord.read(row) for row in STORED["candidates"]),
    )
    assert run.references is not None and run.references.evaluation_data == "/d/adult.test.csv"
    assert run.references.outputs is None and run.references.to_dict() == REFS
    assert (run.pipeline_run, run.origin) == ("r1", "trained")
    assert run.inputs == {"age": "integer", "sex": "string"}
    assert {"seed", "select", "best_epoch", "parity"} <= set(run.extra)


def test_a_regression_record_keeps_its_null_threshold() -> None:
    stored = {"task": "regression", "threshold": None, "threshold_source": None, "kind": "mlp"}
    run = RunRecord.read(stored)
    assert (run.threshold, run.operating_threshold, run.task) == (None, None, "regression")
    assert run.to_dict() == stored


def test_updated_records_facts_as_a_dict_assignment_would() -> None:
    training = {"format": "mooring.run", "kind": "mlp", "task": "binary", "seed": 1}
    run = RunRecord.read(training).updated(
        evaluation_report="/w/evaluation",
        pipeline_run="r2",
        kind="linear",
        threshold=None,
        threshold_source=None,
        candidates=Candidates(
            chosen=None, select="auc", results=(CandidateRecord.read({"name": "a"}),)
        ),
        schema=SCHEMA,
        references=References.read(REFS),
    )
    assert run.to_dict() == {
        **training,
        "evaluation_report": "/w/evaluation",
        "pipeline_run": "r2",
        "kind": "linear",
        "threshold": None,
        "threshold_source": None,
        "chosen_candidate": None,
        "select": "auc",
        "candidates": [{"name": "a"}],
        "schema": SCHEMA,
        "references": REFS,
    }


@given(_records)
def test_the_reader_never_raises_and_writes_back_what_it_read(data: dict[str, Any]) -> None:
    run = RunRecord.read(data)
    assert run.to_dict() == data
    assert run.origin in ("trained", "imported")
    assert run.inputs is None or all(isinstance(v, str) for v in run.inputs.values())
    assert run.operating_threshold is None or isinstance(run.operating_threshold, float)
    if run.references is not None:
        assert run.references.evaluation_data is None or run.references.evaluation_data


@given(_json, _json, _json, _json, _json, _json, _json)
def test_a_version_record_reads_any_stored_values(
    run_record: Any,
    params: Any,
    lineage: Any,
    gate: Any,
    statistics: Any,
    description: Any,
    parent: Any,
) -> None:
    record = VersionRecord.read(
        lineage=lineage,
        metrics=params,
        gate=gate,
        statistics=statistics,
        params=params,
        run_record=run_record,
        description=description,
        parent_version=parent,
    )
    assert record.task in (None, "binary", "multiclass", "regression")
    assert record.kind is None or (isinstance(record.kind, str) and record.kind)
    assert record.candidate is None or isinstance(record.candidate, str)
    assert record.report is None or isinstance(record.report, str)
    assert record.origin in ("trained", "imported")
    assert record.inputs is None or isinstance(record.inputs, dict)
    assert record.parent_version is None or isinstance(record.parent_version, int)


@given(_records, _records, _records)
def test_any_nested_layout_reads_without_raising(
    run_record: Any, params: Any, lineage: Any
) -> None:
    record = VersionRecord.read(run_record=run_record, params=params, lineage=lineage)
    found = (record.task, record.kind, record.candidate, record.report)
    assert all(value is None or isinstance(value, str) for value in found)
    assert record.run.to_dict() == run_record


@pytest.mark.parametrize(
    ("run_record", "params", "lineage", "task", "kind"),
    [
        (
            {"task": "binary", "kind": "gbt"},
            {"task": "regression", "kind": "mlp"},
            {},
            "binary",
            "gbt",
        ),
        ({}, {"task": "regression"}, {"kind": "linear"}, "regression", "linear"),
        (
            {"task": "ranking", "kind": ""},
            {"task": 3},
            {"task": "multiclass", "kind": "gbt"},
            "multiclass",
            "gbt",
        ),
        ({"kind": None}, {"hidden": [8]}, {}, None, "mlp"),
        ({"seed": 1}, {"builder": "pkg.mod:body"}, {"task": None}, None, None),
        ("not a mapping", None, ["nor", "this"], None, None),
    ],
)
def test_task_and_kind_come_from_the_run_record_then_params_then_lineage(
    run_record: Any, params: Any, lineage: Any, task: str | None, kind: str | None
) -> None:
    record = VersionRecord.read(run_record=run_record, params=params, lineage=lineage)
    assert (record.task, record.kind) == (task, kind)


def test_old_layouts_name_the_candidate_and_the_report() -> None:
    record = VersionRecord.read(
        run_record={"evaluation": {"folder": "reports/v3"}},
        params={"kind": "gbt", "candidate": "trees"},
        lineage={"evaluation_report": "reports/elsewhere"},
    )
    assert (record.kind, record.candidate, record.report) == ("gbt", "trees", "reports/v3")
    assert record.origin == "imported"
    lineage_only = VersionRecord.read(lineage={"report": "reports/v1"})
    assert lineage_only.report == "reports/v1"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", artifacts=tmp_path / "artifacts")
    yield reg
    reg.close()


def test_a_registered_record_is_stored_as_the_same_json(registry: Registry, tmp_path: Path) -> None:
    record = VersionRecord(
        lineage=LINEAGE,
        metrics={"overall": {"auc": 0.9}},
        gate=BLESSED,
        params={"kind": "gbt"},
        run=RunRecord.read(copy.deepcopy(STORED)),
        description="typed",
    )
    mv = register_judged(registry, "income", make_model_dir(tmp_path), record)
    got = registry.get("income", version=mv.version)
    assert json.dumps(got.run_record, sort_keys=True) == json.dumps(STORED, sort_keys=True)
    assert (got.params, got.metrics, got.description) == ({"kind": "gbt"}, record.metrics, "typed")
    assert got.record.run == RunRecord.read(STORED)
    assert (got.record.task, got.record.kind, got.record.candidate) == ("binary", "gbt", "trees")
    assert got.inputs == {"age": "integer", "sex": "string"} and got.operating_threshold == 0.42


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"lineage": LINEAGE}, r"record must be a VersionRecord, got dict; pass VersionRecord\("),
        (
            VersionRecord(run={"schema": SCHEMA}),  # type: ignore[arg-type]
            r"run must be a RunRecord, got dict; wrap a stored mapping as RunRecord\.read",
        ),
        (
            VersionRecord(intended_use="scoring tests"),
            r"intended_use and limitations are written only on the model card; pass render_card=",
        ),
        (VersionRecord(lineage={"x": object()}), r"lineage is not JSON-serializable"),
        (VersionRecord(metrics=[1, 2]), r"metrics must be a mapping \(dict\), got list"),  # type: ignore[arg-type]
        (
            VersionRecord(run=RunRecord(extra={"seed": {1, 2}})),
            r"run_record is not JSON-serializable .*pass plain str/int/float/bool/list/dict",
        ),
        (VersionRecord(parent_version=0), r"version 0 is not valid"),
    ],
)
def test_register_refuses_what_it_cannot_store(
    registry: Registry, tmp_path: Path, record: Any, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        register_judged(registry, "income", make_model_dir(tmp_path), record)
    assert registry.models() == []
    assert registry.artifacts.list_keys() == []
