"""Dashboard fixtures: a populated registry and home folder, the UI app and its test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mooring.dashboard._app import create_ui, standalone_app
from mooring.registry import Registry
from tests._support.server import model_dirs
from tests.dashboard._data import NAME, TOKEN, plain_folders, populate, write_drift_reports

__all__ = ["model_dirs"]  # a fixture, used by the served-dashboard tests


class Site:
    """A populated registry and home, plus a client of the standalone dashboard."""

    def __init__(self, root: Path, train: Path) -> None:
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.registry = Registry.open(
            f"sqlite:///{self.home / 'registry.db'}", artifacts=self.home / "artifacts"
        )
        populate(self.registry, self.home, plain_folders(root / "artifacts-in", 3))
        self.registry.promote(NAME, version=1, reason="first production model")
        self.registry.deploy(NAME, production=1, canary=2, weight=20, reason="try v2 on 20%")
        write_drift_reports(self.home, train)
        self.applied: list[tuple[str, int | None]] = []

        async def applied(name: str, deployment: object) -> None:
            self.applied.append((name, getattr(deployment, "production", None)))

        self.app = standalone_app(
            create_ui(
                registry=self.registry, home=self.home, admin_token=TOKEN, on_deployment=applied
            )
        )
        self.client = TestClient(self.app, base_url="http://127.0.0.1")

    def close(self) -> None:
        self.client.close()
        self.registry.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, adult_train: Path) -> Iterator[Site]:
    """One site per module; tests that change the deployment put it back."""
    built = Site(tmp_path_factory.mktemp("ui"), adult_train)
    yield built
    built.close()
