"""Step 6, replay: recent production traffic through the candidate and production, compared.

Skipped for the first model, when ``[pipeline] replay = false``, or when the candidate
already is production. A failed replay gate stops the run before anything is deployed.
"""

from __future__ import annotations

from mooring.pipeline._context import RejectedError, RunContext
from mooring.pipeline._fingerprint import digest
from mooring.pipeline._record import StepRecord
from mooring.pipeline._replay import ReplayReport, read_prediction_tail, replay

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
    report = replay(
        candidate,
        current,
        table,
        settings,
        production_version=production,
        thresholds=(_threshold(ctx, version), _threshold(ctx, production)),
    )
    report.log = {"url": url, "rows": table.num_rows}
    if report.status == "compared":
        record.message = (
            f"{report.rows} rows: mean |Δscore| {report.mean_abs_diff:.4g}, "
            + (f"flip rate {report.flip_rate:.2%}, " if report.flip_rate is not None else "")
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
