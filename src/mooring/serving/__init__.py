"""The serving layer: TF Serving's REST API and the Open Inference Protocol over one batcher.

The names below are imported on first use (PEP 562): ``import mooring.serving.workers``
in the supervisor of ``mooring serve --workers N`` then costs nothing of the server
(Starlette, SQLAlchemy, pyarrow: about half a second before its workers could start).

Example:
    >>> from mooring.serving import create_app
    >>> app = create_app(load_config("mooring.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mooring._exports import exports_on_first_use

if TYPE_CHECKING:
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

# Each public name and the module it comes from.
_EXPORTS = {
    "Batcher": "mooring.serving.batcher",
    "DeadlineExceededError": "mooring.serving.errors",
    "DirectorySource": "mooring.serving.sources",
    "Door": "mooring.serving.door",
    "DoorLimits": "mooring.serving.door",
    "InvalidRequestError": "mooring.serving.errors",
    "ModelLoadError": "mooring.serving.errors",
    "ModelManager": "mooring.serving.models",
    "ModelSource": "mooring.serving.sources",
    "ModelUnavailableError": "mooring.serving.errors",
    "OverloadedError": "mooring.serving.errors",
    "PayloadTooLargeError": "mooring.serving.errors",
    "PredictionLog": "mooring.serving.log",
    "RegistrySource": "mooring.serving.sources",
    "ServedModel": "mooring.serving.loaded",
    "ServerState": "mooring.serving.app",
    "ServingMetrics": "mooring.serving.metrics",
    "TensorInfo": "mooring.formats.model",
    "UnauthorizedError": "mooring.serving.errors",
    "bucket_of": "mooring.serving.models",
    "build_app": "mooring.serving.app",
    "create_app": "mooring.serving.app",
    "load_served_model": "mooring.serving.loaded",
    "server_config": "mooring.serving.door",
}

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


__getattr__, __dir__ = exports_on_first_use(__name__, _EXPORTS, globals())
