"""Drift thresholds calibrated on natural variation, judged on windows cut from the bundled Adult.

The obvious rule (a fixed floor per distance) is wrong both ways on real data: on a
file whose features wander it flags every window; these tests show the calibrated rule
raising no alarm there and none on same-distribution windows, while the shifts that
matter (age + 5 years, the sex mix flipped, 5% of a category never seen) are still flagged.

Where the rows have a time order, natural variation is movement over time: a new window
that continues the slow drift already inside the training period, moving no further than
the training period's second half moved from its first, is not drift — although random
windows of the same training data, which only see sampling noise, call it drift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.monitoring._calibration import Calibration, calibrate, calibration_order
from mooring.monitoring._drift import compute_drift, window_plan
from mooring.monitoring._gauges import drift_gauges
from mooring.monitoring._noise import kind_label


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
def adult_test_unlabelled(adult_test: Path, adult_options: ReadOptions) -> pa.Table:
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
    assert set(calibration.sources["age"]["wasserstein"]) == {"random"}
    assert calibration.natural_kind("age", 10_000) == dict.fromkeys(
        calibration.features["age"], "random"
    )


@settings(max_examples=50, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=1_000_000),
    method=st.sampled_from(["random", "ordered"]),
)
def test_natural_variation_never_grows_with_the_window(rows: int, method: str) -> None:
    c = Calibration(
        method,  # type: ignore[arg-type]
        30_000,
        100,
        0.99,
        (100, 1000, 10_000),
        {"x": {"psi": (0.2, 0.03, 0.004), "wasserstein": (0.3, 0.09, 0.03)}},
    )
    here, more = c.natural("x", rows), c.natural("x", rows + 1)
    for metric in ("psi", "wasserstein"):
        assert 0 < more[metric] <= here[metric] + 1e-12
    if method == "ordered":
        # Movement over time does not average out in a larger window: never below the
        # largest calibrated size's value.
        assert here["wasserstein"] >= 0.03 and here["psi"] >= 0.004


def test_one_hundred_same_distribution_windows_raise_no_alarm(
    stats: DatasetStatistics, calibration: Calibration, adult_test_unlabelled: pa.Table
) -> None:
    rng = np.random.default_rng(7)
    config = MonitoringConfig()
    flagged = []
    for _ in range(100):
        report = compute_drift(
            stats,
            _sample(adult_test_unlabelled, config.window_rows, rng),
            config,
            calibration=calibration,
        )
        if report.drifted:
            flagged.append(report.drifted)
    assert flagged == []


@pytest.mark.parametrize("rows", [10_000, 1000])
def test_real_shifts_are_still_flagged(
    stats: DatasetStatistics, calibration: Calibration, adult_test_unlabelled: pa.Table, rows: int
) -> None:
    rng = np.random.default_rng(rows)
    window = _sample(adult_test_unlabelled, rows, rng)
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
    train: pa.Table, adult_test_unlabelled: pa.Table
) -> None:
    config = MonitoringConfig(window_rows=2000, min_samples=1000)
    ordered_train = _wandering(train.drop(["class"]), seed=0)
    ordered_test = _wandering(adult_test_unlabelled, seed=1)
    stats = compute_statistics(ordered_train)
    in_order = calibrate(ordered_train, stats, config, order="ordered")
    at_random = calibrate(ordered_train, stats, config, order="random")
    windows = [ordered_test.slice(start, 2000) for start in range(0, 14_001, 1000)]

    def alarms(calibration: Calibration | None) -> int:
        return sum(
            compute_drift(stats, w, config, calibration=calibration).status == "drift"
            for w in windows
        )

    # The obvious rule (floors and sampling noise, or random-window calibration that sees
    # only sampling noise) flags most windows; calibrated in row order, none.
    assert alarms(None) >= 8
    assert alarms(at_random) >= 10
    assert alarms(in_order) == 0


def test_a_timestamp_orders_the_windows_and_off_turns_calibration_off() -> None:
    assert calibration_order(MonitoringConfig(), "event_time") == "ordered"
    # No timestamp: random windows and contiguous blocks in file order, the larger wins.
    assert calibration_order(MonitoringConfig(), None) == "blocks"
    assert calibration_order(MonitoringConfig(calibration="random"), "event_time") == "random"
    assert calibration_order(MonitoringConfig(calibration="off"), None) is None


def test_too_few_rows_to_cut_windows_is_no_calibration() -> None:
    table = pa.table({"x": [float(i) for i in range(60)]})
    assert calibrate(table, compute_statistics(table), MonitoringConfig()) is None


# ------------------------------------------------------------------ calibrated on time

TRAIN_ROWS = 30_000
WINDOW = 2000


@pytest.fixture(scope="module")
def timeline(train: pa.Table, adult_test_unlabelled: pa.Table) -> pa.Table:
    """All of Adult along a synthetic time axis (``event_time``, a minute a row) along which
    age drifts slowly (and what goes with it: marital status, relationship, …)."""
    rows = pa.concat_tables([train.drop(["class"]), adult_test_unlabelled])
    rng = np.random.default_rng(0)
    age = np.asarray(rows["age"].to_numpy(), dtype=np.float64)
    ordered = rows.take(pa.array(np.argsort(age + rng.normal(0.0, 30.0, rows.num_rows))))
    start = np.datetime64("2024-01-01T00:00", "s")
    minutes = start + np.arange(ordered.num_rows) * np.timedelta64(60, "s")
    return ordered.append_column("event_time", pa.array(minutes, pa.timestamp("s")))


@pytest.fixture(scope="module")
def period(timeline: pa.Table) -> tuple[pa.Table, DatasetStatistics]:
    """The training period, its rows shuffled (the timestamp, not the file, orders them)."""
    rows = timeline.slice(0, TRAIN_ROWS)
    rows = rows.take(pa.array(np.random.default_rng(1).permutation(TRAIN_ROWS)))
    return rows, compute_statistics(rows)


def _calibrate(
    period: tuple[pa.Table, DatasetStatistics], config: MonitoringConfig, order: str
) -> Calibration:
    rows, stats = period
    result = calibrate(rows, stats, config, order=order, timestamp="event_time")  # type: ignore[arg-type]
    assert result is not None
    return result


def test_a_window_continuing_the_slow_drift_of_training_is_natural_on_time(
    timeline: pa.Table, period: tuple[pa.Table, DatasetStatistics]
) -> None:
    config = MonitoringConfig(window_rows=WINDOW)
    stats = period[1]
    window = timeline.slice(TRAIN_ROWS, WINDOW)  # the first window after training
    halves = compute_drift(
        compute_statistics(timeline.slice(0, TRAIN_ROWS // 2)),
        timeline.slice(TRAIN_ROWS // 2, TRAIN_ROWS // 2),
        config,
        timestamp="event_time",
    )
    order = calibration_order(config, "event_time")
    assert order == "ordered"
    on_time = _calibrate(period, config, order)
    at_random = _calibrate(period, config, "random")
    assert "event_time" not in on_time.features
    # A category's unseen share has a natural variation over time too (new values per block).
    assert on_time.natural_kind("workclass", WINDOW)["unseen"] == "later"
    reports = {
        name: compute_drift(stats, window, config, calibration=c, timestamp="event_time")
        for name, c in (("time", on_time), ("random", at_random), ("floors", None))
    }
    # The scenario: the new window's age moved no further from the training data than
    # the training period's second half moved from its first half …
    shift = reports["time"].feature("age").measured["wasserstein"]
    assert 0.3 < shift < 1.05 * halves.feature("age").measured["wasserstein"]
    # … so the obvious rules (a floor, or random windows that see only sampling noise)
    # flag it, and time-ordered calibration does not.
    assert "age" in reports["random"].drifted and "age" in reports["floors"].drifted
    assert reports["time"].drifted == [] and reports["time"].status == "ok"
    age = reports["time"].feature("age")
    assert age.natural_kind["wasserstein"] == "later"
    assert age.thresholds["wasserstein"] == 0.1
    assert (age.natural["wasserstein"] or 0.0) > shift / 1.5
    assert reports["time"].settings["calibration"]["method"] == "ordered"
    # Random windows see sampling noise only (the larger of theirs and the simulated one).
    assert reports["random"].feature("age").natural_kind["wasserstein"] in {"random", "sampling"}
    # Time calibration is no blanket: the drift carried on well past the training
    # period's own movement (three windows later) is flagged.
    further = timeline.slice(TRAIN_ROWS + 3 * WINDOW, WINDOW)
    assert (
        "age"
        in compute_drift(
            stats, further, config, calibration=on_time, timestamp="event_time"
        ).drifted
    )
    for report in reports.values():
        # The time axis itself is never a feature: it would always be out of range.
        assert "event_time" not in {f.name for f in report.features}
        assert any("event_time" in note for note in report.notes)
        assert "event_time" not in generate_latest(drift_gauges(report)).decode()


def test_real_changes_are_still_flagged_when_calibrated_on_time(
    timeline: pa.Table, period: tuple[pa.Table, DatasetStatistics]
) -> None:
    config = MonitoringConfig(window_rows=WINDOW)
    on_time = _calibrate(period, config, "ordered")
    window = timeline.slice(TRAIN_ROWS, WINDOW)
    unseen = pa.array(np.random.default_rng(2).random(WINDOW) < 0.05)
    changes = (
        (_replace(window, "age", pc.add(window["age"], 5)), "age"),
        (
            _replace(window, "sex", pc.if_else(pc.equal(window["sex"], "Male"), "Female", "Male")),
            "sex",
        ),
        (
            _replace(window, "workclass", pc.if_else(unseen, "Never-seen", window["workclass"])),
            "workclass",
        ),
    )
    for table, feature in changes:
        report = compute_drift(
            period[1], table, config, calibration=on_time, timestamp="event_time"
        )
        assert report.drifted == [feature], (feature, [f.reasons for f in report.features])
        # The report shows both numbers, and where the natural variation comes from.
        judged = report.feature(feature)
        assert judged.thresholds and judged.natural and judged.natural_kind
        assert any(" beyond its natural " in r for r in judged.reasons) or feature == "workclass"


def test_blocks_that_swing_back_and_forth_are_natural_as_consecutive_blocks(
    train: pa.Table,
) -> None:
    """Rows in time order (no timestamp; ``calibration = "ordered"`` says so) whose sex mix
    swings from one 1,000-row block to the next: the whole earlier period averages the
    swing out, the previous block does not."""
    rows = train.select(["sex"])
    male = np.flatnonzero(np.asarray(pc.equal(rows["sex"], "Male").to_numpy(zero_copy_only=False)))
    female = np.setdiff1d(np.arange(rows.num_rows), male)
    rng = np.random.default_rng(3)
    rng.shuffle(male)
    rng.shuffle(female)
    blocks, m, f = [], 0, 0
    for i in range(20):
        men = 850 if i % 2 == 0 else 450
        blocks += [male[m : m + men], female[f : f + 1000 - men]]
        m, f = m + men, f + 1000 - men
    swinging = rows.take(pa.array(np.concatenate(blocks)))
    stats = compute_statistics(swinging)
    config = MonitoringConfig(calibration="ordered", window_rows=1000, min_samples=1000)
    order = calibration_order(config, None)
    assert order == "ordered"
    in_order = calibrate(swinging, stats, config, order=order)
    at_random = calibrate(swinging, stats, config, order="random")
    assert in_order is not None and at_random is not None
    assert in_order.natural_kind("sex", 1000)["jensen_shannon"] == "consecutive"
    window = rows.take(pa.array(np.sort(np.concatenate([male[m : m + 850], female[f : f + 150]]))))
    assert compute_drift(stats, window, config, calibration=in_order).drifted == []
    assert compute_drift(stats, window, config, calibration=at_random).drifted == ["sex"]


def test_without_a_timestamp_blocks_in_file_order_are_natural_variation_too(
    timeline: pa.Table,
) -> None:
    """The file is in time order but has no timestamp column (nobody said it is in order):
    a new window whose age moved no further than the training file's second half moved
    from its first is not drift, whereas random windows alone call it drift."""
    config = MonitoringConfig(window_rows=WINDOW)
    untimed = timeline.drop(["event_time"])
    rows = untimed.slice(0, TRAIN_ROWS)
    stats = compute_statistics(rows)
    order = calibration_order(config, None)
    assert order == "blocks"
    both = calibrate(rows, stats, config, order=order)
    at_random = calibrate(rows, stats, config, order="random")
    assert both is not None and at_random is not None
    window = untimed.slice(TRAIN_ROWS, WINDOW)
    halves = compute_drift(
        compute_statistics(rows.slice(0, TRAIN_ROWS // 2)),
        rows.slice(TRAIN_ROWS // 2, TRAIN_ROWS // 2),
        config,
    )
    report = compute_drift(stats, window, config, calibration=both)
    shift = report.feature("age").measured["wasserstein"]
    assert 0.1 < shift < halves.feature("age").measured["wasserstein"]
    assert "age" in compute_drift(stats, window, config, calibration=at_random).drifted
    assert report.drifted == [] and report.status == "ok"
    age = report.feature("age")
    assert age.natural_kind["wasserstein"] == "blocks"
    assert kind_label("blocks") == "natural variation in training: contiguous blocks in file order"
    assert report.settings["calibration"]["method"] == "blocks"
    # Per feature, distance and size the larger wins: random windows where blocks vary less.
    assert "random" in {k for per in both.sources.values() for ks in per.values() for k in ks}
    assert Calibration.from_dict(both.to_dict()) == both
    # A real change is still flagged on top of the file's own movement.
    older = _replace(window, "age", pc.add(window["age"], 15))
    assert compute_drift(stats, older, config, calibration=both).drifted == ["age"]


def test_a_file_in_random_order_loses_nothing_to_blocks(
    train: pa.Table,
    stats: DatasetStatistics,
    calibration: Calibration,
    adult_test_unlabelled: pa.Table,
) -> None:
    """Adult's file is in no time order: its blocks are random windows, and the real shifts
    are flagged as with random windows alone."""
    config = MonitoringConfig()
    columns = [c for c in stats.column_names if c != "class"]
    both = calibrate(train, stats, config, columns=columns, order="blocks")
    assert both is not None
    rng = np.random.default_rng(11)
    for name in ("age", "hours-per-week"):
        natural, random_only = both.natural(name, 2000), calibration.natural(name, 2000)
        assert natural["wasserstein"] <= 1.6 * random_only["wasserstein"]
    window = _sample(adult_test_unlabelled, 2000, rng)
    assert compute_drift(stats, window, config, calibration=both).drifted == []
    older = _replace(window, "age", pc.add(window["age"], 5))
    assert compute_drift(stats, older, config, calibration=both).drifted == ["age"]


def _steady_novelty(rows: int, seed: int) -> pa.Table:
    """A text column of thousands of values (a shop's product codes) in which a steady ~3%
    of each period's rows carry a code no earlier period had, beside a plain number."""
    rng = np.random.default_rng(seed)
    codes = np.empty(rows, dtype=object)
    known = 600
    for start in range(0, rows, 1000):
        n = min(1000, rows - start)
        block = rng.zipf(1.3, n) % known
        new = rng.random(n) < 0.03
        block[new] = known + np.arange(new.sum())
        known += int(new.sum())
        codes[start : start + n] = [f"p{c}" for c in block]
    return pa.table({"product": pa.array(codes, pa.string()), "x": rng.normal(size=rows)})


def test_new_categories_are_judged_against_the_training_periods_own_novelty() -> None:
    """A column whose new-value rate is steady: ~3% of each month's values are new in
    training, so a month with 3-4% values training never saw is what always happens, while
    sampling noise alone (the share of codes seen once) says otherwise."""
    config = MonitoringConfig(window_rows=2000, min_samples=1000)
    table = _steady_novelty(32_000, seed=0)
    rows = table.slice(0, 24_000)
    stats = compute_statistics(rows)
    both = calibrate(rows, stats, config, order=calibration_order(config, None))
    assert both is not None
    natural = both.natural("product", 2000)
    assert 0.03 <= natural["unseen"] <= 0.06
    assert both.natural_kind("product", 2000)["unseen"] == "blocks"
    assert "unseen" not in both.features["x"]
    months = [table.slice(start, 2000) for start in range(24_000, 32_000, 2000)]
    for month in months:
        report = compute_drift(stats, month, config, calibration=both)
        product = report.feature("product")
        assert 0.02 <= (product.measured["unseen_share"] or 0.0) <= 0.08
        assert report.drifted == [], product.reasons
        # The bar is the training period's own rate of new values (no timestamp: its
        # rows halved in file order), at least the blocks' novelty.
        assert product.natural_kind["unseen"] == "own_file"
        assert product.natural["unseen"] >= natural["unseen"]
    # Sampling noise alone flags the same months …
    assert all(
        "product" in compute_drift(stats, m, config, calibration=None).drifted for m in months
    )
    # … while a month in which a quarter of the codes are new is drift.
    month = months[0]
    burst = pa.array(np.random.default_rng(1).random(2000) < 0.25)
    new_codes = pa.array([f"new{i}" for i in range(2000)])
    report = compute_drift(
        stats,
        _replace(month, "product", pc.if_else(burst, new_codes, month["product"])),
        config,
        calibration=both,
    )
    assert report.drifted == ["product"]
    reason = next(r for r in report.feature("product").reasons if r.startswith("unseen_share "))
    assert " vs training's own " in reason
    assert "(limit " in reason and "later half in file order" in reason


def test_time_columns_are_never_judged() -> None:
    rng = np.random.default_rng(4)
    day = np.datetime64("2024-01-01", "D") + rng.integers(0, 300, 3000)
    table = pa.table(
        {
            "x": rng.normal(size=3000),
            "day": pa.array(day, pa.date32()),
            "at": [f"2024-01-{1 + i % 28:02d}" for i in range(3000)],
        }
    )
    later = pa.table(
        {
            "x": rng.normal(size=3000),
            "day": pa.array(day + 1000, pa.date32()),
            "at": ["2025-06-01"] * 3000,
        }
    )
    stats = compute_statistics(table)
    report = compute_drift(stats, later, MonitoringConfig(), timestamp="at")
    assert [f.name for f in report.features] == ["x"] and report.status == "ok"
    assert "time columns, never judged for drift: at, day" in report.notes
    plan = window_plan(stats, MonitoringConfig(), timestamp="at")
    assert plan["feature_names"] == ["x"]
    calibrated = calibrate(table, stats, MonitoringConfig(), order="ordered", timestamp="at")
    assert calibrated is not None and set(calibrated.features) == {"x"}
    # Without naming it, a text time column is a category like any other.
    assert "at" in compute_drift(stats, later, MonitoringConfig()).drifted


def test_a_calibration_stored_before_time_ordered_comparisons_reads_back() -> None:
    old = {
        "format": "mooring.drift-calibration",
        "method": "ordered",
        "rows": 10_000,
        "sizes": [100, 1000],
        "features": {"x": {"psi": [0.2, 0.03]}},
    }
    c = Calibration.from_dict(old)
    assert c.sources == {} and c.natural_kind("x", 1000) == {"psi": "ordered"}
    assert Calibration.from_dict(c.to_dict()) == c


def test_integers_beyond_two_to_the_53_are_calibrated_as_the_nearest_floats() -> None:
    rng = np.random.default_rng(5)
    ids = 9007199254740993 + rng.integers(0, 10**9, 3000)
    table = pa.table({"x": rng.normal(size=3000), "account": pa.array(ids, pa.int64())})
    calibrated = calibrate(table, compute_statistics(table), MonitoringConfig())
    assert calibrated is not None and set(calibrated.features) == {"x", "account"}


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(min_value=120, max_value=400),
    values=st.integers(min_value=1, max_value=300),
    missing=st.sampled_from([0.0, 0.2]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_share_of_new_values_is_what_no_earlier_row_holds(
    rows: int, values: int, missing: float, seed: int
) -> None:
    from mooring.monitoring._calibration import _time_windows

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, values, rows)
    absent = rng.random(rows) < missing
    order = rng.permutation(rows).astype(np.int64)  # the rows' time order
    windows = _time_windows(order, [50], 7, ("blocks",))
    measured = windows.new_share(labels, absent)[0, 0]
    for i, (start, end) in enumerate(zip(windows.starts, windows.ends, strict=True)):
        earlier = {labels[r] for r in order[:start] if not absent[r]}
        block = [labels[r] for r in order[start:end] if not absent[r]]
        expected = sum(v not in earlier for v in block) / max(len(block), 1)
        assert measured[i] == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(min_value=120, max_value=400),
    values=st.integers(min_value=1, max_value=300),
    missing=st.sampled_from([0.0, 0.2]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_own_rate_of_new_values_is_what_the_earlier_half_never_holds(
    rows: int, values: int, missing: float, seed: int
) -> None:
    from mooring.monitoring._calibration import _new_to_earlier_half

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, values, rows)
    absent = rng.random(rows) < missing
    order = rng.permutation(rows).astype(np.int64)  # the rows' time order
    half = rows // 2
    earlier = {labels[r] for r in order[:half] if not absent[r]}
    for size in (10, 50, rows - half):
        shares = []
        for start in half + np.linspace(0, rows - half - size, 7).round().astype(int):
            block = [labels[r] for r in order[start : start + size] if not absent[r]]
            shares.append(sum(v not in earlier for v in block) / max(len(block), 1))
        (measured,) = _new_to_earlier_half(order, labels, absent, [size], 7, 0.9)
        assert measured == pytest.approx(float(np.quantile(shares, 0.9)), abs=1e-6)
