"""The server's state: built once, frozen; one place applies a deployment and tells the workers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from mooring.config import ServingConfig
from mooring.registry import Deployment
from mooring.serving import DirectorySource, build_app
from mooring.serving._door import Door
from mooring.serving._state import ServerState
from mooring.serving._workers import WorkerRun

DEPLOYMENT = Deployment(name="income", production=2, revision=3)


class Applying:
    """A model's manager as the state sees it: what it was told to apply."""

    def __init__(self) -> None:
        self.applied: list[Deployment] = []

    async def apply(self, deployment: Deployment) -> None:
        self.applied.append(deployment)


def state_of(manager: Applying, worker: WorkerRun | None = None) -> ServerState:
    held: Any = manager
    return ServerState(
        serving=ServingConfig(),
        managers={"income": held},
        metrics=None,  # type: ignore[arg-type]
        prediction_log=None,
        admin_token=None,
        worker=worker,
    )


def test_a_deployment_applied_here_is_announced_to_the_other_workers(tmp_path: Path) -> None:
    manager, run = Applying(), WorkerRun(0, tmp_path, os.getpid())
    assert run.deployment_stamp() is None
    asyncio.run(state_of(manager, run).apply_deployment("income", DEPLOYMENT))
    assert manager.applied == [DEPLOYMENT]
    assert run.deployment_stamp() is not None  # the others re-read the record


def test_a_single_process_applies_without_a_notice() -> None:
    manager = Applying()
    asyncio.run(state_of(manager).apply_deployment("income", DEPLOYMENT))
    assert manager.applied == [DEPLOYMENT]


def test_a_deployment_of_a_model_not_served_here_is_left_alone(tmp_path: Path) -> None:
    manager, run = Applying(), WorkerRun(0, tmp_path, os.getpid())
    asyncio.run(state_of(manager, run).apply_deployment("churn", DEPLOYMENT))
    assert manager.applied == []
    assert run.deployment_stamp() is None


def test_the_state_is_built_whole_and_frozen(tmp_path: Path) -> None:
    cfg = ServingConfig(feedback_token="f0r-labels", max_in_flight=7)
    app = build_app(
        [DirectorySource(tmp_path, "income")], cfg, feedback_url=str(tmp_path / "feedback")
    )
    state = app.state.mooring
    assert sorted(state.feedback) == ["income"] and state.feedback_token == "f0r-labels"
    assert state.door.limits.max_in_flight == 7
    assert state.managers["income"].idle() is True  # nothing in flight at the door
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'door'"):
        state.door = Door()
