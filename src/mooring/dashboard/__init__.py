"""Everything mooring renders: the web dashboard, the evaluation and drift reports' HTML.

The dashboard (models, deployments, reports, drift and live traffic at a glance) is
served by ``mooring serve`` under ``/ui`` and standalone by ``mooring ui``:
server-rendered HTML with inline SVG charts and one small script; it needs no
network access beyond the server it runs in. The report pages are self-contained
HTML files written beside the reports' JSON by the commands that write the reports.
The layers below render nothing: they take a renderer from here when a caller
passes one.

Example:
    >>> from mooring.config import load_config
    >>> ui = create_ui(load_config("mooring.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.dashboard.app import DEFAULT_ACTOR, create_ui, standalone_app
from mooring.dashboard.drift_files import DriftHistory, DriftRun, read_drift_history
from mooring.dashboard.drift_report import render_drift_html
from mooring.dashboard.evaluation_report import render_evaluation_html
from mooring.dashboard.live import LiveMetrics, bucket_quantile, parse_metrics

__all__ = [
    "DEFAULT_ACTOR",
    "DriftHistory",
    "DriftRun",
    "LiveMetrics",
    "bucket_quantile",
    "create_ui",
    "parse_metrics",
    "read_drift_history",
    "render_drift_html",
    "render_evaluation_html",
    "standalone_app",
]
