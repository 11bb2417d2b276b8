"""``Project``: one mooring.toml and everything mooring does with it.

Each method is a thin call of the pipeline's own step functions
(:mod:`mooring.pipeline._steps`), so ``project.validate()`` checks exactly what the
validate step of ``mooring run`` checks.

Examples:
    >>> project = Project.load("mooring-demo/mooring.toml")  # doctest: +SKIP
    >>> result = project.validate()                              # doctest: +SKIP
    >>> result.ok                                                 # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mooring.config import MooringConfig, load_config
from mooring.contract._io import ReadOptions
from mooring.contract._schema import Schema
from mooring.contract._statistics import DatasetStatistics
from mooring.errors import UsageError
from mooring.pipeline._steps import evaluate, train, validate
from mooring.pipeline._steps.validate import ProjectValidation
from mooring.pipeline._workspace import Workspace

if TYPE_CHECKING:
    from mooring.evaluation._model import EvaluationRun
    from mooring.pipeline import RunObserver, RunResult
    from mooring.scale._engine import Engine
    from mooring.training._fit import TrainingResult

__all__ = ["Project", "ProjectValidation"]


class Project:
    """A mooring project: its configuration, home folder and data contract."""

    def __init__(self, config: MooringConfig) -> None:
        self.config = config
        self.workspace = Workspace(config)

    @classmethod
    def load(cls, path: str | Path = "mooring.toml") -> Project:
        """Read and validate a project file."""
        return cls(load_config(path))

    @property
    def name(self) -> str:
        return self.workspace.name

    @property
    def home(self) -> Path:
        return self.workspace.home

    @property
    def read_options(self) -> ReadOptions:
        return self.workspace.read_options

    def data_path(self, which: str = "train") -> Path:
        return self.workspace.data_path(which)

    def data_fingerprint(self, which: str = "train") -> str:
        """sha256 of the train or eval file, hashed once per file version in this process."""
        return self.workspace.data_fingerprint(which)

    def statistics(self, which: str = "train") -> DatasetStatistics:
        """Statistics of the train or eval data, cached under home by the file's sha256."""
        return self.workspace.statistics(which)

    def schema(self, statistics: DatasetStatistics | None = None) -> Schema:
        """The data contract: the configured schema file, or one inferred from the train data."""
        return self.workspace.schema(statistics)

    def latest_model_dir(self) -> Path:
        """The model folder of the most recent training run under ``<home>/runs``."""
        return self.workspace.latest_model_dir()

    def with_engine(self, engine: Engine) -> Project:
        """The same project computing its statistics and checks on ``engine``.

        Examples:
            >>> Project.load("mooring.toml").with_engine(Engine("ray")).validate()  # doctest: +SKIP
        """
        return Project(self.workspace.with_engine(engine).config)

    def validate(self) -> ProjectValidation:
        """Check the train data against the contract, and the eval data against train (skew)."""
        return validate.check(self.workspace)

    def train(
        self,
        *,
        output_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Sequence[Any] = (),
        verbose: int = 0,
    ) -> TrainingResult:
        """Train the configured model; see :func:`mooring.pipeline._steps.train.fit`."""
        return train.fit(
            self.workspace,
            output_dir=output_dir,
            resume=resume,
            callbacks=callbacks,
            verbose=verbose,
        )

    def evaluate(
        self,
        *,
        model_dir: str | Path | None = None,
        baseline_dir: str | Path | None = None,
        out: str | Path | None = None,
    ) -> EvaluationRun:
        """Evaluate a trained model; see :func:`mooring.pipeline._steps.evaluate.assess`."""
        return evaluate.assess(
            self.workspace, model_dir=model_dir, baseline_dir=baseline_dir, out=out
        )

    def run(
        self,
        *,
        train_data: str | Path | None = None,
        force: bool = False,
        observer: RunObserver | None = None,
        accept_perfect: str | None = None,
        waive_change: str | None = None,
    ) -> RunResult:
        """validate → train → evaluate → gate → register → replay → deploy, cached and resumable.

        ``train_data`` replaces ``[data] train`` for this run (fresh data for a retrain);
        ``force`` re-runs every step; ``accept_perfect`` acknowledges a near-perfect
        evaluation with a reason (audited; else the run holds it). ``waive_change`` (a
        reason) waives the failed gates that compare with production
        (:class:`~mooring.evaluation._gates.Waiver`: when production itself is wrong); the
        version and the audit log record it. The run record goes to
        ``<home>/runs/<run-id>/run.json``. A failed check gives ``result.status ==
        "rejected"`` with ``result.reason``, and nothing is deployed.

        Examples:
            >>> result = Project.load("mooring-demo/mooring.toml").run()  # doctest: +SKIP
            >>> result.ok, result.version, result.deployed_as  # doctest: +SKIP
            (True, 1, 'production')
        """
        from mooring.pipeline import run_pipeline

        workspace = self.workspace
        if train_data is not None:
            workspace = workspace.with_train_data(train_data)
        waiver = None
        if waive_change is not None:
            from mooring.evaluation._gates import Waiver
            from mooring.registry._provenance import default_actor

            if not waive_change.strip():
                raise UsageError(
                    "waiving the gates that compare with production needs a reason, got an "
                    "empty one; pass --waive-change -r 'why production is no reference' "
                    "(recorded with the version and in the audit log)"
                )
            waiver = Waiver(reason=waive_change.strip(), actor=default_actor())
        return run_pipeline(
            workspace,
            force=force,
            observer=observer,
            accept_perfect=accept_perfect,
            waiver=waiver,
        )
