"""Where the built wheel installs, by pip's own resolver: ``docs/gen/platforms.json``.

For each platform (Linux x86_64 and aarch64 by glibc version, macOS arm64 by macOS
version, macOS x86_64), each Python from 3.11 to 3.14, and the core, each extra and
``all``: ``pip install --dry-run --ignore-installed --only-binary=:all: --platform …
--python-version … --report`` of the wheel against PyPI, recording whether it resolves and,
if not, pip's reason (the requirement with no matching wheel). A Python outside the
wheel's ``requires-python`` is also tried with ``--ignore-requires-python``, which records
why the bound is there. The Install page's platform table is rendered from the JSON
(``render``, through ``hooks.py``). Run by hand (it needs PyPI), after ``make wheel``:

    python docs/gen/platforms.py dist/mooring_ml-0.1.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUT = HERE / "platforms.json"
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
EXTRAS = ("trees", "lite", "tensorboard", "grafana", "postgres", "ray", "otel", "signing", "all")
INDEX = "https://pypi.org/simple"


def manylinux(glibc: str, arch: str) -> list[str]:
    """pip expands no ``manylinux_2_X`` tag to older glibc versions, so every tag a
    system with glibc ``2.X`` runs is passed: 2.5 up to X, and the legacy aliases."""
    minor = int(glibc.split(".")[1])
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{name}_{arch}" for m, name in legacy.items() if m <= minor]


# name → (label on the page, pip's --platform values). pip expands a macOS tag to every
# earlier macOS version itself.
PLATFORMS: dict[str, tuple[str, list[str]]] = {
    **{
        f"linux-x86_64-glibc{g}": (f"Linux x86_64, glibc {g}", manylinux(g, "x86_64"))
        for g in ("2.17", "2.27", "2.28")
    },
    **{
        f"linux-aarch64-glibc{g}": (f"Linux aarch64, glibc {g}", manylinux(g, "aarch64"))
        for g in ("2.17", "2.26", "2.27", "2.28")
    },
    **{
        f"macos{v}-arm64": (f"macOS {v} arm64", [f"macosx_{v}_0_arm64"])
        for v in ("12", "14", "15", "26")
    },
    "macos15-x86_64": ("macOS 15 x86_64", ["macosx_15_0_x86_64"]),
}


def wheel_metadata(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    fields = dict(re.findall(r"^(Version|Requires-Python): (.*)$", text, re.M))
    return {"version": fields["Version"], "requires_python": fields.get("Requires-Python", "")}


def reason(stderr: str) -> str:
    """pip's one line saying why it cannot install (the first ERROR line that names it)."""
    lines = [line.removeprefix("ERROR: ") for line in stderr.splitlines()]
    for pattern in ("No matching distribution found for", "requires a different Python"):
        for line in lines:
            if pattern in line:
                return line.strip()
    errors = [line.strip() for line in stderr.splitlines() if line.startswith("ERROR")]
    return (errors[-1] if errors else stderr.strip()[-300:]).removeprefix("ERROR: ")


def dry_run(
    wheel: Path, extra: str, tags: list[str], python: str, *, ignore: bool
) -> dict[str, Any]:
    """One ``pip install --dry-run`` of the wheel (with ``extra`` unless ``core``)."""
    target = str(wheel) if extra == "core" else f"mooring-ml[{extra}] @ {wheel.as_uri()}"
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--only-binary=:all:", "--python-version", python, "--report", str(report),
            "--quiet", "--isolated", "--index-url", INDEX,
            *[f"--platform={tag}" for tag in tags],
        ]  # fmt: skip
        if os.environ.get("PIP_CERT"):
            command.append(f"--cert={os.environ['PIP_CERT']}")
        if ignore:
            command.append("--ignore-requires-python")
        done = subprocess.run([*command, target], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return {"ok": False, "reason": reason(done.stderr)}
        installed = json.loads(report.read_text())["install"]
    versions = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installed}
    kept = ("tensorflow", "numpy", "ydf", "ai-edge-litert", "ray")
    return {"ok": True, "versions": {k: versions[k] for k in kept if k in versions}}


def check(wheel: Path, platform: str, python: str) -> dict[str, Any]:
    """The core and every extra on one platform and Python. The extras are tried only if
    the core resolves (they cannot otherwise), and one by one only if ``all`` does not:
    a resolution of every extra's requirements at once satisfies each one's."""
    tags = PLATFORMS[platform][1]
    core = dry_run(wheel, "core", tags, python, ignore=False)
    found: dict[str, Any] = {"core": core}
    if not core["ok"] and "requires a different Python" in core["reason"]:
        found["without_requires_python"] = dry_run(wheel, "core", tags, python, ignore=True)
    if not core["ok"]:
        none = {"ok": False, "reason": "the core does not install"}
        return found | {extra: none for extra in EXTRAS}
    found["all"] = dry_run(wheel, "all", tags, python, ignore=False)
    for extra in EXTRAS[:-1]:
        if found["all"]["ok"]:
            found[extra] = {"ok": True, "versions": {}, "by": "all"}
        else:
            found[extra] = dry_run(wheel, extra, tags, python, ignore=False)
    return found


def generate(wheel: Path, jobs: int) -> dict[str, Any]:
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    pairs = [(platform, python) for platform in PLATFORMS for python in PYTHONS]
    with ThreadPoolExecutor(jobs) as pool:
        done = list(pool.map(lambda pair: check(wheel, *pair), pairs))
    results: dict[str, Any] = {}
    for (platform, python), found in zip(pairs, done, strict=True):
        entry = results.setdefault(platform, {"label": PLATFORMS[platform][0], "pythons": {}})
        entry["pythons"][python] = found
    return {
        "date": datetime.date.today().isoformat(),
        "pip": pip,
        "index": INDEX,
        "wheel": {"file": wheel.name, **wheel_metadata(wheel)},
        "extras": list(EXTRAS),
        "platforms": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--jobs", type=int, default=6, help="dry runs at once")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = generate(args.wheel.resolve(), args.jobs)
    scratch = args.out.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    scratch.replace(args.out)
    print(f"{args.out}: {len(PLATFORMS)} platforms x {len(PYTHONS)} Pythons, pip {data['pip']}")


if __name__ == "__main__":
    main()


# ---- the Install page's table (no network: read from platforms.json and the Makefile) --

ROOT = HERE.parent.parent
_MATRIX = re.compile(r"^MATRIX_PYTHONS\s*:?=\s*(.+)$", re.M)


def matrix_pythons(makefile: Path = ROOT / "Makefile") -> list[str]:
    """The Pythons ``make matrix`` installs the wheel on and runs ``mooring demo`` with."""
    found = _MATRIX.search(makefile.read_text())
    if found is None:
        raise ValueError(f"{makefile} has no MATRIX_PYTHONS line; add the tested Pythons there")
    return found.group(1).split()


def _why(result: dict[str, Any]) -> str:
    """pip's reason, short: the requirement without a wheel, or the Python bound."""
    said = str(result["reason"])
    missing = re.search(r"No matching distribution found for ([A-Za-z0-9_.-]+)", said)
    if missing:
        return f"no wheel of `{missing.group(1)}`"
    if "requires a different Python" in said:
        return "outside `requires-python`"
    return said


def _cell(found: dict[str, Any]) -> str:
    core = found["core"]
    if not core["ok"]:
        text = f"no: {_why(core)}"
        bound = found.get("without_requires_python")
        if bound is not None and not bound["ok"]:
            text += f" (without it: {_why(bound)})"
        return text
    missing = [extra for extra in EXTRAS[:-1] if not found[extra]["ok"]]
    if not missing:
        return "yes, every extra"
    return "yes; not " + ", ".join(f"`{extra}` ({_why(found[extra])})" for extra in missing)


def render(data: dict[str, Any] | None = None) -> str:
    """The Install page's table: per platform and Python, whether pip installs the core
    and which extras it cannot, and which Pythons ``make matrix`` tests."""
    data = data if data is not None else json.loads(OUT.read_text())
    tested = matrix_pythons()
    head = " | ".join(
        f"Python {python}{' (tested)' if python in tested else ''}" for python in PYTHONS
    )
    lines = [f"| platform | {head} |", "|---|" + "---|" * len(PYTHONS)]
    for entry in data["platforms"].values():
        cells = " | ".join(_cell(entry["pythons"][python]) for python in PYTHONS)
        lines.append(f"| {entry['label']} | {cells} |")
    wheel = data["wheel"]
    lines += [
        "",
        f"Resolved by pip {data['pip']} against {data['index']} on {data['date']}, for "
        f"`{wheel['file']}` (`requires-python {wheel['requires_python']}`): "
        "`pip install --dry-run --only-binary=:all: --platform … --python-version …` per "
        'cell, the core, each extra and `all` (`docs/gen/platforms.py`). "tested": '
        f"`make matrix` installs the wheel on Python {', '.join(tested)} (Linux x86_64) "
        "and runs `mooring --version`, `mooring docs` and `mooring demo` from an empty "
        "folder, in CI.",
    ]
    return "\n".join(lines) + "\n"
