"""Models built elsewhere written as mooring model folders: what is kept, what is refused."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mooring.errors import ModelLoadError, NotFoundError, UsageError
from mooring.formats._model import load_saved_model
from mooring.training._import import (
    DEFAULT_DIM,
    Limits,
    cached_folder,
    folder_sha256,
    import_model,
    parse_input_shapes,
    serving_folder,
)
from tests._support.byom import (
    CASED_ROWS,
    TABULAR_ROWS,
    YDF_ROWS,
    cased_amounts,
    cased_module,
    custom_layer_keras,
    expected_scores,
    misconfigured_keras,
    odd_module,
    ranker_module,
    tabular_keras,
    tabular_saved_model,
    ydf_folder,
)
from tests._support.hostile_models import (
    BUILDERS,
    greedy,
    hard_linked,
    plain,
    printing_writer,
    spinning,
    symlinked,
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


def test_upper_case_arguments_keep_their_case_and_a_missing_declaration_is_checked(
    tmp_path: Path,
) -> None:
    # TensorFlow saves the TensorSpec names "age", "loanamount"; the signature binds only
    # the keywords "Age", "LoanAmount", which are the names clients and data files use.
    source = cased_module(tmp_path / "cased")
    imported = import_model(source, tmp_path / "model", allows_missing=["LoanAmount"])
    inputs = imported.metadata["signature"]["inputs"]
    assert sorted(inputs) == ["Age", "LoanAmount"]
    assert inputs["LoanAmount"]["missing"] == "NaN" and "missing" not in inputs["Age"]
    loaded = load_saved_model(imported.folder, warn=False)
    assert loaded.refuses_missing == ("Age",)
    columns = {k: np.array([r[k] for r in CASED_ROWS], np.float32) for k in CASED_ROWS[0]}
    np.testing.assert_allclose(loaded.predict(columns)["Amount"], cased_amounts(CASED_ROWS))
    with pytest.raises(UsageError, match=r"--allows-missing age: .* float inputs: 'Age', 'Loan"):
        import_model(source, tmp_path / "other", allows_missing=["age"])
    assert not (tmp_path / "other").exists()


def test_models_import_evaluates_upper_case_inputs_on_data_with_those_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mooring.cli import main

    monkeypatch.chdir(tmp_path)
    source = cased_module(tmp_path / "cased")
    rng = np.random.default_rng(0)
    age, loan = rng.uniform(20, 60, 200), rng.uniform(50, 300, 200)
    amount = 0.5 * age + loan + rng.normal(0, 5, 200)
    pq.write_table(pa.table({"Age": age, "LoanAmount": loan, "amount": amount}), "rows.parquet")
    registry = ["--registry", f"sqlite:///{tmp_path / 'registry.db'}"]
    args = ["--task", "regression", "--data", "rows.parquet", "--label", "amount"]
    assert main(["models", "import", "loans", str(source), *registry, *args]) == 0
    assert "loans@1: imported and evaluated on rows.parquet: blessed" in capsys.readouterr().out


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
    # TensorFlow's own message and the node, not the first line of its wrapping.
    said = str(caught.value)
    assert re.search(
        r"failed after \d+\.\d s, within the probe's limits \(--probe-memory, --probe-timeout\),"
        r" with the model's own error: InvalidArgumentError at node '[^']*Reshape[^']*'"
        r"( \(function [^)]+\))?: Input to reshape is a tensor with 9 values, but the "
        r"requested shape requires a multiple of 4",
        said,
    ), said
    assert "Graph execution error" not in said and "[[" not in said
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


def test_a_keras_file_keras_cannot_rebuild_says_its_underlying_cause(tmp_path: Path) -> None:
    source = misconfigured_keras(tmp_path / "misconfigured.keras")
    with pytest.raises(ModelLoadError) as caught:
        import_model(source, tmp_path / "model")
    said = str(caught.value)
    assert (
        "cannot be loaded as a Keras model (layer 'd' (Dense): ValueError: Could not interpret "
        "activation function identifier: no_such_activation)" in said
    ), said
    assert "could not be deserialized properly" not in said
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


# -- what enters: vetted ops, nothing outside the folder, the first call in a box ----------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding each hostile model of :data:`BUILDERS` (built once, on use)."""
    return tmp_path_factory.mktemp("hostile")


def _built(root: Path, name: str, build: Callable[[Path], Path]) -> Path:
    return root / name if (root / name / "saved_model.pb").is_file() else build(root / name)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_hostile_model_is_refused_at_import_naming_the_op(
    hostile: Path, tmp_path: Path, name: str
) -> None:
    build, op = BUILDERS[name]
    with pytest.raises(ModelLoadError, match=rf"op '{op}' \(node .* --allow-op {op} -r REASON"):
        import_model(_built(hostile, name, build), tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_a_folder_linking_outside_is_refused_before_anything_is_copied(
    hostile: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("s3cret")
    model = _built(hostile, "plain", plain)
    linked = symlinked(model, tmp_path / "linked", secret)
    with pytest.raises(ModelLoadError, match=rf"'assets/leak' is a symbolic link to '{secret}'"):
        import_model(linked, tmp_path / "m1")
    hard = hard_linked(model, tmp_path / "hard", secret)
    with pytest.raises(ModelLoadError, match=r"'assets/leak.txt' is a hard link"):
        import_model(hard, tmp_path / "m2")
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_an_admitted_op_is_recorded_and_a_load_after_tampering_is_refused(
    hostile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = printing_writer(tmp_path / "printing")
    allowed = {"PrintV2": "prints for the audit", "WriteFile": "writes a marker"}
    imported = import_model(source, tmp_path / "model", allowed_ops=allowed)
    # The probe ran (it wrote its relative file) in a scratch folder, not in ours.
    assert not (tmp_path / "written-by-the-model.txt").exists()
    meta = json.loads((tmp_path / "model" / "mooring.json").read_text())
    assert meta["allowed_ops"] == [
        {"op": "PrintV2", "reason": "prints for the audit"},
        {"op": "WriteFile", "reason": "writes a marker"},
    ]
    assert meta["probe"] == {"memory_bytes": 4 * 2**30, "timeout_s": 300.0}
    assert load_saved_model(imported.folder, warn=False).inputs
    reader = _built(hostile, "read_file", BUILDERS["read_file"][0])
    shutil.copy(reader / "saved_model.pb", imported.folder / "saved_model.pb")
    with pytest.raises(
        ModelLoadError,
        match=r"op 'ReadFile' .*not admitted when it was imported \(admitted: PrintV2, WriteFile\)",
    ):
        load_saved_model(imported.folder, warn=False)


def test_a_probe_past_its_time_or_memory_limit_says_which(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"did not answer in 2 s .*--probe-timeout"):
        import_model(spinning(tmp_path / "spin"), tmp_path / "m1", limits=Limits(timeout_s=2))
    memory = Limits(memory_bytes=int(1.5 * 2**30), timeout_s=120)
    with pytest.raises(ModelLoadError, match=r"used more than 1.5 GiB .*--probe-memory"):
        import_model(greedy(tmp_path / "greedy"), tmp_path / "m2", limits=memory)
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_a_legacy_h5_file_is_refused_with_the_conversion(tmp_path: Path) -> None:
    (tmp_path / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(
        ModelLoadError, match=r"legacy Keras \(HDF5\) file.*model\.save\('model\.keras'\)"
    ):
        import_model(tmp_path / "old.h5", tmp_path / "m")


def test_the_cli_records_an_admitted_op_in_the_audit_log(
    hostile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mooring.cli import main
    from mooring.registry import Registry

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    source = str(_built(hostile, "print", BUILDERS["print"][0]))
    base = ["models", "import", "logger", source, "--registry", url]
    assert main([*base, "--allow-op", "PrintV2"]) == 2
    assert "say why with -r REASON" in capsys.readouterr().err
    assert main([*base, "--allow-op", "PrintV2", "-r", "prints for the audit"]) == 0
    with Registry.open(url) as registry:
        [event] = [e for e in registry.history("logger") if e.action == "register"]
        assert event.reason == "prints for the audit (ops admitted: PrintV2)"
        lineage = registry.get("logger", version=1).lineage
        assert list(lineage.allowed_ops or ()) == [
            {"op": "PrintV2", "reason": "prints for the audit"}
        ]


def test_a_folder_served_as_it_is_is_refused_as_served_from_a_folder(tmp_path: Path) -> None:
    """``serve --model-dir`` of a SavedModel never imported: the refusal says where the
    folder comes from and how to admit the op, not that it "was imported"."""
    folder = printing_writer(tmp_path / "printing")
    with pytest.raises(ModelLoadError) as caught:
        load_saved_model(folder, what="model 'printing' version 1", require_metadata=False)
    said = str(caught.value)
    assert said.startswith("model 'printing' version 1, served from a folder, is refused: "), said
    assert "admit the op deliberately: `mooring models import NAME PATH --allow-op " in said
    assert "imported" not in said.replace("mooring models import", "")
