"""Slices (values, buckets, crosses, min size, flags) and time windows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from mooring.config._evaluation import EvaluationConfig
from mooring.errors import DataError
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._slices import build_slices
from mooring.evaluation._windows import build_windows


def _frame(n: int = 3000, seed: int = 0) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Male", "Female"], n)
    race = rng.choice(["White", "Black", "Other"], n, p=[0.7, 0.25, 0.05])
    age = rng.integers(17, 90, n).astype(float)
    y = rng.integers(0, 2, n)
    noise = np.where(race == "Black", 2.5, 0.8)  # one slice is much worse
    p = 1 / (1 + np.exp(-((2 * y - 1) * 1.5 + rng.normal(0, 1, n) * noise)))
    start = dt.datetime(2024, 1, 1)
    ts = [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 60, n)]
    table = pa.table({"sex": sex, "race": race, "age": age, "ts": ts})
    return table, y, p


def test_slice_metrics_match_sklearn_on_each_subset() -> None:
    table, y, p = _frame()
    cfg = EvaluationConfig.model_validate(
        {
            "slices": ["sex", "race"],
            "slice_buckets": {"age": [30, 50]},
            "crosses": [["sex", "race"]],
            "bootstrap": {"samples": 200},
            "min_slice_size": 100,
        }
    )
    result = evaluate(task="binary", labels=y, scores=p, table=table, config=cfg)
    sex = table.column("sex").to_numpy(zero_copy_only=False)
    race = table.column("race").to_numpy(zero_copy_only=False)
    age = table.column("age").to_numpy()
    masks = {
        "sex=Female": sex == "Female",
        "race=Black": race == "Black",
        "age=[-inf, 30)": age < 30,
        "age=[30, 50)": (age >= 30) & (age < 50),
        "age=[50, inf)": age >= 50,
        "sex=Male & race=White": (sex == "Male") & (race == "White"),
    }
    for name, mask in masks.items():
        found = result.slice(name)
        assert found is not None, name
        assert found.size == int(mask.sum())
        assert found.metrics["auc"] == pytest.approx(roc_auc_score(y[mask], p[mask]), abs=1e-9)
    assert len([s for s in result.slices if s.columns == ("sex", "race")]) == 6
    black = result.slice("race=Black")
    assert black is not None and black.flagged and "outside the overall" in (black.note or "")
    small = [s for s in result.slices if not s.scored]
    assert small and all(s.size < 100 and s.metrics == {} for s in small)
    assert result.metric("auc", "sex=Female & race=Other") is None


def test_missing_values_and_quantile_buckets() -> None:
    table = pa.table({"city": ["a", None, "b", "a"], "income": [1.0, 2.0, None, 4.0]})
    slices = {s.name: s.rows.tolist() for s in build_slices(table, ["city"], {"income": 2}, [])}
    assert slices["city=a"] == [0, 3]
    assert slices["city=(missing)"] == [1]
    assert slices["income=(missing)"] == [2]
    assert slices["income=[-inf, 2)"] == [0]
    assert slices["income=[2, inf)"] == [1, 3]


def test_slice_errors_name_the_column_and_fix() -> None:
    table = pa.table({"sex": ["F"], "n": [1.0]})
    with pytest.raises(DataError, match="column 'race' is not in the evaluation data"):
        build_slices(table, ["race"], {}, [])
    with pytest.raises(DataError, match="'sex' has type string, not a number"):
        build_slices(table, [], {"sex": 3}, [])
    with pytest.raises(DataError, match="boundaries must be increasing"):
        build_slices(table, [], {"n": [3.0, 1.0]}, [])


def test_windows_by_day_week_month_and_rows() -> None:
    stamps = [dt.datetime(2024, 1, 31, 23), dt.datetime(2024, 2, 1, 1), dt.datetime(2024, 2, 5)]
    table = pa.table({"ts": stamps, "k": [3, 1, 2]})
    assert [w.name for w in build_windows(table, "ts", "day")] == [
        "2024-01-31",
        "2024-02-01",
        "2024-02-05",
    ]
    weeks = build_windows(table, "ts", "week")
    assert [(w.name, w.rows.tolist()) for w in weeks] == [
        ("2024-01-29", [0, 1]),
        ("2024-02-05", [2]),
    ]
    assert [w.name for w in build_windows(table, "ts", "month")] == ["2024-01", "2024-02"]
    blocks = build_windows(table, "k", 2)
    assert [(w.name, w.rows.tolist()) for w in blocks] == [("rows 0-1", [1, 2]), ("rows 2-2", [0])]
    text = pa.table({"ts": ["2024-03-01T10:00:00", "2024-03-02T10:00:00"]})
    assert len(build_windows(text, "ts", "day")) == 2
    with pytest.raises(DataError, match="not an ISO 8601"):
        build_windows(pa.table({"ts": ["yesterday"]}), "ts", "day")
    with pytest.raises(DataError, match="needs a timestamp column"):
        build_windows(table, None, "week")
    with pytest.raises(DataError, match="use freq = N"):
        build_windows(table, "k", "week")


def test_evaluate_reports_windows_with_spread_and_flags() -> None:
    table, y, p = _frame(4000, seed=1)
    cfg = EvaluationConfig.model_validate(
        {"bootstrap": {"samples": 100}, "windows": {"freq": "week", "min_size": 50}}
    )
    result = evaluate(
        task="binary", labels=y, scores=p, table=table, config=cfg, timestamp_column="ts"
    )
    assert result.windows is not None
    scored = [w for w in result.windows.windows if w.scored]
    assert len(scored) >= 8
    aucs = [w.metrics["auc"] for w in scored if w.metrics["auc"] is not None]
    assert result.windows.spread["auc"] == pytest.approx(max(aucs) - min(aucs))
    ci = result.intervals["auc"]
    for w in scored:
        value = w.metrics["auc"]
        assert value is not None
        assert w.flagged == (not ci.lower <= value <= ci.upper)
