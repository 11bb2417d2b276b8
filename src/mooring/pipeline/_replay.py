"""The replay test: recent production requests sent to the candidate and to production.

Before a new version takes traffic, the last N rows of the production prediction
log (written by the server under ``<home>/predictions/``) are replayed in process
through both SavedModels. The report holds how far the scores move (mean, p99 and
max absolute difference), the share of decisions that flip, the latency of each
model on the logged requests re-sent one by one, and the CPU time per 1,000
predictions. ``[pipeline] replay_max_*`` turn the figures into gates.

Example:
    >>> table = read_prediction_tail(".mooring/predictions", "income", rows=1000)  # doctest: +SKIP
    >>> report = replay(candidate, production, table, cfg.pipeline)  # doctest: +SKIP
    >>> report.flip_rate, report.passed  # doctest: +SKIP
    (0.012, True)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mooring.config._pipeline import PipelineConfig
from mooring.formats._predictions import (
    MODEL_VERSION,
    REQUEST_ID,
    output_column,
    read_prediction_log,
)

if TYPE_CHECKING:
    from mooring.formats._model import SavedModelFolder

__all__ = ["ReplayReport", "read_prediction_tail", "replay"]


@dataclass
class ReplayReport:
    """The outcome of a replay test (``status``: compared, no_log or skipped)."""

    status: str
    message: str
    rows: int = 0
    requests: int = 0
    log: dict[str, Any] = field(default_factory=dict)
    mean_abs_diff: float | None = None
    p99_abs_diff: float | None = None
    max_abs_diff: float | None = None
    flip_rate: float | None = None
    flips: int | None = None
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ratio_p95: float | None = None
    cpu_seconds_per_1000: dict[str, float] = field(default_factory=dict)
    logged_max_abs_diff: float | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True unless a configured replay gate failed."""
        return all(g["passed"] for g in self.gates)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The replay gates that failed."""
        return [g for g in self.gates if not g["passed"]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (with ``passed``)."""
        data = asdict(self)
        data["passed"] = self.passed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayReport:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def read_prediction_tail(url: str, model: str, *, rows: int) -> pa.Table | None:
    """The last ``rows`` rows that the prediction log holds for ``model``, oldest first.

    ``None`` when the log holds nothing for the model.
    """
    from mooring.errors import NotFoundError

    try:
        table = read_prediction_log(url, model, last=rows)
    except NotFoundError:
        return None
    return table if table.num_rows else None


def _score(model: SavedModelFolder, outputs: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Per-row score: P(positive) (binary), the probability vector (multiclass) or the value."""
    if model.task == "regression":
        return np.asarray(outputs["value"], dtype=np.float64).reshape(-1)
    probabilities = np.asarray(outputs["probabilities"], dtype=np.float64)
    if model.task == "binary":
        return probabilities[:, 1]
    return probabilities


def _decision(
    model: SavedModelFolder, outputs: dict[str, Any], threshold: float | None
) -> np.ndarray[Any, Any] | None:
    if model.task == "regression":
        return None
    if model.task == "binary":
        threshold = model.threshold if threshold is None else threshold
        return np.asarray(outputs["probabilities"])[:, 1] >= threshold
    return np.asarray(outputs["class_ids"]).reshape(-1)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values) * 1000.0
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()),
        "requests": float(len(values)),
    }


def _gate(name: str, value: float | None, bound: float | None) -> dict[str, Any] | None:
    if bound is None:
        return None
    if value is None:
        # Not measurable for this model (flip rate of a regression, latency not timed).
        return {
            "name": name,
            "value": None,
            "bound": {"upper": bound},
            "passed": True,
            "skipped": True,
            "message": f"replay {name}: not measured, gate skipped",
        }
    passed = value <= bound
    return {
        "name": name,
        "value": value,
        "bound": {"upper": bound},
        "passed": passed,
        "message": f"replay {name} {value:.4g} {'<=' if passed else '>'} {bound:g}",
    }


def _requests(table: pa.Table) -> list[np.ndarray[Any, Any]]:
    """Row indices of each logged request, in log order."""
    if REQUEST_ID not in table.column_names:
        return [np.arange(table.num_rows)]
    groups: dict[Any, list[int]] = {}
    for index, key in enumerate(table.column(REQUEST_ID).to_pylist()):
        groups.setdefault(key, []).append(index)
    return [np.asarray(v) for v in groups.values()]


def replay(
    candidate: SavedModelFolder,
    production: SavedModelFolder,
    table: pa.Table,
    config: PipelineConfig,
    *,
    production_version: int | None = None,
    thresholds: tuple[float | None, float | None] = (None, None),
) -> ReplayReport:
    """Replay logged rows through both models; compare scores, decisions and latency.

    ``thresholds`` are the operating thresholds of the candidate and of production (as
    registered); ``None`` takes the one in the model's ``mooring.json``.
    """
    from mooring.errors import DataError
    from mooring.features._inputs import columns_from_table, model_spec, predict_saved_model

    rows = table.num_rows
    columns = {}
    for label, model in (("candidate", candidate), ("production", production)):
        try:
            columns[label] = columns_from_table(table, model_spec(model))
        except DataError as exc:
            return ReplayReport(
                status="skipped",
                message=f"the {label} needs inputs the log does not hold: {exc}",
                rows=rows,
            )
    cand_cols, prod_cols = columns["candidate"], columns["production"]

    timings: dict[str, float] = {}
    outputs: dict[str, dict[str, Any]] = {}
    for label, model, cols in (
        ("production", production, prod_cols),
        ("candidate", candidate, cand_cols),
    ):
        predict_saved_model(model, {k: v[:1] for k, v in cols.items()})  # traces; not timed
        cpu = time.process_time()
        outputs[label] = predict_saved_model(model, cols)
        timings[label] = (time.process_time() - cpu) / max(rows, 1) * 1000.0

    cand_score = _score(candidate, outputs["candidate"])
    prod_score = _score(production, outputs["production"])
    diff = np.abs(cand_score - prod_score)
    if diff.ndim == 2:
        diff = diff.max(axis=1)
    report = ReplayReport(
        status="compared",
        message=f"{rows} logged rows replayed on the candidate and on production",
        rows=rows,
        mean_abs_diff=float(diff.mean()) if rows else 0.0,
        p99_abs_diff=float(np.percentile(diff, 99)) if rows else 0.0,
        max_abs_diff=float(diff.max()) if rows else 0.0,
        cpu_seconds_per_1000=timings,
    )
    cand_decision = _decision(candidate, outputs["candidate"], thresholds[0])
    prod_decision = _decision(production, outputs["production"], thresholds[1])
    if cand_decision is not None and prod_decision is not None:
        flips = int((cand_decision != prod_decision).sum())
        report.flips = flips
        report.flip_rate = flips / rows if rows else 0.0

    # Does production, in process, reproduce what it answered in serving?
    output = "probabilities" if production.task != "regression" else "value"
    logged = output_column(output)
    if logged in table.column_names and MODEL_VERSION in table.column_names:
        versions = np.asarray(table.column(MODEL_VERSION).to_numpy(zero_copy_only=False))
        mask = versions == production_version if production_version is not None else None
        if mask is not None and mask.any():
            values = table.column(logged).to_pylist()
            chosen = [values[i] for i in np.flatnonzero(mask)]
            logged_arr = np.asarray(chosen, dtype=np.float64)
            ours = np.asarray(
                outputs["production"][output],
                dtype=np.float64,
            )[mask]
            report.logged_max_abs_diff = float(np.abs(logged_arr.reshape(ours.shape) - ours).max())

    groups = _requests(table)[: config.replay_latency_requests]
    latency: dict[str, list[float]] = {"production": [], "candidate": []}
    for number, index in enumerate(groups):
        pairs = [("production", production, prod_cols), ("candidate", candidate, cand_cols)]
        if number % 2:
            pairs.reverse()  # alternate the order so neither model always runs warm
        for label, model, cols in pairs:
            feed = {k: v[index] for k, v in cols.items()}
            start = time.perf_counter()
            predict_saved_model(model, feed)
            latency[label].append(time.perf_counter() - start)
    report.requests = len(_requests(table))
    report.latency_ms = {k: _percentiles(v) for k, v in latency.items() if v}
    if report.latency_ms:
        prod_p95 = report.latency_ms["production"]["p95"]
        report.latency_ratio_p95 = report.latency_ms["candidate"]["p95"] / prod_p95
    for gate in (
        _gate("flip_rate", report.flip_rate, config.replay_max_flip_rate),
        _gate("mean_abs_diff", report.mean_abs_diff, config.replay_max_mean_abs_diff),
        _gate("latency_ratio_p95", report.latency_ratio_p95, config.replay_max_latency_ratio),
    ):
        if gate is not None:
            report.gates.append(gate)
    return report
