"""Sharded copies of the bundled Adult data: the same rows, split into files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests._support.broken_adult import ADULT_TRAIN, adult_sample, csv_bytes


def adult_table() -> pa.Table:
    """The Adult training file as read with every column as text (as the CSV holds it)."""
    header, rows = adult_sample(10**6)
    return pa.table({name: [r[i] for r in rows] for i, name in enumerate(header)})


def split_rows(total: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (start, stop) row ranges covering ``total`` rows."""
    bounds = [round(i * total / shards) for i in range(shards + 1)]
    return list(itertools.pairwise(bounds))


def write_csv_shards(folder: Path, shards: int, *, rows: int | None = None) -> list[Path]:
    """Adult's training rows (the first ``rows``) as ``shards`` CSV files with headers."""
    header, data = adult_sample(rows or 10**6)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (start, stop) in enumerate(split_rows(len(data), shards)):
        path = folder / f"part-{i:04d}.csv"
        path.write_bytes(csv_bytes(header, data[start:stop]))
        paths.append(path)
    return paths


def write_parquet_shards(folder: Path, table: pa.Table, shards: int) -> list[Path]:
    """``table`` as ``shards`` Parquet files, in row order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (start, stop) in enumerate(split_rows(table.num_rows, shards)):
        path = folder / f"part-{i:04d}.parquet"
        pq.write_table(table.slice(start, stop - start), path)
        paths.append(path)
    return paths


def read_adult_typed() -> pa.Table:
    """The Adult training file with pyarrow's own types ('?' as missing)."""
    return pacsv.read_csv(
        ADULT_TRAIN,
        convert_options=pacsv.ConvertOptions(null_values=["?", ""], strings_can_be_null=True),
    )
