"""A project's data as the pipeline reads it: paths, fingerprints, statistics, the schema.

Every step and every :class:`mooring._project.Project` method reads the data through
one :class:`Workspace`, so a file is hashed once per version in a process and its
statistics are computed once per content (cached under ``<home>/statistics``).

Examples:
    >>> ws = Workspace(load_config("mooring.toml"))  # doctest: +SKIP
    >>> ws.statistics("train").num_rows  # doctest: +SKIP
    32561
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mooring.config import MooringConfig
from mooring.config._model import ModelConfig
from mooring.contract._io import ReadOptions
from mooring.contract._schema import Schema, infer_schema
from mooring.contract._statistics import DatasetStatistics
from mooring.errors import NotFoundError
from mooring.formats._files import atomic_write, file_fingerprint
from mooring.pipeline._contracts import project_contract
from mooring.scale._engine import Engine
from mooring.scale._statistics import sharded_statistics

__all__ = ["Workspace"]


def _options_key(options: ReadOptions) -> dict[str, Any]:
    return {
        "format": options.format,
        "delimiter": options.delimiter,
        "header": options.header,
        "na_values": list(options.na_values),
        "trim": options.trim_whitespace,
    }


@dataclass
class Workspace:
    """One project's configuration and the data it names."""

    config: MooringConfig
    _fingerprints: dict[tuple[str, int, int], str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.config.project.name

    @property
    def home(self) -> Path:
        return self.config.home

    @property
    def read_options(self) -> ReadOptions:
        return ReadOptions.from_config(self.config.data)

    def data_path(self, which: str = "train") -> Path:
        """The train or eval file, resolved from the config's folder; it must exist."""
        value = self.config.data.train if which == "train" else self.config.data.eval
        if value is None:
            raise NotFoundError(f'[data] {which} is not set; add {which} = "path" to mooring.toml')
        return self.config.existing_path(f"[data] {which}", value)

    def data_fingerprint(self, which: str = "train") -> str:
        """sha256 of the train or eval file, hashed once per file version in this process."""
        path = self.data_path(which)
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._fingerprints:
            self._fingerprints[key] = file_fingerprint(path)
        return self._fingerprints[key]

    @property
    def engine(self) -> Engine:
        """Where statistics and validation run (``[project] engine``)."""
        return Engine.from_config(self.config.project)

    def with_engine(self, engine: Engine) -> Workspace:
        """The same project computing its statistics and checks on ``engine``."""
        config = self.config.model_copy(deep=True)
        config.project.engine = engine.kind
        config.project.engine_workers = engine.workers
        config.project.ray_address = engine.address
        return Workspace(config, _fingerprints=self._fingerprints)

    def statistics(self, which: str = "train") -> DatasetStatistics:
        """Statistics of the train or eval data, cached under home by the file's sha256."""
        path = self.data_path(which)
        fingerprint = self.data_fingerprint(which)
        cache = self.home / "statistics" / f"{which}.json"
        meta = self.home / "statistics" / f"{which}.meta.json"
        key = {"fingerprint": fingerprint, "read": _options_key(self.read_options)}
        if cache.is_file() and meta.is_file() and orjson.loads(meta.read_bytes()) == key:
            return DatasetStatistics.load(cache)
        stats = sharded_statistics(str(path), self.read_options, engine=self.engine)
        stats.save(cache)
        atomic_write(meta, orjson.dumps(key))
        return stats

    def schema(self, statistics: DatasetStatistics | None = None) -> Schema:
        """The data contract: the project's contract file (``contract/schema.yaml``, or
        ``[contract] schema``), or before the first run wrote it, one inferred from the
        train data; ``[contract]`` overrides applied either way."""
        contract = self.config.contract
        found = project_contract(self.config)
        if found is not None:
            return found.with_overrides(contract)
        return self.inferred_schema(statistics)

    def inferred_schema(self, statistics: DatasetStatistics | None = None) -> Schema:
        """The contract inferred from the train data (the first run's, written as the
        project's contract file when the run's checks pass)."""
        stats = statistics or self.statistics("train")
        return infer_schema(
            stats,
            label=self.config.data.label,
            timestamp=self.config.data.timestamp,
            contract=self.config.contract,
        )

    def schema_inferred_from_statistics(self) -> bool:
        """Whether the schema is inferred from the train statistics with nothing narrowing it."""
        contract = self.config.contract
        narrowing = ("type", "min", "max", "domain")
        return project_contract(self.config) is None and not any(
            getattr(override, key) is not None
            for override in contract.columns.values()
            for key in narrowing
        )

    def with_train_data(self, path: str | Path) -> Workspace:
        """The same project training on another file (fresh data for a retrain).

        Raises:
            NotFoundError: the file does not exist.
        """
        found = Path(path)
        if not found.is_file():
            raise NotFoundError(
                f"--train-data file '{path}' does not exist; pass a CSV or Parquet file"
            )
        config = self.config.model_copy(deep=True)
        config.data.train = str(found.resolve())
        return Workspace(config)

    def with_model(self, model: ModelConfig) -> Workspace:
        """The same project training another ``[model]`` (one candidate of a run)."""
        # No validation on the copy: the project's gates may name candidates this one lacks.
        config = self.config.model_copy(update={"model": model}, deep=True)
        return Workspace(config, _fingerprints=self._fingerprints)

    def latest_model_dir(self) -> Path:
        """The model folder of the most recent training run under ``<home>/runs``."""
        # `mooring train` writes <home>/runs/<time>/model, `mooring run` <run-id>/train/model.
        found = [*(self.home / "runs").glob("*/model"), *(self.home / "runs").glob("*/train/model")]
        runs = sorted((p for p in found if p.is_dir()), key=lambda p: p.stat().st_mtime_ns)
        if not runs:
            raise NotFoundError(
                f"no trained model under '{self.home / 'runs'}'; run `mooring train` first"
            )
        return runs[-1]
