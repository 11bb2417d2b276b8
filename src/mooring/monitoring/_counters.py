"""One version's counters over a span: requests, 5xx and 4xx answers, inference latency.

The rollout's evidence is made of them (:mod:`mooring.monitoring._evidence`): the
server's counters read back (:mod:`mooring.monitoring._scrape`) and their differences
over a step. A record of its own, apart from the scraping, so that judging them imports
no network code.

Examples:
    >>> VersionCounters(requests=10, errors=4).since(VersionCounters(requests=5, errors=1))
    VersionCounters(requests=5, errors=3, latency=None, load_failures=0.0, client_errors=0.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mooring.formats._metrics import Histogram

__all__ = ["VersionCounters"]


@dataclass(frozen=True)
class VersionCounters:
    """One version's requests, 5xx and 4xx answers and inference-latency histogram."""

    requests: float = 0.0
    errors: float = 0.0
    latency: Histogram | None = None
    load_failures: float = 0.0
    #: 4xx answers (but 429, overload, and 499, the client went away) to requests the
    #: canary split routed: the client's fault, unless one version returns more of them
    #: for traffic another answers. Requests pinned to a version do not count (anyone can
    #: send junk to a canary's address).
    client_errors: float = 0.0

    @property
    def error_rate(self) -> float:
        """5xx answers per request (0 without requests)."""
        return self.errors / self.requests if self.requests > 0 else 0.0

    def since(self, earlier: VersionCounters | None) -> VersionCounters:
        """What happened after ``earlier``; after a counter reset, everything counted now."""
        if earlier is None or self.requests < earlier.requests or self.errors < earlier.errors:
            return self
        latency = self.latency.since(earlier.latency) if self.latency is not None else None
        return VersionCounters(
            requests=self.requests - earlier.requests,
            errors=self.errors - earlier.errors,
            latency=latency,
            load_failures=max(self.load_failures - earlier.load_failures, 0.0),
            client_errors=max(self.client_errors - earlier.client_errors, 0.0),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency": None if self.latency is None else self.latency.to_dict(),
            "load_failures": self.load_failures,
            "client_errors": self.client_errors,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VersionCounters:
        """Inverse of :meth:`to_dict`."""
        latency = data.get("latency")
        return cls(
            requests=float(data.get("requests", 0.0)),
            errors=float(data.get("errors", 0.0)),
            latency=None if latency is None else Histogram.from_dict(latency),
            load_failures=float(data.get("load_failures", 0.0)),
            client_errors=float(data.get("client_errors", 0.0)),
        )
