"""gRPC helpers for serving tests: a server with its gRPC port on, requests built from rows.

TF Serving's stubs import the ``tensorflow`` package; tests import them freely (the
test process has TensorFlow loaded anyway).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from mooring.config import ServingConfig
from mooring.serving import ModelSource, build_app
from tests._support.server import NAME, ServerThread, free_port

NUMERIC = ("age", "hours-per-week")


class GrpcServerThread(ServerThread):
    """A :class:`ServerThread` whose app also serves gRPC (``grpc_port`` set for it)."""

    def __init__(self, sources: Sequence[ModelSource], serving: ServingConfig, **kwargs: Any):
        self.grpc_port = free_port()
        cfg = serving.model_copy(update={"grpc_port": self.grpc_port})
        super().__init__(build_app(sources, cfg, **kwargs))
        self.target = f"127.0.0.1:{self.grpc_port}"


@contextmanager
def channel(target: str) -> Iterator[grpc.Channel]:
    """A blocking channel to ``target`` (``host:port``), closed on the way out."""
    opened = grpc.insecure_channel(target)
    try:
        yield opened
    finally:
        opened.close()


def tensor(values: Sequence[Any], *, string: bool) -> tensor_pb2.TensorProto:
    """A rank-1 ``TensorProto``: DT_STRING of UTF-8 text, or DT_FLOAT (None → NaN)."""
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.dim.add(size=len(values))
    if string:
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(("" if v is None else str(v)).encode() for v in values)
    else:
        proto.dtype = types_pb2.DT_FLOAT
        floats = [np.nan if v is None else float(v) for v in values]
        proto.tensor_content = np.asarray(floats, dtype="<f4").tobytes()
    return proto


def predict_request(
    rows: Sequence[Mapping[str, Any]],
    *,
    name: str = NAME,
    version: int | None = None,
    label: str | None = None,
) -> predict_pb2.PredictRequest:
    """A Predict request holding ``rows`` (TF Serving row-format dicts) as one tensor per input."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key in rows[0]:
        values = [r[key] for r in rows]
        request.inputs[key].CopyFrom(tensor(values, string=key not in NUMERIC))
    return request


def example(row: Mapping[str, Any]) -> example_pb2.Example:
    """A ``tf.Example`` of one row: float_list for numbers, bytes_list for text; None → absent."""
    out = example_pb2.Example()
    for key, value in row.items():
        if value is None:
            continue
        feature = out.features.feature[key]
        if key in NUMERIC:
            feature.float_list.value.append(float(value))
        else:
            feature.bytes_list.value.append(str(value).encode())
    return out


def classify_request(
    rows: Sequence[Mapping[str, Any]], *, name: str = NAME
) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = name
    request.input.example_list.examples.extend(example(r) for r in rows)
    return request


def regress_request(
    rows: Sequence[Mapping[str, Any]], *, name: str = NAME
) -> regression_pb2.RegressionRequest:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = name
    request.input.example_list.examples.extend(example(r) for r in rows)
    return request


def prediction_stub(opened: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(opened)


def model_dir_sources(model_dir: Path) -> list[ModelSource]:
    from mooring.serving import DirectorySource

    return [DirectorySource(model_dir, NAME)]
