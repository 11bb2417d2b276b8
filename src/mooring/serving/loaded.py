"""One loaded SavedModel version: its signature's inputs and outputs, warm-up and prediction.

Serving needs TensorFlow only: the artifact is opened with
``tf.saved_model.load`` and its ``serving_default`` signature is called with
one ``[n]`` tensor per input column.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mooring._tensorflow import import_tensorflow
from mooring.formats.model import METADATA_FILE, NUMPY_DTYPES, SIGNATURE, TensorInfo
from mooring.serving.errors import ModelLoadError

__all__ = ["SIGNATURE", "ServedModel", "TensorInfo", "load_served_model"]


@dataclass
class ServedModel:
    """A version ready to answer: the concrete signature plus what it expects and returns."""

    name: str
    version: int
    path: Path
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    metadata: dict[str, Any]
    function: Any = field(repr=False)
    module: Any = field(repr=False)
    load_seconds: float = 0.0
    # The data contract checked at the door (serving.contract.InputContract); None: signature only.
    contract: Any = None

    def predict(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """Run the signature on validated columns (arrays or lists); numpy arrays out."""
        tf = import_tensorflow()

        tensors = {
            name: tf.constant(columns[name], dtype=tf.string if info.is_string else info.dtype)
            for name, info in self.inputs.items()
        }
        result = self.function(**tensors)
        out: dict[str, np.ndarray[Any, Any]] = {}
        for name, tensor in result.items():
            value = tensor.numpy()
            if value.dtype == object:
                value = np.array(
                    [v.decode("utf-8", "replace") for v in value.ravel()], dtype=object
                )
                value = value.reshape(tensor.shape)
            out[name] = value
        return out

    def example_columns(self, rows: int) -> dict[str, np.ndarray[Any, Any]]:
        """Real-looking inputs for warm-up: training ranges and vocabularies from mooring.json.

        Without a feature spec, numbers are small integers and strings are missing ("").
        """
        spec = self.metadata.get("feature_spec")
        listed = spec.get("features", []) if isinstance(spec, dict) else []
        hints = {f["name"]: f for f in listed if isinstance(f, dict) and "name" in f}
        steps = np.linspace(0.0, 1.0, rows) if rows > 1 else np.zeros(1)
        columns: dict[str, np.ndarray[Any, Any]] = {}
        for name, info in self.inputs.items():
            hint = hints.get(name, {})
            if info.is_string:
                vocab = hint.get("vocabulary") or [""]
                values = [str(vocab[i % len(vocab)]) for i in range(rows)]
                columns[name] = np.array(values, dtype=object)
            else:
                lower = float(hint.get("lower", 0.0) or 0.0)
                upper = float(hint.get("upper", 0.0) or 0.0)
                span = (upper - lower) if upper > lower else 2.0
                columns[name] = (lower + steps * span).astype(info.numpy_dtype())
        return columns

    def warm_up(self, requests: int, max_batch_size: int) -> None:
        """Run ``requests`` predictions of growing batch sizes before taking traffic."""
        for i in range(requests):
            rows = min(max_batch_size, 2 ** (i % 7))
            self.predict(self.example_columns(rows))


def _info(name: str, spec: Any) -> TensorInfo:
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else (None,)
    return TensorInfo(name=name, dtype=spec.dtype.name, shape=shape)


def load_served_model(name: str, version: int, path: Path) -> ServedModel:
    """Load ``path`` with ``tf.saved_model.load`` and read its ``serving_default`` signature."""
    tf = import_tensorflow()

    start = time.perf_counter()
    try:
        module = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"model '{name}' version {version}: '{path}' is not a loadable SavedModel ({exc}); "
            "re-register a version exported by mooring"
        ) from exc
    function = module.signatures.get(SIGNATURE)
    if function is None:
        raise ModelLoadError(
            f"model '{name}' version {version} has no '{SIGNATURE}' signature "
            f"(found {sorted(module.signatures)}); export it with mooring"
        )
    _, kwargs = function.structured_input_signature
    # The TensorSpec keeps the column's own name ('hours-per-week'); the kwarg key is a
    # sanitised Python identifier. Clients send, and the signature accepts, the former.
    inputs = {
        (spec.name or key): _info(spec.name or key, spec)
        for key, spec in sorted(kwargs.items(), key=lambda kv: kv[1].name or kv[0])
    }
    outputs = {key: _info(key, spec) for key, spec in sorted(function.structured_outputs.items())}
    for info in inputs.values():
        if info.shape != (None,) or not (info.is_string or info.dtype in NUMPY_DTYPES):
            raise ModelLoadError(
                f"model '{name}' version {version}: input '{info.name}' is {info.dtype} "
                f"{list(info.shape)}; serving expects one [None] float or string column per input"
            )
    meta_file = path / METADATA_FILE
    metadata: dict[str, Any] = {}
    if meta_file.is_file():
        try:
            metadata = json.loads(meta_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelLoadError(
                f"model '{name}' version {version}: {METADATA_FILE} is not JSON ({exc})"
            ) from exc
    return ServedModel(
        name=name,
        version=version,
        path=path,
        inputs=inputs,
        outputs=outputs,
        metadata=metadata,
        function=function,
        module=module,
        load_seconds=time.perf_counter() - start,
    )
