from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.contract._io import ReadOptions
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.errors import DataError


def test_numeric_summary_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(50, 10, size=20_000)
    values[::100] = 0.0
    stats = compute_statistics(pa.table({"x": values}), ReadOptions(batch_mb=0.05))
    num = stats["x"].numeric
    assert num is not None
    assert num.count == values.size
    assert num.mean == pytest.approx(values.mean(), rel=1e-12)
    assert num.std == pytest.approx(values.std(), rel=1e-9)
    assert (num.min, num.max) == (values.min(), values.max())
    assert num.zeros == 200
    q = np.quantile(values, [0.1, 0.5, 0.9], method="inverted_cdf")
    assert num.quantiles([0.1, 0.5, 0.9]) == pytest.approx(q, rel=0.05)


def test_missing_nan_and_infinity() -> None:
    table = pa.table({"x": pa.array([1.0, None, float("nan"), float("inf"), 3.0])})
    col = compute_statistics(table)["x"]
    assert (col.count, col.missing) == (5, 2)
    assert col.numeric is not None
    assert (col.numeric.count, col.numeric.infinite, col.numeric.mean) == (2, 1, 2.0)


def test_string_summary() -> None:
    table = pa.table({"s": ["bb", "a", None, "bb", "ccc"]})
    col = compute_statistics(table)["s"]
    assert col.type == "string"
    assert col.strings is not None
    assert col.missing == 1
    assert col.strings.top(2) == [("bb", 2), ("a", 1)]
    assert col.strings.distinct == 3
    assert (col.strings.length_min, col.strings.length_max) == (1, 3)


def test_histograms() -> None:
    values = np.arange(1000, dtype=float)
    num = compute_statistics(pa.table({"x": values}))["x"].numeric
    assert num is not None
    edges, counts = num.histogram(4)
    assert edges == [0.0, 249.75, 499.5, 749.25, 999.0]
    assert sum(counts) == 1000 and max(counts) - min(counts) <= 1
    q_edges, q_counts = num.quantile_histogram(4)
    assert len(q_edges) == 5 and sum(q_counts) == 1000


def test_sources_agree(tmp_path: Path, adult_train: Path, adult_options: ReadOptions) -> None:
    from_csv = compute_statistics(adult_train, adult_options)
    table = pa.Table.from_pandas(
        pd.read_csv(adult_train, na_values=["?"], keep_default_na=True), preserve_index=False
    )
    pq.write_table(table, tmp_path / "adult.parquet")
    from_parquet = compute_statistics(tmp_path / "adult.parquet", adult_options)
    from_frame = compute_statistics(table.to_pandas(), adult_options)
    for other in (from_parquet, from_frame):
        assert other.num_rows == from_csv.num_rows == 32_561
        for name, col in from_csv.columns.items():
            assert other[name].missing == col.missing, name
            if col.numeric is not None:
                assert other[name].numeric is not None
                assert other[name].numeric.mean == pytest.approx(col.numeric.mean)
            else:
                assert other[name].strings is not None and col.strings is not None
                assert other[name].strings.frequencies.counts == col.strings.frequencies.counts


def test_streaming_batches_equal_one_batch(adult_train: Path, adult_options: ReadOptions) -> None:
    small = compute_statistics(
        adult_train, ReadOptions(**{**adult_options.__dict__, "batch_mb": 0.1})
    )
    large = compute_statistics(adult_train, adult_options)
    for name, col in large.columns.items():
        assert small[name].count == col.count and small[name].missing == col.missing
        if col.numeric is not None:
            assert small[name].numeric is not None
            assert small[name].numeric.mean == pytest.approx(col.numeric.mean, rel=1e-12)
            assert small[name].numeric.m2 == pytest.approx(col.numeric.m2, rel=1e-9)


def test_json_round_trip_is_identical(
    tmp_path: Path, adult_train: Path, adult_options: ReadOptions
) -> None:
    stats = compute_statistics(adult_train, adult_options)
    path = stats.save(tmp_path / "stats.json")
    loaded = DatasetStatistics.load(path)
    assert loaded == stats
    assert loaded.fingerprint() == stats.fingerprint()


def test_deterministic_across_runs(adult_train: Path, adult_options: ReadOptions) -> None:
    a = compute_statistics(adult_train, adult_options)
    b = compute_statistics(adult_train, adult_options)
    assert a.fingerprint() == b.fingerprint()


def test_not_statistics_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(DataError, match=r"not a mooring statistics file"):
        DatasetStatistics.load(path)


columns = st.lists(
    st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)), min_size=0, max_size=300
)
labels = st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", "zz", ""])), max_size=300)


@settings(max_examples=60, deadline=None)
@given(columns, columns, labels, labels)
def test_merge_matches_union(
    a: list[float | None], b: list[float | None], sa: list[str | None], sb: list[str | None]
) -> None:
    """stats(a).merge(stats(b)) == stats(a ∪ b): exact counts, moments to rounding."""
    n = min(len(a), len(sa))
    m = min(len(b), len(sb))
    ta = pa.table({"x": pa.array(a[:n], pa.float64()), "s": pa.array(sa[:n], pa.string())})
    tb = pa.table({"x": pa.array(b[:m], pa.float64()), "s": pa.array(sb[:m], pa.string())})
    opts = ReadOptions(trim_whitespace=False)
    merged = compute_statistics(ta, opts).merge(compute_statistics(tb, opts))
    whole = compute_statistics(pa.concat_tables([ta, tb]), opts)
    assert merged.num_rows == whole.num_rows
    for name in ("x", "s"):
        assert (merged[name].count, merged[name].missing) == (
            whole[name].count,
            whole[name].missing,
        )
    mx, wx = merged["x"].numeric, whole["x"].numeric
    if wx is not None and wx.count:
        assert mx is not None and mx.count == wx.count
        assert (mx.min, mx.max, mx.zeros) == (wx.min, wx.max, wx.zeros)
        assert mx.mean == pytest.approx(wx.mean, rel=1e-9, abs=1e-6)
        assert mx.m2 == pytest.approx(wx.m2, rel=1e-6, abs=1e-3)
        assert mx.sketch.n == wx.sketch.n
    ms, ws = merged["s"].strings, whole["s"].strings
    if ws is not None and ws.count:
        assert ms is not None and ms.frequencies.counts == ws.frequencies.counts


def test_merge_column_missing_in_one_part() -> None:
    a = compute_statistics(pa.table({"x": [1.0, 2.0], "y": ["a", "b"]}))
    b = compute_statistics(pa.table({"x": [3.0]}))
    merged = a.merge(b)
    assert merged.num_rows == 3
    assert (merged["y"].count, merged["y"].missing) == (3, 1)
