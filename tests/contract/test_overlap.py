"""Eval rows that are training rows: counted as pandas counts them, refused only beyond
what repeats by chance (Adult's own test file shares a few rows and passes)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.contract._io import ReadOptions, read_table
from mooring.contract._overlap import Overlap, file_overlap, row_overlap
from tests._support.project import ADULT

OPTIONS = ReadOptions(na_values=("?", ""))


@pytest.fixture(scope="module")
def adult() -> tuple[pa.Table, pa.Table]:
    return (
        read_table(ADULT / "adult.data.csv.gz", OPTIONS),
        read_table(ADULT / "adult.test.csv.gz", OPTIONS),
    )


def _pandas_shared(train: pa.Table, evaluation: pa.Table) -> int:
    """The reference: eval rows equal on every column to some training row, by pandas."""
    seen = train.to_pandas().drop_duplicates()
    merged = evaluation.to_pandas().merge(seen, how="inner", on=list(evaluation.column_names))
    return len(merged)


def test_adults_test_file_shares_a_few_rows_with_its_training_file_and_passes(
    adult: tuple[pa.Table, pa.Table],
) -> None:
    train, test = adult
    found = row_overlap(train, test)
    assert found.shared == _pandas_shared(train, test) == 23
    assert found.eval_rows == 16_281 and found.share < 0.01 and not found.refused


def test_the_training_file_is_read_batch_by_batch_with_the_same_count(
    adult: tuple[pa.Table, pa.Table],
) -> None:
    """The training file streamed (its CSV batches, or 1,000-row slices of the table) finds
    the same shared rows and the same natural repeat rate as the table read whole."""
    train, test = adult
    whole = row_overlap(train, test)
    streamed = file_overlap(ADULT / "adult.data.csv.gz", OPTIONS, test)
    sliced = row_overlap(iter(train.to_batches(max_chunksize=1_000)), test)
    assert streamed == sliced == whole
    assert whole.shared == 23


def test_adults_training_file_as_its_own_eval_data_is_refused(
    adult: tuple[pa.Table, pa.Table],
) -> None:
    train, _ = adult
    # Another file of the same rows: the types a Parquet copy might give, text padded.
    copy = train.set_column(0, "age", train["age"].cast(pa.float64()))
    padded = pc.binary_join_element_wise(" ", copy["workclass"], "")
    copy = copy.set_column(copy.schema.get_field_index("workclass"), "workclass", padded)
    assert copy["workclass"][0].as_py().startswith(" ")
    found = row_overlap(train, copy)
    assert found.shared == train.num_rows and found.refused
    assert found.natural < 0.01  # Adult repeats few of its rows


def test_a_quarter_of_the_eval_rows_from_training_is_refused(
    adult: tuple[pa.Table, pa.Table],
) -> None:
    train, test = adult
    mixed = pa.concat_tables([test.slice(0, 3000), train.slice(0, 1000)])
    found = row_overlap(train, mixed)
    assert found.shared == _pandas_shared(train, mixed)
    assert found.share == pytest.approx(0.25, abs=0.01) and found.refused


def test_a_table_of_few_coarse_columns_repeats_by_chance_and_passes() -> None:
    rng = np.random.default_rng(0)
    table = pa.table({"a": rng.integers(0, 3, 5000), "b": rng.choice(["x", "y"], 5000)})
    found = row_overlap(table.slice(0, 4000), table.slice(4000))
    assert found.share == 1.0 and found.natural == 1.0 and not found.refused


_VALUES = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["a", " a", "b", "B"]))


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(st.tuples(_VALUES, st.integers(0, 2)), min_size=1, max_size=40),
    picked=st.lists(st.integers(0, 39), max_size=20),
    fresh=st.lists(st.tuples(_VALUES, st.integers(0, 2)), max_size=20),
)
def test_the_shared_rows_are_those_a_set_of_normalised_rows_finds(
    train: list[tuple[object, int]], picked: list[int], fresh: list[tuple[object, int]]
) -> None:
    evaluation = [train[i % len(train)] for i in picked] + fresh

    def norm(row: tuple[object, int]) -> tuple[object, int]:
        value = row[0].strip() if isinstance(row[0], str) else row[0]
        return (None if value is None else str(value), row[1])

    def table(rows: list[tuple[object, int]]) -> pa.Table:
        texts = [None if v is None else str(v) for v, _ in rows]
        return pa.table({"v": pa.array(texts, pa.string()), "n": [n for _, n in rows]})

    expected = sum(norm(r) in {norm(t) for t in train} for r in evaluation)
    assert row_overlap(table(train), table(evaluation)).shared == expected


def test_the_verdict_needs_both_the_share_and_more_than_chance() -> None:
    assert Overlap(16_281, 23, 0.0006).refused is False
    assert Overlap(1000, 20, 0.0).refused is True
    assert Overlap(1000, 600, 0.35).refused is False
    assert Overlap(1000, 800, 0.35).refused is True
