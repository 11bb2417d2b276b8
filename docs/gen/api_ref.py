"""The Python API reference, rendered from what each package face exports.

``<!-- mooring:api MODULE -->`` becomes a mkdocstrings block (``::: MODULE.NAME``) per
name of ``MODULE.__all__``, so a name added to a face is documented with no edit here.
``mooring`` takes most of its names from the faces, documented there; its section holds
the rest (``Project``) and lists the others. The error classes are one block, rendered
on their own page (``HOME``): every object has one primary page, the one cross-references
resolve to, and the Python API page links each class there instead of rendering it again.

Examples:
    >>> print(render("mooring.config").splitlines()[0])
    ::: mooring.config.MooringConfig
    >>> print(render("mooring.errors", "reference/python.md").split(": ")[0])
    Documented on [Exit codes and errors](errors.md#error-classes)
"""

from __future__ import annotations

import importlib
import posixpath
from typing import Any

# mkdocstrings options for a name whose every member would bury the few a user calls.
OPTIONS: dict[str, dict[str, Any]] = {
    "mooring.config.MooringConfig": {"members": ["from_mapping"]},
    "mooring.config.ServingConfig": {"members": False},
}

# Faces documented as one block of their names: the error classes, with their bases.
ONE_BLOCK: dict[str, dict[str, Any]] = {
    "mooring.errors": {
        "show_root_heading": False,
        "show_root_toc_entry": False,
        "show_bases": True,
    },
}

# Faces rendered on a page of their own (its path under docs/, and its section's anchor);
# any other page that names them links there, so each object has one primary URL.
HOME: dict[str, tuple[str, str, str]] = {
    "mooring.errors": ("reference/errors.md", "error-classes", "Exit codes and errors"),
}


def exported(module: str) -> list[str]:
    """``module.__all__``; for ``mooring``, the names no face exports."""
    face = importlib.import_module(module)
    if module != "mooring":
        return list(face.__all__)
    return [name for name, source in face._EXPORTS.items() if not _is_face(source)]


def render(module: str, page: str | None = None) -> str:
    """The Markdown of ``module``'s section on ``page`` (a path under docs/): its ``:::``
    blocks (and, for ``mooring``, the names it takes from the faces), or, on a page other
    than the module's ``HOME``, a link to each of its names there."""
    names = exported(module)
    if module in HOME and page != HOME[module][0]:
        return _links(module, names, page or "")
    if module in ONE_BLOCK:
        # In the order the module defines them (a base class before its subclasses),
        # which mkdocstrings follows for an explicit list of members.
        defined = list(vars(importlib.import_module(module)))
        names = sorted(names, key=defined.index)
        return _block(module, {**ONE_BLOCK[module], "members": names})
    blocks = [_block(f"{module}.{name}", OPTIONS.get(f"{module}.{name}", {})) for name in names]
    if module == "mooring":
        blocks.append(_from_faces())
    return "\n".join(blocks)


def _is_face(module: str) -> bool:
    return not any(part.startswith("_") for part in module.split("."))


def _from_faces() -> str:
    import mooring

    by_face: dict[str, list[str]] = {}
    for name, source in mooring._EXPORTS.items():
        if _is_face(source):
            by_face.setdefault(source, []).append(f"`{name}`")
    lines = [f"- from `{face}`: {', '.join(names)}" for face, names in by_face.items()]
    return "`import mooring` also gives these names, documented with their face below:\n\n" + (
        "\n".join(lines) + "\n"
    )


def _links(module: str, names: list[str], page: str) -> str:
    home, anchor, title = HOME[module]
    target = posixpath.relpath(home, posixpath.dirname(page) or ".")
    refs = ", ".join(f"[`{name}`][{module}.{name}]" for name in names)
    return f"Documented on [{title}]({target}#{anchor}): {refs}.\n"


def _block(identifier: str, options: dict[str, Any]) -> str:
    lines = [f"::: {identifier}"]
    if options:
        lines.append("    options:")
        lines += [f"      {key}: {_yaml(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
