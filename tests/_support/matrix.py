"""``make matrix``: the built wheel, installed as a pip user installs it, on every Python
mooring claims.

For each Python of the list (the Makefile's ``MATRIX_PYTHONS``, which the classifiers in
pyproject.toml equal): a fresh venv with that Python's own pip, ``pip install`` of the wheel
resolved by pip against the configured index (real downloads, pip's usual cache), then,
from an empty folder: ``mooring --version`` names mooring's version and that Python;
``mooring docs --port P`` answers ``/`` and a page with 200 and is stopped; ``mooring demo``
runs the whole loop with nothing on stderr. Results go to ``build/matrix.json``: per
Python, its version, pip's, the install and demo seconds and the versions pip installed.

A Python not found (``~/.pyenv/versions/X.*/bin/pythonX`` or ``pythonX`` on PATH) is
skipped with a line saying so, and is a failure with ``MOORING_REQUIRE_PYTHONS=1`` (CI).

Example::

    python -m tests._support.matrix dist/mooring_ml-0.1.0-py3-none-any.whl 3.11 3.12 3.13
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests._support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUIRE = "MOORING_REQUIRE_PYTHONS"
# TensorFlow's native start-up lines (absl, oneDNN, CUDA probes) and Python's warnings.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl|[IWEF]\d{4} |.*\.py:\d+: \w*Warning)", re.M
)
CONFIGURED_INDEX = re.compile(
    r"WARNING: Location 'file://\S+' is ignored: it is neither a file nor a directory\.$"
)
# What the record keeps of pip's installation, beside mooring-ml itself.
RECORDED = ("mooring-ml", "tensorflow", "keras", "numpy")
# A page of the site besides its home, which must be served too.
PAGE = "getting-started/install/"


class StepFailedError(Exception):
    """One step of one Python failed; the message says which and shows its output."""


def find_python(version: str) -> str | None:
    """The interpreter of ``version`` (``3.12``): pyenv's newest patch release of it, else
    ``python3.12`` on PATH; None when neither runs as that version."""
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found = sorted(
        glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parents[1].name)],
    )
    for candidate in [*reversed(found), shutil.which(f"python{version}")]:
        if candidate is None:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def _run(
    what: str, command: list[str], *, timeout: float, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise StepFailedError(f"{what} exited with {done.returncode}:\n{output}")
    return done


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def check_docs(env: dict[str, str], cwd: Path) -> dict[str, int]:
    """``mooring docs --port P``: ``/`` and a page answer 200; stopped with SIGINT after."""
    port = free_port()
    server = subprocess.Popen(
        ["mooring", "docs", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                root = _get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise StepFailedError(
                        f"mooring docs --port {port} never answered (exit {server.poll()}):\n"
                        + (server.stdout.read() if server.stdout else "")[-3000:]
                    ) from None
                time.sleep(0.2)
        answers = {"/": root, f"/{PAGE}": _get(f"http://127.0.0.1:{port}/{PAGE}")}
        if set(answers.values()) != {200}:
            raise StepFailedError(f"mooring docs answered {answers}, not 200 for each")
        return answers
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def check_python(
    version: str, python: str, wheel: Path, work: Path, record: dict[str, Any]
) -> None:
    """Install the wheel on one Python and run the three commands, writing what was
    measured into ``record`` as it goes (kept when a step fails)."""
    folder = work / version
    shutil.rmtree(folder, ignore_errors=True)
    venv, empty = folder / "venv", folder / "empty"
    empty.mkdir(parents=True)
    _run(f"python{version} -m venv", [python, "-m", "venv", str(venv)], timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MOORING_TF"))}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.update(
        PATH=os.pathsep.join([str(venv / "bin"), env.get("PATH", "")]),
        VIRTUAL_ENV=str(venv),
        COLUMNS="120",
    )
    record["python"] = python
    pip = _run("pip --version", ["pip", "--version"], timeout=60, env=env, cwd=empty)
    record["pip"] = pip.stdout.split()[1]

    started = time.monotonic()
    install = _run(
        f"pip install {wheel.name}",
        ["pip", "install", str(wheel)],
        timeout=1800,
        env=env,
        cwd=empty,
    )
    record["install_seconds"] = round(time.monotonic() - started, 1)
    # pip's notes on this machine's index settings (a local mirror that lacks a project)
    # are about the configuration, not the wheel; any other line is a failure.
    warnings = [
        line
        for line in install.stderr.splitlines()
        if line.strip() and not CONFIGURED_INDEX.match(line)
    ]
    if warnings:
        raise StepFailedError("pip install wrote to stderr:\n" + "\n".join(warnings[-20:]))
    listed = _run("pip list", ["pip", "list", "--format", "json"], timeout=120, env=env, cwd=empty)
    versions = {d["name"].lower(): d["version"] for d in json.loads(listed.stdout)}
    record["installed"] = {name: versions.get(name) for name in RECORDED}
    record["packages"] = len(versions)

    shown = _run("mooring --version", ["mooring", "--version"], timeout=120, env=env, cwd=empty)
    full = _run(
        "python --version",
        ["python", "-c", "import platform; print(platform.python_version())"],
        timeout=60,
        env=env,
        cwd=empty,
    ).stdout.strip()
    record["python_version"] = full
    wanted = f"mooring {versions['mooring-ml']} (Python {full}"
    if not shown.stdout.startswith(wanted) or shown.stderr.strip():
        raise StepFailedError(
            f"mooring --version printed {shown.stdout!r} {shown.stderr!r}, not {wanted}…"
        )
    record["version_line"] = shown.stdout.strip()

    errors: list[str] = []
    try:
        record["docs"] = check_docs(env, empty)
    except StepFailedError as failure:
        errors.append(str(failure))

    started = time.monotonic()
    demo = subprocess.run(
        ["mooring", "demo", "first-demo"],
        capture_output=True,
        text=True,
        cwd=empty,
        env=env,
        timeout=1800,
    )
    record["demo_seconds"] = round(time.monotonic() - started, 1)
    output = demo.stdout + demo.stderr
    problems = [
        (demo.returncode != 0, f"exited with {demo.returncode}"),
        (bool(demo.stderr.strip()), "wrote to stderr"),
        (bool(NOISE.search(output)), "printed TensorFlow's or Python's warnings"),
        ("Traceback" in output, "printed a traceback"),
        ("monitor decision:" not in output, "printed no monitor decision"),
        (not re.search(r"serving: +production 1\b", output), "left no version 1 in production"),
        (not (empty / "first-demo" / ".mooring" / "registry.db").is_file(), "left no registry"),
    ]
    said = [why for bad, why in problems if bad]
    if said:
        errors.append(f"mooring demo {', '.join(said)}:\n{output[-4000:]}")
    if errors:
        raise StepFailedError("\n".join(errors))


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("pythons", nargs="+", help="versions, e.g. 3.11 3.12 3.13")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "matrix")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "matrix.json")
    parser.add_argument("--keep", action="store_true", help="keep each venv after its checks")
    args = parser.parse_args()
    wheel = args.wheel.resolve()
    required = os.environ.get(REQUIRE) == "1"
    results: dict[str, Any] = {"wheel": wheel.name, "pythons": {}}
    failed = []
    for version in args.pythons:
        python = find_python(version)
        if python is None:
            print(
                f"matrix: Python {version}: not found (pyenv install {version}, or put "
                f"python{version} on PATH){'' if required else '; skipped'}",
                flush=True,
            )
            results["pythons"][version] = {"ok": False, "error": "not found"}
            if required:
                failed.append(version)
            continue
        started = time.monotonic()
        cpu = _children_cpu()
        record: dict[str, Any] = {}
        results["pythons"][version] = record
        try:
            check_python(version, python, wheel, args.work, record)
        except (StepFailedError, subprocess.TimeoutExpired) as failure:
            print(f"matrix: Python {version}: FAILED\n{failure}", flush=True)
            record.update(ok=False, error=str(failure)[-4000:])
            failed.append(version)
        else:
            record["ok"] = True
            print(
                f"matrix: Python {record['python_version']}: installed in "
                f"{record['install_seconds']} s ({record['packages']} packages, "
                f"tensorflow {record['installed']['tensorflow']}, keras "
                f"{record['installed']['keras']}, numpy {record['installed']['numpy']}); "
                f"mooring docs 200; demo in {record['demo_seconds']} s "
                f"({time.monotonic() - started:.0f} s in all, {_children_cpu() - cpu:.0f} CPU-s)",
                flush=True,
            )
        finally:
            # What the stage costs the machine: the CPU seconds of every process this
            # Python's checks started (pip, mooring and the servers the demo ran).
            record["cpu_seconds"] = round(_children_cpu() - cpu, 1)
            if not args.keep:
                shutil.rmtree(args.work / version / "venv", ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scratch = args.out.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(results, indent=2) + "\n")
    scratch.replace(args.out)
    if failed:
        print(f"matrix: failed on Python {', '.join(failed)} ({args.out})", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
