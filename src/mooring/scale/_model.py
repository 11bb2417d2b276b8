"""A registered version as batch-scoring workers see it: fetched, verified, loaded once.

The driver resolves the version in the registry, fetches and verifies its artifact
(as the server does) and ships a :class:`ModelRef`: the full version record, where its
artifact is stored, the verified folder and the version's data contract. Each worker
process turns the reference into a loaded :class:`~mooring.serving._loaded.ServedModel`
at most once (:func:`served_model` caches it by folder and manifest hash): on the
driver's machine it verifies the driver's folder file by file; elsewhere it fetches
the artifact from the store with the registry's own fetch-and-verify function.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mooring.config._data import ContractConfig
from mooring.contract._schema import Schema
from mooring.errors import MooringError
from mooring.registry import ModelVersion, Registry
from mooring.registry._artifacts import ArtifactStore
from mooring.registry._local import check_version_files, version_folder, version_manifest
from mooring.registry._manifest import diff_folder

if TYPE_CHECKING:
    from mooring.serving._loaded import ServedModel

__all__ = ["ModelRef", "resolve_model", "served_model"]

#: Loaded versions of this process, by (verified folder, manifest sha256).
_LOADED: dict[tuple[str, str], ServedModel] = {}


@dataclass(frozen=True)
class ModelRef:
    """What a worker needs to load one registered version and check rows as the server does.

    Attributes:
        record: the full version record (its manifest included).
        artifacts: the artifact store's URL.
        path: the folder the driver fetched and verified.
        cache_dir: where a worker without that folder downloads the artifact.
        schema: the version's data contract (None: the signature's checks only).
        contract_source: ``schema`` or ``statistics``, as the server reports it.
        contract_error: why the version has no contract checks, when its contract is broken.
    """

    record: ModelVersion
    artifacts: str
    path: str
    cache_dir: str
    schema: Schema | None = None
    contract_source: str | None = None
    contract_error: str | None = None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def manifest_sha256(self) -> str:
        return self.record.manifest_sha256


def resolve_model(
    registry: Registry,
    name: str,
    version: int | str = "production",
    *,
    contract: ContractConfig | None = None,
) -> ModelRef:
    """Find ``version`` (a number or an alias) of ``name``, fetch and verify it on this machine.

    The contract is the one the server checks at the door: the schema stored with the
    version, else one inferred from its training statistics with ``contract``'s rules.

    Raises:
        NotFoundError: no such model, version or alias.
        IntegrityError: the stored artifact does not match its manifest.

    Examples:
        >>> ref = resolve_model(registry, "income", "production")  # doctest: +SKIP
        >>> ref.version, ref.manifest_sha256[:8]  # doctest: +SKIP
        (3, '5d41402a')
    """
    from mooring.serving import RegistrySource

    if isinstance(version, int) or str(version).isdigit():
        record = registry.get(name, version=int(version))
    else:
        record = registry.get(name, alias=str(version))
    path = registry.load_version(record)
    schema = source = error = None
    try:
        found = RegistrySource(registry, name, contract=contract).contract_schema(record.version)
    except Exception as exc:  # the server serves such a version with signature checks only
        error = str(exc) if isinstance(exc, MooringError) else f"{type(exc).__name__}: {exc}"
    else:
        if found is not None:
            schema, source = found
    return ModelRef(
        record=record,
        artifacts=registry.artifacts.url,
        path=str(path),
        cache_dir=str(registry.cache_dir),
        schema=schema,
        contract_source=source,
        contract_error=error,
    )


def _verified_folder(ref: ModelRef) -> Path:
    manifest = version_manifest(ref.record)
    folder = Path(ref.path)
    if folder.is_dir():
        check_version_files(ref.record, diff_folder(folder, manifest), "fetched")
        return folder
    # Another machine: fetch from the store, verified file by file, into a local cache.
    cache = Path(ref.cache_dir)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        cache = Path(tempfile.gettempdir()) / "mooring-artifact-cache"
    return version_folder(ArtifactStore(ref.artifacts), cache, ref.record, manifest)


def served_model(ref: ModelRef) -> ServedModel:
    """The loaded, verified version with its contract; loaded once per process.

    Raises:
        IntegrityError: the artifact does not match the manifest recorded at registration.
        ModelLoadError: the folder is not a SavedModel mooring can serve.
    """
    key = (ref.path, ref.manifest_sha256)
    loaded = _LOADED.get(key)
    if loaded is not None:
        return loaded
    from mooring._tensorflow import (
        LOGS_ENV,
        hide_python_logs,
        import_tensorflow,
        quiet_native_logs,
    )
    from mooring.serving._contract import InputContract
    from mooring.serving._loaded import load_served_model

    if os.environ.get(LOGS_ENV) != "1":
        with quiet_native_logs():
            import_tensorflow()
    # A scoring worker is a process of its own: TensorFlow's Python-side notes (names
    # like 'capital-gain' made Python-safe) are hidden here as in the CLI.
    hide_python_logs()
    folder = _verified_folder(ref)
    # classes at the version's registered operating threshold, as the server answers.
    model = load_served_model(
        ref.name, ref.version, folder, threshold=ref.record.operating_threshold
    )
    if ref.schema is not None:
        model.contract = InputContract.from_schema(
            ref.schema, model.inputs, source=ref.contract_source or "schema"
        )
    _LOADED[key] = model
    return model
