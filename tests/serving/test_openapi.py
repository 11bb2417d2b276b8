"""The OpenAPI document of the v2 endpoints: shipped in the package, served at
``GET /v2/openapi.json``, and the one schemathesis drives a real server from.

Every generated request (valid ones, and ones that break the schema) must get an answer
that is not a 5xx and that matches the document's response schemas. The served bytes are
the shipped file's, and the document's operations are exactly the ones the server
answers: each is answered (not 404 or 405), and each endpoint of the v2 grammar
(:data:`mooring.serving._protocols.v2.MODEL_ENDPOINTS`) and of the route table is in it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Match, Route

from mooring.serving import DirectorySource, build_app
from mooring.serving._endpoints import ROUTES
from mooring.serving._openapi import OPENAPI_PATH
from mooring.serving._protocols.v2 import MODEL_ENDPOINTS, parse_path
from tests._support.server import FAST, NAME, ServerThread

SHIPPED = (resources.files("mooring.serving") / "openapi.json").read_bytes()
DOCUMENT: dict[str, Any] = json.loads(SHIPPED)


def _for_the_served_model(document: dict[str, Any]) -> dict[str, Any]:
    """The shipped document with ``model_name`` narrowed to the model served here, so the
    generated requests reach it rather than 404 nearly always."""
    narrowed = copy.deepcopy(document)
    narrowed["components"]["parameters"]["model_name"]["schema"] = {
        "type": "string",
        "enum": [NAME],
    }
    return narrowed


SCHEMA = schemathesis.openapi.from_dict(_for_the_served_model(DOCUMENT))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture(scope="module")
def served(model_dirs: dict[str, Path]) -> Iterator[ServerThread]:
    app = build_app([DirectorySource(model_dirs["a"], NAME)], FAST)
    with ServerThread(app) as server:
        server.wait_ready()
        yield server


@SCHEMA.exclude(path_regex="/explain$").parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_schema_and_never_5xx(
    case: schemathesis.Case, served: ServerThread
) -> None:
    case.call_and_validate(base_url=served.url, checks=CHECKS)


# An explanation runs the model a few dozen times: fewer examples, the same checks (the
# request body is infer's, which the test above covers at length).
@SCHEMA.include(path_regex="/explain$").parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_explain_operation_answers_within_its_schema_and_never_5xx(
    case: schemathesis.Case, served: ServerThread
) -> None:
    case.call_and_validate(base_url=served.url, checks=CHECKS)


def test_the_server_serves_the_shipped_document(served: ServerThread) -> None:
    answer = served.client.get(OPENAPI_PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == SHIPPED
    assert DOCUMENT["paths"][OPENAPI_PATH]["get"]["responses"]["200"]


def _operations() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method != "parameters"
    }


def test_the_document_lists_every_v2_endpoint_and_no_other() -> None:
    wanted = {
        (OPENAPI_PATH, "get"),
        ("/v2", "get"),
        ("/v2/health/live", "get"),
        ("/v2/health/ready", "get"),
    }
    for tail, (_, method) in MODEL_ENDPOINTS.items():
        for model in (
            "/v2/models/{model_name}",
            "/v2/models/{model_name}/versions/{model_version}",
        ):
            wanted.add(("/".join([model, *tail]), method.lower()))
    assert _operations() == wanted
    # Each one is the kind the server's own grammar reads from it, on its method.
    for path, method in wanted - {(OPENAPI_PATH, "get")}:
        rest = path.removeprefix("/v2").lstrip("/")
        rest = rest.replace("{model_name}", NAME).replace("{model_version}", "1")
        assert parse_path(rest, method.upper()).kind not in {"unknown"}, path
    # Every route of the table under /v2 takes some documented operation.
    for spec in ROUTES:
        if spec.path.startswith("/v2"):
            route = Route(spec.path, lambda request: None, methods=list(spec.methods))
            assert any(
                route.matches({"type": "http", "path": path, "method": method.upper()})[0]
                is Match.FULL
                for path, method in wanted
            ), spec.path


def test_every_documented_operation_is_answered(served: ServerThread) -> None:
    version = served.client.get(f"/v2/models/{NAME}").json()["versions"][0]
    for path, method in sorted(_operations()):
        url = path.replace("{model_name}", NAME).replace("{model_version}", str(version))
        answer = served.client.request(method.upper(), url, json={} if method == "post" else None)
        assert answer.status_code not in {404, 405}, (method, url, answer.text)
        assert str(answer.status_code) in DOCUMENT["paths"][path][method]["responses"]
