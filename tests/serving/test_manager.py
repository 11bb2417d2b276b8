"""The manager's orchestration: load, swap, drain and unload, with versions that load instantly.

The decisions are :mod:`mooring.serving._aspired`'s (tested in ``test_aspired.py``); here
the loads stand in for SavedModels, so what is checked is the manager's part: each
harness's life, what is published when, and a load cut short.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mooring.config import ServingConfig
from mooring.errors import MooringError
from mooring.registry import Deployment
from mooring.serving import _models as models
from mooring.serving._harness import HarnessState
from mooring.serving._metrics import ServingMetrics
from mooring.serving._models import ModelManager

NAME = "income"


class Folder:
    """A stand-in for the version's folder: its packing waits for ``answered``."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.packed_after_an_answer: list[bool] = []

    def pack(self) -> bool:
        self.packed_after_an_answer.append(self.answered.wait(timeout=2.0))
        return True


class Version:
    """A stand-in for a loaded SavedModel: answers its own version for every row."""

    def __init__(self, version: int) -> None:
        self.version, self.contract, self.xla = version, None, None
        self.inputs: dict[str, Any] = {}
        self.columnar = True  # one [None] column, x
        self.folder = Folder()

    def warm_up(self, requests: int, max_batch_size: int, xla: str = "off") -> None:
        pass

    def predict(self, columns: dict[str, Any]) -> dict[str, Any]:
        return {"version": np.full(len(columns["x"]), self.version)}


class Source:
    """Versions that load, except those in ``broken``; ``held`` holds a fetch until set."""

    name = NAME

    def __init__(self, broken: tuple[int, ...] = ()) -> None:
        self.broken = broken
        self.held: threading.Event | None = None

    def deployment(self) -> Deployment:
        raise AssertionError("the tests apply deployments themselves")

    def fetch(self, version: int) -> Path:
        if self.held is not None:
            self.held.wait()
        if version in self.broken:
            raise MooringError(f"version {version}: the artifact changed")
        return Path(f"/versions/{version}")

    def contract_schema(self, version: int) -> None:
        return None


@pytest.fixture(autouse=True)
def instant_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        models, "load_served_model", lambda name, version, path, **_: Version(version)
    )


def manager_of(source: Source) -> ModelManager:
    held: Any = source
    return ModelManager(held, ServingConfig(warmup_requests=0), ServingMetrics())


def deployed(revision: int, **fields: Any) -> Deployment:
    return Deployment(name=NAME, revision=revision, **fields)


async def answer(manager: ModelManager) -> int:
    slot = manager.route()
    outputs = await slot.predict({"x": np.zeros(1)}, 1, 5.0)
    return int(outputs["version"][0])


def test_a_swap_answers_from_the_new_version_and_unloads_the_old() -> None:
    async def scenario() -> tuple[int, int, HarnessState, HarnessState]:
        manager = manager_of(Source())
        await manager.apply(deployed(1, production=1))
        first, old = await answer(manager), manager.harness(1)
        assert old is not None
        await manager.apply(deployed(2, production=2, previous=(1,)))
        draining = old.state  # retired: off the routes at once, unloaded once idle
        second = await answer(manager)
        await manager.close()
        return first, second, draining, old.state

    first, second, draining, last = asyncio.run(scenario())
    assert (first, second) == (1, 2)
    assert (draining, last) == (HarnessState.DRAINING, HarnessState.UNLOADED)


def test_a_version_is_packed_once_it_answers_not_before() -> None:
    """Packing its calls (mooring.formats._packed) is kept off the version's start."""

    async def scenario() -> list[bool]:
        manager = manager_of(Source())
        await manager.apply(deployed(1, production=1))
        assert await answer(manager) == 1  # while its packing waits for this answer
        folder: Any = manager.route().model.folder
        folder.answered.set()
        await manager.close()  # waits for the packing
        return list(folder.packed_after_an_answer)

    assert asyncio.run(scenario()) == [True]


def test_a_production_that_fails_leaves_the_old_one_answering() -> None:
    async def scenario() -> tuple[int, dict[str, Any]]:
        manager = manager_of(Source(broken=(2,)))
        await manager.apply(deployed(1, production=1))
        await manager.apply(deployed(2, production=2, previous=(1,)))
        try:
            return await answer(manager), manager.status()
        finally:
            await manager.close()

    answered, status = asyncio.run(scenario())
    assert answered == 1
    assert status["failures"] == {"2": "version 2: the artifact changed"}
    assert status["fallback"] == {
        "wanted": 2,
        "serving": 1,
        "reason": "version 2: the artifact changed",
    }
    assert status["loaded"] == [1]


def test_a_load_cut_short_leaves_nothing_loading() -> None:
    source = Source()

    async def scenario() -> tuple[set[int], set[int], bool]:
        manager = manager_of(source)
        await manager.apply(deployed(1, production=1))
        source.held = threading.Event()
        applying = asyncio.create_task(manager.apply(deployed(2, production=2)))
        while not manager.loading:
            await asyncio.sleep(0.001)
        during = manager.loading
        applying.cancel()
        source.held.set()  # the fetch's thread finishes; nothing waits for it
        await asyncio.gather(applying, return_exceptions=True)
        try:
            return during, manager.loading, manager.knows(2)
        finally:
            await manager.close()

    during, after, knows = asyncio.run(scenario())
    assert (during, after, knows) == ({2}, set(), False)


def test_a_version_stuck_in_its_call_holds_no_other_versions_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One inference thread per version ([serving] inference_threads = 1): the canary's
    call that never returns leaves production answering."""
    started, release = threading.Event(), threading.Event()

    class Stuck(Version):
        def predict(self, columns: dict[str, Any]) -> dict[str, Any]:
            started.set()
            release.wait(timeout=60)
            return super().predict(columns)

    monkeypatch.setattr(
        models,
        "load_served_model",
        lambda name, version, path, **_: Stuck(version) if version == 2 else Version(version),
    )

    async def scenario() -> tuple[int, bool]:
        manager = manager_of(Source())
        await manager.apply(deployed(1, production=1, canary=2, canary_weight=50))
        stuck = asyncio.create_task(manager.route(version=2).predict({"x": np.zeros(1)}, 1, 60.0))
        assert await asyncio.to_thread(started.wait, 60)  # the canary's call is running
        production = await manager.route(version=1).predict({"x": np.zeros(1)}, 1, 60.0)
        waiting = not stuck.done()
        release.set()
        await stuck
        await manager.close()
        return int(production["version"][0]), waiting

    assert asyncio.run(scenario()) == (1, True)
