"""Models built elsewhere written as mooring model folders: what is kept, what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mooring.errors import ModelLoadError, NotFoundError, UsageError
from mooring.formats._model import load_saved_model
from mooring.training._import import (
    DEFAULT_DIM,
    cached_folder,
    folder_sha256,
    import_model,
    parse_input_shapes,
    serving_folder,
)
from tests._support.byom import (
    TABULAR_ROWS,
    YDF_ROWS,
    custom_layer_keras,
    expected_scores,
    odd_module,
    ranker_module,
    tabular_keras,
    tabular_saved_model,
    ydf_folder,
)

pytestmark = pytest.mark.slow


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_a_keras_file_becomes_a_folder_mooring_loads_and_serves(tmp_path: Path) -> None:
    source = tabular_keras(tmp_path / "income.keras")
    imported = import_model(source, tmp_path / "model", task="binary")
    meta = json.loads((tmp_path / "model" / "mooring.json").read_text())
    assert meta == imported.metadata
    assert meta["origin"] == meta["kind"] == "imported" and meta["task"] == "binary"
    assert meta["format_version"] == 1
    assert meta["source"]["format"] == "keras"
    assert meta["source"]["path"] == str(source.resolve())
    assert meta["source"]["signature"] == "serving_default"
    assert len(meta["source"]["sha256"]) == 64
    assert meta["signature"]["inputs"] == {
        "age": {"dtype": "float32", "shape": [None], "example_shape": []},
        "hours-per-week": {"dtype": "float32", "shape": [None], "example_shape": []},
    }
    assert meta["signature"]["outputs"] == {"output_0": {"dtype": "float32", "shape": [None, 1]}}
    assert set(meta["versions"]) >= {"mooring", "tensorflow", "keras", "python"}
    loaded = load_saved_model(tmp_path / "model", warn=False)
    columns = {k: np.array([r[k] for r in TABULAR_ROWS], np.float32) for k in TABULAR_ROWS[0]}
    scores = loaded.predict(columns)["output_0"][:, 0]
    np.testing.assert_allclose(scores, expected_scores(TABULAR_ROWS), rtol=1e-5)


def test_a_serving_default_savedmodel_is_copied_byte_for_byte(tmp_path: Path) -> None:
    source = tabular_saved_model(tmp_path / "exported")
    before = _files(source)
    imported = import_model(source, tmp_path / "model")
    after = _files(imported.folder)
    assert after.pop("mooring.json")
    assert after == before
    assert imported.metadata["source"]["sha256"] == folder_sha256(source)
    assert imported.metadata["task"] is None


def test_another_signature_is_saved_as_serving_default_with_every_output(tmp_path: Path) -> None:
    source = ranker_module(tmp_path / "ranker")
    imported = import_model(
        source, tmp_path / "model", signature="predict", input_shapes={"ids": (5,)}
    )
    meta = imported.metadata
    assert (
        meta["source"]["signature"] == "predict" and meta["signature"]["name"] == "serving_default"
    )
    assert meta["signature"]["inputs"] == {
        "ids": {"dtype": "int64", "shape": [None, None], "example_shape": [5]},
        "x": {"dtype": "float32", "shape": [None], "example_shape": []},
    }
    assert meta["signature"]["outputs"] == {
        "count": {"dtype": "int64", "shape": [None]},
        "doubled": {"dtype": "float32", "shape": [None, 2]},
        "score": {"dtype": "float32", "shape": [None]},
    }
    loaded = tf.saved_model.load(str(imported.folder))
    assert list(loaded.signatures) == ["serving_default"]
    out = loaded.signatures["serving_default"](
        x=tf.constant([1.0, 2.0]), ids=tf.constant([[1, 2], [3, 4]], tf.int64)
    )
    assert out["score"].numpy().tolist() == [2.0, 4.0]
    assert out["count"].numpy().tolist() == [3, 7]


def test_unknown_inner_dims_are_tried_at_the_default_and_recorded(tmp_path: Path) -> None:
    imported = import_model(ranker_module(tmp_path / "ranker"), tmp_path / "m", signature="predict")
    assert imported.metadata["signature"]["inputs"]["ids"]["example_shape"] == [DEFAULT_DIM]


def test_a_probe_that_fails_names_the_input_shape_to_pass(tmp_path: Path) -> None:
    source = odd_module(tmp_path / "window", "window")
    with pytest.raises(ModelLoadError, match=r"--input-shape window=") as caught:
        import_model(source, tmp_path / "model", input_shapes={"window": (3,)})
    assert "window=[3]" in str(caught.value)
    assert not (tmp_path / "model").exists()
    imported = import_model(source, tmp_path / "model", input_shapes={"window": (4,)})
    assert imported.metadata["signature"]["inputs"]["window"]["example_shape"] == [4]


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("scalar", r"input 'x' is a scalar \(rank 0\)"),
        ("fixed_batch", r"input 'x' has a fixed first dimension 4"),
        ("complex", r"input 'z' is complex64, which mooring does not serve"),
    ],
)
def test_inputs_without_a_batch_dimension_or_of_other_dtypes_are_refused(
    tmp_path: Path, kind: str, says: str
) -> None:
    source = odd_module(tmp_path / kind, kind)
    with pytest.raises(ModelLoadError, match=says):
        import_model(source, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_an_output_that_is_not_one_row_per_input_row_is_refused(tmp_path: Path) -> None:
    source = ranker_module(tmp_path / "summing", batch_sum=True)
    with pytest.raises(ModelLoadError, match=r"output 'total' has shape \[\] for a batch of 3"):
        import_model(source, tmp_path / "model", signature="predict")
    assert not (tmp_path / "model").exists()


def test_a_missing_signature_lists_those_the_model_has(tmp_path: Path) -> None:
    source = ranker_module(tmp_path / "ranker")
    with pytest.raises(
        ModelLoadError, match=r"has no signature 'serving_default'; it has 'predict'"
    ):
        import_model(source, tmp_path / "model")
    with pytest.raises(UsageError, match=r"--signature"):
        import_model(tabular_keras(tmp_path / "t.keras"), tmp_path / "m2", signature="predict")


def test_a_keras_file_with_an_unregistered_class_says_which_and_the_fix(tmp_path: Path) -> None:
    source = custom_layer_keras(tmp_path / "custom.keras")
    with pytest.raises(ModelLoadError, match=r"custom class 'Doubler'.*model\.export"):
        import_model(source, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_what_is_not_a_model_is_refused_before_tensorflow_runs(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NotFoundError, match=r"'.*nowhere' does not exist"):
        import_model(tmp_path / "nowhere", tmp_path / "m")
    with pytest.raises(ModelLoadError, match=r"a folder without saved_model\.pb"):
        import_model(tmp_path / "empty", tmp_path / "m")
    with pytest.raises(ModelLoadError, match=r"a file, neither \.keras"):
        import_model(tmp_path / "notes.txt", tmp_path / "m")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ModelLoadError, match=r"is not a loadable SavedModel"):
        import_model(tmp_path / "broken", tmp_path / "m")
    with pytest.raises(UsageError, match=r"--task 'ranking' is not one of"):
        import_model(tabular_keras(tmp_path / "t.keras"), tmp_path / "m", task="ranking")


def test_input_shapes_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    source = ranker_module(tmp_path / "ranker")
    with pytest.raises(UsageError, match=r"--input-shape names 'nope', not an input"):
        import_model(source, tmp_path / "m", signature="predict", input_shapes={"nope": (2,)})
    with pytest.raises(UsageError, match=r"--input-shape ids=2,2 does not fit"):
        import_model(source, tmp_path / "m", signature="predict", input_shapes={"ids": (2, 2)})


def test_input_shape_options_are_parsed_or_refused() -> None:
    assert parse_input_shapes(["ids=16", "image=28,28,1", "x="]) == {
        "ids": (16,),
        "image": (28, 28, 1),
        "x": (),
    }
    for bad in ("ids", "ids=0", "ids=a,b", "=3"):
        with pytest.raises(UsageError, match=r"expected NAME=d1,d2"):
            parse_input_shapes([bad])
    with pytest.raises(UsageError, match=r"names input 'ids' twice"):
        parse_input_shapes(["ids=1", "ids=2"])


def test_a_keras_file_is_converted_for_serving_once(tmp_path: Path) -> None:
    source = tabular_keras(tmp_path / "income.keras")
    cache = tmp_path / "cache"
    assert cached_folder(source, cache) is None
    folder = serving_folder(source, cache)
    assert folder.parent == cache and (folder / "saved_model.pb").is_file()
    assert cached_folder(source, cache) == folder
    stamp = (folder / "mooring.json").stat().st_mtime_ns
    assert serving_folder(source, cache) == folder
    assert (folder / "mooring.json").stat().st_mtime_ns == stamp  # not converted again
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no work folder left
    exported = tabular_saved_model(tmp_path / "exported")
    assert serving_folder(exported, cache) == exported  # a folder is served as it is


def test_a_ydf_folder_becomes_a_folder_that_names_its_op_library(tmp_path: Path) -> None:
    source = ydf_folder(tmp_path / "trees")
    imported = import_model(source, tmp_path / "model", task="binary")
    meta = imported.metadata
    assert meta["source"]["format"] == "ydf"
    assert meta["source"]["sha256"] == folder_sha256(source)
    assert [entry["module"] for entry in meta["op_libraries"]] == ["ydf_tf"]
    assert meta["signature"]["inputs"] == {
        "age": {"dtype": "float32", "shape": [None], "example_shape": []},
        "job": {"dtype": "string", "shape": [None], "example_shape": []},
    }
    assert meta["roles"] == {"probabilities": "output"}
    loaded = load_saved_model(imported.folder, warn=False)
    scores = loaded.predict(
        {
            "age": np.array([r["age"] for r in YDF_ROWS], np.float32),
            "job": np.array([r["job"] for r in YDF_ROWS], object),
        }
    )["output"]
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    with pytest.raises(UsageError, match=r"YDF model folder: its export serves"):
        import_model(source, tmp_path / "other", signature="predict")
