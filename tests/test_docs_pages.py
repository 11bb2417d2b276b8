"""The tutorials and how-to guides run: every bash and python block, in order, as a
reader would paste them, with real servers on 127.0.0.1 (``tests/_support/docs_pages``).

A block that cannot run here says why in a ``docs-test: skip`` comment above it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._support.docs_pages import ROOT, blocks, prepare_tutorial, run_page, runnable
from tests._support.shared import built_once, shared_root

PAGES = sorted(
    [ROOT / "README.md"]
    + [
        page
        for folder in ("getting-started", "tutorials", "how-to")
        for page in (ROOT / "docs" / folder).glob("*.md")
    ]
)


def _id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_block_is_run_or_says_why_not(page: Path) -> None:
    for block in blocks(page):
        where = f"{_id(page)}:{block.line}"
        if block.language in ("sh", "shell", "console", "py", "python3"):
            pytest.fail(f"{where}: write ```bash or ```python, not ```{block.language}")
        assert block.skip is None or block.skip.strip(), where


@pytest.fixture(scope="session")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's first part (up to its first `mooring run`), run once per session:
    where the tutorial goes on and every other page starts."""
    return built_once(shared_root(tmp_path_factory) / "docs-tutorial", prepare_tutorial)


# One worker runs the pages one after another: none waits for another worker's tutorial.
@pytest.mark.xdist_group("docs-pages")
@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=_id)
def test_the_page_runs_as_written(page: Path, tmp_path: Path, tutorial: Path) -> None:
    outcome = run_page(page, tmp_path, timeout_s=600, prepared=tutorial)
    assert outcome.returncode == 0, outcome.output[-6000:]
    # Nothing the page started (a server in the background included) crashed on the way.
    assert "Traceback (most recent call last)" not in outcome.output, outcome.output[-6000:]
