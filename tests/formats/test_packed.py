"""The signature fed one tensor per dtype answers as the keyword call, or is not used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mooring.formats._model import SavedModelFolder, load_saved_model


class _Mixed(tf.Module):  # type: ignore[misc]
    """Columns of four dtypes: two float32, two strings, one int64, one float64."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="a"),
            tf.TensorSpec([None], tf.float32, name="b"),
            tf.TensorSpec([None], tf.string, name="s"),
            tf.TensorSpec([None], tf.string, name="t"),
            tf.TensorSpec([None], tf.int64, name="n"),
            tf.TensorSpec([None], tf.float64, name="w"),
        ]
    )
    def score(self, a, b, s, t, n, w):  # type: ignore[no-untyped-def]
        joined = tf.strings.join([s, t], separator="|")
        return {
            "mixed": a * 3.0 - b + tf.cast(tf.strings.length(joined), tf.float32),
            "joined": joined,
            "big": n * 2 + 1,
            "wide": w / 7.0,
        }


class _OnePerDtype(tf.Module):  # type: ignore[misc]
    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="a"),
            tf.TensorSpec([None], tf.string, name="s"),
        ]
    )
    def score(self, a, s):  # type: ignore[no-untyped-def]
        return {"out": a + tf.cast(tf.strings.length(s), tf.float32)}


def _load(module: tf.Module, where: Path) -> SavedModelFolder:
    tf.saved_model.save(module, str(where), signatures={"serving_default": module.score})
    return load_saved_model(where, require_metadata=False, warn=False, pack=True)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> SavedModelFolder:
    return _load(_Mixed(), tmp_path_factory.mktemp("packed") / "mixed")


def test_columns_are_packed_by_dtype_and_other_dtypes_stay_alone(mixed: SavedModelFolder) -> None:
    assert mixed.packed is not None
    found = [(g.dtype, g.names, g.packed) for g in mixed.packed.groups]
    assert found == [
        ("float32", ("a", "b"), True),
        ("string", ("s", "t"), True),
        ("float64", ("w",), True),
        ("int64", ("n",), False),
    ]


def test_the_packed_call_answers_as_the_keyword_call_on_every_dtype(
    mixed: SavedModelFolder,
) -> None:
    rng = np.random.default_rng(3)
    rows = 37
    columns = {
        "a": [float(v) for v in rng.normal(size=rows).astype(np.float32)],
        "b": np.append(rng.normal(size=rows - 1), np.nan).astype(np.float32),
        "s": [f"é{i}" * (i % 4) for i in range(rows)],
        "t": [b"x" * (i % 3) for i in range(rows)],
        "n": [2**61 - i for i in range(rows)],
        "w": [1e300 / (i + 1) for i in range(rows)],
    }
    packed = mixed.predict(columns)
    kept, mixed.packed = mixed.packed, None
    try:
        plain = mixed.predict(columns)
        chunked = mixed.predict(columns, batch_size=5)  # the calls split: plain path
    finally:
        mixed.packed = kept
    split = mixed.predict(columns, batch_size=5)
    for name in ("mixed", "joined", "big", "wide"):
        np.testing.assert_array_equal(packed[name], plain[name])
        np.testing.assert_array_equal(split[name], chunked[name])
    assert packed["big"][0] == 2 * (2**61) + 1  # past float64's exact integers


def test_a_signature_with_one_column_per_dtype_is_not_packed(tmp_path: Path) -> None:
    folder = _load(_OnePerDtype(), tmp_path / "one")
    assert folder.packed is None
    assert folder.predict({"a": [1.5], "s": ["abc"]})["out"].tolist() == [4.5]
