"""Where served versions come from: the registry (deployment + verified artifacts) or a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mooring.registry import Deployment, Registry, check_model_name
from mooring.serving.errors import ModelLoadError

__all__ = ["DirectorySource", "ModelSource", "RegistrySource"]


class ModelSource(Protocol):
    """What the server needs to know about one model name."""

    name: str

    def deployment(self) -> Deployment:
        """What should serve now (production, canary, weight, revision)."""
        ...

    def fetch(self, version: int) -> Path:
        """A verified local folder of ``version``; raises when the artifact check fails."""
        ...


class RegistrySource:
    """Follow a model's deployment record in a :class:`~mooring.registry.Registry`."""

    def __init__(self, registry: Registry, name: str) -> None:
        self.registry = registry
        self.name = check_model_name(name)

    def deployment(self) -> Deployment:
        return self.registry.deployment(self.name)

    def fetch(self, version: int) -> Path:
        return self.registry.load(self.name, version=version)


class DirectorySource:
    """Serve one exported folder as a fixed version (no registry: local tests and benchmarks)."""

    def __init__(self, folder: str | Path, name: str, *, version: int = 1) -> None:
        self.folder = Path(folder)
        self.name = check_model_name(name)
        self.version = version

    def deployment(self) -> Deployment:
        return Deployment(name=self.name, production=self.version, revision=1)

    def fetch(self, version: int) -> Path:
        if version != self.version or not (self.folder / "saved_model.pb").is_file():
            raise ModelLoadError(
                f"'{self.folder}' holds no SavedModel for version {version}; "
                "pass the folder an export wrote (it contains saved_model.pb)"
            )
        return self.folder
