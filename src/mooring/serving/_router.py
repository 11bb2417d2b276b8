"""Which version answers a request, and whether the shadow gets a copy: pure, per request.

Both functions read one :class:`~mooring.serving._aspired.Aspired` record, so a request
sees either the deployment before a swap or the one after, never half of each. They
allocate nothing: the request path calls them for every prediction.

A request that names a version or a label gets that version when it answers here
(production or canary); any other gets production, or the canary for its weight's
share: by the hash of its routing key when it has one (the same key lands on the same
version in every worker), else by a draw. Only a request production answered may be
copied to the shadow; the shadow never answers a client.

Examples:
    >>> from mooring.serving._aspired import Aspired
    >>> aspired = Aspired(production=1, canary=2, weight=30, shadow=3, shadow_rate=1.0)
    >>> answering(aspired, key="customer-7") == (2 if bucket_of("customer-7") < 30 else 1)
    True
    >>> answering(aspired, version=3) is None  # the shadow is never asked for
    True
    >>> shadow_copy(aspired, 1), shadow_copy(aspired, 2)
    (3, None)
"""

from __future__ import annotations

import hashlib
import random
from typing import Protocol

from mooring.serving._aspired import Aspired

__all__ = ["Draw", "answering", "bucket_of", "shadow_copy"]


class Draw(Protocol):
    """Where the draws come from: :mod:`random` itself, a seeded ``random.Random``, a stub."""

    def randrange(self, stop: int, /) -> int: ...

    def random(self) -> float: ...


def bucket_of(key: str) -> int:
    """A stable bucket 0–99 for a request key (the same key always lands on the same version)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % 100


def answering(
    aspired: Aspired,
    version: int | None = None,
    label: str | None = None,
    key: str | None = None,
    draw: Draw = random,
) -> int | None:
    """The version that answers: the one asked for (by ``version`` or ``label``) when it
    answers here, else production or, for the canary's share, the canary; None: none.

    ``key`` places the request in a bucket (:func:`bucket_of`); without one, ``draw``
    picks the bucket, only when a canary takes a share.
    """
    if version is not None:
        return version if version == aspired.production or version == aspired.canary else None
    if label is not None:
        if label == "production":
            return aspired.production
        return aspired.canary if label == "canary" else None
    production = aspired.production
    if production is None:
        return None
    canary = aspired.canary
    if canary is not None and aspired.weight > 0:
        bucket = bucket_of(key) if key else draw.randrange(100)
        if bucket < aspired.weight:
            return canary
    return production


def shadow_copy(aspired: Aspired, answered: int, draw: Draw = random) -> int | None:
    """The shadow version when the request ``answered`` (by that version) gets a copy.

    Only production's answers are copied (not a canary's, nor a pinned request's to
    another version), each with probability ``shadow_rate``.
    """
    shadow = aspired.shadow
    if shadow is None or answered != aspired.production:
        return None
    return shadow if draw.random() < aspired.shadow_rate else None
