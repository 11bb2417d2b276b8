"""Fixtures shared by every layer's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooring.contract import ReadOptions

ROOT = Path(__file__).resolve().parent.parent
ADULT = ROOT / "examples" / "adult"


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
