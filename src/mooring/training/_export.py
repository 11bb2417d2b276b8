"""Export: ONE SavedModel with preprocessing inside, plus ``mooring.json`` beside it.

The ``serving_default`` signature takes one named input per feature column,
each of shape ``[None]``: ``float32`` for numbers (NaN = missing) and ``string``
for text (``""`` = missing). Every input's shape is checked at run time
(``tf.ensure_shape``) and all must have the same length, so ``[n, 1]`` fails
loudly instead of broadcasting. Outputs:

* classification: ``probabilities`` ``[None, n_classes]`` float32, columns in the
  label vocabulary's order (binary: column 1 is the positive class);
  ``class_ids`` ``[None]`` int64; ``classes`` ``[None]`` string;
* regression: ``value`` ``[None]`` float32 in the label's unit.

A second signature, ``explain`` (same inputs), returns each row's integrated
gradients (:mod:`mooring.training._explain`). It is written as a SavedModel of its own
in ``explain/``, so that loading the model to serve it loads none of it;
``mooring.json``'s ``explain`` key describes it. A folder without that key has no
explanation.

The folder's names, ``mooring.json`` and the one loader live in
:mod:`mooring.formats._model`; this module writes the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from mooring.errors import SchemaError
from mooring.features._spec import FeatureSpec
from mooring.formats._files import temporary_folder
from mooring.formats._labels import LabelEncoding
from mooring.formats._model import (
    CLASS_IDS,
    CLASSES,
    EXPLAIN_FOLDER,
    EXPLAIN_SIGNATURE,
    FORMAT_VERSION,
    METADATA_FILE,
    PROBABILITIES,
    SIGNATURE,
    VALUE,
    quiet_python_logs,
    signature_names,
    versions,
    write_metadata,
)
from mooring.training._explain import explain_function

__all__ = [
    "check_inputs",
    "export_model",
    "input_signature",
    "model_metadata",
    "postprocess",
    "staged_folder",
]


def postprocess(raw: tf.Tensor, label: LabelEncoding) -> dict[str, tf.Tensor]:
    """The model's raw output → the named serving outputs (same ops in training and serving)."""
    if label.task == "regression":
        value = raw[:, 0] * tf.constant(label.std, tf.float32) + tf.constant(label.mean, tf.float32)
        return {VALUE: value}
    if label.task == "binary":
        positive = raw[:, 0]
        probabilities = tf.stack([1.0 - positive, positive], axis=1)
    else:
        probabilities = raw
    class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int64)
    classes = tf.gather(tf.constant(list(label.vocabulary), tf.string), class_ids)
    return {PROBABILITIES: probabilities, CLASS_IDS: class_ids, CLASSES: classes}


def input_signature(spec: FeatureSpec) -> dict[str, tf.TensorSpec]:
    """One ``[None]`` input per column, keyed by the column's name.

    The TensorSpec's name (the signature's input name) is the column's own name when
    TensorFlow accepts it, else the alias :func:`signature_names` gives it.
    """
    tensors = signature_names(spec.names)
    return {
        name: tf.TensorSpec(
            [None], tf.string if dtype == "string" else tf.float32, name=tensors[name]
        )
        for name, dtype in spec.input_dtypes().items()
    }


def signature_description(spec: FeatureSpec, label: LabelEncoding) -> dict[str, Any]:
    tensors = signature_names(spec.names)
    inputs = {
        name: {
            "dtype": "string" if dtype == "string" else "float32",
            "shape": [None],
            "missing": "" if dtype == "string" else "NaN",
            **({"tensor": tensors[name]} if tensors[name] != name else {}),
        }
        for name, dtype in spec.input_dtypes().items()
    }
    if label.task == "regression":
        outputs: dict[str, Any] = {VALUE: {"dtype": "float32", "shape": [None]}}
    else:
        outputs = {
            PROBABILITIES: {"dtype": "float32", "shape": [None, label.num_classes]},
            CLASS_IDS: {"dtype": "int64", "shape": [None]},
            CLASSES: {"dtype": "string", "shape": [None]},
        }
    return {"name": SIGNATURE, "inputs": inputs, "outputs": outputs}


def export_model(
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    model_dir: Path,
    *,
    extra: Mapping[str, Any] | None = None,
    reference: Mapping[str, Any] | None = None,
) -> Path:
    """Write the SavedModel and ``mooring.json`` to ``model_dir`` (replaced if it exists).

    ``reference`` holds the rows the ``explain`` signature's attributions are measured
    from (model inputs, one array per column: a seeded sample of the training rows,
    :func:`mooring.training._explain.reference_sample`); without it, one row of imputed
    values.

    The folder appears whole or not at all (:func:`staged_folder`): an export that is
    interrupted leaves no half-written ``model_dir`` behind.

    Examples:
        >>> export_model(model, spec, label, Path("out/model"))  # doctest: +SKIP
    """
    with staged_folder(model_dir) as staging:
        _write_model(model, spec, label, staging, extra, reference)
    return model_dir


def _write_model(
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    model_dir: Path,
    extra: Mapping[str, Any] | None,
    reference: Mapping[str, Any] | None = None,
) -> None:
    """The SavedModel (and its explainer) and ``mooring.json``, written into ``model_dir``."""

    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return postprocess(model(check_inputs(inputs, spec.names), training=False), label)

    explained = explain_function(
        model, spec, label, lambda inputs: check_inputs(inputs, spec.names), reference=reference
    )
    with quiet_python_logs():
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[input_signature(spec)])
        archive.write_out(str(model_dir), verbose=False)
        if explained is not None:  # its own SavedModel: serving loads none of it
            explainer = keras.export.ExportArchive()
            explainer.track(model)
            explainer.add_endpoint(
                name=EXPLAIN_SIGNATURE, fn=explained[0], input_signature=[input_signature(spec)]
            )
            explainer.write_out(str(model_dir / EXPLAIN_FOLDER), verbose=False)
    metadata = model_metadata(spec, label, extra)
    if explained is not None:
        metadata["explain"] = {
            "signature": EXPLAIN_SIGNATURE,
            "folder": EXPLAIN_FOLDER,
            **explained[1],
        }
    write_metadata(model_dir, metadata)


def check_inputs(inputs: Mapping[str, tf.Tensor], names: Sequence[str]) -> dict[str, tf.Tensor]:
    """Every input ``[None]`` and all of one length, checked at run time (no broadcasting)."""
    checked = {}
    first = None
    asserts = []
    for name in names:
        value = tf.ensure_shape(inputs[name], [None], name=f"check_shape_{_op_name(name)}")
        rows = tf.shape(value)[0]
        if first is None:
            first = rows
        else:
            asserts.append(
                tf.debugging.assert_equal(
                    rows,
                    first,
                    message=f"every input needs the same number of rows; {name!r} differs from "
                    f"{names[0]!r}",
                )
            )
        checked[name] = value
    with tf.control_dependencies(asserts):
        return {k: tf.identity(v) for k, v in checked.items()}


#: The name of a model folder while it is written: ``.<name>.partial-<random>`` beside it.
_PARTIAL = ".{name}.partial-"


@contextmanager
def staged_folder(model_dir: Path) -> Iterator[Path]:
    """An empty folder beside ``model_dir`` to write a model into, renamed to ``model_dir``
    once the block completes (an earlier model there is replaced; a folder that is not a
    model folder is refused: it is not ours to replace).

    An exception, Ctrl-C included, removes the folder being written; one left by a
    process killed outright is known by its name and removed by the next export to the
    same place. So a reader never sees a half-written model, and a rerun never finds one
    in its way.

    >>> with staged_folder(Path(tempfile.mkdtemp()) / "model") as folder:  # doctest: +SKIP
    ...     write_metadata(folder, metadata)
    """
    if model_dir.exists() and not (model_dir / METADATA_FILE).exists():
        if any(model_dir.iterdir()):
            raise SchemaError(
                f"'{model_dir}' exists and is not a mooring model folder (no {METADATA_FILE}); "
                "choose another output, or remove the folder"
            )
        model_dir.rmdir()
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    prefix = _PARTIAL.format(name=model_dir.name)
    for stale in model_dir.parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = temporary_folder(model_dir.parent, prefix)  # 0755 under umask 022
    try:
        yield staging
        if model_dir.exists():  # an earlier model: moved aside, then removed
            replaced = Path(tempfile.mkdtemp(prefix=prefix, dir=model_dir.parent))
            os.replace(model_dir, replaced / model_dir.name)
            os.replace(staging, model_dir)
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            os.replace(staging, model_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def model_metadata(
    spec: FeatureSpec, label: LabelEncoding, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``mooring.json``'s content for a model of ``spec`` and ``label`` (any kind)."""
    return {
        "format": "mooring.model",
        "version": FORMAT_VERSION,
        "versions": versions(),
        "kind": "mlp",
        "task": label.task,
        "label": label.to_dict(),
        "label_vocabulary": list(label.vocabulary),
        "positive_class": label.positive,
        "threshold": 0.5,
        "feature_spec": spec.to_dict(),
        "feature_spec_hash": spec.fingerprint(),
        "schema_hash": spec.schema_fingerprint,
        "statistics_hash": spec.statistics_fingerprint,
        "signature": signature_description(spec, label),
        **(dict(extra) if extra else {}),
    }


def _op_name(name: str) -> str:
    return "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in name)
