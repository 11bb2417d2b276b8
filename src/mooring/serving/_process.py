"""A serving process: what ``mooring serve`` runs once its options are read.

:func:`serve` is the one entry point. With one process it builds the server (one
exported folder, or the registries' models with the dashboard under ``/ui``), sets the
logs, starts the in-process monitors and serves until stopped, printing the banner once
every model has settled. With ``--workers N`` (or ``$WEB_CONCURRENCY``, or ``[serving]
workers``) it becomes the supervisor of :mod:`mooring.serving._workers`: it imports
what the workers need (:func:`preload_for_workers`), forks N copies of the command line
into ``entry`` and keeps them up; each worker runs :func:`serve` again, as one process.

Serving imports neither the dashboard nor the monitor (see ARCHITECTURE.md): the caller
hands them in, as ``dashboard`` (the app mounted under ``/ui``) and ``monitor`` (a
started monitor of one project); ``mooring.cli._serve`` passes the dashboard's and the
monitoring package's.

Examples:
    >>> cfg = load_config("mooring.toml")  # doctest: +SKIP
    >>> options = ServeOptions(cfg, (Path("mooring.toml"),), port=8501)  # doctest: +SKIP
    >>> serve(options, entry=main, dashboard=dashboard, monitor=start_monitor)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mooring._tensorflow import hide_python_logs
from mooring.config import MooringConfig
from mooring.errors import MooringError, UsageError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mooring._tracing import Tracing
    from mooring.registry import Registry
    from mooring.serving._state import ServerState
    from mooring.serving._workers import WorkerRun

__all__ = [
    "GC_THRESHOLDS",
    "Dashboard",
    "ServeOptions",
    "StartMonitor",
    "Stoppable",
    "collect_for_serving",
    "preload_for_workers",
    "require_served",
    "resolve_workers",
    "serve",
    "supervise",
    "with_dashboard",
]


@dataclass(frozen=True)
class ServeOptions:
    """What to serve, and how: ``mooring serve``'s options, read and checked.

    ``config`` is the first project's configuration (its ``[serving]`` runs the server),
    ``paths`` the projects' files (the first one need not exist when ``configured`` is
    False: ``--model-dir`` without a ``mooring.toml``), ``others`` the other projects'
    configurations; ``monitor_every_s`` is the in-process monitor's interval (None: no
    monitor); ``workers`` the ``--workers`` option (None: the default, see
    :func:`resolve_workers`).
    """

    config: MooringConfig
    paths: tuple[Path, ...]
    configured: bool = True
    others: tuple[MooringConfig, ...] = ()
    models: tuple[str, ...] = ()
    all_models: bool = False
    host: str = "127.0.0.1"
    port: int = 8501
    model_dir: Path | None = None
    schema: Path | None = None
    access_log: bool = False
    workers: int | None = None
    monitor_every_s: float | None = None

    @property
    def projects(self) -> list[MooringConfig]:
        return [self.config, *self.others]


class Stoppable(Protocol):
    """A started monitor: stopped when the server stops."""

    def stop(self) -> None: ...


class StartMonitor(Protocol):
    """Start the monitor of ``project`` on ``registry``, reading the server's metrics
    in process (``metrics``) every ``every_s`` seconds."""

    def __call__(
        self,
        project: MooringConfig,
        registry: Registry,
        *,
        metrics: Callable[[], bytes],
        config_path: Path,
        every_s: float,
    ) -> Stoppable: ...


#: The dashboard of a registry-mode server: its ASGI app for the first project's
#: configuration and the server's state (registry, admin token, metrics, deployments).
Dashboard = Callable[[MooringConfig, "ServerState"], Any]


def serve(
    options: ServeOptions,
    *,
    entry: Callable[[list[str]], int],
    dashboard: Dashboard,
    monitor: StartMonitor,
) -> None:
    """Serve until stopped: one process, or a supervisor of workers forked into ``entry``
    (the command line's ``main``, given a worker's ``mooring serve`` arguments).

    Raises:
        MooringError: the server cannot start (a taken port, a model ``--model-dir``
            cannot serve, a worker that cannot start), with the reason to print.
    """
    from mooring.serving._workers import WORKER_ENV

    is_worker = bool(os.environ.get(WORKER_ENV))
    if not is_worker:
        count = resolve_workers(options.workers, options.config)
        if count > 1:
            supervise(options, count, entry=entry, monitor=monitor)
            return
        # One process: TensorFlow's pools sized as a worker's would be (its CPU quota,
        # one inter-op thread per batch running at once), before its runtime starts.
        from mooring.serving._workers import tf_thread_env

        os.environ.update(tf_thread_env(1, options.config.serving.inference_threads))
    _serve_one(options, worker=is_worker, dashboard=dashboard, monitor=monitor)


def _serve_one(
    options: ServeOptions, *, worker: bool, dashboard: Dashboard, monitor: StartMonitor
) -> None:
    """One server process, alone on the port or a worker of several."""
    from mooring._tracing import start_tracing
    from mooring.serving._box import enter_box
    from mooring.serving._workers import WorkerRun

    # First, while this is the process's only thread: the box holds for the threads
    # started after it (the import's, the tracer's, the server's).
    enter_box(options, WorkerRun.from_env() if worker else None)

    # Before anything heavy: a missing mooring-ml[otel] extra is a configuration error.
    tracing = start_tracing(options.config.observability)
    # Start-up (TensorFlow's import, the model's load) makes half a million long-lived
    # objects and no garbage worth a collection; the collector is off until ready.
    gc.disable()
    hosted: list[Stoppable] = []  # the in-process monitors
    importer = None
    try:
        importer = _import_tensorflow_in_background()
        run = WorkerRun.from_env() if worker else None
        built: list[Starlette] = []
        if run is not None:
            run.bind_to_supervisor()
            if options.model_dir is not None:
                # Once its model has settled: a worker that cannot serve it stops (exit 2).
                folder = options.model_dir
                run = replace(run, check_ready=lambda: require_served(built[0], folder))
        application = _application(options, tracing=tracing, run=run, dashboard=dashboard)
        built.append(application)
        _configure_logs(access_log=options.access_log)
        if options.monitor_every_s is not None and run is None:
            _start_monitors(application, options, monitor, options.monitor_every_s, hosted)
        _run_server(application, options, worker=run is not None)
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


def _run_server(application: Starlette, options: ServeOptions, *, worker: bool) -> None:
    """Serve until stopped: one process on the port, or a worker of several on its shared
    socket. A ``--model-dir`` whose model settles unserved stops the server with its error."""
    from mooring.serving._server import Server

    host, port = options.host, options.port
    if worker:
        # A worker of several: the port is shared (SO_REUSEPORT), listened on once ready.
        from mooring.serving._workers import reuseport_socket

        server = Server(application, host=host, port=port, memory_ceiling=True)
        server.run(sockets=[reuseport_socket(host, port)])
        return
    server = Server(application, host=host, port=port, memory_ceiling=True)
    refused: list[MooringError] = []

    def stop(error: MooringError) -> None:
        refused.append(error)
        server.should_exit = True

    server.on_listening = lambda: _announce(application, options, stop=stop)
    server.run()
    if refused:
        raise refused[0]


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


def _worker_argv(options: ServeOptions) -> list[str]:
    """The ``mooring serve`` command line of one worker of ``--workers N``."""
    cfg, model_dir = options.config, options.model_dir
    paths = options.paths if options.configured else ()
    argv = ["serve", *(f"--config={p.resolve()}" for p in paths)]
    if model_dir is not None:
        argv.append(f"--model-name={cfg.project.name}")
    argv += [f"--model={m}" for m in options.models]
    argv += ["--all-models"] if options.all_models else []
    argv += [f"--host={options.host}", f"--port={options.port}", "--workers=1"]
    if cfg.serving.grpc_port is not None:
        argv.append(f"--grpc-port={cfg.serving.grpc_port}")
    if model_dir is not None:
        argv.append(f"--model-dir={model_dir.resolve()}")
    if options.schema is not None:
        argv.append(f"--schema={options.schema.resolve()}")
    argv.append("--access-log" if options.access_log else "--no-access-log")
    return argv


def _application(
    options: ServeOptions,
    *,
    tracing: Tracing | None,
    run: WorkerRun | None,
    dashboard: Dashboard,
) -> Starlette:
    """The server: one exported folder (``--model-dir``), else the registries' models with
    the dashboard."""
    from mooring.contract._schema import Schema
    from mooring.serving._app import build_app, create_app
    from mooring.serving._sources import DirectorySource

    cfg = options.config
    if options.model_dir is not None:
        contract = Schema.load(options.schema) if options.schema is not None else None
        source = DirectorySource(options.model_dir, cfg.project.name, schema=contract)
        return build_app(
            [source],
            cfg.serving,
            on_ready=collect_for_serving,
            tracing=tracing,
            grpc_host=options.host,
            worker=run,
        )
    served = create_app(
        cfg,
        models=list(options.models) or None,
        all_models=options.all_models,
        projects=list(options.others),
        on_ready=collect_for_serving,
        tracing=tracing,
        grpc_host=options.host,
        worker=run,
    )
    return with_dashboard(served, cfg, dashboard)


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
    options: ServeOptions,
    monitor: StartMonitor,
    every_s: float,
    hosted: list[Stoppable],
) -> None:
    """Start one monitor per project, each appended to ``hosted`` as it starts (so the
    caller stops those started even when a later one fails)."""
    state = application.state.mooring
    if state.registry is None:
        raise UsageError("--monitor needs the registry; leave out --model-dir")
    # One monitor per project, each in its own registry; they read this server's
    # metrics in process (no URL to configure).
    registries = [state.registry]
    registries += [state.managers[o.project.name].source.registry for o in options.others]
    for project, registry, path in zip(options.projects, registries, options.paths, strict=True):
        hosted.append(
            monitor(
                project,
                registry,
                metrics=state.metrics.render,
                config_path=path.resolve(),
                every_s=every_s,
            )
        )


async def _announce(
    application: Starlette, options: ServeOptions, *, stop: Callable[[MooringError], None]
) -> None:
    """The banner of a one-process server, once every model has settled; with
    ``--model-dir``, a model that cannot be served is handed to ``stop`` instead."""
    from mooring._tensorflow import import_tensorflow
    from mooring.serving._app import READY_WAIT_S
    from mooring.serving._banner import Where, announce, banner_lines, from_state
    from mooring.serving._follow import settled

    state = application.state.mooring
    await settled(state, READY_WAIT_S)
    model_dir = options.model_dir
    if model_dir is not None:
        try:
            require_served(application, model_dir)
        except MooringError as error:
            stop(error)
            return
    # TensorFlow's import (in a thread) hides stderr while it runs: the banner waits for it.
    await asyncio.to_thread(import_tensorflow)
    grpc_port = options.config.serving.grpc_port
    from mooring._sandbox import current, describe

    box = current()
    where = Where(
        options.host,
        options.port,
        grpc_port,
        dashboard=model_dir is None,
        box=describe(box) if box is not None else None,
    )
    configs = {c.project.name: p for c, p in zip(options.projects, options.paths, strict=True)}
    announce(banner_lines(where, await from_state(state, configs, options.paths[0])))


def _announce_workers(options: ServeOptions, count: int, box: str | None = None) -> None:
    """The banner of ``--workers N``, in the supervisor once every worker listens;
    ``box``: the workers' box line (the supervisor runs no model and is not boxed)."""
    from mooring.serving._banner import Where, announce, banner_lines, from_health

    where = Where(
        options.host,
        options.port,
        options.config.serving.grpc_port,
        dashboard=options.model_dir is None,
        workers=count,
        box=box,
    )
    projects = list(zip(options.projects, options.paths, strict=True))
    try:
        served = from_health(
            where,
            projects,
            models=options.models,
            all_models=options.all_models,
            model_dir=options.model_dir,
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

    Raises:
        UsageError: ``$WEB_CONCURRENCY`` is not a number of processes from 1 to 256.
    """
    from mooring.serving._workers import CONCURRENCY_ENV

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
    from mooring.serving._workers import default_workers

    return default_workers()


def supervise(
    options: ServeOptions,
    count: int,
    *,
    entry: Callable[[list[str]], int],
    monitor: StartMonitor,
) -> None:
    """``mooring serve --workers N``: start ``count`` worker processes on the port, each
    forked into ``entry`` with its command line, and keep them up.

    The in-process monitor (``options.monitor_every_s``) runs here, once, on every
    worker's metrics.

    Raises:
        MooringError: a worker could not start (its own error is printed above).
    """
    from mooring.serving._workers import Supervisor

    _base_logs()
    cfg = options.config
    ports = [(options.port, "--port")]
    if cfg.serving.grpc_port is not None:
        ports.append((cfg.serving.grpc_port, "[serving] grpc_port"))
    every_s = options.monitor_every_s
    if every_s is not None and options.model_dir is not None:
        raise UsageError("--monitor needs the registry; leave out --model-dir")
    supervisor = Supervisor(
        _worker_argv(options),
        workers=count,
        host=options.host,
        ports=ports,
        grace_s=cfg.serving.deadline_ms / 1000.0 + 10.0,
        fork=entry,
        inference_threads=cfg.serving.inference_threads,
        on_ready=lambda: _announce_workers(options, count, supervisor.box_line()),
    )
    hosted: list[Stoppable] = []

    def start_monitors() -> None:
        # After the first workers are forked: a monitor is a thread, and with a thread
        # running, a worker is started as a new process instead (see Supervisor).
        if every_s is None:
            return
        from mooring.registry import Registry

        for project, path in zip(options.projects, options.paths, strict=True):
            hosted.append(
                monitor(
                    project,
                    Registry.from_config(project),
                    metrics=supervisor.render_metrics,
                    config_path=path.resolve(),
                    every_s=every_s,
                )
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


def with_dashboard(application: Starlette, cfg: MooringConfig, dashboard: Dashboard) -> Starlette:
    """Mount ``dashboard`` under ``/ui`` of a registry-mode server (``create_app``), built
    on its first request.

    The dashboard reads this server's metrics in process and applies the deployment
    changes it makes at once, instead of at the server's next poll of the registry.

    Examples:
        >>> app = with_dashboard(create_app(cfg), cfg, dashboard)  # doctest: +SKIP
    """
    from starlette.routing import Mount

    state = application.state.mooring
    application.router.routes.append(
        Mount("/ui", app=_OnFirstRequest(lambda: dashboard(cfg, state)))
    )
    return application


class _OnFirstRequest:
    """An ASGI app built on its first request: the dashboard's imports (Jinja2, its
    views; about 0.2 s) stay off the server's start-up, which waits for none of them."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)
