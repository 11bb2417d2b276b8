"""The drift report as one self-contained HTML page (inline CSS and SVG, nothing fetched).

Rendered from the typed report, so a saved ``.json`` renders the same page later
(read it with :func:`mooring.formats._drift.read_report`).

Examples:
    >>> html = render_drift_html(report)  # doctest: +SKIP
"""

from __future__ import annotations

from html import escape
from typing import Any

from mooring.dashboard._charts import Bar, bar_chart, histogram_chart
from mooring.formats._drift import METRIC_OF, DriftReport, FeatureDrift

__all__ = ["render_drift_html"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.drift{color:#b00020;font-weight:600}.ok{color:#1b7f3b}.insufficient_data,.no_baseline,
.unavailable{color:#8a6d00}.badge{display:inline-block;padding:2px 8px;border-radius:4px;
background:#eee}.feature{display:inline-block;vertical-align:top;margin:0 1em 1em 0}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""

_METRICS = (
    "psi",
    "jensen_shannon",
    "wasserstein",
    "ks",
    "linf",
    "out_of_range_share",
    "unseen_share",
    "missing_change",
)
_THRESHOLD_OF = {metric: threshold for threshold, metric in METRIC_OF.items()}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _histogram(f: FeatureDrift, baseline_label: str = "baseline (training)") -> str:
    """Baseline and current shares per bin, drawn by the dashboard's one chart kit."""
    bins = (f.baseline.bins if f.baseline else ()) or (f.current.bins if f.current else ())
    baseline = (f.baseline.shares if f.baseline else ()) or [0.0] * len(bins)
    current = (f.current.shares if f.current else ()) or [0.0] * len(bins)
    return histogram_chart(
        [str(b) for b in bins],
        [float(v) for v in baseline],
        [float(v) for v in current],
        title=f"{f.name}: baseline vs current",
        width=360,
        height=200,
        baseline_label=baseline_label,
    )


def _feature_table(features: list[FeatureDrift]) -> str:
    head = "".join(f"<th>{m}</th>" for m in _METRICS)
    rows = []
    for f in features:
        cells = []
        for m in _METRICS:
            bound = f.thresholds.get(_THRESHOLD_OF[m])
            natural = f.natural.get(_THRESHOLD_OF[m])
            kind = f.natural_kind.get(_THRESHOLD_OF[m])
            value = f.metrics.get(m)
            # Red where the metric decided: past its floor and its natural variation.
            hit = any(r.startswith(f"{m} ") for r in f.reasons)
            usual = f"; natural variation {natural:.4g}" if natural is not None else ""
            usual += f" ({escape(kind)})" if natural is not None and kind else ""
            title = f' title="floor {bound:g}{usual}"' if bound is not None else ""
            cls = ' class="drift"' if hit else ""
            cells.append(f"<td{cls}{title}>{_fmt(value)}</td>")
        rows.append(
            f"<tr><td>{escape(f.name)}</td><td>{escape(f.kind)}</td>"
            f'<td class="{escape(f.status)}">{escape(f.status)}</td><td>{f.rows}</td>'
            + "".join(cells)
            + "</tr>"
        )
    return (
        f"<table><tr><th>feature</th><th>kind</th><th>status</th><th>rows</th>{head}</tr>"
        + "".join(rows)
        + "</table>"
    )


def _charts(features: list[FeatureDrift], baseline_label: str = "baseline (training)") -> str:
    out = []
    for f in features:
        reasons = "; ".join(f.reasons)
        out.append(
            f'<div class="feature"><strong>{escape(f.name)}</strong> '
            f'<span class="{escape(f.status)}">{escape(f.status)}</span><br>'
            + _histogram(f, baseline_label)
            + (f"<br><small>{escape(reasons)}</small>" if reasons else "")
            + "</div>"
        )
    return "".join(out)


def _shift(report: DriftReport) -> str:
    """What moved the predictions: each column's mean attribution against the evaluation's."""
    shift = report.attributions
    if shift is None:
        return ""
    head = '<h2 id="attributions">What moved the predictions</h2>'
    if shift.note is not None:
        return head + f"<p><em>{escape(shift.note)}</em></p>"
    moved = "" if shift.moved is None else f" moved {shift.moved:+.4g}"
    ranked = shift.largest(len(shift.shifts))
    beyond = shift.beyond_columns()
    return (
        head + f"<p>The mean {escape(shift.output)}{escape(moved)} against the evaluation. Each "
        f"column's mean attribution over {shift.rows:,} rows of the window, less its mean over "
        f"{shift.reference_rows:,} evaluation rows ({escape(shift.unit)}): the shifts add up "
        "to that move, so they say which columns moved the predictions, whatever drifted. "
        f"Their absolute values add up to {shift.absolute:.4g}; {len(beyond)} of "
        f"{len(ranked)} columns are beyond the noise of the rows drawn.</p>"
        + bar_chart([Bar(c, v) for c, v in ranked[:20]], title="Attribution shift")
        + "<table><tr><th>column</th><th>shift</th><th>± (95%, the rows drawn)</th>"
        "<th>beyond it</th></tr>"
        + "".join(
            f"<tr><td>{escape(c)}</td><td>{v:+.4g}</td><td>{_fmt(shift.noise.get(c))}</td>"
            f"<td>{'yes' if shift.beyond_noise(c) else 'no'}</td></tr>"
            for c, v in ranked
        )
        + "</table>"
    )


def render_drift_html(report: DriftReport) -> str:
    """The whole page for one report."""
    window = report.window
    status = escape(report.status)
    title = f"Drift — {report.model} v{report.version}"
    parts = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p>Status: <span class="badge {status}">{status}</span> · '
        f"window {window.get('rows')} rows ({_fmt(window.get('start'))} → "
        f"{_fmt(window.get('end'))}) · created {_fmt(report.created_at)}</p>",
    ]
    if report.drifted:
        parts.append(f"<p class='drift'>Drifted: {escape(', '.join(report.drifted))}</p>")
    for note in report.notes:
        parts.append(f"<p><em>{escape(note)}</em></p>")
    parts.append(
        '<p class="legend">Histograms:<span style="background:#9e9e9e"></span>baseline '
        '(training)<span style="background:#1f77b4"></span>current window</p>'
    )
    parts.append("<h2>Features</h2>" + _feature_table(report.features))
    parts.append(_charts(report.features))
    prediction = report.prediction
    if prediction is not None:
        verdict = escape(prediction.status)
        parts.append(f'<h2>Prediction drift <span class="{verdict}">{verdict}</span></h2>')
        if prediction.source or prediction.note:
            parts.append(
                f"<p><em>Baseline: {escape(prediction.source or '')} "
                f"{escape(prediction.note or '')}</em></p>"
            )
        if prediction.features:
            parts.append(
                _feature_table(prediction.features)
                + _charts(prediction.features, "baseline (evaluation-time outputs)")
            )
    parts.append(_shift(report))
    if report.segments:
        parts.append(
            "<h2>Segments</h2><table><tr><th>segment</th><th>rows</th><th>status</th>"
            "<th>drifted</th><th>note</th></tr>"
        )
        for s in report.segments:
            parts.append(
                f"<tr><td>{escape(s.column)} = {escape(s.value)}</td><td>{s.rows}</td>"
                f'<td class="{escape(s.status)}">{escape(s.status)}</td>'
                f"<td>{escape(', '.join(s.drifted))}</td><td>{_fmt(s.note)}</td></tr>"
            )
        parts.append("</table>")
        for s in report.segments:
            if s.status == "drift":
                parts.append(
                    f"<h3>{escape(s.column)} = {escape(s.value)}</h3>" + _feature_table(s.features)
                )
    parts.append(
        "<h2>Settings</h2><p>"
        + " · ".join(f"{escape(str(k))} {_fmt(v)}" for k, v in report.settings.items())
        + "</p></body></html>"
    )
    return "\n".join(parts)
