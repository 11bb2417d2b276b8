"""Serving fixtures: real SavedModels, a real SQLite registry and real servers (mooring's own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mooring.serving import RegistrySource, build_app
from tests._support.server import FAST, NAME, ServerThread, model_dirs, new_registry

__all__ = ["model_dirs"]  # a fixture, used by the tests here


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Iterator[ServerThread]:
    """A server following a registry whose production version is 1."""
    root = tmp_path_factory.mktemp("registry")
    reg = new_registry(root, model_dirs)
    reg.deploy(NAME, production=1)
    app = build_app([RegistrySource(reg, NAME)], FAST, registry=reg)
    with ServerThread(app) as running:
        running.wait_ready()
        yield running
    reg.close()
