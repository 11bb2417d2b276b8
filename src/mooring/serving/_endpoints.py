"""The REST endpoints: TF Serving's API, the Open Inference Protocol's, feedback, health, admin.

Every endpoint runs inside :meth:`Endpoints.answer`, which turns what it raises into a
JSON answer with the status the error carries, adds the request id (``X-Request-Id``,
always the server's own; the client's, when it sent one, comes back as
``X-Client-Request-Id``) and model version, and counts the request (metrics, access
log). A prediction arrives by one of two roads:
through ASGI (Starlette's request, the route table, the door's ASGI cycle) or, in the
plain case, read by the door itself (its :class:`~mooring.serving._door.FastPath`:
:meth:`serve`);
both build the same :class:`_Ctx` and run the same handler, so they answer the same.

The server's route table, :data:`ROUTES`, is built here, beside its handlers: each row
carries its handler and its URL grammar (:class:`~mooring.serving._routes.RouteSpec`),
and the path is parsed once, by the row's grammar, inside the guard.

Examples:
    >>> endpoints = Endpoints(state)  # build_app's  # doctest: +SKIP
    >>> spec = ROUTES.specs[0]  # doctest: +SKIP
    >>> Route(spec.path, endpoints.endpoint(spec), methods=list(spec.methods))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from mooring._tracing import Tracing
from mooring.errors import MooringError, NotFoundError, UnsupportedMediaTypeError
from mooring.formats._columns import describe, loads
from mooring.registry._actors import Caller, acting, admin_caller
from mooring.serving._admission import SMALL_BODY
from mooring.serving._box import box_status
from mooring.serving._door import ARRIVED
from mooring.serving._errors import (
    DeadlineExceededError,
    InvalidRequestError,
    ModelUnavailableError,
    OverloadedError,
    UnauthorizedError,
)
from mooring.serving._explain import EXPLAIN_INFO, explanation_document, explanation_tensors
from mooring.serving._feedback import LabelDomain, label_domain, parse_feedback
from mooring.serving._flush import flush_logs, is_loopback
from mooring.serving._http import (
    CLIENT_CLOSED,
    JSON,
    Answer,
    add_header,
    check_bearer,
    client_request_id,
    id_and_key,
    json_response,
    read_body,
    request_id,
    too_large,
)
from mooring.serving._metrics import CONTENT_TYPE_LATEST
from mooring.serving._models import ModelManager, Slot
from mooring.serving._openapi import openapi_document
from mooring.serving._predict import Call, Predictor
from mooring.serving._protocols import tfserving, v2
from mooring.serving._routes import Match, Routes, RouteSpec
from mooring.serving._sources import RegistrySource
from mooring.serving._state import ServerState

if TYPE_CHECKING:
    from mooring.serving._door_framing import Request as DoorRequest

__all__ = ["ROUTES", "Endpoints"]

log = logging.getLogger("mooring.serving")
_T = TypeVar("_T")


@dataclass(kw_only=True)
class _Ctx(Call):
    """A REST call: a :class:`Call` with what its endpoint reads of the HTTP request."""

    method: str
    path: str
    #: The value of the route pattern's one parameter, which its grammar reads: the path
    #: after ``/v1/models/`` or ``/v2/``, the model of a feedback, the admin action.
    rest: str
    raw_headers: Sequence[tuple[bytes, bytes]]
    #: Where the body comes from: the bytes the door read (the fast path), or ASGI's
    #: ``receive``, whose messages hold it.
    source: bytes | Receive
    #: The client's address, ``(host, port)``, as the ASGI scope has it.
    client: Any = None

    def header(self, name: bytes) -> str | None:
        """The first value of a header (``name`` in lower case, as ASGI and the door keep it)."""
        for key, value in self.raw_headers:
            if key == name:
                return value.decode("latin-1")
        return None

    async def read(self, limit: int) -> bytes:
        """The body, refused (413) past ``limit`` bytes; read once per request."""
        source = self.source
        if isinstance(source, bytes):
            if len(source) > limit:  # the door reads only bodies within it; kept whole here
                raise too_large(limit)
            return source
        return await read_body(source, self.raw_headers, limit)


class Endpoints:
    """The REST endpoints; each returns a Response or raises a MooringError."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.predictor = Predictor(state)
        self.tracing = state.tracing
        # One thread parses the bodies larger than SMALL_BODY (made at the first).
        self._parser: ThreadPoolExecutor | None = None
        # GET /v2/openapi.json's bytes, read at start rather than at the first request.
        self._openapi = openapi_document()

    async def _parse(self, raw: bytes, parse: Callable[..., _T], *args: Any, **kw: Any) -> _T:
        """``parse(*args, **kw)`` for a body of ``raw``: on the event loop for a small one;
        for one past :data:`~mooring.serving._admission.SMALL_BODY`, on a thread of its
        own, where the interpreter's switch interval hands the loop back every few ms.

        Parsing a 4 MiB JSON body takes the interpreter for a tenth of a second or more:
        on the loop, 64 clients sending such bodies left a single-row client one answer
        in 18 s. One thread, so large bodies are parsed one at a time.
        """
        if len(raw) <= SMALL_BODY:
            return parse(*args, **kw)
        if self._parser is None:
            self._parser = ThreadPoolExecutor(1, thread_name_prefix="mooring-parse")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._parser, functools.partial(parse, *args, **kw))

    def endpoint(self, spec: RouteSpec) -> Callable[[Request], Awaitable[Response]]:
        """Starlette's endpoint for the route ``spec``: its handler, run in the guard
        (:meth:`guarded`) unless the route is not counted as a request."""
        if spec.guarded:
            return functools.partial(self.guarded, spec)
        return functools.partial(spec.handler, self)

    async def guarded(self, spec: RouteSpec, request: Request) -> Response:
        """Run the endpoint ``spec`` on a request Starlette's router dispatched."""
        scope = request.scope
        params = scope.get("path_params")
        rest = next(iter(params.values()), "") if params else ""
        return await self._asgi(spec, scope, request.receive, rest)

    async def predict(self, scope: Scope, receive: Receive, match: Match) -> Response:
        """Answer a prediction dispatched before Starlette's router (its ASGI messages read
        here, no Starlette request built)."""
        return await self._asgi(match.route, scope, receive, match.rest)

    async def _asgi(self, spec: RouteSpec, scope: Scope, receive: Receive, rest: str) -> Response:
        client = scope.get("client")
        ctx = self._ctx(
            spec.protocol,
            method=scope["method"],
            path=scope["path"],  # not request.url: it builds a URL object
            rest=rest,
            headers=scope["headers"],
            arrived=scope.get(ARRIVED),
            source=receive,
            client=client,
        )
        return await self.answer(ctx, spec, client[0] if client else None)

    def _ctx(
        self,
        protocol: str,
        *,
        method: str,
        path: str,
        rest: str,
        headers: Sequence[tuple[bytes, bytes]],
        arrived: float | None,
        source: bytes | Receive,
        client: Any,
    ) -> _Ctx:
        # The deadline runs from arrival: the door stamps it as the headers are parsed,
        # before the body is read (without the door, from now).
        arrived = arrived or time.monotonic()
        given, key = id_and_key(headers)
        return _Ctx(
            protocol=protocol,
            request_id=request_id(),
            client_request_id=client_request_id(given),
            deadline=arrived + self.predictor.deadline_s,
            arrived=arrived,
            key=key,
            method=method,
            path=path,
            rest=rest,
            raw_headers=headers,
            source=source,
            client=client,
        )

    async def answer(self, ctx: _Ctx, spec: RouteSpec, client: str | None) -> Response:
        """The endpoint's answer (its path parsed once, by the route's grammar), every
        error it or the grammar raises made one; the request counted."""
        try:
            response: Response = await spec.handler(self, ctx, spec.grammar(ctx.rest, ctx.method))
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
            if isinstance(exc, DeadlineExceededError):
                ctx.shed = exc.shed
            response = json_response({"error": str(exc)}, exc.http_status, headers)
        except Exception:
            log.exception("request %s failed", ctx.request_id)
            response = json_response(
                {"error": f"internal error (request id {ctx.request_id})"}, 500
            )
        add_header(response, "X-Request-Id", ctx.request_id)
        if ctx.client_request_id is not None:
            add_header(response, "X-Client-Request-Id", ctx.client_request_id)
        for name, value in ctx.headers.items():
            add_header(response, name, value)
        self.predictor.finish(
            ctx, response.status_code, method=ctx.method, path=ctx.path, client=client
        )
        return response

    # -- the door's road (mooring.serving._door.FastPath) ---------------------------------
    def _door_ctx(self, req: DoorRequest, source: bytes) -> tuple[_Ctx, RouteSpec]:
        match = req.route
        if match is None:
            raise RuntimeError("the door handed on a request that is not a prediction")
        spec = match.route
        ctx = self._ctx(
            spec.protocol,
            method="POST",
            path=match.path,
            rest=match.rest,
            headers=req.headers,
            arrived=req.arrived,
            source=source,
            client=None,
        )
        return ctx, spec

    async def serve(self, req: DoorRequest, client: str | None) -> Response:
        """Answer a prediction the door read (its body whole)."""
        ctx, spec = self._door_ctx(req, req.body)
        return await self.answer(ctx, spec, client)

    def lost(self, req: DoorRequest, client: str | None) -> None:
        """Count a prediction whose client left before its body arrived, as the ASGI road
        counts it: 499, under its model where the path names one served here."""
        ctx, spec = self._door_ctx(req, b"")
        try:
            named = spec.grammar(ctx.rest, ctx.method)
        except MooringError:  # a path no model is named by: counted without one
            named = None
        name = getattr(named, "model", None) or ""
        ctx.model = name if name in self.state.managers else ""
        log.info("request %s: the client disconnected before its body arrived", ctx.request_id)
        self.predictor.finish(ctx, CLIENT_CLOSED, method=ctx.method, path=ctx.path, client=client)

    # -- shared by the predictions ---------------------------------------------------------
    def _route(
        self, ctx: _Ctx, manager: ModelManager, *, version: int | None, label: str | None
    ) -> Slot:
        return self.predictor.route(ctx, manager, version=version, label=label)

    def _traced(self, ctx: _Ctx, tracing: Tracing, route: str) -> None:
        """Start a prediction's span (its ``parse`` phase covers reading the body)."""
        ctx.trace = tracing.request(
            route,
            ctx.request_id,
            ctx.protocol,
            ctx.model,
            ctx.arrived,
            Headers(raw=list(ctx.raw_headers)),
            ctx.client_request_id,
        )

    async def _body(self, ctx: _Ctx) -> bytes:
        """The request's body, unless its deadline passed before it was read."""
        self.predictor.remaining(ctx)
        return await ctx.read(self.state.serving.body_limit_bytes)

    # -- TF Serving --------------------------------------------------------------
    async def tfserving(self, ctx: _Ctx, path: tfserving.ModelPath | None) -> Response:
        """``/v1/models/…``: ``path``, what the URL names (None: nothing of the API)."""
        if path is None:
            raise NotFoundError(f"no such endpoint /v1/models/{describe(ctx.rest)}")
        manager = self.state.manager(path.name)
        ctx.model = manager.name
        method = _as_get(ctx.method)
        if path.verb == "predict" and method == "POST":
            if self.tracing is not None:
                self._traced(ctx, self.tracing, "POST /v1/models/{name}:predict")
            raw = await self._body(ctx)
            body = await self._parse(raw, loads, raw)
            slot = self._route(ctx, manager, version=path.version, label=path.label)
            model = slot.model
            columns, rows, row_format = await self._parse(
                raw,
                tfserving.parse_predict,
                body,
                model.inputs,
                self.predictor.policy_for(model),
                arrays=False,
                columnar=model.columnar,
            )
            outputs = await self.predictor.serve(ctx, manager, slot, columns, rows)
            return json_response(
                tfserving.format_predict(
                    outputs, rows=rows, row_format=row_format, version=slot.version
                )
            )
        ctx.explaining = path.verb == "explain"  # counted apart, whatever its answer
        if path.verb == "explain" and method == "POST":
            raw = await self._body(ctx)
            slot = self._route(ctx, manager, version=path.version, label=path.label)
            model = slot.model
            columns, rows, _ = tfserving.parse_predict(
                loads(raw),
                model.inputs,
                self.predictor.policy_for(model),
                arrays=False,
                columnar=model.columnar,
            )
            explanation = await self.predictor.explaining.explain(model, columns, rows)
            return json_response(explanation_document(explanation, slot.version))
        if path.verb in ("classify", "regress"):
            raise InvalidRequestError(
                f":{path.verb} needs tf.Example inputs, which this server does not take; "
                "use :predict with 'instances' or 'inputs'"
            )
        if method != "GET" or path.verb in ("predict", "explain"):
            allow = "POST" if path.verb in ("predict", "explain") else "GET, HEAD"
            return json_response(
                {"error": f"{ctx.method} is not allowed here"}, 405, {"Allow": allow}
            )
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
    async def v2(self, ctx: _Ctx, endpoint: v2.Endpoint) -> Response:
        """``/v2/…``: ``endpoint``, what the URL names."""
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
            allow = "GET, HEAD" if endpoint.allow == "GET" else endpoint.allow
            return json_response(
                {"error": f"{ctx.method} is not allowed here"}, 405, {"Allow": allow}
            )
        if endpoint.kind == "explain":
            return await self._v2_explain(ctx, manager, version)
        if endpoint.kind != "infer":
            raise NotFoundError(f"no such endpoint {ctx.method} {ctx.path}")
        if self.tracing is not None:
            self._traced(ctx, self.tracing, "POST /v2/models/{name}/infer")
        raw = await self._body(ctx)
        body, binary = await self._parse(
            raw, v2.split_body, raw, ctx.header(b"inference-header-content-length")
        )
        slot = self._route(ctx, manager, version=version, label=None)
        model = slot.model
        columns, rows, wanted, request_id = await self._parse(
            raw,
            v2.parse_infer,
            body,
            binary,
            model.inputs,
            model.outputs,
            self.predictor.policy_for(model),
            arrays=False,
            columnar=model.columnar,
        )
        outputs = await self.predictor.serve(ctx, manager, slot, columns, rows)
        payload, header_length = v2.encode_infer(
            outputs, wanted, model=manager.name, version=slot.version, request_id=request_id
        )
        return _oip_answer(payload, header_length)

    async def _v2_explain(self, ctx: _Ctx, manager: ModelManager, version: int | None) -> Response:
        """``POST /v2/models/NAME[/versions/N]/explain``: an infer request's inputs, answered
        with the explanation's outputs (``attributions``, ``baseline``, ``explained``)."""
        ctx.explaining = True
        raw = await self._body(ctx)
        body, binary = v2.split_body(raw, ctx.header(b"inference-header-content-length"))
        slot = self._route(ctx, manager, version=version, label=None)
        model = slot.model
        columns, rows, wanted, request_id = v2.parse_infer(
            body,
            binary,
            model.inputs,
            EXPLAIN_INFO,
            self.predictor.policy_for(model),
            arrays=False,
            columnar=model.columnar,
        )
        explanation = await self.predictor.explaining.explain(model, columns, rows)
        explained = explanation_tensors(explanation)
        payload, header_length = v2.encode_infer(
            explained["tensors"],
            wanted,
            model=manager.name,
            version=slot.version,
            request_id=request_id,
            parameters=explained["parameters"],
        )
        return _oip_answer(payload, header_length)

    # -- label feedback ------------------------------------------------------------
    async def feedback(self, ctx: _Ctx, name: str) -> Response:
        """Store a batch of labels, each checked against the production model's labels.

        A label that is not one of them refuses the whole batch (400, nothing stored).
        While no production version is loaded, or where its ``mooring.json`` records no
        classes, labels are not checked against the model (any class name or finite number).
        """
        # ctx.model stays unset: labels are not predictions and stay out of request metrics.
        manager = self.state.manager(name)
        store = self.state.feedback.get(manager.name)
        if store is None:
            raise NotFoundError("label feedback is off on this server (no feedback folder)")
        cfg = self.state.serving
        if self.state.feedback_token is None:
            raise NotFoundError(
                "label feedback is off: set [serving] feedback_token or the "
                f"{cfg.feedback_token_env} environment variable to turn it on"
            )
        check_bearer(
            ctx.header(b"authorization") or "",
            self.state.feedback_token,
            "label feedback",
            f"[serving] feedback_token (or the {cfg.feedback_token_env} environment variable)",
        )
        # JSON only: a form or text/plain post is what a cross-site page can send unasked.
        kind = (ctx.header(b"content-type") or "").split(";")[0].strip().lower()
        if kind != JSON:
            raise UnsupportedMediaTypeError(
                f"label feedback takes Content-Type: {JSON}, got {describe(kind or None)}"
            )
        body = loads(await ctx.read(cfg.body_limit_bytes))
        labels = parse_feedback(body, _label_domain(manager))
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

    async def openapi(self, request: Request) -> Response:
        """``GET /v2/openapi.json``: the OpenAPI document of the v2 endpoints, as shipped."""
        return Response(self._openapi, media_type="application/json")

    def _caller(self, ctx: _Ctx) -> Caller:
        """Who presented the admin token: a person of ``[serving] admin_tokens``, or the
        holder of the shared ``admin_token`` (401 otherwise)."""
        return admin_caller(
            ctx.header(b"authorization") or "",
            self.state.admin_token,
            self.state.serving.admin_tokens,
        )

    async def admin(self, ctx: _Ctx, action: str) -> Response:
        on = self.state.admin_token is not None or bool(self.state.serving.admin_tokens)
        if action == "flush" and _as_get(ctx.method) == "POST":
            # Harmless and path-free: without a token, open to this machine's clients.
            if on:
                self._caller(ctx)
            elif not is_loopback(ctx.client):
                raise UnauthorizedError(
                    "POST /admin/flush is answered to a client on the server's machine only "
                    "while admin endpoints are off; call it from there, or set [serving] "
                    f"admin_token or the {self.state.serving.admin_token_env} environment "
                    "variable and send 'Authorization: Bearer <token>'"
                )
            return json_response(await flush_logs(self.state))
        if not on:
            raise NotFoundError(
                "admin endpoints are off; set [serving] admin_token or the "
                f"{self.state.serving.admin_token_env} environment variable (or [serving] "
                "admin_tokens, a token per person) to turn them on"
            )
        caller = self._caller(ctx)
        method = _as_get(ctx.method)
        if action == "status" and method == "GET":
            models = [m.status() for m in self.state.managers.values()]
            return json_response({"models": models, "box": box_status()})
        if action == "reload" and method == "POST":
            for manager in self.state.managers.values():
                await manager.refresh(force=True)
            return json_response({"models": [m.status() for m in self.state.managers.values()]})
        if action == "deployment" and method == "POST":
            return await self._deploy(ctx, caller)
        raise NotFoundError(f"no such admin endpoint {ctx.method} /admin/{describe(action)}")

    async def _deploy(self, ctx: _Ctx, caller: Caller) -> Response:
        if self.state.registry is None:
            raise InvalidRequestError("this server does not follow a registry; nothing to deploy")
        body = loads(await ctx.read(self.state.serving.body_limit_bytes))
        if not isinstance(body, dict):
            raise InvalidRequestError(
                'expected {"model", "production", "canary", "weight", "shadow", "shadow_rate", '
                '"reason", "actor"}'
            )
        declared = body.get("actor")
        if declared is not None and (
            not isinstance(declared, str) or len(declared) > 100 or not declared.isprintable()
        ):
            raise InvalidRequestError(
                f'actor: expected a short printable name, e.g. "ana", got {describe(declared)}'
            )
        actor = acting(caller, declared, ADMIN_ACTOR)
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
                actor=actor,
                reason=why,
            )
        if "shadow" in body:
            deployment = await asyncio.to_thread(
                registry.set_shadow,
                manager.name,
                version=body.get("shadow"),
                rate=rate,
                actor=actor,
                reason=why,
            )
        assert deployment is not None
        await self.state.apply_deployment(manager.name, deployment)
        return json_response({"deployment": deployment.to_dict(), "status": manager.status()})


#: The channel of the admin API's changes: ``alice (mooring-serve-admin)``, or it alone.
ADMIN_ACTOR = "mooring-serve-admin"


def _label_domain(manager: ModelManager) -> LabelDomain | None:
    """The labels the production model takes; None while no production version is loaded."""
    try:
        model = manager.model_for_metadata()
    except ModelUnavailableError:
        return None
    return label_domain(model.metadata, f"model '{model.name}' version {model.version}")


def _oip_answer(payload: bytes, header_length: int | None) -> Answer:
    """An Open Inference Protocol answer: JSON, or with binary tensors after its header."""
    if header_length is None:
        return Answer(payload)
    return Answer(
        payload,
        headers={"Inference-Header-Content-Length": str(header_length)},
        media_type="application/octet-stream",
    )


def _as_get(method: str) -> str:
    """The method a route's grammar is matched with: ``HEAD`` is ``GET`` whose answer has
    no body (RFC 9110 §9.3.2; the door leaves the body out).

    >>> _as_get("HEAD"), _as_get("POST")
    ('GET', 'POST')
    """
    return "GET" if method == "HEAD" else method


def _tfserving_path(rest: str, method: str) -> tfserving.ModelPath | None:
    """TF Serving's URL grammar (:func:`~mooring.serving._protocols.tfserving.parse_path`)."""
    return tfserving.parse_path(rest)


def _v2_path(rest: str, method: str) -> v2.Endpoint:
    """The Open Inference Protocol's URL grammar, ``HEAD`` read as ``GET``."""
    return v2.parse_path(rest, _as_get(method))


#: Every endpoint, in the order Starlette tries them (the feedback route before the TF
#: Serving catch-all under the same prefix, the OpenAPI document before the v2 one).
#: Health, metrics and the OpenAPI document are not counted as requests (unguarded).
ROUTES = Routes(
    (
        RouteSpec("/v1/models/{name}:feedback", ("POST",), "feedback", Endpoints.feedback),
        RouteSpec(
            "/v1/models/{rest:path}",
            ("GET", "POST"),
            "tfserving",
            Endpoints.tfserving,
            _tfserving_path,
            predicts=(":predict", ":classify", ":regress"),
        ),
        RouteSpec("/v2/openapi.json", ("GET",), "openapi", Endpoints.openapi, guarded=False),
        RouteSpec(
            "/v2/{rest:path}", ("GET", "POST"), "v2", Endpoints.v2, _v2_path, predicts=("/infer",)
        ),
        RouteSpec("/v2", ("GET",), "v2", Endpoints.v2, _v2_path),
        RouteSpec("/metrics", ("GET",), "metrics", Endpoints.metrics, guarded=False),
        RouteSpec("/healthz", ("GET",), "health", Endpoints.health, guarded=False),
        RouteSpec("/admin/{action}", ("GET", "POST"), "admin", Endpoints.admin),
    )
)
