"""Malformed inputs give a MooringError with a clear message, never a library traceback."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mooring.contract._io import ReadOptions, detect_delimiter, read_table
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.errors import DataError, NotFoundError


def test_not_a_csv_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(DataError, match=r"does not look like delimited text"):
        compute_statistics(path)


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("age;city\n30;Oslo\n40;Bergen\n")
    with pytest.raises(DataError, match=r"delimiter looks like .;.*set \[data\] delimiter"):
        compute_statistics(path)
    stats = compute_statistics(path, ReadOptions(delimiter=";"))
    assert stats.column_names == ["age", "city"]


def test_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"not a consistent CSV.*same number of fields"):
        compute_statistics(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"is empty \(0 bytes\)"):
        compute_statistics(path)


def test_header_only_is_an_empty_dataset(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    stats = compute_statistics(path)
    assert stats.num_rows == 0 and stats.column_names == ["a", "b"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"does not exist"):
        compute_statistics(tmp_path / "nope.csv")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is a folder"):
        compute_statistics(tmp_path)


def test_mixed_types_column(tmp_path: Path) -> None:
    """A numeric column with text after the first block: clear error naming the column."""
    lines = ["id,amount"] + [f"{i},{i * 1.5}" for i in range(50_000)] + ["50000,lots"]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"column 'amount' mixes numbers and text \(e.g. 'lots'\)"):
        compute_statistics(path, ReadOptions(batch_mb=0.1))


def test_mixed_types_in_first_block(tmp_path: Path) -> None:
    lines = ["amount"] + [str(i) for i in range(100)] + ["n/a"]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"column 'amount' mixes numbers and text.*na_values"):
        compute_statistics(path)
    stats = compute_statistics(path, ReadOptions(na_values=("n/a",)))
    assert stats["amount"].type == "integer" and stats["amount"].missing == 1


def test_integer_column_widens_to_float(tmp_path: Path) -> None:
    lines = ["x"] + [str(i) for i in range(50_000)] + ["2.5"]
    path = tmp_path / "widen.csv"
    path.write_text("\n".join(lines) + "\n")
    stats = compute_statistics(path, ReadOptions(batch_mb=0.1))
    assert stats["x"].type == "float" and stats["x"].numeric is not None
    assert stats["x"].numeric.count == 50_001


@pytest.fixture
def one_arrow_cpu() -> Iterator[None]:
    """Arrow converting CSV serially, as in a one-CPU container or a Ray task."""
    before = pa.cpu_count()
    pa.set_cpu_count(1)
    try:
        yield
    finally:
        pa.set_cpu_count(before)


@pytest.mark.usefixtures("one_arrow_cpu")
def test_a_declared_column_with_a_bad_value_is_counted_with_one_arrow_cpu(tmp_path: Path) -> None:
    """Serial conversion names the row in its error; the value is still a type mismatch."""
    path = tmp_path / "ages.csv"
    path.write_text("\n".join(["age"] + [str(20 + i % 50) for i in range(100)]) + "\n")
    schema = infer_schema(compute_statistics(path))
    path.write_text("\n".join(["age"] + [str(20 + i % 50) for i in range(100)] + ["ten"]) + "\n")
    stats = compute_statistics(path, schema=schema)
    assert stats["age"].type_mismatch == 1 and stats["age"].mismatch_examples == ["ten"]


def test_whitespace_and_na_tokens_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "spaces.csv"
    path.write_text(" age , city\n39, Oslo\n50, ?\n 7 ,Bergen \n\n\n")
    table = read_table(path, ReadOptions(na_values=("?",)))
    assert table.column_names == ["age", "city"]
    assert table.column("age").to_pylist() == [39, 50, 7]
    assert table.column("city").to_pylist() == ["Oslo", None, "Bergen"]


def test_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,x\n2,y\n"))
    assert read_table(path).num_rows == 2


def test_unsupported_object() -> None:
    with pytest.raises(DataError, match=r"cannot read data from a int"):
        compute_statistics(42)


def test_dataframe_with_mixed_object_column() -> None:
    frame = pd.DataFrame({"x": [1, "a", 2.5]})
    with pytest.raises(DataError, match=r"DataFrame cannot be converted"):
        compute_statistics(frame)


def test_parquet_garbage(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1" + os.urandom(100))
    with pytest.raises(DataError, match=r"not a readable Parquet file"):
        compute_statistics(path)


def test_arrow_table_and_batch() -> None:
    table = pa.table({"x": [1, 2, 3]})
    assert compute_statistics(table).num_rows == 3
    assert compute_statistics(table.to_batches()[0]).num_rows == 3


_SEPARATORS = (",", ";", "\t", "|")


@given(
    names=st.lists(
        st.text(
            st.characters(
                codec="utf-8",
                exclude_categories=("Cs", "Cc", "Zl", "Zp"),
                exclude_characters=",;|\t\"'\r\n",
            ),
            min_size=1,
            max_size=12,
        ).filter(lambda name: name.strip() == name),
        min_size=2,
        max_size=8,
        unique=True,
    ),
    rows=st.integers(1, 30),
    separator=st.sampled_from(_SEPARATORS),
    decimal_commas=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_the_separator_a_table_was_written_with_is_found(
    tmp_path_factory: pytest.TempPathFactory,
    names: list[str],
    rows: int,
    separator: str,
    decimal_commas: bool,
) -> None:
    """Any names (no separator in them), numbers written with a decimal comma or point,
    text, nulls: the separator the file was written with, also for a ',' file."""
    from pyarrow import csv as pacsv

    columns: dict[str, list[object]] = {}
    for j, name in enumerate(names):
        if j % 3 == 0:
            columns[name] = [None if i % 7 == 3 else i * 1.5 for i in range(rows)]
        elif j % 3 == 1:
            columns[name] = [f"v{i % 4}" for i in range(rows)]
        else:
            columns[name] = [2**53 + i for i in range(rows)]
    table = pa.table(columns)
    path = tmp_path_factory.mktemp("sep") / "t.csv"
    pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter=separator))
    if decimal_commas and separator != ",":
        path.write_text(path.read_text("utf-8").replace(".5", ",5"), "utf-8")
    assert detect_delimiter(path) == separator


def test_a_one_column_file_and_parquet_are_comma_separated(tmp_path: Path) -> None:
    (tmp_path / "one.csv").write_text("x\n1\n2\n", encoding="utf-8")
    assert detect_delimiter(tmp_path / "one.csv") == ","
    pa.parquet.write_table(pa.table({"a;b": [1]}), tmp_path / "t.parquet")
    assert detect_delimiter(tmp_path / "t.parquet") == ","
    (tmp_path / "empty.csv").write_text("\n\n", encoding="utf-8")
    assert detect_delimiter(tmp_path / "empty.csv") == ","
