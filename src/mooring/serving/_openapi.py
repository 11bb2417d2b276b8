"""The OpenAPI document of the server's v2 REST endpoints, shipped beside this module.

``openapi.json`` describes every ``/v2`` operation ``mooring serve`` answers (the Open
Inference Protocol's, ``explain``, and ``GET /v2/openapi.json`` itself); the server
answers that route with these bytes, read once when the app is built, so a client
generator or a fuzzer reads the same document the tests check the server against.

Example:
    >>> import json
    >>> json.loads(openapi_document())["openapi"]
    '3.0.3'
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["OPENAPI_PATH", "openapi_document"]

#: The route that serves the document.
OPENAPI_PATH = "/v2/openapi.json"


@functools.cache
def openapi_document() -> bytes:
    """The bytes of ``mooring/serving/openapi.json`` (read once per process)."""
    return (resources.files("mooring.serving") / "openapi.json").read_bytes()
