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

Serving needs TensorFlow only: :func:`load_model` uses ``tf.saved_model.load``
and warns when the versions that wrote the model differ from the running ones.
"""

from __future__ import annotations

import json
import platform
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pyarrow as pa
import tensorflow as tf
from absl import logging as absl_logging

from mooring.errors import NotFoundError, SchemaError
from mooring.features import FeatureSpec, check_columns, columns_from_table
from mooring.formats.model import METADATA_FILE, SIGNATURE
from mooring.training.labels import LabelEncoding

__all__ = [
    "METADATA_FILE",
    "LoadedModel",
    "ModelVersionWarning",
    "export_model",
    "load_model",
    "postprocess",
    "predict_saved_model",
    "versions",
]

FORMAT_VERSION = 1


class ModelVersionWarning(UserWarning):
    """The model was written by other mooring / TensorFlow / Keras versions than those running."""


def versions() -> dict[str, str]:
    """The versions recorded with every artifact."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        mooring_version = version("mooring")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        mooring_version = "0+unknown"
    return {
        "mooring": mooring_version,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def postprocess(raw: tf.Tensor, label: LabelEncoding) -> dict[str, tf.Tensor]:
    """The model's raw output → the named serving outputs (same ops in training and serving)."""
    if label.task == "regression":
        value = raw[:, 0] * tf.constant(label.std, tf.float32) + tf.constant(label.mean, tf.float32)
        return {"value": value}
    if label.task == "binary":
        positive = raw[:, 0]
        probabilities = tf.stack([1.0 - positive, positive], axis=1)
    else:
        probabilities = raw
    class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int64)
    classes = tf.gather(tf.constant(list(label.vocabulary), tf.string), class_ids)
    return {"probabilities": probabilities, "class_ids": class_ids, "classes": classes}


def input_signature(spec: FeatureSpec) -> dict[str, tf.TensorSpec]:
    return {
        name: tf.TensorSpec([None], tf.string if dtype == "string" else tf.float32, name=name)
        for name, dtype in spec.input_dtypes().items()
    }


def signature_description(spec: FeatureSpec, label: LabelEncoding) -> dict[str, Any]:
    inputs = {
        name: {
            "dtype": "string" if dtype == "string" else "float32",
            "shape": [None],
            "missing": "" if dtype == "string" else "NaN",
        }
        for name, dtype in spec.input_dtypes().items()
    }
    if label.task == "regression":
        outputs: dict[str, Any] = {"value": {"dtype": "float32", "shape": [None]}}
    else:
        outputs = {
            "probabilities": {"dtype": "float32", "shape": [None, label.num_classes]},
            "class_ids": {"dtype": "int64", "shape": [None]},
            "classes": {"dtype": "string", "shape": [None]},
        }
    return {"name": SIGNATURE, "inputs": inputs, "outputs": outputs}


def export_model(
    model: keras.Model,
    spec: FeatureSpec,
    label: LabelEncoding,
    model_dir: Path,
    *,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the SavedModel and ``mooring.json`` to ``model_dir`` (replaced if it exists).

    Example:
        >>> export_model(model, spec, label, Path("out/model"))  # doctest: +SKIP
    """
    names = spec.names

    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
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
            checked = {k: tf.identity(v) for k, v in checked.items()}
        return postprocess(model(checked, training=False), label)

    if model_dir.exists():
        if not (model_dir / METADATA_FILE).exists() and any(model_dir.iterdir()):
            raise SchemaError(
                f"'{model_dir}' exists and is not a mooring model folder; choose another output"
            )
        shutil.rmtree(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    # TensorFlow logs that names like 'capital-gain' become Python-safe parameter names;
    # the signature keys keep the column names, so the message is noise here.
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[input_signature(spec)])
        archive.write_out(str(model_dir), verbose=False)
    finally:
        absl_logging.set_verbosity(verbosity)
    metadata = {
        "format": "mooring.model",
        "version": FORMAT_VERSION,
        "versions": versions(),
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
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return model_dir


def _op_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


@dataclass
class LoadedModel:
    """A SavedModel loaded with TensorFlow only, with its mooring metadata."""

    path: Path
    metadata: dict[str, Any]
    spec: FeatureSpec
    signature: Any
    module: Any

    @property
    def task(self) -> str:
        return str(self.metadata["task"])

    @property
    def label_vocabulary(self) -> list[str]:
        return list(self.metadata.get("label_vocabulary", []))

    def predict(self, columns: Mapping[str, Any], batch_size: int = 8192) -> dict[str, Any]:
        """Run ``serving_default`` on rank-1 arrays, in batches; outputs as numpy arrays."""
        checked = check_columns(columns, self.spec)
        rows = len(next(iter(checked.values()))) if checked else 0
        parts: dict[str, list[Any]] = {}
        for start in range(0, max(rows, 1), batch_size):
            feed = {}
            for name, dtype in self.spec.input_dtypes().items():
                chunk = checked[name][start : start + batch_size]
                feed[name] = tf.constant(chunk, tf.string if dtype == "string" else tf.float32)
            for key, value in self.signature(**feed).items():
                parts.setdefault(key, []).append(value.numpy())
        return {k: np.concatenate(v) for k, v in parts.items()}


def load_model(model_dir: str | Path, *, warn: bool = True) -> LoadedModel:
    """Load a model folder (SavedModel + ``mooring.json``) with ``tf.saved_model.load``.

    Warns with :class:`ModelVersionWarning` when mooring, TensorFlow or Keras
    versions differ from the ones that wrote it.

    Raises:
        NotFoundError: the folder or its ``mooring.json`` does not exist.
    """
    path = Path(model_dir)
    meta_file = path / METADATA_FILE
    if not meta_file.is_file():
        raise NotFoundError(
            f"'{path}' is not a mooring model folder (no {METADATA_FILE}); point at the folder "
            "`mooring train` wrote (…/model)"
        )
    metadata = json.loads(meta_file.read_text(encoding="utf-8"))
    if warn:
        running = versions()
        written = metadata.get("versions", {})
        changed = [
            f"{k} {written.get(k)} → {running[k]}"
            for k in ("mooring", "tensorflow", "keras")
            if written.get(k) != running[k]
        ]
        if changed:
            warnings.warn(
                f"model '{path}' was written by other versions ({'; '.join(changed)}); "
                "predictions may differ — retrain with the running versions to be sure",
                ModelVersionWarning,
                stacklevel=2,
            )
    module = tf.saved_model.load(str(path))
    return LoadedModel(
        path=path,
        metadata=metadata,
        spec=FeatureSpec.from_dict(metadata["feature_spec"]),
        signature=module.signatures[SIGNATURE],
        module=module,
    )


def predict_saved_model(
    model_dir: str | Path | LoadedModel,
    data: pa.Table | Mapping[str, Any],
    *,
    batch_size: int = 8192,
) -> dict[str, Any]:
    """Predict with an exported model from an Arrow table or a mapping of rank-1 arrays.

    Returns ``{"probabilities", "class_ids", "classes"}`` (classification) or
    ``{"value"}`` (regression) as numpy arrays, one row per input row.

    Example:
        >>> out = predict_saved_model("runs/income/model", table)  # doctest: +SKIP
        >>> out["probabilities"][:, 1]  # doctest: +SKIP
    """
    loaded = model_dir if isinstance(model_dir, LoadedModel) else load_model(model_dir)
    columns = columns_from_table(data, loaded.spec) if isinstance(data, pa.Table) else data
    return loaded.predict(columns, batch_size=batch_size)
