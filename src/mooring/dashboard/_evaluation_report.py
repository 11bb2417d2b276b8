"""The self-contained HTML model report: inline CSS and SVG, no scripts, no network.

Examples:
    >>> html = render_evaluation_html(result, decision)  # doctest: +SKIP
    >>> "<script" in html  # doctest: +SKIP
    False
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import mooring
from mooring.config._evaluation import ThresholdTarget
from mooring.dashboard._charts import Bar, Line, bar_chart, line_chart
from mooring.evaluation._metrics import HEADLINE, HIGHER_IS_BETTER, PRIMARY
from mooring.evaluation._result import EvaluationResult

if TYPE_CHECKING:
    from mooring.formats._gate import DecisionRecord

__all__ = ["render_evaluation_html"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f8fa;
color:#24292f;font-size:14px}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}
.meta{color:#57606a}.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px;
margin:8px 0}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #eaeef2;font-variant-numeric:tabular-nums}th{background:#f6f8fa;
vertical-align:bottom}td{vertical-align:top}
.badge{display:inline-block;padding:4px 10px;border-radius:12px;font-weight:600;color:#fff}
.ok{background:#1a7f37}.bad{background:#d1242f}.none{background:#57606a}
.pass{color:#1a7f37;font-weight:600}.fail{color:#d1242f;font-weight:600}
.skip{color:#9a6700;font-weight:600}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px;margin:6px 0}
tr.flag td{background:#ffebe9}.grid{display:flex;flex-wrap:wrap;gap:12px}
.grid figure{flex:1 1 440px;margin:0;background:#fff;border:1px solid #d0d7de;
border-radius:6px;padding:6px}
figcaption{font-weight:600;font-size:13px;text-align:center}
"""


# The chart kit's (escaped) title element.
_TITLE = re.compile(r"<title>(.*?)</title>")


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    # Each table scrolls sideways inside its own box, never the page off its right edge.
    return (
        f"<div class='table-wrap'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _how_chosen(result: EvaluationResult) -> str:
    """How the operating threshold was set, for people: ``precision ≥ 0.8 (precision_target)``."""
    source = result.threshold_source or "configured"
    target = result.config.threshold
    if isinstance(target, ThresholdTarget):
        return escape(f"{target.metric} ≥ {target.value:g} on the evaluated rows ({source})")
    if source == "configured":
        return "configured, not chosen on the evaluated rows"
    return escape(f"{source} on the evaluated rows")


def _header(result: EvaluationResult, decision: DecisionRecord | None) -> str:
    if decision is None:
        badge = '<span class="badge none">unevaluated</span>'
    elif decision.blessed:
        badge = '<span class="badge ok">BLESSED</span>' + (
            " by the default gates" if decision.defaults else ""
        )
    elif decision.ungated:
        badge = '<span class="badge bad">UNGATED — no gate judged it: not blessed</span>'
    else:
        badge = (
            f'<span class="badge bad">NOT BLESSED — {len(decision.failures)} gate(s) failed</span>'
        )
    threshold = (
        f" · operating threshold {_num(result.operating_threshold)} ({_how_chosen(result)})"
        if result.operating_threshold is not None
        else ""
    )
    return (
        f"<h1>Model evaluation report</h1><p class='meta'>{escape(result.task)} · "
        f"{result.rows:,} rows · data fingerprint {escape(result.data_fingerprint)}{threshold}"
        f" · mooring {escape(mooring.__version__)}</p><p>{badge}</p>"
    )


def _gates(decision: DecisionRecord | None) -> str:
    if decision is None:
        return ""
    parts = ["<h2>Gates</h2>"]
    parts.extend(f"<div class='warn'>⚠ {escape(w)}</div>" for w in decision.warnings)
    if decision.gates:
        rows, classes = [], []
        for g in decision.gates:
            status = (
                "<span class='skip'>SKIPPED</span>"
                if g.skipped
                else "<span class='fail'>WAIVED</span>"
                if g.waived
                else "<span class='pass'>PASS</span>"
                if g.passed
                else "<span class='fail'>FAIL</span>"
            )
            rows.append(
                [
                    status,
                    escape(g.name) + (" <i>(default)</i>" if g.default else ""),
                    g.kind,
                    _num(g.value, 6),
                    _num(g.baseline, 6),
                    escape(g.message),
                ]
            )
            classes.append("" if g.passed and not g.waived else "flag")
        parts.append(_table(["", "gate", "kind", "value", "production", "detail"], rows, classes))
    return "".join(parts)


def _metrics(result: EvaluationResult) -> str:
    rows = []
    extra = [m for m in result.metrics if m not in HEADLINE[result.task]]
    for name in [*HEADLINE[result.task], *extra]:
        if name not in result.metrics:
            continue
        ci = result.intervals.get(name)
        interval = (
            f"[{_num(ci.lower)}, {_num(ci.upper)}] ({ci.confidence:.0%}, {ci.samples} resamples)"
            if ci
            else ""
        )
        better = HIGHER_IS_BETTER.get(name)
        direction = "" if better is None else ("higher" if better else "lower") + " is better"
        rows.append([f"<b>{escape(name)}</b>", _num(result.metrics[name], 5), interval, direction])
    out = "<h2>Metrics</h2>" + _table(["metric", "value", "bootstrap interval", ""], rows)
    if result.cost is not None:
        c = result.cost
        out += (
            "<div class='card'><b>Cost</b> (false positive "
            f"{c.false_positive:g}, false negative {c.false_negative:g}, true positive benefit "
            f"{c.true_positive_benefit:g}): expected cost per 1,000 predictions "
            f"<b>{c.cost_per_1000:.4g}</b> at the operating threshold {c.operating_threshold:.4g}; "
            f"the cost-optimal threshold is <b>{c.optimal_threshold:.4g}</b> "
            f"({c.optimal_cost_per_1000:.4g} per 1,000).</div>"
        )
    if result.per_class is not None:
        pc = result.per_class
        names = result.label_vocabulary or [str(i) for i in range(len(pc["support"]))]
        rows = [
            [
                escape(names[i]),
                _num(pc["precision"][i]),
                _num(pc["recall"][i]),
                str(pc["support"][i]),
            ]
            for i in range(len(pc["support"]))
        ]
        out += "<h2>Per class</h2>" + _table(["class", "precision", "recall", "support"], rows)
    return out


def _figure(svg: str) -> str:
    """A chart with its title shown above it (the chart kit keeps titles for screen readers)."""
    found = _TITLE.search(svg)
    caption = f"<figcaption>{found.group(1)}</figcaption>" if found else ""
    return f"<figure>{caption}{svg}</figure>"


def _points(xs: Sequence[Any], ys: Sequence[Any]) -> list[tuple[float, float | None]]:
    return [(float(x), None if y is None else float(y)) for x, y in zip(xs, ys, strict=True)]


def _charts(result: EvaluationResult) -> str:
    charts: list[str] = []
    if "roc" in result.curves:
        roc = result.curves["roc"]
        charts.append(
            line_chart(
                [
                    Line(
                        f"ROC (AUC {_num(result.metrics.get('auc'))})",
                        _points(roc["fpr"], roc["tpr"]),
                    )
                ],
                title="ROC curve",
                x_label="false positive rate",
                y_label="true positive rate",
                x_range=(0, 1),
                y_range=(0, 1),
                diagonal=True,
            )
        )
    if "pr" in result.curves:
        pr = result.curves["pr"]
        charts.append(
            line_chart(
                [Line("precision-recall", _points(pr["recall"], pr["precision"]))],
                title=f"Precision-recall (AP {_num(result.metrics.get('pr_auc'))})",
                x_label="recall",
                y_label="precision",
                x_range=(0, 1),
                y_range=(0, 1.02),
            )
        )
    filled = [b for b in result.calibration.bins if b.count]
    if filled:
        charts.append(
            line_chart(
                [
                    Line(
                        "model",
                        _points(
                            [b.mean_predicted or 0.0 for b in filled], [b.observed for b in filled]
                        ),
                        markers=True,
                    )
                ],
                title=f"Reliability (ECE {_num(result.calibration.ece, 3)}, "
                f"MCE {_num(result.calibration.mce, 3)})",
                x_label="mean predicted probability",
                y_label="observed frequency",
                x_range=(0, 1),
                y_range=(0, 1),
                diagonal=True,
            )
        )
    if result.sweep is not None:
        s = result.sweep
        xs = s.thresholds.tolist()
        charts.append(
            line_chart(
                [
                    Line("precision", _points(xs, s.precision.tolist())),
                    Line("recall", _points(xs, s.recall.tolist())),
                    Line("F1", _points(xs, s.f1.tolist())),
                    Line("FPR", _points(xs, s.fpr.tolist()), dashed=True),
                ],
                title="Threshold sweep",
                x_label="threshold",
                y_label="rate",
                x_range=(0, 1),
                y_range=(0, 1.02),
                vline=result.operating_threshold,
            )
        )
        if s.cost_per_1000 is not None:
            charts.append(
                line_chart(
                    [
                        Line(
                            "cost per 1,000", _points(xs, s.cost_per_1000.tolist()), color="#9a6700"
                        )
                    ],
                    title="Expected cost per 1,000 predictions",
                    x_label="threshold",
                    y_label="cost",
                    x_range=(0, 1),
                    vline=result.operating_threshold,
                )
            )
    figures = "".join(_figure(c) for c in charts)
    return f"<h2>Curves</h2><div class='grid'>{figures}</div>" if charts else ""


def _slices(result: EvaluationResult) -> str:
    if not result.slices:
        return ""
    primary = PRIMARY[result.task]
    ci = result.intervals.get(primary)
    scored = [s for s in result.slices if s.scored and s.metrics.get(primary) is not None]
    bars = [
        Bar(f"{s.name} (n={s.size:,})", float(s.metrics[primary] or 0.0), flagged=s.flagged)
        for s in scored
    ]
    chart = (
        bar_chart(
            bars,
            title=f"{primary} by slice (band: overall interval; red: flagged)",
            reference=result.metrics.get(primary),
            band=(ci.lower, ci.upper) if ci else None,
        )
        if bars
        else ""
    )
    names = [m for m in HEADLINE[result.task] if m != "ece"][:6]
    rows, classes = [], []
    for s in result.slices:
        cells = [escape(s.name), f"{s.size:,}"]
        cells += [_num(s.metrics.get(m)) for m in names] if s.scored else ["—"] * len(names)
        cells.append(escape(s.note or ("" if s.scored else "not scored")))
        rows.append(cells)
        classes.append("flag" if s.flagged else "")
    flagged = sum(s.flagged for s in result.slices)
    return (
        f"<h2>Slices</h2><p class='meta'>{len(result.slices)} slices, {flagged} flagged "
        f"(their {primary} falls outside the overall interval).</p>"
        + (_figure(chart) if chart else "")
        + _table(["slice", "rows", *names, "note"], rows, classes)
    )


def _windows(result: EvaluationResult) -> str:
    w = result.windows
    if w is None or not w.windows:
        return ""
    ci = result.intervals.get(w.primary)
    labels = [x.name for x in w.windows]
    chart = line_chart(
        [
            Line(
                w.primary,
                _points(
                    list(range(len(labels))),
                    [x.metrics.get(w.primary) if x.scored else None for x in w.windows],
                ),
                markers=True,
            )
        ],
        title=f"{w.primary} per window ({w.freq}; band: overall interval)",
        x_label=w.column or "row order",
        y_label=w.primary,
        x_ticks=labels,
        x_range=(-0.5, len(labels) - 0.5),
        band=(ci.lower, ci.upper) if ci else None,
        width=920,
        zero=False,
    )
    spread = ", ".join(f"{k} {_num(v)}" for k, v in w.spread.items() if v is not None)
    rows = [
        [
            escape(x.name),
            f"{x.size:,}",
            _num(x.metrics.get(w.primary)),
            "flagged" if x.flagged else ("" if x.scored else "too small"),
        ]
        for x in w.windows
    ]
    return (
        f"<h2>Stability across windows</h2><p class='meta'>Spread (best − worst): "
        f"{escape(spread) or '—'}</p><div class='grid'>{_figure(chart)}</div>"
        + _table(
            ["window", "rows", w.primary, ""],
            rows,
            ["flag" if x.flagged else "" for x in w.windows],
        )
    )


def _comparison(result: EvaluationResult) -> str:
    c = result.comparison
    if c is None:
        return ""
    return (
        "<h2>Candidate vs production</h2><div class='card'>On the same "
        f"{c.rows:,} records: flip rate <b>{_num(c.flip_rate)}</b>, mean absolute prediction "
        f"difference <b>{_num(c.mean_abs_diff)}</b>.</div>"
    )


def _model(result: EvaluationResult) -> str:
    """The model's kind and, for trees, each column's share of the split gain."""
    if not result.model:
        return ""
    kind = str(result.model.get("kind", "mlp"))
    candidate = result.model.get("candidate")
    trees = result.model.get("trees")
    parts = [
        "<h2>Model</h2><div class='card'>kind <b class='kind'>"
        f"{escape(kind)}</b>"
        + (f" · candidate <b>{escape(str(candidate))}</b>" if candidate else "")
        + (f" · {int(trees):,} trees" if isinstance(trees, int | float) else "")
        + "</div>"
    ]
    importances = result.model.get("feature_importances") or {}
    if isinstance(importances, dict) and importances:
        ranked = sorted(importances.items(), key=lambda kv: -float(kv[1]))
        parts.append("<h2>Feature importances</h2>")
        parts.append(
            _figure(
                bar_chart(
                    [Bar(str(k), float(v)) for k, v in ranked[:20]],
                    title="Share of the trees' split gain",
                )
            )
        )
        parts.append(
            _table(
                ["feature", "share of split gain"],
                [[escape(str(k)), _num(float(v))] for k, v in ranked],
            )
        )
    parts.append(_attributions(result.model.get("attributions")))
    return "".join(parts)


def _attributions(summary: Any) -> str:
    """Each column's mean absolute attribution over a sample of the evaluation rows."""
    if not isinstance(summary, dict) or not summary.get("mean_abs_attribution"):
        return ""
    ranked = sorted(summary["mean_abs_attribution"].items(), key=lambda kv: -float(kv[1]))
    unit = str(summary.get("unit", ""))
    method = str(summary.get("method", "")).replace("_", " ")
    return "".join(
        [
            "<h2>Attributions</h2>",
            f"<p>How far each column moves the {escape(str(summary.get('output', 'output')))} "
            f"from the baseline's, on average over {int(summary.get('rows', 0)):,} evaluation "
            f"rows ({escape(method)}; in {escape(unit)}).</p>",
            _figure(
                bar_chart(
                    [Bar(str(k), float(v)) for k, v in ranked[:20]],
                    title="Mean |attribution|",
                )
            ),
            _table(
                ["feature", f"mean |attribution| ({escape(unit)})"],
                [[escape(str(k)), _num(float(v))] for k, v in ranked],
            ),
        ]
    )


def _candidates(result: EvaluationResult) -> str:
    """Every candidate of the run side by side, with why each was or was not chosen."""
    if not result.candidates:
        return ""
    select = str(result.model.get("select") or PRIMARY[result.task])
    shown = [m for m in HEADLINE[result.task] if any(m in c.metrics for c in result.candidates)]
    shown = [select, *[m for m in shown if m != select]][:5]
    rows, classes = [], []
    for c in result.candidates:
        cells = [escape(c.name), f"<span class='kind'>{escape(c.kind)}</span>"]
        for m in shown:
            value = c.metrics.get(m)
            ci = c.intervals.get(m)
            cells.append(
                _num(value) + (f" [{_num(ci['lower'])}, {_num(ci['upper'])}]" if ci else "")
            )
        cells += [
            _num(c.calibration_ece),
            _num(c.decision_cost_per_1000),
            _num(None if c.seconds_per_1000 is None else c.seconds_per_1000 * 1000.0),
            _num(c.cost_per_1000),
            f"{(c.size_bytes or 0) / 1e6:.2f}",
            "<span class='pass'>PASS</span>" if c.blessed else "<span class='fail'>FAIL</span>",
            ("<b>chosen</b> — " if c.chosen else "") + escape(c.reason),
        ]
        rows.append(cells)
        classes.append("" if c.blessed else "flag")
    direction = "higher" if HIGHER_IS_BETTER.get(select, True) else "lower"
    headers = [
        "candidate",
        "kind",
        *[f"{m} [interval]" for m in shown],
        "ECE",
        "decision cost / 1,000",
        "latency ms / 1,000 predictions",
        "serving cost / 1,000",
        "size MB",
        "gates",
        "verdict",
    ]
    return (
        f"<h2>Candidates</h2><p class='meta'>Picked by <b>{escape(select)}</b> ({direction} is "
        "better) among the candidates that pass every gate; ties go to the lower cost per "
        "1,000 predictions (measured in-process on the loaded SavedModel).</p>"
        + f"<div class='candidates'>{_table(headers, rows, classes)}</div>"
    )


def render_evaluation_html(result: EvaluationResult, decision: DecisionRecord | None = None) -> str:
    """The whole report as one HTML document."""
    warnings = "".join(f"<div class='warn'>⚠ {escape(w)}</div>" for w in result.warnings)
    body = "".join(
        [
            _header(result, decision),
            _candidates(result),
            _model(result),
            _gates(decision),
            warnings,
            _metrics(result),
            _charts(result),
            _slices(result),
            _windows(result),
            _comparison(result),
        ]
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>mooring · {escape(result.task)} evaluation</title><style>{CSS}</style>"
        f"</head><body><main>{body}</main></body></html>"
    )
