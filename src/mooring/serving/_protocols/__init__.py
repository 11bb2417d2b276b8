"""Wire formats: TF Serving's REST API and the Open Inference Protocol (KServe v2)."""

from __future__ import annotations

from mooring.serving._protocols import tfserving, v2

__all__ = ["tfserving", "v2"]
