"""A network's ``explain`` signature: expected gradients traced into the SavedModel.

The signature takes the same inputs as ``serving_default`` and returns, per row,
``attributions`` ``[n, columns]`` float32 (one per feature column, in the order
``mooring.json``'s ``explain.columns`` records), ``baseline`` ``[n]`` (the mean explained
output over the reference rows) and ``explained`` ``[n]`` (at the row), so a server
explains without Python. Completeness: each row's attributions sum to
``explained - baseline`` within :data:`~mooring.explain._gradients.TOLERANCE`.

The baseline is a *background*, not one row: a seeded sample of :data:`REFERENCE_ROWS`
training rows, frozen into the signature at export as their encoded blocks. A row is
explained by integrated gradients from each reference row to it (:data:`REFERENCE_STEPS`
trapezoidal intervals each), averaged over the references — expected gradients — so an
attribution says how far a column moves the row's output from what the model answers on
the data it was trained on, as KernelSHAP with the same background does. (One made-up
row — every category missing, every number at its mean — is a row the model never saw:
its output can sit far from the base rate, and attributions measured from it are large
and offsetting.) Without training rows (an export from a model and its spec alone) the
baseline falls back to that single row of imputed values, and ``mooring.json`` says so.

The gradients run over each column's *encoded block* (the preprocessing's output
that :func:`mooring.features._layers.block_name` marks): a number's normalised value
(and its is-missing flag), a category's one-hot or embedding. Text has no gradient,
its encoding does, and the block's attribution is the column's. A cross's block is
split evenly between its columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mooring.explain._gradients import (
    REFERENCE_ROWS,
    REFERENCE_STEPS,
    STEPS,
    TOLERANCE,
    integrated_gradients,
)
from mooring.features._layers import block_name, functional_model
from mooring.features._spec import CrossFeature, FeatureSpec, NumericFeature
from mooring.formats._labels import LabelEncoding
from mooring.formats._model import EXPLAIN_ATTRIBUTIONS, EXPLAIN_BASELINE, EXPLAIN_EXPLAINED

__all__ = [
    "explain_function",
    "explained_output",
    "json_value",
    "reference_sample",
]


def explained_output(label: LabelEncoding) -> tuple[str, str]:
    """What a model of ``label``'s task explains, and its unit.

    Examples:
        >>> explained_output(LabelEncoding("income", "binary", (">50K", "<=50K"), ">50K"))
        ('probability of >50K', 'probability')
    """
    if label.task == "binary":
        return f"probability of {label.positive}", "probability"
    if label.task == "multiclass":
        return "probability of the predicted class", "probability"
    return f"predicted {label.column}", label.column


def baseline_row(spec: FeatureSpec) -> dict[str, float | str]:
    """The fallback baseline's raw value per column: a number's imputed value, a
    category's missing value (used only when no reference rows are given)."""
    row: dict[str, float | str] = {}
    for feature in spec.features:
        if isinstance(feature, NumericFeature):
            row[feature.name] = float(feature.impute)
        else:
            row[feature.name] = "" if feature.dtype == "string" else float("nan")
    return row


def reference_sample(
    columns: Mapping[str, np.ndarray[Any, Any]], *, seed: int, rows: int = REFERENCE_ROWS
) -> dict[str, np.ndarray[Any, Any]]:
    """A seeded draw of up to ``rows`` rows of the model-input ``columns`` (training rows),
    in their order: the background an export freezes.

    Examples:
        >>> reference_sample({"x": np.arange(100, dtype=np.float32)}, seed=1, rows=3)["x"].size
        3
    """
    total = len(next(iter(columns.values()), ()))
    count = min(rows, total)
    picked = np.sort(np.random.default_rng(seed).choice(total, count, replace=False))
    return {name: np.asarray(values)[picked] for name, values in columns.items()}


def json_value(value: Any) -> Any:
    """A model input's value as JSON holds it: text as text, NaN as null, numpy as Python.

    Examples:
        >>> json_value(b"Oslo"), json_value(np.float32("nan")), json_value(np.int64(3))
        ('Oslo', None, 3)
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    return value.item() if isinstance(value, np.generic) else value


def explain_function(
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    check: Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]],
    *,
    reference: Mapping[str, np.ndarray[Any, Any]] | None = None,
    steps: int | None = None,
) -> tuple[Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]], dict[str, Any]] | None:
    """The ``explain`` endpoint's function and ``mooring.json``'s ``explain`` entry.

    ``reference`` holds the background rows as model inputs (one array per column, e.g.
    :func:`reference_sample` of the training rows); without it the baseline is the one
    row of imputed values. ``None`` when the model has no marked blocks (built without
    mooring's preprocessing), so the export goes on without an explanation.
    """
    parts = [*spec.features, *spec.crosses]
    try:
        blocks = [model.get_layer(block_name(i)).output for i in range(len(parts))]
    except ValueError:
        return None
    preprocess = functional_model(model.input, blocks, name="mooring_explain_blocks")
    body = functional_model(blocks, model.output, name="mooring_explain_body")
    columns = list(spec.names)
    # blocks → columns: a feature's block is its column's, a cross's is split evenly.
    share = np.zeros((len(parts), len(columns)), np.float32)
    for i, part in enumerate(parts):
        owners = list(part.columns) if isinstance(part, CrossFeature) else [part.name]
        for owner in owners:
            share[i, columns.index(owner)] = 1.0 / len(owners)
    dtypes = spec.input_dtypes()
    if reference is not None and len(next(iter(reference.values()), ())) == 0:
        reference = None
    if reference is None:
        base_row = baseline_row(spec)
        raw_reference: dict[str, list[Any]] = {k: [v] for k, v in base_row.items()}
        steps = STEPS if steps is None else steps
    else:
        raw_reference = {name: list(reference[name]) for name in columns}
        steps = REFERENCE_STEPS if steps is None else steps

    def target(raw: tf.Tensor, class_ids: tf.Tensor | None) -> tf.Tensor:
        if label.task == "binary":
            return raw[:, 0]
        if label.task == "multiclass":
            assert class_ids is not None
            return tf.gather(raw, class_ids, axis=1, batch_dims=1)
        return raw[:, 0] * tf.constant(label.std, tf.float32) + tf.constant(label.mean, tf.float32)

    def encoded(inputs: dict[str, Any]) -> list[Any]:
        out = preprocess(inputs, training=False)
        if not isinstance(out, list | tuple):  # one block: Keras returns it alone
            out = [out]
        return [
            tf.cast(tf.sparse.to_dense(b) if isinstance(b, tf.SparseTensor) else b, tf.float32)
            for b in out
        ]

    def as_inputs(raw: Mapping[str, list[Any]]) -> dict[str, tf.Tensor]:
        return {
            name: tf.constant(
                [json_value(v) or "" for v in values]
                if dtypes[name] == "string"
                else np.asarray([np.nan if v is None else v for v in values], np.float32),
                tf.string if dtypes[name] == "string" else tf.float32,
            )
            for name, values in raw.items()
        }

    # The reference rows' blocks, computed once here: constants in the signature.
    r_blocks = [tf.constant(b.numpy()) for b in encoded(as_inputs(raw_reference))]
    count = int(r_blocks[0].shape[0])
    keys = [str(i) for i in range(len(parts))]
    points = steps + 1

    def explain(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        x_blocks = encoded(check(inputs))
        rows = tf.shape(x_blocks[0])[0]
        class_ids = None
        if label.task == "multiclass":  # the class the row is predicted, explained all along
            raw_x = body(x_blocks, training=False)
            class_ids = _repeat(tf.argmax(raw_x, axis=1, output_type=tf.int32), count)
        # Row i paired with reference k at i·count + k: each row's paths side by side.
        pairs = {k: _repeat(b, count) for k, b in zip(keys, x_blocks, strict=True)}
        starts = {k: tf.tile(b, [rows, 1]) for k, b in zip(keys, r_blocks, strict=True)}

        def along_path(path: dict[str, tf.Tensor]) -> tf.Tensor:
            ids = None if class_ids is None else tf.tile(class_ids, [points])
            return target(body([path[k] for k in keys], training=False), ids)

        attributions, _, (at_reference, at_row) = integrated_gradients(
            along_path, pairs, starts, steps
        )
        per_block = tf.stack([attributions[k] for k in keys], axis=1)  # [rows·count, blocks]
        per_column = tf.reshape(tf.matmul(per_block, tf.constant(share)), [rows, count, -1])
        return {
            EXPLAIN_ATTRIBUTIONS: tf.reduce_mean(per_column, axis=1),
            EXPLAIN_BASELINE: tf.reduce_mean(tf.reshape(at_reference, [rows, count]), axis=1),
            EXPLAIN_EXPLAINED: tf.reshape(at_row, [rows, count])[:, 0],
        }

    output, unit = explained_output(label)
    # The mean output over the references: every row's baseline (a multiclass row's is
    # its predicted class's, so the entry keeps one mean per class).
    at_references = body(r_blocks, training=False).numpy().astype(np.float64)
    mean_reference: float | list[float] = (
        at_references.mean(axis=0).tolist()
        if label.task == "multiclass"
        else float(np.mean(target(tf.constant(at_references, tf.float32), None)))
    )
    entry: dict[str, Any] = {
        "method": "integrated_gradients",  # from each reference row, averaged
        "steps": steps,
        "rule": "trapezoidal",
        # In the output's unit: probabilities as they are, a regression's per label std.
        "tolerance": TOLERANCE * (float(label.std) if label.task == "regression" else 1.0),
        "output": output,
        "unit": unit,
        "columns": columns,
        "reference": {
            "rows": count,
            "from": "training rows (a seeded sample)" if reference is not None else "imputed row",
            "mean_output": mean_reference,
            "values": {
                name: [json_value(v) for v in values] for name, values in raw_reference.items()
            },
        },
    }
    return explain, entry


def _repeat(x: tf.Tensor, count: int) -> tf.Tensor:
    """Each row of ``x`` ``count`` times in a row (``tf.repeat`` on axis 0, in two ops:
    ``tf.repeat`` traces a graph of dozens, and the signature is traced at every export)."""
    tiled = tf.tile(tf.expand_dims(x, 1), [1, count] + [1] * (x.shape.rank - 1))
    return tf.reshape(tiled, tf.concat([[-1], tf.shape(x)[1:]], 0))
