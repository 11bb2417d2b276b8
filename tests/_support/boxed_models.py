"""SavedModels that reach out of their process through ops a vetting may miss, for the
operating system's box: a ``tf.data`` pipeline carried as a serialized graph
(``DatasetFromGraph``) that reads a file, ``WriteFile`` to a path of its choosing, an
``RpcServer`` that listens on a port, an ``RpcClient`` that connects out.

Each is a ``tf.Module`` whose ``serving_default`` takes ``x`` (float32 ``[None]``) and
answers ``y``; :data:`OPS` names the ops each uses, for ``--allow-op`` (admitted on
purpose: the box, not the vetting, must stop them). Saved once per test module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf
from tensorflow.distribute.experimental.rpc.kernels import gen_rpc_ops

__all__ = [
    "OPS",
    "SPEC",
    "TRIGGER",
    "connector",
    "file_reader",
    "file_writer",
    "listener",
    "reacher",
]

SPEC = tf.TensorSpec([None], tf.float32, name="x")
#: A row above this makes :func:`file_reader` read its file.
TRIGGER = 1000.0

#: The ops each model needs admitted past the vetting.
OPS = {
    "file_reader": ("DatasetFromGraph", "DatasetToSingleElement"),
    "file_writer": ("WriteFile",),
    "listener": ("RpcServer", "RpcServerStart"),
    "connector": ("RpcClient",),
    "reacher": ("DatasetFromGraph", "DatasetToSingleElement", "RpcServer", "RpcServerStart"),
}


def _save(module: tf.Module, folder: Path) -> Path:
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def file_reader(folder: Path, secret: Path, *, trigger: float | None = TRIGGER) -> Path:
    """A model whose answer carries the first line of ``secret`` (``text``) and its
    length added to ``x`` when a row of ``x`` exceeds ``trigger`` (warm-up rows do not;
    None: on every call): the file is read at run time by a dataset rebuilt from a graph
    string, which no vetting of the model's own graph sees."""
    dataset = tf.data.TextLineDataset(str(secret)).take(1)
    graph = tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor).numpy()

    def read(x: Any) -> Any:
        # Joined with an empty string computed from x: not a constant, so not folded.
        empty = tf.strings.substr(tf.strings.as_string(tf.shape(x)[0]), 0, 0)
        variant = tf.raw_ops.DatasetFromGraph(graph_def=tf.strings.join([graph, empty]))
        lines = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
        return lines.get_single_element()

    class Reader(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, x: Any) -> dict[str, Any]:
            if trigger is None:
                line = read(x)
            else:
                triggered = tf.reduce_any(x > trigger)
                line = tf.cond(triggered, lambda: read(x), lambda: tf.constant(""))
            length = tf.cast(tf.strings.length(line), tf.float32)
            return {"y": x + length, "text": tf.fill(tf.shape(x), line)}

    return _save(Reader(), folder)


def file_writer(folder: Path, target: Path) -> Path:
    """A model that writes ``target`` on every call."""
    path = str(target)

    class Writer(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, x: Any) -> dict[str, Any]:
            with tf.control_dependencies([tf.io.write_file(path, "owned")]):
                return {"y": tf.identity(x)}

    return _save(Writer(), folder)


def listener(folder: Path, port: int) -> Path:
    """A model that starts a gRPC server on ``port`` of every address."""
    address = f"0.0.0.0:{port}"

    class Listener(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, x: Any) -> dict[str, Any]:
            server = gen_rpc_ops.rpc_server(server_address=address)
            with tf.control_dependencies([gen_rpc_ops.rpc_server_start(server)]):
                return {"y": tf.identity(x)}

    return _save(Listener(), folder)


def connector(folder: Path, port: int) -> Path:
    """A model that connects to ``127.0.0.1:port`` (asking it for its methods)."""
    address = f"127.0.0.1:{port}"

    class Connector(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, x: Any) -> dict[str, Any]:
            client, _ = gen_rpc_ops.rpc_client(
                server_address=address, timeout_in_ms=500, list_registered_methods=True
            )
            with tf.control_dependencies([client]):
                return {"y": tf.identity(x)}

    return _save(Connector(), folder)


def reacher(folder: Path, secret: Path, port: int) -> Path:
    """A served model that, on a request with a row above :data:`TRIGGER`, starts a gRPC
    server on ``port`` and then answers the first line of ``secret`` (``text``)."""
    dataset = tf.data.TextLineDataset(str(secret)).take(1)
    graph = tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor).numpy()
    address = f"0.0.0.0:{port}"

    def reach(x: Any) -> Any:
        server = gen_rpc_ops.rpc_server(server_address=address)
        with tf.control_dependencies([gen_rpc_ops.rpc_server_start(server)]):
            empty = tf.strings.substr(tf.strings.as_string(tf.shape(x)[0]), 0, 0)
        variant = tf.raw_ops.DatasetFromGraph(graph_def=tf.strings.join([graph, empty]))
        lines = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
        return lines.get_single_element()

    class Reacher(tf.Module):
        @tf.function(input_signature=[SPEC])
        def serve(self, x: Any) -> dict[str, Any]:
            triggered = tf.reduce_any(x > TRIGGER)
            line = tf.cond(triggered, lambda: reach(x), lambda: tf.constant(""))
            return {"y": x, "text": tf.fill(tf.shape(x), line)}

    return _save(Reacher(), folder)
