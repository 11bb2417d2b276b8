"""``evaluate()``: from labels and predictions (and the rows' raw columns) to a full result.

The core works on arrays, not on a model, so the same code scores a SavedModel's
output, a baseline's stored predictions, or numbers from anywhere else.

Examples:
    >>> import numpy as np
    >>> from mooring.config import EvaluationConfig
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> p = np.clip(0.3 * y + 0.7 * rng.random(1000), 0, 1)
    >>> result = evaluate(task="binary", labels=y, scores=p,
    ...                   config=EvaluationConfig(bootstrap={"samples": 50}))
    >>> 0.5 < result.metric("auc") <= 1.0
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mooring.config._evaluation import EvaluationConfig
from mooring.errors import DataError, UsageError
from mooring.evaluation._bootstrap import Interval, bootstrap
from mooring.evaluation._calibration import (
    Calibration,
    calibration,
    multiclass_calibration,
    regression_calibration,
)
from mooring.evaluation._metrics import (
    HEADLINE,
    PRIMARY,
    FloatArray,
    IntArray,
    MetricSuite,
    Task,
    check_inputs,
    prepare,
)
from mooring.evaluation._result import (
    EvaluationResult,
    Prior,
    SliceResult,
    WindowResult,
    WindowsSummary,
)
from mooring.evaluation._slices import build_slices
from mooring.evaluation._thresholds import (
    ThresholdCurve,
    choose_threshold,
    cost_summary,
    sweep_grid,
)
from mooring.evaluation._windows import build_windows

__all__ = ["encode_labels", "evaluate"]


def encode_labels(
    task: Task, labels: npt.ArrayLike, vocabulary: Sequence[str] | None
) -> IntArray | FloatArray:
    """Labels as the metrics expect them: 0/1 (binary), class index (multiclass), float.

    Text labels are mapped through ``vocabulary`` (for binary, ``vocabulary[1]`` is the
    positive class); numeric or boolean labels are taken as they are.
    """
    arr = np.asarray(labels)
    if task == "regression":
        return np.asarray(arr, dtype=np.float64)
    if arr.dtype.kind in "OUS":
        if vocabulary is None:
            raise UsageError(
                "labels are text but no label_vocabulary was given; pass the model's label "
                "vocabulary (for binary: [negative, positive])"
            )
        index = {str(v): i for i, v in enumerate(vocabulary)}
        text = arr.astype(str)
        codes = np.array([index.get(v, -1) for v in text], dtype=np.int64)
        unknown = codes < 0
        if unknown.any():
            examples = sorted(set(text[unknown].tolist()))[:5]
            raise DataError(
                f"{int(unknown.sum())} labels are not in the label vocabulary {list(vocabulary)} "
                f"(e.g. {examples}); fix the label column or retrain with these classes"
            )
        return codes
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DataError(
            f"{int(np.isnan(arr).sum())} labels are missing; drop unlabelled rows before evaluating"
        )
    return arr.astype(np.int64)


def _predictions(
    task: Task,
    scores: npt.ArrayLike | None,
    probabilities: npt.ArrayLike | None,
    values: npt.ArrayLike | None,
) -> FloatArray:
    if task == "regression":
        if values is None:
            raise UsageError("a regression evaluation needs values=")
        return np.asarray(values, dtype=np.float64).reshape(-1)
    if task == "binary":
        if scores is not None:
            return np.asarray(scores, dtype=np.float64).reshape(-1)
        if probabilities is None:
            raise UsageError("a binary evaluation needs scores= or probabilities=")
        proba = np.asarray(probabilities, dtype=np.float64)
        if proba.ndim == 2 and proba.shape[1] == 2:
            return proba[:, 1].copy()
        if proba.ndim == 1:
            return proba
        raise UsageError(f"binary probabilities must have 2 columns; got shape {proba.shape}")
    if probabilities is None:
        raise UsageError("a multiclass evaluation needs probabilities= of shape [rows, classes]")
    return np.asarray(probabilities, dtype=np.float64)


def _fingerprint(labels: npt.NDArray[np.generic], table: pa.Table | None) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(labels).tobytes())
    digest.update(str(labels.shape).encode())
    if table is not None:
        digest.update(",".join(table.column_names).encode())
    return digest.hexdigest()[:16]


def _calibration(
    task: Task, y: npt.NDArray[np.generic], pred: FloatArray, bins: int
) -> Calibration:
    if task == "binary":
        return calibration(y, pred, bins)
    if task == "multiclass":
        return multiclass_calibration(y, pred, bins)
    return regression_calibration(y, pred)


def evaluate(
    *,
    task: Task,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike | None = None,
    probabilities: npt.ArrayLike | None = None,
    values: npt.ArrayLike | None = None,
    table: pa.Table | None = None,
    config: EvaluationConfig | None = None,
    label_vocabulary: Sequence[str] | None = None,
    timestamp_column: str | None = None,
    prior: Prior | None = None,
) -> EvaluationResult:
    """Evaluate predictions against labels.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        labels: true labels (0/1, class index, text mapped via ``label_vocabulary``, or
            regression targets).
        scores: binary: positive-class probability per row.
        probabilities: classification: [rows, classes] (binary column 1 = positive).
        values: regression predictions.
        table: the evaluation rows' raw columns, for slices and windows.
        config: the ``[evaluation]`` section; defaults apply when omitted.
        label_vocabulary: class names in probability column order.
        timestamp_column: ``[data] timestamp``, used for windows unless
            ``[evaluation.windows] column`` names another.
        prior: the training label's class frequencies or mean, for the default gate
            "better than the prior"; without it that gate reads the evaluated rows'.
    """
    cfg = config or EvaluationConfig()
    y = encode_labels(task, labels, label_vocabulary)
    pred = _predictions(task, scores, probabilities, values)
    if table is not None and table.num_rows != y.shape[0]:
        raise UsageError(
            f"the table has {table.num_rows} rows but there are {y.shape[0]} labels; pass the "
            "raw columns of exactly the evaluated rows"
        )
    warnings: list[str] = []

    curve: ThresholdCurve | None = None
    threshold: float | None = None
    source: str | None = None
    if task == "binary":
        # Validate before sorting so a bad array fails with a clear message.
        check_inputs(task, y, pred)
        curve = ThresholdCurve.from_scores(y, pred)
        threshold, source = choose_threshold(curve, cfg.threshold, cfg.cost)
    elif not isinstance(cfg.threshold, float) or cfg.threshold != 0.5:
        warnings.append(f"threshold = {cfg.threshold!r} applies to binary models only; ignored")

    def suite_for(rows: IntArray | None) -> MetricSuite:
        return prepare(
            task,
            labels=y if rows is None else y[rows],
            predictions=pred if rows is None else pred[rows],
            threshold=threshold if threshold is not None else 0.5,
            calibration_bins=cfg.calibration_bins,
            top_k=cfg.top_k,
        )

    suite = suite_for(None)
    metrics = suite.compute()
    per_class = suite.extras["per_class"]() if "per_class" in suite.extras else None
    names = list(cfg.bootstrap.metrics or HEADLINE[task])
    unknown = [m for m in names if m not in suite.names]
    if unknown:
        raise UsageError(
            f"[evaluation.bootstrap] metrics: {unknown} are not {task} metrics; "
            f"choose from {list(suite.names)}"
        )
    intervals = bootstrap(
        suite,
        names,
        samples=cfg.bootstrap.samples,
        seed=cfg.bootstrap.seed,
        confidence=cfg.bootstrap.confidence,
    )
    primary = PRIMARY[task]
    primary_ci = intervals.get(primary)

    result = EvaluationResult(
        task=task,
        rows=int(y.shape[0]),
        config=cfg,
        metrics=metrics,
        intervals=intervals,
        calibration=_calibration(task, y, pred, cfg.calibration_bins),
        data_fingerprint=_fingerprint(y, table),
        label_vocabulary=None if label_vocabulary is None else [str(v) for v in label_vocabulary],
        operating_threshold=threshold,
        threshold_source=source,
        per_class=per_class if isinstance(per_class, dict) else None,
        warnings=warnings,
        prior=prior,
        predictions=pred,
        labels=y,
    )
    if curve is not None and threshold is not None:
        result.sweep = curve.sweep(sweep_grid(cfg.threshold_points), cfg.cost)
        result.curves = {"roc": curve.roc_points(), "pr": curve.pr_points()}
        if cfg.cost is not None:
            result.cost = cost_summary(curve, cfg.cost, threshold)

    wants_slices = cfg.slices or cfg.slice_buckets or cfg.crosses
    if wants_slices and table is None:
        warnings.append("slices are configured but no table of raw columns was given; skipped")
    elif wants_slices and table is not None:
        if primary_ci is None:
            warnings.append(
                f"no bootstrap interval for '{primary}', so no slice is flagged; "
                "set [evaluation.bootstrap] samples > 0"
            )
        for spec in build_slices(table, cfg.slices, cfg.slice_buckets, cfg.crosses, warnings):
            size = int(spec.rows.size)
            if size < cfg.min_slice_size:
                result.slices.append(
                    SliceResult(
                        spec.name,
                        spec.columns,
                        spec.values,
                        size,
                        {},
                        scored=False,
                        note=f"{size} rows < min_slice_size {cfg.min_slice_size}",
                    )
                )
                continue
            values_ = suite_for(spec.rows).compute()
            value = values_.get(primary)
            flagged = (
                primary_ci is not None and value is not None and not primary_ci.contains(value)
            )
            note = (
                f"{primary} {value:.4g} outside the overall {primary_ci.confidence:.0%} interval "
                f"[{primary_ci.lower:.4g}, {primary_ci.upper:.4g}]"
                if flagged and primary_ci is not None and value is not None
                else None
            )
            result.slices.append(
                SliceResult(
                    spec.name, spec.columns, spec.values, size, values_, True, flagged, note
                )
            )

    result.windows = _windows(cfg, table, timestamp_column, task, suite_for, primary_ci, warnings)
    return result


def _windows(
    cfg: EvaluationConfig,
    table: pa.Table | None,
    timestamp_column: str | None,
    task: Task,
    suite_for: Callable[[IntArray | None], MetricSuite],
    primary_ci: Interval | None,
    warnings: list[str],
) -> WindowsSummary | None:
    if cfg.windows is None and timestamp_column is None:
        return None
    if table is None:
        warnings.append("time windows need the table of raw columns; skipped")
        return None
    column = cfg.windows.column if cfg.windows and cfg.windows.column else timestamp_column
    freq: str | int = cfg.windows.freq if cfg.windows else "week"
    min_size = cfg.windows.min_size if cfg.windows else 30
    primary = PRIMARY[task]
    out: list[WindowResult] = []
    for window in build_windows(table, column, freq):
        size = int(window.rows.size)
        if size < min_size:
            out.append(WindowResult(window.name, size, {}, scored=False))
            continue
        values = suite_for(window.rows).compute()
        value = values.get(primary)
        flagged = primary_ci is not None and value is not None and not primary_ci.contains(value)
        out.append(WindowResult(window.name, size, values, True, flagged))
    spread: dict[str, float | None] = {}
    for name in HEADLINE[task]:
        seen = [w.metrics[name] for w in out if w.scored and w.metrics.get(name) is not None]
        numbers = [v for v in seen if v is not None]
        spread[name] = max(numbers) - min(numbers) if len(numbers) >= 2 else None
    return WindowsSummary(column, freq, primary, out, spread)
