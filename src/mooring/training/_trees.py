"""``[model] kind = "gbt"``: gradient boosted trees (YDF), exported as ONE SavedModel.

The trees train on the raw columns of the same feature spec as a network (the same
label encoding, the same validation split, exclusions respected): numbers as
numbers (NaN = missing), text as categories (``""`` = missing, values unseen in
training out of vocabulary) — YDF handles both natively, so the numeric transforms,
encodings and crosses of ``[features]`` do not apply.

The export is YDF's own TensorFlow SavedModel (``mode="tf"``, its inference ops come
from the ``ydf_tf`` op library) wrapped in mooring's ``serving_default`` signature:
the same named ``[None]`` inputs, the same outputs, names, dtypes and shapes as a
network (:func:`mooring.training._export.postprocess` turns the trees' raw output into
them, as it does for a network's head), so a client cannot tell the kinds apart.
``mooring.json`` records the op library (``op_libraries``), which every loader
imports first (:func:`mooring.formats._model.load_op_libraries`). The parity check
compares YDF's own predictions with the reloaded SavedModel's, JSON path included.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from mooring.errors import ConfigError, import_extra
from mooring.features._inputs import columns_from_table
from mooring.features._spec import CategoricalFeature, FeatureSpec
from mooring.formats._model import (
    SIGNATURE,
    YDF_FOLDER,
    load_op_libraries,
    load_saved_model,
    quiet_python_logs,
    versions,
    write_metadata,
)
from mooring.training._export import (
    check_inputs,
    input_signature,
    model_metadata,
    postprocess,
    staged_folder,
)
from mooring.training._fit import (
    Run,
    RunPlan,
    TrainingResult,
    reference_rows,
    save_run,
    training_record,
)
from mooring.training._labels import LabelEncoding
from mooring.training._parity import ParityReport, check_parity
from mooring.training._pipeline import InMemoryData, TrainingData

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.config._model import TreesConfig

__all__ = ["TREE_TOLERANCE", "TreeModel", "TreesTrainer", "import_ydf", "op_library"]

# YDF's own predictions and the served ones agree to this (float32 through the same ops).
TREE_TOLERANCE = 1e-5
_LABEL = "__label__"
_WEIGHT = "__weight__"


def import_ydf() -> Any:
    """The ``ydf`` module, or a one-line error naming the ``trees`` extra that installs it."""
    return import_extra(
        "ydf", extra="trees", needed_for='gradient boosted trees ([model] kind = "gbt")'
    )


def op_library() -> dict[str, str]:
    """The op library a tree SavedModel needs, as ``mooring.json`` records it."""
    try:
        built = version("ydf_tf")
    except PackageNotFoundError:  # pragma: no cover - ydf_tf imports but has no metadata
        built = "unknown"
    return {"module": "ydf_tf", "package": "ydf-tf", "version": built}


class TreeModel:
    """A trained YDF model and how the feature spec's columns map to its inputs.

    YDF and its SavedModel see positional names (``c0``, ``c1``…), so any column name
    works; categorical columns that arrive as numbers become their integer's text.
    """

    def __init__(self, model: Any, spec: FeatureSpec, label: LabelEncoding) -> None:
        self.model = model
        self.spec = spec
        self.label = label
        self.columns = {f.name: f"c{i}" for i, f in enumerate(spec.features)}
        self.distributed: dict[str, Any] | None = None

    def inputs(self, columns: dict[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """The spec's columns (training's arrays) → YDF's columns."""
        out: dict[str, np.ndarray[Any, Any]] = {}
        for feature in self.spec.features:
            value = np.asarray(columns[feature.name])
            if isinstance(feature, CategoricalFeature) and feature.dtype != "string":
                text = np.where(
                    np.isnan(value), "", np.nan_to_num(value).astype(np.int64).astype(str)
                )
                value = text.astype(object)
            elif feature.dtype == "string":
                value = np.asarray([_text(v) for v in value], dtype=object)
            out[self.columns[feature.name]] = value
        return out

    def raw(self, columns: dict[str, Any]) -> np.ndarray[Any, Any]:
        """YDF's own prediction, shaped as a network's head: ``[n, 1]`` or ``[n, classes]``."""
        predicted = np.asarray(self.model.predict(self.inputs(columns)), dtype=np.float32)
        return predicted.reshape(len(predicted), -1)

    def outputs(self, columns: dict[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """The serving outputs of YDF's own prediction (the parity check's reference)."""
        return {
            k: v.numpy() for k, v in postprocess(tf.constant(self.raw(columns)), self.label).items()
        }

    def importances(self) -> dict[str, float]:
        """Each column's share of the trees' total split gain (``SUM_SCORE``), summing to 1."""
        found = self.model.variable_importances().get("SUM_SCORE", [])
        by_name = {ydf_name: column for column, ydf_name in self.columns.items()}
        scores = {by_name[name]: float(score) for score, name in found if name in by_name}
        total = sum(scores.values()) or 1.0
        return {k: v / total for k, v in sorted(scores.items(), key=lambda kv: -kv[1])}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _learner(
    config: TreesConfig, label: LabelEncoding, seed: int, threads: int | None, weighted: bool
) -> Any:
    ydf = import_ydf()

    return ydf.GradientBoostedTreesLearner(**_learner_args(config, label, seed, threads, weighted))


def _learner_args(
    config: TreesConfig, label: LabelEncoding, seed: int, threads: int | None, weighted: bool
) -> dict[str, Any]:
    ydf = import_ydf()

    classify = label.is_classification
    return dict(
        label=_LABEL,
        task=ydf.Task.CLASSIFICATION if classify else ydf.Task.REGRESSION,
        # The label's codes in the vocabulary's order: YDF's output columns are ours.
        label_classes=[str(i) for i in range(len(label.vocabulary))] if classify else None,
        weights=_WEIGHT if weighted else None,
        num_trees=config.num_trees,
        max_depth=config.max_depth,
        shrinkage=config.shrinkage,
        min_examples=config.min_examples,
        subsample=config.subsample,
        l2_regularization=config.l2_regularization,
        max_vocab_count=config.max_vocab_count,
        early_stopping="LOSS_INCREASE" if config.early_stopping else "NONE",
        early_stopping_num_trees_look_ahead=config.early_stopping_patience,
        random_seed=seed,
        num_threads=threads,
    )


def _dataset(
    tree: TreeModel,
    columns: dict[str, Any],
    targets: np.ndarray[Any, Any],
    label: LabelEncoding,
    weights: np.ndarray[Any, Any] | None,
) -> dict[str, Any]:
    data: dict[str, Any] = tree.inputs(columns)
    flat = targets.reshape(-1)
    data[_LABEL] = flat.astype(str).astype(object) if label.is_classification else flat
    if weights is not None and label.is_classification:
        data[_WEIGHT] = weights[flat.astype(np.int64)].astype(np.float32)
    return data


def fit_trees(
    config: MooringConfig,
    spec: FeatureSpec,
    label: LabelEncoding,
    data: TrainingData,
    weights: np.ndarray[Any, Any] | None,
    seed: int,
    *,
    output_dir: Path | None = None,
    resume: bool = False,
) -> TreeModel:
    """Train the trees on the training split; the validation split drives early stopping.
    With ``[training] workers`` above 1 (and an ``output_dir`` for the shards) they train
    on that many YDF workers (:mod:`mooring.training._trees_workers`).

    Raises:
        ConfigError: the training data is streamed (larger than ``memory_limit_mb``).
    """
    ydf = import_ydf()

    if not isinstance(data, InMemoryData):
        raise ConfigError(
            "[model] kind = 'gbt' trains in memory, and the training data is larger than "
            f"[model] memory_limit_mb = {config.model.memory_limit_mb:g}; raise the limit "
            "or sample the data"
        )
    ydf.verbose(0)
    tree = TreeModel(None, spec, label)
    weighted = weights is not None and label.is_classification
    learner = _learner(config.model.gbt, label, seed, config.model.threads, weighted)
    train = _dataset(tree, data.features, data.targets, label, weights)
    valid = (
        _dataset(tree, data.val_features, data.val_targets, label, weights)
        if data.validation_rows > 0
        else None
    )
    if config.training.workers > 1 and output_dir is not None:
        from mooring.training._trees_workers import train_on_workers

        args = _learner_args(config.model.gbt, label, seed, config.model.threads, weighted)
        # The distributed learner grows every tree, on every row (no subsample, no L2).
        for key in (
            "early_stopping",
            "early_stopping_num_trees_look_ahead",
            "subsample",
            "l2_regularization",
        ):
            args.pop(key)
        semantics = {
            tree.columns[f.name]: "CATEGORICAL"
            if isinstance(f, CategoricalFeature)
            else ("CATEGORICAL" if f.dtype == "string" else "NUMERICAL")
            for f in spec.features
        }
        if weighted:
            semantics[_WEIGHT] = "NUMERICAL"
        tree.model, tree.distributed = train_on_workers(
            config, args, semantics, train, valid, output_dir, resume=resume
        )
        return tree
    tree.model = learner.train(train, valid=valid, verbose=0)
    return tree


class _Served(tf.Module):  # type: ignore[misc]
    """YDF's SavedModel behind mooring's signature."""

    def __init__(self, inner: Any, tree: TreeModel) -> None:
        super().__init__()
        self.inner = inner
        self._tree = tree

    def serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        checked = check_inputs(inputs, self._tree.spec.names)
        feed = {}
        for feature in self._tree.spec.features:
            value = checked[feature.name]
            if isinstance(feature, CategoricalFeature) and feature.dtype != "string":
                missing = tf.math.is_nan(value)
                whole = tf.cast(tf.where(missing, tf.zeros_like(value), value), tf.int64)
                value = tf.where(missing, tf.constant(""), tf.strings.as_string(whole))
            feed[self._tree.columns[feature.name]] = value
        # YDF's own SavedModel answers under TensorFlow's default signature name too.
        raw = self.inner.signatures[SIGNATURE](**feed)["output"]
        raw = tf.reshape(tf.cast(raw, tf.float32), [tf.shape(raw)[0], -1])
        return postprocess(raw, self._tree.label)


def export_trees(
    tree: TreeModel,
    model_dir: Path,
    *,
    extra: dict[str, Any] | None = None,
    reference: Mapping[str, Any] | None = None,
) -> Path:
    """YDF's SavedModel wrapped in mooring's ``serving_default``, plus ``mooring.json``;
    the folder appears whole or not at all (:func:`~mooring.training._export.staged_folder`).
    ``reference``: the training rows the explanation measures from (model inputs)."""
    with staged_folder(model_dir) as staging:
        _write_trees(tree, staging, extra, reference)
    return model_dir


def _write_trees(
    tree: TreeModel,
    model_dir: Path,
    extra: dict[str, Any] | None,
    reference: Mapping[str, Any] | None = None,
) -> None:
    """The wrapped SavedModel, YDF's own model and ``mooring.json``, into ``model_dir``."""
    with tempfile.TemporaryDirectory(prefix="mooring-ydf-") as scratch:
        inner_dir = Path(scratch) / "ydf"
        with quiet_python_logs():
            # The op library first: loading it resets absl's log level, set again there.
            load_op_libraries({"op_libraries": [op_library()]}, what="the tree model")
            tree.model.to_tensorflow_saved_model(str(inner_dir), mode="tf")
            module = _Served(tf.saved_model.load(str(inner_dir)), tree)
            serve = tf.function(module.serve, input_signature=[input_signature(tree.spec)])
            tf.saved_model.save(
                module, str(model_dir), signatures={SIGNATURE: serve.get_concrete_function()}
            )
    metadata = model_metadata(tree.spec, tree.label, extra)
    metadata["kind"] = "gbt"
    metadata["op_libraries"] = [op_library()]
    metadata["versions"] = {**versions(), "ydf": _version("ydf"), "ydf_tf": _version("ydf_tf")}
    # YDF's own model beside the SavedModel: exact Shapley values (mooring.explain).
    tree.model.save(str(model_dir / YDF_FOLDER))
    metadata["explain"] = tree_explain_entry(tree, reference)
    write_metadata(model_dir, metadata)


def tree_explain_entry(
    tree: TreeModel, reference: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``mooring.json``'s ``explain`` entry of a tree model: TreeSHAP in the raw unit.

    Binary: log-odds of the positive class; multiclass: the predicted class's score
    (before the softmax); regression: the label's value (YDF's standardised target
    scaled back with ``scale`` and ``shift``). With ``reference`` (a seeded sample of
    the training rows, as model inputs) binary and regression trees are explained by
    interventional TreeSHAP against those rows; without, and for multiclass, by YDF's
    path-dependent TreeSHAP against the trees' own expectation.
    """
    from mooring.training._explain import json_value

    label = tree.label
    if label.task == "binary":
        output, unit = f"log-odds of {label.positive}", "logit"
    elif label.task == "multiclass":
        output, unit = "score (logit) of the predicted class", "logit"
    else:
        output, unit = f"predicted {label.column}", label.column
    regression = label.task == "regression"
    return {
        "method": "tree_shap",
        "folder": YDF_FOLDER,
        "output": output,
        "unit": unit,
        "task": label.task,
        "columns": list(tree.spec.names),
        "inputs": dict(tree.columns),
        "text": [f.name for f in tree.spec.features if f.dtype == "string"],
        "integers": [
            f.name
            for f in tree.spec.features
            if isinstance(f, CategoricalFeature) and f.dtype != "string"
        ],
        "scale": float(label.std) if regression else 1.0,
        "shift": float(label.mean) if regression else 0.0,
        "tolerance": 1e-4,
        "reference": (
            # TreeSHAP's own expectation, the baseline YDF returns with the Shapley values.
            {"from": "training rows, weighted by the trees' node counts"}
            if reference is None or label.task == "multiclass"
            else {
                "rows": len(next(iter(reference.values()))),
                "from": "training rows (a seeded sample)",
                "values": {
                    name: [json_value(v) for v in reference[name]] for name in tree.spec.names
                },
            }
        ),
    }


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return "0+unknown"


class TreesTrainer:
    """Trains ``kind = "gbt"``: YDF's trees, in this process or on ``[training] workers``."""

    def train(self, run: Run) -> TrainingResult:
        """Read the rows and show what trains on them; fit, export and parity-check the
        trees; write the training record."""
        return train_trees(run)


def train_trees(run: Run) -> TrainingResult:
    """The trees of ``run``, trained and recorded (see :class:`TreesTrainer`)."""
    cfg, spec, label, seed, started = run.cfg, run.spec, run.label, run.seed, run.started
    config, output_dir, parity_table = cfg.model, run.output_dir, run.parity_table
    t_data = time.perf_counter()
    data, weights = run.load()
    run.display(RunPlan("gbt", data.train_rows))  # trees run no Keras callbacks
    t_start, cpu_start = run.clock
    data_seconds = time.perf_counter() - t_data
    t_fit, cpu_fit = time.perf_counter(), time.process_time()
    resume = run.resume
    tree = fit_trees(cfg, spec, label, data, weights, seed, output_dir=output_dir, resume=resume)
    fit_seconds, fit_cpu = time.perf_counter() - t_fit, time.process_time() - cpu_fit
    importances = tree.importances()
    trees = int(tree.model.num_trees())
    extra = {
        "kind": "gbt",
        "seed": seed,
        "model_config": config.model_dump(mode="json"),
        "trained_at": started,
        "trees": trees,
        "feature_importances": importances,
    }
    t_export = time.perf_counter()
    model_dir = export_trees(
        tree, output_dir / "model", extra=extra, reference=reference_rows(data, seed)
    )
    export_seconds = time.perf_counter() - t_export
    t_parity = time.perf_counter()
    parity: ParityReport | None = None
    if config.parity_records > 0:
        loaded = load_saved_model(model_dir, warn=False)
        parity = check_parity(
            lambda table: tree.outputs(columns_from_table(table, spec)),
            loaded,
            spec,
            label,
            parity_table(),
            records=config.parity_records,
            tolerance=TREE_TOLERANCE,
        )
    timings = {
        "prepare_seconds": data_seconds,
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": fit_cpu,
        "export_seconds": export_seconds,
        "parity_seconds": time.perf_counter() - t_parity,
        "total_seconds": time.perf_counter() - t_start,
        "cpu_seconds": time.process_time() - cpu_start,
    }
    warnings = list(spec.warnings)
    if spec.crosses:
        warnings.append(
            f"[[features.crosses]] {[c.name for c in spec.crosses]} do not apply to trees, "
            "which find interactions themselves"
        )
    record = training_record(
        config,
        spec,
        label,
        started=started,
        seed=seed,
        parity=parity,
        model_dir=model_dir,
        trees=trees,
        feature_importances=importances,
        crosses=[],
        data={
            "train_rows": data.train_rows,
            "validation_rows": data.validation_rows,
            "dropped_rows_without_label": data.dropped_rows,
            "streamed": False,
        },
        epochs=[],
        best_epoch=None,
        stopped_early=trees < config.gbt.num_trees,
        resumed_from=None,
        timings=timings,
        warnings=warnings,
        **({"distributed": tree.distributed} if tree.distributed else {}),
    )
    return save_run(output_dir, record, spec, label, parity)
