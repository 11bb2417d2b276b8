"""Traffic for end-to-end tests: a fixed number of requests at a time, and rollouts ticked by count.

A test that judges a decision over time (a rollout's steps, a guardrail, a drift window)
sends traffic in rounds of a fixed number of requests and ticks its controller between
rounds, so what the controller sees at its n-th tick is the same on any machine; only
how long the test takes depends on the machine's speed. Every round waits until the
server's prediction log holds every answered row, the evidence the output and label
guardrails read.

Example::

    requests = ((rows, None) for rows in batches)          # (instances, label or None)
    with Traffic(server.url, "/v1/models/income:predict", requests, log=home / "predictions") as t:
        decisions = tick_until(controller, t, per_tick=300, done=lambda d: d.changed)
    assert t.failures == [] and t.seen["2"] > 0            # answers per X-Model-Version
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
import pyarrow.parquet as pq

from tests._support.waiting import wait_until

Request = tuple[list[dict[str, Any]], str | None]


class Ticking(Protocol):
    """A rollout controller, or anything else that decides once per ``tick()``."""

    def tick(self) -> Any: ...


def logged_rows(folder: Path) -> int:
    """Rows in the prediction log under ``folder`` (every model, every day)."""
    if not folder.exists():
        return 0
    return sum(pq.read_metadata(p).num_rows for p in folder.rglob("*.parquet"))


class Traffic:
    """Sends ``requests`` (each: its instances, and its one row's label or None) on demand.

    ``send(n)`` sends the next ``n`` from the calling thread. Every request carries its own
    X-Request-Id (the server keeps it as the client's id); with ``feedback`` (the labels
    path and its bearer token), the labels of answered requests are posted there, keyed by
    the X-Request-Id the server answered (the id labels join on), 25 at a time and the
    rest at the end of a round. Answers are counted by the version that gave them; any
    failure, a non-200 answer included, is kept in ``failures``. With ``log`` (the
    server's prediction log folder, sampling every request), a round returns once the log
    holds each answered row.
    """

    def __init__(
        self,
        url: str,
        predict: str,
        requests: Iterator[Request],
        *,
        feedback: tuple[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.url = url
        self.predict = predict
        self.requests = requests
        self.feedback = feedback
        self.log = log
        self.seen: Counter[str] = Counter()
        self.rows = 0  # rows answered
        self.failures: list[str] = []
        self.client = httpx.Client(base_url=url, timeout=60)
        self._numbers = itertools.count()

    def send(self, n: int) -> None:
        """Send the next ``n`` requests, then their labels; wait for the log to hold them."""
        pending: list[dict[str, str]] = []
        for instances, label in itertools.islice(self.requests, n):
            rid = f"q{next(self._numbers)}"
            body = orjson.dumps({"instances": instances})
            try:
                res = self.client.post(self.predict, content=body, headers={"X-Request-Id": rid})
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
                continue
            if res.status_code != 200:
                self.failures.append(f"{res.status_code}: {res.text[:200]}")
                continue
            self.seen[res.headers["X-Model-Version"]] += 1
            self.rows += len(instances)
            if self.feedback is not None and label is not None:
                pending.append({"request_id": res.headers["X-Request-Id"], "label": label})
                if len(pending) >= 25:
                    self._send_labels(pending)
                    pending = []
        if pending:
            self._send_labels(pending)
        if self.log is not None:
            log = self.log
            wait_until(
                lambda: logged_rows(log) >= self.rows,
                f"the prediction log to hold all {self.rows} answered rows",
                seen=lambda: f"{logged_rows(log)} rows logged",
            )

    def _send_labels(self, labels: list[dict[str, str]]) -> None:
        assert self.feedback is not None
        path, token = self.feedback
        headers = {"Authorization": f"Bearer {token}"}
        try:
            res = self.client.post(path, json={"labels": labels}, headers=headers)
        except httpx.HTTPError as exc:
            self.failures.append(f"feedback: {exc!r}")
            return
        if res.status_code != 200:
            self.failures.append(f"feedback {res.status_code}: {res.text[:200]}")

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def tick_until(
    controller: Ticking,
    traffic: Traffic,
    *,
    per_tick: int,
    done: Callable[[Any], bool],
    max_ticks: int = 60,
    advance: Callable[[], None] | None = None,
) -> list[Any]:
    """Tick, then send ``per_tick`` requests, until ``done(decision)`` or ``max_ticks`` ticks.

    ``advance`` runs after each round (a test clock moving on, so a step's minimum
    duration passes in test time). The first tick sees no traffic since the last change.
    """
    decisions: list[Any] = []
    for _ in range(max_ticks):
        decision = controller.tick()
        decisions.append(decision)
        if done(decision):
            return decisions
        traffic.send(per_tick)
        if advance is not None:
            advance()
    last = decisions[-1]
    raise AssertionError(
        f"no decision after {max_ticks} ticks of {per_tick} requests "
        f"({dict(traffic.seen)} answered); last: {getattr(last, 'to_dict', lambda: last)()}"
    )
