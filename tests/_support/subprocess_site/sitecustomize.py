"""Loaded by every Python process a test starts (``tests/conftest.py`` puts this folder
first on ``PYTHONPATH``): Keras's scikit-learn wrappers find no scikit-learn.

Importing TensorFlow imports Keras, whose optional scikit-learn wrappers import
scikit-learn, and with it SciPy, when it is installed: about 1 s of every spawned
``mooring`` command and server in the dev environment (scikit-learn is a test
dependency), and nothing in a user's install, which has no scikit-learn. Here Keras
sees what a user's install has; any other importer gets scikit-learn as usual.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType


class _NoScikitLearnForKeras(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "sklearn":
            frame = sys._getframe(1)
            while frame is not None:
                if str(frame.f_globals.get("__name__", "")).startswith("keras.src.wrappers"):
                    raise ModuleNotFoundError("No module named 'sklearn'", name=fullname)
                frame = frame.f_back
        return None


sys.meta_path.insert(0, _NoScikitLearnForKeras())
