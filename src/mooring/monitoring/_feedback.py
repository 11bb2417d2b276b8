"""Live quality: label feedback joined with the prediction log, scored per version.

Labels (:mod:`mooring.formats._feedback`) are joined with logged predictions by request
id, then scored with the evaluation layer's own metric code (:func:`mooring.evaluation.prepare`,
the same definitions as the evaluation report and its gates), per model version, over the
same windows as drift (last ``N`` logged rows and/or since a time). Each version's numbers
sit beside the evaluation-time values stored in the registry, so a drop shows as a change.

A request id that logged several rows (a batch request) cannot carry one label for each
row; such labels are counted as ``ambiguous`` and left out. Labels whose request is not
in the window are ``unmatched``; asked to (``locate_unmatched``, what ``mooring live``
does), those are told apart: ``outside_window`` (the request is in the log, older than
the window or served by another version than the one asked for) and ``not_logged`` (the
log never held the request id: not sampled into it, or an id the server never answered,
such as the client's own ``X-Request-Id``, logged as ``client_request_id``: labels join
on the server's ``X-Request-Id`` only).

Examples:
    >>> live = live_metrics(cfg, last=50_000)  # doctest: +SKIP
    >>> live.versions[0].metrics["auc"], live.versions[0].change["auc"]  # doctest: +SKIP
    (0.87, -0.03)
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mooring.contract._io import ReadOptions, read_table
from mooring.errors import NotFoundError
from mooring.evaluation._metrics import HEADLINE, Task, prepare
from mooring.formats._feedback import LABEL, Labels, labels_from_table, read_feedback
from mooring.formats._model import read_metadata
from mooring.formats._predictions import (
    MODEL_VERSION,
    REQUEST_ID,
    TIMESTAMP,
    find_request_ids,
    output_column,
    read_prediction_log,
)
from mooring.monitoring._estimate import (
    LOSS_METRICS,
    METRICS,
    Estimate,
    output_columns,
    version_estimate,
)

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.registry import ModelVersion, Registry

__all__ = ["LiveMetrics", "VersionQuality", "live_metrics", "read_labels_file", "score_version"]


@dataclass
class VersionQuality:
    """Live metrics of one version: ``status`` is ``ok`` or ``insufficient_data``."""

    version: int
    task: str
    rows: int
    status: str
    metrics: dict[str, float | None]
    evaluation: dict[str, float | None] = field(default_factory=dict)
    change: dict[str, float | None] = field(default_factory=dict)
    threshold: float | None = None
    invalid_labels: int = 0
    #: Labelled rows of the positive class (binary), for the uncertainty of AUC.
    positives: int | None = None
    #: The back-test: each metric as estimated without labels on these same rows, its
    #: band, and whether the live value fell within it.
    estimated: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass
class LiveMetrics:
    """Labels received and matched, and the metrics of every version in the window."""

    model: str
    window: dict[str, Any]
    labels: dict[str, int]
    versions: list[VersionQuality]
    min_labels: int
    #: Every version's performance estimated without labels on all its rows in the
    #: window (:mod:`mooring.monitoring._estimate`), labelled or not.
    estimates: dict[int, Estimate] = field(default_factory=dict)
    #: Each estimated version's evaluation values of the estimated metrics: what its
    #: estimate is read against.
    evaluations: dict[int, dict[str, float]] = field(default_factory=dict)

    def version(self, number: int) -> VersionQuality | None:
        """The result of one version, if it served labelled rows in the window."""
        return next((v for v in self.versions if v.version == number), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "model": self.model,
            "window": self.window,
            "labels": self.labels,
            "min_labels": self.min_labels,
            "versions": [v.to_dict() for v in self.versions],
            "estimates": {
                str(k): {**e.to_dict(), "evaluation": self.evaluations.get(k, {})}
                for k, e in self.estimates.items()
            },
        }


def _encode(
    labels: list[str], task: str, vocabulary: list[str]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Encoded labels and the mask of valid ones (class names, class ids, or numbers)."""
    if task == "regression":
        values = np.array([_float(v) for v in labels], dtype=np.float64)
        return values, ~np.isnan(values)
    index = {v: i for i, v in enumerate(vocabulary)}
    codes = np.full(len(labels), -1, dtype=np.int64)
    for i, text in enumerate(labels):
        if text in index:
            codes[i] = index[text]
        elif text.isdigit() and int(text) < len(vocabulary):
            codes[i] = int(text)  # a class id (0/1 for binary) is accepted as well
    return codes, codes >= 0


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def score_version(
    task: str,
    labels: list[str],
    outputs: pa.Table,
    *,
    vocabulary: list[str],
    threshold: float = 0.5,
    min_labels: int = 1,
    version: int = 0,
    evaluation: dict[str, Any] | None = None,
) -> VersionQuality:
    """Score labelled logged rows of one version with the evaluation layer's metrics.

    ``outputs`` holds the log's ``output.*`` columns of the labelled rows, in label order.
    """
    codes, valid = _encode(labels, task, vocabulary)
    invalid = int((~valid).sum())
    rows = int(valid.sum())
    evaluation = evaluation or {}
    if rows < min_labels:
        return VersionQuality(
            version,
            task,
            rows,
            "insufficient_data",
            {},
            threshold=threshold,
            invalid_labels=invalid,
        )
    keep = pa.array(valid)
    outputs = outputs.filter(keep)
    y = codes[valid]
    if task == "regression":
        predictions = np.asarray(
            outputs[output_column("value")].to_numpy(zero_copy_only=False), float
        )
    else:
        proba = np.array(outputs[output_column("probabilities")].to_pylist(), dtype=np.float64)
        predictions = proba[:, 1] if task == "binary" else proba
    suite = prepare(cast(Task, task), labels=y, predictions=predictions, threshold=threshold)
    names = [n for n in HEADLINE[task] if n in suite.names]
    metrics = suite.compute(names)
    stored: dict[str, float] = {}
    for k in names:
        value = evaluation.get(k)
        if isinstance(value, int | float) and not isinstance(value, bool):
            stored[k] = float(value)
    change: dict[str, float | None] = {}
    for k in names:
        live = metrics.get(k)
        change[k] = live - stored[k] if live is not None and k in stored else None
    return VersionQuality(
        version=version,
        task=task,
        rows=rows,
        status="ok",
        metrics=metrics,
        evaluation=dict(stored),
        change=change,
        threshold=threshold,
        invalid_labels=invalid,
        positives=int(np.sum(y == 1)) if task == "binary" else None,
    )


def _model_info(
    registry: Registry, name: str, version: int
) -> tuple[dict[str, Any], ModelVersion, float]:
    """mooring.json of the version's model, the version, and the operating threshold
    registered with it (the model's own 0.5 when none was)."""
    folder = registry.load(name, version=version)
    metadata = read_metadata(folder)
    mv = registry.get(name, version=version)
    threshold = mv.operating_threshold
    if threshold is None:
        threshold = float(metadata.get("threshold", 0.5) or 0.5)
    return metadata, mv, threshold


def _back_test(quality: VersionQuality, estimated: Estimate) -> dict[str, dict[str, Any]]:
    """Each estimated metric beside its live value on the same rows, and whether the live
    value fell within the estimate's band."""
    out: dict[str, dict[str, Any]] = {}
    for name, metric in estimated.metrics.items():
        live = quality.metrics.get(name)
        if live is not None:
            out[name] = {**metric.to_dict(), "live": live, "within": metric.holds(live)}
    return out


def live_metrics(
    cfg: MooringConfig,
    *,
    version: int | None = None,
    last: int | None = None,
    since: datetime | None = None,
    registry: Registry | None = None,
    locate_unmatched: bool = False,
    estimates: bool = False,
) -> LiveMetrics:
    """Join label feedback with the prediction log and score every version in the window.

    The window is the last ``last`` logged rows and/or those since ``since`` (default: the
    last ``[monitoring] window_rows``). Versions with fewer than ``[monitoring]
    live_min_labels`` labelled rows report ``insufficient_data``. ``locate_unmatched``:
    also count the unmatched labels whose request the log holds outside the window
    (``labels["outside_window"]``) and those it never held (``labels["not_logged"]``);
    this reads the request ids of the whole log, so the monitor's ticks leave it off.

    ``estimates`` (what ``mooring live`` asks): every version in the window also gets
    its performance estimated without labels, and each labelled one the estimate on its
    labelled rows beside the live value (``estimated``): the back-test of the estimate.

    Raises:
        NotFoundError: no prediction log, or no label for the model (with ``estimates``:
            and no version in the window whose performance can be estimated).
    """
    from mooring.registry import Registry as _Registry

    name = cfg.project.name
    log_url = cfg.serving.log_url or str(cfg.home / "predictions")
    feedback_url = cfg.monitoring.feedback_url or str(cfg.home / "feedback")
    feedback = read_feedback(feedback_url, name)
    no_labels = NotFoundError(
        f"no label feedback for model '{name}' under '{feedback_url}'; send labels with "
        f"`mooring feedback FILE` or POST /v1/models/{name}:feedback"
    )
    if feedback.num_rows == 0 and not estimates:
        raise no_labels
    if last is None and since is None:
        last = cfg.monitoring.window_rows
    try:
        log = read_prediction_log(log_url, name, version=version, last=last, since=since)
    except NotFoundError:
        if feedback.num_rows == 0:
            raise no_labels from None
        raise
    ids = log[REQUEST_ID].to_pylist()
    per_request = Counter(ids)
    label_of = dict(zip(feedback[REQUEST_ID].to_pylist(), feedback[LABEL].to_pylist(), strict=True))
    rows = [i for i, rid in enumerate(ids) if rid in label_of and per_request[rid] == 1]
    ambiguous = sum(1 for rid in label_of if per_request.get(rid, 0) > 1)
    matched_ids = {ids[i] for i in rows}
    counts = {
        "received": len(label_of),
        "matched": len(rows),
        "ambiguous": ambiguous,
        "unmatched": len(label_of) - len(matched_ids) - ambiguous,
    }
    if locate_unmatched:
        unmatched = [rid for rid in label_of if rid not in per_request]
        logged = find_request_ids(log_url, name, unmatched) if unmatched else set()
        counts["outside_window"] = len(logged)
        counts["not_logged"] = len(unmatched) - len(logged)
    joined = log.take(pa.array(rows, pa.int64()))
    labels = [label_of[ids[i]] for i in rows]
    owned = registry is None
    reg = registry or _Registry.from_config(cfg)
    results = []
    # Each version's model read once, for its estimate and its live metrics.
    info = functools.cache(functools.partial(_model_info, reg, name))
    try:
        found, evaluations = _window_estimates(info, log) if estimates else ({}, {})
        versions = sorted(set(joined[MODEL_VERSION].to_pylist())) if joined.num_rows else []
        for number in versions:
            mask = pc.equal(joined[MODEL_VERSION], number)
            subset = joined.filter(mask)
            subset_labels = [lab for lab, m in zip(labels, mask.to_pylist(), strict=True) if m]
            metadata, mv, threshold = info(int(number))
            task = str(metadata.get("task", "binary"))
            quality = score_version(
                task,
                subset_labels,
                output_columns(subset),
                vocabulary=list(metadata.get("label_vocabulary", [])),
                threshold=threshold,
                min_labels=cfg.monitoring.live_min_labels,
                version=int(number),
                evaluation=mv.metrics.get("overall", mv.metrics),
            )
            if quality.status == "ok" and estimates:
                valid = pa.array(_valid(subset_labels, task, metadata))
                labelled = subset.filter(valid)
                quality.estimated = _back_test(quality, version_estimate(mv, task, labelled))
            results.append(quality)
    finally:
        if owned:
            reg.close()
    if feedback.num_rows == 0 and not any(not e.refused for e in found.values()):
        raise no_labels
    window: dict[str, Any] = {"rows": log.num_rows, "start": None, "end": None}
    if log.num_rows:
        bounds = pc.min_max(log[TIMESTAMP]).as_py()
        window["start"], window["end"] = str(bounds["min"]), str(bounds["max"])
    return LiveMetrics(
        name, window, counts, results, cfg.monitoring.live_min_labels, found, evaluations
    )


def _window_estimates(
    info: Callable[[int], tuple[dict[str, Any], ModelVersion, float]], log: pa.Table
) -> tuple[dict[int, Estimate], dict[int, dict[str, float]]]:
    """Every version's estimate on all its rows in the window (labelled or not), and the
    evaluation values of its estimated metrics."""
    estimates: dict[int, Estimate] = {}
    evaluations: dict[int, dict[str, float]] = {}
    for number in sorted(set(log[MODEL_VERSION].to_pylist())) if log.num_rows else []:
        metadata, mv, _ = info(int(number))
        rows = log.filter(pc.equal(log[MODEL_VERSION], number))
        task = str(metadata.get("task", "binary"))
        estimates[int(number)] = version_estimate(mv, task, rows)
        stored = mv.metrics.get("overall", mv.metrics)
        evaluations[int(number)] = {
            k: float(v)
            for k in (*METRICS, *LOSS_METRICS)
            if isinstance(v := stored.get(k), int | float) and not isinstance(v, bool)
        }
    return estimates, evaluations


def _valid(labels: list[str], task: str, metadata: dict[str, Any]) -> list[bool]:
    """Which labels :func:`score_version` scores (the rows it keeps)."""
    _, valid = _encode(labels, task, list(metadata.get("label_vocabulary", [])))
    return [bool(v) for v in valid]


def read_labels_file(path: str | Path) -> Labels:
    """``(request_id, label)`` pairs from a CSV or Parquet file with those two columns.

    Raises:
        DataError: the file cannot be read, lacks a column, or has an invalid row.
    """
    options = ReadOptions(na_values=("",), column_types={REQUEST_ID: pa.string()})
    return labels_from_table(read_table(path, options), str(path))
