"""Drift reports as the monitoring layer writes them: ``<home>/monitoring/<model>/drift/*.json``.

The dashboard only reads these files (the serving layer does not import the
monitoring layer). Reading is tolerant: a file that is not JSON, or an entry that
lacks a field, is skipped or shown as unknown and named in ``problems`` instead
of failing the page.

Example:
    >>> history = read_drift_history(Path(".mooring"), "income")  # doctest: +SKIP
    >>> history.latest.status  # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "DriftHistory",
    "DriftRun",
    "FeatureDrift",
    "Histogram",
    "aligned",
    "drift_folder",
    "is_report_stem",
    "latest_drift",
    "read_drift_history",
]

LATEST = "latest.json"
#: Distances offered first on the drift page (the others follow in the files' order).
DISTANCE_ORDER = ("psi", "jensen_shannon", "wasserstein", "ks", "linf")
#: Threshold names that differ from the metric they bound (the rest share the metric's name).
THRESHOLD_METRIC = {
    "out_of_range": "out_of_range_share",
    "unseen": "unseen_share",
    "missing": "missing_change",
}
_STEM = re.compile(r"^[A-Za-z0-9._:+-]{1,80}$")
_STAMP = re.compile(r"(\d{8}T\d{6}(?:\.\d+)?Z?)")


def drift_folder(home: Path, model: str) -> Path:
    """Where the drift reports of ``model`` live."""
    return home / "monitoring" / model / "drift"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _numbers(data: Any) -> dict[str, float]:
    if not isinstance(data, Mapping):
        return {}
    out = {}
    for key, value in data.items():
        number = _number(value)
        if number is not None:
            out[str(key)] = number
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    for candidate in (text, text.replace("Z", "+00:00")):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    for pattern in ("%Y%m%dT%H%M%S.%fZ", "%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Histogram:
    """Bin labels and counts of one distribution (numeric bins or categories)."""

    labels: tuple[str, ...]
    counts: tuple[float, ...]


def _edge(value: Any) -> str:
    number = _number(value)
    if number is None:
        return str(value)
    return f"{number:.4g}"


def _histogram(data: Any) -> Histogram | None:
    """``{bins, counts}`` (labelled bins), ``{edges, counts}`` or ``{values, counts}`` → labels."""
    if not isinstance(data, Mapping):
        return None
    raw_counts = data.get("counts")
    if not isinstance(raw_counts, Sequence) or isinstance(raw_counts, str):
        return None
    counts = tuple(_number(c) or 0.0 for c in raw_counts)
    values = data.get("bins", data.get("values"))
    edges = data.get("edges")
    if isinstance(values, Sequence) and not isinstance(values, str) and len(values) == len(counts):
        return Histogram(tuple("(missing)" if v is None else str(v) for v in values), counts)
    if isinstance(edges, Sequence) and not isinstance(edges, str):
        e = [_edge(x) for x in edges]
        n = len(counts)
        if len(e) == n + 1:
            labels = [f"{e[i]}–{e[i + 1]}" for i in range(n)]
        elif len(e) == n - 1 and n >= 2:
            labels = [f"< {e[0]}"] + [f"{e[i]}–{e[i + 1]}" for i in range(n - 2)] + [f"≥ {e[-1]}"]
        elif len(e) == n:
            labels = [f"≥ {x}" for x in e]
        else:
            labels = [f"bin {i + 1}" for i in range(n)]
        return Histogram(tuple(labels), counts)
    return Histogram(tuple(f"bin {i + 1}" for i in range(len(counts))), counts)


def aligned(
    baseline: Histogram | None, current: Histogram | None
) -> tuple[list[str], list[float], list[float]]:
    """Both histograms over the same labels (the union, baseline order first)."""
    if baseline is None and current is None:
        return [], [], []
    labels: list[str] = list(baseline.labels) if baseline else []
    for label in current.labels if current else ():
        if label not in labels:
            labels.append(label)
    base = dict(zip(baseline.labels, baseline.counts, strict=False)) if baseline else {}
    cur = dict(zip(current.labels, current.counts, strict=False)) if current else {}
    return labels, [base.get(x, 0.0) for x in labels], [cur.get(x, 0.0) for x in labels]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's (or the prediction's) distances, thresholds and histograms."""

    name: str
    kind: str
    status: str
    metrics: dict[str, float]
    thresholds: dict[str, float]
    shares: dict[str, float]
    baseline: Histogram | None
    current: Histogram | None
    reasons: tuple[str, ...] = ()

    @property
    def drifted(self) -> bool:
        """The file's verdict, else any thresholded metric past its threshold."""
        if self.status in ("drift", "drifted"):
            return True
        if self.status in ("ok", "insufficient_data"):
            return False
        return any(self.metrics.get(k, 0.0) > t for k, t in self.thresholds.items())

    def histograms(self) -> tuple[list[str], list[float], list[float]]:
        """Labels, baseline counts and current counts aligned on the same bins."""
        return aligned(self.baseline, self.current)


def _feature(data: Any, fallback_name: str = "?") -> FeatureDrift | None:
    if not isinstance(data, Mapping):
        return None
    metrics = _numbers(data.get("metrics"))
    shares = {
        k: v
        for k in ("out_of_range_share", "unseen_share", "missing_change")
        if (v := _number(data.get(k, metrics.get(k)))) is not None
    }
    thresholds = {
        THRESHOLD_METRIC.get(k, k) if k not in metrics else k: v
        for k, v in _numbers(data.get("thresholds")).items()
    }
    reasons = data.get("reasons")
    return FeatureDrift(
        name=str(data.get("name") or data.get("feature") or fallback_name),
        kind=str(data.get("kind") or "unknown"),
        status=str(data.get("status") or "unknown"),
        metrics=metrics,
        thresholds=thresholds,
        shares=shares,
        baseline=_histogram(data.get("baseline")),
        current=_histogram(data.get("current")),
        reasons=tuple(str(r) for r in reasons) if isinstance(reasons, list) else (),
    )


@dataclass(frozen=True)
class DriftRun:
    """One drift report file."""

    stem: str
    created_at: datetime | None
    model: str | None
    version: int | None
    status: str
    drifted: tuple[str, ...]
    rows: int | None
    window_start: str | None
    window_end: str | None
    features: tuple[FeatureDrift, ...]
    prediction: tuple[FeatureDrift, ...]
    segments: tuple[dict[str, Any], ...]
    has_html: bool

    @property
    def when(self) -> str:
        """The report time for people (UTC, to the second)."""
        if self.created_at is None:
            return self.stem
        return self.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def feature(self, name: str) -> FeatureDrift | None:
        """The named feature's result, if the report has one."""
        return next((f for f in self.features if f.name == name), None)


def _segments(data: Any) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    items: list[tuple[str, Any]] = []
    if isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, Sequence) and not isinstance(data, str):
        items = [("", v) for v in data]
    for key, value in items:
        if not isinstance(value, Mapping):
            continue
        drifted = value.get("drifted")
        name = value.get("name") or value.get("segment")
        if name is None and value.get("column") is not None:
            name = f"{value['column']}={value.get('value')}"
        out.append(
            {
                "name": str(name or key or "?"),
                "status": str(value.get("status") or "unknown"),
                "rows": _number(value.get("rows")),
                "drifted": [str(d) for d in drifted] if isinstance(drifted, list) else [],
            }
        )
    return tuple(out)


def _features(raw: Any) -> list[FeatureDrift]:
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        return [f for f in (_feature(x) for x in raw) if f is not None]
    if isinstance(raw, Mapping):
        return [f for f in (_feature(v, str(k)) for k, v in raw.items()) if f is not None]
    return []


def _prediction(raw: Any) -> tuple[FeatureDrift, ...]:
    """The model's outputs: ``{"features": [...]}``, or one feature-like mapping."""
    if not isinstance(raw, Mapping):
        return ()
    if "features" in raw:
        return tuple(_features(raw["features"]))
    single = _feature(raw, "prediction")
    if single is None or (not single.metrics and single.baseline is None):
        return ()
    return (single,)


def _run(path: Path, data: Mapping[str, Any]) -> DriftRun:
    raw_window = data.get("window")
    window: Mapping[str, Any] = raw_window if isinstance(raw_window, Mapping) else {}
    created = _parse_time(data.get("created_at"))
    if created is None:
        match = _STAMP.search(path.stem)
        created = _parse_time(match.group(1)) if match else None
    features = _features(data.get("features"))
    prediction = _prediction(data.get("prediction"))
    drifted = data.get("drifted")
    version = data.get("version")
    rows = _number(window.get("rows"))
    return DriftRun(
        stem=path.stem,
        created_at=created,
        model=str(data["model"]) if data.get("model") is not None else None,
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        status=str(data.get("status") or "unknown"),
        drifted=tuple(str(d) for d in drifted) if isinstance(drifted, list) else (),
        rows=int(rows) if rows is not None else None,
        window_start=str(window["start"]) if window.get("start") is not None else None,
        window_end=str(window["end"]) if window.get("end") is not None else None,
        features=tuple(features),
        prediction=prediction,
        segments=_segments(data.get("segments")),
        has_html=path.with_suffix(".html").is_file(),
    )


@dataclass
class DriftHistory:
    """Every readable drift report of a model, oldest first, and the files that were not."""

    runs: list[DriftRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def latest(self) -> DriftRun | None:
        """The newest report."""
        return self.runs[-1] if self.runs else None

    def run(self, stem: str) -> DriftRun | None:
        """The report written to ``<stem>.json``."""
        return next((r for r in self.runs if r.stem == stem), None)

    def feature_names(self) -> list[str]:
        """Features in the order of the newest report, then any only older reports hold."""
        names: list[str] = []
        for run in reversed(self.runs):
            names.extend(f.name for f in run.features if f.name not in names)
        return names

    def metric_names(self) -> list[str]:
        """Metrics that have a threshold somewhere (all recorded ones when none has)."""
        with_threshold: list[str] = []
        other: list[str] = []
        for run in reversed(self.runs):
            for feature in run.features:
                for key in feature.thresholds:
                    if key in feature.metrics and key not in with_threshold:
                        with_threshold.append(key)
                for key in feature.metrics:
                    if key not in other:
                        other.append(key)
        rank = {m: i for i, m in enumerate(DISTANCE_ORDER)}
        with_threshold.sort(key=lambda m: rank.get(m, len(rank)))
        return with_threshold or other


def read_drift_history(home: Path, model: str, *, limit: int = 500) -> DriftHistory:
    """Read the newest ``limit`` drift reports of ``model`` (``latest.json`` only when alone)."""
    folder = drift_folder(home, model)
    history = DriftHistory()
    if not folder.is_dir():
        return history
    files = sorted(p for p in folder.glob("*.json") if p.name != LATEST and _STEM.match(p.stem))
    if not files and (folder / LATEST).is_file():
        files = [folder / LATEST]
    for path in files[-limit:]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            history.problems.append(f"{path.name}: not readable as JSON ({exc})")
            continue
        if not isinstance(data, Mapping):
            history.problems.append(f"{path.name}: expected a JSON object")
            continue
        history.runs.append(_run(path, data))
    epoch = datetime.fromtimestamp(0, UTC)
    history.runs.sort(key=lambda r: (r.created_at or epoch, r.stem))
    return history


def is_report_stem(stem: str) -> bool:
    """True for a name that may be a report file's stem (no path separators)."""
    return bool(_STEM.match(stem)) and ".." not in stem


def latest_drift(home: Path, model: str) -> DriftRun | None:
    """The newest drift report (``latest.json`` when present), without reading the others."""
    folder = drift_folder(home, model)
    path = folder / LATEST
    if not path.is_file():
        files = sorted(p for p in folder.glob("*.json") if _STEM.match(p.stem))
        if not files:
            return None
        path = files[-1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return _run(path, data) if isinstance(data, Mapping) else None
