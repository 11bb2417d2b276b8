"""Drift and live-quality numbers as Prometheus gauges.

:func:`drift_gauges` fills a ``prometheus_client`` registry from a drift report, so any
exporter (``mooring drift --metrics-port``, the server, a push gateway) can publish them:

* ``mooring_drift_distance{model,version,feature,metric}`` — every recorded distance
  and share (outputs appear as ``output.score`` / ``output.class``);
* ``mooring_drift_feature_drifted{model,version,feature}`` — 1 when the feature drifts;
* ``mooring_drift_status{model,version}`` — 1 drift, 0 ok, -1 insufficient data;
* ``mooring_drift_window_rows{model,version}`` and ``mooring_drift_checked_timestamp_seconds``.

:func:`live_gauges` adds ``mooring_live_metric{model,version,metric}`` and
``mooring_live_labels{model,version}``.

Examples:
    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> registry = drift_gauges(report)  # doctest: +SKIP
    >>> generate_latest(registry)  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from mooring.formats._metrics import (
    DRIFT_CHECKED,
    DRIFT_DISTANCE,
    DRIFT_FEATURE_DRIFTED,
    DRIFT_STATUS,
    DRIFT_WINDOW_ROWS,
    LIVE_LABELS,
    LIVE_METRIC,
)

if TYPE_CHECKING:
    from mooring.formats._drift import DriftReport
    from mooring.monitoring._feedback import LiveMetrics

__all__ = ["DriftGauges", "drift_gauges", "live_gauges"]

_STATUS = {"drift": 1.0, "ok": 0.0, "insufficient_data": -1.0}


class DriftGauges:
    """The drift gauges registered once on a registry, updated by every new report."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["model", "version"]
        self.distance = Gauge(
            DRIFT_DISTANCE,
            "Drift distance or share of a feature against the training baseline.",
            [*labels, "feature", "metric"],
            registry=self.registry,
        )
        self.drifted = Gauge(
            DRIFT_FEATURE_DRIFTED,
            "1 when the feature drifts at the configured thresholds, else 0.",
            [*labels, "feature"],
            registry=self.registry,
        )
        self.status = Gauge(
            DRIFT_STATUS,
            "Overall drift verdict: 1 drift, 0 ok, -1 insufficient data.",
            labels,
            registry=self.registry,
        )
        self.rows = Gauge(
            DRIFT_WINDOW_ROWS,
            "Rows in the judged window.",
            labels,
            registry=self.registry,
        )
        self.checked = Gauge(
            DRIFT_CHECKED,
            "When the last drift check ran (Unix time).",
            labels,
            registry=self.registry,
        )
        self.live = Gauge(
            LIVE_METRIC,
            "A live metric from label feedback (evaluation-layer definitions).",
            [*labels, "metric"],
            registry=self.registry,
        )
        self.labels = Gauge(
            LIVE_LABELS,
            "Labelled predictions scored for the live metrics.",
            labels,
            registry=self.registry,
        )

    def update(self, report: DriftReport) -> None:
        """Set every gauge from ``report`` (features and outputs)."""
        model, version = report.model, str(report.version)
        features = list(report.features)
        if report.prediction is not None:
            features += report.prediction.features
        for feature in features:
            for metric, value in feature.metrics.items():
                if value is not None:
                    self.distance.labels(model, version, feature.name, metric).set(value)
            self.drifted.labels(model, version, feature.name).set(1.0 if feature.drifted else 0.0)
        self.status.labels(model, version).set(_STATUS.get(report.status, -1.0))
        self.rows.labels(model, version).set(float(report.window.get("rows") or 0))
        self.checked.labels(model, version).set(
            datetime.fromisoformat(report.created_at).timestamp()
        )

    def update_live(self, live: LiveMetrics) -> None:
        """Set the live-metric gauges from ``live``."""
        for quality in live.versions:
            version = str(quality.version)
            self.labels.labels(live.model, version).set(quality.rows)
            for metric, value in quality.metrics.items():
                if value is not None:
                    self.live.labels(live.model, version, metric).set(value)


def drift_gauges(
    report: DriftReport, registry: CollectorRegistry | None = None
) -> CollectorRegistry:
    """A registry (new, or the one given) holding the drift gauges of ``report``."""
    gauges = DriftGauges(registry)
    gauges.update(report)
    return gauges.registry


def live_gauges(live: LiveMetrics, registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """A registry (new, or the one given) holding the live-metric gauges of ``live``."""
    gauges = DriftGauges(registry)
    gauges.update_live(live)
    return gauges.registry
