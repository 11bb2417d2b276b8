"""A version's harness: the moves between its states, and the error it keeps."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mooring.serving._harness import Harness, HarnessState, Slot

LOADING = HarnessState.LOADING
WARMING = HarnessState.WARMING
READY = HarnessState.READY
DRAINING = HarnessState.DRAINING
UNLOADED = HarnessState.UNLOADED
FAILED = HarnessState.FAILED


def slot(version: int = 4) -> Slot:
    model: Any = SimpleNamespace(version=version, columnar=True)  # only read here
    return Slot(model=model, batcher=SimpleNamespace())  # type: ignore[arg-type]


def move(harness: Harness, step: str) -> Any:
    if step == "ready":
        return harness.ready(slot(harness.version))
    if step == "failed":
        return harness.failed("the artifact changed")
    return getattr(harness, step)()


# How each state is reached from a new harness.
PATHS = {
    LOADING: [],
    WARMING: ["warming"],
    READY: ["warming", "ready"],
    DRAINING: ["warming", "ready", "draining"],
    UNLOADED: ["warming", "ready", "draining", "unloaded"],
    FAILED: ["failed"],
}
STEPS = {
    "warming": WARMING,
    "ready": READY,
    "failed": FAILED,
    "draining": DRAINING,
    "unloaded": UNLOADED,
}
# The moves a harness makes; every other one is refused.
ALLOWED = {
    (LOADING, "warming"),
    (LOADING, "failed"),
    (WARMING, "ready"),
    (WARMING, "failed"),
    (READY, "draining"),
    (DRAINING, "unloaded"),
}
CASES = [(state, step) for state in PATHS for step in STEPS]


def at(state: HarnessState) -> Harness:
    harness = Harness(4)
    for step in PATHS[state]:
        move(harness, step)
    assert harness.state is state
    return harness


@pytest.mark.parametrize(("state", "step"), CASES, ids=[f"{s.value}-{m}" for s, m in CASES])
def test_a_harness_moves_only_along_its_life(state: HarnessState, step: str) -> None:
    harness = at(state)
    if (state, step) in ALLOWED:
        move(harness, step)
        assert harness.state is STEPS[step]
    else:
        refused = f"cannot go from {state.value} to {STEPS[step].value}"
        if step == "draining" and harness.slot is None:
            refused = f"has no slot to drain \\({state.value}\\)"
        with pytest.raises(RuntimeError, match=refused):
            move(harness, step)
        assert harness.state is state


@pytest.mark.parametrize("state", list(PATHS), ids=[s.value for s in PATHS])
def test_only_a_ready_harness_answers(state: HarnessState) -> None:
    harness = at(state)
    assert harness.answers is (state is READY)
    assert (harness.slot is not None) is (state in (READY, DRAINING))


def test_the_error_stays_while_a_retry_loads_and_goes_once_it_is_ready() -> None:
    first = at(FAILED)
    assert first.error == "the artifact changed"
    retry = Harness(4, error=first.error)
    assert (retry.state, retry.error) == (LOADING, "the artifact changed")
    retry.warming()
    retry.ready(slot())
    assert (retry.state, retry.error) == (READY, None)


def test_draining_hands_back_the_slot_that_finishes_its_requests() -> None:
    harness = at(READY)
    held = harness.slot
    assert harness.draining() is held
    assert not harness.answers
    harness.unloaded()
    assert harness.slot is None
