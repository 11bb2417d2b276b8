"""Two checks against a model judged on what it should not see: train = eval, and a leak.

:func:`refuse_overlap` (the validate step, before anything trains): evaluation data that
is the training file (the same sha256), or shares more of its rows with it than
:data:`~mooring.contract._overlap.OVERLAP_SHARE` beyond what repeats by chance
(:func:`~mooring.contract._overlap.row_overlap`), stops the run with the files, the hash
or the count and share of the shared rows, and the fix.

:func:`hold_perfect` (the gate step): a blessed model whose evaluation is near-perfect
(R² ≥ :data:`PERFECT`, an AUC ≥ :data:`PERFECT` on at least :data:`PERFECT_MIN_ROWS_AUC`
rows, a multiclass accuracy ≥ :data:`PERFECT` on at least :data:`PERFECT_MIN_ROWS` rows)
is held, not blessed, until someone acknowledges it, with ``[evaluation] accept_perfect =
"reason"`` or ``mooring run --accept-perfect -r REASON``; the acknowledgement is an
``accept_perfect`` audit event with its actor and reason. The message names the metric,
its value, the columns strongest alone on the eval data
(:func:`~mooring.contract._leakage.column_power`) and both ways to acknowledge.

Examples:
    >>> perfect_metric({"auc": 0.9991, "accuracy": 0.99}, rows=500)
    ('auc', 0.9991)
    >>> perfect_metric({"r2": 0.62}, rows=500) is None
    True
    >>> perfect_metric({"auc": 1.0}, rows=12) is None  # a few rows ranked right by chance
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mooring.pipeline._context import RejectedError, RunContext
from mooring.pipeline._outputs import EvaluateOutput
from mooring.pipeline._workspace import Workspace

__all__ = [
    "PERFECT",
    "PERFECT_MIN_ROWS",
    "PERFECT_MIN_ROWS_AUC",
    "hold_perfect",
    "perfect_metric",
    "refuse_overlap",
]

#: An evaluation at least this good is held until acknowledged.
PERFECT = 0.995
#: A multiclass accuracy of 1.0 on fewer rows is no evidence (0 errors in 600: < 0.5%).
PERFECT_MIN_ROWS = 600
#: An AUC of 1.0 on fewer rows is within the noise of a strong honest model (on 100 rows
#: of 10% positives, an AUC of 0.97 has a standard error of about 0.03).
PERFECT_MIN_ROWS_AUC = 100
#: The audit action of an acknowledged near-perfect evaluation.
ACCEPT_PERFECT = "accept_perfect"
#: The metric judged near-perfect, in order (binary's AUC before its accuracy).
_PERFECT_METRICS = ("auc", "r2", "accuracy")
_SHOWN = {"auc": "AUC", "r2": "R²", "accuracy": "accuracy"}


def refuse_overlap(ws: Workspace) -> dict[str, Any] | None:
    """Stop the run (``RejectedError``) when the eval data is the training data or shares
    too many of its rows; else the overlap measured (``None`` without eval data)."""
    from mooring.contract._io import read_table
    from mooring.contract._overlap import OVERLAP_SHARE, file_overlap
    from mooring.errors import MooringError

    if ws.config.data.eval is None:
        return None
    train_path, eval_path = ws.data_path("train"), ws.data_path("eval")
    sha = ws.data_fingerprint("train")
    fix = (
        "evaluate on rows the model never trains on: point [data] eval at a held-out file "
        "(`mooring init DATA` holds out 20% of a file), or train with --train-data on "
        "data without the eval rows"
    )
    if sha == ws.data_fingerprint("eval"):
        raise RejectedError(
            f"train = eval: the training data '{train_path}' and the eval data '{eval_path}' "
            f"are the same file (sha256 {sha[:16]}…): every metric would measure memory, "
            f"not the model; nothing was trained; {fix}"
        )
    options = ws.read_options
    try:
        found = file_overlap(train_path, options, read_table(eval_path, options))
    except MooringError:
        return None  # a file that cannot be read: the contract's check says why

    if found.refused:
        raise RejectedError(
            f"train and eval overlap: {found.shared:,} of the {found.eval_rows:,} rows of "
            f"'{eval_path}' ({found.share:.1%}) are rows of the training data '{train_path}' "
            f"(all {len(found.columns)} shared columns equal; at most {OVERLAP_SHARE:.0%} is "
            f"allowed, and rows repeat {found.natural:.1%} of the time within the training "
            f"data): the evaluation would measure memory; nothing was trained; {fix}"
        )
    return found.to_dict()


def perfect_metric(metrics: Mapping[str, float], *, rows: int | None) -> tuple[str, float] | None:
    """The near-perfect headline metric and its value, or ``None``: AUC (binary, on at
    least :data:`PERFECT_MIN_ROWS_AUC` rows), R² (regression), else accuracy (multiclass,
    on at least :data:`PERFECT_MIN_ROWS` rows)."""
    for name in _PERFECT_METRICS:
        value = metrics.get(name)
        if value is None:
            continue
        if name == "accuracy" and (rows or 0) < PERFECT_MIN_ROWS:
            return None
        if name == "auc" and (rows or 0) < PERFECT_MIN_ROWS_AUC:
            return None
        return (name, float(value)) if value >= PERFECT else None
    return None


def _strongest(ctx: RunContext, metric: str) -> str:
    """The eval data's three columns strongest alone, as a clause ('' when unknown)."""
    from mooring.contract._io import read_table
    from mooring.contract._leakage import column_power, sample_rows
    from mooring.errors import MooringError

    cfg, ws = ctx.config, ctx.workspace
    label = cfg.data.label
    if label is None:
        return ""
    task = {"auc": "binary", "r2": "regression"}.get(metric, "multiclass")
    try:
        table = sample_rows(read_table(ws.data_path("eval"), ws.read_options))
        positive = cfg.data.positive
        if positive is None and task == "binary":  # AUC is the same for either class
            positive = str(next(v for v in table.column(label).to_pylist() if v is not None))
        skip = {*cfg.features.exclude, *([cfg.data.timestamp] if cfg.data.timestamp else [])}
        powers = column_power(table, label, task=task, positive=positive, skip=skip)
    except (MooringError, OSError, ValueError, StopIteration):
        return ""
    if not powers:
        return ""
    shown = ", ".join(p.line() for p in powers[:3])
    return f" (strongest alone on the eval data: {shown})"


def hold_perfect(ctx: RunContext, evaluated: EvaluateOutput) -> str | None:
    """Hold a near-perfect evaluation (``RejectedError``) unless it is acknowledged; the
    acknowledgement is audited once per run. Returns the note for the step's message."""
    found = perfect_metric(evaluated.metrics, rows=evaluated.rows)
    if found is None:
        return None
    metric, value = found
    shown = f"{_SHOWN[metric]} {value:.4f}"
    reason, source = ctx.accept_perfect, "mooring run --accept-perfect"
    if not reason:
        reason, source = ctx.config.evaluation.accept_perfect, "[evaluation] accept_perfect"
    if reason:
        _audit(ctx, metric, value, reason, source)
        return f"near-perfect {shown} acknowledged ({source}: {reason})"
    raise RejectedError(
        f"held, not blessed: {shown} on the eval data is near-perfect (≥ {PERFECT}), which "
        "real data rarely allows: most often a column leaks the label, a copy of it or a "
        "value written after the outcome" + _strongest(ctx, metric) + ", or the eval rows are "
        'training rows. Leave a leaking column out ([features] exclude = ["column"]) and '
        "run again; or, if the model is truly this good, acknowledge it: "
        '[evaluation] accept_perfect = "why" in mooring.toml, or `mooring run '
        '--accept-perfect -r "why"` (audited); nothing was registered'
    )


def _audit(ctx: RunContext, metric: str, value: float, reason: str, source: str) -> None:
    """One ``accept_perfect`` audit event per run: actor, reason, metric and value."""
    from mooring.registry._provenance import default_actor

    registry = ctx.registry
    for event in registry.history(ctx.name):
        if event.action == ACCEPT_PERFECT and (event.after or {}).get("run_id") == ctx.run_id:
            return
    registry.store.record_event(
        action=ACCEPT_PERFECT,
        model=ctx.name,
        actor=default_actor(),
        reason=reason,
        before=None,
        after={"run_id": ctx.run_id, "metric": metric, "value": value, "source": source},
    )
