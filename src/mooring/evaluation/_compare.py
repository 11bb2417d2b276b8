"""Candidate vs baseline (production) predictions on the same records.

- ``flip_rate``: share of rows whose predicted class differs (binary: each model at its
  own operating threshold; multiclass: argmax). Not defined for regression.
- ``mean_abs_diff``: mean absolute difference of the predictions: regression values,
  binary positive-class probabilities, multiclass total variation distance
  (half the L1 distance between the probability vectors, which equals the binary case).
- ``fixes`` and ``harms`` (classification, with labels): the flips where the candidate
  is right and production wrong, and the reverse. They say whether the disagreement a
  candidate shows on its evaluation data is what it was trained to change; the replay
  test (:mod:`mooring.pipeline._replay`) reads them.

Both are gateable (``metric = "flip_rate"``) once a baseline exists.

Examples:
    >>> import numpy as np
    >>> c = compare_predictions("binary", np.array([.9, .2, .6]), np.array([.8, .4, .4]))
    >>> round(c.flip_rate, 3), round(c.mean_abs_diff, 3)
    (0.333, 0.167)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mooring.errors import UsageError
from mooring.evaluation._metrics import Task
from mooring.evaluation._result import Comparison, EvaluationResult

__all__ = ["compare", "compare_predictions"]


def compare_predictions(
    task: Task,
    candidate: npt.ArrayLike,
    baseline: npt.ArrayLike,
    *,
    candidate_threshold: float = 0.5,
    baseline_threshold: float = 0.5,
    labels: npt.ArrayLike | None = None,
) -> Comparison:
    """Flip rate and mean absolute difference between two models' predictions.

    With ``labels`` (encoded: 0/1, class ids), also the flips that fix and that harm.
    """
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise UsageError(
            f"candidate predictions have shape {a.shape} but the baseline's have {b.shape}; "
            "compare both models on the same records"
        )
    if a.shape[0] == 0:
        raise UsageError("no rows to compare")
    if task == "regression":
        return Comparison(int(a.shape[0]), None, float(np.abs(a - b).mean()))
    if task == "binary":
        ours, theirs = a >= candidate_threshold, b >= baseline_threshold
        diff = float(np.abs(a - b).mean())
    else:
        ours, theirs = a.argmax(axis=1), b.argmax(axis=1)
        diff = float((0.5 * np.abs(a - b).sum(axis=1)).mean())
    flips = ours != theirs
    fixes = harms = None
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != a.shape[0]:
            raise UsageError(f"{y.shape[0]} labels for {a.shape[0]} compared predictions")
        right, was_right = ours.astype(np.int64) == y, theirs.astype(np.int64) == y
        fixes, harms = int((right & ~was_right).sum()), int((was_right & ~right).sum())
    return Comparison(int(a.shape[0]), float(flips.mean()), diff, fixes, harms)


def compare(candidate: EvaluationResult, baseline: EvaluationResult) -> Comparison:
    """Compare two results computed in this process on the same evaluation records.

    Also stores the comparison on ``candidate`` so reports and gates see it.
    """
    if candidate.task != baseline.task:
        raise UsageError(
            f"cannot compare a {candidate.task} candidate with a {baseline.task} baseline"
        )
    if candidate.data_fingerprint != baseline.data_fingerprint:
        raise UsageError(
            "candidate and baseline were evaluated on different records (data fingerprints "
            f"{candidate.data_fingerprint} vs {baseline.data_fingerprint}); evaluate both on "
            "the same evaluation data"
        )
    if candidate.predictions is None or baseline.predictions is None:
        raise UsageError("predictions are not available (results loaded from JSON keep none)")
    comparison = compare_predictions(
        candidate.task,
        candidate.predictions,
        baseline.predictions,
        candidate_threshold=candidate.operating_threshold or 0.5,
        baseline_threshold=baseline.operating_threshold or 0.5,
        labels=candidate.labels,
    )
    candidate.comparison = comparison
    return comparison
