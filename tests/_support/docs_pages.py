"""The documentation's code blocks, run in order as a reader would paste them.

A page's ``bash`` blocks and ``python`` blocks become one bash script: bash blocks
verbatim, each python block saved to a file and run with ``python`` in the directory the
shell is in at that point, so ``cd``, files written and servers started with ``&`` carry
from one block to the next. The script runs with ``set -euo pipefail`` in a fresh folder
holding a copy of ``examples/`` and of the files ``make install`` reads, the suite's
``.venv`` linked in (so ``make install && source .venv/bin/activate`` is the no-op it is
on an installed checkout).

A block a test cannot run (it needs a Kubernetes cluster, Docker, an object store) is
preceded by a comment the site does not show, with the reason::

    <!-- docs-test: skip needs a Kubernetes cluster -->

The ports the docs use (8500, 8501, 8502) are replaced by free ones, so pages run side
by side.

Every page but the getting-started tutorial, which teaches the first ``mooring run``,
starts from the tutorial's project, ``adult/`` (what ``mooring demo adult --no-run``
writes), already run once (:func:`prepare_adult_run`): the page's own ``mooring run -c
mooring.toml`` then finds its steps in the pipeline's cache, as it would for a reader who
ran the tutorial first, and the suite trains Adult once instead of once per page.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests._support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
RUN_LANGUAGES = ("bash", "python")
DOC_PORTS = (8500, 8501, 8502)

_FENCE = re.compile(r"^(`{3,})(\w*)[^\n]*$")
_DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(\w[\w-]*)\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, its text, the line its fence opens on,
    and why it is not run (``None``: it is)."""

    language: str
    code: str
    line: int
    skip: str | None


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the ``docs-test`` directive right above it."""
    lines = page.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        ticks, language = fence.group(1), fence.group(2)
        end = i + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        skip = None
        above = i - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        directive = _DIRECTIVE.match(lines[above].strip()) if above >= 0 else None
        if directive is not None:
            if directive.group(1) != "skip":
                raise ValueError(f"{page}:{above + 1}: unknown docs-test directive")
            skip = directive.group(2)
            if not skip:
                raise ValueError(f"{page}:{above + 1}: a skipped block says why")
        out.append(Block(language, "\n".join(lines[i + 1 : end]) + "\n", i + 1, skip))
        i = end + 1
    return out


def runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.language in RUN_LANGUAGES and b.skip is None]


def script(page: Path, scratch: Path, ports: dict[int, int]) -> str:
    """The page's runnable blocks as one bash script; python blocks go to ``scratch``."""

    def ported(code: str) -> str:
        for doc_port, port in ports.items():
            code = re.sub(rf"\b{doc_port}\b", str(port), code)
        return code

    name = page.relative_to(ROOT).as_posix()
    parts = [
        "set -euo pipefail",
        "trap 'echo \"docs-test: $DOCS_AT failed: $BASH_COMMAND\" >&2' ERR",
    ]
    for n, block in enumerate(runnable(page)):
        parts.append(f"DOCS_AT='{name}:{block.line}'; echo \"### $DOCS_AT at ${{SECONDS}} s\"")
        if block.language == "bash":
            parts.append(ported(block.code))
        else:
            path = scratch / f"block_{n}_line_{block.line}.py"
            path.write_text(ported(block.code))
            parts.append(f'python "{path}"')
    return "\n".join(parts) + "\n"


#: Pages that teach the first ``mooring run`` themselves: they start from no state.
OWN_RUN = ("docs/getting-started/tutorial.md",)


def prepare_adult_run(shared: Path) -> None:
    """A checkout in ``shared`` whose ``examples/adult`` has been run once."""
    checkout(shared)
    done = subprocess.run(
        [sys.executable, "-m", "mooring", "run", "-c", "mooring.toml"],
        cwd=shared / "examples" / "adult",
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mooring run on examples/adult failed:\n{done.stdout}{done.stderr}")


def checkout(root: Path) -> None:
    """A folder laid out as an installed checkout: examples/, the Makefile, .venv."""
    shutil.copytree(ROOT / "examples", root / "examples", ignore=shutil.ignore_patterns(".mooring"))
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)  # keeps its time: the .venv stamp stays newer
    venv = Path(sys.prefix)
    (root / ".venv").symlink_to(venv, target_is_directory=True)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str


def run_page(page: Path, root: Path, timeout_s: float, prepared: Path | None = None) -> Outcome:
    """Runs the page's blocks in ``root`` and stops everything they started.

    ``prepared``, a run ``examples/adult/.mooring``, is copied in as the page's state
    unless the page is one of :data:`OWN_RUN`.
    """
    checkout(root)
    if prepared is not None and page.relative_to(ROOT).as_posix() not in OWN_RUN:
        # The tutorial's project, `adult` (`mooring demo adult --no-run`), run once; the
        # README's `mooring-demo` is the same project (make matrix runs the demo).
        folders = ["adult"] + (["mooring-demo"] if "cd mooring-demo" in page.read_text() else [])
        for folder in folders:
            shutil.copytree(root / "examples" / "adult", root / folder)
            shutil.copytree(prepared, root / folder / ".mooring")
            (root / folder / ".mooring-demo").write_text("made by mooring demo\n")
    scratch = root / ".docs-blocks"
    scratch.mkdir()
    ports = {doc_port: free_port() for doc_port in DOC_PORTS}
    (scratch / "page.sh").write_text(script(page, scratch, ports))
    bin_dir = str(Path(sys.prefix) / "bin")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "VIRTUAL_ENV": sys.prefix,
        "COLUMNS": "120",
    }
    log = root / "page.log"
    with log.open("w") as out:
        # A file, not a pipe: a server the page started with & keeps a pipe open.
        proc = subprocess.Popen(
            ["bash", str(scratch / "page.sh")],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout_s)
            note = ""
        except subprocess.TimeoutExpired:
            code, note = -1, f"\ndocs-test: timed out after {timeout_s:.0f} s"
        finally:
            _stop_group(proc.pid)
            proc.wait()
    output = log.read_text(errors="replace") + note
    return Outcome(code, output)


def _stop_group(pgid: int) -> None:
    """SIGTERM to what the page left running (servers started with &), then SIGKILL."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
