"""The model folder: a SavedModel plus ``mooring.json`` beside it.

This module is the one place that spells the folder's file names and the
signature's name; every layer that writes or reads a model folder imports them.
"""

from __future__ import annotations

__all__ = ["METADATA_FILE", "SIGNATURE"]

# The metadata written beside the SavedModel: task, label encoding, feature spec, versions.
METADATA_FILE = "mooring.json"
# The one signature a mooring SavedModel serves.
SIGNATURE = "serving_default"
