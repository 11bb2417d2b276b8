"""The attached-artifact side of :class:`~mooring.registry.Registry`: files added to a
version after registration (an edge export, a calibration), each stored and verified like
the version's own files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mooring.errors import NotFoundError, UsageError
from mooring.registry._artifacts import ArtifactStore
from mooring.registry._local import artifact_folder
from mooring.registry._manifest import build_manifest
from mooring.registry._names import check_model_name, check_version
from mooring.registry._provenance import check_artifact_name, default_actor, plain_json
from mooring.registry._records import VersionArtifact
from mooring.registry._store import NewArtifact, Store

__all__ = ["Attachments"]


class Attachments:
    """The attached-artifact methods of the registry (a base of
    :class:`~mooring.registry.Registry`)."""

    store: Store
    artifacts: ArtifactStore
    cache_dir: Path

    def _resolve(self, name: str, version: int | None, alias: str | None) -> int:
        raise NotImplementedError

    def attach_artifact(
        self,
        name: str,
        *,
        version: int,
        artifact: str,
        path: str | os.PathLike[str],
        details: Mapping[str, Any] | None = None,
        actor: str | None = None,
        reason: str | None = None,
        replace: bool = False,
    ) -> VersionArtifact:
        """Attach a file or folder to an existing version under the name ``artifact``.

        The files are hashed, uploaded to their own key and verified like a
        version's; the version's row and manifest stay as registered. A second
        artifact of the same name is refused unless ``replace=True``. Audited
        as ``attach``. Example::

            registry.attach_artifact("income", version=3, artifact="tflite-int8",
                                     path="exports/model.tflite", details={"auc_delta": -0.002})
        """
        check_model_name(name)
        check_version(version)
        check_artifact_name(artifact)
        source = Path(path)
        details_d = plain_json(details, "details")
        # Fail on an unknown version before anything is uploaded.
        self.store.get_version(name=name, version=version, heavy=False)
        with tempfile.TemporaryDirectory(prefix="mooring-attach-") as tmp:
            if source.is_file():
                folder = Path(tmp)
                shutil.copyfile(source, folder / source.name)
            elif source.is_dir():
                folder = source
            else:
                raise UsageError(
                    f"'{source}' is neither a file nor a folder; pass the path of the file "
                    f"to attach to {name}@{version}"
                )
            manifest = build_manifest(folder)
            key = self.artifacts.upload(folder, manifest, name=name)
        try:
            stored, replaced = self.store.add_artifact(
                new=NewArtifact(
                    name=name,
                    version=version,
                    artifact=artifact,
                    artifact_key=key,
                    manifest=manifest.to_dict(),
                    manifest_sha256=manifest.sha256,
                    size_bytes=manifest.size_bytes,
                    details=details_d,
                    created_by=actor or default_actor(),
                ),
                reason=reason,
                replace=replace,
            )
        except BaseException:
            self.artifacts.remove(key)
            raise
        if replaced is not None:
            self.artifacts.remove(replaced)
        return stored

    def version_artifacts(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> list[VersionArtifact]:
        """The artifacts attached to a version (by number, alias, or the latest)."""
        number = self._resolve(name, version, alias)
        return self.store.list_artifacts(name=name, version=number)

    def load_artifact(
        self, name: str, artifact: str, *, version: int | None = None, alias: str | None = None
    ) -> Path:
        """A local folder holding an attached artifact, verified file by file.

        Example::

            folder = registry.load_artifact("income", "tflite-int8", version=3)
            interpreter = Interpreter(model_path=str(folder / "model.tflite"))
        """
        number = self._resolve(name, version, alias)
        found = {a.artifact: a for a in self.store.list_artifacts(name=name, version=number)}
        if artifact not in found:
            raise NotFoundError(
                f"{name}@{number} has no artifact '{artifact}' (attached: "
                f"{', '.join(found) or 'none'}); list them with `mooring models show {name} "
                f"--version {number}`"
            )
        return artifact_folder(self.artifacts, self.cache_dir, found[artifact])
