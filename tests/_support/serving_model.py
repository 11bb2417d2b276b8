"""A tiny real SavedModel with the training layer's serving signature.

Inputs ``age``, ``hours-per-week`` (float32, NaN = missing) and ``workclass``, ``sex``
(string, "" = missing); outputs ``probabilities`` [n, 2], ``class_ids``,
``classes``. Built with Keras preprocessing layers and exported with
``keras.export.ExportArchive`` exactly as the training layer exports. A regression
model with the same inputs (output ``value``) is built the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

NUMERIC = ("age", "hours-per-week")
STRINGS = ("workclass", "sex")
LABELS = ("<=50K", ">50K")


def build_model_dir(
    folder: Path,
    *,
    seed: int = 0,
    delay_ms: float = 0.0,
    tail_ms: float = 0.0,
    tail_age: float = 72.0,
) -> Path:
    """Export a small binary classifier to ``folder`` (SavedModel + mooring.json).

    ``delay_ms``: every call first multiplies matrices for about that long, counted in
    iterations measured on this machine when the model is built (a latency regression
    that survives export and op determinism; a sleep or a clock would not).
    ``tail_ms``: a call holding a row older than ``tail_age`` spins that long instead, a
    slow path on rare inputs (a heavy tail: a few percent of Adult-like requests).
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    inputs: dict[str, Any] = {}
    parts = []
    for name in NUMERIC:
        inp = keras.Input(shape=(), dtype="float32", name=name)
        inputs[name] = inp
        parts.append(keras.layers.Reshape((1,))(inp))
    lookups = {
        "workclass": ["Private", "Self-emp", "Federal-gov"],
        "sex": ["Male", "Female"],
    }
    for name in STRINGS:
        inp = keras.Input(shape=(), dtype="string", name=name)
        inputs[name] = inp
        parts.append(
            keras.layers.StringLookup(vocabulary=lookups[name], output_mode="one_hot")(inp)
        )
    merged = keras.layers.Concatenate()(parts)
    hidden = keras.layers.Dense(8, activation="relu")(merged)
    out = keras.layers.Dense(1, activation="sigmoid")(hidden)
    model = keras.Model(inputs, out)

    def positive(features: dict[str, tf.Tensor]) -> tf.Tensor:
        clean = {
            k: (
                tf.where(tf.math.is_nan(v), tf.zeros_like(v), v) / 50.0
                if v.dtype == tf.float32
                else v
            )
            for k, v in features.items()
        }
        share = model(clean, training=False)[:, 0] + tf.cast(seed, tf.float32) * 0.0
        if delay_ms <= 0 and tail_ms <= 0:
            return share
        rare = tf.reduce_any(features["age"] > tail_age) if tail_ms > 0 else tf.constant(False)
        spun = _spin(tf.where(rare, tf.constant(tail_iterations), tf.constant(iterations)))
        with tf.control_dependencies([spun]):
            return tf.identity(share)

    iterations = _iterations_for(delay_ms) if delay_ms > 0 else 0
    tail_iterations = _iterations_for(tail_ms) if tail_ms > 0 else 0

    metadata = {"format": "mooring.model", "task": "binary", "label_vocabulary": list(LABELS)}
    return _export(folder, model, positive, {**metadata, "seed": seed})


def _spin(iterations: Any) -> Any:
    """Multiply a 96×96 matrix ``iterations`` times (a deterministic, exportable delay)."""
    import tensorflow as tf

    start = tf.eye(96) * 0.5

    def body(i: Any, m: Any) -> tuple[Any, Any]:
        return i + 1, tf.linalg.matmul(m, m) + tf.eye(96) * 0.5

    return tf.while_loop(lambda i, m: i < iterations, body, [tf.constant(0), start])[1]


def _iterations_for(delay_ms: float) -> int:
    """Iterations of :func:`_spin` that take about ``delay_ms`` here (median of 5 timings)."""
    import statistics
    import time

    import tensorflow as tf

    probe = tf.function(_spin)
    probe(tf.constant(10))
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        probe(tf.constant(200)).numpy()
        timings.append((time.perf_counter() - start) / 200)
    return max(1, round(delay_ms / 1000.0 / statistics.median(timings)))


def row(
    age: float = 39.0, hours: float = 40.0, workclass: str = "Private", sex: str = "Male"
) -> dict[str, Any]:
    """One request row in TF Serving's row format."""
    return {"age": age, "hours-per-week": hours, "workclass": workclass, "sex": sex}


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

    def constant(features: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.fill([tf.shape(features["age"])[0]], tf.constant(positive, tf.float32))

    metadata = {"format": "mooring.model", "task": "binary", "label_vocabulary": list(LABELS)}
    return _export(folder, model, constant, metadata)


def build_flag_model_dir(folder: Path) -> Path:
    """A model with the same signature whose answer follows ``sex`` read as a boolean
    column's text: 0.9 when it is ``"true"``, 0.1 for anything else."""
    import keras
    import tensorflow as tf

    inputs = {
        name: keras.Input(shape=(), dtype="float32" if name in NUMERIC else "string", name=name)
        for name in (*NUMERIC, *STRINGS)
    }
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Reshape((1,))(inputs["age"])))

    def flag(features: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.where(tf.equal(features["sex"], "true"), 0.9, 0.1)

    metadata = {"format": "mooring.model", "task": "binary", "label_vocabulary": list(LABELS)}
    return _export(folder, model, flag, metadata)


def _export(
    folder: Path, model: Any, positive: Callable[[dict[str, Any]], Any], metadata: dict[str, Any]
) -> Path:
    """Export ``model`` with a serving signature whose positive-class share is ``positive``."""
    import keras
    import tensorflow as tf

    def serve(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        share = positive(features)
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
    (folder / "mooring.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def build_regression_model_dir(folder: Path) -> Path:
    """A regression model with the same inputs: ``value`` = ``age`` / 2 (NaN as 0)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = {
        name: keras.Input(shape=(), dtype="float32" if name in NUMERIC else "string", name=name)
        for name in (*NUMERIC, *STRINGS)
    }
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Reshape((1,))(inputs["age"])))

    def serve(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        age = features["age"]
        return {"value": tf.where(tf.math.is_nan(age), tf.zeros_like(age), age) / 2.0}

    signature = {
        name: tf.TensorSpec([None], tf.float32 if name in NUMERIC else tf.string, name=name)
        for name in (*NUMERIC, *STRINGS)
    }
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[signature])
    archive.write_out(str(folder), verbose=False)
    metadata = {"format": "mooring.model", "task": "regression", "label_vocabulary": []}
    (folder / "mooring.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder
