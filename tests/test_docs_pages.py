"""The tutorials and how-to guides run: every bash and python block, in order, as a
reader would paste them, with real servers on 127.0.0.1 (``tests/_support/docs_pages``).

A block that cannot run here says why in a ``docs-test: skip`` comment above it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._support.docs_pages import ROOT, blocks, prepare_adult_run, run_page, runnable
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
def adult_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/adult's state after one `mooring run`, for the whole session."""
    checkout = built_once(shared_root(tmp_path_factory) / "docs-adult-run", prepare_adult_run)
    return checkout / "examples" / "adult" / ".mooring"


@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=_id)
def test_the_page_runs_as_written(page: Path, tmp_path: Path, adult_run: Path) -> None:
    outcome = run_page(page, tmp_path, timeout_s=600, prepared=adult_run)
    assert outcome.returncode == 0, outcome.output[-6000:]
    # Nothing the page started (a server in the background included) crashed on the way.
    assert "Traceback (most recent call last)" not in outcome.output, outcome.output[-6000:]
