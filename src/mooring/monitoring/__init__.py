"""Monitoring: drift of served traffic, live quality from label feedback, guardrails.

Light to import (no TensorFlow): TensorFlow is loaded only when a baseline must be
derived by scoring data with a model.

Example:
    >>> from mooring.monitoring import check_drift
    >>> report = check_drift(cfg, registry, last=5000)  # doctest: +SKIP
    >>> report.status, report.drifted  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.contract.distance import SKETCH_DISTANCES, ks_statistic, lump_rare, wasserstein
from mooring.formats.drift import DriftReport, FeatureDrift, PredictionDrift, SegmentDrift
from mooring.formats.predictions import (
    feature_table,
    output_table,
    outputs_from_arrays,
    read_prediction_log,
)
from mooring.monitoring.alerts import Alert, AlertManager, LogSink, WebhookSink
from mooring.monitoring.baselines import (
    calibration_for,
    evaluation_reference,
    freeze_references,
    prediction_baseline,
    prediction_statistics,
    segment_baselines,
)
from mooring.monitoring.calibration import Calibration, calibrate
from mooring.monitoring.drift import (
    check_drift,
    compare_columns,
    compute_drift,
    resolve_thresholds,
    window_plan,
)
from mooring.monitoring.feedback import LiveMetrics, VersionQuality, live_metrics, score_version
from mooring.monitoring.gauges import DriftGauges, drift_gauges, live_gauges
from mooring.monitoring.guardrails import GuardrailResult
from mooring.monitoring.monitor import Monitor, MonitorReport
from mooring.monitoring.retrain import RetrainRun, RetrainTrigger
from mooring.monitoring.rollout import RolloutController, RolloutDecision
from mooring.monitoring.scrape import MetricsSnapshot, scrape
from mooring.monitoring.slo import SLOMonitor, SLOReport, burn_rate
from mooring.monitoring.window import LOG_READ_OPTIONS, WindowSummary, summarize_window

__all__ = [
    "LOG_READ_OPTIONS",
    "SKETCH_DISTANCES",
    "Alert",
    "AlertManager",
    "Calibration",
    "DriftGauges",
    "DriftReport",
    "FeatureDrift",
    "GuardrailResult",
    "LiveMetrics",
    "LogSink",
    "MetricsSnapshot",
    "Monitor",
    "MonitorReport",
    "PredictionDrift",
    "RetrainRun",
    "RetrainTrigger",
    "RolloutController",
    "RolloutDecision",
    "SLOMonitor",
    "SLOReport",
    "SegmentDrift",
    "VersionQuality",
    "WebhookSink",
    "WindowSummary",
    "burn_rate",
    "calibrate",
    "calibration_for",
    "check_drift",
    "compare_columns",
    "compute_drift",
    "drift_gauges",
    "evaluation_reference",
    "feature_table",
    "freeze_references",
    "ks_statistic",
    "live_gauges",
    "live_metrics",
    "lump_rare",
    "output_table",
    "outputs_from_arrays",
    "prediction_baseline",
    "prediction_statistics",
    "read_prediction_log",
    "resolve_thresholds",
    "score_version",
    "scrape",
    "segment_baselines",
    "summarize_window",
    "wasserstein",
    "window_plan",
]
