"""Verified local folders of stored file sets: a version's artifact or an attached one.

On a local artifact store the stored folder itself is checked file by file; on a
remote one the files are downloaded once into the cache and the copy is checked.
Either way a folder is returned only when every file matches the manifest recorded
when it was stored; otherwise :class:`~mooring.errors.IntegrityError` names the
difference.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from mooring.errors import IntegrityError, UsageError
from mooring.registry._artifacts import ArtifactStore
from mooring.registry._manifest import Manifest, ManifestDiff, diff_folder
from mooring.registry._records import ModelVersion, VersionArtifact

__all__ = ["artifact_folder", "check_version_files", "version_folder", "version_manifest"]


def version_manifest(mv: ModelVersion) -> Manifest:
    """The manifest a version recorded at registration (needs the full record)."""
    if mv.manifest is None:
        raise UsageError(f"{mv.ref}: fetch the full record with get() before loading")
    return Manifest.from_dict(mv.manifest)


def check_version_files(mv: ModelVersion, diff: ManifestDiff, where: str) -> None:
    """Raise :class:`IntegrityError` when the ``where`` copy of a version's files differs."""
    if not diff.ok:
        raise IntegrityError(
            f"{mv.ref}: the {where} artifact does not match the manifest recorded at "
            f"registration ({diff.describe()}); refusing to load a modified model; restore "
            f"the files from a backup or register the model again"
        )


def version_folder(
    artifacts: ArtifactStore, cache_dir: Path, mv: ModelVersion, manifest: Manifest
) -> Path:
    """A local folder holding a version's artifact, verified against ``manifest``.

    Example::

        mv = registry.get("income")
        path = version_folder(registry.artifacts, registry.cache_dir, mv, version_manifest(mv))
    """
    if artifacts.is_local:
        check_version_files(mv, artifacts.diff(mv.artifact_key, manifest), "stored")
        return artifacts.local_path(mv.artifact_key)
    dest = cache_dir / mv.name / f"{mv.version}-{mv.manifest_sha256[:16]}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            artifacts.download(mv.artifact_key, manifest, dest)
        except FileExistsError:
            pass  # another process finished the same download first
        except OSError as exc:
            if not dest.exists():
                raise IntegrityError(
                    f"{mv.ref}: cannot download its artifact from '{artifacts.url}' "
                    f"({exc}); check that the store is reachable and the files exist"
                ) from None
    check_version_files(mv, diff_folder(dest, manifest), "downloaded")
    return dest


def artifact_folder(artifacts: ArtifactStore, cache_dir: Path, item: VersionArtifact) -> Path:
    """A local folder holding an attached artifact, verified against its manifest.

    Example::

        folder = artifact_folder(registry.artifacts, registry.cache_dir, attached[0])
    """
    manifest = Manifest.from_dict(item.manifest)
    if artifacts.is_local:
        diff = artifacts.diff(item.artifact_key, manifest)
        dest = artifacts.local_path(item.artifact_key)
    else:
        name = f"{item.version}-{item.artifact}-{item.manifest_sha256[:16]}"
        dest = cache_dir / item.model / name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            # FileExistsError: another process finished the same download first.
            with contextlib.suppress(FileExistsError):
                artifacts.download(item.artifact_key, manifest, dest)
        diff = diff_folder(dest, manifest)
    if not diff.ok:
        raise IntegrityError(
            f"{item.ref}: the stored files do not match the manifest recorded when they "
            f"were attached ({diff.describe()}); attach the artifact again"
        )
    return dest
