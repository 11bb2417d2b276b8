"""TensorFlow for serving: imported without all of Keras and with its API namespaces deferred.

A foundation module (no mooring imports), so ``mooring serve`` can start the import
before it imports the serving layer itself.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = [
    "LOGS_ENV",
    "hide_python_logs",
    "import_tensorflow",
    "quiet_library_logs",
    "quiet_native_logs",
    "quiet_python_logs",
    "quiet_when_imported",
]

#: Set to 1 to see TensorFlow's native (C++/absl) log lines again.
LOGS_ENV = "MOORING_TF_LOGS"


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Hide what TensorFlow's native libraries print on stderr while they load.

    Loading TensorFlow writes absl and C++ lines straight to file descriptor 2, before
    its own log level applies (``cudart_stub.cc``, ``cuInit … UNKNOWN ERROR (303)``,
    ``cpu_feature_guard``): noise on every command of a CPU machine. While the block
    runs, descriptor 2 points at a temporary file; if the block raises, what was
    written is replayed on stderr, so a failed import still explains itself. It also
    sets ``TF_CPP_MIN_LOG_LEVEL=2`` (errors only) unless set. ``MOORING_TF_LOGS=1``
    turns all of this off. Other threads' stderr output in the window is hidden too:
    use it where nothing else is writing (start-up).

    >>> with quiet_native_logs():
    ...     _ = os.write(2, b"hidden")
    """
    if os.environ.get(LOGS_ENV) == "1":
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                os.write(2, sink.read()[-20_000:])
    if "tensorflow" in sys.modules:
        quiet_library_logs()


def quiet_when_imported() -> None:
    """Make the process's first ``import tensorflow``, wherever it happens, as quiet as an
    import inside :func:`quiet_native_logs`, without importing TensorFlow now.

    ``mooring run`` imports TensorFlow only when a step needs it: a run whose steps all
    come from the pipeline's cache ends in a fraction of a second instead of paying the
    seconds of the import. Once TensorFlow is imported (or with ``MOORING_TF_LOGS=1``)
    this does nothing.

    >>> quiet_when_imported()
    """
    if "tensorflow" in sys.modules or os.environ.get(LOGS_ENV) == "1":
        return
    if not any(isinstance(finder, _QuietFirstImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFirstImport())


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, with a loader that runs the module
    (and the device probe that prints on a machine without a GPU) inside
    :func:`quiet_native_logs`; it leaves ``sys.meta_path`` at that first import."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with quiet_native_logs():
            self._loader.exec_module(module)
            module.config.list_physical_devices("GPU")  # the device runtime's start-up lines

    def __getattr__(self, name: str) -> Any:  # resources and source, as the real loader
        return getattr(self._loader, name)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def quiet_python_logs() -> Iterator[None]:
    """TensorFlow's Python-side notes at error level while the block runs: loading and
    saving models log that names like 'capital-gain' become Python-safe parameter names,
    noise where the signature keys keep the column names.

    A filter on the ``absl`` logger, not a level: TensorFlow's saving code sets absl's
    verbosity and puts it back, which resets the logger's level to WARNING.

    >>> with quiet_python_logs():
    ...     pass
    """
    logger = logging.getLogger("absl")
    added = _errors_only not in logger.filters
    logger.addFilter(_errors_only)
    try:
        yield
    finally:
        if added:
            logger.removeFilter(_errors_only)


def hide_python_logs() -> None:
    """TensorFlow's Python-side notes hidden for the rest of the process, as in
    :func:`quiet_python_logs`, unless ``MOORING_TF_LOGS=1`` (the CLI and the server).

    >>> hide_python_logs()
    """
    if os.environ.get(LOGS_ENV) != "1":
        logging.getLogger("absl").addFilter(_errors_only)


#: absl's SetMinLogLevel in TensorFlow's library and the level to set (empty: not looked up).
_ABSL_SETTER: list[tuple[Callable[[int], None], int] | None] = []


def quiet_library_logs() -> None:
    """Set absl's minimum log level in TensorFlow's own library to
    ``TF_CPP_MIN_LOG_LEVEL`` (2, errors only, unless set), once TensorFlow is imported.

    TensorFlow applies that variable to its own log lines only; the libraries that log
    through its copy of absl (YDF's inference ops: ``I0000 … kernel.cc] Loading model
    from path …`` at every load of a tree model, ``W0000`` lines) print at every level.
    absl's ``SetMinLogLevel``, exported by ``libtensorflow_framework``, is called
    through ``ctypes``; its C++ name carries absl's inline namespace, read from the
    headers TensorFlow ships. Where either is missing nothing changes.
    ``MOORING_TF_LOGS=1`` leaves absl's level as it is.

    Loading an op library resets the level (YDF's defines absl's ``minloglevel`` flag,
    whose default is applied when the library loads): call this again after one loads.

    >>> quiet_library_logs()
    """
    if os.environ.get(LOGS_ENV) == "1" or "tensorflow" not in sys.modules:
        return
    if not _ABSL_SETTER:
        raw = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip()
        level = min(int(raw), 3) if raw.isdigit() else 2
        try:
            _ABSL_SETTER.append((_absl_min_log_level_setter(), level))
        except Exception:  # an unusual build: its lines stay as they are
            _ABSL_SETTER.append(None)
    found = _ABSL_SETTER[0]
    if found is not None:
        setter, level = found
        setter(level)


def _absl_min_log_level_setter() -> Callable[[int], None]:
    """``absl::SetMinLogLevel`` in TensorFlow's framework library (raises where absent)."""
    import ctypes
    import glob
    import re

    folder = os.path.dirname(str(sys.modules["tensorflow"].__file__))
    with open(os.path.join(folder, "include", "absl", "base", "options.h"), encoding="utf-8") as f:
        tag = re.findall(r"^#define ABSL_OPTION_INLINE_NAMESPACE_NAME (\w+)", f.read(), re.M)[0]
    library = ctypes.CDLL(sorted(glob.glob(os.path.join(folder, "libtensorflow_framework*")))[0])
    # absl::SetMinLogLevel(absl::LogSeverityAtLeast): an enum of int (0 info … 3 fatal).
    setter = getattr(library, f"_ZN4absl{len(tag)}{tag}14SetMinLogLevelENS0_18LogSeverityAtLeastE")
    setter.argtypes, setter.restype = [ctypes.c_int], None
    return setter  # type: ignore[no-any-return]


# The module TensorFlow's __init__ imports last, for Keras's SavedModel registrations.
_KERAS_EAGER_IMPORT = "keras.src.optimizers"
# The generated modules behind tf.compat, tf.__internal__, tf.data, tf.saved_model, ...
_API_NAMESPACES = "tensorflow._api.v2."
_IMPORT_LOCK = threading.Lock()
_TENSORFLOW: Any = None


def import_tensorflow(*, on_import: Callable[[], None] | None = None) -> Any:
    """Import TensorFlow for serving, without its eager import of all of Keras.

    ``import tensorflow`` ends with ``import keras.src.optimizers`` so that Keras
    optimizers are registered for SavedModels that contain one. That import pulls in
    the whole of Keras and, when they are installed, scikit-learn, pandas and SciPy:
    more than half of TensorFlow's import time. An exported serving signature holds no
    optimizer and needs none of it, so a serving process skips that one import;
    ``keras`` and ``tf.keras`` still import normally on first use. Where Keras or
    TensorFlow is already imported this is a plain ``import tensorflow``.

    The import also defers TensorFlow's public API namespaces (``tf.compat``,
    ``tf.__internal__``, ``tf.saved_model``, ... 43 of its 45; ``tf.distribute`` and
    ``tf.lite`` run as usual, see :class:`_DeferModules`): each runs on first attribute
    access instead of during ``import tensorflow``, as with
    :class:`importlib.util.LazyLoader` but under a lock, so threads that touch one
    first together all see it whole. Loading and calling a served signature touches
    only a few, so a third of the modules are never imported.

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
            deferring = (
                _DeferModules(_API_NAMESPACES, keep=_packages_in("tensorflow")) if fresh else None
            )
            if skip:
                # A None entry makes that one import raise ImportError, which
                # TensorFlow's __init__ catches and ignores; it is removed right after.
                sys.modules[_KERAS_EAGER_IMPORT] = None  # type: ignore[assignment]
            if deferring is not None:
                sys.meta_path.insert(0, deferring)
            try:
                with quiet_native_logs():
                    import tensorflow

                    if fresh:
                        # The device runtime starts on first use (a model's load) and says
                        # on stderr, past TF_CPP_MIN_LOG_LEVEL=2, that a machine without a
                        # GPU has none ("failed call to cuInit"): start it here, quietly.
                        tensorflow.config.list_physical_devices("GPU")
            finally:
                if deferring is not None:
                    sys.meta_path.remove(deferring)
                if skip and sys.modules.get(_KERAS_EAGER_IMPORT, 0) is None:
                    del sys.modules[_KERAS_EAGER_IMPORT]
            if fresh and on_import is not None:
                on_import()
            _TENSORFLOW = tensorflow
    return _TENSORFLOW


def _packages_in(package: str) -> frozenset[str]:
    """The names of the packages directly inside ``package``'s folder, without importing it."""
    spec = importlib.machinery.PathFinder.find_spec(package)
    found: set[str] = set()
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        with os.scandir(folder) as entries:
            found.update(
                e.name for e in entries if os.path.isfile(os.path.join(e.path, "__init__.py"))
            )
    return frozenset(found)


class _DeferModules(importlib.abc.MetaPathFinder):
    """Hands out the modules directly under ``prefix`` unexecuted, except those in ``keep``.

    On ``sys.meta_path`` only while ``import tensorflow`` runs (prefix: its API
    namespaces), so only the namespaces that import binds on ``tensorflow`` come back
    deferred; their sub-namespaces run with them.

    ``keep``: TensorFlow's own packages that share a namespace's name
    (``tensorflow/distribute/``, ``tensorflow/lite/``). Running such a namespace
    imports that package, and its modules import through it (``import
    tensorflow.distribute.experimental.rpc.kernels.gen_rpc_ops as ...``), which only
    resolves while the namespace is not yet bound on ``tensorflow`` in its place:
    during the import, as in a full import, and not later.
    """

    def __init__(self, prefix: str, keep: frozenset[str] = frozenset()) -> None:
        self.prefix = prefix
        self.keep = keep

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(self.prefix):
            return None
        name = fullname[len(self.prefix) :]
        if "." in name or name in self.keep:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _DeferredLoader(spec.loader)
        return spec


class _DeferredLoader(importlib.abc.Loader):
    """Creates the module, and leaves running it to its first attribute access."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        spec = module.__spec__
        assert spec is not None
        spec.loader = self.loader
        module.__loader__ = self.loader
        spec.loader_state = {
            "lock": threading.RLock(),
            "running": False,
            "namespace": dict(module.__dict__),
        }
        module.__class__ = _DeferredModule


class _DeferredModule(types.ModuleType):
    """A module whose code runs, once and under a lock, when an attribute is first read.

    Like the module :class:`importlib.util.LazyLoader` makes, but thread-safe on
    Python 3.11: a second thread waits for the first to finish running the module,
    and the running thread itself (the module's own code) reads it as it stands.
    """

    def __getattribute__(self, attr: str) -> Any:
        spec = object.__getattribute__(self, "__spec__")
        state = spec.loader_state
        with state["lock"]:
            if object.__getattribute__(self, "__class__") is _DeferredModule:
                if state["running"]:
                    return types.ModuleType.__getattribute__(self, attr)
                state["running"] = True
                try:
                    _run(self, spec, state)
                finally:
                    state["running"] = False
        return getattr(self, attr)

    def __delattr__(self, attr: str) -> None:
        self.__getattribute__("__name__")  # run the module first, then delete
        delattr(self, attr)


def _run(module: types.ModuleType, spec: Any, state: dict[str, Any]) -> None:
    """Run a deferred module's code, keeping attributes set on it since it was made."""
    namespace = types.ModuleType.__getattribute__(module, "__dict__")
    before = state["namespace"]
    changed = {k: v for k, v in namespace.items() if k not in before or before[k] is not v}
    spec.loader.exec_module(module)
    namespace.update(changed)
    module.__class__ = types.ModuleType
