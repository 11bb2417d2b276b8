"""Registry events as signed webhooks: every audit event, delivered at least once to each
``[[registry.webhooks]]`` receiver as a CloudEvent, in order.

Each event is one HTTP POST in CloudEvents 1.0 structured mode
(``Content-Type: application/cloudevents+json``): ``id`` (the event's hash), ``source``
(the registry's database URL, password masked), ``type`` ``dev.mooring.audit.<action>``,
``subject`` (``model@version``), ``time``, ``datacontenttype`` and ``data``: the audit
event as stored, with its ``seq``, ``prev_hash`` and ``hash``, so a consumer checks it
against the chain (the link to the event before it; with the audit key, the hash itself).
The body is signed with HMAC-SHA256 under the receiver's secret (read from the environment
variable its ``secret_env`` names): ``X-Mooring-Signature: sha256=<hex>``. A 2xx answer
acknowledges it.

Delivery is at-least-once, from a durable cursor per receiver (the last acknowledged
``seq``, in the registry's database, table ``webhook_cursors``): events are sent in order,
and the cursor moves only past an acknowledged one, so nothing recorded while a receiver is
down is lost; an event may arrive twice (its ``id`` tells). Two roads deliver:

* after each committed registry write, a background thread of the writing process tries
  each pending event once (no waiting: a receiver that is down costs one attempt);
* ``mooring audit deliver`` (run it from cron or a timer) tries each pending event up to
  the receiver's ``max_attempts``, waiting 0.5 s, 1 s, 2 s, … (at most 60 s) between
  attempts; an event still refused stops that receiver's run, to be retried by the next.

Examples:
    >>> body = event_body({"seq": 1, "created_at": "2026-01-01T00:00:00+00:00",
    ...     "actor": "ana", "action": "register", "model_name": "income", "version": 1,
    ...     "reason": None, "forced": False, "before": None, "after": '{"version":1}',
    ...     "prev_hash": "0" * 64, "hash": "ab" * 32}, source="sqlite:///r.db")
    >>> sign(body, b"secret").startswith("sha256=")
    True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mooring.registry._manifest import canonical_json
from mooring.registry._sql.cursors import cursor_of, events_after, move_cursor, note_failure
from mooring.registry._sql.store import SqlStore

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.config._registry import WebhookConfig
    from mooring.registry._registry import Registry

__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPE",
    "SIGNATURE_HEADER",
    "Deliverer",
    "DeliveryFailedError",
    "DeliveryReport",
    "cloud_event",
    "deliver_after_writes",
    "event_body",
    "http_post",
    "sign",
]

log = logging.getLogger(__name__)

#: The header carrying ``sha256=<hex HMAC-SHA256 of the body>``.
SIGNATURE_HEADER = "X-Mooring-Signature"
#: CloudEvents' structured mode, JSON.
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
#: The CloudEvent ``type`` of an audit event, by action.
EVENT_TYPE = "dev.mooring.audit.{action}"
#: Longest wait between two attempts at one event.
MAX_BACKOFF_S = 60.0


class DeliveryFailedError(Exception):
    """One delivery attempt that the receiver did not acknowledge (the reason is the text)."""


def cloud_event(row: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """A stored audit row as a CloudEvent (structured mode); ``data`` holds every hashed
    field, ``before``/``after`` as JSON values (their canonical JSON text is what was hashed).
    """
    model, version = row["model_name"], row["version"]
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": row["hash"],
        "source": source,
        "type": EVENT_TYPE.format(action=row["action"]),
        "time": row["created_at"],
        "datacontenttype": "application/json",
        "data": {
            "seq": row["seq"],
            "created_at": row["created_at"],
            "actor": row["actor"],
            "action": row["action"],
            "model": model,
            "version": version,
            "reason": row["reason"],
            "forced": bool(row["forced"]),
            "before": None if row["before"] is None else json.loads(row["before"]),
            "after": None if row["after"] is None else json.loads(row["after"]),
            "prev_hash": row["prev_hash"],
            "hash": row["hash"],
        },
    }
    if model is not None:
        event["subject"] = model if version is None else f"{model}@{version}"
    return event


def event_body(row: Mapping[str, Any], *, source: str) -> bytes:
    """The request body of one event: the CloudEvent as canonical JSON (UTF-8)."""
    return canonical_json(cloud_event(row, source=source)).encode()


def sign(body: bytes, secret: bytes) -> str:
    """The :data:`SIGNATURE_HEADER` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not an acknowledgement (and a POST must not turn into a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``body``; return on a 2xx answer.

    Raises:
        DeliveryFailedError: any other answer, a redirect, a refused connection, a timeout.
    """
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailedError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        raise DeliveryFailedError(f"no answer ({why})") from None
    if not 200 <= status < 300:
        raise DeliveryFailedError(f"HTTP {status}")


Poster = Callable[[str, bytes, Mapping[str, str], float], None]


@dataclass(frozen=True)
class DeliveryReport:
    """One receiver after a delivery run: events delivered now, where its cursor stands,
    and, when it is behind the log, why."""

    receiver: str
    delivered: int
    cursor: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every event of the log has reached the receiver."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "receiver": self.receiver,
            "delivered": self.delivered,
            "cursor": self.cursor,
            "ok": self.ok,
            "error": self.error,
        }


class Deliverer:
    """Delivers the audit log to its receivers from their cursors (see the module's notes).

    ``post`` and ``sleep`` are the HTTP call and the wait between attempts (replaceable in
    tests); ``backoff_s`` is the first wait, doubled at each attempt.

    Example::

        deliverer = Deliverer(registry.store, cfg.registry.webhooks)
        for report in deliverer.deliver():
            print(report.receiver, report.cursor, report.error)
    """

    def __init__(
        self,
        store: SqlStore,
        receivers: Sequence[WebhookConfig],
        *,
        post: Poster = http_post,
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: float = 0.5,
        batch: int = 100,
    ) -> None:
        self.store = store
        self.receivers = list(receivers)
        self.source = store.url
        self._post = post
        self._sleep = sleep
        self.backoff_s = backoff_s
        self.batch = batch
        self._running = threading.Lock()  # one run at a time in this process
        self._state = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False

    # -- a delivery run ------------------------------------------------------------
    def deliver(self, *, attempts: int | None = None) -> list[DeliveryReport]:
        """Send every event after each receiver's cursor, in order; ``attempts`` per event
        (default: the receiver's ``max_attempts``), with backoff between them."""
        with self._running:
            return [self._deliver_to(receiver, attempts) for receiver in self.receivers]

    def _deliver_to(self, receiver: WebhookConfig, attempts: int | None) -> DeliveryReport:
        url = receiver.url
        secret = os.environ.get(receiver.secret_env)
        with self.store.side_transaction() as conn:
            cursor, _, _ = cursor_of(conn, url)
        if not secret:
            return DeliveryReport(
                url,
                0,
                cursor,
                f"the environment variable {receiver.secret_env} (secret_env of the webhook "
                f"{url}) is not set: its events are signed with it; set it to the secret the "
                "receiver checks",
            )
        tries = attempts if attempts is not None else receiver.max_attempts
        delivered = 0
        while True:
            with self.store.side_transaction() as conn:
                rows = events_after(conn, cursor, self.batch)
            if not rows:
                return DeliveryReport(url, delivered, cursor)
            for row in rows:
                error = self._send(receiver, row, secret.encode(), tries)
                with self.store.side_transaction() as conn:
                    if error is None:
                        move_cursor(conn, url, row["seq"])
                    else:
                        note_failure(conn, url, tries, error)
                if error is not None:
                    return DeliveryReport(
                        url,
                        delivered,
                        cursor,
                        f"audit event {row['seq']} ({row['action']}) was not acknowledged "
                        f"after {tries} attempt(s): {error}; it and the events after it are "
                        "kept for the next run (`mooring audit deliver`)",
                    )
                cursor, delivered = row["seq"], delivered + 1

    def _send(
        self, receiver: WebhookConfig, row: Mapping[str, Any], secret: bytes, tries: int
    ) -> str | None:
        """Deliver one event, trying ``tries`` times; None once acknowledged, else the
        last failure."""
        body = event_body(row, source=self.source)
        headers = {"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: sign(body, secret)}
        error = "not tried"
        for attempt in range(tries):
            if attempt:
                self._sleep(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            try:
                self._post(receiver.url, body, headers, receiver.timeout_s)
            except DeliveryFailedError as exc:
                error = str(exc)
                continue
            return None
        return error

    # -- immediately after a write ------------------------------------------------
    def kick(self) -> None:
        """Deliver what is pending in a background thread (one attempt per event); a write
        during a run makes it run once more. Never raises: a failure is logged, and the
        events wait for the next run."""
        with self._state:
            self._again = True
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._loop, name="mooring-webhooks")
            try:
                thread.start()
            except RuntimeError as exc:  # no thread left (interpreter exiting): the next run
                log.warning("webhook delivery deferred: %s", exc)
                return
            self._thread = thread

    def _loop(self) -> None:
        while True:
            with self._state:
                if not self._again:
                    return
                self._again = False
            try:
                for report in self.deliver(attempts=1):
                    if report.error is not None:
                        log.warning("webhook %s: %s", report.receiver, report.error)
            except Exception as exc:  # a background thread must not die loudly mid-command
                log.warning("webhook delivery failed: %s: %s", type(exc).__name__, exc)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background run to finish (tests; a process about to exit)."""
        with self._state:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


def deliver_after_writes(registry: Registry, cfg: MooringConfig) -> Deliverer | None:
    """With ``[[registry.webhooks]]``, deliver the audit events after each committed write
    of ``registry`` (in the background); the deliverer, or None without receivers."""
    store = registry.store
    if not cfg.registry.webhooks or not isinstance(store, SqlStore):
        return None
    deliverer = Deliverer(store, cfg.registry.webhooks)
    store.after_write = deliverer.kick
    return deliverer
