"""The artifact store: model folders behind fsspec (a local folder or any object store).

Layout under the store's root::

    staging/<uuid>/...            uploads in progress (garbage if older than a grace period)
    models/<name>/<uuid>/...      published artifacts, referenced by a version row

An artifact is uploaded to a fresh location, checked against its manifest, and
only then referenced by a committed version row, so a crash at any point
leaves at most unreferenced files that :meth:`ArtifactStore.orphans` finds.
On a local folder the upload goes to ``staging/`` and is renamed into
``models/`` in one step; object stores have no rename, so there the upload goes
straight to its (still unreferenced) final key.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mooring.errors import IntegrityError, RegistryUnavailableError, UsageError
from mooring.registry._manifest import Manifest, ManifestDiff, diff_manifest, hash_stream

__all__ = ["ArtifactStore"]

STAGING = "staging"
MODELS = "models"


class ArtifactStore:
    """Model folders stored under one fsspec URL.

    Examples:
        >>> ArtifactStore("memory://mooring-example").is_local
        False
        >>> s3 = ArtifactStore("s3://bucket/m", storage_options={"anon": False})  # doctest: +SKIP
    """

    def __init__(
        self, url: str, *, storage_options: Mapping[str, Any] | None = None, create: bool = True
    ) -> None:
        self.url = url
        try:
            fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise UsageError(
                f"artifacts URL '{url}' cannot be used: {exc}; use a local folder or an fsspec "
                "URL such as s3://bucket/prefix (install the matching fsspec backend, e.g. s3fs)"
            ) from None
        self.fs: Any = fs
        self.root: str = str(root).rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)
        if self.is_local and create:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    # -- paths -----------------------------------------------------------------
    def path(self, key: str) -> str:
        """Full path (in the filesystem's terms) of a key relative to the root."""
        return f"{self.root}/{key}"

    def local_path(self, key: str) -> Path:
        """The folder of a key on a local store."""
        if not self.is_local:
            raise UsageError(f"artifact store '{self.url}' is not local; use load() to download")
        return Path(self.path(key))

    def _files(self, key: str) -> Iterator[str]:
        """Relative paths of the files under ``key``."""
        base = self.path(key)
        if self.is_local:
            for current, _, names in os.walk(base):
                rel_dir = Path(current).relative_to(base)
                for name in names:
                    yield (rel_dir / name).as_posix()
            return
        prefix = self.fs._strip_protocol(base).rstrip("/") + "/"
        for found in self.fs.find(base):
            stripped = self.fs._strip_protocol(found)
            if stripped.startswith(prefix):
                yield stripped[len(prefix) :]

    def _hash(self, key: str, rel: str) -> tuple[str, int]:
        with self.fs.open(f"{self.path(key)}/{rel}", "rb") as stream:
            return hash_stream(stream)

    # -- write path --------------------------------------------------------------
    def upload(self, folder: Path, manifest: Manifest, *, name: str) -> str:
        """Copy ``folder`` to a fresh, unreferenced location, verify it, return its final key.

        Raises :class:`IntegrityError` when the stored copy does not match the
        manifest (the source changed during the upload, or the store corrupted it).
        """
        token = uuid.uuid4().hex
        final_key = f"{MODELS}/{name}/{token}"
        write_key = f"{STAGING}/{token}" if self.is_local else final_key
        try:
            self._put(folder, manifest, write_key)
            diff = self.diff(write_key, manifest)
            if not diff.ok:
                raise IntegrityError(
                    f"the uploaded copy of '{folder}' does not match the files hashed before "
                    f"upload ({diff.describe()}); do not modify the folder while registering "
                    "and try again"
                )
            if self.is_local:
                target = Path(self.path(final_key))
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.path(write_key), target)
        except BaseException:
            self.remove(write_key)
            raise
        return final_key

    def _put(self, folder: Path, manifest: Manifest, key: str) -> None:
        base = self.path(key)
        if self.is_local:
            Path(base).mkdir(parents=True)
            for rel in manifest.dirs:
                Path(base, rel).mkdir(parents=True, exist_ok=True)
            for rel in manifest.files:
                shutil.copyfile(folder / rel, Path(base, rel))
            return
        try:
            for rel in manifest.files:
                self.fs.put_file(str(folder / rel), f"{base}/{rel}")
        except OSError as exc:
            raise RegistryUnavailableError(
                f"cannot write to artifact store '{self.url}': {exc}; check the URL, the "
                "credentials and that the bucket exists"
            ) from None

    def remove(self, key: str) -> None:
        """Delete everything under ``key`` (missing keys are fine)."""
        try:
            if self.is_local:
                shutil.rmtree(self.path(key), ignore_errors=True)
            elif self.fs.exists(self.path(key)):
                self.fs.rm(self.path(key), recursive=True)
        except FileNotFoundError:
            pass

    # -- read path ----------------------------------------------------------------
    def diff(self, key: str, manifest: Manifest) -> ManifestDiff:
        """Compare the stored files under ``key`` with ``manifest`` (hashes every file)."""
        return diff_manifest(manifest, self._files(key), lambda rel: self._hash(key, rel))

    def download(self, key: str, manifest: Manifest, dest: Path) -> None:
        """Copy the artifact under ``key`` to the local folder ``dest`` (created, must not exist).

        The copy lands in a sibling temporary folder and is renamed into place,
        so ``dest`` is either absent or complete.
        """
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        tmp.mkdir(parents=True)
        try:
            for rel in manifest.dirs:
                (tmp / rel).mkdir(parents=True, exist_ok=True)
            for rel in manifest.files:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{self.path(key)}/{rel}", str(tmp / rel))
            os.rename(tmp, dest)
        except FileNotFoundError as exc:
            raise IntegrityError(
                f"artifact file missing from '{self.url}/{key}': {exc}; the stored model was "
                "removed or modified after registration; register the model again"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- garbage -----------------------------------------------------------------
    def list_keys(self, *, staging_only: bool = False) -> list[str]:
        """Every artifact key present: staging uploads and published model folders.

        ``staging_only`` lists the unfinished uploads alone (one listing, however many
        models the store holds).
        """
        found: list[str] = []
        for top in (STAGING,) if staging_only else (STAGING, MODELS):
            base = self.path(top)
            if not self.fs.exists(base):
                continue
            for entry in self.fs.ls(base, detail=False):
                child = str(entry).rstrip("/").rsplit("/", 1)[-1]
                if top == STAGING:
                    found.append(f"{STAGING}/{child}")
                    continue
                for sub in self.fs.ls(f"{base}/{child}", detail=False):
                    found.append(f"{MODELS}/{child}/{str(sub).rstrip('/').rsplit('/', 1)[-1]}")
        return found

    def age_seconds(self, key: str) -> float | None:
        """Seconds since the folder under ``key`` was last modified (None when unknown)."""
        if self.is_local:
            try:
                return time.time() - os.stat(self.path(key)).st_mtime
            except FileNotFoundError:
                return None
        newest: float | None = None
        for info in self.fs.find(self.path(key), detail=True).values():
            modified = info.get("LastModified") or info.get("mtime")
            stamp = modified.timestamp() if hasattr(modified, "timestamp") else modified
            if isinstance(stamp, int | float):
                newest = stamp if newest is None else max(newest, float(stamp))
        return None if newest is None else time.time() - newest

    def collect(
        self, referenced: Callable[[], set[str]], *, older_than: float, staging_only: bool
    ) -> list[str]:
        """Remove keys not in ``referenced()`` and untouched for ``older_than`` seconds.

        ``referenced`` is called only when there is a candidate (opening a registry
        usually finds none, and then asks the database nothing).
        """
        candidates = self.list_keys(staging_only=staging_only)
        if not candidates:
            return []
        keep = referenced()
        removed = []
        for key in candidates:
            age = None if key in keep else self.age_seconds(key)
            if key not in keep and (age is None or age >= older_than):
                self.remove(key)
                removed.append(key)
        return removed
