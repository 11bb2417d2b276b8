"""Benchmark: how long the command line takes to answer a new user's mistake.

Each mistake (no mooring.toml, a TOML syntax error, an unknown key, a missing data file,
a label that is not a column, no trained model, a port in use, a home folder under a
file) is made in a fresh project of a few Adult rows and run as a user runs it:
``python -m mooring ARGS`` in a subprocess, wall clock from start to exit, the median
of ``--repeats`` runs. Beside them, in the same run: ``python -c "import mooring.cli"``
(the floor of any answer) and ``python -c "import tensorflow"`` (what each answer cost
when TensorFlow was imported before the configuration was read).

Wall-clock on a shared machine: printed and written to JSON
(``benchmarks/results/bench_cli_errors.json``), never asserted in tests.

Usage::

    python benchmarks/bench_cli_errors.py
    python benchmarks/bench_cli_errors.py --repeats 5 --out errors.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HEADER = "age,workclass,education,hours-per-week,class\n"
ROWS = "39,State-gov,Bachelors,40,<=50K\n50,Private,HS-grad,45,>50K\n"
TOML = (
    '[project]\nname = "income"\nhome = "state"\n'
    '[data]\ntrain = "train.csv"\neval = "test.csv"\nlabel = "class"\npositive = ">50K"\n'
    "[model]\nepochs = 1\n"
)


def project(folder: Path, toml: str = TOML) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.csv", "test.csv"):
        (folder / name).write_text(HEADER + ROWS, encoding="utf-8")
    (folder / "mooring.toml").write_text(toml, encoding="utf-8")
    return folder


def mistakes(root: Path, port: int) -> list[tuple[str, Path, list[str]]]:
    """(mistake, the project folder, the command's words)."""
    empty = root / "empty"
    empty.mkdir()
    syntax = project(root / "syntax", TOML + "[model\n")
    typo = project(root / "typo", TOML.replace("epochs", "epoch"))
    no_data = project(root / "no-data", TOML.replace('"train.csv"', '"nowhere.csv"'))
    no_label = project(root / "no-label", TOML.replace('label = "class"', 'label = "income"'))
    ok = project(root / "ok")
    home = project(root / "home", TOML.replace('home = "state"', 'home = "afile/sub"'))
    (home / "afile").write_text("", encoding="utf-8")
    out: list[tuple[str, Path, list[str]]] = []
    for command in (["run"], ["train"], ["evaluate"], ["serve"], ["ui"], ["monitor"], ["status"]):
        out.append(("missing config", empty, command))
    for command in (["run"], ["train"], ["serve"]):
        out.append(("TOML syntax error", syntax, command))
        out.append(("unknown key", typo, command))
    for command in (["run"], ["train"]):
        out.append(("missing [data] train", no_data, command))
        out.append(("label not a column", no_label, command))
    out.append(("no trained model", ok, ["evaluate"]))
    out.append(("model folder not one", ok, ["evaluate", "--model", str(root)]))
    out.append(("port in use", ok, ["serve", "--workers", "1", "--port", str(port)]))
    out.append(("port in use", ok, ["ui", "--port", str(port)]))
    out.append(("home under a file", home, ["run"]))
    out.append(("no model registered", ok, ["models", "show", "income"]))
    return out


def timed(argv: list[str], cwd: Path, repeats: int) -> tuple[float, int, str]:
    """Median wall seconds, the exit code and the last stderr line."""
    times, proc = [], None
    env = {**os.environ, "COLUMNS": "300"}
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - start)
    assert proc is not None
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return statistics.median(times), proc.returncode, last


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    python = [sys.executable]
    baseline: dict[str, float] = {}
    for module in ("mooring.cli", "tensorflow"):
        baseline[f"import {module}"] = timed(
            [*python, "-c", f"import {module}"], HERE, args.repeats
        )[0]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        for mistake, cwd, words in mistakes(Path(tmp), int(held.getsockname()[1])):
            seconds, code, line = timed([*python, "-m", "mooring", *words], cwd, args.repeats)
            rows.append(
                {
                    "mistake": mistake,
                    "command": " ".join(words[:1]),
                    "seconds": seconds,
                    "exit": code,
                    "says": line,
                }
            )
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "repeats": args.repeats,
        "baseline_s": baseline,
        "mistakes": rows,
    }


def show(result: dict[str, Any], say: Callable[[str], None] = print) -> None:
    for name, seconds in result["baseline_s"].items():
        say(f"baseline  {name:<22} {seconds:6.2f} s")
    say(f"{'mistake':<22} {'command':<9} {'median s':>8} exit  says")
    for row in result["mistakes"]:
        say(
            f"{row['mistake']:<22} {row['command']:<9} {row['seconds']:8.2f} {row['exit']:>4}  "
            f"{row['says'][:110]}"
        )
    worst = max(row["seconds"] for row in result["mistakes"])
    say(f"slowest answer {worst:.2f} s (median of {result['repeats']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="Runs per mistake (median).")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_cli_errors.json")
    args = parser.parse_args()
    result = run_benchmark(args)
    show(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
