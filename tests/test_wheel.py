"""The first thing a pip user does: install the built wheel into a fresh environment,
outside any checkout, and run ``mooring demo`` from an empty folder.

The fresh environment takes mooring from the wheel alone; its dependencies come from the
suite's environment, which saves downloading TensorFlow again: a path line to a folder
that links only the distributions ``pip install mooring-ml`` brings (the core's requirements
and theirs, no extra), so a command that needs an extra fails here as on a user's machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests._support.docs_pages import ROOT

# One worker builds the wheel once for both tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]

# TensorFlow's native start-up lines (absl, oneDNN, CUDA probes) and Python's warnings.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl|[IWEF]\d{4} |.*\.py:\d+: \w*Warning)", re.M
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what the sdist holds: setuptools writes build/ and *.egg-info
    # beside the sources, which must not touch the checkout or race another build.
    source = out / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "MANIFEST.in"):
        shutil.copy2(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*command, "--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("mooring_ml-*.whl")
    return built


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
    assert not any(n.startswith("tests/") for n in names)


def core_site(folder: Path) -> Path:
    """A folder linking the top-level entries of the core's dependency closure, no extra."""
    wanted = [Requirement(r) for r in metadata.requires("mooring-ml") or []]
    seen: set[str] = set()
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        wanted += [Requirement(r) for r in metadata.requires(name) or []]
    folder.mkdir()
    for known in seen:
        dist = metadata.distribution(known)
        base = Path(str(dist.locate_file("")))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            link, target = folder / top, base / top
            if not link.exists() and target.exists() and not top.endswith(".pth"):
                link.symlink_to(target)
    return folder


def test_pip_install_then_mooring_demo_from_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=120)
    python = fresh / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    core = core_site(tmp_path / "core")
    assert not (core / "tensorboard").exists() and not (core / "ydf").exists()
    assert (core / "tensorflow").exists()
    Path(site, "core-dependencies.pth").write_text(f"{core}\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MOORING_TF"))}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env["PATH"] = os.pathsep.join([str(fresh / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(fresh)
    env["COLUMNS"] = "120"

    where = subprocess.run(
        ["python", "-c", "import mooring; print(mooring.__file__)"],
        capture_output=True,
        text=True,
        cwd=empty,
        env=env,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(fresh), where  # the wheel's, not the checkout's

    demo = subprocess.run(
        ["mooring", "demo", "first-demo"],
        capture_output=True,
        text=True,
        cwd=empty,
        env=env,
        timeout=900,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-6000:]
    assert not NOISE.search(output), NOISE.search(output)
    assert "Traceback" not in output
    assert "monitor decision:" in output
    assert re.search(r"serving: +production 1\b", output), output[-2000:]
    made = empty / "first-demo"
    assert (made / "mooring.toml").is_file()
    assert (made / ".mooring" / "registry.db").is_file()
