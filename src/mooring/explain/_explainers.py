"""Explain a model folder's predictions: one explainer per folder, loaded once and cached.

* a network mooring trained: its SavedModel's ``explain`` signature (integrated
  gradients traced at export; no Python work beyond the call);
* gradient boosted trees: exact Shapley values (TreeSHAP) from the YDF model kept in
  the folder (``ydf/``), in the trees' raw unit (log-odds for classification);
* an imported model: integrated gradients through its ``serving_default`` in
  TensorFlow, where every input is a float and the output has a gradient.

A folder written before explanations (no ``explain`` key in ``mooring.json``), and a
SavedModel with no ``mooring.json`` at all (``mooring serve --model-dir`` of a model
mooring neither trained nor imported), raise
:class:`~mooring.explain._explanation.ExplainUnavailable`; they still serve as before.

:func:`load_explainer` opens a network's explanation alone: the ``explain/``
SavedModel (vetted as a served one is), its inputs read from its own signature, never
the serving SavedModel beside it; ``mooring explain`` pays one SavedModel load.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mooring.errors import UsageError
from mooring.explain._explanation import ExplainUnavailable, Explanation
from mooring.explain._gradients import (
    CHUNK_ROWS,
    PATH_ROWS,
    REFERENCE_STEPS,
    STEPS,
    integrated_gradients,
)
from mooring.formats._model import (
    EXPLAIN_ATTRIBUTIONS,
    EXPLAIN_BASELINE,
    EXPLAIN_EXPLAINED,
    EXPLAIN_SIGNATURE,
    METADATA_FILE,
    PROBABILITIES,
    VALUE,
    YDF_FOLDER,
    SavedModelFolder,
    input_name,
    load_op_libraries,
    load_saved_model,
    read_metadata,
    versions,
)
from mooring.formats._vetting import allowed_ops, probe_memory, vet_saved_model

__all__ = ["Explainer", "explain_rows", "explainer_for", "load_explainer"]

Columns = Mapping[str, Sequence[Any] | np.ndarray[Any, Any]]


class Explainer(Protocol):
    """What :func:`load_explainer` returns: ``explain(columns)`` for any number of rows."""

    def explain(self, columns: Columns) -> Explanation: ...


# The explainers kept, newest use last: a monitor that runs for months explains each
# new version's drifted windows, and a re-exported folder is a new key; the oldest go.
_CACHED = 4
_CACHE: OrderedDict[tuple[Path, float], Explainer] = OrderedDict()
_LOCK = threading.Lock()


def load_explainer(model_dir: Path) -> Explainer:
    """The explainer of the model folder ``model_dir``, loaded on first use and cached.

    The cache is keyed by the folder and its ``mooring.json``'s modification time, so a
    server loads each folder once and a re-exported folder is loaded again; it keeps the
    four used last.

    Raises:
        ExplainUnavailable: the folder has no explanation (see the message for why).

    Examples:
        >>> explainer = load_explainer(Path("runs/1/model"))  # doctest: +SKIP
        >>> explainer.explain({"age": [39.0], "city": ["Oslo"]}).to_json()  # doctest: +SKIP
    """
    path = Path(model_dir).resolve()
    metadata = read_metadata(path, what=f"model '{model_dir}'")
    key = (path, (path / METADATA_FILE).stat().st_mtime)
    with _LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = _open(path, metadata, what=f"model '{model_dir}'")
            _CACHE[key] = found
            while len(_CACHE) > _CACHED:
                _CACHE.popitem(last=False)
        _CACHE.move_to_end(key)
        return found


def explain_rows(model_dir: Path, columns: Columns) -> Explanation:
    """Explain each row of ``columns`` (column name → values) with the folder's model.

    Examples:
        >>> e = explain_rows(Path("runs/1/model"), {"age": [39.0], "city": ["Oslo"]})
        ... # doctest: +SKIP
        >>> e.attributions.sum(axis=1) - (e.explained - e.baseline)  # doctest: +SKIP
        array([0.0003], dtype=float32)
    """
    return load_explainer(model_dir).explain(columns)


def explainer_for(folder: SavedModelFolder, *, what: str | None = None) -> Explainer:
    """The explainer of a folder already loaded (its SavedModel is reused, not reloaded).

    ``what`` names the model in refusals instead of its folder (a server names the
    version: it never names a path of its machine).

    Raises:
        ExplainUnavailable: the folder has no explanation.

    Examples:
        >>> explainer_for(folder, what="model 'income' version 3")  # doctest: +SKIP
    """
    return _open(folder.path, folder.metadata, folder, what=what)


def _open(
    path: Path,
    metadata: Mapping[str, Any],
    loaded: SavedModelFolder | None = None,
    *,
    what: str | None = None,
) -> Explainer:
    who = what or f"model '{path}'"
    kind = str(metadata.get("kind") or "mlp")
    entry = metadata.get("explain")
    if not metadata:
        raise ExplainUnavailable(
            f"{who} has no explanation: it is a SavedModel without mooring's mooring.json "
            "(served as it is, e.g. with --model-dir), so nothing records which output to "
            "explain or how; register it with `mooring models import NAME PATH` (its float "
            "inputs are then explained by integrated gradients), or serve a model trained "
            "by `mooring run`, whose export carries its explanation"
        )
    if kind == "gbt":
        if not isinstance(entry, Mapping) or not (path / YDF_FOLDER).is_dir():
            raise ExplainUnavailable(
                f"{who} (gradient boosted trees) has no explanation: "
                f"{_written_before(metadata)}, and keeps no YDF model in '{YDF_FOLDER}/'; "
                "train it again with this mooring (`mooring run`) to explain it"
            )
        return TreeExplainer(path, entry)
    if kind == "imported":
        return ImportedExplainer(loaded or load_saved_model(path, warn=False, what=what), entry)
    if not isinstance(entry, Mapping):
        raise ExplainUnavailable(
            f"{who} has no explanation: its mooring.json has no 'explain' entry "
            f"({_written_before(metadata)}); train it again with this mooring "
            "(`mooring run`) to explain it"
        )
    inside = entry.get("folder")
    if loaded is None and isinstance(inside, str) and inside:
        return SignatureExplainer.alone(path, metadata, entry, who)
    return SignatureExplainer(loaded or load_saved_model(path, warn=False, what=what), entry, who)


def _written_before(metadata: Mapping[str, Any]) -> str:
    """Which mooring wrote a folder that has no explanation, as its refusal says it."""
    recorded = metadata.get("versions")
    wrote = recorded.get("mooring") if isinstance(recorded, Mapping) else None
    if wrote and wrote != versions().get("mooring"):
        return f"it was exported by mooring {wrote}, before explanations"
    return "it was exported without one"


def _rows(columns: Columns, names: Sequence[str], what: str) -> int:
    missing = [name for name in names if name not in columns]
    if missing:
        raise UsageError(
            f"{what} needs the column(s) {', '.join(map(repr, missing))}; got "
            f"{', '.join(map(repr, columns)) or 'none'}: send one value per row for each"
        )
    counts = {name: len(columns[name]) for name in names}
    if len(set(counts.values())) > 1:
        raise UsageError(
            f"{what}: every column needs the same number of rows; got "
            + ", ".join(f"{k}={v}" for k, v in counts.items())
        )
    return next(iter(counts.values()), 0)


def _numbers(values: Any, name: str = "") -> np.ndarray[Any, Any]:
    """Numbers as float32 (None = missing, NaN); a value that is not one names the column."""
    try:
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float32)
    except (TypeError, ValueError):
        for v in values:
            try:
                float(np.nan if v is None else v)
            except (TypeError, ValueError):
                raise UsageError(
                    f"column {name!r} takes numbers (null for missing), got {v!r}; send a number"
                ) from None
        raise


def _texts(values: Any) -> np.ndarray[Any, Any]:
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append("")
        elif isinstance(v, bool | np.bool_):  # as a boolean column is trained and served
            out.append("true" if v else "false")
        elif isinstance(v, bytes):
            out.append(v.decode("utf-8", "replace"))
        else:
            out.append(str(v))
    return np.asarray(out, dtype=object)


def _load_module(path: Path, metadata: Mapping[str, Any], who: str) -> Any:
    """The SavedModel at ``path`` (the ``explain`` signature's own), its ops vetted as a
    served SavedModel's are (those ``mooring.json`` admits accepted), TensorFlow's notes
    on loading it hidden."""
    from mooring._tensorflow import import_tensorflow, quiet_python_logs

    if not (path / "saved_model.pb").is_file():
        raise ExplainUnavailable(
            f"{who} records an explanation in '{path.name}/' but its folder has no "
            "SavedModel there (an incomplete copy?); copy the whole model folder, or "
            "train it again"
        )
    tf = import_tensorflow()
    load_op_libraries(metadata, what=who)
    vet_saved_model(
        path,
        allowed=allowed_ops(metadata),
        memory_bytes=probe_memory(metadata),
        what=who,
        at_import=False,
    )
    with quiet_python_logs():
        return tf.saved_model.load(str(path))


class SignatureExplainer:
    """A network's ``explain`` signature, called in chunks of :data:`CHUNK_ROWS` rows.

    Made from a loaded model folder (a server: its own SavedModel's signature, or the one
    in ``explain/``), or by :meth:`alone` from the ``explain/`` SavedModel only.
    """

    method = "integrated_gradients"

    def __init__(self, folder: SavedModelFolder, entry: Mapping[str, Any], who: str) -> None:
        module = folder.module
        inside = entry.get("folder")
        if isinstance(inside, str) and inside:  # its own SavedModel in the model folder
            module = _load_module(folder.path / inside, folder.metadata, who)
        self._set(_signature(module, who), entry, who)
        # Column -> whether it is text; and the signature's keyword, where it differs.
        self.strings = {name: info.is_string for name, info in folder.inputs.items()}
        self.aliases = dict(folder.aliases)

    @classmethod
    def alone(
        cls, path: Path, metadata: Mapping[str, Any], entry: Mapping[str, Any], who: str
    ) -> SignatureExplainer:
        """The explainer of the model folder ``path`` from its ``explain/`` SavedModel
        alone: its inputs named from the signature as a served one's are
        (:func:`~mooring.formats._model.load_saved_model`), the serving one not loaded.

        Examples:
            >>> SignatureExplainer.alone(path, metadata, metadata["explain"], "model 'm'")
            ... # doctest: +SKIP
        """
        function = _signature(_load_module(path / str(entry["folder"]), metadata, who), who)
        self = cls.__new__(cls)
        self._set(function, entry, who)
        _, kwargs = function.structured_input_signature
        described = (metadata.get("signature") or {}).get("inputs") or {}
        tensors = {
            str(item["tensor"]): name
            for name, item in described.items()
            if isinstance(item, Mapping) and item.get("tensor")
        }
        named = {
            key: tensors.get(input_name(key, spec.name), input_name(key, spec.name))
            for key, spec in kwargs.items()
        }
        self.strings = {
            named[key]: spec.dtype.name == "string" for key, spec in sorted(kwargs.items())
        }
        self.aliases = {column: key for key, column in named.items() if key != column}
        return self

    def _set(self, function: Any, entry: Mapping[str, Any], who: str) -> None:
        self.who = who
        self.function = function
        self.columns = tuple(str(c) for c in entry["columns"])
        self.output = str(entry.get("output", "prediction"))
        self.unit = str(entry.get("unit", ""))
        self.reference = reference_text(entry)
        # Each row walks (steps + 1) points from each reference row: the chunk bounds the
        # batch of path points one call evaluates.
        reference = entry.get("reference")
        count = int(reference.get("rows") or 1) if isinstance(reference, Mapping) else 1
        points = (int(entry.get("steps") or STEPS) + 1) * count
        self.chunk = max(1, min(CHUNK_ROWS, PATH_ROWS // points))

    def explain(self, columns: Columns) -> Explanation:
        from mooring._tensorflow import import_tensorflow

        tf = import_tensorflow()
        strings = self.strings
        rows = _rows(columns, list(strings), self.who)
        arrays = {
            name: _texts(columns[name]) if text else _numbers(columns[name], name)
            for name, text in strings.items()
        }
        parts: dict[str, list[np.ndarray[Any, Any]]] = {}
        chunk = self.chunk
        for start in range(0, rows, chunk):
            feed = {
                self.aliases.get(name, name): tf.constant(
                    array[start : start + chunk].tolist()
                    if strings[name]
                    else array[start : start + chunk],
                    dtype=tf.string if strings[name] else tf.float32,
                )
                for name, array in arrays.items()
            }
            for key, value in self.function(**feed).items():
                parts.setdefault(key, []).append(value.numpy())
        width = len(self.columns)

        def joined(key: str, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
            found = parts.get(key)
            return np.concatenate(found) if found else np.zeros(shape, np.float32)

        return Explanation(
            columns=self.columns,
            attributions=joined(EXPLAIN_ATTRIBUTIONS, (0, width)),
            baseline=joined(EXPLAIN_BASELINE, (0,)),
            explained=joined(EXPLAIN_EXPLAINED, (0,)),
            output=self.output,
            method=self.method,
            unit=self.unit,
            reference=self.reference,
        )


def _signature(module: Any, who: str) -> Any:
    """The ``explain`` signature of a loaded SavedModel (refused, named, when absent)."""
    function = module.signatures.get(EXPLAIN_SIGNATURE)
    if function is None:
        raise ExplainUnavailable(
            f"{who} records an explanation but its SavedModel has no "
            f"'{EXPLAIN_SIGNATURE}' signature (an altered copy?); train it again with "
            "this mooring (`mooring run`) to explain it"
        )
    return function


def reference_text(entry: Mapping[str, Any]) -> str:
    """What a network's baseline is, from its ``explain`` entry: the mean output over its
    reference rows, or (an export from before them) the one row of imputed values.

    Examples:
        >>> reference_text({"output": "probability of >50K", "reference": {"rows": 32,
        ...     "from": "training rows (a seeded sample)", "mean_output": 0.2412}})
        'the mean probability of >50K over 32 training rows (a seeded sample): 0.2412'
    """
    reference = entry.get("reference")
    output = str(entry.get("output", "prediction"))
    if not isinstance(reference, Mapping):
        return f"the {output} of one row: each number at its mean, each category missing"
    mean = reference.get("mean_output")
    value = f": {mean:.4g}" if isinstance(mean, float | int) else ""
    if reference.get("from") == "imputed row":
        return f"the {output} of one row: each number at its mean, each category missing{value}"
    return f"the mean {output} over {reference.get('rows')} {reference.get('from')}{value}"


class TreeExplainer:
    """Exact Shapley values of gradient boosted trees, from the YDF model in ``ydf/``.

    In the trees' raw unit: log-odds of the positive class (binary), of the predicted
    class's score (multiclass, before the softmax), the label's value (regression).
    Binary and regression trees exported with their training rows are explained by
    interventional TreeSHAP (:mod:`mooring.explain._interventional`) against those rows:
    ``baseline`` is the trees' mean output over them, as KernelSHAP measures from the
    same background. Otherwise YDF's own path-dependent TreeSHAP; ``baseline`` is then
    TreeSHAP's own expectation, the value YDF returns beside
    the Shapley values: the trees' mean raw output over their training rows, as the
    trees' node counts weigh them (path-dependent TreeSHAP; on Adult -1.88 log-odds, the
    mean of the training rows' log-odds, not the trees' initial prediction -1.13).
    ``explained`` is the row's raw prediction, so completeness is exact up to float
    rounding.
    """

    method = "tree_shap"

    def __init__(self, path: Path, entry: Mapping[str, Any]) -> None:
        from mooring.errors import import_extra

        ydf = import_extra("ydf", extra="trees", needed_for="explaining gradient boosted trees")
        self.path = path
        previous = ydf.verbose(0)  # YDF would print a line for every load
        try:
            self.model = ydf.load_model(str(path / YDF_FOLDER))
        finally:
            ydf.verbose(previous)
        self.columns = tuple(str(c) for c in entry["columns"])
        self.inputs = {str(k): str(v) for k, v in entry["inputs"].items()}
        self.text = {str(c) for c in entry.get("text", ())}
        self.integers = {str(c) for c in entry.get("integers", ())}
        self.task = str(entry.get("task", "binary"))
        self.scale = float(entry.get("scale", 1.0))
        self.shift = float(entry.get("shift", 0.0))
        self.output = str(entry.get("output", "prediction"))
        self.unit = str(entry.get("unit", ""))
        self.tolerance = float(entry.get("tolerance", 1e-4))
        # Interventional TreeSHAP against the training rows recorded at export, where
        # they are (binary and regression); else YDF's path-dependent TreeSHAP.
        reference = entry.get("reference")
        values = reference.get("values") if isinstance(reference, Mapping) else None
        self.background: dict[str, np.ndarray[Any, Any]] | None = None
        self.background_output = 0.0
        self.reference_text = ""
        self.roots: list[Any] | None = None  # the trees, read from YDF on first use
        if isinstance(values, Mapping) and self.task != "multiclass":
            self.background = self._feed(values)
            count = len(next(iter(values.values())))
            self.background_output = float(np.mean(self._raw(values, count)))
            self.reference_text = (
                f"the mean {self.output} over {count} training rows (a seeded sample): "
                f"{self.background_output:.4g}"
            )

    def _feed(self, columns: Columns) -> dict[str, np.ndarray[Any, Any]]:
        feed = {}
        for column in self.columns:
            values = columns[column]
            if column in self.integers:
                numbers = _numbers(values, column)
                whole = np.nan_to_num(numbers).astype(np.int64).astype(str)
                feed[self.inputs[column]] = np.where(np.isnan(numbers), "", whole).astype(object)
            elif column in self.text:
                feed[self.inputs[column]] = _texts(values)
            else:
                feed[self.inputs[column]] = _numbers(values, column)
        return feed

    def explain(self, columns: Columns) -> Explanation:
        rows = _rows(columns, self.columns, f"model '{self.path}'")
        width = len(self.columns)
        if rows == 0:
            empty = np.zeros((0,), np.float32)
            return Explanation(
                self.columns,
                np.zeros((0, width), np.float32),
                empty,
                empty,
                self.output,
                self.method,
                self.unit,
            )
        if self.background is not None:
            found = self._interventional(columns, rows)
            if found is not None:
                return found
        shap, initial = self.model.predict_shap(self._feed(columns))
        initial = np.asarray(initial, np.float64).reshape(-1)
        values = {k: np.asarray(v, np.float64) for k, v in shap.items()}
        if self.task == "multiclass":
            stacked = np.stack([values[self.inputs[c]] for c in self.columns], axis=1)  # n,c,k
            raw = initial[np.newaxis, :] + stacked.sum(axis=1)
            chosen = np.argmax(raw, axis=1)
            attributions = stacked[np.arange(rows), :, chosen]
            baseline = initial[chosen]
        else:
            attributions = np.stack(
                [values[self.inputs[c]].reshape(rows) for c in self.columns], axis=1
            )
            baseline = np.full(rows, initial[0])
        explained = self._raw(columns, rows) if self.task != "multiclass" else None
        if explained is None:
            explained = baseline + attributions.sum(axis=1)
        baseline = baseline * self.scale + self.shift
        value = "" if self.task == "multiclass" else f": {float(baseline[0]):.4g}"
        return Explanation(
            columns=self.columns,
            attributions=(attributions * self.scale).astype(np.float32),
            baseline=baseline.astype(np.float32),
            explained=explained.astype(np.float32),
            output=self.output,
            method=self.method,
            unit=self.unit,
            reference=f"the trees' mean {self.output} over their training rows, weighted by "
            f"their node counts (TreeSHAP's expectation){value}",
        )

    def _interventional(self, columns: Columns, rows: int) -> Explanation | None:
        """Interventional TreeSHAP against the background rows; None (path-dependent
        instead) where a tree holds a condition it does not read, or the values miss
        completeness (a check on the conditions' reading, never seen to fire)."""
        from mooring.explain._interventional import Unreadable, forest, interventional_shap

        assert self.background is not None
        names = [self.inputs[c] for c in self.columns]
        if self.roots is None:
            self.roots = forest(self.model)
        try:
            phi = interventional_shap(
                self.model, self._feed(columns), self.background, names, self.roots
            )
        except Unreadable:
            return None
        explained = self._raw(columns, rows)
        attributions = phi * self.scale
        gap = attributions.sum(axis=1) - (explained - self.background_output)
        # YDF answers float32 probabilities: near 0 or 1 their log-odds carry ~1e-4 of
        # rounding, so the check allows for it (a misread condition is off by far more).
        allowed = np.maximum(self.tolerance * max(1.0, self.scale), 1e-3 * np.abs(explained))
        if (np.abs(gap) > allowed).any():
            return None
        return Explanation(
            columns=self.columns,
            attributions=attributions.astype(np.float32),
            baseline=np.full(rows, self.background_output, np.float32),
            explained=explained.astype(np.float32),
            output=self.output,
            method=self.method,
            unit=self.unit,
            reference=self.reference_text,
        )

    def _raw(self, columns: Columns, rows: int) -> np.ndarray[Any, Any]:
        """The row's prediction in the explained unit, from YDF's own ``predict``."""
        predicted = np.asarray(self.model.predict(self._feed(columns)), np.float64).reshape(rows)
        if self.task == "binary":
            p = np.clip(predicted, 1e-12, 1 - 1e-12)
            return np.asarray(np.log(p / (1 - p)))
        return predicted * self.scale + self.shift


class ImportedExplainer:
    """Integrated gradients through an imported model's ``serving_default``, in Python.

    Every input must be a float tensor; the explained output is the positive class's
    probability (binary), the predicted class's (multiclass) or the value (regression),
    from the output ``mooring.json``'s roles name. The baseline is, in this order:
    ``explain.reference``'s rows (a seeded sample of the ``--data`` rows, recorded at
    import when every input is one of its columns), each row's gradients integrated from
    each of them and averaged, as a network's are; else one row, ``explain.baseline``
    (the ``--data`` means of the inputs it has) and zeros for the others.
    """

    method = "integrated_gradients"

    def __init__(self, folder: SavedModelFolder, entry: Mapping[str, Any] | None) -> None:
        self.folder = folder
        for name, info in folder.inputs.items():
            if not info.dtype.startswith(("float", "bfloat")):
                raise ExplainUnavailable(
                    f"model '{folder.path}' cannot be explained: its input {name!r} is "
                    f"{info.dtype}, and integrated gradients need float inputs to "
                    "differentiate; export the model with float inputs (cast inside it) "
                    "to explain it"
                )
        roles = folder.roles
        task = folder.task
        if PROBABILITIES in roles:
            self.source, self.role = roles[PROBABILITIES], PROBABILITIES
        elif VALUE in roles:
            self.source, self.role = roles[VALUE], VALUE
        else:
            floating = [k for k, v in folder.outputs.items() if v.dtype.startswith("float")]
            if not floating:
                raise ExplainUnavailable(
                    f"model '{folder.path}' cannot be explained: none of its outputs "
                    f"({', '.join(folder.outputs)}) is a float score; import it with "
                    "--output naming the scores"
                )
            self.source = floating[0]
            self.role = VALUE if task == "regression" else PROBABILITIES
        self.task = task
        self.columns = tuple(folder.inputs)
        entry = entry or {}
        baseline = entry.get("baseline") or {}
        self.baseline = {
            name: np.asarray(baseline.get(name, 0.0), np.float32) for name in self.columns
        }
        reference = entry.get("reference")
        values = reference.get("values") if isinstance(reference, Mapping) else None
        self.references: dict[str, np.ndarray[Any, Any]] | None = None
        self.steps = STEPS
        if isinstance(values, Mapping) and set(values) == set(self.columns):
            self.references = {  # one value per row: every input is a column
                name: np.asarray([np.nan if v is None else v for v in values[name]], np.float32)
                for name in self.columns
            }
            self.steps = REFERENCE_STEPS
            source = reference.get("from", "reference rows") if reference else ""
            self.reference = (
                f"the mean {{output}} over {len(next(iter(self.references.values())))} {source}"
            )
        elif baseline:
            self.reference = f"the {{output}} of one row: the means of {entry.get('baseline_from')}"
        else:
            self.reference = "the {output} of one row of zeros"
        if self.role == VALUE:
            self.output, self.unit = f"value of {self.source!r}", "value"
        elif task == "multiclass":
            self.output, self.unit = "probability of the predicted class", "probability"
        else:
            self.output, self.unit = "probability of the positive class", "probability"
        self.reference = self.reference.format(output=self.output)

    def _target(self, out: Any, tf: Any, classes: Any) -> Any:
        scores = tf.cast(out[self.source], tf.float32)
        if scores.shape.rank == 1:
            return scores
        if self.role == VALUE or scores.shape[-1] == 1:
            return tf.reshape(scores, [-1])
        if classes is None:
            return scores[:, -1]
        return tf.gather(scores, classes, axis=1, batch_dims=1)

    def explain(self, columns: Columns) -> Explanation:
        from mooring._tensorflow import import_tensorflow

        tf = import_tensorflow()
        rows = _rows(columns, self.columns, f"model '{self.folder.path}'")
        arrays = {}
        for name in self.columns:
            try:
                arrays[name] = (
                    _numbers(columns[name], name)  # one number per row: None is NaN
                    if self.folder.inputs[name].is_column
                    else np.asarray(columns[name], dtype=np.float32)
                )
            except (TypeError, ValueError) as exc:
                raise UsageError(
                    f"input {name!r} takes float tensors of shape "
                    f"{self.folder.inputs[name].describe_shape()}, and its values do not "
                    f"convert ({exc}); send numbers in that shape"
                ) from None

        parts: dict[str, list[np.ndarray[Any, Any]]] = {}
        paths = 1 if self.references is None else len(next(iter(self.references.values())))
        size = max(1, min(CHUNK_ROWS // 4, PATH_ROWS // ((self.steps + 1) * paths)))
        for start in range(0, rows, size):
            chunk = {k: tf.constant(v[start : start + size]) for k, v in arrays.items()}
            for key, value in self._chunk(chunk, tf).items():
                parts.setdefault(key, []).append(value)
        width = len(self.columns)
        joined = {
            k: np.concatenate(v) if v else np.zeros((0, width) if k == "a" else (0,), np.float32)
            for k, v in {
                "a": parts.get("a", []),
                "b": parts.get("b", []),
                "e": parts.get("e", []),
            }.items()
        }
        return Explanation(
            self.columns,
            joined["a"],
            joined["b"],
            joined["e"],
            self.output,
            self.method,
            self.unit,
            self.reference,
        )

    def _chunk(self, x: dict[str, Any], tf: Any) -> dict[str, np.ndarray[Any, Any]]:
        dtypes = {name: info.dtype for name, info in self.folder.inputs.items()}

        def call(feed: Mapping[str, Any]) -> Any:
            typed = {k: tf.cast(v, dtypes[k]) for k, v in feed.items()}
            return self.folder.call(typed)

        classes = None
        if self.task == "multiclass":  # the row's predicted class, explained all along
            scores = call(x)[self.source]
            if scores.shape.rank == 2 and scores.shape[-1] > 1:
                classes = tf.argmax(scores, axis=1, output_type=tf.int32)
        rows = int(tf.shape(next(iter(x.values())))[0])
        points = self.steps + 1
        paths = 1
        if self.references is None:
            base = {k: tf.broadcast_to(self.baseline[k], tf.shape(v)) for k, v in x.items()}
        else:  # row i paired with reference k at i·paths + k
            paths = len(next(iter(self.references.values())))
            base = {k: tf.tile(tf.constant(r), [rows]) for k, r in self.references.items()}
            x = {k: tf.repeat(v, paths, axis=0) for k, v in x.items()}
            if classes is not None:
                classes = tf.repeat(classes, paths)

        def along(path: dict[str, Any]) -> Any:
            tiled = None if classes is None else tf.tile(classes, [points])
            return self._target(call(path), tf, tiled)

        attributions, blocked, ends = integrated_gradients(along, x, base, self.steps)
        if len(blocked) == len(self.columns):
            raise ExplainUnavailable(
                f"model '{self.folder.path}' cannot be explained: its output "
                f"{self.source!r} has no gradient with respect to any input "
                f"({', '.join(blocked)}); the signature is not differentiable (e.g. a "
                "lookup, a cast to integers or a tree inside)"
            )
        widths = {
            k: tf.reduce_mean(tf.reshape(a, [rows, paths]), axis=1) for k, a in attributions.items()
        }
        return {
            "a": np.stack([widths[c].numpy() for c in self.columns], axis=1),
            "b": tf.reduce_mean(tf.reshape(ends[0], [rows, paths]), axis=1).numpy(),
            "e": tf.reshape(ends[1], [rows, paths])[:, 0].numpy(),
        }
