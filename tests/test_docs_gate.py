"""The docs gate fails on a warning: ``make docs``'s own recipe, run on a tiny MkDocs
project, stops on a page with a broken link and names the page, and passes without it.

The recipe is read from the Makefile (``make -n``), so the test follows the gate: a flag
that lets warnings through (``--quiet``, which in MkDocs 1.6 drops them before strict
mode counts them) fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gate_recipe() -> str:
    """The shell lines ``make docs`` runs, with this venv as the Makefile's ``VENV``
    (its install stamp taken as made, so only the docs recipe prints)."""
    venv = Path(sys.prefix)
    make = ["make", "--no-print-directory", "-s", "-n", "-C", str(ROOT)]
    printed = subprocess.run(
        [*make, "-o", f"{venv}/.installed", "docs", f"VENV={venv}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "mkdocs build" in printed, f"make docs no longer builds with mkdocs: {printed!r}"
    return printed


@pytest.fixture(scope="module")
def recipe() -> str:
    return _gate_recipe()


def _project(folder: Path, link: str) -> Path:
    """Two pages in the default theme; the guide links to ``link``."""
    (folder / "docs").mkdir(parents=True)
    (folder / "mkdocs.yml").write_text(
        "site_name: gate check\nnav:\n  - Home: index.md\n  - Guide: guide.md\n"
    )
    (folder / "docs" / "index.md").write_text("# Home\n\nRead [the guide](guide.md).\n")
    (folder / "docs" / "guide.md").write_text(f"# Guide\n\nBack [home]({link}).\n")
    return folder


def _build(recipe: str, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -e\n" + recipe],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_broken_link_in_a_page_fails_the_gate_naming_the_page(
    recipe: str, tmp_path: Path
) -> None:
    built = _build(recipe, _project(tmp_path, "missing.md"))
    output = built.stdout + built.stderr
    assert built.returncode != 0, f"the gate passed a broken link: {output}"
    assert "WARNING" in output and "'guide.md'" in output and "'missing.md'" in output, output


def test_the_same_project_without_the_broken_link_passes_the_gate(
    recipe: str, tmp_path: Path
) -> None:
    built = _build(recipe, _project(tmp_path, "index.md"))
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "WARNING" not in output, output
