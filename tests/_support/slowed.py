"""Run a command on a slowed machine: one core, shared with a CPU-bound neighbour.

``make slowed`` runs the tests that judge decisions over time (``-m decisions``) this
way, after the whole suite has run on a quiet machine: the command gets about half of
one core, a quarter of what the suite had, and its tests must reach the same verdicts.
Every process the command starts (servers, workers) inherits the one core.

``--beside`` runs a command on the other cores instead, with no neighbour: ``make test``
runs the same tests at full speed there while the slowed stage runs.

Example::

    python -m tests._support.slowed -- python -m pytest -m decisions
    python -m tests._support.slowed --beside -- python -m pytest -m decisions
"""

from __future__ import annotations

import os
import subprocess
import sys

# Spins until killed, at the command's own priority.
BURN = "while True:\n    pass\n"


def _slowed_core() -> int:
    return min(os.sched_getaffinity(0))


def run_beside(command: list[str]) -> int:
    """Run ``command`` on every core but the slowed stage's (on one core: that one)."""
    cores = os.sched_getaffinity(0) - {_slowed_core()} or os.sched_getaffinity(0)
    print(f"beside: cores {sorted(cores)}: " + " ".join(command), flush=True)
    return subprocess.run(
        command, preexec_fn=lambda: os.sched_setaffinity(0, cores), check=False
    ).returncode


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
        return subprocess.run(
            command, preexec_fn=lambda: os.sched_setaffinity(0, {core}), check=False
        ).returncode
    finally:
        neighbour.kill()
        neighbour.wait()


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1 or argv.index("--") > 1:
        print(
            "usage: python -m tests._support.slowed [--beside] -- COMMAND [ARG...]",
            file=sys.stderr,
        )
        return 2
    options, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    if options not in ([], ["--beside"]):
        print(f"slowed: unknown option {options[0]!r}", file=sys.stderr)
        return 2
    return run_beside(command) if options else run_slowed(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
