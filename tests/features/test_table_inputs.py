"""An imported model fed from a table: columns by its inputs' names, its outputs by role."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from mooring.errors import DataError
from mooring.features._inputs import predict_saved_model, table_inputs
from mooring.formats._model import load_saved_model, versions


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keras's common tabular shape: one [None, 1] input per column, a sigmoid out."""
    keras.utils.set_random_seed(0)
    age = keras.Input((1,), name="age")
    sex = keras.Input((1,), dtype="string", name="sex")
    code = keras.layers.StringLookup(vocabulary=["Female", "Male"], output_mode="one_hot")(sex)
    x = keras.layers.Concatenate()([age, keras.layers.Reshape((3,))(code)])
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    folder = tmp_path_factory.mktemp("tabular") / "model"
    keras.Model({"age": age, "sex": sex}, out).export(str(folder), verbose=False)
    (folder / "mooring.json").write_text(
        json.dumps(
            {"task": "binary", "roles": {"probabilities": "output_0"}, "versions": versions()}
        )
    )
    return folder


def test_columns_become_the_inputs_the_signature_takes(tabular: Path) -> None:
    model = load_saved_model(tabular)
    table = pa.table({"age": [39, None], "sex": ["Male", None], "other": [1, 2]})
    feed = table_inputs(model, table)
    assert feed["age"].shape == (2, 1) and feed["age"].dtype == np.float32
    assert np.isnan(feed["age"][1, 0])
    assert feed["sex"].tolist() == [["Male"], [""]]
    with pytest.raises(DataError, match="no column 'sex'"):
        table_inputs(model, pa.table({"age": [1.0]}))


def test_an_imported_binary_model_answers_with_both_class_probabilities(tabular: Path) -> None:
    table = pa.table({"age": [25.0, 61.0], "sex": ["Female", "Male"]})
    out = predict_saved_model(tabular, table)
    p = out["output_0"].reshape(-1)
    assert out["probabilities"].shape == (2, 2)
    np.testing.assert_allclose(out["probabilities"][:, 1], p)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-6)


def test_a_list_column_feeds_a_tensor_input(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    image = keras.Input((2, 2), name="image")
    out = keras.layers.Dense(1)(keras.layers.Flatten()(image))
    keras.Model(image, out).export(str(tmp_path / "m"), verbose=False)
    model = load_saved_model(tmp_path / "m", require_metadata=False)
    images = [[[0.0, 1.0], [2.0, 3.0]], [[1.0, 1.0], [1.0, 1.0]]]
    feed = table_inputs(model, pa.table({"image": images}))
    assert feed["image"].shape == (2, 2, 2)
    with pytest.raises(DataError, match=r"column 'image': shape \[1, 4\] does not fit"):
        table_inputs(model, pa.table({"image": [[0.0, 1.0, 2.0, 3.0]]}))


def test_an_int64_input_takes_ids_beyond_two_to_the_53_exactly(tmp_path: Path) -> None:
    """An imported model whose input is an int64 id: fed as the integers, never as floats."""

    class Echo(tf.Module):  # the id back, and whether it is odd: exact only as integers
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="account_id")])
        def serve(self, account_id: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"id": account_id, "odd": tf.math.floormod(account_id, 2)}

    module = Echo()
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serving_default": module.serve})
    model = load_saved_model(tmp_path / "m", require_metadata=False)
    ids = [9007199259780359, 9007199254740993, 2**62 + 1]
    feed = table_inputs(model, pa.table({"account_id": pa.array(ids, pa.int64())}))
    assert feed["account_id"].dtype == np.int64 and feed["account_id"].tolist() == ids
    answered = model.predict(feed)
    assert answered["id"].tolist() == ids and answered["odd"].tolist() == [1, 1, 1]
    with pytest.raises(DataError, match=r"column 'account_id' has 1 missing value\(s\)"):
        table_inputs(model, pa.table({"account_id": pa.array([1, None], pa.int64())}))
