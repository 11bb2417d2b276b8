"""The heap is frozen after each load so collections skip the served models; an
unloaded version is still freed."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from mooring.registry import Registry
from mooring.serving import RegistrySource, build_app
from mooring.serving.heap import settle
from tests._support.server import FAST, NAME, ServerThread, new_registry, wait_for


@pytest.fixture
def registry(tmp_path: Path, model_dirs: dict[str, Path]) -> Registry:
    return new_registry(tmp_path, model_dirs)


def tracked(obj: object) -> bool:
    """Whether a collection would walk ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_served_versions_are_frozen_and_an_unloaded_one_is_freed(registry: Registry) -> None:
    registry.deploy(NAME, production=1)
    app = build_app([RegistrySource(registry, NAME)], FAST)
    manager = app.state.mooring.managers[NAME]
    try:
        with ServerThread(app) as server:
            server.wait_ready()
            first = manager.slots[1].model
            assert gc.get_freeze_count() > 0 and not tracked(first)
            gone = weakref.ref(first)
            del first
            registry.deploy(NAME, production=2)
            wait_for(lambda: manager.production == 2 and not manager._draining)
            second = manager.slots[2].model
            assert not tracked(second)
            # Frozen while it served, version 1 is freed once it is unloaded.
            wait_for(lambda: gone() is None)
            del second
    finally:
        registry.close()
        gc.unfreeze()


def test_with_gc_freeze_off_nothing_is_frozen(registry: Registry) -> None:
    gc.unfreeze()
    registry.deploy(NAME, production=1)
    app = build_app([RegistrySource(registry, NAME)], FAST.model_copy(update={"gc_freeze": False}))
    manager = app.state.mooring.managers[NAME]
    try:
        with ServerThread(app) as server:
            server.wait_ready()
            assert gc.get_freeze_count() == 0 and tracked(manager.slots[1].model)
    finally:
        registry.close()


def test_settle_collects_unreachable_cycles_before_freezing() -> None:
    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    try:
        settle()
        assert gone() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
