"""Real SavedModels for the end-to-end rollout tests: a good model, and a clearly worse one.

Both have the training layer's serving signature (``age``, ``hours-per-week`` as float32,
``workclass``, ``sex`` as strings; outputs ``probabilities``, ``class_ids``, ``classes``)
and are exported with ``keras.export.ExportArchive`` as the training layer exports. The
worse one answers the same constant probability whatever the input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tests._support.serving_model import LABELS, NUMERIC, STRINGS, build_model_dir

__all__ = ["build_constant_model_dir", "build_model_dir", "rows"]


def build_constant_model_dir(folder: Path, *, positive: float = 0.93) -> Path:
    """A model with the same signature that returns ``positive`` for every row."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = {
        name: keras.Input(shape=(), dtype="float32" if name in NUMERIC else "string", name=name)
        for name in (*NUMERIC, *STRINGS)
    }
    hidden = keras.layers.Dense(1)(keras.layers.Reshape((1,))(inputs["age"]))
    model = keras.Model(inputs, hidden)

    def serve(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        count = tf.shape(features["age"])[0]
        share = tf.fill([count], tf.constant(positive, tf.float32))
        probabilities = tf.stack([1.0 - share, share], axis=1)
        class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int64)
        classes = tf.gather(tf.constant(list(LABELS)), class_ids)
        return {"probabilities": probabilities, "class_ids": class_ids, "classes": classes}

    signature = {
        name: tf.TensorSpec([None], tf.float32 if name in NUMERIC else tf.string, name=name)
        for name in (*NUMERIC, *STRINGS)
    }
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[signature])
    archive.write_out(str(folder), verbose=False)
    metadata = {"format": "mooring.model", "task": "binary", "label_vocabulary": list(LABELS)}
    (folder / "mooring.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


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
