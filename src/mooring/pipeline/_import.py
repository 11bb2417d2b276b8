"""``mooring models import``: a model built elsewhere, registered as an unevaluated version.

:func:`import_version` writes the model as a mooring model folder
(:func:`mooring.training._import.import_model`: a SavedModel folder or a ``.keras``
file, one signature checked and probed) in a temporary folder and registers it with
:meth:`Registry.register <mooring.registry.Registry.register>`: no gate decision, so
the version is not blessed and deploying it needs ``force`` and a reason. Its lineage
says where it came from (path, format, sha256, signature), who imported it and why;
its model card is rendered by the dashboard's renderer. When anything fails, the
registry is as it was: no version and no stored file.

Examples:
    >>> with Registry.open("sqlite:///.mooring/registry.db") as registry:  # doctest: +SKIP
    ...     mv = import_version(registry, "income", Path("exported"), reason="research model")
    >>> mv.gate is None  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mooring.config import MooringConfig
from mooring.contract._statistics import compute_statistics
from mooring.errors import DataError, MooringError, NotFoundError, UsageError
from mooring.formats._labels import LabelEncoding
from mooring.formats._lineage import Lineage
from mooring.formats._model import SIGNATURE
from mooring.formats._version_record import References, RunRecord, VersionRecord
from mooring.registry import ModelVersion, Registry
from mooring.registry._judged import register_judged
from mooring.registry._names import check_model_name
from mooring.registry._provenance import default_actor
from mooring.training._import import ImportedModel, Limits, import_model

if TYPE_CHECKING:
    from mooring.evaluation._result import EvaluationResult
    from mooring.formats._model import SavedModelFolder

__all__ = ["default_config", "evaluated_import", "import_version", "imported_record"]

log = logging.getLogger("mooring.pipeline")

_FORMATS = {"saved_model": "SavedModel folder", "keras": ".keras file", "ydf": "YDF model folder"}


def import_version(  # noqa: PLR0913 - keyword-only options of `mooring models import`
    registry: Registry,
    name: str,
    path: str | Path,
    *,
    signature: str = SIGNATURE,
    task: str | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    reason: str | None = None,
    actor: str | None = None,
    output: str | None = None,
    data: str | Path | None = None,
    config: MooringConfig | None = None,
    classes: Sequence[str] | None = None,
    allowed_ops: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    allows_missing: Sequence[str] = (),
) -> ModelVersion:
    """Register the model at ``path`` as the next version of ``name``.

    ``allowed_ops`` (``{op: reason}``) admits ops the vetting refuses; they are recorded
    in ``mooring.json``, the lineage and the audit event's reason. ``limits`` holds the
    child process of the first load and call (:func:`import_model`). ``allows_missing``
    names the float inputs the model takes NaN in as missing (others refuse null/NaN).

    Without ``data`` it is registered unevaluated. With labelled ``data`` (the label
    column is ``config.data.label``) it is evaluated as a trained model is
    (:func:`evaluated_import`) and registered with that evaluation's gate decision:
    blessed when the gates pass. ``output`` names the output holding the scores (the
    probabilities, or the value of a regression) where the model has several.

    Raises:
        UsageError: a bad name, task, output or input shape.
        NotFoundError: nothing at ``path``.
        ModelLoadError: not a model, no such signature, or one mooring cannot serve.
        DataError: ``data`` that does not fit the model or its label.
    """
    from mooring.dashboard._card import render_model_card

    check_model_name(name)
    who = actor or default_actor()
    with tempfile.TemporaryDirectory(prefix="mooring-import-") as work:
        imported = import_model(
            path,
            Path(work) / "model",
            signature=signature,
            task=task,
            input_shapes=input_shapes,
            allowed_ops=allowed_ops,
            limits=limits,
            allows_missing=allows_missing,
        )
        if output is not None:
            imported = _with_output(imported, output)
        record = imported_record(imported, actor=who, reason=reason)
        if allowed_ops:
            reason = f"{reason} (ops admitted: {', '.join(sorted(allowed_ops))})"
        if data is None:
            return registry.register(
                name,
                imported.folder,
                record,
                reason=reason or f"imported from {imported.source.path}",
                render_card=render_model_card,
                created_by=who,
            )
        cfg = config if config is not None else default_config(name, data)
        imported = with_explain_baseline(imported, data, cfg)
        evaluated, _ = evaluated_import(registry, name, imported, data, config=cfg, classes=classes)
        judged = _merged(record, evaluated, production_of(registry, name))
        return register_judged(
            registry,
            name,
            imported.folder,
            judged,
            reason=reason or f"imported from {imported.source.path}, evaluated on {data}",
            render_card=render_model_card,
            created_by=who,
        )


def with_explain_baseline(
    imported: ImportedModel, data: str | Path, cfg: MooringConfig
) -> ImportedModel:
    """``mooring.json``'s ``explain.baseline``: each float ``[None]`` input's mean in
    ``data`` (zeros otherwise); and, when every input of the model is such a column of
    ``data``, ``explain.reference``: a seeded sample of its complete rows, the background
    the integrated gradients start from (each row's attributions then sum to its output
    less the mean output over those rows, as a network's do).

    An input ``data`` lacks, or holds no numbers for, keeps the zero baseline.
    """
    import pyarrow.compute as pc

    from mooring.contract._io import ReadOptions, read_table
    from mooring.formats._model import write_metadata

    inputs = imported.metadata.get("signature", {}).get("inputs", {})
    wanted = [
        name
        for name, entry in inputs.items()
        if str(entry.get("dtype", "")).startswith("float")
        and list(entry.get("shape", [])) == [None]
    ]
    if not wanted:
        return imported
    table = read_table(Path(data), ReadOptions.from_config(cfg.data))
    baseline: dict[str, float] = {}
    for name in wanted:
        if name not in table.column_names:
            continue
        column = table.column(name)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            continue
        mean = pc.mean(column).as_py()
        if mean is not None:
            baseline[name] = float(mean)
    if not baseline:
        return imported
    explain: dict[str, Any] = {
        "method": "integrated_gradients",
        "baseline": baseline,
        "baseline_from": str(data),
    }
    if set(baseline) == set(inputs):
        explain["reference"] = _reference_rows(table.select(list(baseline)), data)
    metadata = {**imported.metadata, "explain": explain}
    write_metadata(imported.folder, metadata)
    return dataclasses.replace(imported, metadata=metadata)


def _reference_rows(table: pa.Table, data: str | Path) -> dict[str, Any]:
    """A seeded sample of the complete rows of ``table`` (as many as a network's
    background holds): an imported model's explanation background."""
    import pyarrow.compute as pc

    from mooring.training._explain import reference_sample

    valid = [pc.is_valid(table.column(n)) for n in table.column_names]
    complete = table.filter(functools.reduce(pc.and_, valid))
    columns = {n: complete.column(n).to_numpy().astype(np.float64) for n in complete.column_names}
    rows = reference_sample(columns, seed=0)
    return {
        "rows": len(next(iter(rows.values()))),
        "from": f"rows of {Path(data).name} (a seeded sample)",
        "values": {n: [float(v) for v in values] for n, values in rows.items()},
    }


def default_config(name: str, data: str | Path, label: str | None = None) -> MooringConfig:
    """The settings of an import outside a project: defaults, ``data`` as the eval data."""
    return MooringConfig.model_validate(
        {"project": {"name": name}, "data": {"train": str(data), "eval": str(data), "label": label}}
    )


def _with_output(imported: ImportedModel, output: str) -> ImportedModel:
    """``roles`` naming ``output`` as the one holding the scores."""
    from mooring.formats._model import PROBABILITIES, VALUE, write_metadata

    outputs = imported.metadata["signature"]["outputs"]
    if output not in outputs:
        raise UsageError(
            f"--output {output!r} is not an output of the model; its outputs: " + ", ".join(outputs)
        )
    role = VALUE if imported.metadata.get("task") == "regression" else PROBABILITIES
    metadata = {**imported.metadata, "roles": {role: output}}
    write_metadata(imported.folder, metadata)
    return dataclasses.replace(imported, metadata=metadata)


def _merged(record: VersionRecord, evaluated: VersionRecord, parent: int | None) -> VersionRecord:
    """The import's record with its evaluation: lineage joined, the rest the evaluation's."""
    run = dataclasses.replace(evaluated.run, extra={**record.run.extra, **evaluated.run.extra})
    evaluated_lineage = Lineage.read(evaluated.lineage)
    limitations = tuple(
        line
        for line in record.limitations or ()
        if not line.startswith(("Unevaluated", "No training"))
    )
    return dataclasses.replace(
        record,
        lineage=Lineage.read(record.lineage).merged(evaluated_lineage),
        metrics=evaluated.metrics,
        gate=evaluated.gate,
        statistics=evaluated.statistics,
        run=run,
        parent_version=parent,
        description=(record.description or "").replace(
            "mooring did not train or evaluate it: no gate has judged it, so deploying it needs "
            "--force and a reason.",
            "mooring did not train it; it was evaluated, and gated, on "
            f"'{evaluated_lineage.eval_data}'.",
        ),
        limitations=(
            *limitations,
            "Its references (drift, outputs, metrics) come from its evaluation data, "
            "not from its training data, which mooring has not seen.",
        ),
    )


def imported_record(imported: ImportedModel, *, actor: str, reason: str | None) -> VersionRecord:
    """The registration of an imported folder: lineage, run record, the card's texts."""
    source = imported.source
    metadata = imported.metadata
    signature = metadata["source"]["signature"]
    task = metadata.get("task")
    inputs = sorted(metadata["signature"]["inputs"])
    lineage = Lineage.of(
        origin="imported",
        source_path=str(source.path),
        source_format=source.format,
        source_sha256=source.sha256,
        signature=signature,
        actor=actor,
        reason=reason,
        task=task,
        allowed_ops=tuple(metadata.get("allowed_ops") or ()),
    )
    shown = ", ".join(inputs[:12]) + (f" and {len(inputs) - 12} more" if len(inputs) > 12 else "")
    return VersionRecord(
        lineage=lineage,
        params={"kind": "imported"},
        run=RunRecord(kind="imported", task=task, extra={"signature": metadata["signature"]}),
        description=(
            f"Imported by {actor} from the {_FORMATS[source.format]} '{source.path}' "
            f"(sha256 {source.sha256}), signature '{signature}'. mooring did not train or "
            "evaluate it: no gate has judged it, so deploying it needs --force and a reason."
        ),
        intended_use=(
            f"Scores requests with the inputs of its signature ({shown or 'none'}). What it "
            "was built for, and on which data, is not recorded here: ask the team that built it."
        ),
        limitations=(
            "Trained outside mooring: its training data, features and evaluation are unknown here.",
            "Unevaluated: measure it on data you trust before it takes traffic.",
            "No training statistics are stored with it, so drift has no training baseline.",
        ),
    )


def evaluated_import(
    registry: Registry,
    name: str,
    imported: ImportedModel,
    data: str | Path,
    *,
    config: MooringConfig,
    classes: Sequence[str] | None = None,
) -> tuple[VersionRecord, Path]:
    """Evaluate an imported folder on labelled ``data`` as a trained model is evaluated.

    The label encoding (``--classes`` in the order of the model's probability columns,
    else the label's distinct values sorted; binary: ``[negative, positive]``) is written
    into the folder's ``mooring.json``; the project's contract, when it has one and the
    model's inputs are its columns, is checked on the data; then the metrics with their
    intervals, slices, calibration and the gates (against production, evaluated on the
    same rows, when there is one), the report, and the references drift and the
    guardrails judge the version by (statistics of the data's inputs, tensors as their
    per-row summaries, and of the outputs). Returns the record (with the gate decision)
    and the report folder.

    Raises:
        UsageError: no ``task``, or no output holds the scores (``roles``).
        DataError: no label column, a label the classes do not hold, data that does
            not fit the inputs, or data the project's contract refuses.
    """
    from mooring.contract._io import ReadOptions, read_table
    from mooring.dashboard._evaluation_report import render_evaluation_html
    from mooring.evaluation._compare import compare
    from mooring.evaluation._gates import decide
    from mooring.evaluation._model import evaluate_loaded_model
    from mooring.formats._files import file_fingerprint
    from mooring.formats._model import load_saved_model, write_metadata
    from mooring.monitoring._baselines import evaluation_outputs, freeze_references
    from mooring.monitoring._estimate import reference_of

    metadata = dict(imported.metadata)
    task = metadata.get("task")
    if task not in ("binary", "multiclass", "regression"):
        raise UsageError(
            f"--data evaluates the model, which needs its task: pass --task binary, "
            f"multiclass or regression (got {task!r})"
        )
    if not metadata.get("roles"):
        outputs = ", ".join(metadata["signature"]["outputs"])
        raise UsageError(
            f"--data evaluates the model, but none of its outputs ({outputs}) is known to hold "
            "the scores: name it with --output NAME (a float output: probabilities, or the "
            "value for regression)"
        )
    table = read_table(str(data), ReadOptions.from_config(config.data))
    label = config.data.label
    if not label or label not in table.column_names:
        raise DataError(
            f"the data '{data}' has no label column {label!r} (columns: "
            f"{', '.join(table.column_names)}); pass --label COLUMN"
        )
    encoding = _encoding(task, table.column(label), label, classes, config.data.positive)
    metadata.update(label=encoding.to_dict(), label_vocabulary=list(encoding.vocabulary))
    metadata.setdefault("threshold", 0.5)
    write_metadata(imported.folder, metadata)
    _check_contract(config, table, metadata)
    model = load_saved_model(imported.folder, warn=False)
    result = evaluate_loaded_model(model, table, config)
    result.model = {"kind": "imported"}
    baseline, baseline_version = _production(registry, name, table, config)
    if baseline is not None:
        compare(result, baseline)
    decision = decide(result, baseline=baseline)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = config.home / "reports" / f"import-{name}-{stamp}"
    result.save(folder, decision, html=render_evaluation_html)
    numbers = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    inputs = _input_table(model, table, label)
    statistics = compute_statistics(inputs)
    fingerprint = file_fingerprint(str(data))
    references = freeze_references(
        config,
        train_table=inputs,
        train_statistics=statistics,
        outputs=evaluation_outputs(result.task, result.predictions, result.label_vocabulary),
        metrics=numbers,
        eval_data=str(data),
        eval_fingerprint=fingerprint,
        eval_rows=result.rows,
        baseline=None
        if baseline is None
        else {"version": baseline_version, "metrics": _numbers(baseline)},
        estimation=reference_of(result, baseline, baseline_version),
    )
    record = VersionRecord(
        lineage=Lineage.of(eval_data=str(data), eval_fingerprint=fingerprint, label=label),
        metrics=numbers,
        gate=decision,
        statistics=statistics.to_dict(),
        run=RunRecord(
            kind="imported",
            task=task,
            threshold=result.operating_threshold,
            threshold_source=result.threshold_source,
            evaluation_report=str(folder),
            references=References.read(references),
        ),
    )
    return record, folder


def _encoding(
    task: str,
    column: pa.ChunkedArray,
    label: str,
    classes: Sequence[str] | None,
    positive: str | None,
) -> LabelEncoding:
    """How the data's labels map to the model's outputs: ``classes`` in the order of its
    probability columns, else the distinct labels sorted (``positive`` last, binary)."""
    import pyarrow.compute as pc

    if task == "regression":
        values = np.asarray(
            pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        present = values[~np.isnan(values)]
        return LabelEncoding(
            column=label,
            task=task,
            mean=float(present.mean()) if present.size else 0.0,
            std=float(present.std()) if present.size else 1.0,
        )
    text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    if pa.types.is_floating(column.type):
        text = pc.cast(pc.cast(column, pa.int64()), pa.string())
    seen = sorted(str(v) for v in pc.unique(text.drop_null()).to_pylist())
    vocabulary = list(classes) if classes else seen
    if task == "binary" and not classes and positive is not None and positive in vocabulary:
        vocabulary = [v for v in vocabulary if v != positive] + [positive]
    if task == "binary" and len(vocabulary) != 2:
        where = "--classes names" if classes else f"label {label!r} holds"
        raise DataError(
            f"{where} {len(vocabulary)} classes ({vocabulary[:5]}), a binary task two; "
            "pass --classes NEGATIVE,POSITIVE or --task multiclass"
        )
    unknown = sorted(set(seen) - set(vocabulary))
    if unknown:
        raise DataError(
            f"label {label!r} holds {unknown[:5]}, which --classes {vocabulary} does not name; "
            "list every class, in the order of the model's probability columns"
        )
    return LabelEncoding(
        column=label,
        task=task,
        vocabulary=tuple(vocabulary),
        positive=vocabulary[-1] if task == "binary" else None,
    )


def _check_contract(config: MooringConfig, table: pa.Table, metadata: Mapping[str, Any]) -> None:
    """The project's contract on the data, when the model's inputs are its columns."""
    from mooring.contract._io import ReadOptions
    from mooring.contract._validation import validate
    from mooring.pipeline._contracts import project_contract

    schema = project_contract(config) if config.root is not None else None
    if schema is None:
        return
    inputs = set(metadata["signature"]["inputs"])
    if not inputs <= set(schema.columns):
        return  # not a tabular model of this project's columns: the contract does not apply
    result = validate(
        table, schema, options=ReadOptions.from_config(config.data), contract=config.contract
    )
    if not result.ok:
        shown = "; ".join(f"{a.column}: {a.message}" for a in result.errors[:5])
        raise DataError(
            f"the data breaks the project's contract ({len(result.errors)} error(s)): {shown}; "
            "fix the data, or accept a new contract (`mooring contract accept`)"
        )


def _production(
    registry: Registry, name: str, table: pa.Table, config: MooringConfig
) -> tuple[EvaluationResult | None, int | None]:
    """Production evaluated on the same rows, when it takes them; else (None, None)."""
    from mooring.evaluation._model import evaluate_loaded_model
    from mooring.formats._model import load_saved_model

    production = production_of(registry, name)
    if production is None:
        return None, None
    try:
        folder = registry.load(name, version=production)
        result = evaluate_loaded_model(load_saved_model(folder, warn=False), table, config)
    except MooringError as exc:
        log.warning(
            "production %s@%s not evaluated on the import's data: %s", name, production, exc
        )
        return None, None
    return result, production


def _input_table(model: SavedModelFolder, table: pa.Table, label: str) -> pa.Table:
    """The model's inputs as the server logs them (tensors as per-row summaries), and the
    label: what the version's drift baseline is computed on."""
    from mooring.features._inputs import table_inputs
    from mooring.formats._tensors import summarize_tensors

    if model.columnar:
        keep = [c for c in (*model.inputs, label) if c in table.column_names]
        return table.select(keep)
    summary = summarize_tensors(table_inputs(model, table))
    columns = {k: pa.array(np.asarray(v).tolist()) for k, v in summary.items()}
    columns[label] = table.column(label)
    return pa.table(columns)


def production_of(registry: Registry, name: str) -> int | None:
    """``name``'s production version; None when it has none (or is not registered yet)."""
    try:
        return registry.deployment(name).production
    except NotFoundError:
        return None


def _numbers(result: EvaluationResult) -> dict[str, float]:
    return {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
