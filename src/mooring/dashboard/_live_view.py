"""The live page's charts and table from :meth:`LiveMetrics.series` (shared by page and JSON).

The server draws the SVG once and the page's script swaps it in, so the charts
look the same with or without script and there is one chart implementation.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from mooring.dashboard._charts import Line, fmt, line_chart, seconds_ago, time_ticks
from mooring.registry import Deployment

__all__ = ["live_view"]

_VERSIONLESS = {"-": "unrouted", "all": "all versions"}


def _name(series: str, deployment: Deployment) -> str:
    if series in _VERSIONLESS:
        return _VERSIONLESS[series]
    role = ""
    if series == str(deployment.production):
        role = " production"
    elif series == str(deployment.canary):
        role = " canary"
    return f"v{series}{role}"


def _order(keys: set[str], deployment: Deployment) -> list[str]:
    def key(series: str) -> tuple[int, int, str]:
        if series == str(deployment.production):
            return (0, 0, series)
        if series == str(deployment.canary):
            return (1, 0, series)
        if series.isdigit():
            return (2, -int(series), series)
        return (3, 0, series)

    return sorted(keys, key=key)


#: The shortest time axis drawn: a first point or two do not stretch over the whole width.
MIN_SPAN_S = 10.0


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


def caption(summary_s: float) -> str:
    """The table's title: what its numbers count and over which period.

    >>> caption(58.2).endswith("rate, 5xx, 4xx and latency over the last 58 s.")
    True
    """
    if summary_s >= 1.0:
        period = f"over the last {round(summary_s)} s"
    else:
        period = "once the page has refreshed twice (measured between two snapshots)"
    return (
        "Per version: requests counted since the server started; "
        f"rate, 5xx, 4xx and latency {period}."
    )


def live_view(series: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    """Three SVG charts (rate, latency, errors) and a table row per version, JSON-ready."""
    now = series.get("updated_at") or time.time()
    points = series.get("points", [])
    names: set[str] = set()
    for point in points:
        names.update(point["series"])
    names.update(series.get("summary", {}))
    order = _order(names, deployment)
    colors = {s: i for i, s in enumerate(order)}

    def line(key: str, metric: str, scale: float = 1.0, **kw: Any) -> Line:
        values: list[tuple[float, float | None]] = []
        for point in points:
            value = point["series"].get(key, {}).get(metric)
            values.append((point["t"] - now, None if value is None else value * scale))
        return Line(kw.pop("label", _name(key, deployment)), values, color=colors[key], **kw)

    has_requests = [s for s in order if any("rate" in p["series"].get(s, {}) for p in points)]
    has_latency = [s for s in order if any("p50_ms" in p["series"].get(s, {}) for p in points)]
    kinds = {
        s: next((p["series"][s].get("latency_kind") for p in points if s in p["series"]), "request")
        for s in has_latency
    }
    latency_lines = []
    for s in has_latency:
        suffix = " (batch)" if kinds.get(s) == "inference" else ""
        latency_lines.append(line(s, "p50_ms", label=f"{_name(s, deployment)} p50{suffix}"))
        latency_lines.append(
            line(s, "p99_ms", label=f"{_name(s, deployment)} p99{suffix}", dashed=True)
        )
    waiting = "collecting: the charts fill in as the page refreshes"
    oldest = min((p["t"] for p in points), default=now)
    span = max(now - oldest, MIN_SPAN_S)
    axis: dict[str, Any] = {
        "x_format": seconds_ago,
        "x_range": (-span, 0.0),
        "x_tick_values": time_ticks(span),
        "x_label": f"seconds before {_clock(now)}",
    }
    charts = {
        "rate": line_chart(
            [line(s, "rate") for s in has_requests],
            title="Requests per second by version",
            y_label="requests/s",
            **axis,
            empty_text=waiting,
        ),
        "latency": line_chart(
            latency_lines,
            title="Latency percentiles (p50 solid, p99 dashed)",
            y_label="ms",
            **axis,
            y_format=fmt,
            empty_text=waiting if not points else "no requests in this period",
        ),
        "errors": line_chart(
            [line(s, "error_rate", 100.0) for s in has_requests],
            title="Server errors (5xx) in percent of requests",
            y_label="% 5xx",
            **axis,
            empty_text=waiting if not points else "no requests in this period",
        ),
    }
    totals = series.get("totals", {})
    rows = []
    for s in order:
        summary = series.get("summary", {}).get(s, {})
        total = totals.get(s, {})

        def show(value: Any, unit: str = "", scale: float = 1.0) -> str:
            return "—" if value is None else f"{fmt(value * scale)}{unit}"

        rows.append(
            {
                "series": _name(s, deployment),
                "requests": show(total.get("total")),
                "rate": show(summary.get("rate"), "/s"),
                "error_rate": show(summary.get("error_rate"), "%", 100.0),
                "client_error_rate": show(summary.get("client_error_rate"), "%", 100.0),
                "p50": show(summary.get("p50_ms"), " ms"),
                "p95": show(summary.get("p95_ms"), " ms"),
                "p99": show(summary.get("p99_ms"), " ms"),
                "latency_kind": summary.get("latency_kind") or "",
            }
        )
    weight = series.get("canary_weight")
    return {
        "model": series.get("model"),
        "updated_at": series.get("updated_at"),
        "window_s": series.get("window_s", 0.0),
        "points": len(points),
        "deployment": {
            "production": deployment.production,
            "canary": deployment.canary,
            "canary_weight": deployment.canary_weight if weight is None else weight,
        },
        "charts": charts,
        "rows": rows,
        "caption": caption(float(series.get("summary_s") or 0.0)),
        "error": series.get("error"),
    }
