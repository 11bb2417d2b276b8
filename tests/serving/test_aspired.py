"""The aspired versions: deployment + harness states → what answers, what to load next.

Tables, no server and no event loop: :func:`plan` is pure. The rows name the cases
where the obvious rule is wrong (a failed canary, a production that fails on a server
already serving, a shadow that is also production, a draining version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from mooring.registry import Deployment
from mooring.serving._aspired import NOTHING, Aspired, Load, Plan, plan
from mooring.serving._harness import HarnessState

READY = HarnessState.READY
FAILED = HarnessState.FAILED
LOADING = HarnessState.LOADING
WARMING = HarnessState.WARMING
DRAINING = HarnessState.DRAINING
UNLOADED = HarnessState.UNLOADED


def deployed(**fields: Any) -> Deployment:
    return Deployment(name="income", revision=7, **fields)


@dataclass(frozen=True)
class Row:
    """One decision: the deployment, each version's state, what serves, what was tried."""

    deployment: Deployment
    states: Mapping[int, HarnessState]
    expected: Plan
    current: Aspired = NOTHING
    tried: frozenset[int] = field(default_factory=frozenset)


ROWS = {
    "the first deployment loads its production before anything answers": Row(
        deployed(production=1), {}, Plan(NOTHING, Load(1))
    ),
    "a ready production answers": Row(
        deployed(production=1), {1: READY}, Plan(Aspired(production=1)), tried=frozenset({1})
    ),
    "nothing moves until the canary is loaded too": Row(
        deployed(production=2, canary=3, canary_weight=10),
        {1: READY, 2: READY},
        Plan(Aspired(production=1), Load(3)),
        current=Aspired(production=1),
        tried=frozenset({2}),
    ),
    "a canary that failed to load: all traffic to production": Row(
        deployed(production=1, canary=2, canary_weight=30),
        {1: READY, 2: FAILED},
        Plan(Aspired(production=1)),
        tried=frozenset({1, 2}),
    ),
    "a ready canary takes its weight's share": Row(
        deployed(production=1, canary=2, canary_weight=30),
        {1: READY, 2: READY},
        Plan(Aspired(production=1, canary=2, weight=30)),
    ),
    "a canary of weight 0 stays served, for requests that ask for it": Row(
        deployed(production=1, canary=2, canary_weight=0),
        {1: READY, 2: READY},
        Plan(Aspired(production=1, canary=2, weight=0)),
    ),
    "a canary that is the production version is no canary": Row(
        deployed(production=1, canary=1, canary_weight=30),
        {1: READY},
        Plan(Aspired(production=1)),
    ),
    "a canary still loading takes no share and is not loaded twice": Row(
        deployed(production=1, canary=2, canary_weight=50),
        {1: READY, 2: LOADING},
        Plan(Aspired(production=1)),
    ),
    "a version that failed under an earlier deployment is tried again": Row(
        deployed(production=2, previous=(1,)),
        {1: READY, 2: FAILED},
        Plan(Aspired(production=1), Load(2)),
        current=Aspired(production=1),
    ),
    "a running server keeps what it serves, not the newest earlier production": Row(
        deployed(production=3, previous=(1, 2)),
        {1: READY, 3: FAILED},
        Plan(Aspired(production=1, fallback_for=3)),
        current=Aspired(production=1),
        tried=frozenset({3}),
    ),
    "production failed at start-up: the newest earlier production is loaded": Row(
        deployed(production=3, previous=(1, 2)),
        {3: FAILED},
        Plan(NOTHING, Load(2)),
        tried=frozenset({3}),
    ),
    "an earlier production that failed before is not tried again": Row(
        deployed(production=3, previous=(1, 2)),
        {2: FAILED, 3: FAILED},
        Plan(NOTHING, Load(1)),
        tried=frozenset({3}),
    ),
    "production failed while a fallback is ready: the fallback answers": Row(
        deployed(production=3, previous=(1, 2)),
        {1: READY, 2: FAILED, 3: FAILED},
        Plan(Aspired(production=1, fallback_for=3)),
        tried=frozenset({1, 2, 3}),
    ),
    "production failed and the canary's version is ready: it answers as production": Row(
        deployed(production=2, canary=1, canary_weight=20, previous=(1,)),
        {1: READY, 2: FAILED},
        Plan(Aspired(production=1, fallback_for=2)),
        tried=frozenset({1, 2}),
    ),
    "nothing that loads: nothing answers, and no fallback is claimed": Row(
        deployed(production=2, previous=(1,)),
        {1: FAILED, 2: FAILED},
        Plan(NOTHING),
        tried=frozenset({1, 2}),
    ),
    "a record that names no production keeps what serves": Row(
        deployed(), {1: READY}, Plan(Aspired(production=1)), current=Aspired(production=1)
    ),
    "the shadow loads once production and canary have moved": Row(
        deployed(production=2, canary=3, canary_weight=5, shadow=4, shadow_rate=0.5),
        {1: READY, 2: READY, 3: READY},
        Plan(Aspired(production=2, canary=3, weight=5), Load(4, shadow=True)),
        current=Aspired(production=1),
        tried=frozenset({2, 3}),
    ),
    "the shadow serving before keeps its copies while the next one loads": Row(
        deployed(production=1, shadow=4, shadow_rate=0.5),
        {1: READY, 3: READY},
        Plan(Aspired(production=1, shadow=3, shadow_rate=0.2), Load(4, shadow=True)),
        current=Aspired(production=1, shadow=3, shadow_rate=0.2),
    ),
    "a ready shadow gets its rate": Row(
        deployed(production=1, shadow=3, shadow_rate=0.5),
        {1: READY, 3: READY},
        Plan(Aspired(production=1, shadow=3, shadow_rate=0.5)),
    ),
    "a shadow that failed to load changes nothing else": Row(
        deployed(production=1, canary=2, canary_weight=10, shadow=3, shadow_rate=0.5),
        {1: READY, 2: READY, 3: FAILED},
        Plan(Aspired(production=1, canary=2, weight=10)),
        tried=frozenset({3}),
    ),
    "a shadow that is the production version gets no copies": Row(
        deployed(production=1, shadow=1, shadow_rate=0.5),
        {1: READY},
        Plan(Aspired(production=1)),
    ),
    "a shadow that is the fallback production gets no copies": Row(
        deployed(production=2, previous=(1,), shadow=1, shadow_rate=0.5),
        {1: READY, 2: FAILED},
        Plan(Aspired(production=1, fallback_for=2)),
        tried=frozenset({1, 2}),
    ),
    "a draining version is loaded anew before it answers again": Row(
        deployed(production=1, previous=(2,)),
        {1: DRAINING, 2: READY},
        Plan(Aspired(production=2), Load(1)),
        current=Aspired(production=2),
    ),
    "an unloaded version is loaded anew": Row(
        deployed(production=1, canary=2, canary_weight=10),
        {1: READY, 2: UNLOADED},
        Plan(Aspired(production=1), Load(2)),
        current=Aspired(production=1),
        tried=frozenset({1}),
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_plan(row: Row) -> None:
    assert plan(row.deployment, row.states, current=row.current, tried=row.tried) == row.expected


def settle(
    deployment: Deployment,
    loads: set[int],
    states: Mapping[int, HarnessState] | None = None,
    current: Aspired = NOTHING,
) -> tuple[list[Load], list[Aspired]]:
    """Apply ``deployment`` as the manager does, where only ``loads`` load: the loads
    in order, and each aspired version published (the last is final)."""
    known = dict(states or {})
    tried: set[int] = set()
    done: list[Load] = []
    published: list[Aspired] = []
    while True:
        step = plan(deployment, known, current=current, tried=tried)
        published.append(step.aspired)
        current = step.aspired
        if step.load is None:
            return done, published
        done.append(step.load)
        tried.add(step.load.version)
        known[step.load.version] = READY if step.load.version in loads else FAILED


SWAPS = {
    "a new production and canary move together, the shadow after them": (
        deployed(production=2, canary=3, canary_weight=10, shadow=4, shadow_rate=0.1),
        {2, 3, 4},
        [Load(2), Load(3), Load(4, shadow=True)],
        [
            Aspired(production=1),
            Aspired(production=1),
            Aspired(production=2, canary=3, weight=10),
            Aspired(production=2, canary=3, weight=10, shadow=4, shadow_rate=0.1),
        ],
    ),
    "a production that fails keeps the old one answering": (
        deployed(production=2, previous=(1,)),
        set(),
        [Load(2)],
        [Aspired(production=1), Aspired(production=1, fallback_for=2)],
    ),
    "a canary and a shadow that fail leave production alone": (
        deployed(production=1, canary=2, canary_weight=50, shadow=3, shadow_rate=1.0),
        set(),
        [Load(2), Load(3, shadow=True)],
        [Aspired(production=1), Aspired(production=1), Aspired(production=1)],
    ),
}


@pytest.mark.parametrize(
    ("deployment", "loads", "order", "published"), SWAPS.values(), ids=SWAPS.keys()
)
def test_a_swap_on_a_running_server(
    deployment: Deployment, loads: set[int], order: list[Load], published: list[Aspired]
) -> None:
    assert settle(deployment, loads, {1: READY}, Aspired(production=1)) == (order, published)


STARTS = {
    "the deployed production loads": (deployed(production=3, previous=(1, 2)), {3}, [3], 3),
    "the newest earlier production that loads answers": (
        deployed(production=3, previous=(1, 2)),
        {1, 2},
        [3, 2],
        2,
    ),
    "earlier productions are tried newest first": (
        deployed(production=3, previous=(1, 2)),
        {1},
        [3, 2, 1],
        1,
    ),
    "nothing loads: every candidate tried once": (
        deployed(production=3, previous=(1, 2)),
        set(),
        [3, 2, 1],
        None,
    ),
}


@pytest.mark.parametrize(
    ("deployment", "loads", "order", "answers"), STARTS.values(), ids=STARTS.keys()
)
def test_start_up_falls_back_to_the_newest_earlier_production_that_loads(
    deployment: Deployment, loads: set[int], order: list[int], answers: int | None
) -> None:
    loaded, published = settle(deployment, loads)
    assert [load.version for load in loaded] == order
    final = published[-1]
    assert final.production == answers
    assert final.fallback_for == (3 if answers not in (None, 3) else None)
    # Until the search is over nothing answers: no request sees a candidate come and go.
    assert all(a == NOTHING for a in published[:-1])


def test_the_versions_kept_are_those_that_answer_and_the_shadow() -> None:
    aspired = Aspired(production=1, canary=2, weight=5, shadow=3, shadow_rate=0.1)
    assert aspired.versions == {1, 2, 3}
    assert NOTHING.versions == frozenset()
