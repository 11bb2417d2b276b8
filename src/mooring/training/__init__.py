"""The training layer: tf.data from Arrow, model builders, fit, checkpoints, export, parity.

``train_model`` turns a config and the training statistics into ONE SavedModel
(preprocessing inside) with ``mooring.json`` beside it; ``load_model`` and
``predict_saved_model`` use such a folder with TensorFlow only.
"""

from __future__ import annotations

from mooring.training.builders import BUILDERS, Builder, build_model, mlp, register_builder
from mooring.training.export import (
    METADATA_FILE,
    LoadedModel,
    ModelVersionWarning,
    export_model,
    load_model,
    predict_saved_model,
)
from mooring.training.fit import TrainingResult, configure_runtime, train_model
from mooring.training.labels import LabelEncoding, resolve_label
from mooring.training.parity import ParityError, ParityReport, check_parity
from mooring.training.pipeline import load_training_data, validation_mask

__all__ = [
    "BUILDERS",
    "METADATA_FILE",
    "Builder",
    "LabelEncoding",
    "LoadedModel",
    "ModelVersionWarning",
    "ParityError",
    "ParityReport",
    "TrainingResult",
    "build_model",
    "check_parity",
    "configure_runtime",
    "export_model",
    "load_model",
    "load_training_data",
    "mlp",
    "predict_saved_model",
    "register_builder",
    "resolve_label",
    "train_model",
    "validation_mask",
]
