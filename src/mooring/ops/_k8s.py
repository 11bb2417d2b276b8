"""``mooring ops k8s``: the server's image and Kubernetes manifests, written from the package.

The files live in the package (``mooring/ops/deploy/``), so someone who installed the
wheel has them without a checkout: a Dockerfile that installs ``mooring-ml`` at the
version that wrote it (from the package index, or from a wheel put in ``wheels/``), its
``.dockerignore``, a README, and the manifests under ``kubernetes/``. ``@VERSION@`` in
them becomes that version; nothing else changes, so what the tests check is what a user
gets.

Examples:
    >>> files = k8s_files("1.2.3")
    >>> "mooring-ml[${MOORING_EXTRAS}]==${MOORING_VERSION}" in files["Dockerfile"].decode()
    True
    >>> b"ARG MOORING_VERSION=1.2.3" in files["Dockerfile"], ".dockerignore" in files
    (True, True)
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from mooring.errors import UsageError
from mooring.formats._files import atomic_write

__all__ = ["VERSION_TOKEN", "k8s_files", "write_k8s"]

#: Replaced by the running mooring's version in every file written.
VERSION_TOKEN = "@VERSION@"

# Package data cannot be a dot file (setuptools' globs skip them): stored names → written.
_RENAMED = {"dockerignore": ".dockerignore"}


def k8s_files(version: str) -> dict[str, bytes]:
    """Every file ``mooring ops k8s`` writes: its path under the folder → its bytes."""
    files: dict[str, bytes] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name == "__pycache__":
                continue
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
                continue
            name = prefix + _RENAMED.get(entry.name, entry.name)
            files[name] = entry.read_bytes().replace(VERSION_TOKEN.encode(), version.encode())

    walk(resources.files("mooring.ops") / "deploy", "")
    return files


def write_k8s(out: Path, *, version: str, force: bool = False) -> list[Path]:
    """Write :func:`k8s_files` into ``out`` (made if missing); return the paths written.

    Each file is written atomically with mode 0644. A file already there is refused,
    naming it, unless ``force``: nothing is written then.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "deploy"
        >>> sorted(p.name for p in write_k8s(folder, version="1.2.3"))[:4]
        ['.dockerignore', 'Dockerfile', 'README.md', 'README.md']
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"OUT {out} is a file, not a folder; pass a folder for the files")
    files = k8s_files(version)
    targets = {name: out / name for name in files}
    folders = [name for name, path in targets.items() if path.is_dir()]
    if folders:
        raise UsageError(
            f"{out} has a folder where a file goes ({', '.join(folders)}); move it away "
            "or choose another OUT folder"
        )
    there = [name for name, path in targets.items() if path.exists()]
    if there and not force:
        shown = ", ".join(there[:4]) + (f" and {len(there) - 4} more" if len(there) > 4 else "")
        raise UsageError(
            f"{out} already has {shown}; pass --force to overwrite them, or choose another "
            "OUT folder"
        )
    written = []
    for name, payload in files.items():
        written.append(atomic_write(targets[name], payload))
    return written
