"""Service-level objectives judged by multi-window burn rates, from the server's own counters.

Two objectives, each optional: *availability* (share of requests answered without a
5xx) and *latency* (share of requests answered within ``latency_ms``, from the request
latency histogram). The error budget is ``1 − target``; the *burn rate* over a window is
the share of bad requests in it divided by the budget (1 = spending the budget exactly
over the SLO period). Following the SRE workbook, an alert fires when a long window *and*
a short one both burn faster than a factor: 14.4× over 1 h and 5 min pages (2% of a
30-day budget gone in an hour), 6× over 6 h and 30 min opens a ticket. The short window
makes the alert stop soon after the problem does.

Counters are sampled at every monitor tick into a bounded series kept in
``<home>/monitoring/<model>/slo.json``; increases over a window allow for server
restarts (a counter that drops started again from zero). A window longer than the
series is judged on what the series covers; nothing fires before the series covers
the short window.

Examples:
    >>> round(burn_rate(bad=12, total=1000, target=0.999), 6)
    12.0
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig
from mooring.config._monitoring import BurnWindowConfig, SLOConfig
from mooring.formats._metrics import Histogram
from mooring.monitoring._alerts import Alert, AlertManager, Severity
from mooring.monitoring._scrape import MetricsSnapshot
from mooring.monitoring._state import monitoring_dir, read_json, write_json

__all__ = [
    "BurnStatus",
    "SLOMonitor",
    "SLOReport",
    "Sample",
    "SampleSeries",
    "WindowBurn",
    "burn_rate",
    "evaluate_objective",
    "increase",
]

_FIELDS = ("requests", "errors", "latency_total", "latency_good")


def burn_rate(*, bad: float, total: float, target: float) -> float:
    """How fast a window spends the error budget: (bad ÷ total) ÷ (1 − target).

    0 without traffic.

    >>> burn_rate(bad=0, total=0, target=0.99)
    0.0
    >>> round(burn_rate(bad=5, total=100, target=0.99), 6)
    5.0
    """
    if total <= 0:
        return 0.0
    return (bad / total) / (1.0 - target)


@dataclass(frozen=True)
class Sample:
    """Counter values at one moment (seconds since the epoch)."""

    at: float
    requests: float
    errors: float
    latency_total: float = 0.0
    latency_good: float = 0.0

    @classmethod
    def from_snapshot(cls, snapshot: MetricsSnapshot, latency_threshold_s: float | None) -> Sample:
        """The counters an SLO needs from one scrape."""
        return cls.from_counters(
            snapshot.taken_at,
            snapshot.requests,
            snapshot.errors,
            snapshot.request_latency,
            latency_threshold_s,
        )

    @classmethod
    def from_counters(
        cls,
        at: float,
        requests: float,
        errors: float,
        latency: Histogram | None,
        latency_threshold_s: float | None,
    ) -> Sample:
        """A sample from the request counters and the request-latency histogram.

        >>> h = Histogram((0.1, 0.25, math.inf), (80.0, 90.0, 100.0))
        >>> Sample.from_counters(60.0, 100.0, 2.0, h, 0.25).latency_good
        90.0
        """
        total = good = 0.0
        if latency is not None and latency_threshold_s is not None and latency.count > 0:
            total = latency.count
            good = latency.count_below(latency_threshold_s)
        return cls(at, requests, errors, total, good)


class SampleSeries:
    """A bounded, time-ordered series of :class:`Sample`.

    Samples older than ``horizon_s`` are dropped except the newest of them (it anchors
    the longest window); above ``max_samples`` every other sample of the older half is
    dropped, so the series thins out with age instead of forgetting.
    """

    def __init__(self, *, horizon_s: float, max_samples: int = 5000) -> None:
        self.horizon_s = horizon_s
        self.max_samples = max(max_samples, 4)
        self.samples: list[Sample] = []

    def add(self, sample: Sample) -> None:
        """Append a sample (one older than the newest is ignored: clocks do not run back)."""
        if self.samples and sample.at <= self.samples[-1].at:
            return
        self.samples.append(sample)
        cutoff = sample.at - self.horizon_s
        old = [i for i, s in enumerate(self.samples) if s.at <= cutoff]
        if len(old) > 1:
            del self.samples[: old[-1]]
        if len(self.samples) > self.max_samples:
            half = len(self.samples) // 2
            older = self.samples[:half]
            self.samples = [older[0], *older[2::2], *self.samples[half:]]

    def window(self, seconds: float, now: float) -> list[Sample]:
        """The samples covering ``[now − seconds, now]``: the last one at or before the
        start (the anchor) and every later one."""
        start = now - seconds
        anchor = 0
        for i, s in enumerate(self.samples):
            if s.at <= start:
                anchor = i
            else:
                break
        return [s for s in self.samples[anchor:] if s.at <= now]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"samples": [[s.at, *(getattr(s, f) for f in _FIELDS)] for s in self.samples]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, horizon_s: float, max_samples: int) -> SampleSeries:
        """Inverse of :meth:`to_dict` (malformed rows are skipped)."""
        series = cls(horizon_s=horizon_s, max_samples=max_samples)
        for row in data.get("samples", []):
            if isinstance(row, list) and len(row) == 1 + len(_FIELDS):
                series.add(Sample(*(float(v) for v in row)))
        return series


#: The counters a restart resets (``latency_good`` is derived from the histogram).
_COUNTERS = ("requests", "errors", "latency_total")


def _restarted(before: Sample, after: Sample) -> bool:
    return any(getattr(after, f) < getattr(before, f) for f in _COUNTERS)


def increase(samples: Sequence[Sample], value_of: Callable[[Sample], float]) -> float:
    """How much one quantity grew over the samples, allowing for server restarts.

    A restart resets every counter at once, so it is detected on the whole sample
    (any counter that drops); the quantity then counts from zero.

    >>> s = [Sample(0, 100, 10), Sample(60, 5, 12), Sample(120, 25, 20)]
    >>> increase(s, lambda x: x.errors)
    20.0
    """
    total = 0.0
    for before, after in itertools.pairwise(samples):
        if _restarted(before, after):
            total += value_of(after)
        else:
            total += value_of(after) - value_of(before)
    return total


@dataclass(frozen=True)
class WindowBurn:
    """One window's bad and total requests, the span the data covers, and its burn rate."""

    seconds: float
    covered_s: float
    bad: float
    total: float
    burn_rate: float


@dataclass(frozen=True)
class BurnStatus:
    """One multi-window alert of one objective: both windows and whether it fires."""

    objective: str
    target: float
    severity: str
    threshold: float
    long: WindowBurn
    short: WindowBurn
    firing: bool

    @property
    def kind(self) -> str:
        """The alert kind, e.g. ``slo_availability_page``."""
        return f"slo_{self.objective}_{self.severity}"


@dataclass(frozen=True)
class SLOReport:
    """Every objective's burn rates at one moment."""

    model: str
    at: str
    samples: int
    statuses: list[BurnStatus] = field(default_factory=list)

    @property
    def firing(self) -> list[BurnStatus]:
        """The alerts that fire."""
        return [s for s in self.statuses if s.firing]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "model": self.model,
            "at": self.at,
            "samples": self.samples,
            "statuses": [{**asdict(s), "kind": s.kind} for s in self.statuses],
        }


def _burn(
    samples: Sequence[Sample],
    bad_of: Callable[[Sample], float],
    total_of: Callable[[Sample], float],
    seconds: float,
    target: float,
) -> WindowBurn:
    if len(samples) < 2:
        return WindowBurn(seconds, 0.0, 0.0, 0.0, 0.0)
    total = increase(samples, total_of)
    bad = min(increase(samples, bad_of), total)
    covered = samples[-1].at - samples[0].at
    return WindowBurn(seconds, covered, bad, total, burn_rate(bad=bad, total=total, target=target))


def evaluate_objective(
    series: SampleSeries,
    *,
    objective: str,
    target: float,
    windows: Sequence[BurnWindowConfig],
    now: float,
) -> list[BurnStatus]:
    """Burn rates of one objective (``availability`` or ``latency``) over every window pair.

    An alert fires when both windows burn at least ``burn_rate`` times the budget and
    the series covers at least the short window.

    Examples:
        >>> series = SampleSeries(horizon_s=3600)
        >>> for minute in range(61):
        ...     series.add(Sample(minute * 60.0, minute * 100.0, max(0, minute - 55) * 20.0))
        >>> w = BurnWindowConfig(severity="page", long=3600, short=300, burn_rate=14.4)
        >>> [s] = evaluate_objective(series, objective="availability", target=0.999,
        ...                          windows=[w], now=3600.0)
        >>> round(s.long.burn_rate, 2), round(s.short.burn_rate, 1), s.firing
        (16.67, 200.0, True)
    """
    if objective == "availability":

        def bad_of(s: Sample) -> float:
            return s.errors

        def total_of(s: Sample) -> float:
            return s.requests

    elif objective == "latency":

        def bad_of(s: Sample) -> float:
            return s.latency_total - s.latency_good

        def total_of(s: Sample) -> float:
            return s.latency_total

    else:
        raise ValueError(f"unknown objective {objective!r}; use 'availability' or 'latency'")
    out = []
    for window in windows:
        long = _burn(series.window(window.long, now), bad_of, total_of, window.long, target)
        short = _burn(series.window(window.short, now), bad_of, total_of, window.short, target)
        covered = short.covered_s >= window.short * 0.999
        firing = (
            covered
            and long.total > 0
            and short.total > 0
            and long.burn_rate >= window.burn_rate
            and short.burn_rate >= window.burn_rate
        )
        out.append(
            BurnStatus(objective, target, window.severity, window.burn_rate, long, short, firing)
        )
    return out


class SLOMonitor:
    """Sample the server's counters at each tick; judge the objectives; alert on burn.

    Examples:
        >>> slo = SLOMonitor(cfg, alerts=AlertManager.from_config(cfg))  # doctest: +SKIP
        >>> slo.observe(scrape(urls, "income"))  # doctest: +SKIP
        >>> slo.evaluate(version=3).firing  # doctest: +SKIP
        []
    """

    def __init__(
        self,
        cfg: MooringConfig,
        *,
        alerts: AlertManager | None = None,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.section: SLOConfig = cfg.monitoring.slo
        self.alerts = alerts
        self.clock = clock
        self.state_path = state_path or monitoring_dir(cfg) / "slo.json"
        horizon = max((w.long for w in self.section.windows), default=3600.0) * 1.1
        stored = read_json(self.state_path)
        self.series = (
            SampleSeries.from_dict(stored, horizon_s=horizon, max_samples=self.section.max_samples)
            if stored is not None
            else SampleSeries(horizon_s=horizon, max_samples=self.section.max_samples)
        )

    @property
    def latency_threshold_s(self) -> float | None:
        ms = self.section.latency_ms
        return None if ms is None else ms / 1000.0

    def observe(self, snapshot: MetricsSnapshot) -> Sample:
        """Add one scrape to the series and persist it."""
        sample = Sample.from_snapshot(snapshot, self.latency_threshold_s)
        self.series.add(sample)
        write_json(self.state_path, self.series.to_dict())
        return sample

    def evaluate(self, *, version: int | None = None, now: float | None = None) -> SLOReport:
        """Judge every objective at ``now``; send an alert for each one that fires."""
        at = self.clock() if now is None else now
        statuses: list[BurnStatus] = []
        objectives = (
            ("availability", self.section.availability),
            ("latency", self.section.latency_target if self.section.latency_ms else None),
        )
        for name, target in objectives:
            if target is None:
                continue
            statuses.extend(
                evaluate_objective(
                    self.series,
                    objective=name,
                    target=target,
                    windows=self.section.windows,
                    now=at,
                )
            )
        report = SLOReport(
            model=self.cfg.project.name,
            at=datetime.fromtimestamp(at, UTC).isoformat(),
            samples=len(self.series.samples),
            statuses=statuses,
        )
        if self.alerts is not None:
            for status in report.firing:
                self.alerts.send(_alert(self.cfg.project.name, version, status, self.section))
        return report


def _alert(model: str, version: int | None, status: BurnStatus, section: SLOConfig) -> Alert:
    what = (
        "requests answered without a 5xx"
        if status.objective == "availability"
        else f"requests faster than {section.latency_ms:g} ms"
    )
    summary = (
        f"{model}: {status.objective} SLO ({status.target:.4g} of {what}) burning its error "
        f"budget {status.long.burn_rate:.1f}× over {_span(status.long.seconds)} and "
        f"{status.short.burn_rate:.1f}× over {_span(status.short.seconds)} "
        f"(threshold {status.threshold:g}×)"
    )
    details = {
        "objective": status.objective,
        "target": status.target,
        "threshold": status.threshold,
        "long": asdict(status.long),
        "short": asdict(status.short),
    }
    severity: Severity = "page" if status.severity == "page" else "ticket"
    return Alert(model, version, status.kind, severity, summary, details)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and math.isclose(seconds % size, 0.0, abs_tol=1e-9):
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
