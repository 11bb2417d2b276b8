"""Run a TF Lite export with the LiteRT interpreter (``ai-edge-litert``), the edge runtime.

The converted ``serving_default`` signature keeps the SavedModel's contract: one
rank-1 input per column, named by the column (``float32`` with NaN = missing,
``string`` with ``""`` = missing), and the same named outputs.

Examples:
    >>> lite = LiteModel.from_file("model.tflite")  # doctest: +SKIP
    >>> lite.predict({"age": np.array([39.0], np.float32), ...})["probabilities"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from mooring.errors import ModelLoadError, UsageError, import_extra
from mooring.formats._model import SIGNATURE, quiet_native_logs

__all__ = ["LiteModel"]


class LiteModel:
    """A TF Lite flatbuffer loaded in the LiteRT interpreter, called by column name."""

    def __init__(self, content: bytes, *, num_threads: int | None = None) -> None:
        litert = import_extra(
            "ai_edge_litert.interpreter", extra="lite", needed_for="running a TF Lite model"
        )
        try:
            self.interpreter = litert.Interpreter(model_content=content, num_threads=num_threads)
            # The first allocation applies the XNNPACK delegate, which prints "INFO: Created
            # TensorFlow Lite XNNPACK delegate for CPU." from native code, past any log level.
            with quiet_native_logs():
                self.interpreter.allocate_tensors()
            self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(
                f"the LiteRT interpreter cannot load this TF Lite model ({exc}); convert it "
                "again with `mooring export lite`"
            ) from None
        details = self.runner.get_input_details()
        self.inputs: dict[str, Any] = {name: d["dtype"] for name, d in details.items()}
        self.outputs: tuple[str, ...] = tuple(self.runner.get_output_details())

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> LiteModel:
        """Load a ``.tflite`` file."""
        with open(path, "rb") as fh:
            return cls(fh.read(), **kwargs)

    def _feed(self, columns: Mapping[str, Any], start: int, stop: int) -> dict[str, Any]:
        missing = [name for name in self.inputs if name not in columns]
        if missing:
            raise UsageError(
                f"the TF Lite model needs the columns {missing}; pass one array per input "
                f"({', '.join(self.inputs)})"
            )
        feed = {}
        for name, dtype in self.inputs.items():
            values = columns[name][start:stop]
            feed[name] = (
                np.asarray(values, dtype=object)
                if dtype in (np.bytes_, np.str_, np.object_)
                else np.asarray(values, dtype=dtype)
            )
        return feed

    def call(self, feed: Mapping[str, Any]) -> dict[str, Any]:
        """One interpreter call on a prepared feed (see :meth:`prepare`)."""
        return dict(self.runner(**feed))

    def prepare(self, columns: Mapping[str, Any], start: int = 0, stop: int | None = None) -> Any:
        """Rows ``start:stop`` of ``columns`` as the interpreter's input arrays."""
        rows = len(next(iter(columns.values()))) if columns else 0
        return self._feed(columns, start, rows if stop is None else stop)

    def predict(self, columns: Mapping[str, Any], batch_size: int = 8192) -> dict[str, Any]:
        """Run the signature on rank-1 arrays in batches; outputs as numpy arrays."""
        rows = len(next(iter(columns.values()))) if columns else 0
        parts: dict[str, list[Any]] = {}
        for start in range(0, max(rows, 1), batch_size):
            out = self.call(self._feed(columns, start, start + batch_size))
            for key, value in out.items():
                parts.setdefault(key, []).append(np.asarray(value))
        return {key: np.concatenate(values) for key, values in parts.items()}
