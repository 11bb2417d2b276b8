"""Every anomaly kind from a crafted file with the exact expected count, then all at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mooring.config._data import ContractConfig
from mooring.contract._io import ReadOptions
from mooring.contract._schema import Schema, infer_schema
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.contract._validation import (
    AnomalyKind,
    ValidationResult,
    validate,
    validate_statistics,
)
from mooring.errors import UsageError

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
CONTRACT = ContractConfig(critical=["age"], max_age="2d")
OPTIONS = ReadOptions()


def good_rows(n: int = 2000, seed: int = 0) -> dict[str, list[object]]:
    rng = np.random.default_rng(seed)
    start = NOW - dt.timedelta(days=10)
    return {
        "age": [int(v) for v in rng.integers(20, 61, size=n)],
        "income": [float(v) for v in np.round(rng.normal(50_000, 8_000, size=n), 2)],
        "city": [
            str(v) for v in rng.choice(["Oslo", "Bergen", "Tromsø"], size=n, p=[0.5, 0.3, 0.2])
        ],
        "ts": [
            (start + dt.timedelta(minutes=7 * i)).strftime("%Y-%m-%dT%H:%M:%S") for i in range(n)
        ],
        "label": [str(v) for v in rng.choice(["yes", "no"], size=n)],
    }


def write(path: Path, columns: dict[str, list[object]]) -> Path:
    table = pa.table(
        {
            k: pa.array([None if v is None else str(v) for v in vs], pa.string())
            for k, vs in columns.items()
        }
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
    return path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Schema, DatasetStatistics]:
    path = write(tmp_path_factory.mktemp("base") / "good.csv", good_rows())
    stats = compute_statistics(path, OPTIONS)
    return infer_schema(stats, label="label", timestamp="ts", contract=CONTRACT), stats


def check(path: Path, baseline: tuple[Schema, DatasetStatistics]) -> ValidationResult:
    schema, stats = baseline
    return validate(path, schema, options=OPTIONS, baseline=stats, contract=CONTRACT, now=NOW)


def test_good_data_has_no_anomalies(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    result = check(write(tmp_path / "again.csv", good_rows(seed=1)), baseline)
    assert result.anomalies == [], result.render_text()
    # Distances are recorded even below their thresholds.
    assert {(d.column, d.metric) for d in result.distances} >= {("income", "psi"), ("city", "linf")}
    assert not any(d.exceeded for d in result.distances)


def test_missing_column(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = good_rows(seed=1)
    del rows["city"]
    result = check(write(tmp_path / "f.csv", rows), baseline)
    assert result.count(AnomalyKind.MISSING_COLUMN) == 1
    assert result.find(AnomalyKind.MISSING_COLUMN).column == "city"
    assert len(result.anomalies) == 1


def test_unexpected_column(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = good_rows(seed=1)
    rows["shoe_size"] = [42] * 2000
    result = check(write(tmp_path / "f.csv", rows), baseline)
    assert [a.kind for a in result.anomalies] == [AnomalyKind.UNEXPECTED_COLUMN]


def test_type_mismatch_on_critical_column_is_error(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    rows = good_rows(seed=1)
    for i in (1500, 1600, 1700):  # after the first block: the reader must retype, not crash
        rows["age"][i] = "forty"
    result = check(write(tmp_path / "f.csv", rows), baseline)
    anomaly = result.find(AnomalyKind.TYPE_MISMATCH, "age")
    assert anomaly.count == 3
    assert anomaly.examples == ("forty", "forty", "forty")
    assert anomaly.severity == "error" and not result.ok


def test_fractional_value_in_integer_column(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    rows = good_rows(seed=1)
    rows["age"][10] = 33.5
    result = check(write(tmp_path / "f.csv", rows), baseline)
    assert result.find(AnomalyKind.TYPE_MISMATCH, "age").count == 1


def test_null_fraction(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = good_rows(seed=1)
    for i in range(0, 2000, 10):
        rows["income"][i] = None
    result = check(write(tmp_path / "f.csv", rows), baseline)
    anomaly = result.find(AnomalyKind.NULL_FRACTION, "income")
    assert anomaly.count == 200 and anomaly.fraction == pytest.approx(0.1)
    assert anomaly.severity == "warning" and result.ok


def test_out_of_range(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = good_rows(seed=1)
    for i, value in zip(range(5), [500, 600, -3, 700, 999], strict=True):
        rows["age"][i] = value
    result = check(write(tmp_path / "f.csv", rows), baseline)
    anomaly = result.find(AnomalyKind.OUT_OF_RANGE, "age")
    assert anomaly.count == 5
    assert anomaly.fraction == pytest.approx(5 / 2000)
    assert set(anomaly.examples) == {500.0, 600.0, -3.0, 700.0, 999.0}
    assert anomaly.severity == "error"


def test_unseen_categories(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = good_rows(seed=1)
    for i in range(4):
        rows["city"][i] = "Narvik"
    rows["city"][4] = "Bodø"
    result = check(write(tmp_path / "f.csv", rows), baseline)
    anomaly = result.find(AnomalyKind.UNSEEN_CATEGORY, "city")
    assert anomaly.count == 5
    assert anomaly.examples == ("Narvik", "Bodø")


def test_empty_dataset(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("age,income,city,ts,label\n")
    result = check(path, baseline)
    assert result.count(AnomalyKind.EMPTY_DATASET) == 1
    assert not result.ok


def test_row_count_change(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = {k: v[:150] for k, v in good_rows(seed=1).items()}
    result = check(write(tmp_path / "f.csv", rows), baseline)
    anomaly = result.find(AnomalyKind.ROW_COUNT_CHANGE)
    assert anomaly.value == pytest.approx(150 / 2000)


def test_stale_data(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    schema, stats = baseline
    result = validate(
        write(tmp_path / "f.csv", good_rows(seed=1)),
        schema,
        options=OPTIONS,
        baseline=stats,
        contract=CONTRACT,
        now=NOW + dt.timedelta(days=30),
    )
    assert [a.kind for a in result.anomalies] == [AnomalyKind.STALE_DATA]


def test_distribution_drift(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = good_rows(seed=1)
    rows["income"] = [v + 6000 for v in rows["income"]]  # type: ignore[operator]
    rows["city"] = ["Oslo"] * 1900 + ["Bergen"] * 100
    result = check(write(tmp_path / "f.csv", rows), baseline)
    drifted = {
        (a.column, a.threshold)
        for a in result.anomalies
        if a.kind == AnomalyKind.DISTRIBUTION_DRIFT
    }
    assert ("income", 0.2) in drifted  # PSI
    assert ("city", 0.1) in drifted  # L-infinity and Jensen–Shannon both 0.1
    assert result.count(AnomalyKind.DISTRIBUTION_DRIFT, "age") == 0


def test_the_event_time_and_unread_columns_are_not_compared_with_the_baseline(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    """A held-out month is newer than training by construction, and an id the model does
    not read moves nothing: neither is distribution drift; the columns read still are."""
    schema, stats = baseline
    rows = good_rows(seed=1)
    rows["ts"] = [
        (NOW - dt.timedelta(days=1, minutes=i)).strftime("%Y-%m-%dT%H:%M:%S") for i in range(2000)
    ]
    rows["city"] = ["Oslo"] * 1900 + ["Bergen"] * 100
    rows["income"] = [v + 6000 for v in rows["income"]]  # type: ignore[operator]
    path = write(tmp_path / "later.csv", rows)
    result = validate(
        path, schema, options=OPTIONS, baseline=stats, contract=CONTRACT, now=NOW,
        reads={"age", "income"},
    )  # fmt: skip
    compared = {d.column for d in result.distances}
    assert compared == {"age", "income", "label"}, compared
    assert result.count(AnomalyKind.DISTRIBUTION_DRIFT, "income") == 2  # JS and PSI
    every = validate(path, schema, options=OPTIONS, baseline=stats, contract=CONTRACT, now=NOW)
    assert {d.column for d in every.distances} == {"age", "income", "city", "label"}


def test_a_date_column_besides_the_event_time_is_not_compared_with_the_baseline() -> None:
    """Every date or time column is the time axis: a new month lies wholly past the
    training dates (Jensen-Shannon 1.0), and that is no drift."""
    rng = np.random.default_rng(2)

    def month(first: dt.datetime) -> pa.Table:
        hours = rng.integers(0, 600, 500)
        return pa.table(
            {
                "signup": [first + dt.timedelta(hours=int(h)) for h in hours],
                "age": rng.integers(20, 61, 500),
            }
        )

    stats = compute_statistics(month(dt.datetime(2026, 1, 1)))
    schema = infer_schema(stats)
    assert schema.columns["signup"].type == "timestamp" and schema.timestamp is None
    later = compute_statistics(month(dt.datetime(2026, 2, 1)), schema=schema)
    result = validate_statistics(later, schema, baseline=stats)
    assert {d.column for d in result.distances} == {"age"}
    assert result.count(AnomalyKind.DISTRIBUTION_DRIFT) == 0


def test_everything_at_once(tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]) -> None:
    rows = {k: v[:150] for k, v in good_rows(seed=1).items()}  # row count change
    del rows["label"]  # missing column
    rows["extra"] = ["x"] * 150  # unexpected column
    rows["age"][140] = "forty"  # type mismatch
    rows["age"][0] = 500  # out of range
    for i in range(30):
        rows["income"][i] = None  # null fraction
    rows["city"][1] = "Narvik"  # unseen category
    rows["city"][2:] = ["Oslo"] * 148  # drift
    schema, stats = baseline
    result = validate(
        write(tmp_path / "f.csv", rows),
        schema,
        options=OPTIONS,
        baseline=stats,
        contract=CONTRACT,
        now=NOW + dt.timedelta(days=30),
    )
    kinds = {a.kind for a in result.anomalies}
    # A rename and a constant column have tests of their own below.
    alone = {AnomalyKind.EMPTY_DATASET, AnomalyKind.RENAMED_COLUMN, AnomalyKind.CONSTANT_COLUMN}
    assert kinds == set(AnomalyKind) - alone
    assert result.find(AnomalyKind.TYPE_MISMATCH, "age").count == 1
    assert result.find(AnomalyKind.OUT_OF_RANGE, "age").count == 1
    assert result.find(AnomalyKind.NULL_FRACTION, "income").count == 30
    assert result.find(AnomalyKind.UNSEEN_CATEGORY, "city").count == 1
    # Errors come from the critical column 'age' (with 150 rows its distance to the
    # baseline may also cross a threshold by sampling noise) and from the missing label,
    # which is structural whatever severity says; everything else warns.
    assert {a.column for a in result.errors} == {"age", "label"}
    assert result.find(AnomalyKind.MISSING_COLUMN, "label").severity == "error"
    assert {a.kind for a in result.errors} >= {AnomalyKind.TYPE_MISMATCH, AnomalyKind.OUT_OF_RANGE}
    text = result.render_text()
    assert text.startswith("FAILED") and "unseen_category" in text


def test_adult_train_validates_against_itself(
    adult_train: Path, adult_options: ReadOptions
) -> None:
    contract = ContractConfig(critical=["age", "education-num"])
    stats = compute_statistics(adult_train, adult_options)
    schema = infer_schema(stats, label="class", contract=contract)
    result = validate(adult_train, schema, options=adult_options, contract=contract)
    assert result.errors == [] and result.warnings == []


def test_adult_test_validates_against_training_schema(
    adult_train: Path, adult_test: Path, adult_options: ReadOptions
) -> None:
    contract = ContractConfig(critical=["age", "education-num"])
    stats = compute_statistics(adult_train, adult_options)
    schema = infer_schema(stats, label="class", contract=contract)
    result = validate(adult_test, schema, options=adult_options, baseline=stats, contract=contract)
    assert result.errors == [], result.render_text()
    assert len(result.distances) == 2 * len(schema.columns)
    for warning in result.warnings:  # allowed, and each one is explained
        assert warning.column is not None and warning.message


def test_result_json_round_trips_through_text(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    import orjson

    rows = good_rows(seed=1)
    rows["age"][0] = 500
    result = check(write(tmp_path / "f.csv", rows), baseline)
    data = orjson.loads(result.save(tmp_path / "r.json").read_bytes())
    assert data["ok"] is False and data["errors"] == 1
    assert data["anomalies"][0]["kind"] == "out_of_range"


def test_a_renamed_column_is_one_finding_naming_both(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    rows = good_rows(seed=1)
    rows["town"] = rows.pop("city")
    rows["years"] = rows.pop("age")
    result = check(write(tmp_path / "f.csv", rows), baseline)
    assert {(str(a.kind), a.column, a.examples) for a in result.anomalies} == {
        ("renamed_column", "city", ("town",)),
        ("renamed_column", "age", ("years",)),
    }
    assert all(a.severity == "error" for a in result.anomalies)


def test_a_new_column_with_other_values_is_not_taken_for_a_rename(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    rows = good_rows(seed=1)
    del rows["city"]
    rows["country"] = ["Norway"] * len(rows["age"])
    result = check(write(tmp_path / "f.csv", rows), baseline)
    assert result.find(AnomalyKind.MISSING_COLUMN, "city").severity == "error"
    assert result.find(AnomalyKind.UNEXPECTED_COLUMN, "country").severity == "warning"
    assert result.count(AnomalyKind.RENAMED_COLUMN) == 0


def test_a_retyped_column_is_reported_once_not_also_as_missing_values(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    rows = good_rows(seed=1)
    rows["age"] = [f"age {v}" for v in rows["age"]]  # integer -> text
    result = check(write(tmp_path / "f.csv", rows), baseline)
    assert [(str(a.kind), a.column) for a in result.anomalies] == [("type_mismatch", "age")]
    assert result.anomalies[0].count == len(rows["age"])


def test_a_constant_column_warns_with_its_value(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    rows = good_rows(seed=1)
    rows["city"] = ["Oslo"] * len(rows["city"])
    rows["income"] = [0.0] * len(rows["income"])
    result = check(write(tmp_path / "f.csv", rows), baseline)
    constant = result.find(AnomalyKind.CONSTANT_COLUMN, "city")
    assert constant.severity == "warning" and constant.examples == ("Oslo",)
    assert result.find(AnomalyKind.CONSTANT_COLUMN, "income").examples == ("0",)


def test_a_missing_column_the_model_does_not_read_only_warns(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    schema, _ = baseline
    rows = good_rows(seed=1)
    del rows["city"]
    path = write(tmp_path / "f.csv", rows)
    result = validate(path, schema, options=OPTIONS, contract=CONTRACT, now=NOW, reads=["age"])
    missing = result.find(AnomalyKind.MISSING_COLUMN, "city")
    assert result.ok and missing.severity == "warning"
    assert "does not read it" in missing.message


def test_serving_data_needs_no_label_and_training_data_does(
    tmp_path: Path, baseline: tuple[Schema, DatasetStatistics]
) -> None:
    schema, _ = baseline
    rows = good_rows(seed=1)
    del rows["label"]
    path = write(tmp_path / "requests.csv", rows)
    serving = validate(
        path, schema, options=OPTIONS, contract=CONTRACT, now=NOW, environment="serving"
    )
    assert serving.anomalies == []
    training = validate(path, schema, options=OPTIONS, contract=CONTRACT, now=NOW)
    assert training.find(AnomalyKind.MISSING_COLUMN, "label").severity == "error"
    with pytest.raises(UsageError, match="environment 'prod' is not one of"):
        validate(path, schema, options=OPTIONS, environment="prod")


def test_a_missing_boolean_is_missing_not_a_type_mismatch(tmp_path: Path) -> None:
    """Booleans read as text (a CSV, or a contract's type): an empty cell is a missing
    value; only a token that is no boolean spelling is a mismatch."""
    flags = ["true", "false", None] * 40
    base = write(tmp_path / "base.csv", {"flag": flags, "label": ["a", "b"] * 60})
    schema = infer_schema(compute_statistics(base, OPTIONS), label="label")
    assert schema.columns["flag"].type == "boolean"
    later = write(tmp_path / "later.csv", {"flag": [*flags[:-1], "banana"], "label": ["a"] * 120})
    stats = compute_statistics(later, OPTIONS, schema=schema)
    assert (stats["flag"].type_mismatch, stats["flag"].mismatch_examples) == (1, ["banana"])
    assert stats["flag"].missing == 40  # 39 empty cells, and the banana
