"""Monitoring: drift of served traffic, live quality from label feedback, guardrails.

Light to import (no TensorFlow): TensorFlow is loaded only when a baseline must be
derived by scoring data with a model.

Examples:
    >>> from mooring.monitoring import check_drift
    >>> report = check_drift(cfg, registry, last=5000)  # doctest: +SKIP
    >>> report.status, report.drifted  # doctest: +SKIP
    >>> Monitor(cfg, registry).tick().rollout.action  # doctest: +SKIP
"""

from __future__ import annotations

from mooring.formats._drift import DriftReport
from mooring.monitoring._drift import check_drift
from mooring.monitoring._monitor import Monitor, MonitorReport
from mooring.monitoring._rollout import RolloutController, RolloutDecision

__all__ = [
    "DriftReport",
    "Monitor",
    "MonitorReport",
    "RolloutController",
    "RolloutDecision",
    "check_drift",
]
