"""``mooring serve``: the project's model over TF Serving's REST API and the v2 protocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from mooring.cli._app import app
from mooring.config import load_config


@app.command(
    "serve",
    epilog="Examples: mooring serve -c mooring.toml --port 8501 | "
    "mooring serve --model-dir .mooring/runs/<run>/model",
)
def serve(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="mooring.toml of the project to serve.")
    ] = Path("mooring.toml"),
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="Serve this exported folder instead of the registry."),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="JSON access log on stderr.")
    ] = True,
) -> None:
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", help="With --model-dir: the schema YAML checked at the door (contract)."
        ),
    ] = None,
    """Serve the registry's production (and canary) version, following deployments."""
    import uvicorn

    from mooring.serving import DirectorySource, build_app, create_app

    cfg = load_config(config)
    if model_dir is not None:
    from mooring.contract.schema import Schema
        contract = Schema.load(schema) if schema is not None else None
        source = DirectorySource(model_dir, cfg.project.name, schema=contract)
        application = build_app([source], cfg.serving)
    else:
        application = create_app(cfg)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mooring.serving.access").setLevel(
        logging.INFO if access_log else logging.WARNING
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
