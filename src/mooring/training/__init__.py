"""The training layer: tf.data from Arrow, model builders, fit, checkpoints, export, parity.

``train_model`` turns a config and the training statistics into ONE SavedModel
(preprocessing inside) with ``mooring.json`` beside it; the folder is read back
with :func:`mooring.formats.model.load_saved_model`.
"""

from __future__ import annotations

from mooring.training.builders import BUILDERS, Builder, build_model, mlp, register_builder
from mooring.training.export import export_model
from mooring.training.fit import TrainingResult, configure_runtime, train_model
from mooring.training.labels import LabelEncoding, resolve_label
from mooring.training.parity import ParityError, ParityReport, check_parity
from mooring.training.pipeline import load_training_data, validation_mask

__all__ = [
    "BUILDERS",
    "Builder",
    "LabelEncoding",
    "ParityError",
    "ParityReport",
    "TrainingResult",
    "build_model",
    "check_parity",
    "configure_runtime",
    "export_model",
    "load_training_data",
    "mlp",
    "register_builder",
    "resolve_label",
    "train_model",
    "validation_mask",
]
