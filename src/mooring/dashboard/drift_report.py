"""The drift report as one self-contained HTML page (inline CSS and SVG, nothing fetched).

Rendered from the report's JSON form, so a saved ``.json`` renders the same page later.

Example:
    >>> html = render_drift_html(report.to_dict())  # doctest: +SKIP
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["render_drift_html", "svg_histogram"]

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
_THRESHOLD_OF = {
    "psi": "psi",
    "jensen_shannon": "jensen_shannon",
    "wasserstein": "wasserstein",
    "ks": "ks",
    "linf": "linf",
    "out_of_range_share": "out_of_range",
    "unseen_share": "unseen",
    "missing_change": "missing",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def svg_histogram(
    baseline: dict[str, Any], current: dict[str, Any], *, width: int = 320, height: int = 120
) -> str:
    """Baseline (grey) and current (blue) shares per bin as side-by-side bars, inline SVG."""
    bins = baseline.get("bins") or current.get("bins") or []
    b = baseline.get("shares") or [0.0] * len(bins)
    c = current.get("shares") or [0.0] * len(bins)
    if not bins:
        return "<em>no histogram</em>"
    top = max([*b, *c, 1e-9])
    slot = width / len(bins)
    bar = max(1.0, slot * 0.4)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 14}" '
        f'role="img" aria-label="baseline vs current histogram">'
    ]
    for i, label in enumerate(bins):
        x = i * slot + slot * 0.1
        for offset, shares, colour in ((0.0, b, "#9e9e9e"), (bar, c, "#1f77b4")):
            share = float(shares[i]) if i < len(shares) else 0.0
            h = height * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(str(label))}: '
                f"{'baseline' if offset == 0 else 'current'} {share:.2%}</title></rect>"
            )
    parts.append(
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#555" stroke-width="1"/>'
    )
    parts.append(
        f'<text x="0" y="{height + 12}" font-size="10">{escape(str(bins[0]))}</text>'
        f'<text x="{width}" y="{height + 12}" font-size="10" text-anchor="end">'
        f"{escape(str(bins[-1]))}</text></svg>"
    )
    return "".join(parts)


def _feature_table(features: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{m}</th>" for m in _METRICS)
    rows = []
    for f in features:
        cells = []
        for m in _METRICS:
            bound = f["thresholds"].get(_THRESHOLD_OF[m])
            value = f["metrics"].get(m)
            hit = bound is not None and value is not None and value >= bound and value > 0
            title = f' title="threshold {bound:g}"' if bound is not None else ""
            cls = ' class="drift"' if hit else ""
            cells.append(f"<td{cls}{title}>{_fmt(value)}</td>")
        rows.append(
            f"<tr><td>{escape(f['name'])}</td><td>{f['kind']}</td>"
            f'<td class="{f["status"]}">{f["status"]}</td><td>{f["rows"]}</td>'
            + "".join(cells)
            + "</tr>"
        )
    return (
        f"<table><tr><th>feature</th><th>kind</th><th>status</th><th>rows</th>{head}</tr>"
        + "".join(rows)
        + "</table>"
    )


def _charts(features: list[dict[str, Any]]) -> str:
    out = []
    for f in features:
        reasons = "; ".join(f.get("reasons") or [])
        out.append(
            f'<div class="feature"><strong>{escape(f["name"])}</strong> '
            f'<span class="{f["status"]}">{f["status"]}</span><br>'
            + svg_histogram(f.get("baseline") or {}, f.get("current") or {})
            + (f"<br><small>{escape(reasons)}</small>" if reasons else "")
            + "</div>"
        )
    return "".join(out)


def render_drift_html(report: dict[str, Any]) -> str:
    """The whole page for a report in its JSON form (:meth:`DriftReport.to_dict`)."""
    window = report.get("window", {})
    title = f"Drift — {report.get('model')} v{report.get('version')}"
    parts = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p>Status: <span class="badge {report["status"]}">{report["status"]}</span> · '
        f"window {window.get('rows')} rows ({_fmt(window.get('start'))} → "
        f"{_fmt(window.get('end'))}) · created {_fmt(report.get('created_at'))}</p>",
    ]
    if report.get("drifted"):
        parts.append(f"<p class='drift'>Drifted: {escape(', '.join(report['drifted']))}</p>")
    for note in report.get("notes") or []:
        parts.append(f"<p><em>{escape(note)}</em></p>")
    parts.append(
        '<p class="legend">Histograms:<span style="background:#9e9e9e"></span>baseline '
        '(training)<span style="background:#1f77b4"></span>current window</p>'
    )
    parts.append("<h2>Features</h2>" + _feature_table(report["features"]))
    parts.append(_charts(report["features"]))
    prediction = report.get("prediction")
    if prediction is not None:
        parts.append(
            f'<h2>Prediction drift <span class="{prediction["status"]}">'
            f"{prediction['status']}</span></h2>"
        )
        if prediction.get("source") or prediction.get("note"):
            parts.append(
                f"<p><em>Baseline: {escape(str(prediction.get('source') or ''))} "
                f"{escape(str(prediction.get('note') or ''))}</em></p>"
            )
        if prediction["features"]:
            parts.append(_feature_table(prediction["features"]) + _charts(prediction["features"]))
    if report.get("segments"):
        parts.append(
            "<h2>Segments</h2><table><tr><th>segment</th><th>rows</th><th>status</th>"
            "<th>drifted</th><th>note</th></tr>"
        )
        for s in report["segments"]:
            parts.append(
                f"<tr><td>{escape(s['column'])} = {escape(s['value'])}</td><td>{s['rows']}</td>"
                f'<td class="{s["status"]}">{s["status"]}</td>'
                f"<td>{escape(', '.join(s['drifted']))}</td><td>{_fmt(s.get('note'))}</td></tr>"
            )
        parts.append("</table>")
        for s in report["segments"]:
            if s["status"] == "drift":
                parts.append(
                    f"<h3>{escape(s['column'])} = {escape(s['value'])}</h3>"
                    + _feature_table(s["features"])
                )
    settings = report.get("settings") or {}
    parts.append(
        "<h2>Settings</h2><p>"
        + " · ".join(f"{escape(str(k))} {_fmt(v)}" for k, v in settings.items())
        + "</p></body></html>"
    )
    return "\n".join(parts)
