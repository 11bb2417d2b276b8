"""The pipeline: validate → train → evaluate → gate → register → replay → deploy.

``run_pipeline(config)`` (or ``Project.run()``, or ``mooring run``, or
``python -m mooring.pipeline``) takes a project from its data to a deployed model:
the first model becomes production, later ones a canary at ``[rollout] steps[0]``
percent. The steps are :data:`~mooring.pipeline._steps.PIPELINE`, one module each;
they are cached by the fingerprint of their inputs, runs are recorded under
``<home>/runs/<run-id>/`` and resumable, and a replay of recent production traffic
guards each deploy.
"""

from __future__ import annotations

from mooring.pipeline._context import RunObserver
from mooring.pipeline._record import RunResult, StepRecord
from mooring.pipeline._run import run_pipeline
from mooring.pipeline._status import ProjectStatus, project_status

__all__ = [
    "ProjectStatus",
    "RunObserver",
    "RunResult",
    "StepRecord",
    "project_status",
    "run_pipeline",
]
