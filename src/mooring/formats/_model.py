"""The model folder: ONE SavedModel plus ``mooring.json`` beside it, and its one loader.

This module is the one place that spells the folder's file names, the signature's
name and its outputs, and the one place that opens a folder with
``tf.saved_model.load``: training (its parity check), evaluation, the pipeline's
replay, the TF Lite export, monitoring and the server all load through
:func:`load_saved_model`. TensorFlow is imported only when a model is loaded.

The ``serving_default`` signature of a model mooring trained takes one named input per
feature column, each of shape ``[None]``: ``float32`` for numbers (NaN = missing) and
``string`` for text (``""`` = missing): a *columnar* model. An imported model may take
tensors of any rank and of the dtypes in :data:`TENSOR_DTYPES`, as long as every input's
first dimension is the batch (unknown, ``None``). Outputs of a trained model:

* classification: ``probabilities`` ``[None, n_classes]``, ``class_ids`` ``[None]``
  int64, ``classes`` ``[None]`` string;
* regression: ``value`` ``[None]`` float32 in the label's unit.

An imported model keeps its own output names; ``mooring.json``'s ``roles`` says which
output holds the probabilities (classification) or the value (regression), and
:func:`role_outputs` presents its outputs under those names to evaluation and
monitoring (never to clients, who get the model's own outputs).

Examples:
    >>> model = load_saved_model("runs/income/model")  # doctest: +SKIP
    >>> model.predict({"age": np.array([39.0], np.float32), ...})["probabilities"]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib
import json
import keyword
import platform
import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from mooring._tensorflow import quiet_native_logs, quiet_python_logs
from mooring.errors import ModelLoadError, NotFoundError
from mooring.formats._files import atomic_write
from mooring.formats._labels import LabelEncoding
from mooring.formats._packed import PackedCall, pack_signature, same_outputs
from mooring.formats._vetting import allowed_ops, probe_memory, vet_saved_model

__all__ = [
    "CLASSES",
    "CLASS_IDS",
    "EXPLAIN_ATTRIBUTIONS",
    "EXPLAIN_BASELINE",
    "EXPLAIN_EXPLAINED",
    "EXPLAIN_FOLDER",
    "EXPLAIN_SIGNATURE",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "NUMPY_DTYPES",
    "OP_LIBRARIES",
    "PROBABILITIES",
    "SIGNATURE",
    "TENSOR_DTYPES",
    "VALUE",
    "YDF_FOLDER",
    "ModelVersionWarning",
    "SavedModelFolder",
    "TensorInfo",
    "input_name",
    "load_op_libraries",
    "load_saved_model",
    "quiet_native_logs",
    "quiet_python_logs",
    "read_metadata",
    "role_outputs",
    "served_bytes",
    "signature_names",
    "versions",
    "write_metadata",
]

# The metadata written beside the SavedModel: task, label encoding, feature spec, versions.
METADATA_FILE = "mooring.json"
# The one signature a mooring SavedModel serves.
SIGNATURE = "serving_default"
# Bumped when mooring.json changes shape.
FORMAT_VERSION = 1
# The signature's outputs.
PROBABILITIES = "probabilities"
CLASS_IDS = "class_ids"
CLASSES = "classes"
VALUE = "value"
# A network's second signature (same inputs): integrated gradients, one row per input
# row; ``mooring.json``'s ``explain`` key says what it explains (method, steps, columns).
EXPLAIN_SIGNATURE = "explain"
# Where it is written: a SavedModel of its own inside the model folder, so that loading
# the model to serve it loads none of it (only an explanation does).
EXPLAIN_FOLDER = "explain"
EXPLAIN_ATTRIBUTIONS = "attributions"
EXPLAIN_BASELINE = "baseline"
EXPLAIN_EXPLAINED = "explained"
# A tree model's own YDF model, kept beside its SavedModel for exact Shapley values.
YDF_FOLDER = "ydf"

# TensorFlow's dtype names for the numeric inputs a signature may take, as numpy dtypes.
NUMPY_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
}

# TensorFlow's dtype names an imported model's inputs may take, as numpy dtypes (the
# columnar ones first); a string input takes bytes, held as numpy objects.
TENSOR_DTYPES: dict[str, Any] = {
    **NUMPY_DTYPES,
    "float16": np.float16,
    "int8": np.int8,
    "int16": np.int16,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "bool": np.bool_,
    "string": object,
}

# TensorFlow op libraries a model folder may need before it loads (``mooring.json``'s
# ``op_libraries``): the import name → the distribution to install. Only these are ever
# imported on a folder's word, so a folder cannot make the loader import arbitrary code.
OP_LIBRARIES: dict[str, str] = {"ydf_tf": "ydf-tf"}

# A TensorFlow graph node name; a signature input must be one (and stay unique once
# TensorFlow turns it into a Python keyword argument).
_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$")
# Keyword arguments TensorFlow's own methods already take: saving a signature calls
# ``function._get_concrete_function_garbage_collected(self, **inputs)``, so an input
# named ``self`` fails ("got multiple values for argument 'self'").
_TAKEN = frozenset({"self"})


def _python_name(name: str) -> str:
    """How TensorFlow turns an input name into a keyword argument (case-folded, to be safe)."""
    swapped = "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in name)
    return (swapped if swapped[:1].isalpha() else f"arg_{swapped}").lower()


def signature_names(columns: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Each column's input name inside the SavedModel signature.

    A column keeps its own name when TensorFlow keeps it as it is (``hours-per-week``,
    ``od280/od315``); a name TensorFlow refuses (spaces, non-ASCII letters), changes (it
    lower-cases the input names it saves: ``Age`` would come back as ``age``) or would
    collide with another once made a keyword argument, or is a Python keyword
    (``global``) or an argument TensorFlow's own methods take (``self``), gets a
    lower-case ASCII alias with a short hash of the name. ``mooring.json`` records the alias
    (``signature.inputs[column].tensor``) and :class:`SavedModelFolder` takes and returns
    the column's own name, so clients never see it.

    Examples:
        >>> signature_names(["age", "hours-per-week", "a b"])["a b"]
        'a_b_7dbde9'
        >>> signature_names(["Age"])["Age"]
        'age_ff9f1f'
    """
    seen: dict[str, int] = {}
    for name in columns:
        key = _python_name(name)
        seen[key] = seen.get(key, 0) + 1
    out: dict[str, str] = {}
    for name in columns:
        # A Python keyword ("global", "class") cannot name a tf.function's argument.
        kept = (
            _NODE_NAME.match(name)
            and name == name.lower()
            and not keyword.iskeyword(name)
            and _python_name(name) not in _TAKEN
        )
        if kept and seen[_python_name(name)] == 1:
            out[name] = name
            continue
        slug = "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in name).strip("_")
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
        stem = slug[:40] if slug[:1].isalpha() else f"col_{slug[:40]}".rstrip("_")
        out[name] = f"{stem}_{digest}".lower()
    return out


def load_op_libraries(metadata: Mapping[str, Any], *, what: str) -> None:
    """Import the TensorFlow op libraries ``mooring.json`` says the model needs.

    Raises:
        ModelLoadError: a library is not one mooring knows, or is not installed (the
            message names the package and the ``pip install`` that fixes it).
    """
    from mooring._tensorflow import quiet_library_logs

    for entry in metadata.get("op_libraries") or []:
        module = str(entry.get("module", "")) if isinstance(entry, Mapping) else str(entry)
        package = OP_LIBRARIES.get(module)
        if package is None:
            raise ModelLoadError(
                f"{what} needs the op library {module!r}, which mooring does not load; "
                f"known op libraries: {sorted(OP_LIBRARIES)}"
            )
        built = entry.get("version") if isinstance(entry, Mapping) else None
        try:
            importlib.import_module(module)
            quiet_library_logs()  # loading one resets absl's log level to info
        except ImportError as exc:
            pin = f"=={built}" if built else ""
            made = f"built with {built}" if built else "version unknown"
            raise ModelLoadError(
                f"{what} is a {metadata.get('kind', 'tree')} model and needs the TensorFlow op "
                f"library {module!r} (package {package!r}, {made}), which cannot be imported "
                f"here ({exc}); install it with `pip install 'mooring-ml[trees]'` (or "
                f"`pip install '{package}{pin}'`, the version the model was built with)"
            ) from exc


@dataclass(frozen=True)
class TensorInfo:
    """Name, dtype (TensorFlow's name: float32, int64, string…) and shape (None = any)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    @property
    def is_string(self) -> bool:
        return self.dtype == "string"

    @property
    def is_column(self) -> bool:
        """One value per row (``[None]``) of a dtype the columnar decoder takes."""
        return self.shape == (None,) and (self.is_string or self.dtype in NUMPY_DTYPES)

    @property
    def inner(self) -> tuple[int | None, ...]:
        """The dimensions after the batch's."""
        return self.shape[1:]

    def numpy_dtype(self) -> Any:
        return object if self.is_string else TENSOR_DTYPES.get(self.dtype, np.float32)

    def describe_shape(self) -> str:
        """The shape as an error names it, the batch as N: ``[N, 28, 28, 1]``, ``[N, ?]``."""
        dims = ["N", *("?" if d is None else str(d) for d in self.inner)]
        return f"[{', '.join(dims)}]"


class ModelVersionWarning(UserWarning):
    """The model was written by other mooring / TensorFlow / Keras versions than those running."""


def versions() -> dict[str, str]:
    """The versions recorded with every artifact (read from the installed distributions)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    # mooring's distribution is mooring-ml ("mooring" on the index is another project).
    for name, dist in (("mooring", "mooring-ml"), ("tensorflow", "tensorflow"), ("keras", "keras")):
        try:
            found[name] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found[name] = "0+unknown"
    return {**found, "python": platform.python_version()}


def served_bytes(model_dir: str | Path) -> int:
    """Bytes of what serving loads: every file of the model folder but those kept only to
    explain its predictions (the ``explain/`` SavedModel, a tree model's ``ydf/``), which
    are over half of a small network's folder. A model's size as candidates and TF Lite
    compare it.

    >>> served_bytes(Path("runs/1/model")) < sum(  # doctest: +SKIP
    ...     f.stat().st_size for f in Path("runs/1/model").rglob("*") if f.is_file())
    True
    """
    root = Path(model_dir)
    kept = {root / EXPLAIN_FOLDER, root / YDF_FOLDER}
    return sum(
        f.stat().st_size
        for f in root.rglob("*")
        if f.is_file() and not any(parent in kept for parent in f.parents)
    )


def write_metadata(model_dir: Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``mooring.json`` into ``model_dir`` (the folder the SavedModel was written to)."""
    path = Path(model_dir) / METADATA_FILE
    return atomic_write(path, (json.dumps(dict(metadata), indent=2) + "\n").encode("utf-8"))


def read_metadata(
    model_dir: str | Path, *, required: bool = True, what: str | None = None
) -> dict[str, Any]:
    """``mooring.json`` of a model folder; ``{}`` when absent and not ``required``.

    ``what`` names the model in errors (default: the file's path).

    Raises:
        NotFoundError: the file is absent and ``required``.
        ModelLoadError: the file is not JSON.
    """
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        if not required:
            return {}
        raise NotFoundError(
            f"'{model_dir}' is not a mooring model folder (no {METADATA_FILE}); point at the "
            "folder `mooring train` wrote (…/model), or, for a model built elsewhere, "
            "evaluate and register it with `mooring models import NAME PATH --task TASK "
            "--data FILE`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelLoadError(
            f"{what or repr(str(path))}: {METADATA_FILE} is not JSON ({exc}); re-export the model"
        ) from exc
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"{what or repr(str(path))}: {METADATA_FILE} holds {type(data).__name__}, not an "
            "object; re-export the model"
        )
    return data


def _warn_on_other_versions(path: Path, metadata: Mapping[str, Any]) -> None:
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
            stacklevel=3,
        )


def role_outputs(roles: Mapping[str, str], task: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """An imported model's outputs plus the ones its ``roles`` name, as mooring's own.

    ``roles`` maps ``probabilities`` or ``value`` to the output that holds it. A binary
    model's single probability (``[N]`` or ``[N, 1]``, the positive class's: a sigmoid)
    becomes the two columns ``[1 - p, p]``; a regression's ``[N, 1]`` becomes ``[N]``.
    The outputs named are kept as they are.

    Examples:
        >>> out = role_outputs({"probabilities": "output_0"}, "binary",
        ...                    {"output_0": np.array([[0.25]], np.float32)})
        >>> out["probabilities"].tolist()
        [[0.75, 0.25]]
    """
    out = dict(outputs)
    source = roles.get(PROBABILITIES)
    if source is not None and source in outputs:
        scores = np.asarray(outputs[source])
        if task == "binary" and (scores.ndim == 1 or scores.shape[-1] == 1):
            positive = scores.reshape(len(scores))
            scores = np.stack([1.0 - positive, positive], axis=1).astype(scores.dtype)
        out[PROBABILITIES] = scores
    source = roles.get(VALUE)
    if source is not None and source in outputs:
        values = np.asarray(outputs[source])
        out[VALUE] = values.reshape(len(values)) if values.ndim == 2 else values
    return out


@dataclass
class SavedModelFolder:
    """A loaded model folder: the signature, what it takes and returns, and ``mooring.json``."""

    path: Path
    metadata: dict[str, Any]
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    signature: Any = field(repr=False)
    module: Any = field(repr=False)
    load_seconds: float = 0.0
    # Column name → the signature's input name, where they differ (see signature_names).
    aliases: dict[str, str] = field(default_factory=dict)
    # The columns in the signature's flat argument order, when the direct call is in use
    # (see :func:`_direct_call`); None: every call goes through the keyword signature.
    flat_columns: list[str] | None = field(default=None, repr=False)
    # The direct call itself: (flat tensors, captured inputs) -> outputs (see _flat_call);
    # used only while flat_columns is set.
    flat_call: Callable[[list[Any], list[Any]], Any] | None = field(default=None, repr=False)
    # The signature fed one tensor per dtype (see mooring.formats._packed), when it
    # answers as the keyword call does; None: one tensor per column.
    packed: PackedCall | None = field(default=None, repr=False)

    @property
    def columnar(self) -> bool:
        """Every input is one ``[None]`` column (a model mooring trains); otherwise the
        inputs are tensors, decoded and checked by :mod:`mooring.formats._tensors`."""
        return all(info.is_column for info in self.inputs.values())

    @property
    def roles(self) -> dict[str, str]:
        """An imported model's outputs by role (``probabilities``/``value`` → its output's
        name, from ``mooring.json``); empty for a model mooring trained."""
        roles = self.metadata.get("roles")
        if not isinstance(roles, Mapping):
            return {}
        return {
            str(k): str(v)
            for k, v in roles.items()
            if k in (PROBABILITIES, VALUE) and str(v) in self.outputs
        }

    @property
    def refuses_missing(self) -> tuple[str, ...]:
        """The float inputs where a missing value (null, NaN) is refused at the door.

        Why: a model mooring trained imputes missing values in its own preprocessing
        (``feature_spec``), but a model built elsewhere takes NaN as a number and answers
        something for it, silently. So the float inputs of an imported folder (``origin``
        ``imported``) and of a SavedModel with no ``mooring.json`` (``serve --model-dir``)
        refuse it, except those ``mooring.json`` declares take NaN as missing
        (``signature.inputs[name].missing``, which ``mooring models import
        --allows-missing NAME`` writes). A folder mooring wrote otherwise says NaN is
        missing (its signature's contract) and refuses none.

        Examples:
            >>> folder.refuses_missing  # doctest: +SKIP
            ('Age', 'LoanAmount')
        """
        meta = self.metadata
        foreign = not meta or meta.get("origin") == "imported"
        if "feature_spec" in meta or not foreign:
            return ()
        described = (self.metadata.get("signature") or {}).get("inputs") or {}
        refused = []
        for name, info in self.inputs.items():
            if info.is_string or not info.dtype.startswith("float"):
                continue
            entry = described.get(name) if isinstance(described, Mapping) else None
            if not (isinstance(entry, Mapping) and entry.get("missing") is not None):
                refused.append(name)
        return tuple(refused)

    @property
    def kind(self) -> str:
        """The model kind ``mooring.json`` records: mlp, linear, gbt (mlp when absent)."""
        return str(self.metadata.get("kind") or "mlp")

    @property
    def task(self) -> str:
        """binary, multiclass or regression; ``""`` when the folder records none."""
        return str(self.metadata.get("task") or "")

    @property
    def label_vocabulary(self) -> list[str]:
        return list(self.metadata.get("label_vocabulary", []))

    @property
    def label(self) -> LabelEncoding:
        """The label encoding the model was trained with."""
        return LabelEncoding.from_dict(self.metadata["label"])

    @property
    def threshold(self) -> float:
        """The operating threshold ``mooring.json`` records (0.5 when it records none)."""
        return float(self.metadata.get("threshold", 0.5) or 0.5)

    def pack(self) -> bool:
        """Call the signature with one tensor per dtype from now on, where that answers as
        the keyword call does (:func:`~mooring.formats._packed.pack_signature`); whether
        it does. Safe while other threads call :meth:`predict`: one assignment."""
        from mooring._tensorflow import import_tensorflow

        self.packed = pack_signature(self, import_tensorflow())
        return self.packed is not None

    def predict(
        self, columns: Mapping[str, Any], *, batch_size: int | None = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the signature on rank-1 columns (arrays or lists); numpy arrays out.

        ``batch_size`` splits large inputs into calls of at most that many rows; string
        outputs come back as ``bytes`` objects, as TensorFlow returns them.
        """
        from mooring._tensorflow import import_tensorflow

        tf = import_tensorflow()
        rows = len(next(iter(columns.values()))) if columns else 0
        step = batch_size if batch_size and rows > batch_size else max(rows, 1)
        parts: dict[str, list[Any]] = {}
        flat = all(map(_rank_one, columns.values()))
        packed = self.packed if flat else None
        for start in range(0, max(rows, 1), step):
            if packed is not None:
                chunk = (
                    columns
                    if step >= rows
                    else {name: values[start : start + step] for name, values in columns.items()}
                )
                for key, value in packed(chunk).items():
                    parts.setdefault(key, []).append(value.numpy())
                continue
            feed = {
                name: tf.constant(
                    columns[name][start : start + step] if step < rows else columns[name],
                    dtype=tf.string if info.is_string else info.dtype,
                )
                for name, info in self.inputs.items()
            }
            for key, value in self.call(feed, flat=flat).items():
                parts.setdefault(key, []).append(value.numpy())
        return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}

    def call(self, feed: Mapping[str, Any], *, flat: bool = False) -> dict[str, Any]:
        """Run the signature on one tensor per input column (by column name); its outputs.

        ``flat``: the caller knows every tensor is rank 1, so the direct call may run it
        (:func:`_direct_call`, about half the Python cost of a keyword call). Otherwise
        the keyword signature runs it, which checks each tensor against its spec and
        says what is wrong.
        """
        order = self.flat_columns
        direct = self.flat_call
        if flat and order is not None and direct is not None:
            result: dict[str, Any] = direct(
                [feed[name] for name in order], self.signature.captured_inputs
            )
            return result
        if self.aliases:
            feed = {self.aliases.get(name, name): value for name, value in feed.items()}
        keyword: dict[str, Any] = self.signature(**feed)
        return keyword


def input_name(key: str, spec_name: str | None) -> str:
    """The name clients give a signature's input: its TensorSpec's name, or its keyword
    where TensorFlow saved that name lower-cased.

    Why: a ``tf.Module`` (or Keras) input ``Age`` is saved with the TensorSpec name
    ``age`` but the keyword ``Age``, and the signature binds only ``Age``; the
    keyword is the model's own name then, as TensorFlow Serving knows it. Elsewhere
    the TensorSpec's name is (the keyword of ``hours-per-week`` is ``hours_per_week``).

    Examples:
        >>> input_name("Age", "age"), input_name("hours_per_week", "hours-per-week")
        ('Age', 'hours-per-week')
    """
    name = spec_name or key
    return key if name != key and name == key.lower() else name


def _info(name: str, spec: Any) -> TensorInfo:
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else (None,)
    return TensorInfo(name=name, dtype=spec.dtype.name, shape=shape)


def load_saved_model(
    model_dir: str | Path,
    *,
    what: str | None = None,
    require_metadata: bool = True,
    warn: bool = True,
    pack: bool = False,
) -> SavedModelFolder:
    """Open a model folder with ``tf.saved_model.load`` and describe its ``serving_default``.

    With ``pack``, a columnar signature is also called with one tensor per dtype where
    that answers as the keyword call does (:mod:`mooring.formats._packed`; about 0.15 s
    at load for Adult's model, repaid only over many small calls: a server packs each
    version once it answers, :meth:`SavedModelFolder.pack`).

    Its ops are vetted first, accepting those ``mooring.json`` admits (``allowed_ops``).

    ``what`` names the model in errors (e.g. ``"model 'income' version 3"``; default the
    path). With ``warn``, a :class:`ModelVersionWarning` says when the mooring, TensorFlow
    or Keras versions that wrote it differ from the running ones.

    Raises:
        NotFoundError: no ``mooring.json`` while ``require_metadata``.
        ModelLoadError: an op the vetting refuses and ``mooring.json`` does not admit
            (:func:`~mooring.formats._vetting.vet_saved_model`), not a loadable
            SavedModel, no ``serving_default`` signature, an
            input with no batch dimension or of a dtype not in :data:`TENSOR_DTYPES`, or
            bad metadata.
    """
    from mooring._tensorflow import import_tensorflow

    path = Path(model_dir)
    who = what or f"model '{path}'"
    metadata = read_metadata(path, required=require_metadata, what=what)
    if warn and metadata:
        _warn_on_other_versions(path, metadata)
    tf = import_tensorflow()
    load_op_libraries(metadata, what=who)
    # Only an imported folder was vetted at an import; a folder without mooring.json is
    # served as it is (`serve --model-dir`), and an op it needs is admitted by importing it.
    vet_saved_model(
        path,
        allowed=allowed_ops(metadata),
        memory_bytes=probe_memory(metadata),
        what=who if metadata else f"{who}, served from a folder,",
        at_import=metadata.get("origin") != "imported",
    )
    start = time.perf_counter()
    try:
        module = tf.saved_model.load(str(path))
    except Exception as exc:
        # A caller that names the model (a server: the version) gets no path of its machine,
        # neither the folder's nor one TensorFlow's message quotes.
        said, where = str(exc), "" if what else f": '{path}'"
        if what:
            for shown in sorted({str(path.resolve()), str(path)}, key=len, reverse=True):
                said = said.replace(f"{shown}/", "").replace(shown, "its folder")
        raise ModelLoadError(
            f"{who}{where} is not a loadable SavedModel ({said}); "
            "re-register a version exported by mooring"
        ) from exc
    function = module.signatures.get(SIGNATURE)
    if function is None:
        raise ModelLoadError(
            f"{who} has no '{SIGNATURE}' signature "
            f"(found {sorted(module.signatures)}); export it with mooring"
        )
    _, kwargs = function.structured_input_signature
    # The TensorSpec keeps the column's own name ('hours-per-week'); the kwarg key is a
    # sanitised Python identifier. Clients send the former (or, where TensorFlow saved
    # the name lower-cased, the keyword's own case: see input_name); the signature is
    # called by the keyword, which it always binds. A column TensorFlow cannot name
    # keeps its own name here and in requests; the signature knows it by the alias
    # mooring.json records.
    described = (metadata.get("signature") or {}).get("inputs") or {}
    columns = {
        str(entry["tensor"]): name
        for name, entry in described.items()
        if isinstance(entry, Mapping) and entry.get("tensor")
    }
    named = {
        key: columns.get(input_name(key, spec.name), input_name(key, spec.name))
        for key, spec in kwargs.items()
    }
    inputs = {}
    for key, spec in kwargs.items():
        inputs[named[key]] = _info(named[key], spec)
    inputs = dict(sorted(inputs.items()))
    outputs = {key: _info(key, spec) for key, spec in sorted(function.structured_outputs.items())}
    for info in inputs.values():
        _check_servable(who, info)
    folder = SavedModelFolder(
        path=path,
        metadata=metadata,
        inputs=inputs,
        outputs=outputs,
        signature=function,
        module=module,
        aliases={column: key for key, column in named.items() if key != column},
    )
    # The signature's keyword arguments flatten in sorted order (tf.nest sorts a dict).
    order = [named[key] for key in sorted(kwargs)]
    folder.flat_call = _flat_call(folder.signature)
    folder.flat_columns = _direct_call(folder, order, tf)
    if pack:
        folder.pack()
    folder.load_seconds = time.perf_counter() - start
    return folder


def _check_servable(who: str, info: TensorInfo) -> None:
    """Refuse an input the server cannot batch or decode, saying why."""
    shape = [None if d is None else d for d in info.shape]
    if info.dtype not in TENSOR_DTYPES:
        raise ModelLoadError(
            f"{who}: input '{info.name}' is {info.dtype} {shape}; serving takes inputs of "
            f"dtype {', '.join(TENSOR_DTYPES)}: export the model with one of them"
        )
    if not info.shape or info.shape[0] is not None:
        raise ModelLoadError(
            f"{who}: input '{info.name}' has shape {shape} with no batch dimension (its first "
            "dimension must be unknown, None); export the signature with a None batch "
            "dimension, e.g. tf.TensorSpec([None, ...])"
        )


def _rank_one(values: Any) -> bool:
    """Whether a column (an array, or a list of scalars) is rank 1: cheaper than asking
    the tensor made of it."""
    if isinstance(values, np.ndarray):
        return values.ndim == 1
    return type(values) is list and (
        not values or not isinstance(values[0], list | tuple | np.ndarray)
    )


def _flat_call(function: Any) -> Callable[[list[Any], list[Any]], Any] | None:
    """The flat call of a loaded signature, past the wrapper that needs none here.

    ``tf.saved_model.load`` wraps each restored function in a ``_WrapperFunction``
    whose ``_call_flat`` maps every captured input through a check for a distributed
    variable before calling its parent's, which runs the graph. For a model loaded
    outside a distribution strategy none of them is one, and the check is all it
    does, with the GIL held: an exception per captured tensor, near half of the Python
    cost of a small model's call. So where the function is such a wrapper and no
    captured input is distributed, its parent's ``_call_flat`` is called directly;
    otherwise its own. None where it has no ``_call_flat``. :func:`_direct_call` then
    checks, on one example row, that the call answers as the keyword call does.
    """
    own = getattr(function, "_call_flat", None)
    if own is None:
        return None
    kind = type(function)
    if kind.__name__ != "_WrapperFunction":
        return cast("Callable[[list[Any], list[Any]], Any]", own)
    try:
        from tensorflow.python.distribute import distribute_utils

        distributed = any(
            distribute_utils.is_distributed_variable(x) for x in function.captured_inputs
        )
        parent = super(kind, function)._call_flat
    except (ImportError, AttributeError):
        return cast("Callable[[list[Any], list[Any]], Any]", own)
    return cast("Callable[[list[Any], list[Any]], Any]", own if distributed else parent)


def _direct_call(folder: SavedModelFolder, order: list[str], tf: Any) -> list[str] | None:
    """``order`` when the signature's direct (flat) call answers as its keyword call does.

    Why: a keyword call of a loaded signature binds, canonicalises and checks every
    argument in Python before it runs the graph: near half of what a small model's call
    costs, with the GIL held, on every batch. The direct call,
    ``ConcreteFunction._call_flat`` (what the keyword call ends in; ``folder.flat_call``,
    see :func:`_flat_call`), skips that. It is
    TensorFlow's own, not a public API, so it is used only when it exists and, on one
    example row, returns exactly what the keyword call returns; otherwise None (every
    call keyword). :meth:`SavedModelFolder.call` keeps the keyword call for inputs that
    are not rank 1, so a wrong shape still gets TensorFlow's own error.
    """
    function = folder.signature
    direct_call = folder.flat_call
    if direct_call is None or not hasattr(function, "captured_inputs"):
        return None
    if sorted(order) != sorted(folder.inputs) or not folder.columnar:
        return None
    feed = {
        name: tf.constant(
            [""] if info.is_string else [0], dtype=tf.string if info.is_string else info.dtype
        )
        for name, info in folder.inputs.items()
    }
    try:
        keyword = function(**{folder.aliases.get(k, k): v for k, v in feed.items()})
        direct = direct_call([feed[name] for name in order], function.captured_inputs)
        same = same_outputs(direct, keyword)
    except Exception:  # the keyword call is the reference; any doubt keeps it
        return None
    return order if same else None
