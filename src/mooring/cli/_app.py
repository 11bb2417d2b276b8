"""The Typer application object that every command group registers on."""

from __future__ import annotations

import typer

from mooring.cli._common import state

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
) -> None:
    state.debug = debug
