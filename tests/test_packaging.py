"""What a pip user gets: every imported distribution declared, the core without the extras
(on every platform TensorFlow has wheels for), a one-line error naming the extra that a
command needs, pins that follow what is imported, and ``mooring --version``."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from mooring.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CORE = [Requirement(line) for line in PROJECT["dependencies"]]
EXTRAS = {
    extra: [Requirement(line) for line in lines]
    for extra, lines in PROJECT["optional-dependencies"].items()
    if extra not in ("dev", "docs", "all")
}
# Modules only the extras install, and the extra that does.
EXTRA_MODULES = {
    "ydf": "trees",
    "ydf_tf": "trees",
    "yggdrasil_decision_forests": "trees",
    "ai_edge_litert": "lite",
    "tensorboard": "tensorboard",
    "grafana_foundation_sdk": "grafana",
    "psycopg": "postgres",
    "ray": "ray",
    "opentelemetry": "otel",
    "model_signing": "signing",
    "cryptography": "signing",
}
# Imported by `make protos` only (a contributor's tool, from the dev extra).
DEV_ONLY = {"grpc_tools"}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


_IMPORTS = """
import ast, json, sys
from pathlib import Path
found = set()
for path in Path(sys.argv[1]).rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
print(json.dumps(sorted(found)))
"""


def _imported_modules() -> set[str]:
    """Every module src/mooring imports (absolute imports), dotted names kept.

    Parsed in a fresh interpreter: CPython 3.11's ``ast.parse`` can fail with "AST
    constructor recursion depth mismatch" in a process whose recursion counter an
    earlier test left off (seen in a pytest-xdist worker).
    """
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(ROOT / "src" / "mooring")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout))


@functools.cache
def _providers() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions(module: str) -> set[str]:
    top = module.split(".")[0]
    if top == "google":  # a namespace several distributions share
        return {"protobuf"} if module.startswith("google.protobuf") else set()
    return {_norm(d) for d in _providers().get(top, [])}


def test_every_distribution_the_package_imports_is_declared() -> None:
    declared = {_norm(r.name) for r in CORE}
    extra_names = {_norm(r.name) for reqs in EXTRAS.values() for r in reqs}
    undeclared = []
    for module in sorted(_imported_modules()):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "mooring" or top in DEV_ONLY:
            continue
        dists = _distributions(module)
        assert dists, f"{module}: no installed distribution provides it"
        wanted = extra_names if top in EXTRA_MODULES else declared
        if not dists & wanted:
            undeclared.append(f"{module} ({', '.join(sorted(dists))})")
    assert undeclared == [], "declare these in pyproject.toml:\n" + "\n".join(undeclared)


def test_each_extra_module_belongs_to_the_extra_that_names_it() -> None:
    for module, extra in EXTRA_MODULES.items():
        dists = _distributions(module)
        assert dists & {_norm(r.name) for r in EXTRAS[extra]}, (module, extra, dists)
        assert not dists & {_norm(r.name) for r in CORE}, f"{module} is in the core"


def test_typer_is_pinned_to_the_minor_whose_private_class_is_patched() -> None:
    """cli/_app.py patches ``typer.core.TyperOption.display_type_rich`` (not public): the
    pin is one minor, and that minor still has it (the tripwire for a pin bump)."""
    from typer.core import TyperOption

    pin = next(r for r in CORE if r.name == "typer")
    bounds = {spec.operator: Version(spec.version) for spec in pin.specifier}
    assert bounds[">="].release[:2] == (bounds["<"].release[0], bounds["<"].release[1] - 1)
    assert Version(version("typer")) in pin.specifier
    assert callable(getattr(TyperOption, "display_type_rich", None))


def test_public_apis_get_a_range_not_a_minor_pin() -> None:
    for name in ("starlette", "click", "jinja2", "orjson", "pyarrow"):
        pin = next(r for r in CORE if r.name == name)
        upper = next(Version(s.version) for s in pin.specifier if s.operator == "<")
        assert upper.release[1:] in ((), (0,), (0, 0)), f"{pin}: a major bound, not a minor"


def test_version_prints_mooring_and_the_runtime_without_importing_tensorflow(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import mooring

    assert main(["--version"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"mooring {mooring.__version__} (Python ")
    assert f"TensorFlow {version('tensorflow')}" in printed
    assert version("mooring-ml") == mooring.__version__


# Run in a fresh interpreter where every extra's modules fail to import, as in a core
# install: each command that needs one stops with one line naming it.
_WITHOUT_EXTRAS = """
import importlib, json, pkgutil, sys

blocked = %(blocked)r
for name in blocked:
    sys.modules[name] = None

import mooring
from mooring.errors import MissingExtraError

failed = []
for info in pkgutil.walk_packages(mooring.__path__, "mooring."):
    if info.name in ("mooring.ops._grafana", "mooring.training._trees_workers") or (
        info.name.endswith(".protos.generate") or ".migrations." in info.name
    ):
        continue  # imported once their extra is checked, by make protos, or by Alembic
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")

messages = {}
from mooring.training._trees import import_ydf
from mooring.export._runtime import LiteModel
for what, call in (("trees", import_ydf), ("lite", lambda: LiteModel(b""))):
    try:
        call()
    except MissingExtraError as exc:
        messages[what] = str(exc)
print(json.dumps({"failed": failed, "messages": messages}))
"""


@pytest.mark.slow
def test_the_core_imports_without_any_extra_and_says_which_one_a_command_needs(
    tmp_path: Path,
) -> None:
    script = _WITHOUT_EXTRAS % {"blocked": sorted(EXTRA_MODULES)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == []
    assert result["messages"]["trees"].endswith("pip install 'mooring-ml[trees]'")
    assert 'gradient boosted trees ([model] kind = "gbt")' in result["messages"]["trees"]
    assert result["messages"]["lite"].endswith("pip install 'mooring-ml[lite]'")

    # The CLI: one line, exit 2, no traceback.
    config = tmp_path / "mooring.toml"
    config.write_text('[project]\nname = "m"\nhome = "home"\n[data]\ntrain = "t.csv"\n')
    cli = (
        "import sys\nsys.modules['grafana_foundation_sdk'] = None\n"
        "from mooring.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    grafana = subprocess.run(
        [sys.executable, "-c", cli, "ops", "grafana", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert grafana.returncode == 2, grafana.stderr
    assert "Traceback" not in grafana.stderr
    assert "mooring ops grafana needs the 'grafana' extra" in " ".join(grafana.stderr.split())
    assert "pip install 'mooring-ml[grafana]'" in grafana.stderr


def _manylinux(arch: str) -> list[str]:
    """The platform tags of a glibc 2.28 machine (pip does not widen --platform itself)."""
    return [f"manylinux_2_{minor}_{arch}" for minor in range(28, 16, -1)] + [
        f"manylinux2014_{arch}"
    ]


PLATFORMS = {
    "macOS arm64": (["macosx_14_0_arm64", "macosx_11_0_arm64", "macosx_12_0_arm64"], "3.12"),
    "Linux aarch64": (_manylinux("aarch64"), "3.12"),
    "Linux x86_64": (_manylinux("x86_64"), "3.11"),
}


@pytest.mark.slow
def test_the_core_resolves_on_every_platform_tensorflow_has_wheels_for(tmp_path: Path) -> None:
    """pip's resolver, with the target's wheel tags, over the package index: the wheel's
    requirements (pyproject's dependencies) must find a wheel for each of them."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(PROJECT["dependencies"]) + "\n")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    runs = {}
    for name, (tags, python) in PLATFORMS.items():
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet"]
        command += ["--ignore-installed", "--only-binary=:all:", "--implementation", "cp"]
        command += ["--python-version", python, "-r", str(requirements)]
        command += [arg for tag in tags for arg in ("--platform", tag)]
        report = tmp_path / f"{name.replace(' ', '-')}.json"
        runs[name] = (
            report,
            subprocess.Popen(
                [*command, "--report", str(report)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            ),
        )
    for name, (report, proc) in runs.items():
        _, err = proc.communicate(timeout=600)
        errors = [line for line in err.splitlines() if line.startswith("ERROR")]
        assert proc.returncode == 0, f"{name}: " + "\n".join(errors or err.splitlines()[-5:])
        installed = {
            item["metadata"]["name"].lower(): item["download_info"]["url"]
            for item in json.loads(report.read_text())["install"]
        }
        assert "tensorflow" in installed, name
        assert not {"ydf", "ydf-tf", "ai-edge-litert"} & set(installed), name


def test_version_warns_when_the_other_mooring_distribution_is_installed_too(
    tmp_path: Path,
) -> None:
    # The project named mooring on the package index, as pip installs it: its dist-info
    # on the path, beside this environment's mooring-ml.
    info = tmp_path / "mooring-0.5.8.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mooring\nVersion: 0.5.8\n"
        "Summary: Git-free marimo notebook sharing via GitHub\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(tmp_path)])}
    command = [sys.executable, "-m", "mooring", "--version"]
    both = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert both.returncode == 0, both.stderr
    assert both.stdout.startswith("mooring ")
    assert "'mooring' 0.5.8 (Git-free marimo notebook sharing via GitHub)" in both.stderr
    assert "pip uninstall -y mooring mooring-ml, then pip install mooring-ml" in both.stderr

    env["PYTHONPATH"] = str(ROOT / "src")
    alone = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert alone.returncode == 0 and alone.stderr == "", alone.stderr
