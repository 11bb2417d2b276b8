"""The web dashboard: models, deployments, reports, drift and live traffic at a glance.

Served by ``mooring serve`` under ``/ui`` and standalone by ``mooring ui``.
Server-rendered HTML with inline SVG charts and one small script; it needs no
network access beyond the server it runs in.

Example:
    >>> from mooring.config import load_config
    >>> ui = create_ui(load_config("mooring.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.serving.ui.app import DEFAULT_ACTOR, create_ui, standalone_app
from mooring.serving.ui.drift_files import DriftHistory, DriftRun, read_drift_history
from mooring.serving.ui.live import LiveMetrics, bucket_quantile, parse_metrics

__all__ = [
    "DEFAULT_ACTOR",
    "DriftHistory",
    "DriftRun",
    "LiveMetrics",
    "bucket_quantile",
    "create_ui",
    "parse_metrics",
    "read_drift_history",
    "standalone_app",
]
