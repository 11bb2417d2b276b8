"""Drift thresholds calibrated on natural variation, judged on windows cut from the bundled Adult.

The obvious rule (a fixed floor per distance) is wrong both ways on real data: on a
file whose features wander it flags every window; these tests show the calibrated rule
raising no alarm there and none on same-distribution windows, while the shifts that
matter (age + 5 years, the sex mix flipped, 5% of a category never seen) are still flagged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config import MonitoringConfig
from mooring.contract import DatasetStatistics, ReadOptions, compute_statistics, read_table
from mooring.monitoring.calibration import Calibration, calibrate, calibration_order
from mooring.monitoring.drift import compute_drift


@pytest.fixture(scope="module")
def train(adult_train: Path, adult_options: ReadOptions) -> pa.Table:
    return read_table(adult_train, adult_options)


@pytest.fixture(scope="module")
def stats(adult_train: Path, adult_options: ReadOptions) -> DatasetStatistics:
    return compute_statistics(adult_train, adult_options)


@pytest.fixture(scope="module")
def calibration(train: pa.Table, stats: DatasetStatistics) -> Calibration:
    columns = [c for c in stats.column_names if c != "class"]
    result = calibrate(train, stats, MonitoringConfig(), columns=columns)
    assert result is not None
    return result


@pytest.fixture(scope="module")
def test_rows(adult_test: Path, adult_options: ReadOptions) -> pa.Table:
    return read_table(adult_test, adult_options).drop(["class"])


def _sample(table: pa.Table, rows: int, rng: np.random.Generator) -> pa.Table:
    return table.take(pa.array(np.sort(rng.choice(table.num_rows, rows, replace=False))))


def _replace(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, column)


def test_what_is_measured(calibration: Calibration) -> None:
    assert calibration.method == "random" and calibration.rows == 32_561
    assert calibration.sizes == (100, 200, 500, 1000, 2000, 5000, 10_000)
    assert "class" not in calibration.features
    assert set(calibration.features["age"]) == {
        "psi",
        "jensen_shannon",
        "wasserstein",
        "ks",
        "missing",
    }
    assert set(calibration.features["sex"]) == {"psi", "jensen_shannon", "linf", "missing"}
    # Sampling noise shrinks as windows grow.
    for metric in ("jensen_shannon", "wasserstein", "psi"):
        values = calibration.features["age"][metric]
        assert values[0] > values[3] > values[-1] > 0
    # The floors hold natural variation from some window size on: min_samples has a reason.
    assert calibration.suggested_min_samples is not None
    assert 500 <= calibration.suggested_min_samples <= 5000
    assert Calibration.from_dict(calibration.to_dict()) == calibration


@settings(max_examples=50, deadline=None)
@given(rows=st.integers(min_value=1, max_value=1_000_000))
def test_natural_variation_never_grows_with_the_window(rows: int) -> None:
    c = Calibration(
        "random",
        30_000,
        100,
        0.99,
        (100, 1000, 10_000),
        {"x": {"psi": (0.2, 0.03, 0.004), "wasserstein": (0.3, 0.09, 0.03)}},
    )
    here, more = c.natural("x", rows), c.natural("x", rows + 1)
    for metric in ("psi", "wasserstein"):
        assert 0 < more[metric] <= here[metric] + 1e-12


def test_one_hundred_same_distribution_windows_raise_no_alarm(
    stats: DatasetStatistics, calibration: Calibration, test_rows: pa.Table
) -> None:
    rng = np.random.default_rng(7)
    config = MonitoringConfig()
    flagged = []
    for _ in range(100):
        report = compute_drift(
            stats, _sample(test_rows, config.window_rows, rng), config, calibration=calibration
        )
        if report.drifted:
            flagged.append(report.drifted)
    assert flagged == []


@pytest.mark.parametrize("rows", [10_000, 1000])
def test_real_shifts_are_still_flagged(
    stats: DatasetStatistics, calibration: Calibration, test_rows: pa.Table, rows: int
) -> None:
    rng = np.random.default_rng(rows)
    window = _sample(test_rows, rows, rng)
    older = _replace(window, "age", pc.add(window["age"], 5))
    flipped = _replace(window, "sex", pc.if_else(pc.equal(window["sex"], "Male"), "Female", "Male"))
    unseen = pa.array(rng.random(rows) < 0.05)
    new_kind = _replace(
        window, "workclass", pc.if_else(unseen, "Never-seen-work", window["workclass"])
    )
    for table, feature in ((older, "age"), (flipped, "sex"), (new_kind, "workclass")):
        report = compute_drift(stats, table, MonitoringConfig(), calibration=calibration)
        assert report.drifted == [feature], (feature, report.drifted)
        judged = report.feature(feature)
        # Both numbers are in the report: the floor, and the natural variation beside it.
        assert judged.thresholds and judged.natural
        assert report.settings["calibration"]["method"] == "random"


def _wandering(table: pa.Table, seed: int) -> pa.Table:
    """Rows in an order whose age (and what goes with it) drifts slowly along the file."""
    rng = np.random.default_rng(seed)
    age = np.asarray(table["age"].to_numpy(), dtype=np.float64)
    key = age + rng.normal(0.0, 30.0, table.num_rows)
    return table.take(pa.array(np.argsort(key, kind="stable")))


def test_windows_of_a_wandering_file_raise_no_alarm_when_calibrated_in_order(
    train: pa.Table, test_rows: pa.Table
) -> None:
    config = MonitoringConfig(window_rows=2000, min_samples=1000)
    ordered_train = _wandering(train.drop(["class"]), seed=0)
    ordered_test = _wandering(test_rows, seed=1)
    stats = compute_statistics(ordered_train)
    in_order = calibrate(ordered_train, stats, config, order="ordered")
    at_random = calibrate(ordered_train, stats, config, order="random")
    windows = [ordered_test.slice(start, 2000) for start in range(0, 14_001, 1000)]

    def alarms(calibration: Calibration | None) -> int:
        return sum(
            compute_drift(stats, w, config, calibration=calibration).status == "drift"
            for w in windows
        )

    # The obvious rule (floors, or random-window calibration that sees only sampling
    # noise) flags nearly every window; calibrated in row order, none.
    assert alarms(None) >= 10
    assert alarms(at_random) >= 10
    assert alarms(in_order) == 0


def test_a_timestamp_orders_the_windows_and_off_turns_calibration_off() -> None:
    assert calibration_order(MonitoringConfig(), "event_time") == "ordered"
    assert calibration_order(MonitoringConfig(), None) == "random"
    assert calibration_order(MonitoringConfig(calibration="random"), "event_time") == "random"
    assert calibration_order(MonitoringConfig(calibration="off"), None) is None


def test_too_few_rows_to_cut_windows_is_no_calibration() -> None:
    table = pa.table({"x": [float(i) for i in range(60)]})
    assert calibrate(table, compute_statistics(table), MonitoringConfig()) is None
