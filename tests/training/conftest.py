"""Small synthetic datasets and configs for fast training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mooring.config import MooringConfig
from mooring.contract import DatasetStatistics, ReadOptions, compute_statistics
from mooring.contract.schema import Schema, infer_schema


def synthetic_table(rows: int = 600, seed: int = 0, task: str = "binary") -> pa.Table:
    """Numbers, categories, missing values and a label that depends on them."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows).round()
    income = np.where(rng.random(rows) < 0.8, 0.0, rng.lognormal(8, 1, rows)).round()
    color = rng.choice(["red", "green", "blue", "violet"], rows, p=[0.4, 0.3, 0.2, 0.1])
    city = rng.choice(["Oslo", "Lima", "Pune"], rows)
    score = (age - 40) / 12 + (color == "red") * 1.5 - (city == "Lima") + (income > 0) * 1.0
    score = score + rng.normal(0, 0.5, rows)
    age_list: list[Any] = age.tolist()
    color_list: list[Any] = color.tolist()
    for i in range(0, rows, 17):
        age_list[i] = None
    for i in range(3, rows, 23):
        color_list[i] = None
    if task == "binary":
        label: list[Any] = np.where(score > 0.3, "yes", "no").tolist()
    elif task == "multiclass":
        label = np.select([score < -0.5, score < 0.8], ["low", "mid"], "high").tolist()
    else:
        label = (score * 10 + 100).tolist()
    return pa.table(
        {"age": age_list, "income": income, "color": color_list, "city": city, "target": label}
    )


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
