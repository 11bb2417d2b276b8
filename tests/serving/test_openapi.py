"""Schemathesis drives a real ``mooring serve`` from an OpenAPI document of its v2 endpoints.

``openapi/v2.yaml`` describes the Open Inference Protocol's REST endpoints as mooring
serves them. Every generated request (valid ones, and ones that break the schema) must
get an answer that is not a 5xx and that matches the document's response schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mooring.serving import DirectorySource, build_app
from tests._support.server import FAST, NAME, ServerThread

SCHEMA = schemathesis.openapi.from_path(Path(__file__).parent / "openapi" / "v2.yaml")
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


@SCHEMA.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_schema_and_never_5xx(
    case: schemathesis.Case, served: ServerThread
) -> None:
    case.call_and_validate(base_url=served.url, checks=CHECKS)
