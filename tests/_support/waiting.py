"""Waits in tests for readiness and background work: a limit is a safety net, never a verdict.

A wait polls ``check`` until it returns something true and hands that back. Its limit is
generous (two minutes by default) so that a slow or loaded machine changes how long a
test takes, not what it concludes; when it does give up, the failure says what it was
waiting for and what it saw last, so a stuck server reads differently from a slow one.
Tests that judge a decision over time (rollouts, guardrails, drift windows, batching
deadlines) do not wait on the clock at all: they count requests and ticks.

Example::

    wait_until(lambda: served(server) == {2}, "the server to serve v2 alone",
               seen=lambda: served(server))
    rows = wait_until(lambda: logged(home) >= 800 and logged(home), "800 logged rows")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: The default limit of a wait, in seconds: a few hundred times what it takes on a quiet machine.
PATIENCE = 120.0


def wait_until(
    check: Callable[[], T],
    what: str,
    *,
    timeout: float = PATIENCE,
    interval: float = 0.05,
    seen: Callable[[], object] | None = None,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``check()`` until it returns a true value, and return that value.

    Args:
        check: what to poll; an exception of a type in ``ignoring`` counts as not yet.
        what: what is awaited, for the failure message ("the server to become ready").
        timeout: the safety net, in seconds.
        interval: the pause between polls.
        seen: what to report on failure beside the last exception (the current state).
        ignoring: exceptions that mean "not yet" (a refused connection while starting).

    Raises:
        AssertionError: ``check`` stayed false for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    polls = 0
    error: BaseException | None = None
    while True:
        polls += 1
        try:
            result = check()
        except ignoring as exc:
            error = exc
        else:
            error = None
            if result:
                return result
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    details = [f"gave up after {timeout:g} s ({polls} polls) waiting for {what}"]
    if error is not None:
        details.append(f"last error: {error!r}")
    if seen is not None:
        details.append(f"last seen: {seen()!r}")
    raise AssertionError("; ".join(details))
