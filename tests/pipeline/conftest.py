"""Pipeline fixtures: the small Adult files, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._support.project import write_adult


@pytest.fixture(scope="session")
def small_adult(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_adult(tmp_path_factory.mktemp("adult-small"))
