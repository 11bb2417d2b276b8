"""A small synthetic table for fast training tests: numbers, categories, gaps, a label."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


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
