"""The typed context every step of a run takes: the project's data, the registry, the cache.

One :class:`RunContext` per run. Steps read the data through ``ctx.workspace``, the
registry through ``ctx.registry`` (opened on first use, closed by the runner), earlier
steps' outputs through ``ctx.outputs`` and their input fingerprints through
``ctx.keys``; they report through the :class:`~mooring.pipeline._record.StepRecord`
the runner hands them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mooring.config import MooringConfig
from mooring.contract._statistics import DatasetStatistics
from mooring.pipeline._cache import StepCache
from mooring.pipeline._outputs import RunOutputs
from mooring.pipeline._record import StepRecord
from mooring.pipeline._workspace import Workspace

if TYPE_CHECKING:
    from mooring.evaluation._gates import Waiver
    from mooring.registry import ModelVersion, Registry

__all__ = ["RejectedError", "RunContext", "RunObserver"]


class RejectedError(Exception):
    """A check failed: the run stops, nothing is deployed."""


class RunObserver:
    """Hooks called as a run progresses (the CLI draws its progress display with them).

    Subclass and override what you need; an exception raised in a hook stops the
    run like any other failure (the next run continues after the last completed step).
    """

    def run_started(self, run_id: str, resumed: bool) -> None:
        """Called once, before the first step."""

    def step_started(self, name: str) -> None:
        """Called before each step."""

    def step_finished(self, record: StepRecord) -> None:
        """Called after each step, with its record."""

    def training_started(self, name: str | None, kind: str, rows: int, epochs: int) -> None:
        """Called before each model trains (then :meth:`training_callbacks`): its
        ``[[model.candidates]]`` name (None: the one model ``[model]`` describes), its
        kind, its training rows (validation rows excluded) and its epochs."""

    def training_callbacks(self, epochs: int, steps_per_epoch: int) -> Sequence[Any]:
        """Keras callbacks to pass to training (e.g. a progress bar)."""
        return ()


@dataclass
class RunContext:
    """One run: where it writes, what it reuses, and what its steps produced so far."""

    workspace: Workspace
    cache: StepCache
    code: dict[str, Any]
    observer: RunObserver = field(default_factory=RunObserver)
    force: bool = False
    #: Why a near-perfect evaluation is acknowledged for this run (``--accept-perfect -r``).
    accept_perfect: str | None = None
    # `mooring run --waive-change -r REASON`: the gates comparing with production, waived.
    waiver: Waiver | None = None
    run_id: str = ""
    outputs: RunOutputs = field(default_factory=RunOutputs)
    # The input fingerprint (StepRecord.key) of every step run so far, by step name.
    keys: dict[str, str] = field(default_factory=dict)
    # The status of every step run so far, by step name.
    statuses: dict[str, str] = field(default_factory=dict)
    _registry: Registry | None = field(default=None, repr=False)
    _statistics: DatasetStatistics | None = field(default=None, repr=False)
    _versions: list[ModelVersion] | None = field(default=None, repr=False)

    @property
    def config(self) -> MooringConfig:
        return self.workspace.config

    @property
    def name(self) -> str:
        return self.workspace.name

    @property
    def home(self) -> Path:
        return self.workspace.home

    @property
    def run_dir(self) -> Path:
        return self.home / "runs" / self.run_id

    @property
    def registry(self) -> Registry:
        """The project's registry, opened on first use."""
        if self._registry is None:
            from mooring.registry import Registry

            self._registry = Registry.from_config(self.config)
        return self._registry

    @property
    def opened_registry(self) -> bool:
        """Whether a step opened the registry (a run rejected at validate never does)."""
        return self._registry is not None

    def close(self) -> None:
        """Close the registry if a step opened it."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def deployment(self) -> tuple[int | None, int | None, int]:
        """(production, canary, weight); all empty before the model's first version."""
        from mooring.errors import NotFoundError

        try:
            dep = self.registry.deployment(self.name)
        except NotFoundError:
            return None, None, 0
        return dep.production, dep.canary, dep.canary_weight

    def versions(self) -> list[ModelVersion]:
        """The model's registered versions (read once per run, again after a registration)."""
        from mooring.errors import NotFoundError

        if self._versions is None:
            try:
                self._versions = self.registry.versions(self.name)
            except NotFoundError:
                self._versions = []
        return self._versions

    def version(self, number: int | None) -> ModelVersion | None:
        if number is None:
            return None
        return next((mv for mv in self.versions() if mv.version == number), None)

    def registered(self) -> None:
        """A version was added: the next :meth:`versions` reads the registry again."""
        self._versions = None

    def train_statistics(self) -> DatasetStatistics:
        if self._statistics is None:
            self._statistics = self.workspace.statistics("train")
        return self._statistics

    def use_statistics(self, statistics: DatasetStatistics) -> None:
        """Statistics the validate step computed, reused by the later steps."""
        self._statistics = statistics

    def cached(self, step: str) -> bool:
        """Whether ``step`` reused an earlier run's outputs in this run."""
        return self.statuses.get(step) == "cached"

    def reuse(self, record: StepRecord, step: str, key: str) -> dict[str, Any] | None:
        """The cached outputs of ``step`` for ``key``, marking ``record`` as cached."""
        entry = self.cache.get(step, key)
        if entry is None:
            return None
        record.status = "cached"
        record.outputs = dict(entry["outputs"])
        record.message = f"inputs unchanged: reused the outputs of run {entry.get('run_id')}"
        return entry
