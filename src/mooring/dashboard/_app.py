"""The dashboard's ASGI app: server-rendered pages, a live JSON endpoint and admin actions.

Pages are read-only for anyone who can reach them. The admin actions (promote, approve a
version for production, roll back, set the canary and its weight, set the shadow and its
rate) take the serving admin token as
``Authorization: Bearer …`` and a reason that goes into the registry's audit log.
No cookie or session is involved, so another site cannot make a browser act on
the user's behalf (a cross-site request cannot carry the header without a CORS
preflight, which this app never grants).

Examples:
    >>> from mooring.config import load_config
    >>> ui = create_ui(load_config("mooring.toml"))  # doctest: +SKIP
    >>> app.mount("/ui", ui)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mooring.config import MooringConfig
from mooring.dashboard import _views as views
from mooring.dashboard._drift_files import is_report_stem, read_drift_history
from mooring.dashboard._live import LiveMetrics, url_source
from mooring.dashboard._live_view import live_view
from mooring.dashboard._markdown import render_markdown
from mooring.dashboard._report_pages import served_report
from mooring.errors import (
    InvalidRequestError,
    MooringError,
    NotFoundError,
    UnauthorizedError,
    UsageError,
)
from mooring.formats._drift import drift_folder
from mooring.monitoring._shadow import shadow_lines, shadow_report
from mooring.registry import Deployment, Registry
from mooring.registry._actors import Caller, acting, admin_caller

__all__ = ["DEFAULT_ACTOR", "create_ui", "standalone_app"]

HERE = Path(__file__).resolve().parent
DEFAULT_ACTOR = "mooring-ui"
MAX_BODY = 16 * 1024
MAX_REASON = 2000

# Pages draw with their own stylesheet and script only; SVG charts use attributes, not styles.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

OnDeployment = Callable[[str, Deployment], Awaitable[None]]


class _SecurityHeaders:
    """Adds a Content-Security-Policy (unless the response set one) and related headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": PAGE_CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"x-frame-options": b"DENY",
                }
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["svg"] = Markup  # our charts escape their own text
    env.filters["slug"] = views.slug
    return env


class _Dashboard:
    """The handlers, sharing the registry, the home folder and the live metrics."""

    def __init__(
        self,
        registry: Registry,
        home: Path | None,
        admin_token: str | None,
        token_hint: str,
        live: LiveMetrics | None,
        on_deployment: OnDeployment | None,
        live_hint: str,
    ) -> None:
        self.registry = registry
        self.home = home
        self.admin_token = admin_token
        self.token_hint = token_hint
        self.live = live
        self.on_deployment = on_deployment
        self.live_hint = live_hint
        self.env = _environment()
        #: The project's config, when the dashboard was built from one (the on-call sheet).
        self.cfg: MooringConfig | None = None
        #: ``[serving] admin_tokens``: a token's sha256 → the person it authenticates.
        self.admin_tokens: dict[str, str] = {}

    # -- rendering ---------------------------------------------------------------
    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        html = self.env.get_template(template).render(
            base=base, admin_enabled=self._admin_on, **context
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def error_page(self, request: Request, exc: MooringError) -> Response:
        return self.render(
            request, "error.html", exc.http_status, title="Error", message=str(exc), model=None
        )

    def _model(self, name: str) -> Deployment:
        """The model's deployment; NotFoundError naming the registered models if it has none."""
        known = [m.name for m in self.registry.models()]
        if name not in known:
            raise NotFoundError(
                f"model '{name}' is not in the registry; registered models: "
                + (", ".join(sorted(known)) or "none yet (register one with `mooring run`)")
            )
        return self.registry.deployment(name)

    # -- pages (sync: Starlette runs them in its thread pool, off the event loop) -------------
    def index(self, request: Request) -> Response:
        try:
            rows = views.model_rows(self.registry, self.home)
        except MooringError as exc:
            return self.error_page(request, exc)
        return self.render(request, "index.html", title="Models", model=None, rows=rows)

    def model(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            deployment = self._model(name)
            versions = self.registry.versions(name)
            wanted = request.query_params.get("version")
            numbers = [mv.version for mv in versions]
            if wanted is not None and (not wanted.isdigit() or int(wanted) not in numbers):
                raise NotFoundError(
                    f"model '{name}' has no version {wanted!r}; versions: "
                    + ", ".join(map(str, numbers))
                )
            selected_number = (
                int(wanted)
                if wanted is not None
                else deployment.production or (numbers[-1] if numbers else None)
            )
            selected = (
                self.registry.get(name, version=selected_number)
                if selected_number is not None
                else None
            )
            events = self.registry.history(name, limit=200)
        except MooringError as exc:
            return self.error_page(request, exc)
        metric, chart = views.metric_chart(versions)
        return self.render(
            request,
            "model.html",
            title=name,
            model=name,
            tab="overview",
            deployment=deployment,
            versions=views.version_rows(versions, deployment, events),
            numbers=numbers,
            columns=views.ordered_metrics(versions),
            metric=metric,
            metric_chart=chart,
            metric_note=views.metric_note(versions, metric),
            selected=selected,
            lineage=views.lineage_rows(selected) if selected else [],
            chain=views.parent_chain(versions, selected.version) if selected else [],
            card=Markup(render_markdown(selected.model_card or "", heading_offset=2))
            if selected
            else "",
            selected_gates=views.gate_rows(selected.gate) if selected else [],
            selected_report=selected is not None and views.report_reference(selected) is not None,
            history=views.history_rows(events),
            token_hint=self.token_hint,
            shadow_lines=self._shadow_lines(deployment),
            rollout=views.rollout_panel(self.home, name, deployment),
            estimate=views.estimate_panel(self.home, name),
        )

    def _shadow_lines(self, deployment: Deployment) -> list[str]:
        """The shadow report from the prediction log (needs the project's config)."""
        if deployment.shadow is None or self.cfg is None:
            return []
        cfg = self.cfg
        log_url = cfg.serving.log_url or str(cfg.home / "predictions")
        try:
            report = shadow_report(cfg, self.registry, log_url, None, deployment=deployment)
        except MooringError as exc:
            return [f"shadow report unavailable: {exc}"]
        return shadow_lines(report.to_dict())

    def report(self, request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params["version"]
        try:
            self._model(name)
            mv = self.registry.get(name, version=version)
            path = views.evaluation_report(mv, self.home)
            if path is None:
                reference = views.report_reference(mv)
                raise NotFoundError(
                    f"{mv.ref} has no evaluation report here"
                    + (
                        f" (recorded path {reference!r} is missing or outside the project home)"
                        if reference
                        else "; record its folder as run_record['evaluation_report'] "
                        "when registering"
                    )
                )
        except MooringError as exc:
            return self.error_page(request, exc)
        back = f"{request.scope.get('root_path', '').rstrip('/')}/models/{quote(name, safe='')}"
        label = f"{name} v{version} on the dashboard"
        return served_report(path, href=f"{back}?version={version}#version-h", label=label)

    def drift(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            deployment = self._model(name)
        except MooringError as exc:
            return self.error_page(request, exc)
        base = request.scope.get("root_path", "").rstrip("/")
        history = read_drift_history(self.home, name) if self.home is not None else None
        view = (
            views.drift_view(
                history,
                metric=request.query_params.get("metric"),
                run=request.query_params.get("run"),
                base=base,
            )
            if history is not None
            else None
        )
        folder = drift_folder(self.home, name) if self.home is not None else None
        return self.render(
            request,
            "drift.html",
            title=f"{name} drift",
            model=name,
            tab="drift",
            deployment=deployment,
            view=view,
            folder=str(folder) if folder is not None else None,
        )

    def drift_report(self, request: Request) -> Response:
        name = request.path_params["name"]
        stem = request.path_params["stem"]
        try:
            self._model(name)
            path = (
                views.inside_home(drift_folder(self.home, name) / f"{stem}.html", self.home)
                if self.home is not None and is_report_stem(stem)
                else None
            )
            if path is None:
                raise NotFoundError(f"no drift report '{stem}' for model '{name}'")
        except MooringError as exc:
            return self.error_page(request, exc)
        back = f"{request.scope.get('root_path', '').rstrip('/')}/models/{quote(name, safe='')}"
        return served_report(path, href=f"{back}/drift", label=f"{name} drift on the dashboard")

    async def live_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            deployment = await asyncio.to_thread(self._model, name)
        except MooringError as exc:
            return self.error_page(request, exc)
        data = None
        if self.live is not None:
            await self.live.sample()
            data = live_view(self.live.series(name), deployment)
        base = request.scope.get("root_path", "").rstrip("/")
        return self.render(
            request,
            "live.html",
            title=f"{name} live",
            model=name,
            tab="live",
            deployment=deployment,
            live=data,
            live_hint=self.live_hint,
            api=f"{base}/api/models/{quote(name, safe='')}/live",
        )

    def runbook_page(self, request: Request) -> Response:
        # Imported here: the ops package loads the Grafana SDK, which the server's start
        # (and every other page) does not need.
        from mooring.ops._runbook import runbook

        name = request.path_params["name"]
        try:
            self._model(name)
            if self.cfg is None:
                raise NotFoundError(
                    "the on-call sheet is written from the project's mooring.toml; open the "
                    "dashboard with it (mooring serve -c mooring.toml, or mooring ui -c "
                    "mooring.toml)"
                )
            url = f"{request.url.scheme}://{request.url.netloc}"
            sheet = runbook(self.cfg, self.registry, name=name, config_path=self.cfg_path, url=url)
        except MooringError as exc:
            return self.error_page(request, exc)
        return self.render(
            request,
            "runbook.html",
            title=f"{name} on call",
            model=name,
            tab="runbook",
            sheet=Markup(render_markdown(sheet.markdown, heading_offset=0)),
        )

    @property
    def cfg_path(self) -> str:
        """The project's mooring.toml, as the sheet's commands name it."""
        assert self.cfg is not None
        return str(self.cfg.root / "mooring.toml")

    # -- JSON --------------------------------------------------------------------
    async def live_api(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            deployment = await asyncio.to_thread(self._model, name)
            if self.live is None:
                raise NotFoundError(f"no live metrics: {self.live_hint}")
        except MooringError as exc:
            return _json({"error": str(exc)}, exc.http_status)
        await self.live.sample()
        return _json(live_view(self.live.series(name), deployment))

    @property
    def _admin_on(self) -> bool:
        return self.admin_token is not None or bool(self.admin_tokens)

    def _authorize(self, request: Request) -> Caller:
        """Who presented the token: a person of ``admin_tokens``, or the shared token's holder."""
        if not self._admin_on:
            raise NotFoundError(f"admin actions are off; {self.token_hint}")
        try:
            return admin_caller(
                request.headers.get("authorization", ""), self.admin_token, self.admin_tokens
            )
        except UnauthorizedError:
            raise UnauthorizedError(
                "admin actions need 'Authorization: Bearer <token>' with the serving admin token"
            ) from None

    async def admin(self, request: Request) -> Response:
        try:
            caller = self._authorize(request)
            body = await self._body(request)
            name = request.path_params["name"]
            action = request.path_params["action"]
            reason = _reason(body)
            actor = acting(caller, _declared(body), DEFAULT_ACTOR)
            deployment = await asyncio.to_thread(
                self._act, name, action, body, actor=actor, reason=reason
            )
            if self.on_deployment is not None:
                await self.on_deployment(name, deployment)
            events = await asyncio.to_thread(self.registry.history, name, limit=1)
        except MooringError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else {}
            return _json({"error": str(exc)}, exc.http_status, headers)
        return _json(
            {
                "deployment": deployment.to_dict(),
                "event": events[-1].to_dict() if events else None,
            }
        )

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise InvalidRequestError(
                f"expected a JSON body (Content-Type: application/json), got {media or 'none'!r}"
            )
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise InvalidRequestError(f"the body is above {MAX_BODY} bytes; send less")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequestError("the body is not valid JSON; send an object") from None
        if not isinstance(body, dict):
            raise InvalidRequestError('expected a JSON object such as {"reason": "..."}')
        return body

    def _act(
        self, name: str, action: str, body: dict[str, Any], *, actor: str, reason: str
    ) -> Deployment:
        if action == "promote":
            return self.registry.promote(
                name, version=_integer(body, "version"), actor=actor, reason=reason
            )
        if action == "rollback":
            return self.registry.rollback(name, actor=actor, reason=reason)
        if action == "approve":  # no change of the deployment: the approval's audit event
            self.registry.approve(
                name, version=_integer(body, "version"), actor=actor, reason=reason
            )
            return self._model(name)
        if action == "canary":
            current = self._model(name)
            if current.production is None:
                raise UsageError(
                    f"model '{name}' has no production version; promote one before a canary"
                )
            raw = body.get("version")
            version = None if raw in (None, "", "none") else _integer(body, "version")
            weight = 0 if version is None else _integer(body, "weight", low=0, high=100)
            return self.registry.deploy(
                name,
                production=current.production,
                canary=version,
                weight=weight,
                actor=actor,
                reason=reason,
            )
        if action == "shadow":
            raw = body.get("version")
            version = None if raw in (None, "", "none") else _integer(body, "version")
            rate = body.get("rate", 0.1)
            if type(rate) not in (int, float):
                raise InvalidRequestError(f"rate: expected a number in (0, 1], got {rate!r}")
            return self.registry.set_shadow(
                name, version=version, rate=rate, actor=actor, reason=reason
            )
        raise NotFoundError(
            f"no admin action '{action}'; use promote, approve, rollback, canary or shadow"
        )


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequestError(
            "reason: required; say why (it is recorded in the audit log with the change)"
        )
    if len(reason) > MAX_REASON:
        raise InvalidRequestError(f"reason: {len(reason)} characters; keep it under {MAX_REASON}")
    return reason.strip()


def _declared(body: dict[str, Any]) -> str | None:
    """The actor a body declares (None: none)."""
    actor = body.get("actor")
    if actor is None or (isinstance(actor, str) and not actor.strip()):
        return None
    if not isinstance(actor, str) or len(actor) > 100 or not actor.isprintable():
        raise InvalidRequestError("actor: expected a short printable name, e.g. 'ana'")
    return actor.strip()


def _integer(body: dict[str, Any], key: str, *, low: int = 1, high: int | None = None) -> int:
    value = body.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if type(value) is not int or value < low or (high is not None and value > high):
        limit = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidRequestError(f"{key}: expected an integer {limit}, got {value!r}")
    return value


def _token_hint(cfg: MooringConfig | None) -> str:
    env = cfg.serving.admin_token_env if cfg is not None else "MOORING_ADMIN_TOKEN"
    return f"set [serving] admin_token or the {env} environment variable to turn them on"


def create_ui(
    cfg: MooringConfig | None = None,
    *,
    registry: Registry | None = None,
    home: Path | None = None,
    admin_token: str | None = None,
    admin_tokens: Mapping[str, str] | None = None,
    metrics: Callable[[], bytes | str] | None = None,
    metrics_url: str | None = None,
    on_deployment: OnDeployment | None = None,
) -> Starlette:
    """The dashboard as an ASGI app, to mount under a prefix (``/ui`` in ``mooring serve``).

    The registry and home folder come from ``cfg`` unless given. The admin token
    defaults to ``[serving] admin_token`` or its environment variable, and
    ``admin_tokens`` (a token's sha256 → the person it authenticates) to ``[serving]
    admin_tokens``; without either the admin actions are off. Live metrics come from
    ``metrics`` (a function returning the Prometheus text, as the hosting server has) or
    ``metrics_url``.
    ``on_deployment`` runs after each admin change (the hosting server applies it
    at once instead of at its next poll).

    Example::

        ui = create_ui(cfg, metrics=server_metrics.render)
        app.router.routes.append(Mount("/ui", app=ui))
    """
    if registry is None:
        if cfg is None:
            raise UsageError(
                "create_ui needs a project config or a registry; pass cfg= or registry="
            )
        registry = Registry.from_config(cfg, create=False)
    if home is None and cfg is not None:
        home = cfg.home
    if admin_token is None and cfg is not None:
        admin_token = cfg.serving.admin_token or os.environ.get(cfg.serving.admin_token_env)
    live = None
    live_hint = (
        "this dashboard has no metrics source; open it from `mooring serve` (under /ui) "
        "or start `mooring ui --metrics-url http://HOST:PORT/metrics`"
    )
    if metrics is not None:
        live = LiveMetrics(metrics, description="this server")
    elif metrics_url is not None:
        live = LiveMetrics(url_source(metrics_url), description=metrics_url)
    dash = _Dashboard(
        registry, home, admin_token or None, _token_hint(cfg), live, on_deployment, live_hint
    )
    dash.cfg = cfg
    if admin_tokens is None and cfg is not None:
        admin_tokens = cfg.serving.admin_tokens
    dash.admin_tokens = dict(admin_tokens or {})
    routes = [
        Route("/", dash.index, methods=["GET"]),
        Route("/models/{name}", dash.model, methods=["GET"]),
        Route("/models/{name}/versions/{version:int}/report", dash.report, methods=["GET"]),
        Route("/models/{name}/drift", dash.drift, methods=["GET"]),
        Route("/models/{name}/drift/reports/{stem}", dash.drift_report, methods=["GET"]),
        Route("/models/{name}/live", dash.live_page, methods=["GET"]),
        Route("/models/{name}/runbook", dash.runbook_page, methods=["GET"]),
        Route("/api/models/{name}/live", dash.live_api, methods=["GET"]),
        Route(
            "/api/models/{name}/{action:str}",
            dash.admin,
            methods=["POST"],
        ),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = f"{request.method} {request.url.path}: " + str(getattr(exc, "detail", ""))
        if request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/"):
            return _json({"error": message}, status)
        return dash.render(
            request, "error.html", status, title="Not found", message=message, model=None
        )

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.add_middleware(_SecurityHeaders)
    return app


def standalone_app(ui: Starlette) -> Starlette:
    """The dashboard alone (``mooring ui``): served under ``/ui``, with ``/`` redirecting there."""

    async def home(request: Request) -> Response:
        return RedirectResponse(url="/ui/", status_code=307)

    return Starlette(routes=[Route("/", home), Mount("/ui", app=ui)])
