"""A real Keras SavedModel goes through register → load and still predicts the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE


@pytest.mark.slow
def test_savedmodel_roundtrip(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    export = tmp_path / "export"
    model.export(str(export), verbose=False)
    (export / "mooring.json").write_text(json.dumps({"name": "income", "inputs": ["a", "b", "c"]}))
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    expected = model.predict(x, verbose=0)

    with Registry.open(f"sqlite:///{tmp_path / 'registry.db'}") as reg:
        mv = register_judged(
            reg,
            name="income",
            artifact_dir=export,
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
        )
        reg.promote("income", version=mv.version, reason="first")
        path = reg.load("income", alias="production")
    assert (path / "saved_model.pb").is_file()
    assert mv.lineage.tensorflow_version == tf.__version__
    loaded = tf.saved_model.load(str(path))
    got = loaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
