"""Contract diffs on the Adult contract: renames suggested, breaking changes named."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._data import ContractConfig
from mooring.contract._diff import diff_schemas, likely_rename, types_compatible
from mooring.contract._io import ReadOptions
from mooring.contract._schema import ColumnSchema, Schema, infer_schema
from mooring.contract._statistics import compute_statistics

ADULT = Path(__file__).resolve().parents[2] / "examples" / "adult" / "adult.data.csv.gz"


@pytest.fixture(scope="module")
def adult() -> Schema:
    with gzip.open(ADULT) as fh:
        table = pacsv.read_csv(fh)
    stats = compute_statistics(table.slice(0, 5000), ReadOptions(na_values=("?", "")))
    return infer_schema(stats, label="class", contract=ContractConfig())


def _renamed(schema: Schema, old: str, new: str) -> Schema:
    columns = {(new if n == old else n): copy.deepcopy(c) for n, c in schema.columns.items()}
    columns[new].name = new
    return Schema(columns=columns, label=schema.label, timestamp=schema.timestamp)


def _kinds(before: Schema, after: Schema, **kw: object) -> list[tuple[str, str | None, bool]]:
    return [(c.kind, c.column, c.breaking) for c in diff_schemas(before, after, **kw).changes]  # type: ignore[arg-type]


def test_a_contract_has_no_changes_from_itself(adult: Schema) -> None:
    diff = diff_schemas(adult, copy.deepcopy(adult))
    assert diff.empty and diff.breaking == []
    assert diff.summary() == "no changes from A to B"


def test_a_removed_column_the_model_reads_is_breaking_and_one_it_does_not_is_not(
    adult: Schema,
) -> None:
    after = copy.deepcopy(adult)
    del after.columns["workclass"]
    assert _kinds(adult, after) == [("removed", "workclass", True)]
    reads = set(adult.columns) - {"workclass"}
    assert _kinds(adult, after, reads=reads) == [("removed", "workclass", False)]
    assert "workclass" in diff_schemas(adult, after).summary()


def test_a_rename_is_suggested_once_not_as_a_removal_and_an_addition(adult: Schema) -> None:
    after = _renamed(_renamed(adult, "hours-per-week", "hours_per_week"), "race", "ethnicity")
    changes = diff_schemas(adult, after).changes
    assert sorted((c.kind, c.before, c.after) for c in changes) == [
        ("renamed", "hours-per-week", "hours_per_week"),
        ("renamed", "race", "ethnicity"),
    ]
    assert all(c.breaking for c in changes)


def test_a_new_column_with_other_values_is_an_addition_not_a_rename(adult: Schema) -> None:
    after = copy.deepcopy(adult)
    del after.columns["race"]
    after.columns["planet"] = ColumnSchema("planet", "string", domain=["Earth", "Mars"])
    assert sorted(_kinds(adult, after)) == [
        ("added", "planet", False),
        ("removed", "race", True),
    ]


def test_type_changes_break_except_between_numbers(adult: Schema) -> None:
    after = copy.deepcopy(adult)
    after.columns["age"].type = "float"
    after.columns["education-num"].type = "string"
    after.columns["education-num"].min = after.columns["education-num"].max = None
    found = {(c.kind, c.column): c.breaking for c in diff_schemas(adult, after).changes}
    assert found[("type", "age")] is False
    assert found[("type", "education-num")] is True
    assert types_compatible("integer", "float") and not types_compatible("string", "integer")


def test_domain_range_and_null_changes_are_reported_and_not_breaking(adult: Schema) -> None:
    after = copy.deepcopy(adult)
    domain = after.columns["sex"].domain
    assert domain is not None
    after.columns["sex"].domain = [*domain, "Other"]
    after.columns["age"].max = 120
    after.columns["occupation"].max_null_fraction = 0.5
    changes = {(c.kind, c.column): c for c in diff_schemas(adult, after).changes}
    assert set(changes) == {("domain", "sex"), ("range", "age"), ("nulls", "occupation")}
    assert not any(c.breaking for c in changes.values())
    assert "+1 ('Other')" in changes[("domain", "sex")].message
    assert "50.00%" in changes[("nulls", "occupation")].message


def test_a_changed_label_is_breaking(adult: Schema) -> None:
    after = copy.deepcopy(adult)
    after.label = "sex"
    assert ("label", None, True) in _kinds(adult, after)


def test_numeric_rename_similarity_is_the_overlap_of_ranges() -> None:
    a = ColumnSchema("a", "integer", min=0, max=100)
    assert likely_rename(a, ColumnSchema("b", "integer", min=0, max=100)) == 1.0
    assert likely_rename(a, ColumnSchema("b", "integer", min=50, max=150)) == pytest.approx(1 / 3)
    assert likely_rename(a, ColumnSchema("b", "string", domain=["x"])) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_renaming_any_columns_is_found_as_renames(adult: Schema, data: st.DataObject) -> None:
    features = [n for n in adult.columns if n != adult.label]
    chosen = data.draw(st.lists(st.sampled_from(features), min_size=1, max_size=4, unique=True))
    after = adult
    for name in chosen:
        after = _renamed(after, name, name.upper() + "_NEW")
    diff = diff_schemas(adult, after)
    assert {(c.before, c.after) for c in diff.changes} == {
        (name, name.upper() + "_NEW") for name in chosen
    }
    assert {c.kind for c in diff.changes} == {"renamed"}
