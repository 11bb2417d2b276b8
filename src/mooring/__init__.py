"""mooring: from raw tabular data to a served, monitored, safely rolled-out SavedModel."""

from __future__ import annotations

from mooring.errors import MooringError

__version__ = "0.1.0"

__all__ = ["MooringError", "__version__"]
