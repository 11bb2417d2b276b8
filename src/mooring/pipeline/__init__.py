"""The pipeline: validate → train → evaluate → gate → register → replay → deploy.

``run_pipeline(project)`` (or ``Project.run()``, or ``mooring run``) takes a
project from its data to a deployed model: the first model becomes production,
later ones a canary at ``[rollout] steps[0]`` percent. Steps are cached by the
fingerprint of their inputs, runs are recorded under ``<home>/runs/<run-id>/``
and resumable, and a replay of recent production traffic guards each deploy.
"""

from __future__ import annotations

from mooring.pipeline.cache import StepCache
from mooring.pipeline.cost import run_cost, serving_cost_from_metrics
from mooring.pipeline.fingerprint import code_version, digest, package_version, source_sha256
from mooring.pipeline.record import STEPS, RunResult, StepRecord
from mooring.pipeline.replay import ReplayReport, read_prediction_tail, replay
from mooring.pipeline.run import ProjectLike, RunObserver, find_runs, run_pipeline
from mooring.pipeline.scaffold import Scaffold, guess_label, scaffold_config
from mooring.pipeline.status import ProjectStatus, project_status

__all__ = [
    "STEPS",
    "ProjectLike",
    "ProjectStatus",
    "ReplayReport",
    "RunObserver",
    "RunResult",
    "Scaffold",
    "StepCache",
    "StepRecord",
    "code_version",
    "digest",
    "find_runs",
    "guess_label",
    "package_version",
    "project_status",
    "read_prediction_tail",
    "replay",
    "run_cost",
    "run_pipeline",
    "scaffold_config",
    "serving_cost_from_metrics",
    "source_sha256",
]
