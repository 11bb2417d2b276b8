"""The architecture is visible in the tree: an explicit table of allowed imports between packages.

Each top-level part of ``mooring`` (a package such as ``serving`` or a module such as
``project``) may import only the parts its row lists. Imports inside functions count
too: a lazy import is still a dependency. ARCHITECTURE.md shows the same table.
"""

from __future__ import annotations

import ast
import importlib
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "mooring"

# part → the parts it may import. Every part may import itself; nothing may import `cli`
# except `cli` and the entry points.
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "_tensorflow": frozenset(),
    "_exports": frozenset(),
    "_sandbox": frozenset(),
    "config": frozenset({"errors"}),
    "_tracing": frozenset({"errors", "config"}),
    "formats": frozenset({"errors", "_tensorflow"}),
    "contract": frozenset({"errors", "config", "formats", "_exports"}),
    "features": frozenset({"errors", "config", "formats", "contract"}),
    "explain": frozenset({"errors", "formats", "_tensorflow"}),
    "training": frozenset(
        {"errors", "config", "formats", "contract", "features", "explain", "_sandbox"}
    ),
    "evaluation": frozenset({"errors", "config", "formats", "contract", "features", "explain"}),
    "registry": frozenset({"errors", "config", "formats"}),
    "export": frozenset(
        {"errors", "config", "formats", "contract", "features", "evaluation", "registry"}
    ),
    "serving": frozenset(
        {
            "errors",
            "config",
            "formats",
            "_tensorflow",
            "_exports",
            "contract",
            "registry",
            "_tracing",
            "explain",
            "_sandbox",
        }
    ),
    "monitoring": frozenset(
        {"errors", "config", "formats", "contract", "features", "evaluation", "registry", "explain"}
    ),
    "dashboard": frozenset(
        {"errors", "config", "formats", "contract", "evaluation", "registry", "monitoring", "ops"}
    ),
    "_scaffold": frozenset({"errors", "config", "formats", "contract", "features"}),
    "ops": frozenset({"errors", "config", "formats", "registry", "monitoring"}),
    "scale": frozenset(
        {
            "errors",
            "config",
            "formats",
            "_tensorflow",
            "contract",
            "registry",
            "monitoring",
            "serving",
            "training",
        }
    ),
    "pipeline": frozenset(
        {
            "errors",
            "config",
            "formats",
            "contract",
            "features",
            "training",
            "evaluation",
            "registry",
            "monitoring",
            "dashboard",
            "_tracing",
            "scale",
        }
    ),
    "_project": frozenset(
        {
            "errors",
            "config",
            "formats",
            "contract",
            "features",
            "training",
            "evaluation",
            "registry",
            "pipeline",
            "dashboard",
            "scale",
        }
    ),
}
# The composition roots may import every part.
ROOTS = {"cli", "__init__", "__main__"}
EVERY_PART = set(ALLOWED) | ROOTS


def part_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parse(path: Path) -> ast.Module:
    """The file's syntax tree.

    On CPython before 3.11.8, an AST construction that failed earlier in this process
    (inside some library) leaves the constructor's recursion counter off, and every
    later parse raises ``SystemError: AST constructor recursion depth mismatch``
    (python/cpython#106905); the file is then parsed in a fresh interpreter.
    """
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except SystemError:
        code = "import ast, pickle, sys; sys.stdout.buffer.write(pickle.dumps(ast.parse("
        code += "open(sys.argv[1], encoding='utf-8').read())))"
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, check=True, timeout=60
        )
        tree: ast.Module = pickle.loads(done.stdout)
        return tree


def imports_of(path: Path) -> Iterator[str]:
    """Every module a file imports, at any depth (absolute names; relative ones resolved)."""
    tree = _parse(path)
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from mooring import formats` names a part, not an attribute.
            if base == "mooring":
                yield from (f"mooring.{alias.name}" for alias in node.names)


def imports_of_file(path: Path) -> Iterator[str]:
    """The modules a file outside the package imports (absolute imports only)."""
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_part_has_a_row() -> None:
    parts = {part_of(p) for p in sources()}
    assert parts - EVERY_PART == set(), "add these parts to ALLOWED (and to ARCHITECTURE.md)"


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_listed_part_exists(part: str) -> None:
    assert (SRC / part).is_dir() or (SRC / f"{part}.py").is_file(), f"mooring.{part} is missing"


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_part_imports_only_its_row(part: str) -> None:
    files = [p for p in sources() if part_of(p) == part]
    assert files, f"mooring.{part} is missing"
    wrong = []
    for path in files:
        for module in imports_of(path):
            names = module.split(".")
            if names[0] != "mooring" or len(names) < 2:
                continue
            target = names[1]
            if target != part and target not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(SRC)} imports {module}")
    assert wrong == [], f"mooring.{part} may import only {sorted(ALLOWED[part])}:\n" + "\n".join(
        wrong
    )


# The modules whose names are the supported Python API (ARCHITECTURE.md, "The public
# API"). Each declares its names once, in its __all__ (mooring and mooring.serving in
# _EXPORTS, which tests/test_exports.py checks); every other module is internal.
API_FACES = frozenset(
    {
        "mooring",
        "mooring.errors",
        "mooring.config",
        "mooring.registry",
        "mooring.serving",
        "mooring.monitoring",
        "mooring.explain",
        "mooring.pipeline",
        "mooring.cli",
    }
)
# Folders of files that other tools load by path, not modules of the API.
NOT_MODULES = ("mooring.registry.migrations",)
# Entry points run as scripts (``python -m``).
SCRIPTS = {"__main__"}


def public_modules() -> list[str]:
    """mooring, and every part whose name has no leading underscore (its face)."""
    faces = sorted(f"mooring.{part}" for part in EVERY_PART - ROOTS if not part.startswith("_"))
    return ["mooring", *faces, "mooring.cli"]


def test_every_module_past_a_face_is_internal() -> None:
    public = set(public_modules())
    wrong = []
    for path in sources():
        name = module_name(path)
        parts = name.split(".")
        if name in public or parts[-1] in SCRIPTS or name.startswith(NOT_MODULES):
            continue
        if not any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
            wrong.append(name)
    assert wrong == [], "name these modules with a leading underscore (internal):\n" + "\n".join(
        wrong
    )


@pytest.mark.parametrize("module", public_modules())
def test_only_the_api_faces_export_names_and_each_resolves(module: str) -> None:
    face = importlib.import_module(module)
    exported = getattr(face, "__all__", None)
    assert exported is not None, f"{module} must declare __all__ (empty when internal)"
    if module in API_FACES:
        assert exported, f"{module} is a face of the API (API_FACES) but exports nothing"
    else:
        assert exported == [], (
            f"{module} exports {sorted(exported)}; it is internal (not in API_FACES here "
            "nor in ARCHITECTURE.md's public API)"
        )
    missing = [name for name in exported if not hasattr(face, name)]
    assert missing == [], f"{module}.__all__ names missing attributes: {missing}"


def test_the_examples_use_only_the_public_api() -> None:
    examples = SRC.parent.parent / "examples"
    wrong = []
    for path in sorted(examples.rglob("*.py")):
        for module in imports_of_file(path):
            names = module.split(".")
            if names[0] == "mooring" and any(n.startswith("_") for n in names[1:]):
                wrong.append(f"{path.relative_to(examples)} imports {module}")
    assert wrong == []


def test_formats_are_spelled_in_formats_only() -> None:
    metrics = importlib.import_module("mooring.formats._metrics")
    names = [v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str)]
    assert "mooring_requests" in names
    spelled = [f'"{name}"' for name in ["mooring.json", "serving_default", *names]]
    wrong = [
        f"{path.relative_to(SRC)}: {needle}"
        for path in sources()
        if part_of(path) != "formats"
        for needle in spelled
        if needle in path.read_text(encoding="utf-8")
    ]
    assert wrong == []


# A ceiling against god-modules, not a size to aim for: modules are cut by concept, and
# ruff's complexity rules (C901, PLR09xx in pyproject.toml) bound each function.
MODULE_CEILING_LINES = 1000


def test_no_module_past_the_ceiling() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MODULE_CEILING_LINES
    }
    assert long == {}


def test_formats_import_without_tensorflow() -> None:
    probe = (
        "import sys, json, mooring.formats; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(_run(probe)))
    assert not loaded & {"tensorflow", "keras"}


# What `mooring serve --monitor` runs: the command, the server, the monitor and the dashboard.
SERVE_ENTRY = ("mooring.cli._serve", "mooring.cli._monitor", "mooring.dashboard")


def module_files() -> dict[str, Path]:
    return {module_name(p): p for p in sources()}


def closure(entry: tuple[str, ...]) -> set[str]:
    """mooring's modules reachable from ``entry`` through imports at any depth."""
    files = module_files()
    seen: set[str] = set()
    todo = list(entry)
    while todo:
        name = todo.pop()
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        for cut in range(2, name.count(".") + 2):
            prefix = ".".join(name.split(".")[:cut])
            if prefix in files and prefix not in seen:
                seen.add(prefix)
                todo.extend(m for m in imports_of(files[prefix]) if m.startswith("mooring"))
    return seen


def test_serve_with_monitor_reaches_no_keras_statically() -> None:
    reached = closure(SERVE_ENTRY)
    files = module_files()
    wrong = sorted(
        f"{name} imports {module}"
        for name in reached
        for module in imports_of(files[name])
        if module.split(".")[0] == "keras" or module.startswith("mooring.training")
    )
    assert wrong == []


@pytest.mark.slow
def test_serve_with_monitor_never_imports_keras() -> None:
    """The modules `mooring serve --monitor` runs, and TensorFlow as the server imports it."""
    probe = "\n".join(
        [
            "import sys, json",
            "import mooring.cli._serve, mooring.cli._monitor",
            "import mooring.serving, mooring.monitoring, mooring.dashboard",
            "import mooring.contract._schema",
            "from mooring._tensorflow import import_tensorflow",
            "import_tensorflow()",
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'keras')))",
        ]
    )
    assert json.loads(_run(probe)) == []


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]
