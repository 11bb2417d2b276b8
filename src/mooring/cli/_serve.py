"""``mooring serve``: the project's model over TF Serving's REST API and the v2 protocol."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mooring._tensorflow import hide_python_logs
from mooring.cli._app import app
from mooring.config import MooringConfig, load_config
from mooring.errors import MooringError, UsageError

# Kept equal to mooring.serving._workers' names (a test checks), so reading them here does
# not import the serving layer before TensorFlow's import has started.
WORKER_ENV = "MOORING_SERVE_WORKER"
CONCURRENCY_ENV = "WEB_CONCURRENCY"

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mooring._tracing import Tracing
    from mooring.serving._workers import WorkerRun


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
            "to serve several projects' models from one process (the first's \\[serving] "
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
            "port (default: \\[serving] grpc_port; off when unset).",
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir",
            help="Serve this model instead of the registry: a SavedModel folder, a mooring "
            "model folder, a .keras file or a YDF model folder (the last two converted once, "
            "into a cache folder). Needs no mooring.toml: without one, every setting is its "
            "default.",
        ),
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model-name",
            help="With --model-dir: the name it answers as (default: the project's name, "
            "else the folder's or file's name).",
        ),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", help="With --model-dir: the schema YAML checked at the door (contract)."
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="One JSON line per request on stderr (default: \\[serving] access_log, off).",
        ),
    ] = None,
    monitor: Annotated[
        bool,
        typer.Option("--monitor", help="Also run the monitor (see mooring monitor) in-process."),
    ] = False,
    monitor_interval: Annotated[
        str, typer.Option("--monitor-interval", help="Time between monitor ticks, e.g. 10s.")
    ] = "10s",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=256,
            help="Server processes sharing the port, each with its own batcher and loaded "
            "versions (default: $WEB_CONCURRENCY, else \\[serving] workers, else the usable "
            "cores capped by memory).",
        ),
    ] = None,
) -> None:
    """Serve the registry's production (and canary) version, following deployments; or,
    with --model-dir, one model (no mooring.toml needed)."""
    paths = configs or [Path("mooring.toml")]
    # --model-dir needs no project file: without one, every setting is its default.
    configured = bool(configs) or model_dir is None or paths[0].is_file()
    cfg = _served_config(paths[0], configured, model_dir, model_name)
    others = [load_config(path) for path in paths[1:]]
    _check_model_dir_options(model_dir, model_name, others, models, all_models)
    model_dir = served_folder(model_dir) if model_dir is not None else None
    if grpc_port is not None:
        cfg.serving.grpc_port = grpc_port  # the range is checked by the option (1–65535)
    if access_log is None:
        access_log = cfg.serving.access_log
    # Read from the environment without importing the serving layer, whose import
    # (SQLAlchemy, pyarrow, Starlette) overlaps TensorFlow's below.
    is_worker = bool(os.environ.get(WORKER_ENV))
    if not is_worker:
        count = resolve_workers(workers, cfg)
        if count > 1:
            argv = _worker_argv(
                paths if configured else [], cfg, models=models, all_models=all_models,
                host=host, port=port, model_dir=model_dir, schema=schema, access_log=access_log,
            )  # fmt: skip
            supervise(
                argv, count, cfg, host=host, port=port, monitor=monitor,
                monitor_interval=monitor_interval, paths=paths, others=others,
                model_dir=model_dir, models=models or [], all_models=all_models,
            )  # fmt: skip
            return
        # One process: TensorFlow's pools sized as a worker's would be (its CPU quota,
        # one inter-op thread per batch running at once), before its runtime starts.
        from mooring.serving._workers import tf_thread_env

        os.environ.update(tf_thread_env(1, cfg.serving.inference_threads))
    from mooring._tracing import start_tracing

    # Before anything heavy: a missing mooring[otel] extra is a configuration error.
    tracing = start_tracing(cfg.observability)
    # Start-up (TensorFlow's import, the model's load) makes half a million long-lived
    # objects and no garbage worth a collection; the collector is off until ready.
    gc.disable()
    hosted: list[Any] = []  # the in-process monitors (--monitor)
    importer = None
    try:
        importer = _import_tensorflow_in_background()
        from mooring.serving._workers import WorkerRun

        run = WorkerRun.from_env() if is_worker else None
        built: list[Starlette] = []
        if run is not None:
            run.bind_to_supervisor()
            if model_dir is not None:
                # Once its model has settled: a worker that cannot serve it stops (exit 2).
                folder = model_dir
                run = replace(run, check_ready=lambda: require_served(built[0], folder))
        application = _application(
            cfg, others, models=models, all_models=all_models, model_dir=model_dir,
            schema=schema, tracing=tracing, host=host, run=run,
        )  # fmt: skip
        built.append(application)
        _configure_logs(access_log=access_log)
        if monitor and run is None:
            _start_monitors(application, cfg, others, paths, monitor_interval, hosted)
        _run_server(application, cfg, paths, others, host=host, port=port,
                    model_dir=model_dir, worker=run is not None)  # fmt: skip
    except BaseException:
        # TensorFlow's import hides file descriptor 2 while it runs (quiet_native_logs): an
        # error found meanwhile (a missing --schema, say) would be printed into that window
        # and lost. Let the import end, so the error reaches the terminal.
        if importer is not None:
            importer.join(timeout=120)
        raise
    finally:
        gc.enable()
        for monitor_thread in hosted:
            monitor_thread.stop()


def _run_server(
    application: Starlette,
    cfg: MooringConfig,
    paths: list[Path],
    others: list[MooringConfig],
    *,
    host: str,
    port: int,
    model_dir: Path | None,
    worker: bool,
) -> None:
    """Serve until stopped: one process on the port, or a worker of several on its shared
    socket. A ``--model-dir`` whose model settles unserved stops the server with its error."""
    from mooring.serving import Server

    if worker:
        # A worker of several: the port is shared (SO_REUSEPORT), listened on once ready.
        from mooring.serving._workers import reuseport_socket

        Server(application, host=host, port=port).run(sockets=[reuseport_socket(host, port)])
        return
    server = Server(application, host=host, port=port)
    refused: list[MooringError] = []

    def stop(error: MooringError) -> None:
        refused.append(error)
        server.should_exit = True

    server.on_listening = lambda: _announce(
        application, cfg, paths, others, host, port, model_dir, stop=stop
    )
    server.run()
    if refused:
        raise refused[0]


def _served_config(
    path: Path, configured: bool, model_dir: Path | None, model_name: str | None
) -> MooringConfig:
    """The first project's configuration (``--model-name`` renames a ``--model-dir``'s
    model), or without a project file the defaults of :func:`folder_config`."""
    if not configured:
        return folder_config(model_dir, model_name)
    cfg = load_config(path)
    if model_dir is not None and model_name is not None:
        cfg.project.name = served_name(model_name)
    return cfg


def folder_config(model_dir: Path | None, model_name: str | None) -> MooringConfig:
    """The configuration of ``mooring serve --model-dir`` without a ``mooring.toml``: every
    setting its default, the model named ``model_name``, else after the folder (or the
    ``.keras`` file), as ``tensorflow_model_server --model_base_path`` does.

    Examples:
        >>> folder_config(Path("exports/churn.keras"), None).project.name
        'churn'
    """
    where = Path(model_dir or ".").expanduser().resolve()
    folder_name = where.stem if where.suffix == ".keras" else where.name
    name = served_name(model_name) if model_name else served_name(folder_name, loose=True)
    # No [data]: a folder is served, nothing is trained; the section's one required key
    # names no file.
    return MooringConfig.from_mapping(
        {"project": {"name": name}, "data": {"train": ""}},
        root=Path.cwd(),
        source="the defaults of mooring serve --model-dir",
    )


def served_name(name: str, *, loose: bool = False) -> str:
    """``name`` as a model name (``[project] name``'s rules: it appears in URLs and
    registry keys); ``loose``: a folder's name made one (characters it cannot hold become
    ``-``; ``model`` when nothing is left).

    >>> served_name("my model (v2)", loose=True)
    'my-model-v2'

    Raises:
        UsageError: not ``loose`` and not a valid name.
    """
    from mooring.config._base import NAME_PATTERN

    if loose:
        name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.-]+", "-", name)).strip("-_.")[:128]
        name = name or "model"
    if not NAME_PATTERN.match(name) or ".." in name:
        raise UsageError(
            f"--model-name {name!r} is not allowed: use 1-128 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit, without '..' (it becomes part of URLs); "
            "e.g. 'income' or 'churn-v2'"
        )
    return name


def _check_model_dir_options(
    model_dir: Path | None,
    model_name: str | None,
    others: list[MooringConfig],
    models: list[str] | None,
    all_models: bool,
) -> None:
    if model_dir is not None and (others or models or all_models):
        raise UsageError(
            "--model-dir serves one exported folder; leave out the extra --config, --model "
            "and --all-models options, or leave out --model-dir to serve from registries"
        )
    if model_name is not None and model_dir is None:
        raise UsageError(
            "--model-name names the model of --model-dir; pass --model-dir PATH, or leave "
            "out --model-name (a registry's models answer to their own names)"
        )


def served_folder(model_dir: Path) -> Path:
    """The SavedModel folder to serve for ``--model-dir``: a folder as given; a ``.keras``
    file or a YDF model folder converted once, into the cache, by ``python -m
    mooring.training._import`` (a process of its own: the server imports no Keras, and
    the supervisor of ``--workers N`` starts no TensorFlow runtime before it forks).

    Raises:
        NotFoundError, ModelLoadError: nothing there, or not a model mooring can serve.
    """
    import json
    import subprocess
    import sys

    from mooring import errors
    from mooring.formats._model_source import source_format

    if source_format(model_dir) == "saved_model":
        from mooring.formats._vetting import check_folder

        check_folder(model_dir, what=f"--model-dir '{model_dir}'")  # as an import does
        return model_dir
    done = subprocess.run(
        [sys.executable, "-m", "mooring.training._import", str(model_dir)],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ},
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else {}
    except ValueError:
        said = {}
    if done.returncode == 0 and "folder" in said:
        return Path(said["folder"])
    kind = getattr(errors, str(said.get("error")), None)
    if not (isinstance(kind, type) and issubclass(kind, MooringError)):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MooringError(
            f"--model-dir '{model_dir}' could not be converted to a SavedModel: {last}"
        )
    raise kind(str(said.get("message")))


def require_served(application: Starlette, model_dir: Path) -> None:
    """Raise when the model of ``--model-dir`` has settled without being served.

    A folder's deployment never changes, so nothing would ever load it: the server
    stops (exit 2) with the reason instead of staying up not ready.

    Raises:
        ModelLoadError: the model did not load (not a SavedModel, a signature the server
            cannot serve), with its load error.
    """
    from mooring.errors import ModelLoadError

    for manager in application.state.mooring.managers.values():
        if manager.ready or not manager.settled:
            continue
        why = manager.why_not_ready() or {}
        reason = "; ".join(manager.failures.values()) or str(why.get("reason", "not loaded"))
        raise ModelLoadError(f"--model-dir '{model_dir}' cannot be served: {reason}")


def _worker_argv(
    paths: list[Path],
    cfg: MooringConfig,
    *,
    models: list[str] | None,
    all_models: bool,
    host: str,
    port: int,
    model_dir: Path | None,
    schema: Path | None,
    access_log: bool,
) -> list[str]:
    """The ``mooring serve`` command line of one worker of ``--workers N``."""
    argv = ["serve", *(f"--config={p.resolve()}" for p in paths)]
    if model_dir is not None:
        argv.append(f"--model-name={cfg.project.name}")
    argv += [f"--model={m}" for m in models or ()]
    argv += ["--all-models"] if all_models else []
    argv += [f"--host={host}", f"--port={port}", "--workers=1"]
    if cfg.serving.grpc_port is not None:
        argv.append(f"--grpc-port={cfg.serving.grpc_port}")
    if model_dir is not None:
        argv.append(f"--model-dir={model_dir.resolve()}")
    if schema is not None:
        argv.append(f"--schema={schema.resolve()}")
    argv.append("--access-log" if access_log else "--no-access-log")
    return argv


def _application(
    cfg: MooringConfig,
    others: list[MooringConfig],
    *,
    models: list[str] | None,
    all_models: bool,
    model_dir: Path | None,
    schema: Path | None,
    tracing: Tracing | None,
    host: str,
    run: WorkerRun | None,
) -> Starlette:
    """The server: one exported folder (``--model-dir``), else the registries' models with
    the dashboard."""
    from mooring.contract._schema import Schema
    from mooring.serving import DirectorySource, build_app, create_app

    if model_dir is not None:
        contract = Schema.load(schema) if schema is not None else None
        source = DirectorySource(model_dir, cfg.project.name, schema=contract)
        return build_app(
            [source],
            cfg.serving,
            on_ready=collect_for_serving,
            tracing=tracing,
            grpc_host=host,
            worker=run,
        )
    served = create_app(
        cfg,
        models=models,
        all_models=all_models,
        projects=others,
        on_ready=collect_for_serving,
        tracing=tracing,
        grpc_host=host,
        worker=run,
    )
    return with_dashboard(served, cfg)


def _base_logs() -> None:
    """INFO lines as bare messages; Alembic's notes on creating a new registry hidden."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # A first `mooring serve` creates the registry: its migrations would print a dozen
    # "setup plugin alembic..." and "Running upgrade" lines meant for Alembic's own CLI.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _configure_logs(*, access_log: bool) -> None:
    """The server's log levels: INFO lines, TensorFlow's notes hidden, the access log."""
    _base_logs()
    hide_python_logs()  # TensorFlow's notes on loading a model (renamed arguments, ...)
    logging.getLogger("mooring.serving.access").setLevel(
        logging.INFO if access_log else logging.WARNING
    )


def _start_monitors(
    application: Starlette,
    cfg: MooringConfig,
    others: list[MooringConfig],
    paths: list[Path],
    monitor_interval: str,
    hosted: list[Any],
) -> None:
    """``--monitor``: start one monitor per project, each appended to ``hosted`` as it starts
    (so the caller stops those started even when a later one fails)."""
    from mooring.cli._common import seconds_option
    from mooring.dashboard._drift_report import render_drift_html
    from mooring.errors import UsageError
    from mooring.monitoring._monitor import Monitor

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


async def _announce(
    application: Starlette,
    cfg: MooringConfig,
    paths: list[Path],
    others: list[MooringConfig],
    host: str,
    port: int,
    model_dir: Path | None,
    *,
    stop: Callable[[MooringError], None],
) -> None:
    """The banner of a one-process server, once every model has settled; with
    ``--model-dir``, a model that cannot be served is handed to ``stop`` instead."""
    from mooring._tensorflow import import_tensorflow
    from mooring.cli._serve_banner import Where, announce, banner_lines, from_state
    from mooring.serving._app import READY_WAIT_S
    from mooring.serving._follow import settled

    state = application.state.mooring
    await settled(state, READY_WAIT_S)
    if model_dir is not None:
        try:
            require_served(application, model_dir)
        except MooringError as error:
            stop(error)
            return
    # TensorFlow's import (in a thread) hides stderr while it runs: the banner waits for it.
    await asyncio.to_thread(import_tensorflow)
    where = Where(host, port, cfg.serving.grpc_port, dashboard=model_dir is None)
    configs = {c.project.name: p for c, p in zip([cfg, *others], paths, strict=True)}
    announce(banner_lines(where, await from_state(state, configs, paths[0])))


def _announce_workers(
    cfg: MooringConfig,
    paths: list[Path],
    others: list[MooringConfig],
    host: str,
    port: int,
    count: int,
    model_dir: Path | None,
    models: list[str],
    all_models: bool,
) -> None:
    """The banner of ``--workers N``, in the supervisor once every worker listens."""
    from mooring.cli._serve_banner import Where, announce, banner_lines, from_health

    where = Where(host, port, cfg.serving.grpc_port, dashboard=model_dir is None, workers=count)
    projects = list(zip([cfg, *others], paths, strict=True))
    try:
        served = from_health(
            where, projects, models=models, all_models=all_models, model_dir=model_dir
        )
    except Exception as exc:  # a registry outage: the workers' own lines say more
        logging.getLogger("mooring.serve").debug("banner: models not read: %s", exc)
        served = []
    announce(banner_lines(where, served))


def resolve_workers(option: int | None, cfg: MooringConfig) -> int:
    """How many server processes: ``--workers``, else ``$WEB_CONCURRENCY``, else
    ``[serving] workers``, else (``auto``) the usable cores capped by memory.

    Examples:
        >>> resolve_workers(3, cfg)  # doctest: +SKIP
        3
    """
    from mooring.errors import UsageError

    if option is not None:
        return option
    env = os.environ.get(CONCURRENCY_ENV, "").strip()
    if env:
        if not env.isdigit() or not 1 <= int(env) <= 256:
            raise UsageError(
                f"{CONCURRENCY_ENV}={env!r}: expected a number of processes from 1 to 256; "
                f"fix or unset the variable, or pass --workers"
            )
        return int(env)
    setting = cfg.serving.workers
    if setting != "auto":
        return setting
    from mooring.serving._workers import default_workers  # the serving layer: only for auto

    return default_workers()


def supervise(
    argv: list[str],
    count: int,
    cfg: MooringConfig,
    *,
    host: str,
    port: int,
    monitor: bool,
    monitor_interval: str,
    paths: list[Path],
    others: list[MooringConfig],
    model_dir: Path | None,
    models: list[str] | None = None,
    all_models: bool = False,
) -> None:
    """``mooring serve --workers N``: start N worker processes on the port and keep them up.

    The in-process monitor (``--monitor``) runs here, once, on every worker's metrics.
    """
    from mooring.errors import MooringError, UsageError
    from mooring.serving._workers import Supervisor

    _base_logs()
    ports = [(port, "--port")]
    if cfg.serving.grpc_port is not None:
        ports.append((cfg.serving.grpc_port, "[serving] grpc_port"))
    from mooring.cli import main

    if monitor and model_dir is not None:
        raise UsageError("--monitor needs the registry; leave out --model-dir")
    supervisor = Supervisor(
        argv,
        workers=count,
        host=host,
        ports=ports,
        grace_s=cfg.serving.deadline_ms / 1000.0 + 10.0,
        fork=main,
        inference_threads=cfg.serving.inference_threads,
        on_ready=lambda: _announce_workers(
            cfg, paths, others, host, port, count, model_dir, models or [], all_models
        ),
    )
    hosted: list[Any] = []

    def start_monitors() -> None:
        # After the first workers are forked: a monitor is a thread, and with a thread
        # running, a worker is started as a new process instead (see Supervisor).
        if not monitor:
            return
        from mooring.cli._common import seconds_option
        from mooring.dashboard._drift_report import render_drift_html
        from mooring.monitoring._monitor import Monitor
        from mooring.registry import Registry

        interval = seconds_option(monitor_interval, "--monitor-interval")
        for project, path in zip([cfg, *others], paths, strict=True):
            hosted.append(
                Monitor(
                    project,
                    Registry.from_config(project),
                    metrics=supervisor.render_metrics,
                    config_path=path.resolve(),
                    render_drift=render_drift_html,
                ).start(interval)
            )

    try:
        code = supervisor.run_forever(preload=preload_for_workers, started=start_monitors)
    finally:
        for monitor_thread in hosted:
            monitor_thread.stop()
    if code:
        raise MooringError("a worker could not start (its error is above); fix it and start again")


def preload_for_workers() -> None:
    """Import what every worker of ``mooring serve --workers N`` imports, in the supervisor,
    before it forks them (see :mod:`mooring.serving._workers`).

    TensorFlow, then the server's own libraries, then every object made so far is frozen
    (``gc.freeze``): the workers share those pages with the supervisor instead of each
    writing its copy. TensorFlow's runtime does not start (no op runs), so nothing of it
    is running when the workers fork. The imports run one after the other, in this
    thread: overlapping them saved about 0.3 s once per server start, and an error
    raised by one while TensorFlow's import hid file descriptor 2 was lost (the server
    exited 70 without a word).
    """
    gc.disable()
    try:
        from mooring._tensorflow import import_tensorflow

        import_tensorflow()
        import mooring.serving as serving
        from mooring.contract._schema import Schema  # noqa: F401

        for name in ("DirectorySource", "Server", "build_app", "create_app"):
            getattr(serving, name)  # the package hands its names out on first use
        gc.freeze()
    finally:
        gc.enable()


#: The collector's thresholds while serving (Python's are 700, 10, 10).
GC_THRESHOLDS = (20_000, 10, 10)


def collect_for_serving() -> None:
    """Turn the garbage collector back on after start-up, its young generation collected
    at 20,000 objects (:data:`GC_THRESHOLDS`) instead of 700.

    Under load the objects of the requests in flight (a few dozen each) are most of
    what the collector sees: at 700 they cross the threshold hundreds of times a second,
    and the full collections among them pause every request. A request's garbage is
    freed by reference counting either way; what waits longer is garbage in reference
    cycles, and it still triggers a collection once 20,000 such objects have built up.
    """
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()


def _import_tensorflow_in_background() -> threading.Thread:
    """Start importing TensorFlow while the server, registry and contract code import.

    Once imported (and before a model can load), every object made so far is frozen
    (``gc.freeze()``): TensorFlow's import leaves about half a million long-lived
    objects, and left in the oldest generation every full collection walks them all
    with the whole process stopped, every few seconds under load: the slowest requests.
    Frozen, they are never scanned again. Models load after the freeze and are not
    frozen, so an unloaded version's memory is reclaimed (freezing them too changed
    nothing measurable). Where TensorFlow is already imported (a test process), nothing
    is frozen.
    """
    from mooring._tensorflow import import_tensorflow

    thread = threading.Thread(
        target=import_tensorflow,
        kwargs={"on_import": gc.freeze},
        name="mooring-import-tf",
        daemon=True,
    )
    thread.start()
    return thread


def with_dashboard(application: Starlette, cfg: MooringConfig) -> Starlette:
    """Mount the dashboard under ``/ui`` of a registry-mode server (``create_app``).

    The dashboard reads this server's metrics in process and applies the deployment
    changes it makes at once, instead of at the server's next poll of the registry.

    Examples:
        >>> app = with_dashboard(create_app(cfg), cfg)  # doctest: +SKIP
    """
    from starlette.routing import Mount

    state = application.state.mooring

    def build() -> Any:
        from mooring.dashboard._app import create_ui

        return create_ui(
            cfg,
            registry=state.registry,
            admin_token=state.admin_token,
            metrics=state.metrics.render,
            on_deployment=state.apply_deployment,
        )

    application.router.routes.append(Mount("/ui", app=_OnFirstRequest(build)))
    return application


class _OnFirstRequest:
    """An ASGI app built on its first request: the dashboard's imports (Jinja2, its
    views; about 0.2 s) stay off the server's start-up, which waits for none of them."""

    def __init__(self, build: Any) -> None:
        self._build = build
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)
