"""Small inline-SVG charts for the self-contained HTML report (no scripts, no network).

Example:
    >>> svg = line_chart([Series("ROC", [0, 0.2, 1], [0, 0.7, 1])], title="ROC")
    >>> svg.startswith("<svg")
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Bar", "Series", "bar_chart", "line_chart"]

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a")
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"'


@dataclass(frozen=True)
class Series:
    """One line of a line chart."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    color: str | None = None
    dashed: bool = False
    markers: bool = False


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart."""

    label: str
    value: float
    flagged: bool = False


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step) * step
    out = []
    value = start
    while value <= hi + step * 1e-9:
        out.append(round(value, 10))
        value += step
    return out


def _label(value: float) -> str:
    return f"{value:.4g}"


def _range(values: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi == lo:
        return lo - 0.5 if lo else -0.5, hi + 0.5 if hi else 0.5
    span = hi - lo
    return lo - pad * span, hi + pad * span


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    vline: float | None = None,
    band: tuple[float, float] | None = None,
    x_ticks: Sequence[str] | None = None,
    width: int = 460,
    height: int = 320,
) -> str:
    """An SVG line chart; ``band`` shades a horizontal interval, ``vline`` marks an x.

    ``x_ticks`` labels categorical x positions 0..n-1 instead of numeric ticks.
    """
    left, right, top, bottom = 56, 16, 34, 48
    legend_rows = (len(series) + 2) // 3 if len(series) > 1 else 0
    height += 16 * legend_rows
    plot_w, plot_h = width - left - right, height - top - bottom - 16 * legend_rows
    xs = [float(v) for s in series for v in s.x]
    ys = [float(v) for s in series for v in s.y if v is not None]
    if band:
        ys.extend(band)
    x0, x1 = x_range or _range(xs, 0.02)
    y0, y1 = y_range or _range(ys)

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT} font-size="11" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13" '
        f'font-weight="600">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#d0d7de"/>',
    ]
    for t in _ticks(y0, y1):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
            'stroke="#eaeef2"/>'
            f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_label(t)}</text>'
        )
    if x_ticks is not None:
        step = max(1, math.ceil(len(x_ticks) / 8))
        for i, text in enumerate(x_ticks):
            if i % step == 0:
                parts.append(
                    f'<text x="{px(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                    f"{escape(text[:12])}</text>"
                )
    else:
        for t in _ticks(x0, x1):
            parts.append(
                f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + plot_h}" '
                'stroke="#eaeef2"/>'
                f'<text x="{px(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"{_label(t)}</text>"
            )
    if band is not None:
        lo, hi = py(band[1]), py(band[0])
        parts.append(
            f'<rect x="{left}" y="{lo:.1f}" width="{plot_w}" height="{max(hi - lo, 1):.1f}" '
            'fill="#1f6feb" fill-opacity="0.12"/>'
        )
    if diagonal:
        parts.append(
            f'<line x1="{px(x0):.1f}" y1="{py(y0):.1f}" x2="{px(x1):.1f}" y2="{py(y1):.1f}" '
            'stroke="#8c959f" stroke-dasharray="4 4"/>'
        )
    if vline is not None and x0 <= vline <= x1:
        parts.append(
            f'<line x1="{px(vline):.1f}" x2="{px(vline):.1f}" y1="{top}" y2="{top + plot_h}" '
            'stroke="#57606a" stroke-dasharray="2 3"/>'
        )
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        points = [
            (px(float(x)), py(float(y))) for x, y in zip(s.x, s.y, strict=True) if y is not None
        ]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
        )
        if s.markers:
            parts.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points
            )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" text-anchor="middle" '
        f'fill="#57606a">{escape(x_label)}</text>'
        f'<text transform="translate(14 {top + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'fill="#57606a">{escape(y_label)}</text>'
    )
    if len(series) > 1:
        for i, s in enumerate(series):
            color = s.color or PALETTE[i % len(PALETTE)]
            lx = left + (i % 3) * (plot_w / 3)
            ly = top + plot_h + 50 + 16 * (i // 3)
            parts.append(
                f'<rect x="{lx:.1f}" y="{ly - 8}" width="12" height="4" fill="{color}"/>'
                f'<text x="{lx + 16:.1f}" y="{ly - 4}">{escape(s.label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    reference: float | None = None,
    band: tuple[float, float] | None = None,
    width: int = 920,
) -> str:
    """Horizontal bars with an optional reference line and shaded interval (flagged in red)."""
    left, right, top, row = 240, 70, 34, 20
    height = top + row * len(bars) + 24
    values = [b.value for b in bars] + ([reference] if reference is not None else [])
    if band:
        values.extend(band)
    lo, hi = _range(values, 0.1)
    plot_w = width - left - right

    def px(x: float) -> float:
        return left + (x - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT} font-size="11" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13" '
        f'font-weight="600">{escape(title)}</text>',
    ]
    if band is not None:
        parts.append(
            f'<rect x="{px(band[0]):.1f}" y="{top - 4}" '
            f'width="{max(px(band[1]) - px(band[0]), 1):.1f}" height="{row * len(bars) + 8}" '
            'fill="#1f6feb" fill-opacity="0.12"/>'
        )
    for i, bar in enumerate(bars):
        y = top + i * row
        color = "#d1242f" if bar.flagged else "#1f6feb"
        start, end = sorted((px(0.0 if lo < 0 < hi else lo), px(bar.value)))
        parts.append(
            f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{escape(bar.label[:40])}</text>'
            f'<rect x="{start:.1f}" y="{y + 3}" width="{max(end - start, 1):.1f}" '
            f'height="{row - 6}" fill="{color}" fill-opacity="0.85"/>'
            f'<text x="{end + 4:.1f}" y="{y + 13}">{bar.value:.4g}</text>'
        )
    if reference is not None:
        parts.append(
            f'<line x1="{px(reference):.1f}" x2="{px(reference):.1f}" y1="{top - 4}" '
            f'y2="{top + row * len(bars) + 4}" stroke="#24292f" stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
