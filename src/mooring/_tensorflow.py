"""TensorFlow for serving: imported without its eager import of all of Keras.

A foundation module (no mooring imports), so ``mooring serve`` can start the import
before it imports the serving layer itself.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["import_tensorflow"]

# The module TensorFlow's __init__ imports last, for Keras's SavedModel registrations.
_KERAS_EAGER_IMPORT = "keras.src.optimizers"
_IMPORT_LOCK = threading.Lock()
_TENSORFLOW: Any = None


def import_tensorflow(*, on_import: Callable[[], None] | None = None) -> Any:
    """Import TensorFlow for serving, without its eager import of all of Keras.

    ``import tensorflow`` ends with ``import keras.src.optimizers`` so that Keras
    optimizers are registered for SavedModels that contain one. That import pulls in
    the whole of Keras and, when they are installed, scikit-learn, pandas and SciPy:
    more than half of TensorFlow's import time (measured: 3.4 s → 1.7 s for the
    whole import). An exported serving signature holds no optimizer and needs none of
    it, so a serving process skips that one import; ``keras`` and ``tf.keras`` still
    import normally on first use. Where Keras or TensorFlow is already imported this
    is a plain ``import tensorflow``.

    ``on_import`` runs once when this call is the one that imports TensorFlow, before
    any other caller gets the module back (``mooring serve`` freezes the collector's
    view of the import there, before a model loads).

    >>> tf = import_tensorflow()
    >>> tf.constant([1.0]).shape.as_list()
    [1]
    """
    global _TENSORFLOW
    if _TENSORFLOW is not None:
        return _TENSORFLOW
    # Another thread may be importing it (a partly initialised module is already in
    # sys.modules then): the lock, and Python's own per-module lock, wait for it.
    with _IMPORT_LOCK:
        if _TENSORFLOW is None:
            fresh = "tensorflow" not in sys.modules
            skip = fresh and not any(m in sys.modules for m in ("keras", _KERAS_EAGER_IMPORT))
            if skip:
                # A None entry makes that one import raise ImportError, which
                # TensorFlow's __init__ catches and ignores; it is removed right after.
                sys.modules[_KERAS_EAGER_IMPORT] = None  # type: ignore[assignment]
            try:
                import tensorflow
            finally:
                if skip and sys.modules.get(_KERAS_EAGER_IMPORT, 0) is None:
                    del sys.modules[_KERAS_EAGER_IMPORT]
            if fresh and on_import is not None:
                on_import()
            _TENSORFLOW = tensorflow
    return _TENSORFLOW
