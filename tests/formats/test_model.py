"""The loaded signature's direct call: past TensorFlow's wrapper only where it does nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mooring.formats._model import SavedModelFolder, _flat_call, load_saved_model
from tests._support.serving_model import build_model_dir


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> SavedModelFolder:
    return load_saved_model(
        build_model_dir(tmp_path_factory.mktemp("model") / "m"),
        require_metadata=False,
        warn=False,
        pack=True,
    )


def _parent_call() -> Any:
    from tensorflow.python.eager.polymorphic_function.concrete_function import (
        ConcreteFunction,
    )

    return ConcreteFunction._call_flat


def test_a_model_loaded_plainly_is_called_past_the_wrapper(folder: SavedModelFolder) -> None:
    assert type(folder.signature).__name__ == "_WrapperFunction"
    assert folder.flat_columns is not None and folder.flat_call is not None
    assert folder.flat_call.__func__ is _parent_call()


def test_a_model_loaded_under_a_strategy_keeps_the_wrappers_call(
    folder: SavedModelFolder,
) -> None:
    """Its variables are distributed: the wrapper maps them, so its call stays."""
    import tensorflow as tf
    from tensorflow.python.distribute import distribute_utils

    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = tf.saved_model.load(str(folder.path)).signatures["serving_default"]
    assert any(distribute_utils.is_distributed_variable(x) for x in mirrored.captured_inputs)
    call = _flat_call(mirrored)
    assert call is not None
    assert call.__func__ is type(mirrored)._call_flat
    assert call.__func__ is not _parent_call()


def test_something_without_a_flat_call_has_no_direct_call() -> None:
    assert _flat_call(object()) is None


_AGES = st.one_of(st.floats(-1e6, 1e6, width=32), st.just(float("nan")))
_WORDS = st.sampled_from(["Private", "Self-emp", "Federal-gov", "", "Never-seen", "Male"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(_AGES, _AGES, _WORDS, _WORDS), min_size=1, max_size=70),
)
def test_the_packed_and_direct_calls_answer_as_the_keyword_call(
    folder: SavedModelFolder, rows: list[tuple[float, float, str, str]]
) -> None:
    columns: dict[str, Any] = {
        "age": np.array([r[0] for r in rows], np.float32),
        "hours-per-week": np.array([r[1] for r in rows], np.float32),
        "workclass": [r[2] for r in rows],
        "sex": [r[3] for r in rows],
    }
    packed = folder.predict(columns)  # one tensor per dtype (mooring.formats._packed)
    kept, folder.packed = folder.packed, None
    try:
        direct = folder.predict(columns)
        order, folder.flat_columns = folder.flat_columns, None
        try:
            keyword = folder.predict(columns)
        finally:
            folder.flat_columns = order
    finally:
        folder.packed = kept
    assert kept is not None
    assert packed.keys() == direct.keys() == keyword.keys()
    for name, value in keyword.items():
        np.testing.assert_array_equal(direct[name], value)
        np.testing.assert_array_equal(packed[name], value)
