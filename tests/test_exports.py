"""Packages that hand out their public names on first use (``mooring._exports``).

Such a package declares its names once, in ``_EXPORTS`` (name → module); ``__all__``,
``dir()`` and the lazy import come from it. Type checkers need real imports, so its
``TYPE_CHECKING`` block repeats each name: the tests here fail when the two differ.
"""

from __future__ import annotations

import ast
import importlib
import json
import pydoc
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests._support.source import parse_file

# The packages whose names are imported on first use: the top-level API and the serving
# layer.
LAZY_PACKAGES = ("mooring", "mooring.serving")


def type_checking_imports(package: ModuleType) -> dict[str, str]:
    """Each name the package's ``if TYPE_CHECKING:`` block imports, and its module; a
    name imported without ``as`` itself (not re-exported to type checkers) maps to ''."""
    tree = parse_file(Path(str(package.__file__)))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                for alias in statement.names:
                    re_exported = alias.asname == alias.name
                    found[alias.asname or alias.name] = statement.module if re_exported else ""
    return found


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_the_type_checking_block_all_and_the_exports_agree(name: str) -> None:
    package = importlib.import_module(name)
    assert type_checking_imports(package) == package._EXPORTS, (
        f"{name}: the TYPE_CHECKING block must import each name of _EXPORTS, from the "
        "same module, as `from MODULE import NAME as NAME`, and nothing else"
    )
    extra = {"__version__"} if name == "mooring" else set()
    assert sorted(package.__all__) == sorted({*package._EXPORTS, *extra})


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_a_lazy_package_hands_out_each_name_from_its_module(name: str) -> None:
    package = importlib.import_module(name)
    exports = package._EXPORTS
    for public in exports:
        value = getattr(package, public)
        assert getattr(importlib.import_module(exports[public]), public) is value, public
        assert vars(package)[public] is value  # kept: the next read is a plain lookup
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match=rf"'{name}' has no attribute 'nothing'"):
        _ = package.nothing


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_help_lists_every_public_name(name: str) -> None:
    package = importlib.import_module(name)
    page = pydoc.render_doc(package, renderer=pydoc.plaintext)
    assert [n for n in package._EXPORTS if n not in page] == []


def test_the_top_level_names_are_public_where_they_come_from() -> None:
    """A name ``mooring`` takes from a package face is one that face exports too."""
    import mooring

    wrong = [
        f"{name} ({module})"
        for name, module in mooring._EXPORTS.items()
        if not module.removeprefix("mooring.").startswith("_")
        and name not in importlib.import_module(module).__all__
    ]
    assert wrong == []


def test_import_mooring_loads_neither_tensorflow_nor_the_server() -> None:
    probe = "import sys, json, mooring; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(run.stdout))
    assert not loaded & {"tensorflow", "keras", "starlette", "mooring.serving", "pyarrow"}
    assert {m for m in loaded if m.startswith("mooring")} <= {
        "mooring",
        "mooring._exports",
        "mooring._tensorflow",
    }
