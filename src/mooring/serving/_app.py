"""The ASGI app: protocols, routing, batching, metrics, prediction log and admin, composed.

``create_app(cfg)`` serves the project's model from its registry, following the
deployment record; ``build_app(sources, serving)`` composes the same app from any
:class:`~mooring.serving._sources.ModelSource` (a folder, for example).

Examples:
    >>> from mooring.config import load_config
    >>> app = create_app(load_config("mooring.toml"))  # doctest: +SKIP
    >>> Server(app, host="127.0.0.1", port=8501).run()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.routing import Route

from mooring._tracing import Tracing, start_tracing
from mooring.config import MooringConfig, ServingConfig
from mooring.errors import UsageError
from mooring.formats._columns import describe
from mooring.formats._feedback import FeedbackStore
from mooring.registry import Registry
from mooring.serving._admission import Admission
from mooring.serving._door import Door
from mooring.serving._endpoints import ROUTES, Endpoints
from mooring.serving._follow import follow, follow_notices, refresh_gauges, settled
from mooring.serving._http import ServingApp, http_error
from mooring.serving._log import PredictionLog
from mooring.serving._memory import WORKERS_ENV, MemoryCeiling, worker_headroom
from mooring.serving._metrics import ServingMetrics
from mooring.serving._models import ModelManager
from mooring.serving._sources import ModelSource, RegistrySource
from mooring.serving._state import ServerState
from mooring.serving._workers import WorkerRun, available_memory

__all__ = ["ServerState", "build_app", "create_app"]

log = logging.getLogger("mooring.serving")

# How long build_app's on_ready waits for every model to be ready before it is called anyway.
READY_WAIT_S = 300.0


def build_app(
    sources: Sequence[ModelSource],
    serving: ServingConfig | None = None,
    *,
    prediction_log_url: str | Mapping[str, str] | None = None,
    registry: Registry | None = None,
    feedback_url: str | Mapping[str, str] | None = None,
    on_ready: Callable[[], None] | None = None,
    tracing: Tracing | None = None,
    grpc_host: str = "127.0.0.1",
    worker: WorkerRun | None = None,
) -> Starlette:
    """Compose the server for ``sources`` (one per model name).

    ``prediction_log_url`` and ``feedback_url`` are one folder for every model, or a
    folder per model name (a server of several projects writes each model's rows and
    labels where its own project's monitor reads them).

    With ``serving.grpc_port`` set, the lifespan also serves the gRPC APIs
    (:mod:`mooring.serving._grpc`) on ``grpc_host`` at that port, on the same event loop
    and through the same prediction path, admission, metrics and logs as REST.

    ``tracing`` (:func:`mooring._tracing.start_tracing`) traces predictions; shut down on stop.

    ``on_ready`` is called once on the event loop when every model is first ready, or
    after :data:`READY_WAIT_S` if that never happens (``state.ready`` tells which);
    ``mooring serve`` uses it to settle the garbage collector after start-up.

    ``worker``: this app is one worker of ``mooring serve --workers N``
    (:mod:`mooring.serving._workers`). Its lifespan then ends its start-up only once every
    model has settled (loaded, or failed with a reason), so the server listens only when the
    worker can answer; the gRPC port is shared with the other workers; it follows the
    run's deployment notices as well as the registry, and announces the deployments
    made through it.
    """
    cfg = serving or ServingConfig()
    metrics = ServingMetrics()
    plog = None
    if prediction_log_url is not None and cfg.log_sample_rate > 0:
        plog = PredictionLog(
            prediction_log_url,
            sample_rate=cfg.log_sample_rate,
            buffer_rows=cfg.log_buffer,
            flush_rows=cfg.log_flush_rows,
            flush_s=cfg.log_flush_s,
            on_written=metrics.log_written.inc,
            on_dropped=metrics.log_dropped.inc,
        )
    admission = Admission.of(cfg)  # shared by the door (REST) and gRPC
    admission.on_refused = lambda reason: metrics.refused.labels(reason).inc()
    door = Door(cfg, admission, ROUTES)
    # Inert here: `mooring serve`'s Server starts it in its own process (never a test's).
    memory = MemoryCeiling(
        worker_headroom(
            cfg.worker_memory_bytes,
            workers=int(os.environ.get(WORKERS_ENV, "1") or 1),
            available=available_memory(),
        )
    )
    managers = {
        s.name: ModelManager(
            s, cfg, metrics, plog, idle=lambda: admission.in_flight <= 1, memory=memory
        )
        for s in sources
    }
    state = ServerState(
        serving=cfg,
        managers=managers,
        metrics=metrics,
        prediction_log=plog,
        admin_token=cfg.admin_token or os.environ.get(cfg.admin_token_env) or None,
        registry=registry,
        feedback=_feedback_stores(feedback_url, managers),
        feedback_token=cfg.feedback_token or os.environ.get(cfg.feedback_token_env) or None,
        door=door,
        tracing=tracing,
        worker=worker,
        memory=memory,
    )
    if metrics.multiprocess_dir is None:
        metrics.in_flight.set_function(lambda: admission.in_flight)
    handlers = Endpoints(state)
    state.door.fast = handlers  # plain predictions are read and answered by the door

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if plog is not None:
            plog.start()
        state.tasks[:] = [
            asyncio.create_task(follow(m, cfg.poll_interval_s)) for m in managers.values()
        ]
        if on_ready is not None:
            state.tasks.append(asyncio.create_task(_when_ready(state, on_ready)))
        if metrics.multiprocess_dir is not None:
            state.tasks.append(asyncio.create_task(refresh_gauges(state)))
        grpc_server = None
        try:
            if worker is not None:
                state.tasks.append(asyncio.create_task(follow_notices(state, worker)))
                await settled(state, READY_WAIT_S)
            if cfg.grpc_port is not None:
                from mooring.serving._grpc import start_grpc

                grpc_server = await start_grpc(
                    state,
                    handlers.predictor,
                    host=grpc_host,
                    port=cfg.grpc_port,
                    shared=worker is not None,
                )
            if worker is not None:
                worker.mark_ready()
            yield
        finally:
            if grpc_server is not None:
                # In-flight calls finish (up to a deadline's length) before the models close.
                await grpc_server.stop(grace=cfg.deadline_ms / 1000.0)
            running = [*state.tasks, *state.shadow_tasks]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await asyncio.to_thread(handlers.predictor.explaining.close)
            for manager in managers.values():
                await manager.close()
            if plog is not None:
                await asyncio.to_thread(plog.close)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    routes = [
        Route(s.path, handlers.endpoint(s), methods=list(s.methods), name=s.protocol)
        for s in ROUTES
    ]

    app = ServingApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: http_error, 405: http_error},
    )
    app.predictions = handlers.predict
    app.table = ROUTES
    app.state.mooring = state
    return app


def _feedback_stores(
    url: str | Mapping[str, str] | None, names: Iterable[str]
) -> dict[str, FeedbackStore]:
    """Each model's label store: one folder for every model, or a folder per model name."""
    if url is None:
        return {}
    if isinstance(url, str):
        return {name: FeedbackStore(url) for name in names}
    return {name: FeedbackStore(url[name]) for name in names if name in url}


async def _when_ready(state: ServerState, callback: Callable[[], None]) -> None:
    deadline = time.monotonic() + READY_WAIT_S
    while not state.ready and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    callback()


def create_app(
    cfg: MooringConfig,
    *,
    registry: Registry | None = None,
    models: Sequence[str] | None = None,
    all_models: bool = False,
    projects: Sequence[MooringConfig] = (),
    on_ready: Callable[[], None] | None = None,
    tracing: Tracing | None = None,
    grpc_host: str = "127.0.0.1",
    worker: WorkerRun | None = None,
) -> Starlette:
    """The server for a project: its model from its registry, following the deployment record.

    One process can serve several models, each with its own versions, batcher and
    contract: ``models`` names models of ``cfg``'s registry (default: the project's
    own), ``all_models`` serves every model there with a production version, and each
    of ``projects`` adds its own model from its own registry. Every model's logged
    rows and labels go to its own project's folders, where that project's monitor
    reads them. ``cfg``'s ``[serving]`` section runs the server (port, batching,
    admission, tokens). ``on_ready``, ``grpc_host`` and ``worker`` as in :func:`build_app`;
    ``tracing`` defaults to what ``[observability]`` says (off without ``otlp_endpoint``).

    Examples:
        >>> app = create_app(cfg, projects=[load_config("b/mooring.toml")])  # doctest: +SKIP
    """
    reg = registry or Registry.from_config(cfg, create=False)
    names = list(models or ())
    if all_models:
        names += [m.name for m in reg.models() if m.production is not None]
        if not names:
            raise UsageError(
                f"no model in the registry of project {describe(cfg.project.name)} has a "
                "production version; deploy one (mooring models deploy NAME -p VERSION) "
                "or leave out --all-models"
            )
    served = [(cfg, reg, name) for name in dict.fromkeys(names or [cfg.project.name])]
    served += [
        (other, Registry.from_config(other, create=False), other.project.name) for other in projects
    ]
    sources: list[ModelSource] = []
    log_urls: dict[str, str] = {}
    feedback_urls: dict[str, str] = {}
    for project, project_registry, name in served:
        if name in log_urls:
            raise UsageError(
                f"model {describe(name)} is named twice; one server answers for each model "
                "name once: rename one project ([project] name) or serve it separately"
            )
        sources.append(RegistrySource(project_registry, name, contract=project.contract))
        log_urls[name] = project.serving.log_url or str(project.home / "predictions")
        feedback_urls[name] = project.monitoring.feedback_url or str(project.home / "feedback")
    return build_app(
        sources,
        cfg.serving,
        prediction_log_url=log_urls,
        registry=reg,
        feedback_url=feedback_urls,
        on_ready=on_ready,
        tracing=tracing if tracing is not None else start_tracing(cfg.observability),
        grpc_host=grpc_host,
        worker=worker,
    )
