"""A package's public names imported on first use (PEP 562), for packages whose users
need only part of them.

A foundation module (no mooring imports). ``mooring`` hands out its names this way, so
``import mooring`` loads neither TensorFlow nor the server, and so does
``mooring.serving``, so that the supervisor of ``mooring serve --workers N`` imports none
of the server. Such a package declares its names once, in a map of name → module
(``_EXPORTS``), and derives ``__all__`` from it; type checkers, which need real imports,
read an ``if TYPE_CHECKING:`` block that repeats each name as ``from MODULE import NAME as
NAME`` (tests/test_exports.py fails when the block and the map differ).

Examples:
    >>> _EXPORTS = {"Fraction": "fractions"}
    >>> __all__ = list(_EXPORTS)
    >>> __getattr__, __dir__ = exports_on_first_use("pkg", _EXPORTS, {})
    >>> __getattr__("Fraction")(1, 2)
    Fraction(1, 2)
    >>> __dir__()
    ['Fraction']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exports_on_first_use"]


def exports_on_first_use(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    ``exports`` maps each public name to the module that defines it; ``namespace`` is
    the package's ``globals()``. A name is imported from its module when first read and
    then kept in ``namespace``, so later reads are plain lookups. Any other name raises
    ``AttributeError``, as a module without it would.
    """

    def get(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted({*namespace, *exports})

    return get, names
