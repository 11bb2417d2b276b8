"""Fingerprints of a step's inputs, and the code version that takes part in them.

A step is re-run when the sha256 of its inputs changes. The inputs are plain JSON
values (file hashes, config sections, upstream outputs, the code version) hashed
in canonical form (sorted keys), so equal inputs always give equal keys.

The code version is, by default, the installed mooring version plus a sha256 of
every ``*.py`` file of the ``mooring`` package (path and bytes): editing mooring's
source invalidates the caches of an editable install, and a released wheel keeps
one stable hash. ``[pipeline] code_fingerprint = "package"`` uses the version alone.

Examples:
    >>> digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1})
    True
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import orjson

__all__ = ["code_version", "digest", "package_version", "source_sha256"]


def digest(value: Any) -> str:
    """sha256 (hex) of a JSON value in canonical form (sorted keys, no spaces)."""
    data = orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )
    return hashlib.sha256(data).hexdigest()


def package_version() -> str:
    """The installed mooring version (``0+unknown`` when running from a bare source tree);
    the distribution is ``mooring-ml``, as ``mooring`` on the index is another project."""
    try:
        return version("mooring-ml")
    except PackageNotFoundError:  # pragma: no cover - not installed
        return "0+unknown"


@functools.cache
def source_sha256() -> str:
    """sha256 over the relative path and bytes of every ``.py`` file of the mooring package.

    Computed once per process (about 100 small files).
    """
    root = Path(__file__).resolve().parent.parent
    hasher = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        hasher.update(path.relative_to(root).as_posix().encode())
        hasher.update(b"\0")
        hasher.update(path.read_bytes())
        hasher.update(b"\0")
    return hasher.hexdigest()


def code_version(mode: Literal["source", "package"] = "source") -> dict[str, str]:
    """``{"mooring": "0.1.0", "source_sha256": …, "code_version": "0.1.0+src.1a2b3c4d5e6f"}``.

    Examples:
        >>> code_version("package")["code_version"] == package_version()
        True
    """
    ver = package_version()
    if mode == "package":
        return {"mooring": ver, "source_sha256": "", "code_version": ver}
    sha = source_sha256()
    return {"mooring": ver, "source_sha256": sha, "code_version": f"{ver}+src.{sha[:12]}"}
