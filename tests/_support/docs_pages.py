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

The getting-started tutorial runs in two parts. Its first part, up to and including the
block of its first ``mooring run`` (:func:`first_run`), is built once per session
(:func:`prepare_tutorial`): ``mooring demo adult --no-run``, the statistics, the schema,
``mooring train``, ``mooring evaluate`` and the run that registers and deploys version 1.
The tutorial's test goes on from a copy of that folder, in the folder the first part's
shell ended in (the folder carries over, a shell variable would not), with the blocks
after it. Every other page starts from a copy of that ``adult/``, as a reader who ran
the tutorial has it: its own ``mooring run -c mooring.toml`` finds its steps in the
pipeline's cache, and the suite trains and evaluates Adult once for all the pages
instead of once more for the others.
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


def script(
    page: Path, scratch: Path, ports: dict[int, int], start: int = 0, stop: int | None = None
) -> str:
    """The page's runnable blocks ``[start:stop]`` as one bash script; python blocks go to
    ``scratch``. Its last line writes the folder the shell ended in to ``scratch/cwd``."""

    def ported(code: str) -> str:
        for doc_port, port in ports.items():
            code = re.sub(rf"\b{doc_port}\b", str(port), code)
        return code

    name = page.relative_to(ROOT).as_posix()
    parts = [
        "set -euo pipefail",
        "trap 'echo \"docs-test: $DOCS_AT failed: $BASH_COMMAND\" >&2' ERR",
    ]
    for n, block in enumerate(runnable(page)[start:stop], start):
        parts.append(f"DOCS_AT='{name}:{block.line}'; echo \"### $DOCS_AT at ${{SECONDS}} s\"")
        if block.language == "bash":
            parts.append(ported(block.code))
        else:
            path = scratch / f"block_{n}_line_{block.line}.py"
            path.write_text(ported(block.code))
            parts.append(f'python "{path}"')
    parts.append(f'pwd > "{scratch / "cwd"}"')
    return "\n".join(parts) + "\n"


#: The page that teaches the first ``mooring run``; the other pages start from its project.
TUTORIAL = "docs/getting-started/tutorial.md"

_MOORING_RUN = re.compile(r"^\s*mooring run\b", re.MULTILINE)


def first_run(page: Path) -> int:
    """How many of the page's runnable blocks there are up to and including the first
    that runs ``mooring run``."""
    for n, block in enumerate(runnable(page)):
        if block.language == "bash" and _MOORING_RUN.search(block.code):
            return n + 1
    raise ValueError(f"{page.relative_to(ROOT)}: no bash block runs `mooring run`")


def prepare_tutorial(shared: Path) -> None:
    """The tutorial's first part (:func:`first_run`) run in ``shared``; the folder its
    shell ended in (``shared/adult``) is written in ``shared/.docs-blocks/cwd``."""
    page = ROOT / TUTORIAL
    outcome = _run_blocks(page, shared, timeout_s=900, stop=first_run(page))
    if outcome.returncode != 0:
        raise RuntimeError(f"{TUTORIAL}, first part, failed:\n{outcome.output[-6000:]}")


def tutorial_project(prepared: Path) -> Path:
    """The project folder the tutorial's first part ended in (``adult``)."""
    return Path((prepared / ".docs-blocks" / "cwd").read_text().strip()).resolve()


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

    ``prepared``, a folder made by :func:`prepare_tutorial`, is where the page starts: the
    tutorial goes on from a copy of it with the blocks after its first part; another page
    gets a copy of the tutorial's project (and the README's ``mooring-demo``, the same
    project) in a fresh checkout.
    """
    if prepared is None:
        return _run_blocks(page, root, timeout_s)
    project = tutorial_project(prepared)
    if page.relative_to(ROOT).as_posix() == TUTORIAL:
        shutil.copytree(prepared, root, symlinks=True, ignore=_PREPARED_ONLY, dirs_exist_ok=True)
        where = root / project.relative_to(prepared.resolve())
        return _run_blocks(page, root, timeout_s, start=first_run(page), cwd=where)
    checkout(root)
    # The README's `mooring-demo` is the same project (make matrix runs the demo).
    folders = ["adult"] + (["mooring-demo"] if "cd mooring-demo" in page.read_text() else [])
    for folder in folders:
        shutil.copytree(project, root / folder, symlinks=True)
    return _run_blocks(page, root, timeout_s, cwd=root)


# What a copy of the prepared folder leaves out: its scratch and the shared build's marker.
_PREPARED_ONLY = shutil.ignore_patterns(".docs-blocks", ".built")


def _run_blocks(
    page: Path,
    root: Path,
    timeout_s: float,
    start: int = 0,
    stop: int | None = None,
    cwd: Path | None = None,
) -> Outcome:
    """The page's runnable blocks ``[start:stop]``, run from ``cwd``; without ``cwd``,
    from ``root`` made a fresh checkout first (with it, ``root`` is already laid out)."""
    if cwd is None:
        checkout(root)
    scratch = root / ".docs-blocks"
    scratch.mkdir()
    ports = {doc_port: free_port() for doc_port in DOC_PORTS}
    (scratch / "page.sh").write_text(script(page, scratch, ports, start, stop))
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
            cwd=cwd or root,
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
