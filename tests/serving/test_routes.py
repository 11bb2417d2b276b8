"""One route table: the door's admission, the fast path, the ASGI shortcut and Starlette's
router all read what a prediction is from ``mooring.serving._endpoints.ROUTES``.

The table's two readers (on text and on the door's raw bytes) agree on any path; the
app's Starlette routes are the table's, each running the row's own handler; and a real
server answers every endpoint alike by the three roads a request can take (read by the
door, dispatched before the router, routed by Starlette).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from mooring.config import ServingConfig
from mooring.serving import DirectorySource, build_app
from mooring.serving._endpoints import ROUTES
from tests._support.server import NAME, ServerThread
from tests._support.serving_model import row

prediction, door_route = ROUTES.prediction, ROUTES.door

_SEGMENTS = st.sampled_from(
    ["", "v1", "v2", "models", NAME, "versions", "2", "infer", "ready", "admin", "x%20y"]
)
_ENDINGS = st.sampled_from(["", ":predict", ":classify", ":regress", ":feedback", "/infer", ":x"])


@settings(max_examples=300)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "post"]),
    segments=st.lists(_SEGMENTS, max_size=5),
    ending=_ENDINGS,
    query=st.sampled_from(["", "?a=1", "?x=:predict"]),
)
def test_the_door_and_the_app_agree_on_what_a_prediction_is(
    method: str, segments: list[str], ending: str, query: str
) -> None:
    path = "/" + "/".join(segments) + ending
    parsed = prediction(method, path)
    matched = door_route(method.encode(), (path + query).encode())
    # The door matches the decoded path, as the ASGI scope holds it.
    decoded = prediction(method, unquote(path))
    assert (matched is None) == (decoded is None)
    if decoded is not None and matched is not None:
        assert (matched.route, matched.rest, matched.path) == (
            decoded.route,
            decoded.rest,
            unquote(path),
        )
    if parsed is not None:
        assert path == parsed.route.prefix + parsed.rest


@pytest.mark.parametrize(
    ("method", "path", "protocol"),
    [
        ("POST", f"/v1/models/{NAME}:predict", "tfserving"),
        ("POST", f"/v1/models/{NAME}/versions/2:classify", "tfserving"),
        ("POST", f"/v1/models/{NAME}:regress", "tfserving"),
        ("POST", f"/v2/models/{NAME}/versions/2/infer", "v2"),
        ("GET", f"/v1/models/{NAME}:predict", None),
        ("POST", f"/v1/models/{NAME}:feedback", None),
        ("POST", "/admin/deployment", None),
        ("POST", "/v1/models/", None),
        ("POST", "/infer", None),
        ("GET", "/v2/health/ready", None),
    ],
)
def test_predictions_and_everything_else(method: str, path: str, protocol: str | None) -> None:
    parsed = prediction(method, path)
    assert (parsed.route.protocol if parsed else None) == protocol


def test_starlettes_routes_are_the_table_and_run_each_rows_handler(
    model_dirs: dict[str, Path],
) -> None:
    app = build_app([DirectorySource(model_dirs["a"], NAME)], ServingConfig())
    routes = [r for r in app.routes if isinstance(r, Route)]
    built = [(r.path, sorted((r.methods or set()) - {"HEAD"})) for r in routes]
    assert built == [(r.path, sorted(r.methods)) for r in ROUTES]
    for route, spec in zip(routes, ROUTES, strict=True):
        endpoint = route.endpoint
        assert isinstance(endpoint, functools.partial)
        # A guarded row runs in the endpoints' guard with its spec; the others are the
        # handler itself.
        assert (endpoint.args[-1] is spec) if spec.guarded else (endpoint.func is spec.handler)
    # Each row's handler and grammar are the callables themselves, not names.
    assert all(callable(spec.handler) and callable(spec.grammar) for spec in ROUTES)
    assert len({spec.handler for spec in ROUTES}) == len({spec.path for spec in ROUTES}) - 1


@pytest.fixture(scope="module")
def roads(model_dirs: dict[str, Path]) -> Iterator[dict[str, ServerThread]]:
    """The same server three times: as served (the door reads plain predictions), with the
    door's fast path off (the ASGI shortcut), and with the shortcut off too (Starlette's
    router)."""
    cfg = ServingConfig(warmup_requests=1, admin_token="t0ken", feedback_token="f33d")
    servers = {}
    for road in ("door", "shortcut", "router"):
        app = build_app([DirectorySource(model_dirs["a"], NAME)], cfg)
        if road != "door":
            app.state.mooring.door.fast = None
        if road == "router":
            app.predictions = None  # type: ignore[attr-defined]
        servers[road] = ServerThread(app)
    for server in servers.values():
        server.__enter__()
        server.wait_ready()
    yield servers
    for server in servers.values():
        server.__exit__(None, None, None)


_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", f"/v1/models/{NAME}:predict", {"instances": [row()]}),
    ("POST", f"/v1/models/{NAME}:classify", {"examples": [row()]}),
    ("POST", f"/v1/models/{NAME}:regress", {"examples": [row()]}),
    ("POST", f"/v1/models/{NAME}:predict", {"instances": "not rows"}),
    ("POST", "/v1/models/nobody:predict", {"instances": [row()]}),
    ("GET", f"/v1/models/{NAME}", None),
    ("GET", f"/v1/models/{NAME}/metadata", None),
    ("POST", f"/v1/models/{NAME}", {}),
    ("GET", "/v2/health/ready", None),
    ("GET", "/v2", None),
    ("GET", f"/v2/models/{NAME}", None),
    ("POST", "/v2/infer", {}),
    ("POST", f"/v1/models/{NAME}:feedback", {"labels": []}),
    ("GET", "/admin/status", None),
    ("GET", "/healthz", None),
    ("DELETE", "/healthz", None),
    ("GET", "/nowhere", None),
]


@pytest.mark.parametrize(("method", "path", "body"), _CALLS, ids=lambda v: str(v)[:40])
def test_every_endpoint_answers_alike_by_every_road(
    roads: dict[str, ServerThread], method: str, path: str, body: dict[str, Any] | None
) -> None:
    answers = {}
    for road, server in roads.items():
        response = server.client.request(
            method, path, content=orjson.dumps(body) if body is not None else None
        )
        answer = response.json() if response.content else None
        if isinstance(answer, dict):
            answer.pop("id", None)  # OIP echoes the request id
        answers[road] = (response.status_code, answer)
    assert answers["door"] == answers["shortcut"] == answers["router"], answers
    assert answers["door"][0] < 500
