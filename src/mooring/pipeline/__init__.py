"""The pipeline: validate → train → evaluate → gate → register → replay → deploy.

``run_pipeline(config)`` (or ``Project.run()``, or ``mooring run``, or
``python -m mooring.pipeline``) takes a project from its data to a deployed model:
the first model becomes production, later ones a canary at ``[rollout] steps[0]``
percent. The steps are :data:`~mooring.pipeline.steps.PIPELINE`, one module each;
they are cached by the fingerprint of their inputs, runs are recorded under
``<home>/runs/<run-id>/`` and resumable, and a replay of recent production traffic
guards each deploy.
"""

from __future__ import annotations

from mooring.pipeline.cache import StepCache
from mooring.pipeline.context import RejectedError, RunContext, RunObserver
from mooring.pipeline.cost import run_cost, serving_cost_from_metrics
from mooring.pipeline.fingerprint import code_version, digest, package_version, source_sha256
from mooring.pipeline.outputs import RunOutputs
from mooring.pipeline.record import STEPS, RunResult, StepRecord
from mooring.pipeline.replay import ReplayReport, read_prediction_tail, replay
from mooring.pipeline.run import find_runs, run_pipeline
from mooring.pipeline.status import ProjectStatus, project_status
from mooring.pipeline.steps import PIPELINE
from mooring.pipeline.steps.validate import ProjectValidation
from mooring.pipeline.workspace import Workspace

__all__ = [
    "PIPELINE",
    "STEPS",
    "ProjectStatus",
    "ProjectValidation",
    "RejectedError",
    "ReplayReport",
    "RunContext",
    "RunObserver",
    "RunOutputs",
    "RunResult",
    "StepCache",
    "StepRecord",
    "Workspace",
    "code_version",
    "digest",
    "find_runs",
    "package_version",
    "project_status",
    "read_prediction_tail",
    "replay",
    "run_cost",
    "run_pipeline",
    "serving_cost_from_metrics",
    "source_sha256",
]
