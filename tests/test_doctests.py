"""Every docstring example in ``src/mooring`` runs and prints what it shows.

One test per module, named by the module. Collection only lists files; a module is
imported when its test runs, and all of them hold one xdist group, so under ``make
test`` one worker imports the package once instead of each worker importing all of it.
Alembic's ``registry/migrations`` scripts run only inside a migration and are left out,
as are ``__main__`` modules (importing one runs the command line).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "mooring"
LEFT_OUT = (PACKAGE / "registry" / "migrations",)

# pytest's default for --doctest-modules: "..." in an expected output matches anything.
OPTIONS = doctest.ELLIPSIS

pytestmark = pytest.mark.xdist_group("doctests")


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py" or any(path.is_relative_to(d) for d in LEFT_OUT):
            continue
        parts = path.relative_to(SRC).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules()


class _Finder(doctest.DocTestFinder):
    """The standard finder, plus a class's ``cached_property`` docstrings (as pytest's
    finder reads them; Python 3.11's does not)."""

    def _find(
        self,
        tests: list[doctest.DocTest],
        obj: Any,
        name: str,
        module: Any,
        source_lines: list[str] | None,
        globs: dict[str, Any],
        seen: dict[int, int],
    ) -> None:
        super()._find(tests, obj, name, module, source_lines, globs, seen)  # type: ignore[misc]
        if not inspect.isclass(obj):
            return
        found = {t.name for t in tests}
        for attr, value in obj.__dict__.items():
            full = f"{name}.{attr}"
            if isinstance(value, cached_property) and full not in found:
                self._find(tests, value.func, full, module, source_lines, globs, seen)


def test_the_walk_finds_the_package() -> None:
    assert {"mooring", "mooring.config", "mooring.contract._sketch"} <= set(MODULES)
    assert not [m for m in MODULES if m.startswith("mooring.registry.migrations")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # An optional extra that is not installed; a mooring module that fails to import
        # is a failure.
        if exc.name is None or exc.name.split(".")[0] == "mooring":
            raise
        pytest.skip(f"{name} needs {exc.name}, which is not installed")
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in _Finder().find(module, name):
        runner.run(test, out=report.append)
    if runner.failures:
        pytest.fail(
            f"{runner.failures} of {runner.tries} examples in {name} failed:\n" + "".join(report),
            pytrace=False,
        )
