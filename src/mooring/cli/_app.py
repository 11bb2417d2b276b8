"""The Typer application object that every command group registers on."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import typer
from typer.core import TyperOption

from mooring._tensorflow import LOGS_ENV
from mooring.cli._common import state


def _flags_without_a_type(option: TyperOption, ctx: Any) -> str | None:
    """Typer 0.2x shows a type for every option, so flags read ``--json <bool>`` as if
    they took a value; a flag shows none (what --help shows only; parsing is unchanged)."""
    if option.is_flag:
        return None
    return _display_type(option, ctx)


_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flags_without_a_type  # type: ignore[method-assign, assignment]

app = typer.Typer(
    name="mooring",
    help="From raw tabular data to a served, monitored, safely rolled-out SavedModel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _print_version(asked: bool) -> None:
    """``mooring --version``: mooring's and the versions a bug report needs, without
    importing TensorFlow (read from the installed distributions' metadata)."""
    if not asked:
        return
    from importlib.metadata import PackageNotFoundError, version
    from platform import python_version

    from mooring import __version__

    parts = [f"Python {python_version()}"]
    for label, dist in (("TensorFlow", "tensorflow"), ("Keras", "keras")):
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{label} {version(dist)}")
    typer.echo(f"mooring {__version__} ({', '.join(parts)})")
    other = _other_mooring()
    if other:
        typer.echo(other, err=True)
    raise typer.Exit()


def _other_mooring() -> str | None:
    """The warning when the distribution named ``mooring`` (another project on the package
    index, which ships a ``mooring`` package and command too) is installed beside
    ``mooring-ml``: their files overwrite each other's. None when it is not.

    Example: ``mooring --version`` then also prints "the distribution 'mooring' 0.5.8 (…)
    is installed in this environment too …: pip uninstall -y mooring mooring-ml, then pip
    install mooring-ml".
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        other = distribution("mooring")
    except PackageNotFoundError:
        return None
    summary = other.metadata.json.get("summary") or "another project"
    return (
        f"warning: the distribution 'mooring' {other.version} ({summary}) is installed in "
        "this environment too; it also ships a 'mooring' package and command, so the two "
        "overwrite each other's files. Keep one: pip uninstall -y mooring mooring-ml, then "
        "pip install mooring-ml"
    )


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print mooring's version (and Python's, TensorFlow's, Keras's) and exit.",
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        help="Show TensorFlow's and YDF's own log lines (as MOORING_TF_LOGS=1 does); "
        "also taken after the command, e.g. mooring run --verbose.",
    ),
) -> None:
    state.debug = debug
    if verbose:
        os.environ[LOGS_ENV] = "1"
