"""Models mooring did not train, built by hand as a team would bring them: real SavedModels.

Each builder writes a SavedModel (Keras 3's ``model.export`` or ``tf.saved_model.save``)
with a ``serving_default`` signature to ``folder`` and returns it; :func:`examples` gives
a batch of inputs for each, and :func:`own_outputs` the model's own answer to them (its
signature called in this process), which the server's answers are compared with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["BUILDERS", "examples", "own_outputs"]

WORDS = ["good", "bad", "great", "awful", "fine", "plain", "odd"]


def build_cnn(folder: Path) -> Path:
    """A small CNN on 8×8 grey images: ``image`` float32 [None, 8, 8, 1] → 3 class scores."""
    keras.utils.set_random_seed(1)
    image = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    keras.Model(image, out).export(str(folder), verbose=False)
    return folder


def build_two_inputs(folder: Path) -> Path:
    """An image and a tabular vector: ``image`` [None, 8, 8, 1] and ``tabular`` [None, 4]."""
    keras.utils.set_random_seed(2)
    image = keras.Input((8, 8, 1), name="image")
    tabular = keras.Input((4,), name="tabular")
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(image))
    x = keras.layers.Concatenate()([x, tabular])
    out = keras.layers.Dense(2, activation="softmax")(x)
    keras.Model({"image": image, "tabular": tabular}, out).export(str(folder), verbose=False)
    return folder


def build_text(folder: Path) -> Path:
    """Text in, a score out, the vocabulary inside the graph: ``text`` string [None, 1]."""
    keras.utils.set_random_seed(3)
    text = keras.Input((1,), dtype="string", name="text")
    vectorize = keras.layers.TextVectorization(output_sequence_length=5, vocabulary=WORDS)
    x = keras.layers.Embedding(len(WORDS) + 2, 4)(vectorize(text))
    x = keras.layers.GlobalAveragePooling1D()(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    keras.Model(text, out).export(str(folder), verbose=False)
    return folder


def build_sequence(folder: Path) -> Path:
    """A recurrent model on sequences of any length: ``steps`` [None, None, 3]."""
    keras.utils.set_random_seed(4)
    steps = keras.Input((None, 3), name="steps")
    x = keras.layers.GRU(4)(steps)
    out = keras.layers.Dense(1)(x)
    keras.Model(steps, out).export(str(folder), verbose=False)
    return folder


class _Scores(tf.Module):  # type: ignore[misc]
    """Not Keras: a module with two inputs and three outputs of different dtypes."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = tf.Variable([[0.5], [-1.0], [2.0]], dtype=tf.float32)

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[
            tf.TensorSpec([None, 3], tf.float32, name="features"),
            tf.TensorSpec([None], tf.int64, name="ids"),
        ]
    )
    def scores(self, features: tf.Tensor, ids: tf.Tensor) -> dict[str, tf.Tensor]:
        score = tf.squeeze(tf.matmul(features, self.weights), axis=1)
        return {
            "score": score,
            "doubled_ids": ids * 2,
            "positive": tf.cast(score > 0, tf.int32),
        }


def build_module(folder: Path) -> Path:
    """A ``tf.Module`` whose signature is also saved under its own name, ``scores``."""
    module = _Scores()
    tf.saved_model.save(
        module,
        str(folder),
        signatures={"serving_default": module.scores, "scores": module.scores},
    )
    return folder


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "cnn": build_cnn,
    "two_inputs": build_two_inputs,
    "text": build_text,
    "sequence": build_sequence,
    "module": build_module,
}


def examples(kind: str, rows: int = 3, *, seed: int = 0) -> dict[str, np.ndarray[Any, Any]]:
    """A batch of ``rows`` inputs for the model ``kind`` builds (strings as bytes)."""
    rng = np.random.default_rng(seed)
    if kind == "cnn":
        return {"image": rng.random((rows, 8, 8, 1), dtype=np.float32)}
    if kind == "two_inputs":
        return {
            "image": rng.random((rows, 8, 8, 1), dtype=np.float32),
            "tabular": rng.normal(size=(rows, 4)).astype(np.float32),
        }
    if kind == "text":
        texts = [" ".join(rng.choice(WORDS, 3)).encode() for _ in range(rows)]
        column = np.empty((rows, 1), dtype=object)
        column[:, 0] = texts
        return {"text": column}
    if kind == "sequence":
        return {"steps": rng.normal(size=(rows, 4, 3)).astype(np.float32)}
    if kind == "module":
        return {
            "features": rng.normal(size=(rows, 3)).astype(np.float32),
            "ids": rng.integers(0, 1000, rows).astype(np.int64),
        }
    raise KeyError(kind)


def own_outputs(folder: Path, inputs: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray]:
    """The model's own answer: its ``serving_default`` called here, outputs as numpy."""
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    feed = {name: tf.constant(value) for name, value in inputs.items()}
    return {name: value.numpy() for name, value in signature(**feed).items()}


ADULT_NUMBERS = ("age", "education-num", "capital-gain", "hours-per-week")


def build_adult_keras(
    folder: Path,
    train: Any,
    *,
    inverted: bool = False,
    epochs: int = 3,
    blind_from_age: float | None = None,
) -> Path:
    """A Keras model a team might write for Adult: one ``[None, 1]`` input per column
    (four numbers and ``sex`` as text), a sigmoid out, trained on ``train`` (an Arrow
    table). ``inverted`` answers ``1 - p``: a broken build that still answers 200.
    ``blind_from_age``: from that age on, the model reads every person's
    ``education-num`` as the training mean (a build that lost a feature for older
    people: as good as the plain one on younger rows, worse on older ones)."""
    keras.utils.set_random_seed(5)
    inputs = {name: keras.Input((1,), name=name) for name in ADULT_NUMBERS}
    sex = keras.Input((1,), dtype="string", name="sex")
    numbers = keras.layers.Concatenate()([inputs[n] for n in ADULT_NUMBERS])
    scaled = keras.layers.Normalization()
    table = {n: np.asarray(train.column(n).to_numpy(), np.float32) for n in ADULT_NUMBERS}
    matrix = np.stack([table[n] for n in ADULT_NUMBERS], axis=1)
    scaled.adapt(matrix)
    code = keras.layers.StringLookup(vocabulary=["Female", "Male"], output_mode="one_hot")(sex)
    x = keras.layers.Concatenate()([scaled(numbers), keras.layers.Reshape((3,))(code)])
    x = keras.layers.Dense(8, activation="relu")(x)
    score = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model({**inputs, "sex": sex}, score)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    labels = np.array([v == ">50K" for v in train.column("class").to_pylist()], np.float32)
    texts = tf.reshape(tf.constant(train.column("sex").to_pylist()), (-1, 1))
    feed = {**{n: tf.constant(table[n].reshape(-1, 1)) for n in ADULT_NUMBERS}, "sex": texts}
    batches = tf.data.Dataset.from_tensor_slices((feed, labels)).batch(256)
    model.fit(batches, epochs=epochs, verbose=0, shuffle=False)  # a dataset keeps its order
    if inverted:
        flipped = keras.layers.Lambda(lambda p: 1.0 - p)(model.outputs[0])
        model = keras.Model(model.inputs, flipped)
    if blind_from_age is not None:
        mean, start = float(table["education-num"].mean()), float(blind_from_age)
        fresh = {name: keras.Input((1,), name=name) for name in ADULT_NUMBERS}
        fresh["sex"] = keras.Input((1,), dtype="string", name="sex")
        blind = keras.layers.Lambda(
            lambda t: keras.ops.where(t[0] >= start, mean, t[1]), name="blind_education"
        )([fresh["age"], fresh["education-num"]])
        model = keras.Model(fresh, model({**fresh, "education-num": blind}))
    model.export(str(folder), verbose=False)
    return folder
