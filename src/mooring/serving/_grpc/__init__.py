"""gRPC for ``mooring serve``: TF Serving's gRPC API and the Open Inference Protocol's.

Both run in the REST server's process, on its event loop, through its prediction path
(:mod:`mooring.serving._predict`): :mod:`.server` (the ``grpc.aio`` server and the gate
every call passes), :mod:`.tfserving` (``tensorflow.serving.PredictionService`` and
``ModelService``), :mod:`.inference` (``inference.GRPCInferenceService``) and
:mod:`.tensors` (``TensorProto`` and ``tf.Example`` ⇄ columns). On with
``[serving] grpc_port`` or ``mooring serve --grpc-port``.

TF Serving's stubs come from ``tensorflow-serving-api``; they import the
``tensorflow`` package, so :mod:`.tfserving` and :mod:`.tensors` are imported by
:func:`start_grpc` only, after TensorFlow's import without Keras.

Examples:
    >>> server = await start_grpc(state, predictor, host="127.0.0.1", port=8500)  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.serving._grpc.server import start_grpc

__all__ = ["start_grpc"]
