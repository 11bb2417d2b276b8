"""The architecture is visible in the tree: an explicit table of allowed imports between packages.

Each top-level part of ``mooring`` (a package such as ``serving`` or a module such as
``project``) may import only the parts its row lists. Imports inside functions count
too: a lazy import is still a dependency. ARCHITECTURE.md shows the same table.

Below the table, the graph of mooring's modules holds no import circle and no import by
string, and the imports into another package's private modules are counted and may not
grow (``-rA`` shows the count).
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.source import parse_file

SRC = Path(__file__).resolve().parent.parent / "src" / "mooring"

# part → the parts it may import. Every part may import itself; nothing may import `cli`
# except `cli` and the entry points.
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "_tensorflow": frozenset(),
    "_exports": frozenset(),
    "_sandbox": frozenset(),
    "_interrupts": frozenset(),
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
            "_interrupts",
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


@functools.cache
def _parse(path: Path) -> ast.Module:
    """The file's syntax tree (parsed once: every test here reads the same files)."""
    return parse_file(path)


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


# The module graph: which of mooring's modules each module's imports run.


def _type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _script_only(test: ast.expr) -> bool:
    """``if __name__ == "__main__":`` (its imports are the script's, a module of its own)."""
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


# The module files, listed once for the graph's tests.
_module_files = functools.cache(module_files)


def import_statements(
    tree: ast.Module, *, typing: bool = False
) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement the module runs: at module level and inside functions, not
    under ``if __name__ == "__main__":``, nor under ``if TYPE_CHECKING:`` unless ``typing``."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and (
            _script_only(node.test) or (not typing and _type_checking(node.test))
        ):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, *, typing: bool = False) -> set[str]:
    """The modules of mooring that module ``name``'s imports name, relative ones resolved:
    ``from pkg import x`` is the module ``pkg.x`` when there is one, else ``pkg`` (and
    ``import a.b.c`` is ``a.b.c``).

    A package's ``__init__``, which Python runs before a module inside it, is left out
    unless imported by name: Python starts a package before its modules, so a package
    whose face imports its modules, which import each other by their full names, holds
    no circle. ``from mooring.monitoring import Monitor`` inside ``monitoring/`` names the
    face and is counted.
    """
    files = _module_files()
    path = files[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in import_statements(_parse(path), typing=typing):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module = alias.name
                while module and module not in files:
                    module = module.rpartition(".")[0]
                if module:
                    found.add(module)
            continue
        base = node.module or ""
        if node.level:
            anchor = package[: len(package) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            inner = f"{base}.{alias.name}"
            if inner in files:
                found.add(inner)
            elif base in files:
                found.add(base)
    return found


def imported_by_name() -> dict[str, set[str]]:
    """The modules mooring imports by name from a table, as edges of the graph: the command
    line imports only the module of the command it runs (``mooring.cli.COMMANDS``), so
    ``mooring serve`` imports no other command's."""
    from mooring.cli import COMMANDS

    return {"mooring.cli": {f"mooring.cli.{module}" for module in COMMANDS.values()}}


# The string imports whose edges imported_by_name puts in the graph: (module, prefix).
IMPORTED_BY_NAME = frozenset({("mooring.cli", "mooring.cli.")})


def module_graph() -> dict[str, set[str]]:
    """Each module of mooring → the modules of mooring its run-time imports run."""
    graph = {name: imported_modules(name) for name in module_files()}
    for name, modules in imported_by_name().items():
        graph[name] |= modules
    return graph


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The graph's strongly connected components of more than one module, and each module
    that imports itself: the import circles."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for module in graph[todo.pop()]:
                if module not in seen:
                    seen.add(module)
                    todo.append(module)
        reach[start] = seen
    found: list[frozenset[str]] = []
    placed: set[str] = set()
    for start in sorted(graph):
        if start in placed:
            continue
        component = frozenset({start} | {m for m in reach[start] if start in reach[m]})
        placed |= component
        if len(component) > 1 or start in graph[start]:
            found.append(component)
    return found


def test_circles_finds_a_circle_and_a_self_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}
    assert circles(graph) == [frozenset("abc"), frozenset("e")]


def test_no_import_circle_at_run_time() -> None:
    """No module's imports, at module level or in a function, lead back to it: a circle
    makes the import order decide what works, and hides one concept split over two files."""
    found = circles(module_graph())
    assert found == [], (
        "import circles (move the shared part down into a module both import):\n"
        + ("\n".join(" <-> ".join(sorted(c)) for c in found))
    )


def string_imports(path: Path) -> Iterator[str]:
    """The modules of mooring a file imports by string (``importlib.import_module``,
    ``__import__``): a string or f-string that starts with ``mooring``."""
    for node in ast.walk(_parse(path)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        called = node.func
        name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
        if name not in {"import_module", "__import__"}:
            continue
        first = node.args[0]
        if isinstance(first, ast.JoinedStr) and first.values:
            first = first.values[0]
        text = first.value if isinstance(first, ast.Constant) else None
        if isinstance(text, str) and (text == "mooring" or text.startswith("mooring.")):
            yield text


def test_no_string_import_of_mooring() -> None:
    """An import by string is an edge the module graph cannot see (one hid a circle), unless
    the test reads it from its table (:data:`IMPORTED_BY_NAME`)."""
    found = {
        (name, module) for name, path in _module_files().items() for module in string_imports(path)
    }
    wrong = sorted(found - IMPORTED_BY_NAME)
    assert wrong == [], "import these by name:\n" + (
        "\n".join(f"{name} imports {module!r}" for name, module in wrong)
    )


def package_of(module: str) -> str:
    """The part of mooring a module is in: ``mooring.formats._gate`` → ``formats``,
    ``mooring._project`` → ``_project``, ``mooring`` → ``""``."""
    return module.split(".")[1] if "." in module else ""


def crosses_into_private(importer: str, module: str) -> bool:
    """Whether ``importer`` importing ``module`` reaches past another package's face:
    ``module`` is in another part of mooring and a part of its name past that package
    starts with one underscore (``mooring.formats._gate`` from ``mooring.cli._models``;
    not ``mooring.registry``, a face, nor ``mooring._tensorflow``, a part itself)."""
    parts = module.split(".")
    return package_of(module) != package_of(importer) and any(
        p.startswith("_") and not p.startswith("__") for p in parts[2:]
    )


def private_cross_package_imports() -> set[tuple[str, str]]:
    """Each (module, another package's private module it imports) pair of mooring, counted
    once however many names or statements it takes; imports inside functions and under
    ``if TYPE_CHECKING:`` count (a type names the module as a call does)."""
    return {
        (name, module)
        for name in _module_files()
        for module in imported_modules(name, typing=True)
        if crosses_into_private(name, module)
    }


def private_reach() -> set[tuple[str, str]]:
    """Each (package, another package's private module some module of it imports) pair:
    how far each package reaches past the others' faces. Splitting a module inside a
    package leaves it unchanged (where :func:`private_cross_package_imports`, module by
    module, counts the import again for each new module); a package that starts needing
    another's private module raises it."""
    return {(package_of(name), module) for name, module in private_cross_package_imports()}


# The packages' reach into each other's private modules (private_reach) may fall, never
# rise: a new dependency between packages goes through a face, or lowers another.
PRIVATE_REACH_CEILING = 279


def test_crosses_into_private() -> None:
    assert crosses_into_private("mooring.cli._models", "mooring.formats._gate")
    assert crosses_into_private("mooring", "mooring.registry._sql.store")
    assert not crosses_into_private("mooring.cli._models", "mooring.registry")
    assert not crosses_into_private("mooring.cli._models", "mooring.cli._common")
    assert not crosses_into_private("mooring.cli._models", "mooring._tensorflow")


def test_private_cross_package_imports_do_not_grow() -> None:
    count, reach = len(private_cross_package_imports()), len(private_reach())
    print(
        f"private cross-package imports: {count} module by module; "
        f"{reach} (package, private module) pairs (ceiling {PRIVATE_REACH_CEILING})"
    )
    assert reach <= PRIVATE_REACH_CEILING, (
        f"mooring's packages reach into {reach} (package, private module) pairs, above "
        f"the ceiling {PRIVATE_REACH_CEILING}: import through the package's face, or move "
        "what is shared into the importing package"
    )


def test_a_parse_the_interpreter_fails_is_done_again_in_a_fresh_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = SRC / "_exports.py"
    expected = ast.dump(ast.parse(path.read_text(encoding="utf-8")))
    refused: list[str] = []

    def broken(source: str, *args: object, **kwargs: object) -> ast.Module:
        refused.append(source)
        raise SystemError("AST constructor recursion depth mismatch (before=141, after=74)")

    monkeypatch.setattr(ast, "parse", broken)
    assert ast.dump(parse_file(path)) == expected
    assert len(refused) == 1  # this process refused; the tree came from a fresh one
