"""What a running server holds (``app.state.mooring``), shared by every protocol.

Built once, whole, by :func:`~mooring.serving._app.build_app`, and frozen: no field is
assigned afterwards. What changes while the server runs lives inside the objects it
holds: each model's :class:`~mooring.serving._models.ModelManager` (its aspired versions),
the admission's counts, and the running tasks in ``tasks`` and ``shadow_tasks``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mooring._tracing import Tracing
from mooring.config import ServingConfig
from mooring.errors import NotFoundError
from mooring.formats._columns import describe
from mooring.formats._feedback import FeedbackStore
from mooring.registry import Deployment, Registry
from mooring.serving._admission import Admission
from mooring.serving._door import Door
from mooring.serving._log import PredictionLog
from mooring.serving._memory import MemoryCeiling
from mooring.serving._metrics import ServingMetrics
from mooring.serving._models import ModelManager
from mooring.serving._workers import WorkerRun

__all__ = ["ServerState"]


@dataclass(frozen=True)
class ServerState:
    """Everything a running server holds; ``app.state.mooring``."""

    serving: ServingConfig
    managers: dict[str, ModelManager]
    metrics: ServingMetrics
    prediction_log: PredictionLog | None
    admin_token: str | None
    registry: Registry | None = None
    #: The lifespan's background tasks (following the registry, ...), cancelled on stop.
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    feedback: dict[str, FeedbackStore] = field(default_factory=dict)  # by model name
    feedback_token: str | None = None
    door: Door = field(default_factory=Door)
    tracing: Tracing | None = None
    #: Shadow copies running (:mod:`mooring.serving._shadow`), cancelled when the server stops.
    shadow_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: Set in a worker of ``mooring serve --workers N``: its run (deployment notices).
    worker: WorkerRun | None = None
    #: The process's memory ceiling, inert unless its server starts it (mooring serve).
    memory: MemoryCeiling = field(default_factory=lambda: MemoryCeiling(None))

    @property
    def admission(self) -> Admission:
        """The permits and body budget REST (the door) and gRPC admit predictions through."""
        return self.door.admission

    @property
    def ready(self) -> bool:
        """True when every model's production version is loaded and warmed."""
        return bool(self.managers) and all(m.ready for m in self.managers.values())

    async def apply_deployment(self, name: str, deployment: Deployment) -> None:
        """Apply a deployment change now, not at the next poll, and tell the other workers.

        The one way a deployment made through this server (``POST /admin/deployment``,
        the dashboard's actions) takes effect: the model's manager applies it, then, in a
        worker of ``mooring serve --workers N``, the run's notice makes every other worker
        read the record within a fraction of a second. A model not served here is left
        alone.
        """
        manager = self.managers.get(name)
        if manager is None:
            return
        await manager.apply(deployment)
        if self.worker is not None:
            await asyncio.to_thread(self.worker.announce_deployment)

    def manager(self, name: str) -> ModelManager:
        found = self.managers.get(name)
        if found is None:
            raise NotFoundError(
                f"model {describe(name)} is not served here; served models: "
                + ", ".join(sorted(self.managers))
            )
        return found
