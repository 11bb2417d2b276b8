"""Small real models built elsewhere than mooring, for ``mooring models import`` and
``mooring serve --model-dir``: Keras models saved as ``.keras`` files or exported as
SavedModels, and ``tf.Module`` SavedModels with signatures of their own.

Each builder writes a tiny model (a few weights) to the path it is given and returns it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

#: The inputs of :func:`tabular_keras`: one number per row each (``[None]``).
TABULAR_ROWS = [{"age": 39.0, "hours-per-week": 40.0}, {"age": 50.0, "hours-per-week": 13.0}]


def tabular_keras_model() -> keras.Model:
    """A two-input functional Keras model on ``[None]`` float inputs, one sigmoid output."""
    age = keras.Input(shape=(), name="age", dtype="float32")
    hours = keras.Input(shape=(), name="hours-per-week", dtype="float32")
    joined = keras.layers.Concatenate()(
        [keras.layers.Reshape((1,))(age), keras.layers.Reshape((1,))(hours)]
    )
    score = keras.layers.Dense(1, activation="sigmoid", name="score")(joined)
    model = keras.Model({"age": age, "hours-per-week": hours}, score)
    model.set_weights([np.array([[0.01], [-0.02]], np.float32), np.array([0.1], np.float32)])
    return model


def tabular_keras(path: Path) -> Path:
    """:func:`tabular_keras_model` saved as a ``.keras`` file at ``path``."""
    tabular_keras_model().save(path)
    return path


def tabular_saved_model(folder: Path) -> Path:
    """:func:`tabular_keras_model` exported as a SavedModel (``serving_default``, no
    ``mooring.json``): what ``tensorflow_model_server`` would serve."""
    tabular_keras_model().export(str(folder), verbose=False)
    return folder


def expected_scores(rows: list[dict[str, float]]) -> list[float]:
    """What :func:`tabular_keras_model` answers for ``rows``."""
    z = [0.01 * r["age"] - 0.02 * r["hours-per-week"] + 0.1 for r in rows]
    return [float(1.0 / (1.0 + np.exp(-v))) for v in z]


class _Ranker(tf.Module):
    """A signature named ``predict``: a number and a row of ids per row, three outputs."""

    def __init__(self, *, batch_sum: bool = False) -> None:
        super().__init__()
        self.weight = tf.Variable(2.0)
        self.batch_sum = batch_sum

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="x"),
            tf.TensorSpec([None, None], tf.int64, name="ids"),
        ]
    )
    def predict(self, x: Any, ids: Any) -> dict[str, Any]:
        count = tf.reduce_sum(ids, axis=1)
        outputs = {"score": x * self.weight, "count": count, "doubled": tf.stack([x, x], axis=1)}
        if self.batch_sum:
            outputs["total"] = tf.reduce_sum(x)  # one value for the whole batch
        return outputs


def ranker_module(folder: Path, *, batch_sum: bool = False) -> Path:
    """A ``tf.Module`` SavedModel whose only signature is ``predict`` (inputs ``x``
    ``[None]`` float32 and ``ids`` ``[None, None]`` int64); ``batch_sum``: one output
    is a sum over the batch, so its first dimension is not the batch."""
    module = _Ranker(batch_sum=batch_sum)
    tf.saved_model.save(module, str(folder), signatures={"predict": module.predict})
    return folder


class _Scalar(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        return {"y": x * 2.0}


class _FixedBatch(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([4, 2], tf.float32, name="x")])
    def serve(self, x: Any) -> dict[str, Any]:
        return {"y": x * 2.0}


class _Complex(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.complex64, name="z")])
    def serve(self, z: Any) -> dict[str, Any]:
        return {"y": tf.math.real(z)}


class _Window(tf.Module):
    """Reshapes its ``[None, None]`` input to rows of 4: runs only when the inner dim is 4."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="window")])
    def serve(self, window: Any) -> dict[str, Any]:
        return {"y": tf.reduce_sum(tf.reshape(window, [-1, 4]), axis=1)}


_ODD = {"scalar": _Scalar, "fixed_batch": _FixedBatch, "complex": _Complex, "window": _Window}


def odd_module(folder: Path, kind: str) -> Path:
    """A SavedModel whose ``serving_default`` is odd: ``scalar`` (a rank-0 input),
    ``fixed_batch`` (first dimension 4), ``complex`` (a complex64 input) or ``window``
    (an inner dimension it needs to be 4, left unknown in the signature)."""
    module = _ODD[kind]()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


class Doubler(keras.layers.Layer):
    """A custom layer that is not registered with Keras (no register_keras_serializable)."""

    def call(self, x: Any) -> Any:
        return x * 2.0


def custom_layer_keras(path: Path) -> Path:
    """A ``.keras`` file with :class:`Doubler`, which Keras cannot find when loading it."""
    inputs = keras.Input(shape=(2,), name="x")
    keras.Model(inputs, keras.layers.Dense(1)(Doubler()(inputs))).save(path)
    return path


#: The inputs of :func:`ydf_folder`: a number and a category per row.
YDF_ROWS = [{"age": 25.0, "job": "a"}, {"age": 55.0, "job": "b"}]


def ydf_folder(folder: Path) -> Path:
    """A tiny YDF gradient-boosted trees model (3 trees on 40 rows) saved as YDF saves it."""
    import ydf

    data = {
        "age": np.array([20.0, 30, 40, 50, 60, 25, 35, 45] * 5, np.float32),
        "job": np.array(["a", "b", "c", "a", "b", "c", "a", "b"] * 5),
        "y": np.array([0, 1, 0, 1, 1, 0, 1, 0] * 5),
    }
    learner = ydf.GradientBoostedTreesLearner(label="y", num_trees=3, min_examples=2)
    learner.train(data, verbose=0).save(str(folder))
    return folder


#: The inputs of :func:`cased_module`: a float per row under upper-case argument names.
CASED_ROWS = [{"Age": 40.0, "LoanAmount": 150.0}, {"Age": 25.0, "LoanAmount": 90.0}]


class _Cased(tf.Module):
    """A regression written as a team writes it: argument names ``Age`` and ``LoanAmount``
    (TensorFlow saves their TensorSpec names lower-cased, the keywords as they are)."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = tf.Variable([0.5, 1.0], dtype=tf.float32)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="Age"),
            tf.TensorSpec([None], tf.float32, name="LoanAmount"),
        ]
    )
    def serve(self, Age: Any, LoanAmount: Any) -> dict[str, Any]:  # noqa: N803
        return {"Amount": Age * self.weights[0] + LoanAmount * self.weights[1]}


def cased_module(folder: Path) -> Path:
    """A ``tf.Module`` SavedModel whose ``serving_default`` takes ``Age`` and ``LoanAmount``
    (``[None]`` float32) and returns ``Amount`` = 0.5 × Age + LoanAmount."""
    module = _Cased()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def cased_amounts(rows: list[dict[str, float]]) -> list[float]:
    """What :func:`cased_module` answers for ``rows``."""
    return [0.5 * r["Age"] + r["LoanAmount"] for r in rows]


def misconfigured_keras(path: Path) -> Path:
    """A ``.keras`` file whose Dense layer ``d`` names an activation Keras does not know (as
    a file written by another Keras may): Keras refuses it while rebuilding the layer."""
    inputs = keras.Input(shape=(2,), name="x")
    keras.Model(inputs, keras.layers.Dense(1, name="d")(inputs)).save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["config"]["activation"] = "no_such_activation"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path
