"""What the built wheel holds and which Pythons it claims.

The wheel is built by ``tests/_support/wheel.py``, as ``make wheel`` builds it. Installing
it with pip in a fresh venv and running ``mooring demo`` on every claimed Python is
``make matrix`` (``tests/_support/matrix.py``), a stage of ``make test`` of its own: a real
install per Python costs minutes of downloads and TensorFlow's bytecode, which the unit
stage has no room for. The claims those runs back (the classifiers, ``requires-python``,
the Install page) are checked here against the Makefile's ``MATRIX_PYTHONS``.
"""

from __future__ import annotations

import re
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from tests._support.docs_pages import ROOT
from tests._support.wheel import build

sys.path.insert(0, str(ROOT / "docs" / "gen"))
import platforms

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
MATRIX = platforms.matrix_pythons(ROOT / "Makefile")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_the_wheel_ships_the_licence_the_notice_and_the_demo_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    for licence in ("LICENSE", "NOTICE", "src/mooring/serving/_grpc/protos/NOTICE"):
        assert f"{info}/licenses/{licence}" in names
    for data in ("mooring.toml", "adult.data.csv.gz", "adult.test.csv.gz", "README.md"):
        assert f"mooring/_demo/{data}" in names
    assert "mooring/serving/_grpc/protos/open_inference_grpc.proto" in names
    # mooring ops k8s's files (every one in the source tree) and the served OpenAPI document.
    for shipped in (ROOT / "src" / "mooring" / "ops" / "deploy").rglob("*"):
        if shipped.is_file() and "__pycache__" not in shipped.parts:
            assert shipped.relative_to(ROOT / "src").as_posix() in names
    assert "mooring/serving/openapi.json" in names
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    bound = re.search(r"^Requires-Python: (.+)$", metadata, re.M)
    assert bound is not None and SpecifierSet(bound[1]) == SpecifierSet(PROJECT["requires-python"])
    for python in MATRIX:
        assert f"Classifier: Programming Language :: Python :: {python}\n" in metadata
    assert not any(n.startswith(("tests/", "build/")) or ".egg-info/" in n for n in names)


def test_the_classifiers_name_exactly_the_pythons_make_matrix_tests() -> None:
    claimed = [
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert claimed == MATRIX, f"classifiers {claimed}, Makefile's MATRIX_PYTHONS {MATRIX}"
    allowed = SpecifierSet(PROJECT["requires-python"])
    assert all(allowed.contains(f"{python}.0") for python in MATRIX)
    # The next Python is refused by pip with "requires a different Python" until it is
    # tested, rather than failing on a dependency that has no wheel for it.
    major, minor = MATRIX[-1].split(".")
    assert not allowed.contains(f"{major}.{int(minor) + 1}.0"), allowed
