"""The calibration sample: uniform, bounded, seeded, in file order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.contract._io import ReadOptions
from mooring.errors import DataError
from mooring.export._data import distinct_rows, sample_rows


def _table(n: int, batch: int) -> pa.Table:
    ids = list(range(n))
    batches = [
        pa.record_batch({"id": ids[i : i + batch], "text": [f"r{j}" for j in ids[i : i + batch]]})
        for i in range(0, n, batch)
    ]
    return pa.Table.from_batches(batches)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    rows=st.integers(1, 120),
    batch=st.integers(1, 64),
    seed=st.integers(0, 9),
)
def test_sample_is_a_seeded_subset_in_file_order(n: int, rows: int, batch: int, seed: int) -> None:
    table = _table(n, batch)
    sample = sample_rows(table, ReadOptions(), rows, seed=seed, columns=["id", "text"])
    ids = sample.column("id").to_pylist()
    assert len(ids) == min(n, rows)
    assert ids == sorted(set(ids)) and set(ids) <= set(range(n))
    assert sample.column("text").to_pylist() == [f"r{i}" for i in ids]
    again = sample_rows(table, ReadOptions(), rows, seed=seed, columns=["id", "text"])
    assert again.column("id").to_pylist() == ids


def test_sample_is_uniform_across_batches() -> None:
    table = _table(1000, 37)
    counts = np.zeros(1000)
    for seed in range(100):
        sample = sample_rows(table, ReadOptions(), 100, seed=seed, columns=["id"])
        counts[sample.column("id").to_numpy()] += 1
    # Every row is kept with probability 0.1: 10 of 100 draws on average, early or late.
    assert counts[:500].mean() == pytest.approx(10, rel=0.1)
    assert counts[500:].mean() == pytest.approx(10, rel=0.1)


def test_sample_reads_files_and_names_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    pacsv.write_csv(_table(50, 50), path)
    assert sample_rows(str(path), ReadOptions(), 10, seed=0, columns=["id"]).num_rows == 10
    with pytest.raises(DataError, match=r"no column\(s\) \['age'\] that the model takes"):
        sample_rows(str(path), ReadOptions(), 10, seed=0, columns=["age"])


def test_distinct_rows() -> None:
    columns = {
        "x": np.array([1.0, 1.0, np.nan, np.nan], dtype=np.float32),
        "s": np.array(["a", "a", "", "b"], dtype=object),
    }
    assert distinct_rows(columns) == 3
    assert distinct_rows({}) == 0
