"""Evaluation: metrics, slices, calibration, thresholds, cost, windows and gates.

The core works on arrays (labels and predictions) plus, optionally, the evaluation rows'
raw columns for slices and time windows::

    result = evaluate(task="binary", labels=y, scores=p, table=table, config=cfg.evaluation)
    decision = decide(result, baseline=production_result)
    result.save(folder, decision)           # report.json (the dashboard renders the HTML)
    decision.to_dict()                      # {"blessed": ..., "gates": [...], "warnings": [...]}
"""

from __future__ import annotations

from mooring.evaluation.bootstrap import Interval, bootstrap, bootstrap_indices
from mooring.evaluation.calibration import Calibration, ReliabilityBin
from mooring.evaluation.candidates import (
    CandidateEvaluation,
    CandidatesRun,
    evaluate_candidates,
)
from mooring.evaluation.compare import compare, compare_predictions
from mooring.evaluation.evaluate import encode_labels, evaluate
from mooring.evaluation.gates import GateDecision, GateResult, decide
from mooring.evaluation.metrics import HEADLINE, PRIMARY, MetricSuite, prepare
from mooring.evaluation.model import (
    EvaluationRun,
    evaluate_loaded_model,
    evaluate_model_dir,
)
from mooring.evaluation.result import (
    Comparison,
    EvaluationResult,
    SliceResult,
    WindowResult,
    WindowsSummary,
)
from mooring.evaluation.thresholds import CostSummary, Sweep, ThresholdCurve

__all__ = [
    "HEADLINE",
    "PRIMARY",
    "Calibration",
    "CandidateEvaluation",
    "CandidatesRun",
    "Comparison",
    "CostSummary",
    "EvaluationResult",
    "EvaluationRun",
    "GateDecision",
    "GateResult",
    "Interval",
    "MetricSuite",
    "ReliabilityBin",
    "SliceResult",
    "Sweep",
    "ThresholdCurve",
    "WindowResult",
    "WindowsSummary",
    "bootstrap",
    "bootstrap_indices",
    "compare",
    "compare_predictions",
    "decide",
    "encode_labels",
    "evaluate",
    "evaluate_candidates",
    "evaluate_loaded_model",
    "evaluate_model_dir",
    "prepare",
]
