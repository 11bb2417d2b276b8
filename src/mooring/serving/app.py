"""The ASGI app: protocols, routing, batching, metrics, prediction log and admin, composed.

``create_app(cfg)`` serves the project's model from its registry, following the
deployment record; ``build_app(sources, serving)`` composes the same app from any
:class:`~mooring.serving.sources.ModelSource` (a folder, for example).

Example:
    >>> from mooring.config import load_config
    >>> app = create_app(load_config("mooring.toml"))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8501)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from mooring.config import MooringConfig, ServingConfig
from mooring.errors import MooringError, NotFoundError, UnsupportedMediaTypeError, UsageError
from mooring.formats.columns import describe, loads
from mooring.formats.feedback import FeedbackStore
from mooring.registry import Registry
from mooring.serving.door import ARRIVED, Door, DoorLimits
from mooring.serving.errors import InvalidRequestError, OverloadedError, UnauthorizedError
from mooring.serving.feedback import parse_feedback
from mooring.serving.follow import follow, follow_notices, refresh_gauges, settled
from mooring.serving.http import (
    CLIENT_CLOSED,
    JSON,
    Answer,
    ServingApp,
    add_header,
    check_bearer,
    http_error,
    id_and_key,
    json_response,
    read_body,
    request_id,
)
from mooring.serving.log import PredictionLog
from mooring.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics
from mooring.serving.models import ModelManager, Slot
from mooring.serving.predict import Call, Predictor
from mooring.serving.protocols import tfserving, v2
from mooring.serving.sources import ModelSource, RegistrySource
from mooring.serving.state import ServerState
from mooring.serving.workers import WorkerRun
from mooring.tracing import Tracing, start_tracing

__all__ = ["ServerState", "build_app", "create_app"]

log = logging.getLogger("mooring.serving")

# How long build_app's on_ready waits for every model to be ready before it is called anyway.
READY_WAIT_S = 300.0


@dataclass(kw_only=True)
class _Ctx(Call):
    """A REST call: a :class:`Call` with its Starlette request."""

    request: Request


class _Handlers:
    """The REST endpoints; each returns a Response or raises a MooringError."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.predictor = Predictor(state)
        self.policy = self.predictor.policy
        self.tracing = state.tracing

    async def guarded(
        self,
        request: Request,
        protocol: str,
        handler: Callable[[_Ctx], Awaitable[Response]],
    ) -> Response:
        # The deadline runs from arrival: the door stamps it as the headers are parsed,
        # before the body is read (without the door, from now).
        scope = request.scope
        arrived = scope.get(ARRIVED) or time.monotonic()
        given, key = id_and_key(scope["headers"])
        ctx = _Ctx(
            request=request,
            protocol=protocol,
            request_id=request_id(given),
            deadline=arrived + self.predictor.deadline_s,
            arrived=arrived,
            key=key,
        )
        try:
            response = await handler(ctx)
        except ClientDisconnect:
            # The client left before its body arrived: its doing, not a server fault. Logged
            # and counted as 499 (nginx's code for it), never as a 5xx.
            log.info("request %s: the client disconnected before its body arrived", ctx.request_id)
            response = json_response({"error": "client closed the request"}, CLIENT_CLOSED)
        except MooringError as exc:
            headers = {}
            if isinstance(exc, OverloadedError):
                headers["Retry-After"] = str(exc.retry_after)
            if isinstance(exc, UnauthorizedError):
                headers["WWW-Authenticate"] = "Bearer"
            response = json_response({"error": str(exc)}, exc.http_status, headers)
        except Exception:
            log.exception("request %s failed", ctx.request_id)
            response = json_response(
                {"error": f"internal error (request id {ctx.request_id})"}, 500
            )
        add_header(response, "X-Request-Id", ctx.request_id)
        for name, value in ctx.headers.items():
            add_header(response, name, value)
        client = scope.get("client")
        self.predictor.finish(
            ctx,
            response.status_code,
            method=scope["method"],
            path=scope["path"],  # not request.url: it builds a URL object
            client=client[0] if client else None,
        )
        return response

    def _route(
        self, ctx: _Ctx, manager: ModelManager, *, version: int | None, label: str | None
    ) -> Slot:
        return self.predictor.route(ctx, manager, version=version, label=label)

    def _traced(self, ctx: _Ctx, tracing: Tracing, route: str) -> None:
        """Start a prediction's span (its ``parse`` phase covers reading the body)."""
        ctx.trace = tracing.request(
            route, ctx.request_id, ctx.protocol, ctx.model, ctx.arrived, ctx.request.headers
        )

    async def _body(self, ctx: _Ctx) -> bytes:
        """The request's body, unless its deadline passed before it was read."""
        self.predictor.remaining(ctx)
        return await read_body(ctx.request, self.state.serving.body_limit_bytes)

    # -- TF Serving --------------------------------------------------------------
    async def tfserving(self, request: Request) -> Response:
        return await self.guarded(request, "tfserving", self._tfserving)

    async def _tfserving(self, ctx: _Ctx) -> Response:
        rest = ctx.request.path_params["rest"]
        path = tfserving.parse_path(rest)
        if path is None:
            raise NotFoundError(f"no such endpoint /v1/models/{describe(rest)}")
        manager = self.state.manager(path.name)
        ctx.model = manager.name
        method = ctx.request.method
        if path.verb == "predict" and method == "POST":
            if self.tracing is not None:
                self._traced(ctx, self.tracing, "POST /v1/models/{name}:predict")
            raw = await self._body(ctx)
            body = loads(raw)
            slot = self._route(ctx, manager, version=path.version, label=path.label)
            columns, rows, row_format = tfserving.parse_predict(
                body, slot.model.inputs, self.policy, arrays=False
            )
            outputs = await self.predictor.serve(ctx, manager, slot, columns, rows)
            return json_response(
                tfserving.format_predict(
                    outputs, rows=rows, row_format=row_format, version=slot.version
                )
            )
        if path.verb in ("classify", "regress"):
            raise InvalidRequestError(
                f":{path.verb} needs tf.Example inputs, which this server does not take; "
                "use :predict with 'instances' or 'inputs'"
            )
        if method != "GET" or path.verb == "predict":
            allow = "POST" if path.verb == "predict" else "GET"
            return json_response({"error": f"{method} is not allowed here"}, 405, {"Allow": allow})
        if path.verb == "metadata":
            version = path.version
            if path.label is not None:
                version = manager.route(label=path.label).version
            return json_response(tfserving.metadata_document(manager.model_for_metadata(version)))
        served = {v: "AVAILABLE" for v in manager.served_versions()}
        served.update({v: "LOADING" for v in manager.loading if v not in served})
        if path.label is not None:
            served = {manager.route(label=path.label).version: "AVAILABLE"}
        elif path.version is not None:
            if path.version not in served and path.version not in manager.failures:
                raise NotFoundError(
                    f"model '{manager.name}' version {path.version} is not served; "
                    f"served: {sorted(served) or 'none'}"
                )
            served = {k: v for k, v in served.items() if k == path.version}
            failures = {k: v for k, v in manager.failures.items() if k == path.version}
            return json_response(tfserving.status_document(served, failures))
        return json_response(tfserving.status_document(served, manager.failures))

    # -- Open Inference Protocol v2 ----------------------------------------------
    async def v2(self, request: Request) -> Response:
        return await self.guarded(request, "v2", self._v2)

    async def _v2(self, ctx: _Ctx) -> Response:
        method = ctx.request.method
        endpoint = v2.parse_path(ctx.request.path_params.get("rest", ""), method)
        if endpoint.kind == "live":
            return json_response({"live": True})
        if endpoint.kind == "ready":
            ready = self.state.ready
            return json_response({"ready": ready}, 200 if ready else 503)
        if endpoint.kind == "server":
            return json_response(
                {"name": "mooring", "version": "1", "extensions": ["binary_tensor_data"]}
            )
        manager = self.state.manager(endpoint.model or "")
        ctx.model = manager.name
        version = endpoint.version
        if endpoint.kind == "model":
            model = manager.model_for_metadata(version)
            return json_response(v2.metadata_document(model, manager.served_versions()))
        if endpoint.kind == "model_ready":
            if version is not None and not manager.knows(version):
                raise NotFoundError(
                    f"model '{manager.name}' has no version {version} here; served: "
                    f"{sorted(manager.served_versions()) or 'none'}"
                )
            ok = manager.ready if version is None else version in manager.served_versions()
            return json_response({"name": manager.name, "ready": ok}, 200 if ok else 503)
        if endpoint.allow is not None:
            return json_response(
                {"error": f"{method} is not allowed here"}, 405, {"Allow": endpoint.allow}
            )
        if endpoint.kind != "infer":
            raise NotFoundError(f"no such endpoint {method} {ctx.request.url.path}")
        if self.tracing is not None:
            self._traced(ctx, self.tracing, "POST /v2/models/{name}/infer")
        raw = await self._body(ctx)
        body, binary = v2.split_body(
            raw, ctx.request.headers.get("inference-header-content-length")
        )
        slot = self._route(ctx, manager, version=version, label=None)
        model = slot.model
        columns, rows, wanted, request_id = v2.parse_infer(
            body, binary, model.inputs, model.outputs, self.policy, arrays=False
        )
        outputs = await self.predictor.serve(ctx, manager, slot, columns, rows)
        payload, header_length = v2.encode_infer(
            outputs, wanted, model=manager.name, version=slot.version, request_id=request_id
        )
        if header_length is None:
            return Answer(payload)
        return Answer(
            payload,
            headers={"Inference-Header-Content-Length": str(header_length)},
            media_type="application/octet-stream",
        )

    # -- label feedback ------------------------------------------------------------
    async def feedback(self, request: Request) -> Response:
        return await self.guarded(request, "feedback", self._feedback)

    async def _feedback(self, ctx: _Ctx) -> Response:
        # ctx.model stays unset: labels are not predictions and stay out of request metrics.
        manager = self.state.manager(ctx.request.path_params["name"])
        store = self.state.feedback.get(manager.name)
        if store is None:
            raise NotFoundError("label feedback is off on this server (no feedback folder)")
        cfg = self.state.serving
        if self.state.feedback_token is None:
            raise NotFoundError(
                "label feedback is off: set [serving] feedback_token or the "
                f"{cfg.feedback_token_env} environment variable to turn it on"
            )
        check_bearer(ctx.request, self.state.feedback_token, "label feedback")
        # JSON only: a form or text/plain post is what a cross-site page can send unasked.
        kind = ctx.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != JSON:
            raise UnsupportedMediaTypeError(
                f"label feedback takes Content-Type: {JSON}, got {describe(kind or None)}"
            )
        body = loads(await read_body(ctx.request, cfg.body_limit_bytes))
        labels = parse_feedback(body)
        accepted = await asyncio.to_thread(store.write, manager.name, labels)
        return json_response({"model": manager.name, "accepted": accepted})

    # -- health, metrics, admin --------------------------------------------------
    async def health(self, request: Request) -> Response:
        ready = self.state.ready
        registry_ok = all(m.source_error is None for m in self.state.managers.values())
        body: dict[str, Any] = {"ready": ready, "registry": "ok" if registry_ok else "unavailable"}
        fallbacks = {m.name: m.fallback for m in self.state.managers.values() if m.fallback}
        if fallbacks:
            # Ready (an earlier version answers), but not what was deployed: say so.
            body["fallback"] = fallbacks
        not_ready = {m.name: m.why_not_ready() for m in self.state.managers.values() if not m.ready}
        if not_ready:
            body["not_ready"] = not_ready  # which model, and why
        return json_response(body, 200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(self.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def admin(self, request: Request) -> Response:
        return await self.guarded(request, "admin", self._admin)

    async def _admin(self, ctx: _Ctx) -> Response:
        token = self.state.admin_token
        if token is None:
            raise NotFoundError(
                "admin endpoints are off; set [serving] admin_token or the "
                f"{self.state.serving.admin_token_env} environment variable to turn them on"
            )
        check_bearer(ctx.request, token, "admin endpoints")
        action = ctx.request.path_params["action"]
        method = ctx.request.method
        if action == "status" and method == "GET":
            return json_response({"models": [m.status() for m in self.state.managers.values()]})
        if action == "reload" and method == "POST":
            for manager in self.state.managers.values():
                await manager.refresh(force=True)
            return json_response({"models": [m.status() for m in self.state.managers.values()]})
        if action == "deployment" and method == "POST":
            return await self._deploy(ctx)
        raise NotFoundError(f"no such admin endpoint {method} /admin/{describe(action)}")

    async def _deploy(self, ctx: _Ctx) -> Response:
        if self.state.registry is None:
            raise InvalidRequestError("this server does not follow a registry; nothing to deploy")
        body = loads(await read_body(ctx.request, self.state.serving.body_limit_bytes))
        if not isinstance(body, dict):
            raise InvalidRequestError(
                'expected {"model", "production", "canary", "weight", "shadow", "shadow_rate", '
                '"reason"}'
            )
        name = body.get("model") or next(iter(self.state.managers))
        manager = self.state.manager(str(name))
        # A server of several projects: each model is deployed in its own registry.
        source = manager.source
        registry = source.registry if isinstance(source, RegistrySource) else self.state.registry
        for key in ("production", "canary", "weight", "shadow"):
            value = body.get(key)
            if value is not None and type(value) is not int:
                raise InvalidRequestError(f"{key}: expected an integer, got {describe(value)}")
        rate = body.get("shadow_rate", 0.1)
        if type(rate) not in (int, float):
            raise InvalidRequestError(
                f"shadow_rate: expected a number in (0, 1], got {describe(rate)}"
            )
        reason = body.get("reason")
        why = str(reason) if reason is not None else None
        serving = any(k in body for k in ("production", "canary", "weight"))
        if not serving and "shadow" not in body:
            raise InvalidRequestError(
                'nothing to change: give "production" (with "canary", "weight"), or "shadow" '
                '(a version, or null to clear it) with "shadow_rate"'
            )
        deployment = None
        if serving:
            deployment = await asyncio.to_thread(
                registry.deploy,
                manager.name,
                production=body.get("production"),
                canary=body.get("canary"),
                weight=body.get("weight") or 0,
                actor="mooring-serve-admin",
                reason=why,
            )
        if "shadow" in body:
            deployment = await asyncio.to_thread(
                registry.set_shadow,
                manager.name,
                version=body.get("shadow"),
                rate=rate,
                actor="mooring-serve-admin",
                reason=why,
            )
        assert deployment is not None
        await manager.apply(deployment)
        state = self.state
        if state.worker is not None:
            await asyncio.to_thread(state.worker.announce_deployment)
        return json_response({"deployment": deployment.to_dict(), "status": manager.status()})


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
    (:mod:`mooring.serving.grpc`) on ``grpc_host`` at that port, on the same event loop
    and through the same prediction path, admission, metrics and logs as REST.

    ``tracing`` (:func:`mooring.tracing.start_tracing`) traces predictions; shut down on stop.

    ``on_ready`` is called once on the event loop when every model is first ready, or
    after :data:`READY_WAIT_S` if that never happens (``state.ready`` tells which);
    ``mooring serve`` uses it to settle the garbage collector after start-up.

    ``worker``: this app is one worker of ``mooring serve --workers N``
    (:mod:`mooring.serving.workers`). Its lifespan then ends its start-up only once every
    model has settled (loaded, or failed with a reason), so uvicorn listens only when the
    worker can answer; the gRPC port is shared with the other workers; it follows the
    run's deployment notices as well as the registry, and announces the deployments
    made through it.
    """
    cfg = serving or ServingConfig()
    metrics = ServingMetrics()
    executor = ThreadPoolExecutor(max_workers=cfg.inference_threads, thread_name_prefix="infer")
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
    managers = {s.name: ModelManager(s, cfg, metrics, executor, plog) for s in sources}
    token = cfg.admin_token or os.environ.get(cfg.admin_token_env) or None
    state = ServerState(cfg, managers, metrics, executor, plog, token, registry)
    if feedback_url is not None:
        state.feedback = {
            name: FeedbackStore(
                feedback_url if isinstance(feedback_url, str) else feedback_url[name]
            )
            for name in managers
            if isinstance(feedback_url, str) or name in feedback_url
        }
    state.feedback_token = cfg.feedback_token or os.environ.get(cfg.feedback_token_env) or None
    state.tracing = tracing
    state.door = Door(DoorLimits.from_config(cfg))
    state.door.on_refused = lambda reason: metrics.refused.labels(reason).inc()
    state.worker = worker
    for manager in managers.values():
        manager.idle = lambda: state.door.in_flight <= 1
    if metrics.multiprocess_dir is None:
        metrics.in_flight.set_function(lambda: state.door.in_flight)
    handlers = _Handlers(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if plog is not None:
            plog.start()
        state.tasks = [
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
                from mooring.serving.grpc import start_grpc

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
            for manager in managers.values():
                await manager.close()
            if plog is not None:
                await asyncio.to_thread(plog.close)
            executor.shutdown(wait=True)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    routes = [
        Route("/v1/models/{name}:feedback", handlers.feedback, methods=["POST"]),
        Route("/v1/models/{rest:path}", handlers.tfserving, methods=["GET", "POST"]),
        Route("/v2/{rest:path}", handlers.v2, methods=["GET", "POST"]),
        Route("/v2", handlers.v2, methods=["GET"]),
        Route("/metrics", handlers.metrics, methods=["GET"]),
        Route("/healthz", handlers.health, methods=["GET"]),
        Route("/admin/{action}", handlers.admin, methods=["GET", "POST"]),
    ]

    app = ServingApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: http_error, 405: http_error},
    )
    app.predict_handlers = (handlers.tfserving, handlers.v2)
    app.state.mooring = state
    return app


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

    Example:
        >>> app = create_app(cfg, projects=[load_config("b/mooring.toml")])  # doctest: +SKIP
    """
    reg = registry or Registry.from_config(cfg)
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
    served += [(other, Registry.from_config(other), other.project.name) for other in projects]
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
