"""A model call held inside the model until the test lets it go.

Tests of queues, deadlines and merging need "a batch is running now" as a fact, not as
a sleep long enough on a quiet machine: the held call sets ``entered`` as the batch
arrives and waits for ``release`` (at most :data:`~tests._support.waiting.PATIENCE`).

Example::

    model = Held(doubling)
    batcher = Batcher(model, ...)
    ...                         # submit requests
    model.wait_entered("the first batch in the model")
    model.release.set()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests._support.waiting import PATIENCE, wait_until


class Held:
    """Wraps ``predict``; every call waits for ``release`` unless ``hold`` is False."""

    def __init__(self, predict: Callable[[Any], Any], *, hold: bool = True) -> None:
        self.predict = predict
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, columns: Any) -> Any:
        self.entered.set()
        if self.hold:
            self.release.wait(PATIENCE)
        return self.predict(columns)

    def wait_entered(self, what: str) -> None:
        """Block until a call is inside the model (from a thread, not the event loop)."""
        wait_until(self.entered.is_set, what)
