"""The ``mooring`` command line: a thin layer over the library API.

Exit codes: 0 ok, 1 checks failed (error-level anomalies, a failed gate),
2 usage or configuration error. Errors print as one line plus a hint; pass
``--debug`` to see the traceback.

Each command group registers its commands on the Typer ``app`` when its module is
imported. :func:`main` imports only the module of the command it is asked to run
(``mooring serve`` never imports the contract, pipeline or export commands, which
keeps a server's cold start short); ``--help``, an unknown command and
``from mooring.cli import app`` import them all.

A command's start-up is imports (the command line's own, its command's module, and
TensorFlow for the commands that load it): :func:`main` runs them with the garbage
collector off, since they make long-lived objects and no garbage worth a collection
(with it on, it runs about 90 times during the command line's own imports and
hundreds of times during TensorFlow's), and with pydantic's plugins off unless
``PYDANTIC_DISABLE_PLUGINS`` says otherwise (looking for them reads the metadata of
every installed package; the configuration uses none).

Its end is the interpreter's exit, which collects every object the command made: after
a training run, a walk of TensorFlow's and Keras's object graphs that took 1.5 s after
the last line was printed (0.3 s after ``mooring status``). Run as the script,
:func:`main` has the objects frozen out of that collection once every other exit
callback has run; a collection at exit frees nothing the operating system does not.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import typer

__all__ = ["app", "main"]

# Top-level command → the (internal) module under mooring.cli that registers it.
COMMANDS: dict[str, str] = {
    "stats": "_contract",
    "schema": "_contract",
    "validate": "_contract",
    "evaluate": "_evaluate",
    "explain": "_explain",
    "export": "_export",
    "models": "_models",
    "audit": "_audit",
    "demo": "_demo",
    "docs": "_docs",
    "monitor": "_monitor",
    "ops": "_ops",
    "drift": "_monitoring",
    "feedback": "_monitoring",
    "live": "_monitoring",
    "run": "_run",
    "score": "_score",
    "init": "_run",
    "status": "_run",
    "serve": "_serve",
    "train": "_train",
    "ui": "_ui",
}


def load_commands(command: str | None = None) -> typer.Typer:
    """Register ``command``'s module on the app (every module when None or unknown)."""
    from mooring.cli._app import app

    module = COMMANDS.get(command or "")
    for name in [module] if module else sorted(set(COMMANDS.values())):
        importlib.import_module(f"mooring.cli.{name}")
    return app


def __getattr__(name: str) -> Any:
    # `from mooring.cli import app`: the whole command line, every command registered.
    if name == "app":
        return load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mooring`` script; returns the exit code.

    Without ``argv`` (the script, ``python -m mooring``) the process exits after it: its
    objects are left out of the interpreter's last garbage collection (``gc.freeze``,
    registered first so that it runs after every other exit callback).
    """
    if argv is None:
        atexit.register(gc.freeze)
    args = sys.argv[1:] if argv is None else argv
    if VERBOSE in args:
        # A root option, also taken after the command (`mooring run --verbose`); it must
        # be known before TensorFlow's import below.
        args = [VERBOSE, *(arg for arg in args if arg != VERBOSE)]
        os.environ[TF_LOGS_ENV] = "1"
    # The root takes only flags (--debug, --verbose, --version), so the first other word
    # is the command.
    command = next((arg for arg in args if not arg.startswith("-")), None)
    # pydantic reads it when it first builds a model (the configuration's, on import).
    os.environ.setdefault(PYDANTIC_PLUGINS_ENV, "__all__")
    if "--debug" not in args:
        warnings.showwarning = _one_line_warning
    collecting = gc.isenabled()
    gc.disable()  # imports only: no garbage worth a collection (see the module's notes)
    try:
        failed = _checked_first(command, args)
        if failed is not None:
            return failed
        # `mooring export` alone shows the group's help: no TensorFlow.
        if _loads_tensorflow(command, args):
            _load_tensorflow_quietly(now=command not in LAZY_TENSORFLOW_COMMANDS)
        from mooring.cli._common import run_guarded

        app = load_commands(command)
    finally:
        if collecting:
            gc.enable()
    return run_guarded(app, args)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A Python warning as the command line says everything else: one line, no source
    path (``--debug`` shows Python's own form); each one once a run, however often it is
    raised (every ``[[model.candidates]]`` builds the same features, and Keras resets
    Python's record of the warnings already shown in between)."""
    line = f"warning: {message}\n"
    if line in _WARNED:
        return
    _WARNED.add(line)
    with contextlib.suppress(OSError, ValueError):
        (file or sys.stderr).write(line)


#: The warnings this run printed (:func:`_one_line_warning`).
_WARNED: set[str] = set()


def _checked_first(command: str | None, args: list[str]) -> int | None:
    """The command's project file, data, model folder and port, checked before its module
    and TensorFlow are imported (see ``mooring.cli._preflight``): the exit code of the
    error found (printed), or None."""
    from mooring.cli._preflight import preflight
    from mooring.errors import MooringError

    try:
        preflight(command, args)
    except MooringError as exc:
        from mooring.cli._common import report_error

        return report_error(exc, "--debug" in args)
    except Exception:  # a fault of the check's own: the command runs and says what it finds
        return None
    return None


#: The root option that shows TensorFlow's and YDF's native log lines.
VERBOSE = "--verbose"
#: ``mooring._tensorflow.LOGS_ENV`` (a test checks), read without importing that module.
TF_LOGS_ENV = "MOORING_TF_LOGS"

#: pydantic's switch for its plugins; the command line sets it to off unless it is set.
PYDANTIC_PLUGINS_ENV = "PYDANTIC_DISABLE_PLUGINS"

#: Commands that load TensorFlow (for training or a model): it is imported first, quietly.
TENSORFLOW_COMMANDS = frozenset(
    {"train", "evaluate", "run", "export", "monitor", "demo", "explain", "drift"}
)
#: Those of them that often need none (a run whose steps are cached; a monitor tick whose
#: versions' outputs were frozen at registration; an export refused for a missing extra or
#: an existing artifact): TensorFlow is imported, as quietly, by the first step that needs it.
LAZY_TENSORFLOW_COMMANDS = frozenset({"run", "monitor", "demo", "explain", "drift", "export"})


def _loads_tensorflow(command: str | None, args: list[str]) -> bool:
    """Whether the command loads TensorFlow: one of :data:`TENSORFLOW_COMMANDS` (not
    ``mooring export`` alone, which shows the group's help), or ``mooring models import``."""
    if command is None or "--help" in args:
        return False
    if command == "models":
        words = [arg for arg in args[args.index(command) + 1 :] if not arg.startswith("-")]
        return words[:1] == ["import"]
    return command in TENSORFLOW_COMMANDS and args[-1:] != ["export"]


def _load_tensorflow_quietly(*, now: bool = True) -> None:
    """Import TensorFlow with its native start-up lines hidden (see ``quiet_native_logs``)
    and its Python-side absl warnings at error level, unless ``MOORING_TF_LOGS=1``.

    ``now=False`` (:data:`LAZY_TENSORFLOW_COMMANDS`): the same quiet import, at the first
    step that imports TensorFlow (``quiet_when_imported``)."""
    from mooring._tensorflow import hide_python_logs, quiet_native_logs, quiet_when_imported

    hide_python_logs()
    if not now:
        quiet_when_imported()
        return
    with quiet_native_logs():  # a plain import with MOORING_TF_LOGS=1
        import tensorflow

        # Probing for devices is where a CPU machine reports its failed CUDA init.
        tensorflow.config.list_physical_devices("GPU")
