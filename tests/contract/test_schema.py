from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mooring.config._data import ColumnOverride, ContractConfig
from mooring.contract._schema import ColumnSchema, Schema, infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.errors import NotFoundError, SchemaError


def make_stats() -> pa.Table:
    return pa.table(
        {
            "age": [20, 30, 40, 50, None],
            "score": [0.5, 1.5, 2.5, 3.5, 4.5],
            "city": ["a", "b", "a", None, "c"],
            "id": [f"u{i}" for i in range(5)],
            "y": ["no", "yes", "no", "no", "yes"],
        }
    )


def test_inference_rules() -> None:
    stats = compute_statistics(make_stats())
    schema = infer_schema(
        stats, label="y", contract=ContractConfig(max_domain_size=4, range_margin=0.1)
    )
    age = schema.columns["age"]
    assert (age.type, age.min, age.max) == ("integer", 17, 53)
    assert age.max_null_fraction == pytest.approx(0.2 + 0.02)
    assert schema.columns["score"].max_null_fraction == 0.0
    assert schema.columns["city"].domain == ["a", "b", "c"]
    assert schema.columns["id"].domain is None  # 5 distinct > max_domain_size 4
    assert schema.label == "y" and schema.feature_names == ["age", "score", "city", "id"]


def test_non_negative_columns_stay_non_negative() -> None:
    stats = compute_statistics(pa.table({"gain": [0, 0, 0, 100]}))
    assert infer_schema(stats).columns["gain"].min == 0


def test_overrides_and_critical() -> None:
    stats = compute_statistics(make_stats())
    contract = ContractConfig(
        critical=["age"], columns={"age": ColumnOverride(max=120, severity="warning")}
    )
    schema = infer_schema(stats, contract=contract)
    assert schema.columns["age"].critical and schema.columns["age"].max == 120


def test_unknown_critical_column() -> None:
    stats = compute_statistics(make_stats())
    with pytest.raises(SchemaError, match=r"critical column 'agee' is not in the data"):
        infer_schema(stats, contract=ContractConfig(critical=["agee"]))


def test_unknown_label() -> None:
    with pytest.raises(SchemaError, match=r"label 'target' is not a column"):
        infer_schema(compute_statistics(make_stats()), label="target")


def test_yaml_round_trip(tmp_path: Path) -> None:
    schema = infer_schema(compute_statistics(make_stats()), label="y")
    path = schema.save(tmp_path / "schema.yaml")
    assert Schema.load(path) == schema
    assert Schema.load(path).fingerprint() == schema.fingerprint()
    assert path.read_text().startswith("# mooring data contract")


def test_bad_schema_files(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("format: mooring.schema\ncolumns:\n  a: {type: text}\n")
    with pytest.raises(SchemaError, match=r"column 'a': type 'text' is not one of"):
        Schema.load(path)
    path.write_text("format: mooring.schema\ncolumns:\n  a: {type: integer, mini: 3}\n")
    with pytest.raises(SchemaError, match=r"unknown keys \['mini'\]"):
        Schema.load(path)
    path.write_text("columns: [\n")
    with pytest.raises(SchemaError, match=r"not valid YAML"):
        Schema.load(path)
    with pytest.raises(NotFoundError, match=r"mooring schema infer"):
        Schema.load(tmp_path / "missing.yaml")


column_specs = st.builds(
    ColumnSchema,
    name=st.just("c"),
    type=st.sampled_from(["integer", "float", "string", "boolean", "timestamp"]),
    required=st.booleans(),
    max_null_fraction=st.floats(0, 1),
    min=st.one_of(st.none(), st.floats(-1e6, 0)),
    max=st.one_of(st.none(), st.floats(1, 1e6)),
    domain=st.one_of(st.none(), st.lists(st.text(min_size=1, max_size=8), max_size=5)),
    critical=st.booleans(),
    severity=st.sampled_from([None, "error", "warning"]),
)


@given(st.lists(column_specs, min_size=1, max_size=5))
def test_schema_round_trip_property(specs: list[ColumnSchema]) -> None:
    columns = {}
    for i, spec in enumerate(specs):
        spec.name = f"c{i}"
        columns[spec.name] = spec
    schema = Schema(columns=columns, label=None)
    assert Schema.from_dict(schema.to_dict()) == schema
