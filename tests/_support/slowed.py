"""Run a command on a slowed machine: one core, shared with a CPU-bound neighbour.

``make slowed`` runs the tests that judge decisions over time (``-m decisions``) this
way: the command gets about half of one core, a quarter of what the suite has, and its
tests must reach the verdicts they reach at full speed. Every process the command starts
(servers, workers) inherits the one core.

``--shared`` pins the command to the same core without starting a neighbour, for a run
beside other CPU-bound work that keeps every core busy: ``make test`` runs the slowed
stage while the unit tests run, and they are its neighbour.

Example::

    python -m tests._support.slowed -- python -m pytest -m decisions
    python -m tests._support.slowed --shared -- python -m pytest -m decisions
"""

from __future__ import annotations

import os
import subprocess
import sys

# Spins until killed, at the command's own priority.
BURN = "while True:\n    pass\n"


def _slowed_core() -> int:
    return min(os.sched_getaffinity(0))


def _pinned(command: list[str], core: int) -> int:
    return subprocess.run(
        command, preexec_fn=lambda: os.sched_setaffinity(0, {core}), check=False
    ).returncode


def run_shared(command: list[str]) -> int:
    """Run ``command`` pinned to one core that the work beside it already keeps busy."""
    core = _slowed_core()
    print(f"slowed: core {core}, shared with the work beside it: " + " ".join(command), flush=True)
    return _pinned(command, core)


def run_slowed(command: list[str]) -> int:
    """Run ``command`` pinned to one core that a busy loop shares; return its exit code."""
    core = _slowed_core()
    neighbour = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        os.sched_setaffinity(neighbour.pid, {core})
        print(
            f"slowed: core {core} shared with a CPU-bound neighbour (pid {neighbour.pid}): "
            + " ".join(command),
            flush=True,
        )
        return _pinned(command, core)
    finally:
        neighbour.kill()
        neighbour.wait()


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1 or argv.index("--") > 1:
        print(
            "usage: python -m tests._support.slowed [--shared] -- COMMAND [ARG...]",
            file=sys.stderr,
        )
        return 2
    options, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    if options not in ([], ["--shared"]):
        print(f"slowed: unknown option {options[0]!r}", file=sys.stderr)
        return 2
    return run_shared(command) if options else run_slowed(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
