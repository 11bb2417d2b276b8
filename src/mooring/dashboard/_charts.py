"""The one SVG chart kit: lines, bars with thresholds, paired histograms.

The dashboard's pages, the evaluation report and the drift report all draw with it.

Every chart scales to its container (``viewBox`` and CSS ``width: 100%``), names
itself for screen readers (``role="img"`` with a ``<title>`` and a ``<desc>``
summary) and uses presentation attributes only, so it renders under a strict
Content-Security-Policy and without any script. Text is escaped.

Examples:
    >>> svg = line_chart([Line("v1", [(0.0, 1.0), (1.0, 2.0)])], title="rate")
    >>> svg.startswith("<svg") and "<polyline" in svg
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "PALETTE",
    "Bar",
    "Line",
    "bar_chart",
    "histogram_chart",
    "line_chart",
    "seconds_ago",
    "ticks",
    "time_ticks",
]

# Dark enough for 4.5:1 against white (WCAG AA for the text drawn in these colours).
PALETTE = ("#0b5cad", "#b3261e", "#1b7a3a", "#8a5a00", "#6b3fa0", "#4a5561")
MUTED = "#57606a"
GRID = "#d8dee4"
THRESHOLD = "#b3261e"


@dataclass(frozen=True)
class Line:
    """One series of a line chart; ``None`` values leave a gap."""

    label: str
    points: Sequence[tuple[float, float | None]]
    # A palette index, or a colour of its own ("#9a6700").
    color: int | str | None = None
    dashed: bool = False
    markers: bool = False


@dataclass(frozen=True)
class Bar:
    """One horizontal bar, with an optional threshold marker of its own.

    ``bad_above`` says which side of the threshold is bad: above for a drift
    distance or a loss, below (``False``) for a floor such as a minimum AUC.
    """

    label: str
    value: float
    threshold: float | None = None
    href: str | None = None
    bad_above: bool = True
    # Drawn as past its threshold whatever the values (a slice flagged by its interval).
    flagged: bool = False

    @property
    def over(self) -> bool:
        """True when the value is on the bad side of its threshold (or the bar is flagged)."""
        if self.flagged:
            return True
        if self.threshold is None:
            return False
        return self.value > self.threshold if self.bad_above else self.value < self.threshold


def fmt(value: float) -> str:
    """Four significant digits, no exponent for everyday magnitudes.

    >>> fmt(0.000123456), fmt(1234.5), fmt(2.0)
    ('0.0001235', '1234', '2')
    """
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if 1e-5 <= abs(value) < 1e7:
        digits = max(0, 3 - math.floor(math.log10(abs(value))))
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.3g}"


#: Steps of a time axis, in seconds: whole seconds, then whole minutes, then hours.
_TIME_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)


def time_ticks(span: float, count: int = 6) -> list[float]:
    """At most ``count + 1`` ticks over the last ``span`` seconds: ``-k * step`` up to 0 (now).

    The step is a whole number of seconds or minutes, so every tick reads differently.

    >>> time_ticks(60.0)
    [-60.0, -50.0, -40.0, -30.0, -20.0, -10.0, 0.0]
    >>> time_ticks(300.0)
    [-300.0, -240.0, -180.0, -120.0, -60.0, 0.0]
    >>> time_ticks(3.0)
    [-3.0, -2.0, -1.0, 0.0]
    """
    if not math.isfinite(span) or span <= 0:
        return [0.0]
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    return [float(-k * step) for k in range(int(span // step + 1e-9), -1, -1)]


def seconds_ago(value: float) -> str:
    """A time-axis label: ``now``, ``−45 s``, ``−2 min``, ``−1 h``.

    >>> seconds_ago(0.0), seconds_ago(-45.0), seconds_ago(-120.0), seconds_ago(-7200.0)
    ('now', '−45 s', '−2 min', '−2 h')
    """
    ago = round(-value)
    if ago == 0:
        return "now"
    sign = "−" if ago > 0 else "+"
    ago = abs(ago)
    if ago >= 3600 and ago % 3600 == 0:
        return f"{sign}{ago // 3600} h"
    if ago >= 120 and ago % 60 == 0:
        return f"{sign}{ago // 60} min"
    return f"{sign}{ago} s"


def ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round tick values covering [lo, hi] (about ``count`` of them).

    >>> ticks(0.0, 1.0)
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out = []
    value = start
    while value <= hi + step * 1e-9:
        out.append(round(value, 12))
        value += step
    return out


def _span(values: Sequence[float], *, zero: bool) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        return (lo - 1.0, hi + 1.0) if lo else (0.0, 1.0)
    pad = (hi - lo) * 0.08
    return (lo if zero and lo == 0 else lo - pad), hi + pad


def _color(line: Line, i: int) -> str:
    if isinstance(line.color, str):
        return line.color
    return PALETTE[(line.color if line.color is not None else i) % len(PALETTE)]


def _open(width: int, height: int, title: str, desc: str, klass: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {klass}" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" role="img" '
        f'font-size="14" font-family="system-ui, sans-serif">',
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
    ]


def _empty(width: int, height: int, title: str, text: str, klass: str) -> str:
    parts = _open(width, height, title, text, f"{klass} empty")
    parts.append(
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{MUTED}">'
        f"{escape(text)}</text></svg>"
    )
    return "".join(parts)


def line_chart(  # noqa: PLR0913 - keyword-only chart options, each with a default
    lines: Sequence[Line],
    *,
    title: str,
    y_label: str = "",
    x_format: Callable[[float], str] = fmt,
    y_format: Callable[[float], str] = fmt,
    thresholds: Sequence[tuple[str, float]] = (),
    width: int = 640,
    height: int = 240,
    empty_text: str = "no data yet",
    zero: bool = True,
    x_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    x_ticks: Sequence[str] | None = None,
    x_tick_values: Sequence[float] | None = None,
    diagonal: bool = False,
    vline: float | None = None,
    band: tuple[float, float] | None = None,
) -> str:
    """Lines over a numeric x axis (time in seconds, for example), with dashed threshold lines.

    ``zero=False`` fits the y axis to the data instead of starting it at zero;
    ``x_range`` / ``y_range`` fix the axes (a ROC curve's unit square); ``x_ticks`` labels
    the positions 0..n-1 instead of numeric ticks, ``x_tick_values`` places the x ticks
    (labelled by ``x_format``, e.g. :func:`time_ticks`); ``diagonal`` draws the chance line,
    ``vline`` marks an x (the operating threshold) and ``band`` shades a y interval.
    """
    xs = [x for line in lines for x, y in line.points if y is not None and math.isfinite(x)]
    ys = [y for line in lines for _, y in line.points if y is not None and math.isfinite(y)]
    if not ys:
        return _empty(width, height, title, empty_text, "line")
    longest = max((len(line.label) for line in lines), default=0)
    columns = max(1, min(3, int((width - 80) / (longest * 7.5 + 36))))
    legend_rows = math.ceil(len(lines) / columns) if len(lines) > 1 else 0
    below = 18 if x_label else 0
    left, right, top, bottom = 64, 16, 14, 30 + below + 18 * legend_rows
    height += below
    plot_w, plot_h = width - left - right, height - top - bottom
    x0, x1 = x_range or (min(xs), max(xs))
    if x1 == x0:
        x0, x1 = x0 - 1.0, x1 + 1.0
    y0, y1 = y_range or _span(ys + [t for _, t in thresholds] + list(band or ()), zero=zero)

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * plot_h

    summary = "; ".join(
        f"{line.label}: last {y_format(last)}"
        for line in lines
        if (last := next((y for _, y in reversed(line.points) if y is not None), None)) is not None
    )
    parts = _open(width, height, title, summary, "line")
    for t in ticks(y0, y1):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" '
            f'fill="{MUTED}">{escape(y_format(t))}</text>'
        )
    parts += _x_tick_labels(
        px, top + plot_h + 18, (x0, x1), x_format, x_ticks=x_ticks, x_tick_values=x_tick_values
    )
    if x_label:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 36}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(x_label)}</text>'
        )
    if band is not None:
        hi_y, lo_y = py(band[1]), py(band[0])
        parts.append(
            f'<rect class="band" x="{left}" y="{hi_y:.1f}" width="{plot_w}" '
            f'height="{max(lo_y - hi_y, 1):.1f}" fill="{PALETTE[0]}" fill-opacity="0.12"/>'
        )
    if diagonal:
        parts.append(
            f'<line x1="{px(x0):.1f}" y1="{py(y0):.1f}" x2="{px(x1):.1f}" y2="{py(y1):.1f}" '
            f'stroke="{MUTED}" stroke-dasharray="4 4"/>'
        )
    if vline is not None and x0 <= vline <= x1:
        parts.append(
            f'<line class="marker" x1="{px(vline):.1f}" x2="{px(vline):.1f}" y1="{top}" '
            f'y2="{top + plot_h}" stroke="{MUTED}" stroke-dasharray="2 3"/>'
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{GRID}"/>'
    )
    if y_label:
        parts.append(
            f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle" fill="{MUTED}">{escape(y_label)}</text>'
        )
    parts.extend(
        _threshold_line(name, value, left, plot_w, py, y_format)
        for name, value in thresholds
        if y0 <= value <= y1
    )
    for i, line in enumerate(lines):
        parts += _series(line, _color(line, i), px, py)
    if legend_rows:
        for i, line in enumerate(lines):
            lx = left + (i % columns) * (plot_w / columns)
            ly = top + plot_h + 40 + below + 18 * (i // columns)
            parts.append(_legend_entry(line, _color(line, i), lx, ly))
    parts.append("</svg>")
    return "".join(parts)


def _x_tick_labels(
    px: Callable[[float], float],
    y: float,
    x_span: tuple[float, float],
    x_format: Callable[[float], str],
    *,
    x_ticks: Sequence[str] | None,
    x_tick_values: Sequence[float] | None,
) -> list[str]:
    """The x axis' labels: ``x_ticks`` at positions 0..n-1 (at most about 8 shown), else
    numbers at ``x_tick_values`` (or about 5 round ones) inside ``x_span``."""
    if x_ticks is not None:
        step = max(1, math.ceil(len(x_ticks) / 8))
        return [
            f'<text x="{px(i):.1f}" y="{y}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(text[:12])}</text>'
            for i, text in enumerate(x_ticks)
            if i % step == 0
        ]
    x0, x1 = x_span
    at = [t for t in x_tick_values if x0 <= t <= x1] if x_tick_values else ticks(x0, x1, 5)
    return [
        f'<text class="tick-x" x="{px(t):.1f}" y="{y}" '
        'text-anchor="middle" '
        f'fill="{MUTED}">{escape(x_format(t))}</text>'
        for t in at
    ]


def _threshold_line(
    name: str,
    value: float,
    left: int,
    plot_w: int,
    py: Callable[[float], float],
    y_format: Callable[[float], str],
) -> str:
    """A dashed horizontal line at ``value`` across the plot, labelled at its right end."""
    return (
        f'<line class="threshold" x1="{left}" x2="{left + plot_w}" y1="{py(value):.1f}" '
        f'y2="{py(value):.1f}" stroke="{THRESHOLD}" stroke-dasharray="6 4"/>'
        f'<text x="{left + plot_w - 4}" y="{py(value) - 4:.1f}" text-anchor="end" '
        f'fill="{THRESHOLD}">{escape(name)} {escape(y_format(value))}</text>'
    )


def _series(
    line: Line, color: str, px: Callable[[float], float], py: Callable[[float], float]
) -> list[str]:
    """One line: a polyline per run of finite points (a gap at each missing one), and a
    dot for a lone point or, with ``markers``, at every point."""
    dash = ' stroke-dasharray="5 3"' if line.dashed else ""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in line.points:
        if y is None or not math.isfinite(y):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((px(x), py(y)))
    parts: list[str] = []
    for run in runs:
        if len(run) == 1 or (run and line.markers):
            parts.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>' for x, y in run
            )
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(
                f'<polyline class="series" data-label="{escape(line.label)}" points="{path}" '
                f'fill="none" stroke="{color}" stroke-width="2"{dash}/>'
            )
    return parts


def _legend_entry(line: Line, color: str, lx: float, ly: float) -> str:
    dash = ' stroke-dasharray="5 3"' if line.dashed else ""
    return (
        f'<line x1="{lx:.1f}" x2="{lx + 18:.1f}" y1="{ly - 4}" y2="{ly - 4}" '
        f'stroke="{color}" stroke-width="3"{dash}/>'
        f'<text x="{lx + 24:.1f}" y="{ly}">{escape(line.label)}</text>'
    )


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    value_format: Callable[[float], str] = fmt,
    width: int = 900,
    empty_text: str = "no data",
    reference: float | None = None,
    band: tuple[float, float] | None = None,
) -> str:
    """Horizontal bars, each with its own threshold tick; bars past it are drawn in red.

    ``reference`` draws one dashed line across every bar (the overall value) and ``band``
    shades an x interval (its confidence interval).
    """
    if not bars:
        return _empty(width, 80, title, empty_text, "bars")
    left, right, top, row = 160, 90, 8, 26
    height = top + row * len(bars) + 8
    plot_w = width - left - right
    values = [b.value for b in bars] + [b.threshold for b in bars if b.threshold is not None]
    values += [v for v in (reference, *(band or ())) if v is not None]
    lo, hi = _span(values, zero=True)

    def px(x: float) -> float:
        return left + (x - lo) / (hi - lo) * plot_w

    over = [b.label for b in bars if b.over]
    desc = f"{len(bars)} bars; past the threshold: {', '.join(over) or 'none'}"
    parts = _open(width, height, title, desc, "bars")
    if band is not None:
        parts.append(
            f'<rect class="band" x="{px(band[0]):.1f}" y="{top - 4}" '
            f'width="{max(px(band[1]) - px(band[0]), 1):.1f}" height="{row * len(bars) + 8}" '
            f'fill="{PALETTE[0]}" fill-opacity="0.12"/>'
        )
    for i, bar in enumerate(bars):
        y = top + i * row
        color = THRESHOLD if bar.over else PALETTE[0]
        start, end = sorted((px(0.0), px(bar.value)))
        label = escape(bar.label if len(bar.label) <= 22 else bar.label[:21] + "…")
        text = f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{label}</text>'
        if bar.href:
            text = f'<a href="{escape(bar.href)}">{text}</a>'
        text_x = max(end, px(bar.threshold) if bar.threshold is not None else end) + 6
        parts.append(
            f"{text}"
            f'<rect class="bar{" over" if bar.over else ""}" x="{start:.1f}" y="{y + 4}" '
            f'width="{max(end - start, 1):.1f}" height="{row - 8}" fill="{color}">'
            f"<title>{escape(bar.label)}: {escape(value_format(bar.value))}</title></rect>"
            f'<text x="{text_x:.1f}" y="{y + 17}">{escape(value_format(bar.value))}</text>'
        )
        if bar.threshold is not None:
            tx = px(bar.threshold)
            parts.append(
                f'<line class="threshold" x1="{tx:.1f}" x2="{tx:.1f}" y1="{y + 1}" '
                f'y2="{y + row - 1}" stroke="#24292f" stroke-width="2" stroke-dasharray="3 2"/>'
            )
    if reference is not None:
        rx = px(reference)
        parts.append(
            f'<line class="reference" x1="{rx:.1f}" x2="{rx:.1f}" y1="{top - 4}" '
            f'y2="{top + row * len(bars) + 4}" stroke="#24292f" stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


# The histogram's axis labels: about this wide per character at the charts' 14 px, and
# slanted this many degrees when they do not fit side by side.
_CHAR_W = 7.6
_SLANT = 35
_COS, _SIN = math.cos(math.radians(_SLANT)), math.sin(math.radians(_SLANT))


def histogram_chart(
    labels: Sequence[str],
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    baseline_label: str = "baseline (training)",
) -> str:
    """Baseline and current shares side by side per bin or category (each normalised to 1).

    ``baseline_label`` names the reference: the training data for features, the
    model's outputs on its evaluation data for outputs.
    """
    if not labels or len(labels) != len(baseline) or len(labels) != len(current):
        return _empty(width, 80, title, "no histogram recorded", "histogram")

    def shares(counts: Sequence[float]) -> list[float]:
        total = sum(c for c in counts if math.isfinite(c) and c > 0)
        return [(c / total if total and math.isfinite(c) and c > 0 else 0.0) for c in counts]

    base, cur = shares(baseline), shares(current)
    names = [label if len(label) <= 24 else label[:23] + "…" for label in labels]
    # Axis labels that do not fit their slot side by side are drawn slanted, whole (and
    # then up to 20 of them, as slanted ones stack closer).
    step = max(1, math.ceil(len(labels) / 10))
    left, right, top, bottom = 48, 8, 10, 56
    longest = max(len(name) for i, name in enumerate(names) if i % step == 0) * _CHAR_W
    slant = longest > (width - left - right) / len(labels) * step - 8
    if slant:
        step = max(1, math.ceil(len(labels) / 20))
        longest = max(len(name) for i, name in enumerate(names) if i % step == 0) * _CHAR_W
        left = max(left, math.ceil(longest * _COS - (width - left) / len(labels) / 2) + 8)
        extra = math.ceil(longest * _SIN) + 2
        bottom, height = bottom + extra, height + extra
    plot_w, plot_h = width - left - right, height - top - bottom
    hi = max([*base, *cur, 0.01]) * 1.1
    slot = plot_w / len(labels)
    bar_w = max(slot * 0.38, 1.0)

    def py(y: float) -> float:
        return top + (1 - y / hi) * plot_h

    desc = "; ".join(
        f"{label}: baseline {b:.1%}, current {c:.1%}"
        for label, b, c in zip(labels[:12], base, cur, strict=False)
    )
    parts = _open(width, height, title, desc, "histogram")
    for t in ticks(0.0, hi, 3):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" '
            f'fill="{MUTED}">{t:.0%}</text>'
        )
    for i, label in enumerate(labels):
        x = left + i * slot + slot / 2
        for offset, value, color, name in (
            (-bar_w, base[i], PALETTE[5], "baseline"),
            (0.0, cur[i], PALETTE[0], "current"),
        ):
            parts.append(
                f'<rect class="{name}" x="{x + offset:.1f}" y="{py(value):.1f}" '
                f'width="{bar_w:.1f}" height="{max(py(0) - py(value), 0):.1f}" fill="{color}">'
                f"<title>{escape(label)} {name}: {value:.1%}</title></rect>"
            )
        if i % step == 0:
            y = top + plot_h + 16
            place = (
                f'text-anchor="end" transform="rotate(-{_SLANT} {x:.1f} {y - 4})"'
                if slant
                else 'text-anchor="middle"'
            )
            parts.append(
                f'<text class="bin" x="{x:.1f}" y="{y}" {place} '
                f'fill="{MUTED}">{escape(names[i])}</text>'
            )
    ly = height - 12
    parts.append(
        f'<rect x="{left}" y="{ly - 10}" width="12" height="12" fill="{PALETTE[5]}"/>'
        f'<text x="{left + 18}" y="{ly}">{escape(baseline_label)}</text>'
        f'<rect x="{left + 250}" y="{ly - 10}" width="12" height="12" fill="{PALETTE[0]}"/>'
        f'<text x="{left + 268}" y="{ly}">current (served)</text></svg>'
    )
    return "".join(parts)
