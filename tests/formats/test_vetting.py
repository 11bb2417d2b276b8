"""The op policy and the folder check: what an imported model may do, read from its
``saved_model.pb`` before anything runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from mooring.errors import ModelLoadError, UsageError, import_extra
from mooring.formats._model import write_metadata
from mooring.formats._vetting import (
    ALLOCATIONS,
    ALLOWED_OPS,
    ALLOWED_OPS_KEY,
    ASSET_READERS,
    CHECKPOINT_OPS,
    DENIED_OPS,
    GRAPH_CARRIERS,
    allowed_ops,
    check_folder,
    gib,
    parse_allowed_ops,
    vet_saved_model,
    walk_ops,
)
from mooring.training._fit import TrainingResult
from tests._support.hostile_models import (
    BUILDERS,
    ESCAPES,
    allocating,
    asset_table,
    dataset_reader,
    dataset_writer,
    hard_linked,
    plain,
    symlinked,
)
from tests._support.op_corpus import CORPUS, SAMPLE

Built = Callable[[str], Path]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Each hostile model of :data:`BUILDERS`, and ``plain`` and ``asset_table``, saved
    once for the module, on first use."""
    root = tmp_path_factory.mktemp("hostile")
    made: dict[str, Path] = {}
    others = {
        "plain": plain,
        "asset_table": asset_table,
        "dataset_read_constant": dataset_reader,
        "dataset_write_constant": dataset_writer,
    }
    hostile = {**BUILDERS, **ESCAPES}

    def get(name: str) -> Path:
        if name not in made:
            build = hostile[name][0] if name in hostile else others[name]
            made[name] = build(root / name)
        return made[name]

    return get


def test_every_op_named_is_one_tensorflow_registers() -> None:
    """Every op the policy names is in TensorFlow's op registry (YDF's once its op
    library is loaded), each with its reason; the allow-list holds no refused op."""
    from tensorflow.python.framework import op_def_registry

    import_extra("ydf_tf", extra="trees", needed_for="YDF's ops")
    named = set(DENIED_OPS) | set(ASSET_READERS) | set(ALLOCATIONS) | set(ALLOWED_OPS)
    unknown = sorted(op for op in named if op_def_registry.get(op) is None)
    assert unknown == []
    assert any(op.startswith("SimpleML") for op in ALLOWED_OPS)
    assert set(DENIED_OPS) >= CHECKPOINT_OPS | set(GRAPH_CARRIERS)
    assert set(ALLOWED_OPS) >= set(ALLOCATIONS)
    assert not set(ALLOWED_OPS) & (set(DENIED_OPS) | set(ASSET_READERS))
    reasons = [*DENIED_OPS.values(), *ALLOWED_OPS.values()]
    assert all(reason.strip() for reason in reasons)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_hostile_model_is_refused_naming_the_op_its_function_and_the_fix(
    built: Built, name: str
) -> None:
    op = BUILDERS[name][1]
    pattern = rf"op '{op}' \(node '[^']+' in function '[^']+'\).*--allow-op {op} -r REASON"
    with pytest.raises(ModelLoadError, match=pattern):
        vet_saved_model(built(name), what="the model")


def test_a_conditional_huge_allocation_is_sized_against_the_probes_memory(built: Built) -> None:
    folder = built("huge_allocation")
    with pytest.raises(ModelLoadError, match=r"allocates 50 GiB .* memory limit of 4 GiB"):
        vet_saved_model(folder)
    vet_saved_model(folder, memory_bytes=64 * 2**30)  # a limit above it: allowed


def test_an_admitted_op_passes_and_the_others_are_still_named(built: Built) -> None:
    vet_saved_model(built("print"), allowed={"PrintV2": "audit trail of its inputs"})
    with pytest.raises(ModelLoadError, match=r"op 'ReadFile'"):
        vet_saved_model(built("read_file"), allowed={"PrintV2": "audit trail of its inputs"})


def test_at_load_a_refused_op_says_the_folder_is_not_what_was_imported(built: Built) -> None:
    with pytest.raises(ModelLoadError, match=r"not admitted when it was imported \(admitted: "):
        vet_saved_model(built("write_file"), allowed={"PrintV2": "x"}, at_import=False)


def test_the_models_own_vocabulary_and_its_saver_pass(built: Built) -> None:
    vet_saved_model(built("asset_table"))  # InitializeTableFromTextFileV2 on an asset
    vet_saved_model(built("plain"))  # SaveV2/RestoreV2/MergeV2Checkpoints in its saver


def test_a_checkpoint_op_outside_the_saver_is_refused(tmp_path: Path) -> None:
    class Restoring(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            (value,) = tf.raw_ops.RestoreV2(
                prefix="/tmp/elsewhere",
                tensor_names=["w"],
                shape_and_slices=[""],
                dtypes=[tf.float32],
            )
            return {"y": x + value}

    module = Restoring()
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serving_default": module.serve})
    with pytest.raises(ModelLoadError, match=r"op 'RestoreV2' .*in function '__inference_serve"):
        vet_saved_model(tmp_path / "m")


@pytest.mark.slow
def test_a_model_mooring_trains_passes(adult_training: Callable[..., TrainingResult]) -> None:
    """The trained MLP and the YDF trees (its op library's ops) of the session's runs."""
    for kind in ("mlp", "gbt"):
        vet_saved_model(Path(adult_training(1, kind).model_dir))


def test_a_bad_file_is_not_a_loadable_saved_model(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ModelLoadError, match=r"is not a loadable SavedModel"):
        vet_saved_model(tmp_path)


def test_allow_op_options_need_a_refused_op_tensorflow_knows_and_a_reason() -> None:
    assert parse_allowed_ops([], None) == {}
    with pytest.raises(UsageError, match=r"--allow-op 'MatMul': already on mooring's allow-list"):
        parse_allowed_ops(["MatMul"], "fast")
    with pytest.raises(UsageError, match=r"--allow-op 'ReadFlie': not an op TensorFlow knows"):
        parse_allowed_ops(["ReadFile", "ReadFlie"], "vocab")
    with pytest.raises(UsageError, match=r"say why with -r REASON"):
        parse_allowed_ops(["ReadFile"], " ")
    # Any op TensorFlow registers that is not on the list: a deny-list names only some.
    admitted = parse_allowed_ops(["RpcClient", "DecodeProtoV2", "Fill"], "reviewed")
    assert admitted == dict.fromkeys(["RpcClient", "DecodeProtoV2", "Fill"], "reviewed")


# -- reaching out through ops a deny-list does not name ------------------------------


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_a_model_reaching_out_through_an_unlisted_op_is_refused_at_import(
    built: Built, name: str
) -> None:
    """A file read or written by a tf.data graph carried in a string, a port listened
    on, a connection out: each refused naming the op, its node and function, the fix."""
    op = ESCAPES[name][1]
    pattern = rf"op '{op}' \(node '[^']+' in function '__inference_serve_\d+'\).*--allow-op {op}"
    with pytest.raises(ModelLoadError, match=pattern):
        vet_saved_model(built(name), what="the model")


def test_the_import_refuses_them_before_anything_is_copied_or_run(
    built: Built, tmp_path: Path
) -> None:
    from mooring.training._import import import_model

    for name, (_, op) in sorted(ESCAPES.items()):
        with pytest.raises(ModelLoadError, match=rf"op '{op}' \(node '[^']+' in function "):
            import_model(built(name), tmp_path / name)
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("name", "inner"),
    [("dataset_read_constant", "TextLineDataset"), ("dataset_write_constant", "CacheDatasetV2")],
)
def test_a_carried_graph_is_walked_with_the_same_rules_when_its_carrier_is_admitted(
    built: Built, name: str, inner: str
) -> None:
    carrier = r"the graph node 'DatasetFromGraph' in function '__inference_serve_\d+' carries"
    pattern = rf"op '{inner}' \(node '[^']+' in (function '[^']+' of )?{carrier}\)"
    with pytest.raises(ModelLoadError, match=pattern):
        vet_saved_model(built(name), allowed={"DatasetFromGraph": "reads its own records"})


def test_a_graph_computed_at_run_time_is_refused_unless_its_carrier_is_admitted(
    built: Built,
) -> None:
    """The probe's models: their graph is joined with a string cut from the request, so
    it runs (and reads or writes), and cannot be read before it does. Admitting the
    carrier admits the graph unread, and the refusal says so."""
    others = {"DatasetToSingleElement": "x"}
    for name in ("dataset_read", "dataset_write"):
        with pytest.raises(
            ModelLoadError,
            match=r"serialized graph that is not a constant.*admitting DatasetFromGraph "
            r"admits this graph unread",
        ):
            vet_saved_model(built(name), allowed=others)
        vet_saved_model(built(name), allowed={**others, "DatasetFromGraph": "trusted"})


def test_one_hot_and_tile_are_sized_from_their_constants(tmp_path: Path) -> None:
    """``OneHot`` to depth 2³¹−1 (8 GiB of float32) against the default 4 GiB; ``Tile``
    of 1024 floats to 2 GiB against a 1 GiB limit, passing under a 16 GiB one."""
    folder = allocating(tmp_path / "m", tile_gib=2)
    with pytest.raises(ModelLoadError, match=r"op 'OneHot' .* allocates 8 GiB"):
        vet_saved_model(folder)
    with pytest.raises(ModelLoadError, match=r"op 'Tile' .* allocates 2 GiB .* limit of 1 GiB"):
        vet_saved_model(folder, memory_bytes=2**30, allowed={"OneHot": "wide"})
    vet_saved_model(folder, memory_bytes=16 * 2**30)


# -- the corpus the allow-list was collected from -------------------------------------


@pytest.fixture(scope="module")
def corpus_sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    return {name: CORPUS[name][1](root / name) for name in SAMPLE}


def test_a_sample_of_the_corpus_passes_with_nothing_admitted(
    corpus_sample: dict[str, Path],
) -> None:
    """Keras recurrent, attention and lookup layers, plain TensorFlow strings and
    control flow, YDF's ops and the training layer's export: allowed as they are."""
    used: set[str] = set()
    for folder in corpus_sample.values():
        vet_saved_model(folder)
        used |= {op for op, _, _ in walk_ops(folder)}
    assert {"SimpleMLInferenceOpWithHandle", "LookupTableFindV2", "While"} <= used
    assert used - set(ALLOWED_OPS) <= CHECKPOINT_OPS | set(ASSET_READERS)


def test_admitted_ops_round_trip_through_mooring_json(tmp_path: Path) -> None:
    entries = [{"op": "PrintV2", "reason": "audit"}, {"op": "ReadFile", "reason": "vocab"}]
    write_metadata(tmp_path, {ALLOWED_OPS_KEY: entries})
    from mooring.formats._model import read_metadata

    assert allowed_ops(read_metadata(tmp_path)) == {"PrintV2": "audit", "ReadFile": "vocab"}
    assert allowed_ops({ALLOWED_OPS_KEY: "ReadFile"}) == {}  # not a list: nothing admitted


@given(st.integers(min_value=1, max_value=2**50))
def test_sizes_are_shown_in_gib(size: int) -> None:
    shown = gib(size)
    assert shown.endswith(" GiB")
    assert float(shown.split()[0]) == pytest.approx(size / 2**30, rel=5e-3)


# -- nothing outside the folder ------------------------------------------------------


def test_a_symlink_out_of_the_folder_is_refused_naming_link_and_target(
    built: Built, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("s3cret")
    folder = symlinked(built("plain"), tmp_path / "model", secret)
    with pytest.raises(ModelLoadError, match=rf"'assets/leak' is a symbolic link to '{secret}'"):
        check_folder(folder)
    linked = symlinked(built("plain"), tmp_path / "dir", secret.parent, directory=True)
    with pytest.raises(ModelLoadError, match=r"'assets/leak' .* outside the model folder"):
        check_folder(linked)


def test_links_that_stay_inside_pass_and_a_loop_is_refused(built: Built, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(built("plain"), folder)
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "a.txt").write_text("a")
    (folder / "assets" / "b.txt").symlink_to("a.txt")
    os.link(folder / "assets" / "a.txt", folder / "assets" / "c.txt")
    check_folder(folder)
    (folder / "assets" / "loop").symlink_to(folder, target_is_directory=True)
    with pytest.raises(ModelLoadError, match=r"'assets/loop' .* holds the link itself"):
        check_folder(folder)


def test_a_hard_link_to_a_file_outside_is_refused(built: Built, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    folder = hard_linked(built("plain"), tmp_path / "model", secret)
    with pytest.raises(
        ModelLoadError, match=r"'assets/leak.txt' is a hard link .* 1 of them outside"
    ):
        check_folder(folder)


def _tf1_model(folder: Path, vocabulary: Path, *, as_asset: bool) -> Path:
    """A TF1 SavedModel (``SavedModelBuilder``): a variable, its saver in the top-level
    graph, a table initialized from ``vocabulary``: an asset, or a constant path."""
    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        x = tf1.placeholder(tf.string, [None], name="x")
        weight = tf1.get_variable("w", initializer=2.0)
        path = tf.constant(str(vocabulary), name="vocabulary")
        if as_asset:  # TextFileInitializer makes its constant file name an asset
            init = tf1.lookup.TextFileInitializer(path, tf.string, -2, tf.int64, -1)
            table = tf1.lookup.StaticHashTable(init, -1)
        else:  # the raw op reads the constant path as it is
            init = tf1.lookup.KeyValueTensorInitializer(["a"], tf.constant([0], tf.int64))
            table = tf1.lookup.StaticHashTable(init, -1)
            handle = tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)
            tf1.add_to_collection(
                tf1.GraphKeys.TABLE_INITIALIZERS,
                tf.raw_ops.InitializeTableFromTextFileV2(
                    table_handle=handle, filename=path, key_index=-2, value_index=-1
                ),
            )
        y = tf.cast(table.lookup(x), tf.float32) * weight
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            builder = tf1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(
                session,
                ["serve"],
                signature_def_map={
                    "serving_default": tf1.saved_model.predict_signature_def({"x": x}, {"y": y})
                },
                assets_collection=tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS),
                main_op=tf1.tables_initializer(),
            )
            builder.save()
    return folder


def test_a_tf1_model_reads_only_its_own_assets(tmp_path: Path) -> None:
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("a\nb\n")
    vet_saved_model(_tf1_model(tmp_path / "asset", vocabulary, as_asset=True))
    constant = _tf1_model(tmp_path / "constant", vocabulary, as_asset=False)
    pattern = r"op 'InitializeTableFromTextFileV2' \(node '[^']+' in the top-level graph\)"
    with pytest.raises(ModelLoadError, match=pattern):
        vet_saved_model(constant)
