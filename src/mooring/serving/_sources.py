"""Where served versions come from: the registry (deployment + verified artifacts) or a folder.

Besides the artifact, a source gives each version's data contract: the schema the
registry stores with the version (``run_record["schema"]``, a ``mooring.schema``
mapping), or else one inferred from the version's training statistics (the drift
baseline every registered version carries) with the project's ``[contract]`` rules.

A source may also give a version's operating threshold (``operating_threshold``,
optional: a source without it serves the threshold the folder's ``mooring.json``
records): a binary classifier's ``classes`` are answered at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mooring.config._data import ContractConfig
from mooring.contract._schema import Schema, infer_schema
from mooring.errors import NotFoundError
from mooring.registry import Deployment, Registry
from mooring.registry._names import check_model_name
from mooring.serving._errors import ModelLoadError

__all__ = ["DirectorySource", "ModelSource", "RegistrySource"]


class ModelSource(Protocol):
    """What the server needs to know about one model name.

    A source may also define ``operating_threshold(version) -> float | None``, the
    version's registered operating threshold (see :class:`RegistrySource`); the server
    asks for it when present, so sources written without it keep working.
    """

    name: str

    def deployment(self) -> Deployment:
        """What should serve now (production, canary, weight, revision)."""
        ...

    def fetch(self, version: int) -> Path:
        """A verified local folder of ``version``; raises when the artifact check fails."""
        ...

    def contract_schema(self, version: int) -> tuple[Schema, str] | None:
        """The version's contract and where it came from; None when it has none."""
        ...


class RegistrySource:
    """Follow a model's deployment record in a :class:`~mooring.registry.Registry`."""

    def __init__(
        self, registry: Registry, name: str, *, contract: ContractConfig | None = None
    ) -> None:
        self.registry = registry
        self.name = check_model_name(name)
        self.contract = contract

    def deployment(self) -> Deployment:
        try:
            return self.registry.deployment(self.name)
        except NotFoundError:
            # Not registered yet, or no registry yet (a server started before the first
            # run): nothing is deployed; the poll after `mooring run` loads it.
            return Deployment(name=self.name)

    def fetch(self, version: int) -> Path:
        return self.registry.load(self.name, version=version)

    def operating_threshold(self, version: int) -> float | None:
        """The threshold the version's evaluation chose (registered with it), or None."""
        return self.registry.get(self.name, version=version).operating_threshold

    def contract_schema(self, version: int) -> tuple[Schema, str] | None:
        mv = self.registry.get(self.name, version=version)
        stored = mv.record.run.schema
        if stored is not None:
            return Schema.from_dict(stored, source=f"{mv.ref} run_record.schema"), "schema"
        if mv.statistics:
            from mooring.contract._statistics import DatasetStatistics

            stats = DatasetStatistics.from_dict(mv.statistics)
            contract = (self.contract or ContractConfig()).model_copy(update={"critical": []})
            return infer_schema(stats, contract=contract), "statistics"
        return None


class DirectorySource:
    """Serve one exported folder as a fixed version (no registry: local tests and benchmarks)."""

    def __init__(
        self, folder: str | Path, name: str, *, version: int = 1, schema: Schema | None = None
    ) -> None:
        self.folder = Path(folder)
        self.name = check_model_name(name)
        self.version = version
        self.schema = schema

    def contract_schema(self, version: int) -> tuple[Schema, str] | None:
        return (self.schema, "schema") if self.schema is not None else None

    def deployment(self) -> Deployment:
        return Deployment(name=self.name, production=self.version, revision=1)

    def fetch(self, version: int) -> Path:
        if version != self.version or not (self.folder / "saved_model.pb").is_file():
            raise ModelLoadError(
                f"'{self.folder}' holds no SavedModel for version {version}; pass a "
                "SavedModel folder (it contains saved_model.pb), a mooring model folder or "
                "a .keras file"
            )
        return self.folder
