"""Step 6, replay: recent production traffic through the candidate and production, compared.

Skipped for the first model, when ``[pipeline] replay = false``, or when the candidate
already is production. A failed replay gate stops the run before anything is deployed.
The flip gate judges flips by the labels that arrived for the replayed requests (the
feedback store) and by the candidate's flips against production on its evaluation
data (its report), see :func:`mooring.pipeline._replay.judge_flips`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from mooring.pipeline._context import RejectedError, RunContext
from mooring.pipeline._fingerprint import digest
from mooring.pipeline._record import StepRecord
from mooring.pipeline._replay import ReplayReport, encode_feedback, read_prediction_tail, replay

if TYPE_CHECKING:
    from mooring.formats._model import SavedModelFolder

__all__ = ["run"]


def run(ctx: RunContext, record: StepRecord) -> ReplayReport | None:
    """The replay step."""
    from mooring.formats._model import load_saved_model

    settings = ctx.config.pipeline
    version = ctx.outputs.registered.version
    production, _, _ = ctx.deployment()
    record.inputs = {"candidate": version, "production": production}
    if not settings.replay:
        record.status, record.message = "skipped", "[pipeline] replay = false"
        return None
    if production is None:
        record.status = "skipped"
        record.message = "first model: there is no production version to replay against"
        return None
    if production == version:
        record.status, record.message = "skipped", "the candidate is the production version"
        return None
    gates = settings.model_dump(mode="json", include={"replay_rows", "replay_latency_requests"})
    gates.update(
        {k: v for k, v in settings.model_dump(mode="json").items() if k.startswith("replay_max")}
    )
    record.inputs["settings"] = gates
    record.key = key = digest(record.inputs)
    entry = ctx.reuse(record, "replay", key)
    if entry is not None:
        return ReplayReport.from_dict(entry["outputs"])
    url = ctx.config.serving.log_url or str(ctx.home / "predictions")
    table = read_prediction_tail(url, ctx.name, rows=settings.replay_rows)
    if table is None:
        report = ReplayReport(
            status="no_log",
            message=f"no prediction log yet under {url}: nothing to replay (the server "
            "writes one when [serving] log_sample_rate > 0)",
        )
        record.status, record.message = "done", report.message
        return report
    candidate = load_saved_model(ctx.registry.load(ctx.name, version=version), warn=False)
    current = load_saved_model(ctx.registry.load(ctx.name, version=production), warn=False)
    trained, trained_why = _trained(ctx, production)
    report = replay(
        candidate,
        current,
        table,
        settings,
        production_version=production,
        thresholds=(_threshold(ctx, version), _threshold(ctx, production)),
        labels=_labels(ctx, table, candidate),
        trained=trained,
        trained_why=trained_why,
    )
    report.log = {"url": url, "rows": table.num_rows}
    if report.status == "compared":
        record.message = (
            f"{report.rows} rows: mean |Δscore| {report.mean_abs_diff:.4g}, "
            + (f"flip rate {report.flip_rate:.2%}, " if report.flip_rate is not None else "")
            + (
                f"unexplained {report.unexplained_flip_rate:.2%}, "
                if report.unexplained_flip_rate is not None
                and report.unexplained_flip_rate != report.flip_rate
                else ""
            )
            + (
                f"p95 latency ratio {report.latency_ratio_p95:.2f}"
                if report.latency_ratio_p95 is not None
                else ""
            )
        )
    else:
        record.message = report.message
    if not report.passed:
        record.outputs = report.to_dict()
        shown = "; ".join(g["message"] for g in report.failures)
        raise RejectedError(f"replay test failed: {shown}; nothing was deployed")
    record.status = "done"
    record.reusable = report.status == "compared"
    return report


def _threshold(ctx: RunContext, version: int) -> float | None:
    mv = ctx.version(version)
    return mv.operating_threshold if mv is not None else None


def _labels(
    ctx: RunContext, table: pa.Table, candidate: SavedModelFolder
) -> np.ndarray[Any, Any] | None:
    """Encoded labels of the replayed rows from the feedback store, or ``None``."""
    if candidate.task == "regression":
        return None
    from mooring.formats._feedback import read_feedback

    url = ctx.config.monitoring.feedback_url or str(ctx.home / "feedback")
    return encode_feedback(table, read_feedback(url, ctx.name), candidate.label_vocabulary)


def _trained(ctx: RunContext, production: int) -> tuple[dict[str, Any] | None, str]:
    """The candidate-vs-production comparison on the evaluation data, or (None, why)."""
    evaluated = ctx.outputs.evaluated
    if evaluated.baseline_version != production:
        return None, (
            f"the candidate was evaluated against version {evaluated.baseline_version}, "
            f"not production version {production}"
        )
    path = Path(evaluated.report_json)
    if not path.is_file():
        return None, f"its evaluation report {path} is gone"
    comparison = orjson.loads(path.read_bytes()).get("comparison")
    if not isinstance(comparison, dict):
        return None, "its evaluation recorded no comparison with production"
    return comparison, ""
