"""``mooring ui``: the web dashboard on its own, reading the registry and the project's home."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mooring.cli._app import app
from mooring.cli._common import console
from mooring.config import load_config


@app.command(
    "ui",
    epilog="Examples: mooring ui -c mooring.toml | "
    "mooring ui --metrics-url http://127.0.0.1:8501/metrics",
)
def ui(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="mooring.toml of the project to show.")
    ] = Path("mooring.toml"),
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8502,
    metrics_url: Annotated[
        str | None,
        typer.Option(
            "--metrics-url",
            help="A running server's /metrics, for the live page "
            "(e.g. http://127.0.0.1:8501/metrics).",
        ),
    ] = None,
) -> None:
    """Open the dashboard: models, deployments, reports, drift and live traffic.

    Example: mooring ui -c mooring.toml --metrics-url http://127.0.0.1:8501/metrics
    (then browse http://127.0.0.1:8502/ui/). Admin actions use the serving admin token.
    """
    from mooring.dashboard._app import create_ui, standalone_app
    from mooring.serving import Server

    cfg = load_config(config)
    application = standalone_app(create_ui(cfg, metrics_url=metrics_url))

    async def listening() -> None:
        console.print(f"mooring dashboard on http://{host}:{port}/ui/ (Ctrl+C to stop)")

    # mooring serve's own server (the door, on uvloop): Ctrl+C stops it gracefully.
    Server(application, host=host, port=port, on_listening=listening).run()
