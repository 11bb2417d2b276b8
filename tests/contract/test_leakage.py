"""The leakage guard on real tables: a copy of the label and two columns summing to it are
found, and no column of the zoo's honest tables (nor of generated ones) is called a leak."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import datasets
from sklearn.metrics import r2_score, roc_auc_score

from mooring.contract._io import ReadOptions, read_table
from mooring.contract._leakage import auc, column_power, find_leaks, label_values
from tests._support.generated_tables import TableSpec, table_specs
from tests._support.project import ADULT


@pytest.fixture(scope="module")
def adult() -> pa.Table:
    return read_table(ADULT / "adult.data.csv.gz", ReadOptions(na_values=("?", "")))


def _with_reject(table: pa.Table) -> pa.Table:
    """Adult with ``reject`` = 1 − the label, as a loan table had it."""
    positive = pc.equal(table["class"], ">50K").cast(pa.int64())
    return table.append_column("reject", pc.subtract(1, positive))


def test_a_column_that_is_one_minus_the_label_is_a_leak_on_adult(adult: pa.Table) -> None:
    leaks = find_leaks(_with_reject(adult), "class", task="binary", positive=">50K")
    assert leaks == {"reject": "alone it gives AUC 1.000 (a leak: the label, or derived from it)"}


def test_a_text_copy_of_the_label_is_a_leak_and_the_honest_columns_are_not(
    adult: pa.Table,
) -> None:
    status = pc.if_else(pc.equal(adult["class"], ">50K"), "approved", "declined")
    powers = column_power(
        adult.append_column("status", status), "class", task="binary", positive=">50K"
    )
    assert [p.column for p in powers if p.value >= 0.99] == ["status"]
    # The strongest honest column, as scikit-learn scores it alone on the same rows.
    best = powers[1]
    assert best.column == "relationship" and 0.7 < best.value < 0.85
    y = label_values(adult["class"], "binary", ">50K")
    rate = {
        v: y[np.asarray(adult["relationship"].to_pylist(), dtype=object) == v].mean()
        for v in set(adult["relationship"].to_pylist())
    }
    reference = roc_auc_score(y, [rate[v] for v in adult["relationship"].to_pylist()])
    assert best.value == pytest.approx(reference, abs=0.02)  # a sample's held half


def _diabetes_with_parts() -> pa.Table:
    """scikit-learn's diabetes with two columns that sum to the target (a rent and its
    parts), as a rental table had them."""
    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    share = np.random.default_rng(1).uniform(0.2, 0.8, len(frame))
    frame["base"] = np.round(frame["target"] * share, 2)
    frame["extras"] = np.round(frame["target"] - frame["base"], 2)
    return pa.Table.from_pandas(frame, preserve_index=False)


def test_two_columns_that_sum_to_the_label_are_both_leaks_on_diabetes() -> None:
    table = _diabetes_with_parts()
    leaks = find_leaks(table, "target", task="regression")
    assert sorted(leaks) == ["base", "extras"]
    assert leaks["base"].startswith("with 'extras' it gives the label (R² 1.0000: ≈ 1·base")
    # Neither alone explains it: the pair is the leak (scikit-learn's R² of each alone).
    powers = {p.column: p.value for p in column_power(table, "target", task="regression")}
    y = table["target"].to_numpy()
    for name in ("base", "extras"):
        x = table[name].to_numpy()
        line = np.polyval(np.polyfit(x, y, 1), x)
        assert powers[name] < 0.99 and r2_score(y, line) < 0.99


def _frame(loader: Callable[[], Any]) -> pa.Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pa.Table.from_pandas(loader(), preserve_index=False)


def _sklearn(name: str) -> Callable[[], Any]:
    return lambda: getattr(datasets, name)(as_frame=True).frame


def _penguins() -> Any:
    from palmerpenguins import load_penguins_raw

    return load_penguins_raw()


def _vega(name: str) -> Callable[[], Any]:
    def load() -> Any:
        from vega_datasets import data

        return getattr(data, name)()

    return load


ZOO = [
    ("iris", _sklearn("load_iris"), "target", "multiclass", None),
    ("wine", _sklearn("load_wine"), "target", "multiclass", None),
    ("diabetes", _sklearn("load_diabetes"), "target", "regression", None),
    ("breast_cancer", _sklearn("load_breast_cancer"), "target", "binary", "1"),
    ("digits", _sklearn("load_digits"), "target", "multiclass", None),
    ("penguins", _penguins, "Species", "multiclass", None),
    ("cars", _vega("cars"), "Miles_per_Gallon", "regression", None),
    ("seattle_weather", _vega("seattle_weather"), "weather", "multiclass", None),
]


@pytest.mark.parametrize(
    ("name", "load", "label", "task", "positive"), ZOO, ids=[z[0] for z in ZOO]
)
def test_no_column_of_an_honest_zoo_table_is_a_leak(
    name: str, load: Callable[[], Any], label: str, task: str, positive: str | None
) -> None:
    assert find_leaks(_frame(load), label, task=task, positive=positive) == {}


def test_no_column_of_adult_is_a_leak(adult: pa.Table) -> None:
    assert find_leaks(adult, "class", task="binary", positive=">50K") == {}


def test_a_text_column_of_unique_values_memorises_nothing() -> None:
    rng = np.random.default_rng(0)
    rows = 2000
    table = pa.table(
        {
            "ref": [f"R{i:05d}" for i in rng.permutation(rows)],
            "y": rng.integers(0, 2, rows),
        }
    )
    (power,) = column_power(table, "y", task="binary", positive="1")
    assert power.value < 0.6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=table_specs(max_rows=600))
def test_a_generated_table_without_a_leak_has_none(spec: TableSpec) -> None:
    # Its signal column explains the label through noise (AUC ~0.95): strong, not a leak.
    assert find_leaks(spec.table(), spec.label, task="binary", positive="yes") == {}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=table_specs(max_rows=600), encoding=st.sampled_from(["text", "flipped", "scaled"]))
def test_a_generated_table_with_the_label_under_another_name_has_that_leak(
    spec: TableSpec, encoding: str
) -> None:
    table = spec.table()
    positive = pc.equal(table[spec.label], "yes")
    copy = {
        "text": pc.if_else(positive, "ok", "ko"),
        "flipped": pc.subtract(1, positive.cast(pa.int64())),
        "scaled": pc.multiply(positive.cast(pa.float64()), 250.0),
    }[encoding]
    name = "leak " + spec.label
    leaks = find_leaks(table.append_column(name, copy), spec.label, task="binary", positive="yes")
    assert list(leaks) == [name]


def test_auc_is_scikit_learns_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    score = np.round(y * 0.3 + rng.normal(0, 1, 500), 1)
    assert auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
