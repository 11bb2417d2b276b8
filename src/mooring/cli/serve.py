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
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", help="With --model-dir: the schema YAML checked at the door (contract)."
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="JSON access log on stderr.")
    ] = True,
    monitor: Annotated[
        bool,
        typer.Option("--monitor", help="Also run the monitor (see mooring monitor) in-process."),
    ] = False,
    monitor_interval: Annotated[
        str, typer.Option("--monitor-interval", help="Time between monitor ticks, e.g. 10s.")
    ] = "10s",
) -> None:
    """Serve the registry's production (and canary) version, following deployments."""
    import uvicorn

    from mooring.contract.schema import Schema
    from mooring.serving import DirectorySource, build_app, create_app

    cfg = load_config(config)
    if model_dir is not None:
        contract = Schema.load(schema) if schema is not None else None
        source = DirectorySource(model_dir, cfg.project.name, schema=contract)
        application = build_app([source], cfg.serving)
    else:
        application = create_app(cfg)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mooring.serving.access").setLevel(
        logging.INFO if access_log else logging.WARNING
    )
    hosted = None
    if monitor:
        from mooring.cli.monitor import _seconds
        from mooring.errors import UsageError
        from mooring.monitoring import Monitor

        state = application.state.mooring
        if state.registry is None:
            raise UsageError("--monitor needs the registry; leave out --model-dir")
        # The monitor reads this server's metrics in process: no URL to configure.
        hosted = Monitor(
            cfg, state.registry, metrics=state.metrics.render, config_path=config.resolve()
        ).start(_seconds(monitor_interval, "--monitor-interval"))
    try:
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    finally:
        if hosted is not None:
            hosted.stop()
