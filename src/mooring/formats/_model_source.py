"""What a model path holds, told from the file system alone: a SavedModel folder, a
``.keras`` file or a YDF model folder (``mooring models import``, ``mooring serve
--model-dir``).

Standard library only, so the command line can answer a path that holds no model before
it imports TensorFlow.

Examples:
    >>> source_format("exports/churn.keras")  # doctest: +SKIP
    'keras'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from mooring.errors import ModelLoadError, NotFoundError

__all__ = [
    "KERAS_SUFFIX",
    "LEGACY_KERAS_SUFFIXES",
    "SAVED_MODEL_FILE",
    "YDF_FILES",
    "SourceFormat",
    "source_format",
]

#: The file every SavedModel folder holds.
SAVED_MODEL_FILE = "saved_model.pb"
#: The suffix of a Keras 3 model file (``model.save``).
KERAS_SUFFIX = ".keras"

#: The suffixes of legacy Keras (HDF5) files, which mooring refuses: loading one runs
#: Keras 2's deserializer, where safe mode has been bypassed (CVE-2025-9905).
LEGACY_KERAS_SUFFIXES = (".h5", ".hdf5")

#: The files every YDF model folder holds (``model.save``).
YDF_FILES = ("data_spec.pb", "header.pb")

SourceFormat = Literal["saved_model", "keras", "ydf"]


def source_format(path: str | os.PathLike[str]) -> SourceFormat:
    """``saved_model`` (a folder holding ``saved_model.pb``), ``keras`` (a ``.keras``
    file) or ``ydf`` (a folder holding :data:`YDF_FILES`).

    Raises:
        NotFoundError: nothing is at ``path``.
        ModelLoadError: something is, but not a model mooring imports or serves (a
            legacy ``.h5`` file: with the conversion to make).
    """
    where = Path(path).expanduser()
    if where.is_file() and where.suffix.lower() in LEGACY_KERAS_SUFFIXES:
        raise ModelLoadError(
            f"'{path}' is a legacy Keras (HDF5) file, which mooring does not load: its "
            "format predates Keras 3's safe mode. Convert it in a trusted environment: "
            "load it with Keras 3 (keras.models.load_model(path)) and save it with "
            "model.save('model.keras'), or export a SavedModel with model.export('model_dir'); "
            "then import that"
        )
    if where.is_dir() and (where / SAVED_MODEL_FILE).is_file():
        return "saved_model"
    if where.is_file() and where.suffix == KERAS_SUFFIX:
        return "keras"
    if where.is_dir() and all((where / name).is_file() for name in YDF_FILES):
        return "ydf"
    if not where.exists():
        raise NotFoundError(
            f"'{path}' does not exist; pass a SavedModel folder (it holds {SAVED_MODEL_FILE}), "
            f"a {KERAS_SUFFIX} file or a YDF model folder"
        )
    what = "a folder without" if where.is_dir() else "a file, neither .keras nor a folder with"
    raise ModelLoadError(
        f"'{path}' is {what} {SAVED_MODEL_FILE}: not a model mooring can import or serve; "
        "pass a SavedModel folder (tf.saved_model.save, model.export), a .keras file "
        "(model.save) or a YDF model folder (model.save)"
    )
