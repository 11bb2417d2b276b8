"""Drift of a window against training statistics: verdicts, robustness, reference values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._monitoring import MonitoringConfig
from mooring.contract._distance import ks_statistic, wasserstein
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._sketch import QuantileSketch
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.dashboard._drift_report import render_drift_html
from mooring.monitoring._baselines import evaluation_outputs, prediction_statistics
from mooring.monitoring._drift import compare_columns, compute_drift, resolve_thresholds


@pytest.fixture(scope="module")
def adult_baseline(adult_train: Path, adult_options: ReadOptions) -> DatasetStatistics:
    return compute_statistics(adult_train, adult_options)


@pytest.fixture(scope="module")
def adult_window(adult_test: Path, adult_options: ReadOptions) -> pa.Table:
    # The log holds what clients send: the features, no label.
    return read_table(adult_test, adult_options).drop(["class"])


def _replace(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, column)


def test_same_distribution_is_not_flagged(
    adult_baseline: DatasetStatistics, adult_window: pa.Table
) -> None:
    report = compute_drift(adult_baseline, adult_window, MonitoringConfig())
    assert report.status == "ok", report.drifted
    assert report.drifted == []
    assert {f.name for f in report.features} == set(adult_window.column_names)
    for feature in report.features:
        assert feature.status == "ok"
        # Every distance is recorded even when nothing drifts.
        assert feature.metrics["psi"] is not None and feature.metrics["psi"] < 0.02
        assert feature.metrics["jensen_shannon"] is not None
    age = report.feature("age")
    assert age.metrics["ks"] is not None and age.metrics["wasserstein"] is not None


def test_same_distribution_small_windows_stay_quiet(
    adult_baseline: DatasetStatistics, adult_window: pa.Table
) -> None:
    # Windows at the minimum sample size: sampling noise alone must not raise an alarm.
    rng = np.random.default_rng(7)
    cfg = MonitoringConfig()
    for _ in range(8):
        rows = adult_window.take(rng.choice(adult_window.num_rows, cfg.min_samples, replace=False))
        report = compute_drift(adult_baseline, rows, cfg)
        assert report.status == "ok", report.drifted


def test_age_shift_is_flagged(adult_baseline: DatasetStatistics, adult_window: pa.Table) -> None:
    shifted = _replace(adult_window, "age", pc.add(adult_window["age"], 15))
    report = compute_drift(adult_baseline, shifted, MonitoringConfig())
    assert report.status == "drift"
    assert report.drifted == ["age"]
    age = report.feature("age")
    assert age.metrics["psi"] is not None and age.metrics["psi"] > 1.0
    numeric = adult_baseline["age"].numeric
    assert numeric is not None
    # Every row moves by 15 years: the Wasserstein distance is 15, i.e. 15 / std in stds.
    assert age.metrics["wasserstein"] == pytest.approx(15 / numeric.std, rel=0.02)
    assert any(r.startswith("psi") for r in age.reasons)


def test_flipped_sex_mix_is_flagged(
    adult_baseline: DatasetStatistics, adult_window: pa.Table
) -> None:
    sex = adult_window["sex"]
    flipped = pc.if_else(pc.equal(sex, "Male"), "Female", "Male")
    report = compute_drift(
        adult_baseline, _replace(adult_window, "sex", flipped), MonitoringConfig()
    )
    assert report.status == "drift"
    assert "sex" in report.drifted
    result = report.feature("sex")
    assert result.kind == "categorical"
    assert result.metrics["jensen_shannon"] is not None and result.metrics["jensen_shannon"] > 0.2
    assert result.metrics["unseen_share"] == 0.0


def test_constant_in_training_feature_follows_the_same_share_thresholds() -> None:
    n = 5000
    baseline = compute_statistics(
        pa.table({"flag": np.ones(n), "region": ["EU"] * n, "x": np.arange(n, dtype=float)})
    )

    def moved(share: float) -> pa.Table:
        k = int(n * share)
        flags = np.ones(n)
        flags[:k] = 2.0
        regions = ["US"] * k + ["EU"] * (n - k)
        return pa.table({"flag": flags, "region": regions, "x": np.arange(n, dtype=float)})

    # 0.5% of the rows differ: below the 2% out-of-range / unseen shares, like any feature.
    quiet = compute_drift(baseline, moved(0.005), MonitoringConfig())
    assert quiet.drifted == []
    flag = quiet.feature("flag")
    assert flag.metrics["wasserstein"] is None  # undefined for a zero std, never divided by 0
    # From the sketch (5000 values: past one compaction), within its rank error.
    assert flag.metrics["out_of_range_share"] == pytest.approx(0.005, abs=0.001)
    assert quiet.feature("region").metrics["unseen_share"] == pytest.approx(0.005)
    # 5% differ: past the share thresholds, flagged by them.
    loud = compute_drift(baseline, moved(0.05), MonitoringConfig())
    assert loud.drifted == ["flag", "region"]
    assert any(r.startswith("out_of_range_share") for r in loud.feature("flag").reasons)
    assert any(r.startswith("unseen_share") for r in loud.feature("region").reasons)
    assert loud.feature("x").status == "ok"


def test_constant_feature_that_stays_is_not_flagged() -> None:
    table = pa.table({"flag": np.zeros(3000), "region": ["EU"] * 3000})
    report = compute_drift(compute_statistics(table), table, MonitoringConfig())
    assert report.status == "ok"
    for feature in report.features:
        assert feature.metrics["psi"] == pytest.approx(0.0, abs=1e-12)


def test_heavily_tied_baseline_same_distribution() -> None:
    # ~92% zeros like capital-gain: the deciles collapse and the tail is still compared.
    rng = np.random.default_rng(0)

    def sample(n: int) -> np.ndarray:
        values = rng.exponential(5000.0, n)
        values[rng.random(n) < 0.92] = 0.0
        return values

    baseline = compute_statistics(pa.table({"gain": sample(30_000)}))
    same = compute_drift(baseline, pa.table({"gain": sample(5000)}), MonitoringConfig())
    assert same.status == "ok"
    histogram = same.feature("gain").baseline
    assert histogram is not None and len(histogram.bins) > 4
    more = sample(5000)
    more[: 5000 // 5] = rng.exponential(5000.0, 5000 // 5)  # 20% more non-zero values
    moved = compute_drift(baseline, pa.table({"gain": more}), MonitoringConfig())
    assert moved.drifted == ["gain"]


def test_out_of_range_and_unseen_shares_decide_on_their_own() -> None:
    n = 4000
    rng = np.random.default_rng(1)
    baseline = compute_statistics(
        pa.table({"x": rng.uniform(0, 100, n), "c": rng.choice(["a", "b", "c"], n)})
    )
    x = rng.uniform(0, 100, n)
    x[:120] = 150.0  # 3% above the training maximum
    c = rng.choice(["a", "b", "c"], n).astype(object)
    c[:120] = "new"
    # PSI and JS are told not to decide: the shares alone must.
    cfg = MonitoringConfig.model_validate(
        {
            "features": {
                "x": {"ignore": ["psi", "jensen_shannon", "wasserstein"]},
                "c": {"ignore": ["psi", "jensen_shannon"]},
            }
        }
    )
    report = compute_drift(baseline, pa.table({"x": x, "c": c.tolist()}), cfg)
    assert report.feature("x").metrics["out_of_range_share"] == pytest.approx(0.03)
    assert report.feature("c").metrics["unseen_share"] == pytest.approx(0.03)
    assert report.drifted == ["x", "c"]
    # Past the floor and past what chance puts outside 4,000 training values' range.
    assert report.feature("x").reasons == [
        "out_of_range_share 3% beyond its natural 0.225% at 4,000 rows (limit 0.337%; floor 2%; "
        "sampling noise)"
    ]
    data = report.to_dict()
    assert data["features"][0]["out_of_range_share"] == pytest.approx(0.03)
    assert data["features"][1]["unseen_share"] == pytest.approx(0.03)


def test_missing_share_rise_is_flagged() -> None:
    n = 3000
    baseline = compute_statistics(pa.table({"x": np.arange(n, dtype=float)}))
    values = np.arange(n, dtype=float)
    values[: n // 4] = np.nan  # an upstream field broke for a quarter of the rows
    report = compute_drift(baseline, pa.table({"x": values}), MonitoringConfig())
    assert report.feature("x").metrics["missing_change"] == pytest.approx(0.25)
    assert any(r.startswith("missing_change") for r in report.feature("x").reasons)


def test_small_window_is_insufficient_data(
    adult_baseline: DatasetStatistics, adult_window: pa.Table
) -> None:
    shifted = _replace(adult_window, "age", pc.add(adult_window["age"], 15)).slice(0, 200)
    report = compute_drift(adult_baseline, shifted, MonitoringConfig())
    assert report.status == "insufficient_data"
    assert report.drifted == []
    age = report.feature("age")
    assert age.status == "insufficient_data"
    assert age.metrics["psi"] is not None and age.metrics["psi"] > 1.0  # recorded, not judged
    assert any("fewer than min_samples = 1000" in note for note in report.notes)


def test_thresholds_resolve_per_feature() -> None:
    cfg = MonitoringConfig.model_validate(
        {
            "thresholds": {"psi": 0.25, "ks": 0.2},
            "features": {
                "age": {"psi": 0.5, "ignore": ["wasserstein"]},
                "skip": {"enabled": False},
            },
        }
    )
    age = resolve_thresholds(cfg, "age", "numeric")
    assert age["psi"] == 0.5 and age["ks"] == 0.2 and age["wasserstein"] is None
    other = resolve_thresholds(cfg, "hours", "numeric")
    assert other["psi"] == 0.25 and other["wasserstein"] == 0.1
    assert "linf" in resolve_thresholds(cfg, "sex", "categorical")
    table = pa.table({"age": np.arange(2000.0), "skip": np.arange(2000.0)})
    report = compute_drift(compute_statistics(table), table, cfg)
    assert [f.name for f in report.features] == ["age"]


def test_bad_threshold_config_names_the_key() -> None:
    from mooring.config import MooringConfig
    from mooring.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[monitoring.thresholds\] key 'psi'"):
        MooringConfig.from_mapping(
            {
                "project": {"name": "m"},
                "data": {"train": "t.csv"},
                "monitoring": {"thresholds": {"psi": -1}},
            }
        )
    with pytest.raises(ConfigError, match=r"Input should be 'psi'.*got 'psy'"):
        MooringConfig.from_mapping(
            {
                "project": {"name": "m"},
                "data": {"train": "t.csv"},
                "monitoring": {"features": {"age": {"ignore": ["psy"]}}},
            }
        )


def test_segments_compare_with_the_segments_training_rows(
    adult_train: Path,
    adult_options: ReadOptions,
    adult_baseline: DatasetStatistics,
    adult_window: pa.Table,
) -> None:
    train = read_table(adult_train, adult_options)
    per_sex = {
        value: compute_statistics(train.filter(pc.equal(train["sex"], value)))
        for value in ("Female", "Male")
    }
    female = pc.equal(adult_window["sex"], "Female")
    # Only women's hours move: hidden in the aggregate, visible in the segment.
    hours = pc.if_else(
        female, pc.add(adult_window["hours-per-week"], 12), adult_window["hours-per-week"]
    )
    window = _replace(adult_window, "hours-per-week", hours)
    cfg = MonitoringConfig(segments=["sex"])
    report = compute_drift(adult_baseline, window, cfg, segment_baselines={"sex": per_sex})
    segments = {s.value: s for s in report.segments}
    assert segments["Female"].status == "drift"
    assert segments["Female"].drifted == ["hours-per-week"]
    assert segments["Male"].status == "ok"
    assert report.status == "drift"
    assert report.to_dict()["segments_drifted"] == ["sex=Female"]
    unchanged = compute_drift(adult_baseline, adult_window, cfg, segment_baselines={"sex": per_sex})
    assert unchanged.status == "ok"
    no_base = compute_drift(adult_baseline, adult_window, cfg)
    assert {s.status for s in no_base.segments} == {"no_baseline"}
    assert no_base.status == "ok"


def test_prediction_drift_against_evaluation_outputs() -> None:
    rng = np.random.default_rng(3)
    scores = rng.beta(2, 5, 4000)
    baseline = prediction_statistics(
        probabilities=np.stack([1 - scores, scores], axis=1),
        classes=np.where(scores >= 0.5, ">50K", "<=50K"),
    )

    def window(s: np.ndarray) -> pa.Table:
        return pa.table(
            {
                "x": np.arange(s.size, dtype=float),
                "output.probabilities": [[1 - v, v] for v in s],
                "output.classes": [b">50K" if v >= 0.5 else b"<=50K" for v in s],
            }
        )

    x_stats = compute_statistics(pa.table({"x": np.arange(4000, dtype=float)}))
    same = compute_drift(
        x_stats, window(rng.beta(2, 5, 4000)), MonitoringConfig(), prediction_baseline=baseline
    )
    assert same.prediction is not None and same.prediction.status == "ok"
    assert [f.name for f in same.prediction.features] == ["output.score", "output.class"]
    moved = compute_drift(
        x_stats, window(rng.beta(5, 2, 4000)), MonitoringConfig(), prediction_baseline=baseline
    )
    assert moved.prediction is not None and moved.prediction.status == "drift"
    assert moved.status == "drift"
    assert moved.drifted == ["output.score", "output.class"]
    none = compute_drift(x_stats, window(scores), MonitoringConfig())
    assert none.prediction is not None and none.prediction.status == "unavailable"


def test_the_class_reference_is_answered_at_the_registered_threshold() -> None:
    """A binary model answers classes at its operating threshold, so the reference its
    served classes are judged against is cut there too, not at the most probable class."""
    rng = np.random.default_rng(5)
    vocabulary = ["<=50K", ">50K"]
    evaluated, served = rng.beta(2, 5, 4000), rng.beta(2, 5, 4000)
    window = pa.table(
        {
            "x": np.arange(served.size, dtype=float),
            "output.probabilities": [[1 - v, v] for v in served],
            "output.classes": [b">50K" if v >= 0.25 else b"<=50K" for v in served],
        }
    )
    x_stats = compute_statistics(pa.table({"x": np.arange(4000, dtype=float)}))

    def judged(threshold: float | None) -> str:
        reference = evaluation_outputs("binary", evaluated, vocabulary, threshold)
        report = compute_drift(x_stats, window, MonitoringConfig(), prediction_baseline=reference)
        assert report.prediction is not None
        return next(f.status for f in report.prediction.features if f.name == "output.class")

    assert judged(0.25) == "ok"
    assert judged(None) == "drift"  # the most probable class: another operating point


def test_report_json_and_html_are_self_contained(
    tmp_path: Path,
    adult_baseline: DatasetStatistics,
    adult_window: pa.Table,
) -> None:
    import orjson

    shifted = _replace(adult_window, "age", pc.add(adult_window["age"], 15))
    report = compute_drift(adult_baseline, shifted, MonitoringConfig(), model="income", version=3)
    files = report.save(tmp_path, html=render_drift_html)
    data = orjson.loads((tmp_path / "latest.json").read_bytes())
    assert data == orjson.loads(Path(files["json"]).read_bytes())
    assert data["model"] == "income" and data["version"] == 3 and data["status"] == "drift"
    assert data["window"]["rows"] == adult_window.num_rows
    age = next(f for f in data["features"] if f["name"] == "age")
    assert set(age["metrics"]) >= {
        "psi",
        "jensen_shannon",
        "wasserstein",
        "ks",
        "out_of_range_share",
    }
    assert len(age["baseline"]["bins"]) == len(age["current"]["shares"])
    assert sum(age["current"]["shares"]) == pytest.approx(1.0)
    html = Path(files["html"]).read_text(encoding="utf-8")
    assert html.count("<svg") == len(data["features"])
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "age" in html and "psi" in html


# -- reference values and properties ----------------------------------------------------------


def _sketch(values: np.ndarray) -> QuantileSketch:
    sketch = QuantileSketch()
    sketch.update(values)
    return sketch


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=2, max_size=300).map(np.array)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_ks_and_wasserstein_match_scipy(a: np.ndarray, b: np.ndarray) -> None:
    sa, sb = _sketch(a), _sketch(b)
    assert ks_statistic(sa, sb) == pytest.approx(
        scipy.stats.ks_2samp(a, b, method="asymp").statistic, abs=1e-12
    )
    assert wasserstein(sa, sb) == pytest.approx(
        scipy.stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-6
    )
    # Both are symmetric in their arguments.
    assert ks_statistic(sb, sa) == pytest.approx(ks_statistic(sa, sb), abs=1e-12)
    assert wasserstein(sb, sa) == pytest.approx(wasserstein(sa, sb), rel=1e-9, abs=1e-9)


def test_sketch_distances_stay_close_to_scipy_past_compaction() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(0, 1, 60_000), rng.normal(0.2, 1.1, 50_000)
    sa, sb = _sketch(a), _sketch(b)
    assert sa.compactions > 0
    assert ks_statistic(sa, sb) == pytest.approx(
        scipy.stats.ks_2samp(a, b, method="asymp").statistic, abs=0.01
    )
    assert wasserstein(sa, sb) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=0.02)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(finite, min_size=20, max_size=200),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=20, max_size=200),
)
def test_identical_data_has_zero_distance(values: list[float], labels: list[str]) -> None:
    n = min(len(values), len(labels))
    table = pa.table({"x": values[:n], "c": labels[:n]})
    stats = compute_statistics(table)
    cfg = MonitoringConfig(min_samples=1)
    for name in ("x", "c"):
        result = compare_columns(name, stats[name], stats[name], cfg)
        # No shift; on so few rows a shift of the floors' size may not show either.
        assert result.status == "ok" or result.reasons[0].startswith("too few rows (")
        for key in ("psi", "jensen_shannon", "ks", "linf"):
            value = result.metrics.get(key)
            assert value is None or value == pytest.approx(0.0, abs=1e-9)
        w = result.metrics.get("wasserstein")
        assert w is None or w == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=200),
    st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=200),
)
def test_categorical_distances_are_symmetric(a: list[str], b: list[str]) -> None:
    sa = compute_statistics(pa.table({"c": a}))["c"]
    sb = compute_statistics(pa.table({"c": b}))["c"]
    cfg = MonitoringConfig(min_samples=1, rare_share=0.0)
    ab, ba = compare_columns("c", sa, sb, cfg), compare_columns("c", sb, sa, cfg)
    for key in ("psi", "jensen_shannon", "linf"):
        assert ab.metrics[key] == pytest.approx(ba.metrics[key], abs=1e-9)


def test_a_field_gone_missing_in_a_small_window_is_drift_not_a_lack_of_data(
    adult_baseline: DatasetStatistics, adult_window: pa.Table
) -> None:
    window = adult_window.slice(0, 1000)
    gone = pa.array([None] * 900 + window["workclass"].to_pylist()[900:], pa.string())
    report = compute_drift(adult_baseline, _replace(window, "workclass", gone), MonitoringConfig())
    workclass = report.feature("workclass")
    assert workclass.status == "drift" and workclass.rows < 100
    assert [r.split(" ")[0] for r in workclass.reasons] == ["missing_change"]
    # Its 94% present values in an ordinary 1,000-row window are judged as usual.
    assert (
        compute_drift(adult_baseline, window, MonitoringConfig()).feature("workclass").status
        == "ok"
    )
