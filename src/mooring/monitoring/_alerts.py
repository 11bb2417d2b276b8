"""Alerts: what the monitor tells people, through a log and a webhook, without repeating itself.

An :class:`Alert` names the model, the version and a kind (``rollback``, ``promote``,
``drift``, ``slo_availability_page``, ``retrain``, ``estimate_unreliable`` (production's
estimate before labels cannot be trusted on the monitor's window: "unreliable: <why>",
no number)…; from the rollout: ``rollout_stalled``,
``sample_ratio_mismatch``, and ``monitor_failed`` / ``monitor_held`` for a monitor whose
ticks fail, see :data:`ROLLOUT_KINDS`). The :class:`AlertManager` sends each
alert to every sink unless the same ``(model, version, kind)`` was sent within the
cooldown; what it sent, and when, is kept under ``<home>/monitoring/<model>/alerts.json``
(atomic writes), so a restarted monitor does not page again for the same thing. The log
sink says each alert in one short line and appends its full record to ``alerts.jsonl``
there.

Sinks never raise: a webhook that is down is retried with a doubling back-off, then
logged as failed, and the monitor carries on.

Examples:
    >>> manager = AlertManager([LogSink()], cooldown_s=3600)
    >>> alert = Alert(model="income", version=3, kind="rollback", severity="page",
    ...               summary="canary rolled back")
    >>> manager.send(alert), manager.send(alert)  # doctest: +SKIP
    (True, False)
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from mooring.config import MooringConfig
from mooring.monitoring._state import monitoring_dir, read_json, write_json

__all__ = [
    "ALERT_LOG",
    "ROLLOUT_KINDS",
    "Alert",
    "AlertManager",
    "AlertSink",
    "LogSink",
    "Severity",
    "WebhookSink",
    "short_line",
]

log = logging.getLogger("mooring.monitoring.alerts")

Severity = Literal["page", "ticket", "info"]
#: The rollout controller's alert kinds and what each means.
ROLLOUT_KINDS = {
    "rollback": "a canary was rolled back (page)",
    "promote": "a canary was promoted (info)",
    "rollout_stalled": "an undecided step spent its budget under policy = strict (ticket)",
    "sample_ratio_mismatch": "the canary's share of requests is not its weight (ticket)",
    "monitor_failed": "a monitor tick failed inside the check (ticket)",
    "monitor_held": "the rollout is held: max_failed_ticks failed in a row (page)",
}
#: The alert log: every alert the log sink sent, one JSON record a line.
ALERT_LOG = "alerts.jsonl"
_RECENT = 200


def _now_iso(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).isoformat()


@dataclass(frozen=True)
class Alert:
    """One thing worth telling someone about."""

    model: str
    version: int | None
    kind: str
    severity: Severity
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=_now_iso)

    @property
    def key(self) -> str:
        """The deduplication key: model, version and kind."""
        return f"{self.model}|{self.version if self.version is not None else '-'}|{self.kind}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON body a webhook receives."""
        return {"source": "mooring", **asdict(self)}


class AlertSink(Protocol):
    """Somewhere alerts go. ``send`` returns True when delivered and never raises."""

    name: str

    def send(self, alert: Alert) -> bool:
        """Deliver one alert."""
        ...


#: The longest summary the log line of an alert shows (the file has all of it).
SUMMARY_CHARS = 200


class LogSink:
    """Alerts as one short line on the ``mooring.monitoring.alerts`` logger (WARNING for
    pages and tickets), their full JSON records in a file.

    The line: ``alert rollback income@3 (page): canary income@3 rolled back at 50%: …``
    (the summary cut at :data:`SUMMARY_CHARS`). The record (``Alert.to_dict``, what a
    webhook receives) is appended as a JSON line to ``path``
    (``<home>/monitoring/<model>/alerts.jsonl`` from the configuration); without a path
    it goes to the logger at DEBUG level.
    """

    name = "log"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def send(self, alert: Alert) -> bool:
        level = logging.WARNING if alert.severity in ("page", "ticket") else logging.INFO
        log.log(level, "%s", short_line(alert))
        record = orjson.dumps(alert.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
        if self.path is None:
            log.debug("alert record %s", record.decode())
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as sink:
                sink.write(record + b"\n")
        except OSError as exc:
            log.error("alert record not written to %s: %s", self.path, exc)
        return True


def short_line(alert: Alert) -> str:
    """What the log says of an alert: kind, model@version, severity and summary.

    >>> short_line(Alert("income", 3, "rollback", "page", "canary income@3 rolled back"))
    'alert rollback income@3 (page): canary income@3 rolled back'
    """
    version = alert.version if alert.version is not None else "-"
    summary = " ".join(alert.summary.split())
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1].rstrip() + "…"
    return f"alert {alert.kind} {alert.model}@{version} ({alert.severity}): {summary}"


class WebhookSink:
    """POST each alert as JSON to a URL, with a timeout and retries; never raises.

    5xx answers, 429 and network errors are retried (``retries`` times, waiting
    ``backoff_s``, then twice as long…); other 4xx answers are not, since sending the
    same body again cannot help.

    Examples:
        >>> sink = WebhookSink("https://hooks.example/mooring", timeout_s=5, retries=3)
        >>> sink.send(Alert("income", 3, "drift", "ticket", "age drifted"))  # doctest: +SKIP
        True
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.last_error: str | None = None

    def _post(self, body: bytes) -> tuple[bool, bool, str]:
        """(delivered, worth retrying, what happened)."""
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "mooring-monitor"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
                return True, False, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            retry = exc.code >= 500 or exc.code == 429
            return False, retry, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return False, True, f"{type(exc).__name__}: {exc}"

    def send(self, alert: Alert) -> bool:
        body = orjson.dumps(alert.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
        wait = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                delivered, retry, what = self._post(body)
            except Exception as exc:  # a sink must never take the monitor down
                delivered, retry, what = False, False, f"{type(exc).__name__}: {exc}"
            if delivered:
                self.last_error = None
                return True
            self.last_error = what
            if not retry or attempt == self.retries:
                break
            self._sleep(wait)
            wait *= 2
        log.error(
            "alert %s not delivered to webhook %s after %d attempt(s): %s",
            alert.key,
            self.url,
            attempt + 1,
            self.last_error,
        )
        return False


class AlertManager:
    """Send alerts to every sink, at most once per ``(model, version, kind)`` per cooldown.

    ``state_path`` (JSON) remembers what was sent when, across restarts; ``clock``
    gives the time in seconds (tests pass their own).
    """

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        cooldown_s: float = 3600.0,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sinks = list(sinks)
        self.cooldown_s = cooldown_s
        self.state_path = state_path
        self.clock = clock
        self._lock = threading.Lock()
        state = read_json(state_path) if state_path is not None else None
        self._sent: dict[str, float] = dict((state or {}).get("sent", {}))
        self.recent: list[dict[str, Any]] = list((state or {}).get("recent", []))

    @classmethod
    def from_config(
        cls, cfg: MooringConfig, *, clock: Callable[[], float] = time.time
    ) -> AlertManager:
        """The sinks and cooldown of ``[monitoring.alerts]``, state under the project's home."""
        section = cfg.monitoring.alerts
        sinks: list[AlertSink] = []
        if section.log:
            sinks.append(LogSink(monitoring_dir(cfg) / ALERT_LOG))
        if section.webhook_url:
            sinks.append(
                WebhookSink(
                    section.webhook_url,
                    timeout_s=section.webhook_timeout,
                    retries=section.webhook_retries,
                    backoff_s=section.webhook_backoff,
                )
            )
        path = monitoring_dir(cfg) / "alerts.json"
        return cls(sinks, cooldown_s=section.cooldown, state_path=path, clock=clock)

    def suppressed(self, alert: Alert) -> bool:
        """True while the same alert is within its cooldown."""
        last = self._sent.get(alert.key)
        return last is not None and self.clock() - last < self.cooldown_s

    def send(self, alert: Alert) -> bool:
        """Deliver ``alert`` unless a duplicate is cooling down; True when it went out.

        An alert counts as sent (and starts its cooldown) when at least one sink
        took it; when every sink failed, the next identical alert tries again.
        """
        with self._lock:
            if self.suppressed(alert):
                log.debug("alert %s suppressed (cooldown)", alert.key)
                return False
            results = {}
            for sink in self.sinks:
                try:
                    results[sink.name] = sink.send(alert)
                except Exception as exc:  # a sink must never take the monitor down
                    log.error("alert sink %s failed: %s", sink.name, exc)
                    results[sink.name] = False
            delivered = any(results.values()) or not self.sinks
            if delivered:
                self._sent[alert.key] = self.clock()
            self.recent = [*self.recent, {**alert.to_dict(), "delivered": results}][-_RECENT:]
            self._save()
            return delivered

    def _save(self) -> None:
        if self.state_path is None:
            return
        horizon = self.clock() - self.cooldown_s
        self._sent = {k: t for k, t in self._sent.items() if t >= horizon}
        try:
            write_json(self.state_path, {"sent": self._sent, "recent": self.recent})
        except OSError as exc:
            log.error("alert state not saved to %s: %s", self.state_path, exc)
