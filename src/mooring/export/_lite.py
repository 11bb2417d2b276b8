"""``export_lite``: convert a registered version to TF Lite, check it, gate it, register it.

1. The version's SavedModel is loaded from the registry (verified against its manifest).
2. ``tf.lite.TFLiteConverter`` converts its ``serving_default`` signature
   (:mod:`mooring.export._convert`); int8 ranges are calibrated on a seeded random
   sample of ``[export] representative_rows`` rows of the training data.
3. The LiteRT interpreter runs the export on the labelled evaluation rows; the
   SavedModel runs on the same rows. The evaluation layer scores both.
4. The gate: each gated metric may worsen by at most ``[export] max_metric_drop``
   (default 0.01, one percentage point). A passing export is attached to the
   version in the registry as the artifact ``tflite-<mode>`` (its own sha256, an
   audit event); a failing one is not, and the reason says why and what to try.

Examples:
    >>> from mooring.registry import Registry
    >>> registry = Registry.from_config(cfg)  # doctest: +SKIP
    >>> result = export_lite(registry, "income", version=3, mode="int8", config=cfg)
    ... # doctest: +SKIP
    >>> result.passed, result.deltas["auc"], result.path  # doctest: +SKIP
    (True, -0.0012, PosixPath('.mooring/artifacts/models/income/…/model.tflite'))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import pyarrow as pa

from mooring.config import MooringConfig
from mooring.config._evaluation import BootstrapConfig, EvaluationConfig
from mooring.contract._io import ReadOptions, read_table
from mooring.errors import ConflictError, DataError, NotFoundError, UsageError, import_extra
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._metrics import HIGHER_IS_BETTER, Task
from mooring.export._convert import Conversion, check_mode, convert_saved_model
from mooring.export._data import distinct_rows, sample_rows
from mooring.export._result import AGREEMENT_TOLERANCE, LiteExport
from mooring.export._runtime import LiteModel
from mooring.formats._files import atomic_write, file_fingerprint
from mooring.formats._model import served_bytes
from mooring.registry import ModelVersion, Registry

if TYPE_CHECKING:
    from mooring.features._spec import FeatureSpec
    from mooring.formats._labels import LabelEncoding
    from mooring.formats._model import SavedModelFolder

__all__ = ["DEFAULT_METRICS", "export_lite"]

#: Gated metrics per task when ``[export] metrics`` is not set.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "accuracy"),
    "multiclass": ("accuracy",),
    "regression": ("r2",),
}

Source: TypeAlias = str | os.PathLike[str] | pa.Table


def _resolve(cfg: MooringConfig, value: Source | None, configured: str | None, key: str) -> Any:
    """An explicit table/path, else the [export] setting, else the [data] path."""
    if value is not None:
        return value if isinstance(value, pa.Table) else _path(cfg, str(value))
    if configured is not None:
        return _path(cfg, configured)
    fallback = cfg.data.train if key == "train" else cfg.data.eval
    if fallback is None:
        raise NotFoundError(
            f"no {'evaluation' if key == 'eval' else 'calibration'} data: set [data] {key} "
            f"or [export] {'eval_data' if key == 'eval' else 'calibration_data'} in "
            f"mooring.toml, or pass --{'eval' if key == 'eval' else 'calibration'}-data FILE"
        )
    return _path(cfg, fallback)


def _path(cfg: MooringConfig, value: str) -> str:
    return value if "://" in value else str(cfg.path(value))


def _describe(source: Any) -> str:
    return "<table>" if isinstance(source, pa.Table) else str(source)


def _gated(task: str, configured: list[str] | None) -> tuple[str, ...]:
    names = tuple(configured) if configured else DEFAULT_METRICS[task]
    unknown = [m for m in names if m not in HIGHER_IS_BETTER or m == "flip_rate"]
    if unknown:
        known = ", ".join(m for m in HIGHER_IS_BETTER if m not in ("flip_rate", "mean_abs_diff"))
        raise UsageError(
            f"[export] metrics {unknown} are not metrics mooring computes; use some of {known}"
        )
    return names


def _exportable(mv: ModelVersion, model_dir: Path) -> SavedModelFolder:
    """The version's model, when mooring can convert it and check the export.

    Raises:
        UsageError: a trees model (its ops are not TF Lite's), an imported model without
            the label encoding its ``--data`` import records, or a task mooring cannot score.
    """
    from mooring.formats._model import load_saved_model, read_metadata

    metadata = read_metadata(model_dir, required=False)
    if (metadata.get("kind") or "mlp") == "gbt" or metadata.get("op_libraries"):
        raise UsageError(
            f"{mv.ref} is a gradient boosted trees model (kind = 'gbt'): its inference ops come "
            "from the ydf_tf op library, which TF Lite cannot run, so there is no TF Lite export "
            "of it; serve the SavedModel, or export a kind = 'mlp' or 'linear' version"
        )
    model = load_saved_model(model_dir)
    task = model.task
    imported = "feature_spec" not in model.metadata
    if imported and "label" not in model.metadata:
        raise UsageError(
            f"{mv.ref} was imported without --data, so mooring knows neither its task nor its "
            "labels and cannot check a TF Lite export against it; import it again with --data "
            "FILE --label COLUMN --task TASK to export it through the accuracy gate"
        )
    if task not in DEFAULT_METRICS:
        raise UsageError(f"{mv.ref} has task {task!r}, which mooring cannot evaluate or export")
    return model


@dataclass(frozen=True)
class _Inputs:
    """How a version takes a table: a trained model by its feature spec, an imported one
    by its signature's input names (:func:`~mooring.features._inputs.table_inputs`)."""

    names: list[str]
    dtypes: dict[str, str]
    spec: FeatureSpec | None
    model: SavedModelFolder

    @classmethod
    def of(cls, model: SavedModelFolder) -> _Inputs:
        from mooring.features._inputs import model_spec

        if "feature_spec" not in model.metadata:
            dtypes = {name: info.dtype for name, info in model.inputs.items()}
            return cls(list(model.inputs), dtypes, None, model)
        spec = model_spec(model)
        return cls(list(spec.names), dict(spec.input_dtypes()), spec, model)

    def columns(self, table: pa.Table) -> dict[str, Any]:
        from mooring.features._inputs import check_columns, columns_from_table, table_inputs

        if self.spec is None:
            return table_inputs(self.model, table)
        return check_columns(columns_from_table(table, self.spec), self.spec)


def _score(
    task: Task,
    labels: np.ndarray[Any, Any],
    outputs: Mapping[str, Any],
    cfg: MooringConfig,
    threshold: float,
    vocabulary: list[str] | None,
) -> dict[str, float | None]:
    """The evaluation layer's headline metrics at the model's recorded threshold."""
    evaluation = EvaluationConfig(
        bootstrap=BootstrapConfig(samples=0),
        threshold=threshold,
        calibration_bins=cfg.evaluation.calibration_bins,
        top_k=cfg.evaluation.top_k,
    )
    result = evaluate(
        task=task,
        labels=labels,
        probabilities=outputs.get("probabilities"),
        values=outputs.get("value"),
        config=evaluation,
        label_vocabulary=vocabulary if task != "regression" else None,
    )
    return dict(result.metrics)


def _main_output(outputs: Mapping[str, Any]) -> np.ndarray[Any, Any]:
    """The positive-class probability (binary), every probability (multiclass), or the value."""
    key = "probabilities" if "probabilities" in outputs else "value"
    values = np.asarray(outputs[key], dtype=np.float64)
    return values[:, 1] if values.ndim == 2 and values.shape[1] == 2 else values


def _agreement(
    mode: str, reference: Mapping[str, Any], lite: Mapping[str, Any], scale: float
) -> dict[str, Any]:
    diff = np.abs(_main_output(lite) - _main_output(reference)) / scale
    data: dict[str, Any] = {
        "output": "value"
        if "probabilities" not in reference
        else "positive-class probability"
        if np.asarray(reference["probabilities"]).shape[-1] == 2
        else "probabilities",
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "p99_abs_diff": float(np.quantile(diff, 0.99)) if diff.size else 0.0,
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "tolerance": AGREEMENT_TOLERANCE[mode],
    }
    if "class_ids" in reference and "class_ids" in lite:
        same = np.asarray(reference["class_ids"]) == np.asarray(lite["class_ids"])
        data["same_class"] = float(same.mean()) if same.size else 1.0
    data["within_tolerance"] = data["mean_abs_diff"] <= data["tolerance"]
    return data


def _side_by_side_ms(calls: list[Any], feeds: list[list[Any]]) -> list[float]:
    """Median milliseconds per call of each runtime, calls interleaved row by row.

    Interleaving makes both runtimes share whatever else the machine is doing,
    so their ratio stays meaningful on a busy machine.
    """
    for call, own in zip(calls, feeds, strict=True):
        call(own[0])  # warm-up: first-call allocation is not per-row cost
    times: list[list[float]] = [[] for _ in calls]
    for i in range(len(feeds[0])):
        for call, own, spent in zip(calls, feeds, times, strict=True):
            start = time.perf_counter()
            call(own[i])
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) * 1000.0 for spent in times]


def _latency(
    lite: LiteModel, signature: Any, columns: Mapping[str, Any], dtypes: Mapping[str, str], n: int
) -> dict[str, Any]:
    """Median single-row latency of both runtimes, and per-row time of one batched call."""
    import tensorflow as tf

    rows = len(next(iter(columns.values())))
    n = min(n, rows)
    if n == 0:
        return {"rows": 0}

    def tensors(feed: Mapping[str, Any]) -> dict[str, Any]:
        return {k: tf.constant(v, tf.as_dtype(dtypes[k])) for k, v in feed.items()}

    def saved(feed: Mapping[str, Any]) -> Any:
        # Tensors are made inside the timed call, as a server must.
        return signature(**tensors(feed))

    lite_feeds = [lite.prepare(columns, i, i + 1) for i in range(n)]
    numpy_feeds = [{k: columns[k][i : i + 1] for k in dtypes} for i in range(n)]
    lite_ms, saved_ms = _side_by_side_ms([lite.call, saved], [lite_feeds, numpy_feeds])
    batch = min(rows, 1024)
    lite_batch = lite.prepare(columns, 0, batch)
    saved_batch = {k: columns[k][:batch] for k in dtypes}
    lite_batch_ms, saved_batch_ms = _side_by_side_ms(
        [lite.call, saved], [[lite_batch] * 7, [saved_batch] * 7]
    )
    return {
        "rows": n,
        "interpreter_ms_per_row": lite_ms,
        "savedmodel_ms_per_row": saved_ms,
        "speedup": saved_ms / lite_ms if lite_ms > 0 else None,
        "batch_rows": batch,
        "interpreter_batch_ms_per_row": lite_batch_ms / batch,
        "savedmodel_batch_ms_per_row": saved_batch_ms / batch,
    }


FLOAT16_MAX = 65504.0


def _float16_overflows(spec: Any) -> list[str]:
    """Normalised columns whose statistics half precision cannot hold (float16 mode).

    float16 conversion stores every float constant in half precision, which
    saturates at 65,504: a larger mean becomes 65,504 and shifts the column.
    """
    found = []
    for feature in spec.features:
        if getattr(feature, "transform", None) not in ("normalize", "log_normalize"):
            continue
        mean = float(feature.mean)
        if abs(mean) > FLOAT16_MAX:
            std = max(float(feature.variance), 1e-12) ** 0.5
            shift = (abs(mean) - FLOAT16_MAX) / std
            found.append(
                f"{feature.name}: its normalisation mean {mean:,.0f} exceeds float16's "
                f"{FLOAT16_MAX:,.0f} and is stored as {FLOAT16_MAX:,.0f}, shifting the column "
                f"by {shift:.2f} standard deviations on every row; use mode 'dynamic' or "
                "'int8' (they keep it in float32/int8 ranges) or log_normalize the column"
            )
    return found


def _pp(value: float) -> str:
    return f"{value * 100:+.2f} pp"


def export_lite(  # noqa: PLR0913 - keyword-only options of `mooring export`
    registry: Registry,
    name: str,
    *,
    config: MooringConfig,
    version: int | None = None,
    alias: str | None = None,
    mode: str | None = None,
    calibration_data: Source | None = None,
    eval_data: Source | None = None,
    out: str | os.PathLike[str] | None = None,
    register: bool = True,
    replace: bool = False,
    actor: str | None = None,
    reason: str | None = None,
) -> LiteExport:
    """Convert a registered version to TF Lite, check it against the SavedModel, gate it.

    ``mode`` defaults to ``[export] mode``. Calibration rows (int8) default to
    ``[export] calibration_data``, else ``[data] train``; evaluation rows to
    ``[export] eval_data``, else ``[data] eval``; both accept a path or an Arrow
    table. The ``.tflite`` and ``export.json`` go to ``out`` (default
    ``<home>/exports/<name>/v<version>-<mode>-<UTC time>``); a passing export is
    attached to the version as ``tflite-<mode>`` unless ``register=False``.

    Nothing is converted without the ``lite`` extra (the LiteRT interpreter the export is
    checked in), and nothing is left behind by an export that raises: the files are
    written once the export is checked, atomically, and removed again if registering
    it fails.

    Raises:
        MissingExtraError: the ``lite`` extra is not installed.
        NotFoundError: unknown model, version or alias; no evaluation data.
        UsageError: a bad mode or gated metric name.
        ConflictError: the version already has an export of this mode and ``replace``
            is not set (said before converting).
    """
    import_extra(
        "ai_edge_litert.interpreter",
        extra="lite",
        needed_for="a TF Lite export (checked in the LiteRT interpreter)",
    )
    settings = config.export
    checked = check_mode(mode if mode is not None else settings.mode)
    mv = registry.get(name, version=version, alias=alias)
    if register and not replace:  # said now, not after seconds of loading and converting
        _check_free(registry, mv, f"tflite-{checked}")
    model_dir = registry.load_version(mv)
    from mooring.formats._model import role_outputs

    model = _exportable(mv, model_dir)
    task = model.task
    gated = _gated(task, settings.metrics)
    label = model.label
    inputs = _Inputs.of(model)
    dtypes = inputs.dtypes

    options = ReadOptions.from_config(config.data)
    warnings: list[str] = (
        _float16_overflows(inputs.spec) if checked == "float16" and inputs.spec else []
    )

    # -- evaluation rows --------------------------------------------------------
    eval_source = _resolve(config, eval_data, settings.eval_data, "eval")
    table, targets = _labelled_rows(eval_source, options, label, warnings)
    columns = inputs.columns(table)

    # -- calibration rows (int8) -----------------------------------------------
    calibration: dict[str, Any] | None = None
    representative = None
    if checked == "int8":
        calibration, representative = _calibration_rows(
            config, calibration_data, options, inputs, mv, warnings
        )

    # -- convert ----------------------------------------------------------------
    conversion = convert_saved_model(
        model_dir,
        checked,
        representative=representative,
        float_ops=settings.int8_float_ops if checked == "int8" else (),
    )
    result = LiteExport(
        name=mv.name,
        version=mv.version,
        mode=checked,
        passed=False,
        reason="",
        savedmodel_bytes=served_bytes(model_dir),
        max_metric_drop=settings.max_metric_drop,
        calibration=calibration,
        evaluation={"source": _describe(eval_source), "rows": table.num_rows},
        select_tf_ops=conversion.select_tf_ops,
        float_ops=conversion.float_ops,
        conversion_seconds=conversion.seconds,
        warnings=warnings,
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = (
        Path(out)
        if out is not None
        else config.home / "exports" / mv.name / f"v{mv.version}-{checked}-{stamp}"
    )
    result.folder = folder
    if conversion.content is None:
        result.reason = _not_converted(mv.ref, checked, conversion, imported=inputs.spec is None)
        with _leaving_nothing_on_error(folder):
            _save(folder, result)
        return result

    result.sha256 = hashlib.sha256(conversion.content).hexdigest()
    result.tflite_bytes = len(conversion.content)

    # -- run both, score both ---------------------------------------------------
    lite = LiteModel(conversion.content)
    # An imported model's scores are its own outputs, presented under their role.
    lite_out = role_outputs(model.roles, task, lite.predict(columns))
    saved_out = role_outputs(model.roles, task, model.predict(columns, batch_size=8192))
    # The operating threshold registered with the version; the model's own 0.5 otherwise.
    threshold = mv.operating_threshold if mv.operating_threshold is not None else model.threshold
    vocabulary = model.label_vocabulary or None
    task_t = cast(Task, task)
    saved_metrics = _score(task_t, targets, saved_out, config, threshold, vocabulary)
    lite_metrics = _score(task_t, targets, lite_out, config, threshold, vocabulary)
    result.metrics = {"savedmodel": saved_metrics, "tflite": lite_metrics}
    result.deltas = {
        k: (None if v is None or lite_metrics.get(k) is None else lite_metrics[k] - v)  # type: ignore[operator]
        for k, v in saved_metrics.items()
    }
    scale = 1.0 if label.is_classification else (label.std or 1.0)
    result.agreement = _agreement(checked, saved_out, lite_out, scale)
    result.latency = _latency(lite, model.signature, columns, dtypes, settings.latency_rows)
    _decide(result, gated, settings.max_metric_drop)
    if result.passed and register:
        # Registered from a staging copy, so a refused upload leaves nothing in ``folder``.
        with tempfile.TemporaryDirectory(prefix="mooring-export-") as staging:
            staged = atomic_write(Path(staging) / "model.tflite", conversion.content)
            result.artifact = registry.attach_artifact(
                mv.name,
                version=mv.version,
                artifact=f"tflite-{checked}",
                path=staged,
                details=result.details(),
                actor=actor,
                reason=reason or f"TF Lite {checked} export ({result.reason})",
                replace=replace,
            )
    with _leaving_nothing_on_error(folder):
        result.path = atomic_write(folder / "model.tflite", conversion.content)
        if result.artifact is not None and registry.artifacts.is_local:
            stored = registry.artifacts.local_path(result.artifact.artifact_key)
            result.path = stored / "model.tflite"
        _save(folder, result)
    return result


def _check_free(registry: Registry, mv: ModelVersion, artifact: str) -> None:
    """Refuse, before seconds of conversion, an export that could not be registered."""
    for attached in registry.version_artifacts(mv.name, version=mv.version):
        if attached.artifact == artifact:
            raise ConflictError(
                f"{attached.ref} already exists (attached {attached.created_at[:19]}); pass "
                "replace=True (CLI: --replace) to swap it, or register=False (CLI: "
                "--no-register) to export without registering it"
            )


@contextlib.contextmanager
def _leaving_nothing_on_error(folder: Path) -> Iterator[None]:
    """Remove what the block wrote into ``folder`` (and the folders it made for it) if it
    raises: an export that failed leaves no ``.tflite`` or ``export.json`` behind."""
    made = [folder, *folder.parents]
    made = made[: next((i for i, p in enumerate(made) if p.exists()), len(made))]
    names = ("model.tflite", "export.json")
    before = {name: (folder / name).exists() for name in names}
    try:
        yield
    except BaseException:
        for name in names:
            if not before[name]:
                (folder / name).unlink(missing_ok=True)
        for path in made:  # deepest first; one holding anything else stays
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def _not_converted(ref: str, mode: str, conversion: Conversion, *, imported: bool) -> str:
    """Why there is no ``.tflite``: Select TF ops the interpreter cannot run, or the
    converter's error."""
    if conversion.select_tf_ops:
        fix = (
            "the model's own text or lookup layers (TextVectorization, StringLookup, …) "
            "need them: run that step before the model on the device, and export the model "
            "that takes its output"
            if imported
            else "string hashing (encoding = 'hashing') and feature crosses need them: use "
            "one_hot or embedding encodings and no crosses for an edge model"
        )
        return (
            f"{ref} cannot be exported with TF Lite builtin ops: it needs the TensorFlow "
            f"op(s) {', '.join(conversion.select_tf_ops)} (Select TF ops, which the LiteRT "
            "interpreter cannot run without the Flex delegate, so the export could not be "
            f"checked); {fix}"
        )
    return f"TF Lite cannot convert {ref} in {mode} mode: {conversion.error}"


def _labelled_rows(
    source: Any, options: ReadOptions, label: LabelEncoding, warnings: list[str]
) -> tuple[pa.Table, np.ndarray[Any, Any]]:
    """The evaluation rows that have a label, and their encoded targets; a note on
    ``warnings`` when rows without one are left out.

    Raises:
        DataError: no label column, or no row with a label.
    """
    table = source if isinstance(source, pa.Table) else read_table(source, options)
    if label.column not in table.column_names:
        raise DataError(
            f"the evaluation data {_describe(source)} has no label column "
            f"'{label.column}'; export needs labelled rows to compare the models"
        )
    targets, _ = label.encode(table.column(label.column))
    present = targets >= 0 if label.is_classification else ~np.isnan(targets)
    if not present.any():
        raise DataError(f"no row of {_describe(source)} has a label; use labelled rows")
    if not present.all():
        warnings.append(f"{int((~present).sum())} evaluation rows have no label; left out")
        table = table.filter(pa.array(present))
        targets = targets[present]
    return table, targets


def _calibration_rows(
    config: MooringConfig,
    calibration_data: Source | None,
    options: ReadOptions,
    inputs: _Inputs,
    mv: ModelVersion,
    warnings: list[str],
) -> tuple[dict[str, Any], Callable[[], Iterator[dict[str, Any]]]]:
    """int8's calibration: what was sampled (for ``export.json``) and the representative
    dataset the converter reads, one row at a time; a note on ``warnings`` when the default
    training file is no longer the one the version was trained on."""
    settings = config.export
    cal_source = _resolve(config, calibration_data, settings.calibration_data, "train")
    sample = sample_rows(
        cal_source,
        options,
        settings.representative_rows,
        seed=settings.seed,
        columns=inputs.names,
    )
    cal_columns = inputs.columns(sample)
    distinct = distinct_rows(cal_columns)
    calibration = {
        "source": _describe(cal_source),
        "rows": sample.num_rows,
        "distinct_rows": distinct,
        "seed": settings.seed,
    }
    trained_on = mv.lineage.data_fingerprint
    if (
        calibration_data is None
        and settings.calibration_data is None
        and isinstance(cal_source, str)
        and trained_on
        and file_fingerprint(cal_source) != trained_on
    ):
        warnings.append(
            f"[data] train ({cal_source}) is not the file {mv.ref} was trained on (its "
            "sha256 differs from the version's data fingerprint); int8 ranges are "
            "calibrated on the current file"
        )

    def representative() -> Iterator[dict[str, Any]]:
        for i in range(sample.num_rows):
            yield {k: cal_columns[k][i : i + 1] for k in inputs.names}

    return calibration, representative


def _decide(result: LiteExport, gated: tuple[str, ...], allowed: float) -> None:
    """Fill ``gate``, ``passed`` and ``reason`` from the metric changes."""
    saved, lite = result.metrics["savedmodel"], result.metrics["tflite"]
    failures: list[str] = []
    notes: list[str] = []
    for metric in gated:
        before, after = saved.get(metric), lite.get(metric)
        if before is None or after is None:
            result.gate.append({"metric": metric, "passed": False, "drop": None})
            failures.append(
                f"{metric} cannot be computed on the evaluation rows (e.g. one class only)"
            )
            continue
        worse = (before - after) if HIGHER_IS_BETTER[metric] else (after - before)
        ok = worse <= allowed + 1e-12
        result.gate.append(
            {
                "metric": metric,
                "savedmodel": before,
                "tflite": after,
                "drop": worse,
                "allowed": allowed,
                "passed": ok,
            }
        )
        text = f"{metric} {after - before:+.4f} ({_pp(after - before)}: {before:.4f} → {after:.4f})"
        (notes if ok else failures).append(text)
    if not failures:
        result.passed = True
        result.reason = (
            f"{result.mode} export of {result.ref} passed: {'; '.join(notes)}; each within the "
            f"allowed drop of {allowed * 100:.2f} pp"
        )
        return
    hint = _hint(result)
    result.reason = (
        f"{result.mode} export of {result.ref} refused: {'; '.join(failures)}; the allowed "
        f"drop is {allowed * 100:.2f} pp ([export] max_metric_drop = {allowed:g}). {hint}"
    )


def _hint(result: LiteExport) -> str:
    cal = result.calibration
    if result.mode == "int8" and cal is not None and cal["distinct_rows"] < min(50, cal["rows"]):
        return (
            f"The calibration set has {cal['rows']} rows but only {cal['distinct_rows']} "
            "distinct, so the int8 ranges fit too few values: calibrate on varied real rows "
            "(the training data by default; [export] calibration_data, representative_rows)."
        )
    if result.mode == "int8":
        return (
            "Try more calibration rows ([export] representative_rows), mode 'dynamic' or "
            "'float16', or raise max_metric_drop if this loss is acceptable."
        )
    return "Try another mode ('dynamic' keeps most accuracy), or raise max_metric_drop."


def _save(folder: Path, result: LiteExport) -> None:
    atomic_write(
        folder / "export.json",
        (json.dumps(result.to_dict(), indent=2, default=str) + "\n").encode("utf-8"),
    )
