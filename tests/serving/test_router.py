"""The router: which version answers a request, and whether the shadow gets a copy.

Tables over :class:`Aspired` records with known draws; no server, no event loop.
"""

from __future__ import annotations

from typing import Any

import pytest

from mooring.registry import Deployment
from mooring.serving._aspired import Aspired, plan
from mooring.serving._harness import HarnessState
from mooring.serving._router import answering, bucket_of, shadow_copy

FULL = Aspired(production=1, canary=2, weight=30, shadow=3, shadow_rate=0.5)


class Fixed:
    """Known draws: the bucket ``randrange`` gives, the share ``random`` gives; counted."""

    def __init__(self, bucket: int = 0, share: float = 0.0) -> None:
        self.bucket, self.share, self.drawn = bucket, share, 0

    def randrange(self, stop: int, /) -> int:
        assert stop == 100
        self.drawn += 1
        return self.bucket

    def random(self) -> float:
        self.drawn += 1
        return self.share


ROUTES: dict[str, tuple[Aspired, dict[str, Any], int, int | None, int]] = {
    # name: (aspired, the request's version/label/key, the draw's bucket, answers, draws)
    "production answers when there is no canary, without a draw": (
        Aspired(production=1),
        {},
        0,
        1,
        0,
    ),
    "the canary answers its weight's share": (FULL, {}, 29, 2, 1),
    "production answers the rest": (FULL, {}, 30, 1, 1),
    "a keyed request is placed by its key's bucket, not a draw": (
        FULL,
        {"key": "customer-7"},  # bucket 26
        99,
        2,
        0,
    ),
    "a key past the weight goes to production": (FULL, {"key": "user-1"}, 0, 1, 0),  # 68
    "an empty key is no key: a draw places it": (FULL, {"key": ""}, 0, 2, 1),
    "a canary of weight 0 answers no request that does not ask for it": (
        Aspired(production=1, canary=2, weight=0),
        {},
        0,
        1,
        0,
    ),
    "no production: nothing answers, even with a canary of weight 100": (
        Aspired(canary=2, weight=100),
        {},
        0,
        None,
        0,
    ),
    "a request for the production version gets it": (FULL, {"version": 1}, 0, 1, 0),
    "a request for the canary version gets it, whatever its weight": (
        Aspired(production=1, canary=2, weight=0),
        {"version": 2},
        0,
        2,
        0,
    ),
    "the shadow never answers a client, even when asked for by version": (
        FULL,
        {"version": 3},
        0,
        None,
        0,
    ),
    "a version not served here": (FULL, {"version": 9}, 0, None, 0),
    "the production label": (FULL, {"label": "production"}, 0, 1, 0),
    "the canary label": (FULL, {"label": "canary"}, 0, 2, 0),
    "the canary label without a canary": (Aspired(production=1), {"label": "canary"}, 0, None, 0),
    "the shadow is no label": (FULL, {"label": "shadow"}, 0, None, 0),
    "a version asked for wins over the key": (FULL, {"version": 1, "key": "customer-7"}, 0, 1, 0),
}


@pytest.mark.parametrize(
    ("aspired", "request_", "bucket", "answers", "draws"), ROUTES.values(), ids=ROUTES.keys()
)
def test_answering(
    aspired: Aspired, request_: dict[str, Any], bucket: int, answers: int | None, draws: int
) -> None:
    draw = Fixed(bucket=bucket)
    assert answering(aspired, **request_, draw=draw) == answers
    assert draw.drawn == draws


COPIES: dict[str, tuple[Aspired, int, float, int | None, int]] = {
    # name: (aspired, the version that answered, the draw, copied to, draws)
    "production's answer is copied below the rate": (FULL, 1, 0.49, 3, 1),
    "and not from the rate up": (FULL, 1, 0.5, None, 1),
    "a rate of 1 copies every answer of production": (
        Aspired(production=1, shadow=3, shadow_rate=1.0),
        1,
        0.999,
        3,
        1,
    ),
    "the canary's answer is never copied, and costs no draw": (FULL, 2, 0.0, None, 0),
    "an answer of another version is not copied": (FULL, 5, 0.0, None, 0),
    "no shadow: nothing copied, no draw": (Aspired(production=1), 1, 0.0, None, 0),
}


@pytest.mark.parametrize(
    ("aspired", "answered", "share", "copied", "draws"), COPIES.values(), ids=COPIES.keys()
)
def test_shadow_copy(
    aspired: Aspired, answered: int, share: float, copied: int | None, draws: int
) -> None:
    draw = Fixed(share=share)
    assert shadow_copy(aspired, answered, draw) == copied
    assert draw.drawn == draws


@pytest.mark.parametrize(
    "aspired",
    [
        FULL,
        Aspired(production=1, shadow=3, shadow_rate=1.0),
        Aspired(canary=2, weight=100, shadow=3),
    ],
)
def test_the_shadow_never_answers(aspired: Aspired) -> None:
    answered = {answering(aspired, draw=Fixed(bucket=b)) for b in range(100)}
    answered |= {answering(aspired, key=f"user-{i}") for i in range(200)}
    answered |= {answering(aspired, label=label) for label in ("production", "canary")}
    assert aspired.shadow not in answered


def test_a_draining_version_receives_no_new_request() -> None:
    # Version 1 was retired (draining) and is deployed again: until it is loaded anew,
    # version 2 answers every request, and a request for version 1 finds nothing.
    deployment = Deployment(name="income", production=1, previous=(2,))
    states = {1: HarnessState.DRAINING, 2: HarnessState.READY}
    step = plan(deployment, states, current=Aspired(production=2))
    assert step.load is not None and step.load.version == 1
    answered = {answering(step.aspired, draw=Fixed(bucket=b)) for b in range(100)}
    assert answered == {2}
    assert answering(step.aspired, version=1) is None


BUCKETS = {"customer-7": 26, "user-1": 68, "user-2": 64, "a": 43}


@pytest.mark.parametrize(("key", "bucket"), BUCKETS.items(), ids=BUCKETS.keys())
def test_a_key_lands_in_the_same_bucket_in_every_process(key: str, bucket: int) -> None:
    # A hash of the key's bytes, not Python's salted hash(): every worker agrees.
    assert bucket_of(key) == bucket


def test_buckets_cover_0_to_99() -> None:
    buckets = {bucket_of(f"k{i}") for i in range(5000)}
    assert buckets == set(range(100))
