"""What ``mooring live`` and ``mooring drift`` read: the rows the server has answered.

The server writes its prediction log every ``[serving] log_flush_s`` seconds (10 by
default), so a window read just after a burst of traffic would be the window before
it. Before reading, these commands ask every server of the project (the replicas of
``[rollout] metrics_urls``, whose ``/metrics`` is replaced by ``/admin/flush``) to write
what it holds (:mod:`mooring.serving._flush`); the admin token is sent when one is set
(``[serving] admin_token`` or its environment variable), and a server without one
answers a client on its own machine. When no server answers, the commands say how old
the newest row they read is, and how often the server writes.

Examples:
    >>> flushed = ask_to_flush(cfg)  # doctest: +SKIP
    >>> flushed.note(newest="2026-11-29 13:50:01+00:00")  # doctest: +SKIP
    'log: no server answered … newest logged row 8 s old; the server writes its log every 10 s'
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from mooring.config import MooringConfig

__all__ = ["Flushed", "ask_to_flush", "flush_url", "row_age"]

#: How long a server has to write its log: it waits up to 5 s for each of its workers.
TIMEOUT_S = 8.0


def flush_url(metrics_url: str) -> str:
    """The flush endpoint of the server whose metrics are at ``metrics_url``.

    >>> flush_url("http://127.0.0.1:8501/metrics")
    'http://127.0.0.1:8501/admin/flush'
    >>> flush_url("https://models.example/income/metrics?x=1")
    'https://models.example/income/admin/flush'
    """
    parts = urlsplit(metrics_url)
    path = parts.path[: -len("/metrics")] if parts.path.endswith("/metrics") else ""
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/admin/flush", "", ""))


@dataclass
class Flushed:
    """Each server's answer to the flush (``answers``, by URL) or why it gave none
    (``failures``), and how often the server writes its log on its own."""

    flush_s: float
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def written(self) -> bool:
        """Every server that answered wrote its log, and one did."""
        return bool(self.answers) and all(a.get("log") == "written" for a in self.answers.values())

    def to_dict(self, newest: str | None = None) -> dict[str, Any]:
        """JSON-ready: the answers, the failures, the newest row's age in seconds."""
        return {
            "flushed": self.answers,
            "not_flushed": self.failures,
            "flush_s": self.flush_s,
            "newest_row_age_s": row_age(newest),
        }

    def note(self, newest: str | None = None) -> str:
        """One line for people: what the server wrote before the read, or how old the
        newest row read is when it was not asked (``newest``: its ISO time)."""
        rows = sum(int(a.get("rows") or 0) for a in self.answers.values())
        if self.written and not self.failures:
            return f"log: read after the server wrote the {rows:,} row(s) it held"
        said = [f"{url} {why}" for url, why in self.failures.items()]
        said += [
            f"{url} logs no request ([serving] log_sample_rate = 0)"
            if a.get("log") == "off"
            else f"{url}: {a.get('unanswered', 0)} of {a.get('workers', 1)} worker(s) did "
            "not write in time"
            for url, a in self.answers.items()
            if a.get("log") != "written"
        ]
        age = row_age(newest)
        shown = "no row read" if age is None else f"newest logged row {_seconds(age)} old"
        return (
            f"log: not flushed ({'; '.join(said)}): rows a server holds in memory are not "
            f"read; {shown}; the server writes its log every {self.flush_s:g} s "
            "([serving] log_flush_s)"
        )


def _seconds(age: float) -> str:
    """``8 s``, ``4 min``, ``3 h``, ``2 d``.

    >>> _seconds(8.4), _seconds(250), _seconds(3 * 3600), _seconds(50 * 3600)
    ('8 s', '4 min', '3 h', '2 d')
    """
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if age >= 2 * size:
            return f"{age / size:.0f} {unit}"
    return f"{max(age, 0.0):.0f} s"


def row_age(newest: str | None, now: float | None = None) -> float | None:
    """Seconds since ``newest`` (an ISO time; naive is UTC), None when there is none.

    >>> row_age("2026-01-01T00:00:00+00:00", now=1767225608.0)
    8.0
    """
    if not newest:
        return None
    try:
        moment = datetime.fromisoformat(newest)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (time.time() if now is None else now) - moment.timestamp()


def ask_to_flush(
    cfg: MooringConfig, servers: list[str] | None = None, *, timeout: float = TIMEOUT_S
) -> Flushed:
    """Ask each server of the project to write its prediction log now: ``servers`` (base
    URLs, ``http://127.0.0.1:8501``), else the replicas of ``[rollout] metrics_urls``;
    never raises (a server that does not answer is a failure, said so)."""
    token = cfg.serving.admin_token or os.environ.get(cfg.serving.admin_token_env) or None
    flushed = Flushed(cfg.serving.log_flush_s)
    urls = (
        [f"{s.rstrip('/')}/admin/flush" for s in servers]
        if servers
        else [flush_url(m) for m in cfg.rollout.metrics_urls]
    )
    for url in urls:
        request = urllib.request.Request(url, data=b"", method="POST")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            flushed.failures[url] = f"answered {exc.code}: {_error(exc)}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            flushed.failures[url] = f"did not answer ({reason})"
        except ValueError:
            flushed.failures[url] = "answered something other than JSON"
        else:
            flushed.answers[url] = answer if isinstance(answer, dict) else {}
    return flushed


def _error(exc: urllib.error.HTTPError) -> str:
    """The message of a server's error answer (``{"error": …}``), else its reason."""
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    message = body.get("error") if isinstance(body, dict) else None
    return str(message or exc.reason)
