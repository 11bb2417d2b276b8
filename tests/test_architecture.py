"""The architecture is visible in the tree: layers import downward only."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "mooring"
# Lower index = lower layer. Foundation modules may be imported by any layer.
LAYERS = [
    "contract",
    "features",
    "training",
    "evaluation",
    "registry",
    "export",
    "serving",
    "monitoring",
    "pipeline",
]
FOUNDATION = {"errors", "config", "_tensorflow", "formats"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mooring" or len(parts) < 2:
        return None
    return parts[1]


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_downward_only(layer: str) -> None:
    folder = SRC / layer
    if not folder.is_dir():
        pytest.skip(f"layer {layer} does not exist yet")
    rank = LAYERS.index(layer)
    upward = []
    for path in folder.rglob("*.py"):
        for module in imports_of(path):
            target = layer_of(module)
            if target is None or target in FOUNDATION or target == layer:
                continue
            if target not in LAYERS or LAYERS.index(target) > rank:
                upward.append(f"{path.relative_to(SRC)} imports {module}")
    assert upward == [], "upward imports:\n" + "\n".join(upward)


def test_foundation_imports_no_layer() -> None:
    for name in FOUNDATION:
        package = SRC / name
        files = sorted(package.rglob("*.py")) if package.is_dir() else [SRC / f"{name}.py"]
        for module in (m for path in files for m in imports_of(path)):
            assert layer_of(module) in (None, *FOUNDATION), f"{name}.py imports {module}"


@pytest.mark.parametrize("layer", LAYERS)
def test_public_surface_declared(layer: str) -> None:
    if not (SRC / layer).is_dir():
        pytest.skip(f"layer {layer} does not exist yet")
    package = importlib.import_module(f"mooring.{layer}")
    exported = getattr(package, "__all__", None)
    assert exported, f"mooring.{layer} must declare __all__"
    missing = [name for name in exported if not hasattr(package, name)]
    assert missing == [], f"mooring.{layer}.__all__ names missing attributes: {missing}"
