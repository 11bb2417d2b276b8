"""The serving layer: TF Serving's REST API and the Open Inference Protocol over one batcher.

Example:
    >>> from mooring.serving import create_app
    >>> app = create_app(load_config("mooring.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.formats.model import TensorInfo
from mooring.serving.app import ServerState, build_app, create_app
from mooring.serving.batcher import Batcher
from mooring.serving.door import Door, DoorLimits, server_config
from mooring.serving.errors import (
    DeadlineExceededError,
    InvalidRequestError,
    ModelLoadError,
    ModelUnavailableError,
    OverloadedError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from mooring.serving.loaded import ServedModel, load_served_model
from mooring.serving.log import PredictionLog
from mooring.serving.metrics import ServingMetrics
from mooring.serving.models import ModelManager, bucket_of
from mooring.serving.sources import DirectorySource, ModelSource, RegistrySource

__all__ = [
    "Batcher",
    "DeadlineExceededError",
    "DirectorySource",
    "Door",
    "DoorLimits",
    "InvalidRequestError",
    "ModelLoadError",
    "ModelManager",
    "ModelSource",
    "ModelUnavailableError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PredictionLog",
    "RegistrySource",
    "ServedModel",
    "ServerState",
    "ServingMetrics",
    "TensorInfo",
    "UnauthorizedError",
    "bucket_of",
    "build_app",
    "create_app",
    "load_served_model",
    "server_config",
]
