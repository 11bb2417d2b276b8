"""A network's ``explain`` signature: integrated gradients traced into the SavedModel.

The signature takes the same inputs as ``serving_default`` and returns, per row,
``attributions`` ``[n, columns]`` float32 (one per feature column, in the order
``mooring.json``'s ``explain.columns`` records), ``baseline`` ``[n]`` (the explained
output at the baseline row) and ``explained`` ``[n]`` (at the row), so a server
explains without Python. Completeness: each row's attributions sum to
``explained - baseline`` within :data:`~mooring.explain._gradients.TOLERANCE`.

The gradients run over each column's *encoded block* (the preprocessing's output
that :func:`mooring.features._layers.block_name` marks): a number's normalised value
(and its is-missing flag), a category's one-hot or embedding. Text has no gradient,
its encoding does, and the block's attribution is the column's. A cross's block is
split evenly between its columns. The baseline row is each number's imputed value
(the training mean or median) and each category's missing value (``""`` or NaN),
so the baseline output is the model's answer for "nothing known beyond the usual".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mooring.explain._gradients import STEPS, TOLERANCE, integrated_gradients
from mooring.features._layers import block_name, functional_model
from mooring.features._spec import CrossFeature, FeatureSpec, NumericFeature
from mooring.formats._labels import LabelEncoding
from mooring.formats._model import EXPLAIN_ATTRIBUTIONS, EXPLAIN_BASELINE, EXPLAIN_EXPLAINED

__all__ = ["explain_function", "explained_output"]


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
    """The baseline's raw value per column: a number's imputed value, a category's missing."""
    row: dict[str, float | str] = {}
    for feature in spec.features:
        if isinstance(feature, NumericFeature):
            row[feature.name] = float(feature.impute)
        else:
            row[feature.name] = "" if feature.dtype == "string" else float("nan")
    return row


def explain_function(
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    check: Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]],
    *,
    steps: int = STEPS,
) -> tuple[Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]], dict[str, Any]] | None:
    """The ``explain`` endpoint's function and ``mooring.json``'s ``explain`` entry.

    ``None`` when the model has no marked blocks (built without mooring's
    preprocessing), so the export goes on without an explanation.
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
    base_row = baseline_row(spec)
    dtypes = spec.input_dtypes()

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

    # The baseline row's blocks, computed once here: constants in the signature.
    b_blocks = [
        tf.constant(b.numpy())
        for b in encoded(
            {
                name: tf.constant([value], tf.string if dtypes[name] == "string" else tf.float32)
                for name, value in base_row.items()
            }
        )
    ]
    keys = [str(i) for i in range(len(parts))]
    points = steps + 1

    def explain(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        x_blocks = encoded(check(inputs))
        class_ids = None
        if label.task == "multiclass":  # the class the row is predicted, explained all along
            raw_x = body(x_blocks, training=False)
            class_ids = tf.argmax(raw_x, axis=1, output_type=tf.int32)

        def along_path(path: dict[str, tf.Tensor]) -> tf.Tensor:
            ids = None if class_ids is None else tf.tile(class_ids, [points])
            return target(body([path[k] for k in keys], training=False), ids)

        attributions, _, (at_baseline, at_row) = integrated_gradients(
            along_path,
            dict(zip(keys, x_blocks, strict=True)),
            dict(zip(keys, b_blocks, strict=True)),
            steps,
        )
        per_block = tf.stack([attributions[k] for k in keys], axis=1)
        return {
            EXPLAIN_ATTRIBUTIONS: tf.matmul(per_block, tf.constant(share)),
            EXPLAIN_BASELINE: at_baseline,
            EXPLAIN_EXPLAINED: at_row,
        }

    output, unit = explained_output(label)
    entry = {
        "method": "integrated_gradients",
        "steps": steps,
        "rule": "trapezoidal",
        # In the output's unit: probabilities as they are, a regression's per label std.
        "tolerance": TOLERANCE * (float(label.std) if label.task == "regression" else 1.0),
        "output": output,
        "unit": unit,
        "columns": columns,
        "baseline": {
            k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in base_row.items()
        },
    }
    return explain, entry
