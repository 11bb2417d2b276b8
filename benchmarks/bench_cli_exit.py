"""Benchmark: how long a ``mooring`` command takes to exit after its last line.

A command's process ends with the interpreter's exit, whose last garbage collection
walks every object the command made: after a training run, TensorFlow's and Keras's.
Run as the script (``python -m mooring``), the command line leaves its objects out of
that collection (``gc.freeze`` at exit). The baseline is the same command through
``main(argv)`` with its arguments given, which registers nothing: the exit as it was.

Both ways run the same commands on a copy of ``examples/adult`` (one epoch, 20
bootstrap samples): ``mooring run --force`` (a training run) and ``mooring status``,
``--rounds`` rounds, the order of the two ways alternating by round. Each command's
output is read as it comes; reported are the seconds from the last output to the
process's exit ("tail") and in all ("total"), medians over the rounds.

Writes ``benchmarks/results/cli-exit-<time>.json``; nothing is asserted.

    .venv/bin/python benchmarks/bench_cli_exit.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "adult"
RESULTS = Path(__file__).resolve().parent / "results"

#: Each way's command line before the command's own arguments.
WAYS: dict[str, list[str]] = {
    "script (gc.freeze at exit)": [sys.executable, "-m", "mooring"],
    "main(argv) (the exit as before)": [
        sys.executable,
        "-c",
        "import sys; from mooring.cli import main; sys.exit(main(sys.argv[1:]))",
    ],
}


def project(work: Path) -> Path:
    """A copy of the Adult example, trained for one epoch with a short bootstrap."""
    folder = work / "adult"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".mooring", "*.py"))
    config = folder / "mooring.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^epochs = \d+", "epochs = 1", text)
    text = re.sub(r"samples = \d+", "samples = 20", text)
    config.write_text(text, encoding="utf-8")
    return config


def timed(command: list[str]) -> dict[str, float]:
    """Run ``command``; seconds in all and from its last output to its exit, and its exit
    code (1 is a run its gates rejected after one epoch: it trained all the same)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    last = start
    while proc.stdout.read1(65536):
        last = time.perf_counter()
    code = proc.wait()
    end = time.perf_counter()
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited {code}")
    return {"total_s": end - start, "tail_s": end - last, "exit": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-exit-"))
    config = project(work)
    commands = {
        "run --force (trains)": ["run", "-c", str(config), "--force"],
        "status": ["status", "-c", str(config)],
    }
    timed(WAYS["script (gc.freeze at exit)"] + commands["run --force (trains)"])  # warm-up
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        c: {w: [] for w in WAYS} for c in commands
    }
    ways = list(WAYS)
    for r in range(args.rounds):
        for way in ways if r % 2 == 0 else ways[::-1]:
            for name, argv in commands.items():
                runs[name][way].append(timed(WAYS[way] + argv))
    shutil.rmtree(work, ignore_errors=True)
    cells: dict[str, Any] = {}
    print("| command | way | tail s (median) | total s (median) |")
    print("|---|---|---:|---:|")
    for name, by_way in runs.items():
        for way, values in by_way.items():
            tail = statistics.median(v["tail_s"] for v in values)
            total = statistics.median(v["total_s"] for v in values)
            cells.setdefault(name, {})[way] = {"tail_s": tail, "total_s": total, "rounds": values}
            print(f"| {name} | {way} | {tail:.3f} | {total:.2f} |")
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "python": platform.python_version(),
        },
        "rounds": args.rounds,
        "cells": cells,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cli-exit-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
