"""Sampling noise at the window's row count: a 300-value category judged by what chance gives.

The obvious rule — a fixed floor on Jensen–Shannon distance — is wrong for a category with
hundreds of values: a same-distribution window of 1,000 or 2,000 rows has a distance past
the 0.1 floor from sampling alone, every time. These tests build such a column from the
bundled Adult (``fnlwgt`` hashed into 300 buckets: 150 common ones of about 0.6% each and
150 rare ones) and show the check leaving same-distribution windows alone (with or
without a calibration, with or without rare categories lumped) while real changes are
still flagged.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.monitoring._calibration import calibrate
from mooring.monitoring._drift import compute_drift
from mooring.monitoring._noise import (
    binned_noise,
    effective_rows,
    judge,
    ks_noise,
    natural_variation,
    out_of_range_noise,
    unseen_noise,
    wasserstein_noise,
)
from tests._support.generated_tables import TableSpec, table_specs

FLOORS = {"jensen_shannon": 0.1, "psi": 0.2}


def _buckets(table: pa.Table) -> pa.Array:
    """``fnlwgt`` hashed into 300 buckets: 90% of rows in b000–b149, 10% in b150–b299."""
    f = np.asarray(table["fnlwgt"].to_numpy(), dtype=np.uint64)
    u = ((f * np.uint64(2_654_435_761)) % np.uint64(2**32)).astype(np.float64) / 2**32
    k = np.where(u < 0.9, u / 0.9 * 150, 150 + (u - 0.9) / 0.1 * 150).astype(np.int64)
    return pa.array([f"b{x:03d}" for x in k])


@pytest.fixture(scope="module")
def train(adult_train: Path, adult_options: ReadOptions) -> pa.Table:
    table = read_table(adult_train, adult_options).drop(["class"])
    return table.append_column("bucket", _buckets(table))


@pytest.fixture(scope="module")
def stats(train: pa.Table) -> DatasetStatistics:
    return compute_statistics(train)


@pytest.fixture(scope="module")
def adult_test_bucketed(adult_test: Path, adult_options: ReadOptions) -> pa.Table:
    table = read_table(adult_test, adult_options).drop(["class"])
    return table.append_column("bucket", _buckets(table))


def _windows(table: pa.Table, rows: int, count: int, seed: int) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    return [
        table.take(pa.array(np.sort(rng.choice(table.num_rows, rows, replace=False))))
        for _ in range(count)
    ]


def _put(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, column)


def test_the_column_has_300_values_half_of_them_above_the_rare_share(
    stats: DatasetStatistics,
) -> None:
    counts = stats["bucket"].strings.frequencies.counts  # type: ignore[union-attr]
    shares = np.array(list(counts.values())) / stats.num_rows
    assert len(counts) == 300
    assert 120 <= int((shares >= MonitoringConfig().rare_share).sum()) <= 160


@pytest.mark.parametrize("rare_share", [0.005, 0.0])
@pytest.mark.parametrize("calibration", ["off", "random", "ordered"])
def test_a_300_value_category_is_not_flagged_for_its_sampling_noise(
    train: pa.Table,
    stats: DatasetStatistics,
    adult_test_bucketed: pa.Table,
    rare_share: float,
    calibration: str,
) -> None:
    config = MonitoringConfig(rare_share=rare_share, window_rows=2000, calibration_windows=50)
    calibrated = (
        None
        if calibration == "off"
        else calibrate(train, stats, config, order=calibration, columns=["bucket"])  # type: ignore[arg-type]
    )
    past_floor = 0
    for rows in (1000, 2000):
        for window in _windows(adult_test_bucketed.select(["bucket"]), rows, 8, seed=rows):
            report = compute_drift(stats, window, config, calibration=calibrated)
            judged = report.feature("bucket")
            assert not judged.drifted, judged.reasons
            past_floor += any(judged.measured[m] >= f for m, f in FLOORS.items())
            # What held it back is in the report, and where it comes from.
            assert (judged.natural["jensen_shannon"] or 0.0) > 0.1
            assert judged.natural_kind["jensen_shannon"] in {"sampling", "consecutive", "random"}
    # The obvious rule, the floor alone, flags every one of these windows.
    assert past_floor == 16


def test_real_changes_of_the_300_value_category_are_flagged(
    stats: DatasetStatistics, adult_test_bucketed: pa.Table
) -> None:
    config = MonitoringConfig()
    rng = np.random.default_rng(5)
    for window in _windows(adult_test_bucketed, 2000, 3, seed=11):
        bucket = window["bucket"]
        unseen = _put(
            window, "bucket", pc.if_else(pa.array(rng.random(2000) < 0.05), "b999", bucket)
        )
        # The mix flipped: the common buckets become rare ones and the other way round.
        flipped = _put(
            window,
            "bucket",
            pa.array([f"b{(int(b[1:]) + 150) % 300:03d}" for b in bucket.to_pylist()]),
        )
        for table in (unseen, flipped):
            report = compute_drift(stats, table, config)
            assert report.drifted == ["bucket"], [f.reasons for f in report.features]
        # And the three changes of Adult's own columns, beside the noisy one.
        older = _put(window, "age", pc.add(window["age"], 5))
        sexes = _put(window, "sex", pc.if_else(pc.equal(window["sex"], "Male"), "Female", "Male"))
        for table, feature in ((older, "age"), (sexes, "sex")):
            assert compute_drift(stats, table, config).drifted == [feature]


def test_the_noise_matches_random_windows_of_the_training_data(
    train: pa.Table, stats: DatasetStatistics
) -> None:
    # Two independent routes to the same number: simulated multinomial windows, and
    # random windows cut from the training rows by the calibration.
    config = MonitoringConfig(window_rows=2000)
    calibrated = calibrate(train, stats, config, columns=["bucket"])
    assert calibrated is not None
    measured = calibrated.natural("bucket", 2000)["jensen_shannon"]
    from mooring.contract._distance import Distributions, lump_rare

    column = stats["bucket"]
    counts = column.strings.frequencies.counts  # type: ignore[union-attr]
    labels = sorted(counts)
    shares = np.array([counts[x] for x in labels], dtype=np.float64) / column.present
    lumped = lump_rare(Distributions(labels, shares, shares), config.rare_share)
    simulated = binned_noise(lumped.baseline, 2000, column.present - 2000, 0.99)
    assert simulated["jensen_shannon"] == pytest.approx(measured, rel=0.1)


def test_unseen_share_noise_follows_the_categories_seen_once() -> None:
    # An id-like column: half the training rows carry a value seen once.
    train = pa.table({"c": ["common"] * 5000 + [f"id{i}" for i in range(5000)]})
    stats = compute_statistics(train)
    window = pa.table({"c": ["common"] * 1000 + [f"new{i}" for i in range(1000)]})
    report = compute_drift(stats, window, MonitoringConfig())
    judged = report.feature("c")
    assert judged.metrics["unseen_share"] == pytest.approx(0.5) and not judged.drifted
    assert judged.natural_kind["unseen"] == "sampling"
    assert judged.natural["unseen"] == pytest.approx(0.5 + 2.326 * (0.25 / 2000) ** 0.5, abs=1e-3)
    every_row_new = pa.table({"c": [f"new{i}" for i in range(2000)]})
    assert compute_drift(stats, every_row_new, MonitoringConfig()).drifted == ["c"]
    # A column whose values all repeat expects none: the floor alone decides.
    repeated = compute_statistics(pa.table({"c": ["a", "b"] * 50}))["c"]
    assert unseen_noise(repeated, 100, 0.99) == 0.0


def test_ks_noise_is_kolmogorovs_bound() -> None:
    assert ks_noise(1000, 1000, 0.95) == pytest.approx(1.3581 * (2 / 1000) ** 0.5, rel=1e-3)
    assert ks_noise(0, 1000, 0.95) is None
    assert effective_rows(1000, None) == 1000.0


@settings(max_examples=25, deadline=None)
@given(
    bins=st.integers(min_value=2, max_value=400),
    rows=st.integers(min_value=50, max_value=20_000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_same_distribution_windows_rarely_pass_the_margin_over_the_noise(
    bins: int, rows: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(bins, 0.5))
    noise = binned_noise(shares, rows, 10 * rows, 0.99)
    fresh = rng.multinomial(rows, shares, size=200).astype(np.float64)
    from mooring.contract._distance import row_distances

    for metric, bound in noise.items():
        distances = row_distances(metric, np.broadcast_to(shares, fresh.shape), fresh)
        # P(distance > its 99th percentile) is 1%; past 1.5 × it, rarer still.
        assert (distances > 1.5 * bound).mean() <= 0.05, (metric, bound)


@settings(max_examples=200, deadline=None)
@given(
    value=st.floats(min_value=0.0, max_value=2.0),
    floor=st.floats(min_value=0.01, max_value=1.0),
    calibrated=st.none() | st.floats(min_value=0.0, max_value=1.0),
    noise=st.none() | st.floats(min_value=0.0, max_value=1.0),
    margin=st.floats(min_value=1.0, max_value=3.0),
)
def test_a_metric_decides_only_past_its_floor_and_its_natural_variation(
    value: float, floor: float, calibrated: float | None, noise: float | None, margin: float
) -> None:
    natural, kinds = natural_variation(
        {} if calibrated is None else {"psi": calibrated},
        {"psi": "later"},
        {} if noise is None else {"psi": noise},
    )
    reasons = judge({"psi": value}, {"psi": floor}, natural, kinds, margin, 1000)
    bars = [x for x in (calibrated, noise) if x is not None]
    expected = value >= floor and value > 0 and all(value > margin * x for x in bars)
    assert bool(reasons) == expected
    if bars:
        # The report names the larger of the two bars, the one that decides.
        assert natural["psi"] == max(bars)
        assert kinds["psi"] == (
            "sampling"
            if noise is not None
            and noise == max(bars)
            and (calibrated is None or noise > calibrated)
            else "later"
        )


# ------------------------------------------------------------ too few rows to tell


def _holdout(
    table: pa.Table, seed: int, rows: int = 300, held: int = 120
) -> tuple[DatasetStatistics, pa.Table]:
    """``rows`` random rows of ``table``: the statistics of all but a random ``held`` of
    them (training), and those ``held`` (the holdout)."""
    order = np.random.default_rng(seed).permutation(table.num_rows)[:rows]
    rest, held_out = np.sort(order[held:]), np.sort(order[:held])
    return compute_statistics(table.take(pa.array(rest))), table.take(pa.array(held_out))


@pytest.fixture(scope="module")
def breast_cancer() -> pa.Table:
    """The 569 × 30 Wisconsin breast-cancer measurements scikit-learn ships (read from its
    CSV without importing it: no network, no second of imports)."""
    import importlib.util

    import pyarrow.csv as pv

    spec = importlib.util.find_spec("sklearn")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "breast_cancer.csv"
    kinds = ("radius", "texture", "perimeter", "area", "smoothness", "compactness")
    kinds += ("concavity", "concave points", "symmetry", "fractal dimension")
    names = [f"mean {k}" for k in kinds] + [f"{k} error" for k in kinds]
    names += [f"worst {k}" for k in kinds]
    table = pv.read_csv(
        path,
        pv.ReadOptions(skip_rows=1, column_names=[*names, "target"]),
    )
    return table.drop(["target"])


def test_a_random_120_row_holdout_of_a_300_row_table_is_too_few_rows_not_drift(
    breast_cancer: pa.Table,
) -> None:
    """30 skewed real measurements: a random holdout of 120 of 300 rows used to raise a
    warning per feature; on 180 training rows no test tells a shift of its floor's size
    from chance, and the check says so."""
    config = MonitoringConfig(min_samples=1)  # no window floor: the noise alone decides
    for seed in range(3):
        baseline, held = _holdout(breast_cancer, seed)
        report = compute_drift(baseline, held, config)
        assert report.drifted == [] and report.status == "insufficient_data"
        for feature in report.features:
            assert feature.status == "insufficient_data"
            assert feature.reasons == [
                "too few rows (120; with this baseline no row count tells a shift of the "
                "threshold size from noise)"
            ]
    # Not a blanket: a column whose unit changed (× 1,000) is drift on the same rows.
    baseline, held = _holdout(breast_cancer, 0)
    broken = _put(held, "mean area", pc.multiply(held["mean area"], 1000.0))
    assert compute_drift(baseline, broken, config).drifted == ["mean area"]


@settings(max_examples=15, deadline=None)
@given(spec=table_specs())
def test_random_holdouts_of_generated_300_row_tables_raise_no_drift(spec: TableSpec) -> None:
    table = replace(spec, rows=300).table().drop([spec.label])
    baseline, held = _holdout(table, spec.seed + 1)
    report = compute_drift(baseline, held, MonitoringConfig(min_samples=1))
    assert report.drifted == [], [f.reasons for f in report.features]
    for feature in report.features:
        if feature.status == "insufficient_data":  # the rows of its present values
            assert re.match(r"too few rows \(\d+; ", feature.reasons[0]), feature.reasons


def test_too_few_rows_says_from_how_many_a_shift_of_the_floors_size_shows(
    stats: DatasetStatistics, adult_test_bucketed: pa.Table
) -> None:
    """The 300-value category: its 150 small shares hide a shift of the floors' size in
    the noise of a 500-row window; the check says from how many rows one shows."""
    config = MonitoringConfig(min_samples=1)
    small = compute_drift(stats, adult_test_bucketed.slice(0, 500), config).feature("bucket")
    assert small.status == "insufficient_data"
    resolving = int(small.metrics["resolving_rows"] or 0)
    assert 500 < resolving < 10_000
    assert small.reasons == [
        f"too few rows (500; a shift of the threshold size is told from noise from about "
        f"{resolving:,})"
    ]
    # From that row count on the feature is judged: the same mix is ok, a moved one drifts.
    window = adult_test_bucketed.slice(0, resolving + 100)
    assert compute_drift(stats, window, config).feature("bucket").status == "ok"
    common = pa.array(np.random.default_rng(5).random(window.num_rows) < 0.3)
    moved = _put(window, "bucket", pc.if_else(common, "b000", window["bucket"]))
    assert "bucket" in compute_drift(stats, moved, config).drifted


def test_values_beyond_the_training_range_are_judged_as_chance_puts_them_there() -> None:
    """The mass beyond the range of N training values is Beta(2, N - 1): on a small
    baseline the share of new values past it varies far more than a binomial's."""
    rng = np.random.default_rng(3)
    train, fresh = rng.normal(size=(2000, 180)), rng.normal(size=(2000, 120))
    lo, hi = train.min(axis=1, keepdims=True), train.max(axis=1, keepdims=True)
    outside = ((fresh < lo) | (fresh > hi)).mean(axis=1)
    column = compute_statistics(pa.table({"x": train[0]}))["x"]
    bound = out_of_range_noise(column, 120, 0.99)
    assert bound is not None
    assert np.quantile(outside, 0.99) == pytest.approx(bound, abs=0.0125)
    assert (outside > 1.5 * bound).mean() < 0.002


def test_wasserstein_noise_follows_the_distributions_shape() -> None:
    import scipy.stats

    rng = np.random.default_rng(4)
    for draw in (rng.normal, rng.exponential):
        reference = draw(size=5000)
        column = compute_statistics(pa.table({"x": reference}))["x"]
        distances = [
            scipy.stats.wasserstein_distance(draw(size=500), reference) / reference.std()
            for _ in range(150)
        ]
        bound = wasserstein_noise(column, 500, 0.99)
        assert bound == pytest.approx(np.quantile(distances, 0.99), rel=0.25)
