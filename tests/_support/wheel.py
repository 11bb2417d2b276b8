"""The one place the wheel and the sdist are built: ``make wheel`` and the wheel tests.

setuptools writes ``build/`` and ``*.egg-info`` beside the sources it builds, so the build
runs on a copy of what the sdist holds (``src/``, the metadata files), never in the
checkout, and two builds never race. Whatever ``src/mooring/_site`` holds when it runs (the
documentation site ``make docs`` builds) goes into the wheel.

Example::

    python -m tests._support.wheel dist      # dist/mooring_ml-0.9.0-py3-none-any.whl and .tar.gz
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the sdist holds besides src/ (MANIFEST.in prunes tests/).
METADATA_FILES = ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "MANIFEST.in")


def build(out: Path, *, sdist: bool = False, site: bool = True) -> Path:
    """Build the wheel (and the sdist when asked) into ``out``; return the wheel's path.

    The previous builds of mooring-ml in ``out`` are removed first, so the folder holds
    exactly one wheel. ``site=False`` leaves the documentation site out: the unit tests
    build while ``make docs`` may be rewriting it, in ``make test``.
    """
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("mooring_ml-*.whl"), *out.glob("mooring_ml-*.tar.gz")]:
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="mooring-wheel-") as scratch:
        source = Path(scratch) / "source"
        ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", *([] if site else ["_site"]))
        shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
        for name in METADATA_FILES:
            shutil.copy2(ROOT / name, source / name)
        # The build backend and wheel come from the running environment (the dev venv):
        # no isolated environment to download for each build.
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        _run([*command, "--quiet", "--wheel-dir", str(out), str(source)], source)
        if sdist:
            code = "from setuptools import build_meta as b; import sys; b.build_sdist(sys.argv[1])"
            _run([sys.executable, "-c", code, str(out)], source)
    (wheel,) = out.glob("mooring_ml-*.whl")
    return wheel


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"building mooring-ml failed: {' '.join(command)}\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=ROOT / "dist")
    args = parser.parse_args()
    wheel = build(args.out, sdist=True)
    site = "with" if (ROOT / "src/mooring/_site/index.html").is_file() else "WITHOUT"
    print(f"{wheel} ({wheel.stat().st_size / 1e6:.1f} MB, {site} the documentation site)")


if __name__ == "__main__":
    main()
