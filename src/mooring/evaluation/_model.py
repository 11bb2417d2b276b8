"""Evaluate an exported model on a table: predict, encode labels, score, gate, save.

This is the glue between the array-based core (:func:`mooring.evaluation._evaluate`)
and a model folder written by the training layer (SavedModel + ``mooring.json``).
TensorFlow is imported only when a model is actually loaded (by the one loader,
:func:`mooring.formats._model.load_saved_model`).

Examples:
    >>> run = evaluate_model_dir(cfg, "runs/income/model", table,
    ...                          baseline_dir="models/production")  # doctest: +SKIP
    >>> run.decision.blessed, run.folder  # doctest: +SKIP
    (True, PosixPath('.mooring/reports/evaluation-20240501T120000Z'))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa

from mooring.config import MooringConfig
from mooring.errors import DataError, UsageError
from mooring.evaluation._compare import compare
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import Waiver, decide
from mooring.evaluation._metrics import Task
from mooring.evaluation._result import EvaluationResult, Prior, RenderEvaluation
from mooring.features._inputs import predict_saved_model
from mooring.formats._gate import DecisionRecord
from mooring.formats._model import SavedModelFolder, load_saved_model

__all__ = [
    "EvaluationRun",
    "attribution_summary",
    "evaluate_loaded_model",
    "evaluate_model_dir",
    "model_summary",
    "training_prior",
]

#: Where the pipeline caches the training data's statistics under ``[project] home``
#: (:meth:`mooring.pipeline._workspace.Workspace.statistics`).
TRAIN_STATISTICS = Path("statistics") / "train.json"


@dataclass
class EvaluationRun:
    """A candidate's evaluation, the baseline's (if any), the decision and the report folder."""

    result: EvaluationResult
    baseline: EvaluationResult | None
    decision: DecisionRecord
    folder: Path | None


def _labels(
    model: SavedModelFolder, table: pa.Table
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Encoded labels and the mask of rows that have one."""
    encoding = model.label
    if encoding.column not in table.column_names:
        raise DataError(
            f"the evaluation data has no label column '{encoding.column}' (columns: "
            f"{', '.join(table.column_names)}); evaluate on labelled data"
        )
    targets, _ = encoding.encode(table.column(encoding.column))
    present = targets >= 0 if encoding.is_classification else ~np.isnan(targets)
    return targets, present


def _training_label(model: SavedModelFolder, home: Path) -> Any | None:
    """The label column's statistics from the training data this model was trained on.

    The pipeline caches the train file's statistics under home; they are the model's
    only when their fingerprint is the one ``mooring.json`` records (``statistics_hash``),
    so a later train file, or a model trained elsewhere, is never mistaken for it.
    """
    from mooring.contract._statistics import DatasetStatistics

    recorded = model.metadata.get("statistics_hash")
    path = home / TRAIN_STATISTICS
    if not recorded or not path.is_file():
        return None
    try:
        stats = DatasetStatistics.load(path)
    except (OSError, ValueError, KeyError, DataError):
        return None
    if stats.fingerprint() != recorded or model.label.column not in stats.columns:
        return None
    return stats.columns[model.label.column]


def training_prior(model: SavedModelFolder, home: Path) -> Prior | None:
    """The training label's class frequencies (classification) or mean (regression).

    Read from the training data's statistics when they are the model's (see
    :func:`_training_label`); a regression's mean also from ``mooring.json``'s label
    encoding, which training standardised the label with. ``None`` when neither says (an
    imported model, a label of integer classes beyond two): the prior gate then falls
    back to the evaluated rows and says so.

    >>> training_prior(load_saved_model("runs/x/model"), Path(".mooring"))  # doctest: +SKIP
    Prior(source="the training data's statistics", frequencies=(0.83, 0.17), mean=None)
    """
    label = model.label
    column = _training_label(model, home)
    source = "the training data's statistics"
    if label.task == "regression":
        if column is not None and column.numeric is not None and column.numeric.count > 0:
            return Prior(source, mean=float(column.numeric.mean))
        recorded = model.metadata.get("label")
        if model.kind != "imported" and isinstance(recorded, dict) and "mean" in recorded:
            return Prior("the model's label encoding (mooring.json)", mean=float(label.mean))
        return None
    vocabulary = list(model.label_vocabulary or label.vocabulary)
    if column is None or not vocabulary:
        return None
    counts: list[float] | None = None
    if column.strings is not None and column.strings.count > 0:
        found = column.strings.frequencies.counts
        counts = [float(found.get(v, 0)) for v in vocabulary]
    elif column.numeric is not None and column.numeric.count > 0 and len(vocabulary) == 2:
        # Two integer classes lo and lo + 1: the mean says the share of lo + 1 exactly.
        low, high = column.numeric.min, column.numeric.max
        names = {str(int(low)), str(int(high))}
        if high - low == 1 and set(vocabulary) == names:
            upper = float(column.numeric.mean - low)
            counts = [upper if v == str(int(high)) else 1.0 - upper for v in vocabulary]
    if counts is None or sum(counts) <= 0:
        return None
    total = sum(counts)
    return Prior(source, frequencies=tuple(c / total for c in counts))


def evaluate_loaded_model(
    model: SavedModelFolder,
    table: pa.Table,
    config: MooringConfig,
) -> EvaluationResult:
    """Predict with ``model`` on ``table`` and evaluate against its label column.

    Rows without a label are left out, with a warning in the result.
    """
    targets, present = _labels(model, table)
    if not present.any():
        raise DataError("no evaluation row has a label; evaluate on labelled data")
    missing = int((~present).sum())
    if missing:
        table = table.filter(pa.array(present))
        targets = targets[present]
    outputs = predict_saved_model(model, table)
    if model.task not in ("binary", "multiclass", "regression"):
        raise UsageError(f"model task {model.task!r} is not one mooring can evaluate")
    task = cast(Task, model.task)
    vocabulary = model.label_vocabulary or None
    result = evaluate(
        task=task,
        labels=targets,
        probabilities=outputs.get("probabilities"),
        values=outputs.get("value"),
        table=table,
        config=config.evaluation,
        label_vocabulary=vocabulary if task != "regression" else None,
        timestamp_column=config.data.timestamp,
        prior=training_prior(model, config.home),
    )
    if missing:
        result.warnings.append(f"{missing} evaluation rows have no label and were left out")
    result.model = model_summary(model)
    label = model.label.column
    result.features = table.drop_columns([label]) if label in table.column_names else table
    return result


def model_summary(model: SavedModelFolder) -> dict[str, Any]:
    """What a report says about the model: its kind and, for trees, the importances."""
    summary: dict[str, Any] = {"kind": model.kind}
    for key in ("trees", "feature_importances"):
        if model.metadata.get(key) is not None:
            summary[key] = model.metadata[key]
    return summary


def attribution_summary(model: SavedModelFolder, table: pa.Table) -> dict[str, Any] | None:
    """Each column's mean absolute attribution over a seeded sample of the rows of
    ``table``, with what is explained; ``None`` for a model without an explanation
    (an export from before explanations, an imported model).

    The columns are ranked by how far, on average, they move a prediction away from
    the baseline's (:func:`mooring.explain.mean_abs_attribution`).
    """
    from mooring.errors import MooringError
    from mooring.explain import mean_abs_attribution
    from mooring.explain._explainers import explainer_for
    from mooring.explain._explanation import sample_rows

    if model.kind == "imported" or not model.columnar or table.num_rows == 0:
        return None
    missing = [name for name in model.inputs if name not in table.column_names]
    if missing:
        return None
    sample = sample_rows(table)
    rows = sample.num_rows
    try:
        explanation = explainer_for(model).explain(
            {name: sample.column(name).to_pylist() for name in model.inputs}
        )
    except MooringError:  # no explanation (old export, no trees extra): no section
        return None
    return {
        "method": explanation.method,
        "output": explanation.output,
        "unit": explanation.unit,
        "rows": rows,
        "mean_abs_attribution": mean_abs_attribution(explanation),
        # Signed, with the mean output they sum to (less the baseline): what a drifted
        # window's attributions are set against (mooring.monitoring._attribution_shift).
        "mean_attribution": dict(
            zip(explanation.columns, explanation.attributions.mean(axis=0).tolist(), strict=True)
        ),
        "sd_attribution": dict(
            zip(
                explanation.columns,
                explanation.attributions.std(axis=0, ddof=1 if rows > 1 else 0).tolist(),
                strict=True,
            )
        ),
        "mean_explained": float(explanation.explained.mean()),
        "completeness_error": explanation.completeness_error(),
    }


def evaluate_model_dir(
    config: MooringConfig,
    model_dir: str | Path,
    table: pa.Table,
    *,
    baseline_dir: str | Path | None = None,
    out: str | Path | None = None,
    html: RenderEvaluation | None = None,
    waiver: Waiver | None = None,
) -> EvaluationRun:
    """Evaluate a model folder (and the production model, when given) and save the report.

    ``waiver`` waives the failed gates that compare with production (:class:`Waiver`).

    The report goes to ``out`` or ``<home>/reports/evaluation-<UTC time>``: ``report.json``,
    and ``report.html`` when ``html`` renders it (the dashboard's ``render_evaluation_html``).
    """
    loaded = load_saved_model(model_dir)
    candidate = evaluate_loaded_model(loaded, table, config)
    attributions = attribution_summary(loaded, table)
    if attributions is not None:
        candidate.model["attributions"] = attributions
    baseline = None
    if baseline_dir is not None:
        baseline = evaluate_loaded_model(load_saved_model(baseline_dir), table, config)
        compare(candidate, baseline)
    decision = decide(candidate, baseline=baseline, waiver=waiver)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(out) if out is not None else config.home / "reports" / f"evaluation-{stamp}"
    candidate.save(folder, decision, html=html)
    return EvaluationRun(candidate, baseline, decision, folder)
