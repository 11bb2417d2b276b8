"""Benchmark smoke-test fixtures: real SavedModels for the load generator's server, and
the serving benchmarks' Adult model, trained once for the whole run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support.server import model_dirs
from tests._support.shared import built_once, shared_root

__all__ = ["bench_work", "model_dirs"]  # fixtures, used by the tests here

ROOT = Path(__file__).resolve().parents[2]


def _build(folder: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_serving.py"), "--build-model", folder],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_serving.py --build-model failed:\n{done.stderr[-3000:]}")
    (folder / "model_dir.txt").write_text(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def bench_adult(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bench_serving.py --build-model``'s folder (schema.yaml, run/model), built once."""
    return built_once(shared_root(tmp_path_factory) / "bench-adult", _build)


@pytest.fixture
def bench_work(bench_adult: Path, tmp_path: Path) -> Path:
    """A ``--work`` folder for bench_serving.py and bench_overload.py: their servers'
    files go here, and the shared model (``model_dir.txt``) is reused, not trained."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("schema.yaml", "model_dir.txt"):
        shutil.copy2(bench_adult / name, work / name)
    return work
