"""Bring your own model: a SavedModel folder, a ``.keras`` file or a YDF model folder →
a mooring model folder.

:func:`import_model` loads the model, picks one signature, checks that mooring can
serve it in batches, and writes a model folder: a SavedModel whose ``serving_default``
is that signature, with ``mooring.json`` beside it (``origin`` and ``kind``
``imported``, the source, the signature described). A signature is refused when an
input has no batch dimension (rank 0, or a fixed first dimension) or a dtype outside
:data:`DTYPES`, and, after one call on a generated batch of :data:`PROBE_ROWS` rows,
when an output's first dimension is not that batch. Inner dimensions the signature
leaves unknown are taken from ``input_shapes`` (``--input-shape NAME=d1,d2``), else
:data:`DEFAULT_DIM`; ``mooring.json`` records them (``example_shape``) for warm-up.

What enters is checked first: a folder holding a link that leaves it is refused
(:func:`~mooring.formats._vetting.check_folder`), and a SavedModel's ops are vetted
(:func:`~mooring.formats._vetting.vet_saved_model`; ``allowed_ops`` admits some,
recorded in ``mooring.json``) before it is loaded. The load, the description and the
probe then run in a child process held to a memory and a time limit
(:mod:`mooring.training._box`, ``limits``).

The folder is written as follows: a SavedModel whose chosen signature already is
``serving_default`` is copied byte for byte; another signature is re-saved as
``serving_default`` (``tf.saved_model.save``); a ``.keras`` file is exported with
Keras 3's ``model.export``, a YDF model folder with YDF's own
``to_tensorflow_saved_model`` (``mooring.json`` then names the ``ydf_tf`` op library
its loaders import first). :func:`serving_folder` converts a ``.keras`` file or a YDF
folder once, into a cache folder, for ``mooring serve --model-dir``.

Examples:
    >>> imported = import_model(Path("exported"), Path("out/model"), signature="predict",
    ...                         input_shapes={"ids": (16,)})  # doctest: +SKIP
    >>> imported.metadata["signature"]["inputs"]["ids"]["example_shape"]  # doctest: +SKIP
    [16]
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mooring._sandbox import Rules
from mooring.errors import ModelLoadError, MooringError, UsageError, import_extra
from mooring.formats._files import file_fingerprint
from mooring.formats._model import (
    FORMAT_VERSION,
    METADATA_FILE,
    PROBABILITIES,
    SIGNATURE,
    TENSOR_DTYPES,
    VALUE,
    input_name,
    quiet_python_logs,
    read_metadata,
    versions,
    write_metadata,
)
from mooring.formats._model_source import SAVED_MODEL_FILE, SourceFormat, source_format
from mooring.formats._version_record import TASKS
from mooring.formats._vetting import (
    ALLOWED_OPS_KEY,
    PROBE_KEY,
    check_folder,
    vet_saved_model,
)
from mooring.training._box import Limits, run_boxed

__all__ = [
    "DEFAULT_DIM",
    "DTYPES",
    "PROBE_ROWS",
    "ImportedModel",
    "Limits",
    "SourceModel",
    "cached_folder",
    "find_source",
    "import_model",
    "parse_input_shapes",
    "serving_folder",
]

#: The dtypes a signature input may have (TensorFlow's names): those the server decodes.
DTYPES = frozenset(TENSOR_DTYPES)
#: Rows of the generated batch the signature is called on once before it is accepted.
PROBE_ROWS = 3
#: An inner dimension the signature leaves unknown, when ``input_shapes`` does not name it.
DEFAULT_DIM = 8
#: Where ``mooring serve --model-dir`` keeps ``.keras`` files converted to SavedModels.
CACHE_ENV = "MOORING_CACHE_DIR"

_FORMATS = {"saved_model": "SavedModel folder", "keras": ".keras file", "ydf": "YDF model folder"}
_MISSING_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")


@dataclass(frozen=True)
class SourceModel:
    """A model to import: its resolved path, its format and the sha256 of its bytes
    (a ``.keras`` file's, or a stable hash over a folder's files: :func:`folder_sha256`)."""

    path: Path
    format: SourceFormat
    sha256: str


@dataclass(frozen=True)
class ImportedModel:
    """The mooring model folder written by :func:`import_model` and its ``mooring.json``."""

    folder: Path
    metadata: dict[str, Any]
    source: SourceModel


def folder_sha256(folder: Path) -> str:
    """sha256 over a folder's files: each relative path (POSIX) with its file's sha256,
    in sorted order, so the same files give the same hash wherever they lie.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "a.txt").write_text("x")
    ...     len(folder_sha256(Path(d)))
    64
    """
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(folder).as_posix()
        digest.update(f"{rel}\0{file_fingerprint(path)}\n".encode())
    return digest.hexdigest()


def find_source(path: str | os.PathLike[str]) -> SourceModel:
    """What ``path`` holds (:func:`source_format`), resolved, with its sha256.

    Raises:
        NotFoundError, ModelLoadError: as :func:`source_format`.
    """
    kind = source_format(path)
    resolved = Path(path).expanduser().resolve()
    digest = file_fingerprint(resolved) if kind == "keras" else folder_sha256(resolved)
    return SourceModel(resolved, kind, digest)


def parse_input_shapes(values: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``--input-shape NAME=d1,d2,...`` options → ``{NAME: (d1, d2, ...)}`` (inner dims,
    without the batch dimension; ``NAME=`` for none).

    >>> parse_input_shapes(["ids=16", "image=28,28,1", "x="])
    {'ids': (16,), 'image': (28, 28, 1), 'x': ()}

    Raises:
        UsageError: a value is not ``NAME=`` and positive integers, or names an input twice.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, dims = value.partition("=")
        parts = [d.strip() for d in dims.split(",")] if dims.strip() else []
        if not sep or not name or not all(d.isdigit() and int(d) > 0 for d in parts):
            raise UsageError(
                f"--input-shape {value!r}: expected NAME=d1,d2,... with the input's inner "
                "dimensions as positive integers, without the batch dimension "
                "(e.g. --input-shape ids=16 or --input-shape image=28,28,1)"
            )
        if name in shapes:
            raise UsageError(f"--input-shape names input {name!r} twice; pass it once")
        shapes[name] = tuple(int(d) for d in parts)
    return shapes


def import_model(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    signature: str = SIGNATURE,
    task: str | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    allowed_ops: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    allows_missing: Sequence[str] = (),
) -> ImportedModel:
    """Write the model at ``path`` as a mooring model folder at ``out`` (which must not
    exist, or be empty); nothing is left at ``out`` when it fails.

    ``signature`` names the signature to serve (a ``.keras`` file: its export's
    ``serving_default``); ``task`` (binary, multiclass, regression or None) is recorded.
    ``allowed_ops`` (``{op: reason}``, ``--allow-op``) admits ops the vetting refuses;
    ``limits`` holds the child process that loads and probes it (default 4 GiB, 300 s).
    ``allows_missing`` (``--allows-missing``) names float inputs the model handles NaN
    in (as missing); ``mooring.json`` records them (``signature.inputs[name].missing``)
    and the server passes null/NaN to them, where it refuses it for the other float
    inputs with a 400 (:attr:`~mooring.formats._model.SavedModelFolder.refuses_missing`).

    Raises:
        NotFoundError: nothing at ``path``.
        UsageError: ``out`` is not empty, a bad ``task``, ``input_shapes`` that do not fit,
            ``allows_missing`` naming what is not a float input.
        ModelLoadError: not a model, no such signature, or one mooring cannot serve; a
            link out of the folder, a refused op, or a probe past its limits.
    """
    source = find_source(path)
    if task is not None and task not in TASKS:
        raise UsageError(
            f"--task {task!r} is not one of {', '.join(TASKS)}; pass one or leave it out"
        )
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"'{target}' exists and is not empty; choose a new folder to write to")
    shapes = {k: tuple(v) for k, v in (input_shapes or {}).items()}
    allowed = dict(allowed_ops or {})
    box = limits or Limits()
    what = f"'{source.path}'"
    if source.format != "keras":
        check_folder(source.path, what=what)
    if source.format == "saved_model" and "tensorflow" in sys.modules:
        # Cheap where TensorFlow is loaded already; the child vets again before loading.
        vet_saved_model(source.path, allowed=allowed, memory_bytes=box.memory_bytes, what=what)
    try:
        # The child reads the source, writes the new folder only (made now: a rule needs it).
        target.mkdir(parents=True, exist_ok=True)
        described = run_boxed(
            _write,
            (source, target.resolve(), signature, shapes, allowed, box.memory_bytes),
            box,
            what=what,
            rules=Rules(read=(source.path.resolve(),), write=(target.resolve(),)),
        )
        metadata = _metadata(source, signature, task, described, _previous(source))
        _declare_missing(metadata["signature"]["inputs"], allows_missing, signature)
        metadata[ALLOWED_OPS_KEY] = [
            {"op": op, "reason": why} for op, why in sorted(allowed.items())
        ]
        metadata[PROBE_KEY] = {"memory_bytes": box.memory_bytes, "timeout_s": box.timeout_s}
        write_metadata(target, metadata)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return ImportedModel(folder=target, metadata=metadata, source=source)


def _declare_missing(inputs: dict[str, Any], names: Sequence[str], signature: str) -> None:
    """Mark each input of ``names`` as taking NaN as missing (``"missing": "NaN"``, as a
    model mooring trained describes its float inputs); refuse a name that is not a float
    input, listing those that are."""
    floats = sorted(
        n for n, info in inputs.items() if str(info.get("dtype", "")).startswith("float")
    )
    for name in names:
        if name not in floats:
            known = ", ".join(map(repr, floats)) or "none"
            raise UsageError(
                f"--allows-missing {name}: signature {signature!r} has no float input "
                f"{name!r} (its float inputs: {known}); name one of them"
            )
        inputs[name] = {**inputs[name], "missing": "NaN"}


def _previous(source: SourceModel) -> dict[str, Any]:
    """The ``mooring.json`` a SavedModel folder already holds (a mooring model folder)."""
    if source.format != "saved_model":
        return {}
    return read_metadata(source.path, required=False, what=f"'{source.path}'")


def _write(
    source: SourceModel,
    target: Path,
    signature: str,
    shapes: dict[str, tuple[int, ...]],
    allowed: dict[str, str],
    memory: int,
) -> dict[str, Any]:
    """Write the SavedModel to ``target``; the chosen signature, described and probed
    (in the child of :func:`~mooring.training._box.run_boxed`). Each SavedModel is
    vetted before it is loaded."""
    tf = _tensorflow()
    what = f"'{source.path}'"
    if source.format != "saved_model":
        if signature != SIGNATURE:
            raise UsageError(
                f"{what} is a {_FORMATS[source.format]}: its export serves '{SIGNATURE}' only; "
                "leave out --signature"
            )
        if source.format == "keras":
            _export_keras(_load_keras(source.path), target)
        else:
            _export_ydf(source.path, target)
        vet_saved_model(target, allowed=allowed, memory_bytes=memory, what=what)
        loaded = _load_saved_model(tf, target, what)
        return _described(tf, _signature(loaded, SIGNATURE, what), signature, shapes, what)
    vet_saved_model(source.path, allowed=allowed, memory_bytes=memory, what=what)
    loaded = _load_saved_model(tf, source.path, what)
    function = _signature(loaded, signature, what)
    described = _described(tf, function, signature, shapes, what)
    if signature == SIGNATURE:
        shutil.copytree(source.path, target, dirs_exist_ok=True)
    else:
        with quiet_python_logs():
            tf.saved_model.save(loaded, str(target), signatures={SIGNATURE: function})
    return described


def _tensorflow() -> Any:
    with quiet_python_logs():
        import tensorflow as tf
    return tf


def _load_saved_model(tf: Any, folder: Path, what: str) -> Any:
    try:
        with quiet_python_logs():
            return tf.saved_model.load(str(folder))
    except Exception as exc:
        raise ModelLoadError(
            f"{what} is not a loadable SavedModel ({_first_line(exc)}); export it again with "
            "tf.saved_model.save or model.export"
        ) from exc


def _load_keras(path: Path) -> Any:
    """The Keras model in a ``.keras`` file (safe mode: no Python code is deserialized)."""
    import keras

    try:
        with quiet_python_logs():
            return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:
        missing = _MISSING_CLASS.search(str(exc))
        if missing is not None:
            raise ModelLoadError(
                f"'{path}' uses the custom class '{missing.group(1)}', which this process "
                "cannot load (Keras finds a custom class only when a module that defines it, "
                "decorated with @keras.saving.register_keras_serializable(), is imported "
                "first); where that class is defined, export the model as a SavedModel "
                "(model.export('model_dir')) and import that folder instead"
            ) from exc
        raise ModelLoadError(
            f"'{path}' cannot be loaded as a Keras model ({_first_line(exc)}); save it with "
            "Keras 3 (model.save('model.keras')) or export a SavedModel (model.export(...))"
        ) from exc


def _export_keras(model: Any, target: Path) -> None:
    try:
        with quiet_python_logs():
            model.export(str(target), format="tf_saved_model", verbose=False)
    except Exception as exc:
        raise ModelLoadError(
            f"the Keras model cannot be exported as a SavedModel ({_first_line(exc)}); build "
            "it on inputs of known rank (keras.Input) and save it again"
        ) from exc


def _export_ydf(folder: Path, target: Path) -> None:
    """A YDF model folder as a SavedModel of YDF's own (its ops from ``ydf_tf``)."""
    from mooring.formats._model import load_op_libraries

    ydf = import_extra("ydf", extra="trees", needed_for=f"'{folder}', a YDF model folder,")
    load_op_libraries({"op_libraries": [_op_library()]}, what=f"YDF model '{folder}'")
    try:
        with quiet_python_logs():
            ydf.load_model(str(folder)).to_tensorflow_saved_model(str(target), mode="tf")
    except Exception as exc:
        raise ModelLoadError(
            f"'{folder}' cannot be exported from YDF as a SavedModel ({_first_line(exc)}); "
            "save the model again with the installed ydf"
        ) from exc


def _op_library() -> dict[str, str]:
    from mooring.training._trees import op_library

    return op_library()


def _signature(loaded: Any, name: str, what: str) -> Any:
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if name in signatures:
        return signatures[name]
    if not signatures:
        raise ModelLoadError(
            f"{what} has no signature to serve; save it with one: "
            "tf.saved_model.save(obj, folder, signatures={'serving_default': fn}) or "
            "model.export(folder)"
        )
    raise ModelLoadError(
        f"{what} has no signature {name!r}; it has {', '.join(map(repr, sorted(signatures)))}: "
        "pass one of them with --signature"
    )


def _shape(spec: Any) -> list[int | None] | None:
    return None if spec.shape.rank is None else list(spec.shape.as_list())


def _described(
    tf: Any, function: Any, signature: str, shapes: dict[str, tuple[int, ...]], what: str
) -> dict[str, Any]:
    """The signature's inputs and outputs (``mooring.json``'s ``signature``), after one
    call on a generated batch of :data:`PROBE_ROWS` rows."""
    _, kwargs = function.structured_input_signature
    inputs: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}  # input name → the signature's keyword
    for key, spec in sorted(kwargs.items()):
        name = input_name(str(key), spec.name)  # "Age", though TensorFlow saved "age"
        keys[name] = key
        inputs[name] = _input(name, spec, shapes.get(name, shapes.get(key)), signature, what)
    unknown = sorted(set(shapes) - set(inputs) - set(keys.values()))
    if unknown:
        raise UsageError(
            f"--input-shape names {', '.join(map(repr, unknown))}, not an input of signature "
            f"{signature!r} (its inputs: {', '.join(map(repr, sorted(inputs))) or 'none'})"
        )
    outputs = {
        str(name): {"dtype": spec.dtype.name, "shape": _shape(spec)}
        for name, spec in sorted(function.structured_outputs.items())
    }
    _probe(tf, function, {keys[n]: i for n, i in inputs.items()}, signature, what)
    return {"name": SIGNATURE, "inputs": inputs, "outputs": outputs}


def _input(
    name: str, spec: Any, given: tuple[int, ...] | None, signature: str, what: str
) -> dict[str, Any]:
    """One input described, with the inner dims of its probe (``example_shape``)."""
    shape = _shape(spec)
    dtype = spec.dtype.name
    where = f"{what}: signature {signature!r} input {name!r}"
    if shape is None:
        raise ModelLoadError(
            f"{where} has an unknown rank, so its batch dimension is unknown; save the "
            "signature with a TensorSpec of shape [None, ...]"
        )
    if not shape or shape[0] is not None:
        kind = "is a scalar (rank 0)" if not shape else f"has a fixed first dimension {shape[0]}"
        raise ModelLoadError(
            f"{where} {kind}: mooring serves batches, so every input's first dimension must "
            f"be the batch (None); its shape is {shape}. Save the signature with "
            f"tf.TensorSpec([None{', ...' if len(shape) > 1 else ''}], ...)"
        )
    if dtype not in DTYPES:
        raise ModelLoadError(
            f"{where} is {dtype}, which mooring does not serve; inputs may be "
            f"{', '.join(sorted(DTYPES))}"
        )
    inner = shape[1:]
    if given is not None and (
        len(given) != len(inner)
        or any(d is not None and d != g for d, g in zip(inner, given, strict=False))
    ):
        shown = ",".join("?" if d is None else str(d) for d in inner)
        raise UsageError(
            f"--input-shape {name}={','.join(map(str, given))} does not fit {where}, whose "
            f"inner dimensions are [{shown}] (? = unknown): give {len(inner)} dimension(s), "
            "the known ones as they are"
        )
    example = [
        d if d is not None else (given[i] if given is not None else DEFAULT_DIM)
        for i, d in enumerate(inner)
    ]
    return {"dtype": dtype, "shape": shape, "example_shape": example}


def _probe(
    tf: Any, function: Any, inputs: dict[str, dict[str, Any]], signature: str, what: str
) -> None:
    """Call the signature once on :data:`PROBE_ROWS` rows (zeros, ``False``, ``""``) and
    check that every output has one row per input row."""
    feed = {}
    for key, info in inputs.items():
        shape = [PROBE_ROWS, *info["example_shape"]]
        dtype = info["dtype"]
        feed[key] = tf.fill(shape, "") if dtype == "string" else tf.zeros(shape, dtype=dtype)
    shapes = ", ".join(
        f"{k}=[{', '.join(map(str, v['example_shape']))}]" for k, v in inputs.items()
    )
    started = time.monotonic()
    try:
        with quiet_python_logs():
            outputs = function(**feed)
    except Exception as exc:
        spent = time.monotonic() - started
        unknown = [k for k, v in inputs.items() if None in v["shape"][1:]]
        hint = (
            f"inputs {', '.join(map(repr, unknown))} have unknown inner dimensions, tried as "
            f"{DEFAULT_DIM} unless given: pass each one's with --input-shape NAME=d1,d2 "
            f"(e.g. --input-shape {unknown[0]}=16)"
            if unknown
            else "check that the model runs on zeros and empty strings"
        )
        raise ModelLoadError(
            f"{what}: calling signature {signature!r} on a batch of {PROBE_ROWS} rows with "
            f"inner shapes {shapes or 'none'} failed after {spent:.1f} s, within the probe's "
            f"limits (--probe-memory, --probe-timeout), with the model's own error: "
            f"{_first_line(exc)}; {hint}"
        ) from exc
    for name, value in sorted(dict(outputs).items()):
        got = list(value.shape)
        if not got or got[0] != PROBE_ROWS:
            raise ModelLoadError(
                f"{what}: signature {signature!r} output {name!r} has shape {got} for a batch "
                f"of {PROBE_ROWS} rows: its first dimension is not the batch (a sum or mean "
                "over the rows?); mooring serves models whose every output has one row per "
                "input row"
            )


def _metadata(
    source: SourceModel,
    signature: str,
    task: str | None,
    described: dict[str, Any],
    previous: Mapping[str, Any],
) -> dict[str, Any]:
    """``mooring.json`` of an imported folder (what a mooring folder held is kept beneath)."""
    return {
        **previous,
        "format": "mooring.model",
        "format_version": FORMAT_VERSION,
        "origin": "imported",
        "kind": "imported",
        "task": task if task is not None else previous.get("task"),
        "source": {
            "path": str(source.path),
            "format": source.format,
            "sha256": source.sha256,
            "signature": signature,
        },
        "signature": _kept_aliases(described, previous),
        **_roles(task, described["outputs"]),
        **({"op_libraries": [_op_library()]} if source.format == "ydf" else {}),
        "versions": versions(),
    }


def _roles(task: str | None, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """``roles``: with a ``task`` and one floating-point output, that output holds the
    probabilities (classification) or the value (regression); otherwise none are named.

    >>> _roles("binary", {"output_0": {"dtype": "float32", "shape": [None, 1]}})
    {'roles': {'probabilities': 'output_0'}}
    >>> _roles(None, {"output_0": {"dtype": "float32", "shape": [None, 1]}})
    {}
    """
    floating = [name for name, info in outputs.items() if str(info["dtype"]).startswith("float")]
    if task is None or len(floating) != 1:
        return {}
    return {"roles": {VALUE if task == "regression" else PROBABILITIES: floating[0]}}


def _kept_aliases(described: dict[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """A mooring folder's column aliases (``signature.inputs[column].tensor``) kept, so the
    imported folder answers to the same column names."""
    before = (previous.get("signature") or {}).get("inputs") or {}
    columns = {
        str(entry["tensor"]): column
        for column, entry in before.items()
        if isinstance(entry, Mapping) and entry.get("tensor")
    }
    if not columns:
        return described
    inputs = {}
    for name, info in described["inputs"].items():
        column = columns.get(name, name)
        inputs[column] = {**info, "tensor": name} if column != name else info
    return {**described, "inputs": dict(sorted(inputs.items()))}


def _first_line(exc: BaseException) -> str:
    """What ``exc`` says, its library's wrapping taken off: TensorFlow's own message with
    the node it failed at (:func:`_tf_said`), Keras's underlying cause (:func:`_keras_said`),
    else the first line."""
    text = str(exc).strip() or type(exc).__name__
    if _TF_NODE.search(text) or text.startswith("Graph execution error"):
        return _tf_said(exc, text)
    if _KERAS_WRAPPED in text or _KERAS_CAUSE in text:
        return _keras_said(exc, text)
    return text.splitlines()[0][:300]


#: How TensorFlow names the node and the function a runtime error happened in.
_TF_NODE = re.compile(r"\{\{node ([^}]+)\}\}|Detected at node '?([^'\s]+)'?")
_TF_FUNCTION = re.compile(r"\{\{function_node ([^}]+)\}\}")
#: How Keras wraps what went wrong while it rebuilt a model from its config.
_KERAS_WRAPPED = "could not be deserialized properly"
_KERAS_CAUSE = "Exception encountered:"
_KERAS_LAYER = re.compile(
    r"Error when deserializing class '([^']+)' using config=\{'name': '([^']+)'"
)


def _tf_said(exc: BaseException, text: str) -> str:
    """A TensorFlow runtime error as ``InvalidArgumentError at node 'Reshape': Input to
    reshape is a tensor with 9 values, ...``: its class, the node, and its own message,
    which follows the "Graph execution error:" line and the stack TensorFlow prints.

    >>> lines = ["Graph execution error:", "", "Detected at node r defined at (most recent "
    ...          "call last):", "<stack traces unavailable>", "bad shape", "  [[{{node r}}]]"]
    >>> _tf_said(ValueError(), chr(10).join(lines))
    "ValueError at node 'r': bad shape"
    """
    found = _TF_NODE.search(text)
    node = next((g for g in found.groups() if g), None) if found else None
    function = _TF_FUNCTION.search(text)
    kept = [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not line[:1].isspace()  # the stack's frames and the [[{{node ...}}]] line
        and not line.startswith(("Graph execution error", "Detected at node", "<stack trace"))
    ]
    said = " ".join(kept) or "no message"
    where = f" at node '{node}'" if node else ""
    if function is not None and not function.group(1).startswith("__inference_signature"):
        where += f" (function {function.group(1)})"
    return f"{type(exc).__name__}{where}: {said[:500]}"


def _keras_said(exc: BaseException, text: str) -> str:
    """Keras's underlying cause of a model it could not rebuild: the innermost exception
    of the chain (Keras wraps it in "could not be deserialized properly ... Exception
    encountered: ..."), the layer it was rebuilding, without the configs it quotes.

    >>> inner = ValueError("Could not interpret activation function identifier: nope")
    >>> outer = TypeError("<class 'Dense'> could not be deserialized properly. ...")
    >>> outer.__cause__ = inner
    >>> _keras_said(outer, str(outer))
    'ValueError: Could not interpret activation function identifier: nope'
    """
    innermost, seen = exc, {id(exc)}
    while (nxt := innermost.__cause__ or innermost.__context__) is not None:
        if id(nxt) in seen:
            break
        seen.add(id(nxt))
        innermost = nxt
    said = str(innermost).strip() or type(innermost).__name__
    if _KERAS_CAUSE in said:  # the chain was cut: the text still holds the cause
        said = said.rsplit(_KERAS_CAUSE, 1)[1].strip()
    said = said.split(" Full object config:")[0].split("\n")[0].strip()
    layers = _KERAS_LAYER.findall(text)
    where = f"layer '{layers[-1][1]}' ({layers[-1][0]}): " if layers else ""
    return f"{where}{type(innermost).__name__}: {said[:400]}"


def cache_root() -> Path:
    """Where converted ``.keras`` files are kept: ``$MOORING_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/mooring/keras``, else ``~/.cache/mooring/keras``."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mooring" / "keras"


def cached_folder(path: str | os.PathLike[str], root: Path | None = None) -> Path | None:
    """The converted folder of a ``.keras`` file or a YDF folder when the cache holds it
    (no TensorFlow)."""
    return _cached(find_source(path), root or cache_root())


def _cached(source: SourceModel, cache: Path) -> Path | None:
    folder = cache / source.sha256
    done = (folder / METADATA_FILE).is_file() and (folder / SAVED_MODEL_FILE).is_file()
    return folder if done else None


def serving_folder(path: str | os.PathLike[str], root: Path | None = None) -> Path:
    """A SavedModel folder ``mooring serve --model-dir`` can load for ``path``: a folder
    as it is, a ``.keras`` file or a YDF model folder converted (:func:`import_model`)
    once and kept in the cache (:func:`cache_root`, or ``root``) under its sha256.

    Raises:
        NotFoundError, ModelLoadError: as :func:`import_model`.
    """
    if source_format(path) == "saved_model":
        return Path(path)
    source = find_source(path)
    cache = root or cache_root()
    found = _cached(source, cache)
    if found is not None:
        return found
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".converting-", dir=cache))
    try:
        converted = import_model(source.path, work / "model")
        final = cache / source.sha256
        try:
            converted.folder.rename(final)
        except OSError:  # another process converted it meanwhile
            if _cached(source, cache) is None:
                raise
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mooring.training._import PATH``: :func:`serving_folder` of ``PATH`` in a
    process of its own, so ``mooring serve`` loads neither Keras nor a TensorFlow runtime
    for it. Prints one JSON line: ``{"folder": ...}``, or ``{"error": CLASS, "message":
    ...}`` (exit status 2) for a :class:`~mooring.errors.MooringError`.
    """
    import json
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m mooring.training._import PATH", file=sys.stderr)
        return 2
    try:
        folder = serving_folder(args[0])
    except MooringError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": exc.message}))
        return exc.exit_code
    print(json.dumps({"folder": str(folder)}))
    return 0


if __name__ == "__main__":
    # Run as the module itself, not as __main__: the boxed probe's child finds the
    # functions it is handed by their module's name (``python -m`` names this __main__).
    from mooring.training import _import

    raise SystemExit(_import.main())
