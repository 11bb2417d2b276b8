"""What the built wheel holds and which Pythons it claims.

The wheel is built by ``tests/_support/wheel.py``, as ``make wheel`` builds it. Installing
it with pip in a fresh venv and running ``mooring demo`` on every claimed Python is
``make matrix`` (``tests/_support/matrix.py``), a stage of ``make test`` of its own: a real
install per Python costs minutes of downloads and TensorFlow's bytecode, which the unit
stage has no room for. The claims those runs back (the classifiers, ``requires-python``,
the Install page) are checked here against the Makefile's ``MATRIX_PYTHONS``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

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
    # Without the site, which make docs may be rewriting beside the unit tests.
    return build(tmp_path_factory.mktemp("wheel"), site=False)


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


def _installs(found: dict[str, Any], what: str) -> bool:
    return bool(found[what]["ok"])


def test_the_install_page_says_what_pips_resolver_answered() -> None:
    data = json.loads((ROOT / "docs/gen/platforms.json").read_text())
    page = (ROOT / "docs/getting-started/install.md").read_text()
    assert "<!-- mooring:platforms -->" in page  # the table, rendered from the JSON
    assert SpecifierSet(data["wheel"]["requires_python"]) == SpecifierSet(
        PROJECT["requires-python"]
    ), (
        "docs/gen/platforms.json was made for another requires-python: run "
        "python docs/gen/platforms.py on a wheel of this tree (make wheel)"
    )
    extras = set(PROJECT["optional-dependencies"]) - {"dev", "docs"}
    assert set(data["extras"]) == extras

    results = {
        name: (entry["label"], entry["pythons"]) for name, entry in data["platforms"].items()
    }

    def everywhere(pythons: dict[str, Any], what: str) -> bool:
        return all(_installs(pythons[python], what) for python in MATRIX)

    # The Pythons the core installs on, on some platform, are the tested ones.
    core = sorted(
        {
            p
            for _, pythons in results.values()
            for p, found in pythons.items()
            if found["core"]["ok"]
        }
    )
    assert core == MATRIX
    listed = ", ".join(MATRIX[:-1]) + f" and {MATRIX[-1]}"
    assert f"on Python {listed}," in page

    def lowest(prefix: str, what: str, suffix: str = "") -> float:
        versions = [
            float(label.rsplit(" ", 1)[-1] if "glibc" in label else label.split()[1])
            for name, (label, pythons) in results.items()
            if name.startswith(prefix) and name.endswith(suffix) and everywhere(pythons, what)
        ]
        return min(versions) if versions else float("inf")

    def below_fails(prefix: str, what: str, bound: float, suffix: str = "") -> None:
        for name, (label, pythons) in results.items():
            version = float(label.rsplit(" ", 1)[-1] if "glibc" in label else label.split()[1])
            if name.startswith(prefix) and name.endswith(suffix) and version < bound:
                assert not any(_installs(pythons[p], what) for p in MATRIX), label

    # Linux: the same glibc bound on both architectures, and it is the one the page says.
    glibc = {lowest(f"linux-{arch}", "core") for arch in ("x86_64", "aarch64")}
    assert len(glibc) == 1, glibc
    (bound,) = glibc
    assert f"on Linux (x86_64 or aarch64) with\nglibc ≥ {bound:.2f}" in page
    for arch in ("x86_64", "aarch64"):
        below_fails(f"linux-{arch}", "core", bound)
    mac = lowest("macos", "core", "-arm64")
    assert f"macOS {mac:.0f} or later on Apple Silicon" in page
    assert not any(
        _installs(found, "core")
        for name, (_, pythons) in results.items()
        if name.endswith("x86_64") and name.startswith("macos")
        for found in pythons.values()
    )
    # trees: Linux x86_64, and Apple Silicon from the macOS version the page names.
    trees_mac = lowest("macos", "trees", "-arm64")
    below_fails("macos", "trees", trees_mac, "-arm64")
    assert f"macOS {trees_mac:.0f} on Apple Silicon only" in page
    assert lowest("linux-aarch64", "trees") == float("inf")
    assert "no wheels for Linux aarch64" in page


def test_the_platform_table_names_what_pip_cannot_install_and_why() -> None:
    ok = {"ok": True, "versions": {}}
    missing = {"ok": False, "reason": "No matching distribution found for ydf-tf<2.22,>=2.21"}
    every = dict.fromkeys(platforms.EXTRAS, ok)
    found = {
        "3.11": {"core": ok, **every},
        "3.12": {"core": ok, **every, "trees": missing, "all": missing},
        "3.13": {"core": {"ok": False, "reason": missing["reason"].replace("ydf-tf", "numpy")}},
        "3.14": {
            "core": {"ok": False, "reason": "Package 'mooring-ml' requires a different Python"},
            "without_requires_python": {
                "ok": False,
                "reason": "No matching distribution found for datasketches<6,>=5.1",
            },
        },
    }
    data = {
        "date": "2026-11-29",
        "pip": "26.3",
        "index": platforms.INDEX,
        "wheel": {"file": "mooring_ml-0.1.0-py3-none-any.whl", "requires_python": ">=3.11"},
        "platforms": {"macos14-arm64": {"label": "macOS 14 arm64", "pythons": found}},
    }
    table = platforms.render(data)
    row = next(line for line in table.splitlines() if line.startswith("| macOS 14 arm64 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    assert cells == [
        "yes, every extra",
        "yes; not `trees` (no wheel of `ydf-tf`)",
        "no: no wheel of `numpy`",
        "no: outside `requires-python` (without it: no wheel of `datasketches`)",
    ]
    assert f"Python {MATRIX[0]} (tested)" in table and "Python 3.14 |" in table


def test_make_matrix_skips_a_missing_python_and_fails_on_it_where_required(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "tests._support.matrix", "unused.whl", "3.99"]
    command += ["--out", str(tmp_path / "matrix.json"), "--work", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "MOORING_REQUIRE_PYTHONS"}
    skipped = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "Python 3.99: not found (pyenv install 3.99, or put python3.99 on PATH); skipped" in (
        skipped.stdout
    )
    env["MOORING_REQUIRE_PYTHONS"] = "1"
    required = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert required.returncode == 1
    assert "failed on Python 3.99" in required.stdout
    recorded = json.loads((tmp_path / "matrix.json").read_text())
    assert recorded["pythons"]["3.99"] == {"ok": False, "error": "not found"}
