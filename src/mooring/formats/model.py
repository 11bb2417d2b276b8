"""The model folder: a SavedModel plus ``mooring.json`` beside it.

This module is the one place that spells the folder's file names and the
signature's name; every layer that writes or reads a model folder imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["METADATA_FILE", "NUMPY_DTYPES", "SIGNATURE", "TensorInfo"]

# The metadata written beside the SavedModel: task, label encoding, feature spec, versions.
METADATA_FILE = "mooring.json"
# The one signature a mooring SavedModel serves.
SIGNATURE = "serving_default"

# TensorFlow's dtype names for the numeric inputs a signature may take, as numpy dtypes.
NUMPY_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
}


@dataclass(frozen=True)
class TensorInfo:
    """Name, dtype (TensorFlow's name: float32, int64, string…) and shape (None = any)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    @property
    def is_string(self) -> bool:
        return self.dtype == "string"

    def numpy_dtype(self) -> Any:
        return object if self.is_string else NUMPY_DTYPES.get(self.dtype, np.float32)
