"""Small synthetic datasets and configs for fast training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mooring.config import MooringConfig
from mooring.contract._io import ReadOptions
from mooring.contract._schema import Schema, infer_schema
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from tests._support.synthetic import synthetic_table


def make_config(train: Path, **model: Any) -> MooringConfig:
    settings = {"epochs": 2, "batch_size": 64, "hidden": [16], "parity_records": 40, **model}
    return MooringConfig.from_mapping(
        {
            "project": {"name": "synthetic"},
            "data": {"train": str(train), "label": "target"},
            "model": settings,
        },
        root=train.parent,
    )


def prepare(
    tmp_path: Path, table: pa.Table | None = None, name: str = "train.csv"
) -> tuple[Path, DatasetStatistics, Schema]:
    table = table if table is not None else synthetic_table()
    path = tmp_path / name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(table, path, row_group_size=100)
    else:
        pacsv.write_csv(table, path)
    stats = compute_statistics(path, ReadOptions())
    return path, stats, infer_schema(stats, label="target")


@pytest.fixture
def binary_data(tmp_path: Path) -> tuple[Path, DatasetStatistics, Schema]:
    return prepare(tmp_path)
