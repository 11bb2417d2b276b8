"""Expensive things built once per test session and shared read-only, across xdist workers.

pytest-xdist runs the suite in two processes, each with its own session fixtures, so a
session fixture alone would build a trained project once per worker. :func:`built_once`
builds a folder under the session's shared temporary root under a file lock: the first
process to ask builds it, the others wait and reuse it. Tests that change what they get
copy it first (:func:`copy_tree`).

Example::

    @pytest.fixture(scope="session")
    def adult_run(tmp_path_factory):
        return built_once(shared_root(tmp_path_factory) / "adult-run", build_adult_run)
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

_DONE = ".built"


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temporary root that every xdist worker of this run sees."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, made by ``build(folder)`` once per run whichever process asks first.

    A build that raised leaves no marker: the next process to ask builds it again.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with folder.with_name(folder.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / _DONE).exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir()
            build(folder)
            (folder / _DONE).touch()
    return folder


def copy_tree(source: Path, target: Path) -> Path:
    """A copy of a shared build that a test may change, without the build's marker."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(_DONE), symlinks=True)
    return target
