"""The Typer application object that every command group registers on."""

from __future__ import annotations

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


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
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
