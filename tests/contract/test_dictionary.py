"""Parquet text read dictionary-encoded gives exactly what reading plain strings gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.config._base import DEFAULT_NA_VALUES
from mooring.contract._io import ReadOptions, iter_batches
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.contract._validation import validate
from mooring.errors import DataError

# Tokens as they appear in real files: padded categories, na markers with and without
# padding, values that only become equal after trimming, and the empty string.
TOKENS = [" Private", "Private", "Private ", " Self-emp", "  ?", "?", "", " ", "NA", " NA "]
NA = (*DEFAULT_NA_VALUES, "?")


def _table(rows: int, seed: int, *, tokens: list[str] = TOKENS) -> pa.Table:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(tokens) + 1, rows)  # the extra index is a real null
    text = [tokens[i] if i < len(tokens) else None for i in picks]
    return pa.table(
        {
            "age": pa.array(rng.integers(17, 90, rows), pa.int64()),
            "work": pa.array(text, pa.string()),
            "score": pa.array(rng.normal(size=rows)),
            "class": pa.array(rng.choice([" <=50K", " >50K"], rows).tolist(), pa.string()),
        }
    )


def _write(table: pa.Table, path: Path, row_group_size: int, **kwargs: Any) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size, **kwargs)
    return path


def _both(path: Path, options: ReadOptions, **kwargs: Any) -> tuple[bytes, bytes]:
    encoded = compute_statistics(path, options, dictionary=True, **kwargs)
    plain = compute_statistics(path, options, dictionary=False, **kwargs)
    return encoded.to_json(), plain.to_json()


def test_dictionary_columns_arrive_encoded_and_clean(tmp_path: Path) -> None:
    table = pa.table({"s": [" a", "a ", "?", "  ?", None, "b", "NA "], "n": [1, 2, 3, 4, 5, 6, 7]})
    path = _write(table, tmp_path / "t.parquet", row_group_size=3)
    options = ReadOptions(na_values=NA)
    (batch,) = list(iter_batches(path, options, dictionary=True))
    column = batch.column("s")
    assert pa.types.is_dictionary(column.type)
    assert column.dictionary.to_pylist() == ["a", "b"]  # trimmed, merged, na dropped
    assert column.to_pylist() == ["a", "a", None, None, None, "b", None]
    assert column.null_count == 4
    (plain,) = list(iter_batches(path, options))
    assert plain.column("s").type == pa.string()
    assert plain.column("s").to_pylist() == column.to_pylist()


def test_row_values_and_batch_boundaries_match_plain_reading(tmp_path: Path) -> None:
    # Row groups of 700 rows, batches of 1024 rows: most batches span two row groups.
    path = _write(_table(5000, seed=1), tmp_path / "t.parquet", row_group_size=700)
    options = ReadOptions(na_values=NA, batch_mb=0.001)
    encoded = list(iter_batches(path, options, dictionary=True))
    plain = list(iter_batches(path, options))
    assert [b.num_rows for b in encoded] == [b.num_rows for b in plain] == [1024] * 4 + [904]
    for a, b in zip(encoded, plain, strict=True):
        assert pa.types.is_dictionary(a.column("work").type)
        decoded = a.column("work").dictionary_decode()
        assert decoded.equals(b.column("work"))
        assert a.column("age").equals(b.column("age"))


def test_statistics_identical_on_whitespace_and_na(tmp_path: Path) -> None:
    path = _write(_table(6000, seed=2), tmp_path / "t.parquet", row_group_size=1500)
    options = ReadOptions(na_values=NA, batch_mb=0.001)
    encoded, plain = _both(path, options)
    assert encoded == plain
    stats = compute_statistics(path, options)
    work = stats["work"]
    assert work.strings is not None
    # "Private" three ways and " Self-emp" remain; every na marker and blank is missing.
    assert sorted(work.strings.frequencies.counts) == ["Private", "Self-emp"]
    raw = _table(6000, seed=2).column("work").to_pylist()
    missing = sum(v is None or v.strip() in NA for v in raw)
    assert work.missing == missing
    assert work.strings.count == 6000 - missing


def test_statistics_identical_without_trimming(tmp_path: Path) -> None:
    path = _write(_table(3000, seed=3), tmp_path / "t.parquet", row_group_size=1000)
    options = ReadOptions(na_values=NA, batch_mb=0.001, trim_whitespace=False)
    encoded, plain = _both(path, options)
    assert encoded == plain
    counts = compute_statistics(path, options)["work"].strings
    assert counts is not None and " Private" in counts.frequencies.counts


def test_statistics_identical_past_the_exact_frequency_cap(tmp_path: Path) -> None:
    # 3000 distinct values over a cap of 100: pruning and the HyperLogLog take over.
    tokens = [f" id{i:05d} " for i in range(3000)]
    path = _write(_table(8000, seed=4, tokens=tokens), tmp_path / "t.parquet", row_group_size=2500)
    options = ReadOptions(na_values=NA, batch_mb=0.001)
    encoded, plain = _both(path, options, frequency_capacity=100)
    assert encoded == plain
    work = compute_statistics(path, options, frequency_capacity=100)["work"].strings
    assert work is not None and not work.frequencies.exact


def test_plain_encoded_parquet_is_read_plainly(tmp_path: Path) -> None:
    path = _write(_table(2000, seed=5), tmp_path / "t.parquet", 600, use_dictionary=False)
    options = ReadOptions(na_values=NA, batch_mb=0.001)
    batches = list(iter_batches(path, options, dictionary=True))
    assert all(b.column("work").type == pa.string() for b in batches)
    encoded, plain = _both(path, options)
    assert encoded == plain


def test_validation_identical_with_a_schema(tmp_path: Path) -> None:
    train = _write(_table(4000, seed=6), tmp_path / "train.parquet", row_group_size=900)
    options = ReadOptions(na_values=NA, batch_mb=0.001)
    schema = infer_schema(compute_statistics(train, options), label="class")
    shifted = _table(4000, seed=7, tokens=[*TOKENS, " Never-worked"])
    serving = _write(shifted, tmp_path / "serving.parquet", row_group_size=900)
    encoded, plain = _both(serving, options, schema=schema)
    assert encoded == plain
    result = validate(serving, schema, options=options)
    unseen = result.find("unseen_category", "work")
    assert unseen.count == sum(v == " Never-worked" for v in shifted.column("work").to_pylist())


def test_numbers_as_text_parse_the_same(tmp_path: Path) -> None:
    table = pa.table({"x": [" 1", "2 ", "2.5", "abc", None, "?", "7"] * 300})
    path = _write(table, tmp_path / "t.parquet", row_group_size=500)
    options = ReadOptions(na_values=NA, batch_mb=0.001)
    schema = infer_schema(compute_statistics(pa.table({"x": [1, 2, 3]})))
    encoded, plain = _both(path, options, schema=schema)
    assert encoded == plain
    col = compute_statistics(path, options, schema=schema)["x"]
    assert col.type_mismatch == 600  # "abc" and the fractional 2.5, 300 times each


def test_mixed_text_column_error_is_the_same(tmp_path: Path) -> None:
    values = [str(i) for i in range(95)] + ["abc"] * 5
    path = _write(pa.table({"x": values * 20}), tmp_path / "t.parquet", row_group_size=300)
    for dictionary in (True, False):
        with pytest.raises(DataError, match=r"column 'x' mixes numbers and text \(e\.g\. 'abc'"):
            compute_statistics(path, ReadOptions(batch_mb=0.001), dictionary=dictionary)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(0, 4000),
    row_group_size=st.integers(1, 3000),
    seed=st.integers(0, 2**16),
    tokens=st.lists(st.text(alphabet=" \tab?N", max_size=4), min_size=1, max_size=12, unique=True),
    trim=st.booleans(),
)
def test_property_dictionary_and_plain_agree(
    tmp_path_factory: pytest.TempPathFactory,
    rows: int,
    row_group_size: int,
    seed: int,
    tokens: list[str],
    trim: bool,
) -> None:
    path = tmp_path_factory.mktemp("dict") / "t.parquet"
    _write(_table(rows, seed, tokens=tokens), path, row_group_size=row_group_size)
    options = ReadOptions(na_values=NA, batch_mb=0.001, trim_whitespace=trim)
    encoded, plain = _both(path, options)
    assert encoded == plain


def test_categorical_frame_column_is_cleaned_like_text() -> None:
    values = [" a", "a ", "?", None, "b", " NA"] * 50
    options = ReadOptions(na_values=NA)
    as_text = compute_statistics(pd.DataFrame({"s": values}), options)
    as_category = compute_statistics(pd.DataFrame({"s": pd.Categorical(values)}), options)
    assert as_category.to_json() == as_text.to_json()
    strings = as_category["s"].strings
    assert strings is not None and strings.frequencies.counts == {"a": 100, "b": 50}


def test_identical_when_known_values_are_followed_by_many_new_ones(tmp_path: Path) -> None:
    # Batches 2-4 hold only values seen in batch 1 (counted by index); then 3000 new
    # values push the table past a cap of 100 (pruning, HyperLogLog seeded in table order).
    rng = np.random.default_rng(9)
    early = rng.choice([" a", "b ", "c", "?"], 4096).tolist()
    late = [f" v{i} " for i in rng.integers(0, 3000, 4000)]
    table = pa.table({"s": pa.array(early + late, pa.string())})
    path = _write(table, tmp_path / "t.parquet", row_group_size=1500)
    options = ReadOptions(na_values=NA, batch_mb=0.001)
    encoded, plain = _both(path, options, frequency_capacity=100)
    assert encoded == plain
    strings = compute_statistics(path, options, frequency_capacity=100)["s"].strings
    assert strings is not None and not strings.frequencies.exact
    exact = compute_statistics(path, options, frequency_capacity=100_000)["s"].strings
    assert exact is not None and exact.frequencies.counts["a"] == early.count(" a")


def test_new_values_enter_in_order_of_appearance_whatever_the_dictionary_order() -> None:
    # Categories are sorted; rows bring new values in another order, batch after batch,
    # until the frequency table passes its cap and a HyperLogLog is seeded in table order.
    rng = np.random.default_rng(10)
    values = rng.choice([f"w{i:03d}" for i in range(40)], 1024).tolist()
    for block in range(6):
        fresh = [f"n{block}-{i:03d}" for i in range(80)]
        values += rng.choice(fresh, 1024).tolist()
    options = ReadOptions(batch_mb=0.001)  # 1024-row batches for both frames
    as_text = compute_statistics(pd.DataFrame({"s": values}), options, frequency_capacity=300)
    as_category = compute_statistics(
        pd.DataFrame({"s": pd.Categorical(values)}), options, frequency_capacity=300
    )
    strings = as_category["s"].strings
    assert strings is not None and not strings.frequencies.exact
    assert as_category.to_json() == as_text.to_json()
