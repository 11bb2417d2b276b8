"""The fast paths of a statistics pass give bit for bit what the plain computations give.

Sorting a batch once for the sketch, the extremes, the zeros and the range check;
merging a compaction's leftover into the next values instead of sorting them again;
reading CSV text as dictionaries; summarising columns in threads: none of these may
change a single bit of the statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._base import DEFAULT_NA_VALUES
from mooring.contract import _statistics as statistics_module
from mooring.contract._io import ReadOptions, iter_batches
from mooring.contract._schema import ColumnSchema, Schema
from mooring.contract._sketch import QuantileSketch
from mooring.contract._statistics import compute_statistics
from mooring.contract._summaries import NumericSummary
from mooring.errors import DataError

NA = (*DEFAULT_NA_VALUES, "?")


class ReferenceSketch:
    """The compactor hierarchy as first written: every level change concatenates and sorts."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.levels: list[np.ndarray[Any, Any]] = []
        self.n = 0
        self.compactions = 0

    def update(self, values: np.ndarray[Any, Any]) -> None:
        if values.size == 0:
            return
        self.n += values.size
        self._add(0, np.sort(values))
        h = 0
        while h < len(self.levels):
            level = self.levels[h]
            if level.size > self.k:
                odd = level.size % 2
                offset = self.compactions % 2
                self.compactions += 1
                self.levels[h] = level[level.size - odd :].copy()
                self._add(h + 1, level[: level.size - odd][offset::2].copy())
            h += 1

    def _add(self, level: int, values: np.ndarray[Any, Any]) -> None:
        while len(self.levels) <= level:
            self.levels.append(np.empty(0))
        merged = np.concatenate([self.levels[level], values])
        merged.sort(kind="stable")
        self.levels[level] = merged


def reference_numeric(batches: list[np.ndarray[Any, Any]], k: int) -> dict[str, Any]:
    """Moments, extremes, zeros and sketch of float batches, one plain pass per statistic."""
    sketch = ReferenceSketch(k)
    count, mean, m2, zeros, infinite = 0, 0.0, 0.0, 0, 0
    lo, hi = float("inf"), float("-inf")
    for values in batches:
        finite = values[np.isfinite(values)]
        infinite += int(np.isinf(values).sum())
        if finite.size == 0:
            continue
        batch_mean = float(finite.mean())
        deviations = finite - batch_mean
        batch_m2 = float(np.square(deviations, out=deviations).sum())
        total = count + finite.size
        delta = batch_mean - mean
        mean += delta * finite.size / total
        m2 += batch_m2 + delta * delta * count * finite.size / total
        count = total
        lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        zeros += int(np.count_nonzero(finite == 0))
        sketch.update(finite)
    return {
        "count": count,
        "mean": mean,
        "m2": m2,
        "min": lo,
        "max": hi,
        "zeros": zeros,
        "infinite": infinite,
        "levels": [level.tobytes() for level in sketch.levels],
        "compactions": sketch.compactions,
    }


def _bits(value: float) -> bytes:
    return np.float64(value).tobytes()


# Ties, both zeros and infinities are where a sort-based shortcut could differ.
FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, float("inf"), float("-inf")]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(
    batches=st.lists(st.lists(FLOATS, max_size=120), min_size=1, max_size=12),
    k=st.sampled_from([4, 7, 16, 64]),
)
def test_numeric_summary_matches_the_plain_computations(batches: list[list[float]], k: int) -> None:
    arrays = [np.array(b, dtype=np.float64) for b in batches]
    summary = NumericSummary(sketch=QuantileSketch(k=k))
    for values in arrays:
        summary.update(values)
    expected = reference_numeric(arrays, k)
    assert summary.count == expected["count"]
    assert (summary.zeros, summary.infinite) == (expected["zeros"], expected["infinite"])
    for field in ("mean", "m2", "min", "max"):
        assert _bits(getattr(summary, field)) == _bits(expected[field]), field
    assert summary.sketch.compactions == expected["compactions"]
    assert [level.tobytes() for level in summary.sketch.levels] == expected["levels"]


def test_signed_zeros_left_behind_by_compactions_merge_as_a_stable_sort() -> None:
    # Odd batches of -0.0 and 0.0 with a tiny k: every level keeps a leftover zero that
    # meets zeros of the other sign; only a stable merge keeps their bits in place.
    rng = np.random.default_rng(5)
    arrays = [rng.choice([-0.0, 0.0], size=int(rng.integers(1, 40)) | 1) for _ in range(300)]
    summary = NumericSummary(sketch=QuantileSketch(k=4))
    for values in arrays:
        summary.update(values)
    expected = reference_numeric(arrays, 4)
    assert [level.tobytes() for level in summary.sketch.levels] == expected["levels"]


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.integers(-50, 50), min_size=1, max_size=400), min_size=1, max_size=8
    ),
    bounds=st.tuples(st.integers(-60, 0), st.integers(0, 60)),
)
def test_integer_ranges_counted_as_row_by_row(
    batches: list[list[int]], bounds: tuple[int, int]
) -> None:
    values = [v for batch in batches for v in batch]
    table = pa.table({"x": pa.array(values, pa.int64())})
    schema = Schema(columns={"x": ColumnSchema("x", "integer", min=bounds[0], max=bounds[1])})
    col = compute_statistics(table, ReadOptions(batch_mb=0.001), schema=schema)["x"]
    below = [v for v in values if v < bounds[0]]
    above = [v for v in values if v > bounds[1]]
    assert (col.below_range, col.above_range) == (len(below), len(above))
    bad = [float(v) for v in values if v < bounds[0] or v > bounds[1]]
    # Examples come batch by batch (1024 rows each here), so in row order.
    assert col.range_examples == bad[:5]


def test_float_ranges_count_infinities_and_keep_the_sign_of_zero() -> None:
    values = [0.0, -0.0, float("inf"), 3.0, -2.0, float("nan"), None, float("-inf"), 0.5]
    table = pa.table({"x": pa.array(values * 500, pa.float64())})
    schema = Schema(
        columns={"x": ColumnSchema("x", "float", min=-1.0, max=1.0, max_null_fraction=1.0)}
    )
    col = compute_statistics(table, ReadOptions(batch_mb=0.01), schema=schema)["x"]
    assert (col.below_range, col.above_range) == (2 * 500, 2 * 500)
    assert col.range_examples == [float("inf"), 3.0, -2.0, float("-inf"), float("inf")]
    # Every finite value inside the range, an infinity outside it.
    inside = pa.table({"x": pa.array([0.5, float("inf"), -0.5, None] * 3000)})
    col = compute_statistics(inside, schema=schema)["x"]
    assert (col.below_range, col.above_range) == (0, 3000)
    zeros = compute_statistics(pa.table({"z": pa.array([-0.0, 0.0] * 5000)}))["z"].numeric
    assert zeros is not None and zeros.zeros == 10_000
    assert _bits(zeros.min) == _bits(float(np.array([-0.0, 0.0] * 5000).min()))


def _serial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistics_module, "PARALLEL_ROWS", 1 << 62)


def _adult_like(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    work = np.array([" Private", "Private ", "?", " NA", "Self-emp", ""], dtype=object)
    return pa.table(
        {
            "age": pa.array(rng.integers(17, 90, rows)),
            "score": pa.array(rng.normal(size=rows)),
            "work": pa.array(work[rng.integers(0, len(work), rows)].tolist()),
            "id": pa.array([f"u{v}" for v in rng.integers(0, 3000, rows)]),
            "flag": pa.array(rng.choice(["true", "False", " yes", "0", "maybe"], rows).tolist()),
            "count": pa.array(rng.choice([" 1", "2 ", "3", "x", "2.5", "?"], rows).tolist()),
        }
    )


SCHEMA = Schema(
    columns={
        "age": ColumnSchema("age", "integer", min=18, max=80),
        "score": ColumnSchema("score", "float", min=-3.0, max=3.0),
        "work": ColumnSchema("work", "string", max_null_fraction=1.0, domain=["Private"]),
        "id": ColumnSchema("id", "string"),
        "flag": ColumnSchema("flag", "boolean", max_null_fraction=1.0),
        "count": ColumnSchema("count", "integer", max_null_fraction=1.0, min=0, max=2),
    }
)


def test_columns_in_threads_give_the_serial_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _adult_like(60_000, seed=1)
    path = tmp_path / "t.csv"
    pacsv.write_csv(table, path)
    # CSV blocks of 512 KiB and table batches of about 13,000 rows: both above PARALLEL_ROWS.
    options = ReadOptions(na_values=NA, batch_mb=4.0)
    runs: list[list[bytes]] = []
    for serial in (False, True):
        if serial:
            _serial(monkeypatch)
        runs.append(
            [
                compute_statistics(path, options, schema=SCHEMA, frequency_capacity=500).to_json(),
                compute_statistics(path, options).to_json(),
                compute_statistics(
                    table, ReadOptions(na_values=NA, batch_mb=0.5), schema=SCHEMA
                ).to_json(),
            ]
        )
    assert runs[0] == runs[1]


def test_an_error_in_a_column_thread_is_raised() -> None:
    values = [str(i) for i in range(95)] + ["abc"] * 5
    table = pa.table({"n": list(range(20_000)), "x": values * 200})
    with pytest.raises(DataError, match=r"column 'x' mixes numbers and text"):
        compute_statistics(table)


def test_csv_text_read_as_dictionaries_gives_the_plain_statistics(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pacsv.write_csv(_adult_like(30_000, seed=2), path)
    for options in (
        ReadOptions(na_values=NA, batch_mb=0.2),
        ReadOptions(na_values=NA, batch_mb=0.2, trim_whitespace=False),
    ):
        encoded = compute_statistics(
            path, options, schema=SCHEMA, dictionary=True, frequency_capacity=500
        )
        plain = compute_statistics(
            path, options, schema=SCHEMA, dictionary=False, frequency_capacity=500
        )
        assert encoded.to_json() == plain.to_json()
        ids = encoded["id"].strings
        assert ids is not None and not ids.frequencies.exact  # past the cap of 500


def test_csv_columns_forced_to_text_arrive_as_clean_dictionaries(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('work,n\n Private,1\n?,2\n"",3\nPrivate ,4\n NA ,5\nSelf-emp,6\n')
    options = ReadOptions(na_values=NA).with_types({"work": pa.string()})
    (encoded,) = list(iter_batches(path, options, dictionary=True))
    (plain,) = list(iter_batches(path, options))
    column = encoded.column("work")
    assert pa.types.is_dictionary(column.type)
    assert plain.column("work").type == pa.string()
    assert column.to_pylist() == plain.column("work").to_pylist()
    assert column.to_pylist() == ["Private", None, None, "Private", None, "Self-emp"]
    assert encoded.column("n").equals(plain.column("n"))
