"""Real SavedModels for the end-to-end rollout tests: a good model, and a clearly worse one.

Both have the training layer's serving signature (``age``, ``hours-per-week`` as float32,
``workclass``, ``sex`` as strings; outputs ``probabilities``, ``class_ids``, ``classes``)
and are exported with ``keras.export.ExportArchive`` as the training layer exports. The
worse one answers the same constant probability whatever the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests._support.serving_model import build_constant_model_dir, build_model_dir

__all__ = ["build_constant_model_dir", "build_model_dir", "rows"]


def rows(
    count: int, rng: np.random.Generator, *, age_shift: float = 0.0, female: float = 0.33
) -> list[dict[str, Any]]:
    """Request rows resembling Adult: ages 17-90, 1-99 hours, a male majority by default."""
    ages = np.clip(rng.normal(38.6, 13.6, count), 17, 90) + age_shift
    hours = np.clip(rng.normal(40.4, 12.3, count), 1, 99)
    work = rng.choice(["Private", "Self-emp", "Federal-gov"], size=count, p=[0.75, 0.15, 0.1])
    sex = np.where(rng.random(count) < female, "Female", "Male")
    return [
        {"age": float(a), "hours-per-week": float(h), "workclass": str(w), "sex": str(s)}
        for a, h, w, s in zip(ages, hours, work, sex, strict=True)
    ]
