"""Fixtures shared by every layer's tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from mooring.contract._io import ReadOptions
from tests._support.shared import built_once, shared_root

if TYPE_CHECKING:
    from mooring.training._fit import TrainingResult

# Tests never assert wall-clock times, and Hypothesis's per-example deadline is one: on a
# loaded 2-core machine a 0.03 ms example once took 428 ms and failed the suite.
settings.register_profile("mooring", deadline=None)
settings.load_profile("mooring")

# `mooring serve` starts one worker per usable core by default; the tests that spawn a
# server measure one process unless they ask for more (tests/serving/test_workers.py).
# An environment that sets its own value keeps it.
os.environ.setdefault("WEB_CONCURRENCY", "1")

ROOT = Path(__file__).resolve().parent.parent
ADULT = ROOT / "examples" / "adult"

# Processes the tests start import TensorFlow without Keras's scikit-learn wrappers, as
# in a user's install (tests/_support/subprocess_site/sitecustomize.py).
_SITE = str(ROOT / "tests" / "_support" / "subprocess_site")
if _SITE not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (_SITE, os.environ.get("PYTHONPATH", "")) if p
    )


@pytest.fixture(scope="session")
def adult_dir() -> Path:
    return ADULT


@pytest.fixture(scope="session")
def adult_train() -> Path:
    return ADULT / "adult.data.csv.gz"


@pytest.fixture(scope="session")
def adult_test() -> Path:
    return ADULT / "adult.test.csv.gz"


@pytest.fixture(scope="session")
def adult_options() -> ReadOptions:
    return ReadOptions(na_values=("?", ""))


@pytest.fixture(scope="session")
def adult_training(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., TrainingResult]:
    """Adult trained by ``train_adult`` once per (workers, kind) for the whole run, shared
    by every test (and xdist worker) that compares against it; read-only."""
    from mooring.training._fit import load_run
    from tests._support.distributed import train_adult

    root = shared_root(tmp_path_factory) / "adult-training"

    def trained(workers: int, kind: str = "mlp") -> TrainingResult:
        def build(out: Path) -> None:
            train_adult(out, workers=workers, kind=kind)

        return load_run(built_once(root / f"{kind}-{workers}-workers", build))

    return trained
