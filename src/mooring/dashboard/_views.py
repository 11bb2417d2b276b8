"""What each dashboard page shows, assembled from the registry and the project's home folder.

Plain functions returning plain data (dicts and dataclasses) for the templates,
so the pages stay logic-free and the data is easy to test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mooring.dashboard._bin_labels import compact_bins
from mooring.dashboard._charts import Bar, Line, bar_chart, fmt, histogram_chart, line_chart
from mooring.dashboard._drift_files import DriftHistory, DriftRun, latest_drift
from mooring.dashboard._version_facts import kind_of, version_marks
from mooring.evaluation._gates import describe_bound
from mooring.evaluation._metrics import HEADLINE, HIGHER_IS_BETTER, PRIMARY
from mooring.formats._drift import Histogram
from mooring.formats._gate import DecisionRecord
from mooring.formats._version_record import REPORT_KEYS
from mooring.monitoring._baselines import comparability_note, evaluation_data_label
from mooring.monitoring._estimate import estimate_line
from mooring.monitoring._rollout_view import RolloutView, read_rollout, rollout_path
from mooring.monitoring._state import estimate_file, read_json
from mooring.registry import Deployment, ModelVersion, Registry
from mooring.registry._records import AuditEvent

__all__ = [
    "REPORT_KEYS",
    "GateRow",
    "drift_view",
    "evaluation_report",
    "headline_metrics",
    "history_rows",
    "model_rows",
    "rollout_panel",
    "slug",
    "version_rows",
]


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The scalar overall metrics of a version (flat, or under ``overall``).

    >>> headline_metrics({"overall": {"auc": 0.9, "slices": {}}, "x": 1})
    {'auc': 0.9}
    """
    overall = metrics.get("overall")
    source = overall if isinstance(overall, Mapping) else metrics
    out = {}
    for key, value in source.items():
        number = _finite(value)
        if number is not None:
            out[str(key)] = number
    return out


def task_of(mv: ModelVersion) -> str | None:
    """The version's task as recorded (run record, parameters, lineage), if any."""
    task = mv.record.task
    return task if task in PRIMARY else None


def ordered_metrics(versions: Sequence[ModelVersion], limit: int = 4) -> list[str]:
    """The metrics worth a column: the task's headline ones that were recorded, in order."""
    recorded: list[str] = []
    for mv in versions:
        recorded.extend(k for k in headline_metrics(mv.metrics) if k not in recorded)
    task = next((t for mv in reversed(versions) if (t := task_of(mv))), None)
    order: list[str] = []
    tasks = [task] if task else list(HEADLINE)
    for name in tasks:
        order.extend(m for m in (PRIMARY[name], *HEADLINE[name]) if m not in order)
    chosen = [m for m in order if m in recorded]
    chosen += [m for m in recorded if m not in chosen]
    return chosen[:limit]


@dataclass(frozen=True)
class GateRow:
    """One gate of a decision, ready to print."""

    name: str
    metric: str
    value: str
    bound: str
    passed: bool
    skipped: bool
    message: str

    @property
    def result(self) -> str:
        """``skipped`` (a skipped gate passes without judging), ``pass`` or ``FAIL``."""
        return "skipped" if self.skipped else ("pass" if self.passed else "FAIL")

    @property
    def why(self) -> str:
        """Why a gate was skipped (its message without the leading ``skipped:``).

        Examples:
            >>> GateRow("a", "auc", "0.9", "", True, True, "skipped: first model").why
            'first model'
        """
        return self.message.removeprefix("skipped:").strip() if self.skipped else ""


def _bound(bound: Any) -> str:
    return describe_bound(bound, fmt)


def gate_rows(gate: Mapping[str, Any] | None) -> list[GateRow]:
    """The gates of a recorded decision (tolerant of missing fields)."""
    decision = DecisionRecord.of(gate) if gate else None
    rows = []
    for g in decision.gates if decision is not None else ():
        value = _finite(g.value)
        rows.append(
            GateRow(
                name=g.name or g.metric or "gate",
                metric=g.metric,
                value=fmt(value) if value is not None else "n/a",
                bound=_bound(g.bound),
                passed=g.passed,
                skipped=g.skipped,
                message=g.message,
            )
        )
    return rows


def gate_status(mv: ModelVersion | None) -> str:
    """``blessed``, ``failed``, ``ungated`` (no gate judged it) or ``none`` (no decision)."""
    if mv is None or not mv.gate or mv.decision is None:
        return "none"
    if mv.decision.blessed:
        return "blessed"
    return "ungated" if mv.ungated else "failed"


def model_rows(registry: Registry, home: Path | None) -> list[dict[str, Any]]:
    """One row per model for the overview: deployment, last gate and drift status."""
    rows = []
    for summary in registry.models():
        versions = registry.versions(summary.name)
        latest = versions[-1] if versions else None
        drift = latest_drift(home, summary.name) if home is not None else None
        metric = ordered_metrics(versions, 1)
        production = next((v for v in versions if v.version == summary.production), None)
        headline = None
        if metric and production is not None:
            value = headline_metrics(production.metrics).get(metric[0])
            headline = (metric[0], fmt(value)) if value is not None else None
        rows.append(
            {
                "name": summary.name,
                "versions": summary.versions,
                "latest": summary.latest_version,
                "production": summary.production,
                "canary": summary.canary,
                "canary_weight": summary.canary_weight,
                "gate": gate_status(latest),
                "gate_version": latest.version if latest else None,
                "headline": headline,
                "drift": drift,
            }
        )
    return rows


def version_rows(
    versions: Sequence[ModelVersion],
    deployment: Deployment,
    events: Sequence[AuditEvent] = (),
) -> list[dict[str, Any]]:
    """The versions table of a model page, newest first, marked from the audit ``events``."""
    columns = ordered_metrics(versions)
    marks = version_marks(versions, events)
    rows = []
    for mv in reversed(versions):
        metrics = headline_metrics(mv.metrics)
        role = []
        if mv.version == deployment.production:
            role.append("production")
        if mv.version == deployment.canary:
            role.append(f"canary {deployment.canary_weight}%")
        rows.append(
            {
                "version": mv.version,
                "created_at": mv.created_at,
                "created_by": mv.created_by,
                "status": mv.status,
                "role": role,
                "aliases": [a for a in mv.aliases if a not in ("production", "canary", "latest")],
                "gate": gate_status(mv),
                "gates": gate_rows(mv.gate),
                "metrics": [
                    fmt(metrics[c]) if metrics.get(c) is not None else "—" for c in columns
                ],
                "has_report": report_reference(mv) is not None,
                "kind": kind_of(mv),
                "marks": marks.get(mv.version, []),
                "parent": mv.parent_version,
                "eval_data": evaluation_data_label(mv),
            }
        )
    return rows


def metric_note(versions: Sequence[ModelVersion], metric: str | None) -> str | None:
    """Said under the per-version chart when its points come from different evaluation data."""
    if metric is None:
        return None
    plotted = [mv for mv in versions if headline_metrics(mv.metrics).get(metric) is not None]
    return comparability_note(plotted, metric=metric)


def metric_chart(versions: Sequence[ModelVersion]) -> tuple[str | None, str]:
    """The primary metric per version as a line, with the newest gate bound on it as threshold."""
    metric = next(iter(ordered_metrics(versions, 1)), None)
    if metric is None:
        return None, ""
    points: list[tuple[float, float | None]] = []
    bound = None
    key = "lower" if HIGHER_IS_BETTER.get(metric, True) else "upper"
    for mv in versions:
        value = headline_metrics(mv.metrics).get(metric)
        if value is None:
            continue
        points.append((float(mv.version), value))
        for row in mv.decision.gates if mv.decision else ():
            if row.metric == metric and not row.slice:
                raw = row.bound
                found = _finite(raw.get(key)) if isinstance(raw, Mapping) else None
                if found is not None:
                    bound = found
    direction = "higher is better" if HIGHER_IS_BETTER.get(metric, True) else "lower is better"
    chart = line_chart(
        [Line(metric, points, markers=True)],
        title=f"{metric} per version ({direction})",
        x_format=lambda x: f"v{round(x)}" if abs(x - round(x)) < 1e-9 else "",
        thresholds=[(f"gate {key}", bound)] if bound is not None else [],
        zero=False,
        height=220,
        empty_text=f"no version recorded {metric}",
    )
    return metric, chart


def lineage_rows(mv: ModelVersion) -> list[tuple[str, str]]:
    """The lineage of a version as label/value pairs."""
    rows = [("version", str(mv.version)), ("parent version", str(mv.parent_version or "—"))]
    for key, value in mv.lineage.to_dict().items():
        if isinstance(value, Mapping | list):
            continue
        rows.append((key.replace("_", " "), "—" if value is None else str(value)))
    rows.append(("manifest sha256", mv.manifest_sha256))
    rows.append(("files", f"{mv.file_count} ({mv.size_bytes:,} bytes)"))
    return rows


def parent_chain(versions: Sequence[ModelVersion], version: int) -> list[int]:
    """``version`` and its ancestors by ``parent_version``, newest first."""
    by_number = {mv.version: mv for mv in versions}
    chain: list[int] = []
    current: int | None = version
    while current is not None and current in by_number and current not in chain:
        chain.append(current)
        current = by_number[current].parent_version
    return chain


def _state(data: Mapping[str, Any] | None) -> str:
    if not data:
        return "—"
    parts = []
    if data.get("production") is not None:
        parts.append(f"production v{data['production']}")
    if data.get("canary") is not None:
        weight = data.get("weight", data.get("canary_weight", 0))
        parts.append(f"canary v{data['canary']} at {weight}%")
    elif "canary" in data and "production" in data:
        parts.append("no canary")
    if "blessed" in data and data.get("version") is not None:
        parts.append(f"v{data['version']} {'blessed' if data['blessed'] else 'not blessed'}")
    if data.get("status") is not None:
        parts.append(str(data["status"]))
    if data.get("alias") is not None and data.get("version") is not None:
        parts.append(f"{data['alias']} → v{data['version']}")
    return ", ".join(parts) or "—"


def history_rows(events: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    """Audit events newest first, with the change each made in words."""
    return [
        {
            "seq": e.seq,
            "created_at": e.created_at,
            "actor": e.actor,
            "action": e.action,
            "version": e.version,
            "before": _state(e.before),
            "after": _state(e.after),
            "reason": e.reason or "",
            "forced": e.forced,
        }
        for e in reversed(events)
    ]


def rollout_panel(home: Path | None, name: str, deployment: Deployment) -> RolloutView | None:
    """The canary's rollout from the controller's ``rollout.json``; None when none to show."""
    if home is None:
        return None
    view = read_rollout(rollout_path(home, name), canary=deployment.canary)
    shown = view.under_way or deployment.canary is not None or view.last_decision is not None
    return view if shown else None


def estimate_panel(home: Path | None, name: str) -> dict[str, Any] | None:
    """The monitor's last estimate of production's quality before labels: its ``line``
    (beside the evaluation value; "unreliable: <why>" and no number when its assumption
    does not hold on the window) and whether it is ``unreliable`` (a badge)."""
    if home is None:
        return None
    found = read_json(estimate_file(home, name))
    if found is None:
        return None
    return {"line": estimate_line(found), "unreliable": bool(found.get("unreliable"))}


def report_reference(mv: ModelVersion) -> str | None:
    """The evaluation report path a version recorded (run record first, then lineage)."""
    return mv.record.report


def evaluation_report(mv: ModelVersion, home: Path | None) -> Path | None:
    """The report.html a version recorded, only when it lies inside the project's home."""
    reference = report_reference(mv)
    if reference is None or home is None or "://" in reference:
        return None
    path = Path(reference).expanduser()
    if not path.is_absolute():
        path = home / path
    if path.is_dir():
        path = path / "report.html"
    return inside_home(path, home)


def inside_home(path: Path, home: Path) -> Path | None:
    """``path`` resolved (links followed), when it is a file inside ``home``; else None.

    Every route that serves a file from disk goes through this, so a link or a recorded
    path can never hand out a file from outside the project's home.
    """
    try:
        resolved = path.resolve(strict=True)
        root = home.resolve(strict=True)
    except OSError:
        return None
    if not resolved.is_file() or not resolved.is_relative_to(root):
        return None
    return resolved


def slug(name: str) -> str:
    """An HTML id fragment for a feature name (letters, digits, ``-`` and ``_`` kept).

    >>> slug("hours per week")
    'hours-per-week'
    """
    return re.sub(r"[^A-Za-z0-9_-]", "-", name) or "-"


def _aligned(
    baseline: Histogram | None, current: Histogram | None
) -> tuple[list[str], list[float], list[float]]:
    """Both histograms' counts over the same bins (the union, baseline order first).

    The labels come back with short bin edges (:func:`compact_bins`).
    """
    labels: list[str] = list(baseline.bins) if baseline else []
    for label in current.bins if current else ():
        if label not in labels:
            labels.append(label)
    base = dict(zip(baseline.bins, baseline.counts, strict=False)) if baseline else {}
    cur = dict(zip(current.bins, current.counts, strict=False)) if current else {}
    counts = [base.get(x, 0.0) for x in labels], [cur.get(x, 0.0) for x in labels]
    # Matched on the full labels; shown with short numbers (the axis has little room).
    return compact_bins(labels), *counts


def _metric_for(history: DriftHistory, wanted: str | None) -> str | None:
    names = history.metric_names()
    if wanted in names:
        return wanted
    return names[0] if names else None


def _time_label(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")


def drift_view(
    history: DriftHistory, *, metric: str | None, run: str | None, base: str
) -> dict[str, Any]:
    """Charts and tables of the drift page: bars of the selected report, lines over time."""
    chosen = _metric_for(history, metric)
    selected: DriftRun | None = history.run(run) if run else history.latest
    if selected is None:
        selected = history.latest
    view: dict[str, Any] = {
        "metric": chosen,
        "metrics": history.metric_names(),
        "selected": selected,
        "runs": list(reversed(history.runs)),
        "problems": history.problems,
        "bars": "",
        "features": [],
        "prediction": [],
    }
    if selected is None or chosen is None:
        return view
    bars = [
        Bar(f.name, f.measured[chosen], f.bounds.get(chosen), f"#feature-{slug(f.name)}")
        for f in selected.features
        if chosen in f.measured
    ]
    bars.sort(key=lambda b: -(b.value / b.threshold if b.threshold else b.value))
    view["bars"] = bar_chart(bars, title=f"{chosen} per feature, {selected.when}")
    features = []
    timed = [r for r in history.runs if r.created_at is not None]
    for name in history.feature_names():
        feature = selected.feature(name)
        points: list[tuple[float, float | None]] = []
        threshold = None
        for r in timed:
            f = r.feature(name)
            if f is None or r.created_at is None:
                continue
            points.append((r.created_at.timestamp(), f.measured.get(chosen)))
            threshold = f.bounds.get(chosen, threshold)
        over_time = line_chart(
            [Line(chosen, points)],
            title=f"{name}: {chosen} over time",
            x_format=_time_label,
            thresholds=[("threshold", threshold)] if threshold is not None else [],
            height=200,
            empty_text=f"no {chosen} recorded for {name}",
        )
        histogram = ""
        if feature is not None:
            labels, base_counts, current_counts = _aligned(feature.baseline, feature.current)
            histogram = histogram_chart(
                labels, base_counts, current_counts, title=f"{name}: baseline vs current"
            )
        features.append(
            {
                "name": name,
                "feature": feature,
                "over_time": over_time,
                "histogram": histogram,
                "drifted": feature.drifted if feature is not None else False,
            }
        )
    features.sort(key=lambda f: (not f["drifted"], f["name"]))
    view["features"] = features
    view["prediction"] = [
        {
            "feature": output,
            "histogram": histogram_chart(
                *_aligned(output.baseline, output.current),
                title=f"{output.name}: evaluation-time outputs vs current",
                baseline_label="baseline (evaluation-time outputs)",
            ),
        }
        for output in selected.prediction
    ]
    view["base"] = base
    return view
