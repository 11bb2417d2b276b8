"""``mooring serve``: the project's model over TF Serving's REST API and the v2 protocol."""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mooring.cli._app import app
from mooring.config import MooringConfig, load_config

if TYPE_CHECKING:
    from starlette.applications import Starlette


@app.command(
    "serve",
    epilog="Examples: mooring serve -c mooring.toml --port 8501 --grpc-port 8500 | "
    "mooring serve -c a/mooring.toml -c b/mooring.toml | mooring serve --all-models | "
    "mooring serve --model-dir .mooring/runs/<run>/model",
)
def serve(
    configs: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="mooring.toml of the project to serve (default: ./mooring.toml); repeat it "
            "to serve several projects' models from one process (the first's [serving] "
            "section runs the server).",
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Serve this model of the (first) project's registry; repeatable "
            "(default: the project's own model).",
        ),
    ] = None,
    all_models: Annotated[
        bool,
        typer.Option(
            "--all-models",
            help="Serve every model with a production version in the (first) project's registry.",
        ),
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port",
            min=1,
            max=65535,
            help="Also serve TF Serving's gRPC API and the Open Inference Protocol's on this "
            "port (default: [serving] grpc_port; off when unset).",
        ),
    ] = None,
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
    paths = configs or [Path("mooring.toml")]
    config = paths[0]
    cfg = load_config(config)
    others = [load_config(path) for path in paths[1:]]
    if model_dir is not None and (others or models or all_models):
        from mooring.errors import UsageError

        raise UsageError(
            "--model-dir serves one exported folder; leave out the extra --config, --model "
            "and --all-models options, or leave out --model-dir to serve from registries"
        )
    if grpc_port is not None:
        cfg.serving.grpc_port = grpc_port  # the range is checked by the option (1–65535)
    from mooring.tracing import start_tracing

    # Before anything heavy: a missing mooring[otel] extra is a configuration error.
    tracing = start_tracing(cfg.observability)
    # Start-up (TensorFlow's import, the model's load) makes half a million long-lived
    # objects and no garbage worth a collection; the collector is off until ready.
    gc.disable()
    hosted: list[Any] = []  # the in-process monitors (--monitor)
    try:
        _import_tensorflow_in_background()
        import uvicorn

        from mooring.contract.schema import Schema
        from mooring.serving import DirectorySource, build_app, create_app, server_config

        if model_dir is not None:
            contract = Schema.load(schema) if schema is not None else None
            source = DirectorySource(model_dir, cfg.project.name, schema=contract)
            application = build_app(
                [source], cfg.serving, on_ready=gc.enable, tracing=tracing, grpc_host=host
            )
        else:
            served = create_app(
                cfg,
                models=models,
                all_models=all_models,
                projects=others,
                on_ready=gc.enable,
                tracing=tracing,
                grpc_host=host,
            )
            application = with_dashboard(served, cfg)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        if os.environ.get("MOORING_TF_LOGS") != "1":
            # TensorFlow's Python-side notes on loading a model (renamed arguments, ...).
            logging.getLogger("absl").setLevel(logging.ERROR)
        logging.getLogger("mooring.serving.access").setLevel(
            logging.INFO if access_log else logging.WARNING
        )
        if monitor:
            from mooring.cli._common import seconds_option
            from mooring.dashboard import render_drift_html
            from mooring.errors import UsageError
            from mooring.monitoring import Monitor

            state = application.state.mooring
            if state.registry is None:
                raise UsageError("--monitor needs the registry; leave out --model-dir")
            interval = seconds_option(monitor_interval, "--monitor-interval")
            # One monitor per project, each in its own registry; they read this server's
            # metrics in process (no URL to configure).
            registries = [state.registry]
            registries += [state.managers[o.project.name].source.registry for o in others]
            for project, registry, path in zip([cfg, *others], registries, paths, strict=True):
                hosted.append(
                    Monitor(
                        project,
                        registry,
                        metrics=state.metrics.render,
                        config_path=path.resolve(),
                        render_drift=render_drift_html,
                    ).start(interval)
                )
        uvicorn.Server(server_config(application, host=host, port=port)).run()
    finally:
        gc.enable()
        for monitor_thread in hosted:
            monitor_thread.stop()


def _import_tensorflow_in_background() -> None:
    """Start importing TensorFlow while the server, registry and contract code import.

    Once imported (and before a model can load), every object made so far is frozen
    (``gc.freeze()``): TensorFlow's import leaves about half a million long-lived
    objects, and left in the oldest generation every full collection walks them all,
    about 200 ms with the whole process stopped, every few seconds under load
    (measured on the Adult model, 2 CPUs), which is where the slowest requests came
    from. Frozen, they are never scanned again. Models load after the freeze and are
    not frozen, so an unloaded version's memory is reclaimed. Freezing each loaded
    version as well was measured and left out: under ``bench_overload.py`` at 4× capacity
    the automatic full collections took 3–9 ms with or without it, and neither the
    slowest 503 nor the peak RSS moved. Where TensorFlow is already imported (a test
    process), nothing is frozen.
    """
    import threading

    from mooring._tensorflow import import_tensorflow

    threading.Thread(
        target=import_tensorflow,
        kwargs={"on_import": gc.freeze},
        name="mooring-import-tf",
        daemon=True,
    ).start()


def with_dashboard(application: Starlette, cfg: MooringConfig) -> Starlette:
    """Mount the dashboard under ``/ui`` of a registry-mode server (``create_app``).

    The dashboard reads this server's metrics in process and applies the deployment
    changes it makes at once, instead of at the server's next poll of the registry.

    Example:
        >>> app = with_dashboard(create_app(cfg), cfg)  # doctest: +SKIP
    """
    from starlette.routing import Mount

    from mooring.dashboard import create_ui

    state = application.state.mooring
    ui = create_ui(
        cfg,
        registry=state.registry,
        admin_token=state.admin_token,
        metrics=state.metrics.render,
        on_deployment=state.apply_deployment,
    )
    application.router.routes.append(Mount("/ui", app=ui))
    return application
