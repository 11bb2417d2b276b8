"""SavedModel → TF Lite flatbuffer with ``tf.lite.TFLiteConverter``, in three modes.

* ``float16``: weights stored in half precision (about half the size), computed in float32.
* ``dynamic``: weights stored as int8, activations quantized on the fly (dynamic range).
* ``int8``: weights and activations int8, their ranges calibrated on representative rows.
  Inputs and outputs stay float32/string, and ops without an int8 kernel (string
  lookups, bucketize) stay in float, so the model runs on any TF Lite CPU runtime
  but is not an integer-only model for accelerators that need one.

Only TF Lite builtin ops are allowed: a model that needs TensorFlow ops (``Select
TF ops``, e.g. string hashing or feature crosses) is reported with the op names,
not converted, because the LiteRT interpreter cannot run it without the Flex
delegate and the export could not be checked.

Examples:
    >>> conversion = convert_saved_model("model", "dynamic")  # doctest: +SKIP
    >>> len(conversion.content or b"") > 0, conversion.select_tf_ops  # doctest: +SKIP
    (True, ())
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mooring.errors import UsageError, import_extra
from mooring.formats._model import SIGNATURE, quiet_native_logs, quiet_python_logs

__all__ = ["MODES", "Conversion", "Mode", "check_mode", "convert_saved_model"]

Mode = Literal["float16", "dynamic", "int8"]
MODES: tuple[Mode, ...] = ("float16", "dynamic", "int8")

Representative = Callable[[], Iterator[Mapping[str, np.ndarray[Any, Any]]]]


def check_mode(mode: str) -> Mode:
    """``mode`` if it is one of :data:`MODES`, else a :class:`UsageError` naming them."""
    if mode not in MODES:
        raise UsageError(
            f"export mode {mode!r} is not valid; use one of {', '.join(MODES)} "
            "(CLI: --mode int8; config: [export] mode)"
        )
    return mode


@dataclass(frozen=True)
class Conversion:
    """The converter's output: the flatbuffer, or why there is none."""

    mode: Mode
    content: bytes | None
    #: TensorFlow ops the model needs that TF Lite has no builtin kernel for.
    select_tf_ops: tuple[str, ...] = ()
    #: Ops kept in float in int8 mode (the requested ones present in the model).
    float_ops: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence converter noise: Python's (parameter-name sanitizing, deprecations) and the
    native lines the quantizer and the calibrating interpreter print on stderr
    (``fully_quantize: 0, inference_type: 6, …``, the XNNPACK delegate's ``INFO``)."""
    with quiet_native_logs(), quiet_python_logs(), warnings.catch_warnings():
        # The calibrator uses tf.lite.Interpreter internally, which warns it is deprecated.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _select_ops(exc: Exception) -> tuple[str, ...]:
    """Names of the TensorFlow ops a conversion error says have no TF Lite builtin."""
    found: list[str] = []
    for error in getattr(exc, "errors", None) or ():
        message = str(getattr(error, "error_message", ""))
        name = str(getattr(getattr(error, "operator", None), "name", ""))
        if "neither a custom op nor a flex op" in message and name:
            short = name.removeprefix("tf.")
            if short not in found:
                found.append(short)
    return tuple(found)


def _op_names(content: bytes) -> set[str]:
    litert = import_extra(
        "ai_edge_litert.interpreter", extra="lite", needed_for="checking a TF Lite export"
    )
    interpreter = litert.Interpreter(model_content=content)
    return {str(op["op_name"]) for op in interpreter._get_ops_details()}


def convert_saved_model(
    model_dir: str | os.PathLike[str],
    mode: str,
    *,
    representative: Representative | None = None,
    float_ops: Sequence[str] = (),
) -> Conversion:
    """Convert the ``serving_default`` signature of a SavedModel folder.

    ``representative`` (int8 only, required there) returns an iterator of
    single-row input mappings (column → array of shape ``[1]``). ``float_ops``
    names TF Lite ops (``"ONE_HOT"``) to keep in float in int8 mode.
    """
    import time

    import tensorflow as tf

    checked = check_mode(mode)
    if checked == "int8" and representative is None:
        raise UsageError("int8 conversion needs representative rows to calibrate on")
    started = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(Path(model_dir)), signature_keys=[SIGNATURE]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if checked == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif checked == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    else:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
    kept: tuple[str, ...] = ()
    failed: Exception | None = None
    with _quiet():  # caught inside it: the error is reported, not the converter's stderr
        try:
            if checked == "int8" and float_ops:
                content, kept = _int8_with_float_ops(converter, representative, float_ops)
            else:
                content = converter.convert()
        except Exception as exc:  # the converter raises ConverterError and plain errors alike
            failed = exc
    if failed is not None:
        text = str(failed).strip().splitlines()
        return Conversion(
            mode=checked,
            content=None,
            select_tf_ops=_select_ops(failed),
            error=text[0] if text else type(failed).__name__,
            seconds=time.perf_counter() - started,
        )
    return Conversion(
        mode=checked,
        content=bytes(content),
        float_ops=kept,
        seconds=time.perf_counter() - started,
    )


def _int8_with_float_ops(
    converter: Any, representative: Representative | None, float_ops: Sequence[str]
) -> tuple[bytes, tuple[str, ...]]:
    """Calibrate once, then quantize with ``float_ops`` left in float.

    This is TF Lite's documented selective quantization (the quantization
    debugger's ``denylisted_ops``); ops absent from the model are ignored.
    """
    import tensorflow as tf

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative, debug_options=options
    )
    content = bytes(debugger.get_nondebug_quantized_model())
    names = _op_names(content)
    return content, tuple(op for op in float_ops if op in names)
