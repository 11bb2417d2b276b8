"""Manifests: the sha256 of every file in a model artifact.

A manifest is computed from the local folder before upload, checked against
the uploaded copy before the version is committed, and checked again on every
load. Its own digest (sha256 of its canonical JSON) is stored with the version.

Examples:
    >>> m = build_manifest(Path("model_dir"))  # doctest: +SKIP
    >>> diff_manifest(m, build_manifest(Path("model_dir"))).ok  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mooring.errors import IntegrityError, UsageError

__all__ = [
    "Manifest",
    "ManifestDiff",
    "build_manifest",
    "canonical_json",
    "diff_folder",
    "diff_manifest",
    "hash_stream",
]

_CHUNK = 1 << 20
FORMAT = 1


def canonical_json(data: Any) -> str:
    """The one JSON text used wherever a hash is computed over structured data."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_stream(stream: IO[bytes]) -> tuple[str, int]:
    """sha256 hex digest and size of a binary stream, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class Manifest:
    """Relative POSIX path → (sha256, size) for every file, plus the folders (kept when empty)."""

    files: Mapping[str, tuple[str, int]]
    dirs: tuple[str, ...] = ()

    @property
    def size_bytes(self) -> int:
        """Total size of all files."""
        return sum(size for _, size in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (the stored form)."""
        return {
            "format": FORMAT,
            "files": {
                path: {"sha256": sha, "size": size}
                for path, (sha, size) in sorted(self.files.items())
            },
            "dirs": sorted(self.dirs),
        }

    @property
    def sha256(self) -> str:
        """Digest of the manifest itself."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Inverse of :meth:`to_dict`."""
        if data.get("format") != FORMAT:
            raise IntegrityError(
                f"manifest format {data.get('format')!r} is not supported (expected {FORMAT}); "
                "upgrade mooring to read this version"
            )
        files = {p: (str(e["sha256"]), int(e["size"])) for p, e in data["files"].items()}
        return cls(files=files, dirs=tuple(data.get("dirs", ())))


def build_manifest(folder: Path) -> Manifest:
    """Hash every file under ``folder``; refuse symlinks and empty folders with a clear error."""
    if not folder.is_dir():
        raise UsageError(
            f"artifact_dir '{folder}' is not a folder; pass the exported model folder "
            "(the SavedModel directory with mooring.json)"
        )
    files: dict[str, tuple[str, int]] = {}
    dirs: list[str] = []
    for current, subdirs, names in os.walk(folder):
        subdirs.sort()
        here = Path(current)
        for sub in subdirs:
            if (here / sub).is_symlink():
                link = (here / sub).relative_to(folder)
                raise UsageError(
                    f"artifact_dir '{folder}' contains a symlink '{link}'; copy the real "
                    "folder in its place before registering"
                )
            dirs.append((here / sub).relative_to(folder).as_posix())
        for name in sorted(names):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink() or not path.is_file():
                raise UsageError(
                    f"artifact_dir '{folder}' contains '{rel}', which is not a regular file "
                    "(a symlink or device); copy the real file in its place before registering"
                )
            with path.open("rb") as stream:
                files[rel] = hash_stream(stream)
    if not files:
        raise UsageError(f"artifact_dir '{folder}' contains no files; export the model there first")
    return Manifest(files=files, dirs=tuple(dirs))


@dataclass(frozen=True)
class ManifestDiff:
    """Files that differ between a manifest and what is stored."""

    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not (self.changed or self.missing or self.extra)

    def describe(self, limit: int = 5) -> str:
        """'changed: a, b; missing: c; extra: d' (at most ``limit`` names per kind)."""
        parts = []
        for kind, names in (
            ("changed", self.changed),
            ("missing", self.missing),
            ("extra", self.extra),
        ):
            if names:
                shown = ", ".join(names[:limit])
                more = f" and {len(names) - limit} more" if len(names) > limit else ""
                parts.append(f"{kind}: {shown}{more}")
        return "; ".join(parts)


def diff_manifest(expected: Manifest, actual_files: Iterable[str], hasher: Any) -> ManifestDiff:
    """Compare ``expected`` with the files present; ``hasher(rel) -> (sha256, size)``.

    Hashes are computed only for files that should be there, so an extra file
    is reported without being read.
    """
    present = set(actual_files)
    missing = sorted(set(expected.files) - present)
    extra = sorted(present - set(expected.files))
    changed = []
    for rel in sorted(set(expected.files) & present):
        if tuple(hasher(rel)) != tuple(expected.files[rel]):
            changed.append(rel)
    return ManifestDiff(changed=tuple(changed), missing=tuple(missing), extra=tuple(extra))


def diff_folder(folder: Path, manifest: Manifest) -> ManifestDiff:
    """:func:`diff_manifest` for a local folder."""
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]

    def hasher(rel: str) -> tuple[str, int]:
        with (folder / rel).open("rb") as stream:
            return hash_stream(stream)

    return diff_manifest(manifest, files, hasher)
