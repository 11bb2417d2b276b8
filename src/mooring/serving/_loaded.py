"""One loaded SavedModel version: its signature's inputs and outputs, warm-up and prediction.

The folder is opened by the one model loader (:func:`mooring.formats._model.load_saved_model`);
this module adds what only a server needs: the name and version it answers as, the
contract checked at the door, decoded string outputs, warm-up and, for a binary
classifier, ``classes``/``class_ids`` at the version's operating threshold (the one its
evaluation chose and the registry records, else the one its ``mooring.json`` records):
``probabilities[:, 1] >= threshold``, the rule the gates judged, not the SavedModel's
argmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mooring.formats._model import (
    CLASS_IDS,
    CLASSES,
    PROBABILITIES,
    SavedModelFolder,
    TensorInfo,
    load_saved_model,
)

if TYPE_CHECKING:
    from mooring.formats._columns import InputPolicy
    from mooring.serving._contract import InputContract
    from mooring.serving._xla import Compiled, XlaPlan

__all__ = ["ServedModel", "load_served_model"]


@dataclass
class ServedModel:
    """A version ready to answer: the loaded folder plus the name and version it serves as."""

    name: str
    version: int
    folder: SavedModelFolder
    # The data contract checked at the door; None: the signature's dtypes only.
    contract: InputContract | None = None
    # The door's policy for this version, derived once (Predictor.policy_for).
    policy: InputPolicy | None = None
    # XLA's verdict at warm-up (see mooring.serving._xla), and the compiled signature
    # when some batch sizes run through it.
    xla: XlaPlan | None = None
    compiled: Compiled | None = None
    # Its explainer (mooring.explain), made on the first explanation from this loaded
    # folder, not a second copy of it; let go with the version.
    explainer: Any = field(default=None, repr=False)
    # The binary operating threshold ``classes`` answers at (None: the signature's own
    # classes, e.g. an imported model or a multiclass one); see :func:`load_served_model`.
    threshold: float | None = None

    def __post_init__(self) -> None:
        #: Every input a ``[None]`` column; else tensors (read once: every request asks).
        self.columnar = self.folder.columnar
        #: Float inputs where null/NaN is a 400 (an imported model's; read once too).
        self.refuses_missing = self.folder.refuses_missing
        #: A binary classifier's two class names, ``classes`` at the threshold; else None.
        self.binary_classes = _binary_classes(self.folder)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def inputs(self) -> dict[str, TensorInfo]:
        return self.folder.inputs

    @property
    def outputs(self) -> dict[str, TensorInfo]:
        return self.folder.outputs

    @property
    def metadata(self) -> dict[str, Any]:
        return self.folder.metadata

    @property
    def load_seconds(self) -> float:
        return self.folder.load_seconds

    def predict(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """Run the signature on validated columns (arrays or lists); strings decoded.

        A batch of a size XLA pays at runs compiled (:mod:`mooring.serving._xla`).
        """
        compiled = self.compiled
        size = None
        if compiled is not None and columns:
            size = compiled.size_for(len(next(iter(columns.values()))))
        out = compiled.run(columns, size) if compiled and size else self.folder.predict(columns)
        names, threshold = self.binary_classes, self.threshold
        at_threshold = False
        if names is not None and threshold is not None:
            # One comparison on the batch: the operating threshold, not the argmax; in
            # float64, as the evaluation chose it (a float32 cut could move a row).
            positive = (out[PROBABILITIES][:, 1] >= np.float64(threshold)).astype(np.int64)
            out[CLASS_IDS] = positive
            out[CLASSES] = names[positive]
            at_threshold = True
        for name, value in out.items():
            if value.dtype == object and not (at_threshold and name == CLASSES):
                decoded = [v.decode("utf-8", "replace") for v in value.ravel()]
                out[name] = np.array(decoded, dtype=object).reshape(value.shape)
        return out

    def example_columns(self, rows: int) -> dict[str, np.ndarray[Any, Any]]:
        """Real-looking inputs for warm-up: training ranges and vocabularies from mooring.json.

        Without a feature spec, numbers are small integers and strings are missing ("").
        A tensor input's unknown inner dimensions take the ``example_shape`` its import
        recorded in ``mooring.json`` (else 1).
        """
        if not self.columnar:
            return self._example_tensors(rows)
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

    def _example_tensors(self, rows: int) -> dict[str, np.ndarray[Any, Any]]:
        described = (self.metadata.get("signature") or {}).get("inputs") or {}
        tensors: dict[str, np.ndarray[Any, Any]] = {}
        for name, info in self.inputs.items():
            entry = described.get(name) if isinstance(described, dict) else None
            example = entry.get("example_shape") if isinstance(entry, dict) else None
            inner = [
                d if d is not None else _example_dim(example, i) for i, d in enumerate(info.inner)
            ]
            shape = (rows, *inner)
            if info.is_string:
                tensors[name] = np.full(shape, b"", dtype=object)
            else:
                tensors[name] = np.zeros(shape, dtype=info.numpy_dtype())
        return tensors

    def warm_up(self, requests: int, max_batch_size: int, xla: str = "off") -> None:
        """Run ``requests`` predictions of growing batch sizes before taking traffic; with
        ``xla = "auto"``, then judge where XLA pays (:func:`mooring.serving._xla.judge`)."""
        for i in range(requests):
            rows = min(max_batch_size, 2 ** (i % 7))
            self.predict(self.example_columns(rows))
        from mooring.serving._xla import XlaPlan, judge

        if xla == "auto":
            self.xla = judge(self, max_batch_size)
        else:
            self.xla = XlaPlan(xla, 'not compiled: [serving] xla = "off"')


def _example_dim(example: Any, axis: int) -> int:
    """An unknown inner dimension's size for warm-up: the import's example, else 1."""
    if isinstance(example, list) and axis < len(example):
        size = example[axis]
        if type(size) is int and 0 < size <= 4096:
            return size
    return 1


def _binary_classes(folder: SavedModelFolder) -> np.ndarray[Any, Any] | None:
    """The binary classifier's two class names (negative, positive) as answered, or None
    when ``folder`` is not a mooring binary classifier with its standard outputs."""
    outputs = folder.outputs
    vocabulary = folder.label_vocabulary
    if folder.task != "binary" or len(vocabulary) != 2:
        return None
    if PROBABILITIES not in outputs or CLASSES not in outputs or CLASS_IDS not in outputs:
        return None
    if outputs[PROBABILITIES].inner != (2,):
        return None
    return np.array([str(v) for v in vocabulary], dtype=object)


def recorded_threshold(folder: SavedModelFolder) -> float | None:
    """The operating threshold the folder's ``mooring.json`` records, or None (none, or
    not a number in (0, 1))."""
    value = folder.metadata.get("threshold")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.0 < value < 1.0 else None


def load_served_model(
    name: str, version: int, path: Path, *, threshold: float | None = None, pack: bool = False
) -> ServedModel:
    """Load version ``version`` of model ``name`` from the folder ``path``.

    ``threshold`` is the version's registered operating threshold; without one, the
    threshold the folder's ``mooring.json`` records. A binary classifier answers
    ``classes`` and ``class_ids`` at it (``probabilities[:, 1] >= threshold``). ``pack``:
    call the signature with one tensor per dtype from the start (a server packs once the
    version is ready instead, :meth:`SavedModelFolder.pack`). Example::

        model = load_served_model("churn", 3, folder, threshold=0.18)
        model.predict(columns)["classes"]  # positive wherever probability >= 0.18

    Raises:
        ModelLoadError: the folder is not a SavedModel mooring can serve.
    """
    folder = load_saved_model(
        path,
        what=f"model '{name}' version {version}",
        require_metadata=False,
        warn=False,
        pack=pack,
    )
    chosen = threshold if threshold is not None else recorded_threshold(folder)
    return ServedModel(name=name, version=version, folder=folder, threshold=chosen)
