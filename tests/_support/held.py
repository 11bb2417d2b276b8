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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def held_model(app: Any, name: str) -> Iterator[Held]:
    """Hold every model call of ``name``'s production version in a served ``app`` until
    the test releases it; the calls run off the event loop, which must keep answering.
    The model is restored (and released) on the way out.

    Example::

        with held_model(server.app, NAME) as held:
            conn.send(request)
            held.wait_entered("the request to be in the model")
    """
    manager = app.state.mooring.managers[name]
    batcher = manager.slots[manager.production].batcher
    predict, inline_when = batcher.predict, batcher.inline_when
    held = Held(predict)
    batcher.predict = held
    batcher.inline_when = None
    try:
        yield held
    finally:
        held.release.set()
        batcher.predict, batcher.inline_when = predict, inline_when
