"""``Project``: one mooring.toml and everything mooring does with it.

Example:
    >>> project = Project.load("examples/adult/mooring.toml")  # doctest: +SKIP
    >>> result = project.validate()                              # doctest: +SKIP
    >>> result.ok                                                 # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from mooring.config import MooringConfig, load_config
from mooring.contract import DatasetStatistics, ReadOptions, compute_statistics
from mooring.contract.schema import Schema, infer_schema
from mooring.contract.validation import ValidationResult, validate, validate_statistics
from mooring.errors import NotFoundError
from mooring.formats.files import atomic_write, file_fingerprint

if TYPE_CHECKING:
    from mooring.evaluation import EvaluationRun
    from mooring.pipeline import RunObserver, RunResult
    from mooring.training import TrainingResult

__all__ = ["Project", "ProjectValidation"]


@dataclass
class ProjectValidation:
    """The data contract checked on the training data and (when configured) the eval data."""

    schema: Schema
    statistics: DatasetStatistics
    train: ValidationResult
    eval: ValidationResult | None

    @property
    def ok(self) -> bool:
        return self.train.ok and (self.eval is None or self.eval.ok)

    @property
    def results(self) -> list[ValidationResult]:
        return [r for r in (self.train, self.eval) if r is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "schema_fingerprint": self.schema.fingerprint(),
            "train": self.train.to_dict(),
            "eval": self.eval.to_dict() if self.eval is not None else None,
        }

    def render_text(self) -> str:
        return "\n".join(r.render_text() for r in self.results)


def _options_key(options: ReadOptions) -> dict[str, Any]:
    return {
        "format": options.format,
        "delimiter": options.delimiter,
        "header": options.header,
        "na_values": list(options.na_values),
        "trim": options.trim_whitespace,
    }


class Project:
    """A mooring project: its configuration, home folder and data contract."""

    def __init__(self, config: MooringConfig) -> None:
        self.config = config
        self._fingerprints: dict[tuple[str, int, int], str] = {}

    @classmethod
    def load(cls, path: str | Path = "mooring.toml") -> Project:
        """Read and validate a project file."""
        return cls(load_config(path))

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
        value = self.config.data.train if which == "train" else self.config.data.eval
        if value is None:
            raise NotFoundError(f'[data] {which} is not set; add {which} = "path" to mooring.toml')
        return self.config.path(value)

    def data_fingerprint(self, which: str = "train") -> str:
        """sha256 of the train or eval file, hashed once per file version in this process."""
        path = self.data_path(which)
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._fingerprints:
            self._fingerprints[key] = file_fingerprint(path)
        return self._fingerprints[key]

    def statistics(self, which: str = "train") -> DatasetStatistics:
        """Statistics of the train or eval data, cached under home by the file's sha256."""
        path = self.data_path(which)
        fingerprint = self.data_fingerprint(which)
        cache = self.home / "statistics" / f"{which}.json"
        meta = self.home / "statistics" / f"{which}.meta.json"
        key = {"fingerprint": fingerprint, "read": _options_key(self.read_options)}
        if cache.is_file() and meta.is_file() and orjson.loads(meta.read_bytes()) == key:
            return DatasetStatistics.load(cache)
        stats = compute_statistics(path, self.read_options)
        stats.save(cache)
        atomic_write(meta, orjson.dumps(key))
        return stats

    def schema(self, statistics: DatasetStatistics | None = None) -> Schema:
        """The data contract: the configured schema file, or one inferred from the train data.

        An inferred schema is saved to ``<home>/schema.yaml`` for reference; to freeze and
        edit it, copy it next to mooring.toml and set ``[contract] schema``.
        """
        contract = self.config.contract
        if contract.schema_file is not None:
            return Schema.load(self.config.path(contract.schema_file)).with_overrides(contract)
        stats = statistics or self.statistics("train")
        schema = infer_schema(
            stats,
            label=self.config.data.label,
            timestamp=self.config.data.timestamp,
            contract=contract,
        )
        schema.save(self.home / "schema.yaml")
        return schema

    def _schema_from(self, stats: DatasetStatistics) -> bool:
        """Whether the schema is inferred from ``stats`` with nothing that narrows it."""
        contract = self.config.contract
        narrowing = ("type", "min", "max", "domain")
        return contract.schema_file is None and not any(
            getattr(override, key) is not None
            for override in contract.columns.values()
            for key in narrowing
        )

    def validate(self) -> ProjectValidation:
        """Check the train data against the contract, and the eval data against train (skew)."""
        stats = self.statistics("train")
        schema = self.schema(stats)
        options = self.read_options
        contract = self.config.contract
        if self._schema_from(stats):
            # A schema inferred from these very statistics cannot see wrong types or
            # out-of-range values in them: judge the statistics, skip a second read.
            train = validate_statistics(stats, schema, contract=contract)
        else:
            train = validate(self.data_path("train"), schema, options=options, contract=contract)
        evaluation = None
        if self.config.data.eval is not None:
            evaluation = validate(
                self.data_path("eval"), schema, options=options, baseline=stats, contract=contract
            )
        result = ProjectValidation(schema=schema, statistics=stats, train=train, eval=evaluation)
        atomic_write(
            self.home / "reports" / "validation.json",
            orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2),
        )
        return result

    def train(
        self,
        *,
        output_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Sequence[Any] = (),
        verbose: int = 0,
    ) -> TrainingResult:
        """Train the configured model on the train data; export one SavedModel.

        The run goes to ``output_dir`` (default ``<home>/runs/<UTC time>``); the model
        folder (SavedModel + ``mooring.json``) is ``result.model_dir``. TensorFlow is
        imported only here, so the contract commands stay quick to start.
        """
        from mooring.training import train_model

        stats = self.statistics("train")
        schema = self.schema(stats)
        if output_dir is None:
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            output_dir = self.home / "runs" / stamp
        return train_model(
            self.config,
            statistics=stats,
            schema=schema,
            output_dir=Path(output_dir),
            resume=resume,
            callbacks=callbacks,
            verbose=verbose,
        )

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

    def evaluate(
        self,
        *,
        model_dir: str | Path | None = None,
        baseline_dir: str | Path | None = None,
        out: str | Path | None = None,
    ) -> EvaluationRun:
        """Evaluate a trained model on the eval data: metrics, slices, report, gate decision.

        ``model_dir`` defaults to the latest training run; ``baseline_dir`` is the
        production model to compare with (change gates, flip rate). The HTML and JSON
        report go to ``out`` (default ``<home>/reports/evaluation-<UTC time>``).
        """
        from mooring.contract import read_table
        from mooring.dashboard import render_evaluation_html
        from mooring.evaluation import evaluate_model_dir

        table = read_table(self.data_path("eval"), self.read_options)
        return evaluate_model_dir(
            self.config,
            model_dir if model_dir is not None else self.latest_model_dir(),
            table,
            baseline_dir=baseline_dir,
            out=out,
            html=render_evaluation_html,
        )

    def run(
        self,
        *,
        train_data: str | Path | None = None,
        force: bool = False,
        observer: RunObserver | None = None,
    ) -> RunResult:
        """validate → train → evaluate → gate → register → replay → deploy, cached and resumable.

        ``train_data`` replaces ``[data] train`` for this run (fresh data for a retrain);
        ``force`` re-runs every step. The run record goes to
        ``<home>/runs/<run-id>/run.json``. A failed check gives ``result.status ==
        "rejected"`` with ``result.reason``, and nothing is deployed.

        Example:
            >>> result = Project.load("examples/adult/mooring.toml").run()  # doctest: +SKIP
            >>> result.ok, result.version, result.deployed_as  # doctest: +SKIP
            (True, 1, 'production')
        """
        from mooring.pipeline import run_pipeline

        project = self
        if train_data is not None:
            path = Path(train_data)
            if not path.is_file():
                raise NotFoundError(
                    f"--train-data file '{train_data}' does not exist; pass a CSV or Parquet file"
                )
            config = self.config.model_copy(deep=True)
            config.data.train = str(path.resolve())
            project = Project(config)
        return run_pipeline(project, force=force, observer=observer)
