"""Clients calling a real server's predict endpoint from a thread, every answer counted.

Example::

    requests = ((rows, None) for rows in batches)          # (instances, label or None)
    with Traffic(server.url, "/v1/models/income:predict", requests) as traffic:
        ...
    assert traffic.failures == [] and traffic.seen["2"] > 0  # answers per X-Model-Version
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

Request = tuple[list[dict[str, Any]], str | None]


class Traffic:
    """Sends each of ``requests`` (its instances, and the label of its one row or None).

    Every request carries its own X-Request-Id. With ``feedback`` (the labels path and
    its bearer token), the labels of answered requests are posted there 25 at a time.
    Answers are counted by the version that gave them; any failure, a non-200 answer
    included, is kept in ``failures``.
    """

    def __init__(
        self,
        url: str,
        predict: str,
        requests: Iterator[Request],
        *,
        feedback: tuple[str, str] | None = None,
    ) -> None:
        self.url = url
        self.predict = predict
        self.requests = requests
        self.feedback = feedback
        self.seen: Counter[str] = Counter()
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._send_all()
        except Exception as exc:  # a dead thread would only look like a quiet client
            self.failures.append(f"traffic stopped: {exc!r}")
            raise

    def _send_all(self) -> None:
        pending: list[dict[str, str]] = []
        numbers = itertools.count()
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for instances, label in self.requests:
                if self.stop.is_set():
                    return
                rid = f"q{next(numbers)}"
                body = orjson.dumps({"instances": instances})
                try:
                    res = client.post(self.predict, content=body, headers={"X-Request-Id": rid})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if res.status_code != 200:
                    self.failures.append(f"{res.status_code}: {res.text[:200]}")
                    continue
                self.seen[res.headers["X-Model-Version"]] += 1
                if self.feedback is not None and label is not None:
                    pending.append({"request_id": rid, "label": label})
                    if len(pending) >= 25:
                        self._send_labels(client, pending)
                        pending = []

    def _send_labels(self, client: httpx.Client, labels: list[dict[str, str]]) -> None:
        assert self.feedback is not None
        path, token = self.feedback
        headers = {"Authorization": f"Bearer {token}"}
        try:
            res = client.post(path, json={"labels": labels}, headers=headers)
        except httpx.HTTPError as exc:
            self.failures.append(f"feedback: {exc!r}")
            return
        if res.status_code != 200:
            self.failures.append(f"feedback {res.status_code}: {res.text[:200]}")

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
