"""The drift report: what one drift check found, and the folder its files are saved in.

A check writes ``<home>/monitoring/<model>/drift/<UTC stamp>.json`` (plus an ``.html``
page of the same stem) and a copy of the JSON as ``latest.json``; a report that found
drift is saved as ``<UTC stamp>-drift.json``, so :func:`prune_reports` keeps every
flagged report without reading a file. The JSON is
:meth:`DriftReport.to_dict`; :meth:`DriftReport.from_dict` reads it back. Reading is
tolerant so the dashboard can show any report ever written, including partial files
and the earliest shapes: a missing field takes a neutral default (``"unknown"``, ``0``,
``None``), a value that is not a number is recorded as ``None``, entries that are not
objects are skipped, features and segments may come as a list or as an object keyed by
name, and a histogram may be ``{bins, shares, counts}`` (what is written), ``{values,
counts}`` or ``{edges, counts}``. A report written by :meth:`DriftReport.to_dict` reads
back to the same JSON.

Examples:
    >>> report = read_report(drift_folder(home, "income") / LATEST)  # doctest: +SKIP
    >>> report.status, report.drifted  # doctest: +SKIP
    ('drift', ['age'])
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from mooring.errors import DataError
from mooring.formats._files import atomic_write

__all__ = [
    "FORMAT",
    "LATEST",
    "METRIC_OF",
    "AttributionShift",
    "DriftReport",
    "FeatureDrift",
    "Histogram",
    "PredictionDrift",
    "RenderDrift",
    "SegmentDrift",
    "drift_folder",
    "parse_time",
    "prune_reports",
    "read_report",
    "report_stem",
    "stem_time",
]

#: The ``format`` field of every report file.
FORMAT = "mooring.drift"
#: The copy of the newest report in a drift folder.
LATEST = "latest.json"
#: The stem suffix of a report that found drift.
FLAGGED = "-drift"
#: Threshold name → the metric it bounds (the report keys thresholds by the former).
METRIC_OF = {
    "psi": "psi",
    "jensen_shannon": "jensen_shannon",
    "wasserstein": "wasserstein",
    "ks": "ks",
    "linf": "linf",
    "out_of_range": "out_of_range_share",
    "unseen": "unseen_share",
    "missing": "missing_change",
}
_STAMP = re.compile(r"(\d{8}T\d{6}(?:\.\d+)?Z?)")


def drift_folder(home: Path, model: str) -> Path:
    """Where the drift reports of ``model`` live."""
    return home / "monitoring" / model / "drift"


def report_stem(created_at: str) -> str:
    """The file stem a report created at ``created_at`` (ISO 8601) is saved under.

    Examples:
        >>> report_stem("2024-05-01T14:00:00.123+02:00")
        '20240501T120000Z'
    """
    return f"{datetime.fromisoformat(created_at).astimezone(UTC):%Y%m%dT%H%M%S}Z"


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time or a file stamp (``20240501T120000Z``) as an aware datetime, else None.

    Examples:
        >>> parse_time("20240501T120000Z").isoformat()
        '2024-05-01T12:00:00+00:00'
    """
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


def stem_time(stem: str) -> datetime | None:
    """The time stamped in a report file's stem (see :func:`report_stem`), if any."""
    match = _STAMP.search(stem)
    return parse_time(match.group(1)) if match else None


def _number(value: Any) -> float | None:
    """A finite JSON number as it is (an int stays an int, so it writes back the same)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _numbers(data: Any) -> dict[str, float | None]:
    if not isinstance(data, Mapping):
        return {}
    return {str(key): _number(value) for key, value in data.items()}


def _labels(data: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, Mapping) else {}


def _strings(data: Any) -> list[str]:
    return [str(x) for x in data] if isinstance(data, list) else []


def _items(data: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects of a list (keyed ``""``) or of an object keyed by name; the rest skipped."""
    if isinstance(data, Mapping):
        pairs = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        pairs = [("", v) for v in data]
    else:
        return []
    return [(key, value) for key, value in pairs if isinstance(value, Mapping)]


def _sequence(value: Any) -> Sequence[Any] | None:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return None


def _edge(value: Any) -> str:
    number = _number(value)
    return str(value) if number is None else f"{number:.4g}"


def _edge_labels(edges: Sequence[Any], n: int) -> list[str]:
    """Bin labels from edges: ``n + 1`` edges (closed bins), ``n - 1`` (open outer bins)."""
    e = [_edge(x) for x in edges]
    if len(e) == n + 1:
        return [f"{e[i]}–{e[i + 1]}" for i in range(n)]
    if len(e) == n - 1 and n >= 2:
        return [f"< {e[0]}"] + [f"{e[i]}–{e[i + 1]}" for i in range(n - 2)] + [f"≥ {e[-1]}"]
    if len(e) == n:
        return [f"≥ {x}" for x in e]
    return [f"bin {i + 1}" for i in range(n)]


@dataclass(frozen=True)
class Histogram:
    """One distribution over labelled bins (numeric ranges or categories).

    ``shares`` sum to one; ``counts`` are the shares times the rows they were measured on.
    """

    bins: tuple[str, ...]
    shares: tuple[float, ...]
    counts: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping: ``{"bins": [...], "shares": [...], "counts": [...]}``."""
        return {"bins": list(self.bins), "shares": list(self.shares), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: Any) -> Histogram | None:
        """Read ``{bins|values|edges, counts[, shares]}``; None without counts.

        Examples:
            >>> Histogram.from_dict({"edges": [0, 10, 20], "counts": [1, 3]}).bins
            ('0–10', '10–20')
        """
        if not isinstance(data, Mapping):
            return None
        raw_counts = _sequence(data.get("counts"))
        if raw_counts is None:
            return None
        counts = tuple(c if (c := _number(x)) is not None else 0.0 for x in raw_counts)
        n = len(counts)
        values = _sequence(data.get("bins", data.get("values")))
        edges = _sequence(data.get("edges"))
        if values is not None and len(values) == n:
            bins = ["(missing)" if v is None else str(v) for v in values]
        elif edges is not None:
            bins = _edge_labels(edges, n)
        else:
            bins = [f"bin {i + 1}" for i in range(n)]
        raw_shares = _sequence(data.get("shares"))
        if raw_shares is not None and len(raw_shares) == n:
            shares = tuple(s if (s := _number(x)) is not None else 0.0 for x in raw_shares)
        else:
            total = sum(counts)
            shares = tuple(c / total if total > 0 else 0.0 for c in counts)
        return cls(tuple(bins), shares, counts)


def _histogram_dict(histogram: Histogram | None) -> dict[str, Any]:
    return {} if histogram is None else histogram.to_dict()


@dataclass
class FeatureDrift:
    """One feature (or output) compared with its baseline.

    ``status`` is ``ok``, ``drift``, ``insufficient_data`` (fewer present values than
    ``min_samples``) or ``no_baseline``. ``metrics`` holds every distance and share
    (``None`` where undefined); ``thresholds`` is keyed by threshold name (see
    :data:`METRIC_OF`), ``None`` where the threshold is off; ``natural`` the natural
    variation beside each, by the same keys, and ``natural_kind`` where it comes from
    (``random``, ``consecutive``, ``later`` time blocks in training, ``sampling``
    noise at the window's rows, or — for the unseen share — ``own_time``, ``own_file``,
    ``own_random``: the training period's own rate of new values). ``baseline`` /
    ``current`` are the histograms the distances were computed on.
    """

    name: str
    kind: str
    status: str
    rows: int
    metrics: dict[str, float | None]
    thresholds: dict[str, float | None]
    reasons: list[str] = field(default_factory=list)
    baseline: Histogram | None = None
    current: Histogram | None = None
    natural: dict[str, float | None] = field(default_factory=dict)
    natural_kind: dict[str, str] = field(default_factory=dict)

    @property
    def measured(self) -> dict[str, float]:
        """The metrics that have a value."""
        return {k: v for k, v in self.metrics.items() if v is not None and math.isfinite(v)}

    @property
    def bounds(self) -> dict[str, float]:
        """The thresholds that are set, keyed by the metric each one bounds."""
        measured = self.measured
        return {
            (key if key in measured else METRIC_OF.get(key, key)): value
            for key, value in self.thresholds.items()
            if value is not None
        }

    @property
    def drifted(self) -> bool:
        """The recorded verdict; for a report without one, any metric past its threshold."""
        if self.status in ("drift", "drifted"):
            return True
        if self.status in ("ok", "insufficient_data"):
            return False
        measured = self.measured
        return any(measured.get(k, 0.0) > t for k, t in self.bounds.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "rows": self.rows,
            "metrics": self.metrics,
            "thresholds": self.thresholds,
            "natural": self.natural,
            "natural_kind": self.natural_kind,
            "reasons": self.reasons,
        }
        share = "out_of_range_share" if self.kind == "numeric" else "unseen_share"
        out[share] = self.metrics.get(share)
        out["baseline"] = _histogram_dict(self.baseline)
        out["current"] = _histogram_dict(self.current)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "?") -> FeatureDrift:
        """Read :meth:`to_dict`'s mapping; ``name`` when the mapping names no feature."""
        return cls(
            name=str(data.get("name") or data.get("feature") or name),
            kind=str(data.get("kind") or "unknown"),
            status=str(data.get("status") or "unknown"),
            rows=_count(data.get("rows")) or 0,
            metrics=_numbers(data.get("metrics")),
            thresholds=_numbers(data.get("thresholds")),
            reasons=_strings(data.get("reasons")),
            baseline=Histogram.from_dict(data.get("baseline")),
            current=Histogram.from_dict(data.get("current")),
            natural=_numbers(data.get("natural")),
            natural_kind=_labels(data.get("natural_kind")),
        )


def _features(data: Any) -> list[FeatureDrift]:
    return [FeatureDrift.from_dict(value, key or "?") for key, value in _items(data)]


@dataclass
class SegmentDrift:
    """The features of one segment (``column = value``) against that segment's training rows."""

    column: str
    value: str
    rows: int
    status: str
    features: list[FeatureDrift] = field(default_factory=list)
    note: str | None = None

    @property
    def name(self) -> str:
        """``column=value``."""
        return f"{self.column}={self.value}" if self.value else self.column

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "column": self.column,
            "value": self.value,
            "rows": self.rows,
            "status": self.status,
            "drifted": self.drifted,
            "note": self.note,
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "?") -> SegmentDrift:
        """Read :meth:`to_dict`'s mapping (or one naming the segment ``column=value``)."""
        column, value = data.get("column"), data.get("value")
        if column is None:
            label = str(data.get("name") or data.get("segment") or name)
            column, _, value = label.partition("=")
        return cls(
            column=str(column),
            value="" if value is None else str(value),
            rows=_count(data.get("rows")) or 0,
            status=str(data.get("status") or "unknown"),
            features=_features(data.get("features")),
            note=_text(data.get("note")),
        )


@dataclass
class PredictionDrift:
    """The model's outputs in the window against their evaluation-time distribution."""

    status: str
    source: str | None
    features: list[FeatureDrift] = field(default_factory=list)
    note: str | None = None

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "status": self.status,
            "source": self.source,
            "drifted": self.drifted,
            "note": self.note,
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionDrift:
        """Read :meth:`to_dict`'s mapping, or one feature-like mapping (the earliest shape)."""
        if "features" in data:
            features = _features(data["features"])
        else:
            single = FeatureDrift.from_dict(data, "prediction")
            features = [single] if single.measured or single.baseline is not None else []
        return cls(
            status=str(data.get("status") or "unknown"),
            source=_text(data.get("source")),
            features=features,
            note=_text(data.get("note")),
        )


@dataclass
class AttributionShift:
    """What moved the predictions in a drifted window: each input column's mean
    attribution over the window's rows less its mean over the evaluation's, in the
    explanation's ``unit``.

    Attributions sum to the explained output minus a fixed baseline (the mean output
    over the model's reference rows), so the shifts sum to ``moved``, the change of the
    mean explained output: they split that change between the columns. Their absolute
    values add up to :attr:`absolute`, shown beside ``moved``: far above it, the shifts
    offset each other. ``rows`` window rows were explained, against ``reference_rows``;
    each shift's ``noise`` is the half-width of its 95% interval from the two samples'
    spread (a shift within it may be the draw of the rows, not the window). Which columns
    are beyond their noise is decided once (``beyond``, written to the JSON), and the
    report's page and ``mooring drift`` read it from there. ``note`` says why nothing was
    explained (``shifts`` then empty).

    Examples:
        >>> s = AttributionShift("probability of >50K", "probability", 200, 200, 0.04,
        ...                      {"age": 0.06, "sex": -0.02}, {"age": 0.01, "sex": 0.03})
        >>> s.largest(1), s.beyond_columns(), round(s.absolute, 3)
        ([('age', 0.06)], ['age'], 0.08)
    """

    output: str
    unit: str
    rows: int
    reference_rows: int
    moved: float | None
    shifts: dict[str, float | None] = field(default_factory=dict)
    noise: dict[str, float | None] = field(default_factory=dict)
    note: str | None = None
    #: The columns beyond their noise, largest shift first (None: decide from ``noise``).
    beyond: list[str] | None = None

    def beyond_noise(self, column: str) -> bool:
        """Whether ``column``'s shift is larger than its noise (True where none is known)."""
        return column in self.beyond_columns()

    def beyond_columns(self) -> list[str]:
        """The columns whose shift is beyond its noise, largest first: the one answer the
        JSON, the page and the command line give."""
        if self.beyond is not None:
            return list(self.beyond)
        return [
            column
            for column, shift in self.largest(len(self.shifts))
            if (noise := self.noise.get(column)) is None or abs(shift) > noise
        ]

    @property
    def absolute(self) -> float:
        """The sum of the shifts' absolute values (``moved`` is their signed sum)."""
        return float(sum(abs(v) for v in self.shifts.values() if v is not None))

    def largest(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` columns whose mean attribution moved most, either way."""
        measured = [(k, v) for k, v in self.shifts.items() if v is not None]
        return sorted(measured, key=lambda kv: -abs(kv[1]))[:n]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "output": self.output,
            "unit": self.unit,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "moved": self.moved,
            "sum_of_absolute_shifts": self.absolute,
            "shifts": self.shifts,
            "noise": self.noise,
            "beyond_noise": self.beyond_columns(),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributionShift:
        """Read :meth:`to_dict`'s mapping, tolerating missing and non-numeric values."""
        beyond = data.get("beyond_noise")
        return cls(
            output=str(data.get("output") or ""),
            unit=str(data.get("unit") or ""),
            rows=_count(data.get("rows")) or 0,
            reference_rows=_count(data.get("reference_rows")) or 0,
            moved=_number(data.get("moved")),
            shifts=_numbers(data.get("shifts")),
            noise=_numbers(data.get("noise")),
            note=_text(data.get("note")),
            beyond=_strings(beyond) if isinstance(beyond, list) else None,
        )


@dataclass
class DriftReport:
    """The verdict on one window: overall, per feature, per segment and on the outputs.

    ``window`` is ``{"rows", "start", "end"}`` (ISO times or None); ``files`` names the
    files :meth:`save` wrote and is not part of the JSON.
    """

    model: str
    version: int | None
    created_at: str
    window: dict[str, Any]
    status: str
    features: list[FeatureDrift]
    segments: list[SegmentDrift] = field(default_factory=list)
    prediction: PredictionDrift | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    #: What moved the predictions (a drifted window of a version with explanations).
    attributions: AttributionShift | None = None

    @property
    def drifted(self) -> list[str]:
        """Drifted features (overall), then drifted outputs (``output.*``)."""
        names = [f.name for f in self.features if f.drifted]
        if self.prediction is not None:
            names += self.prediction.drifted
        return names

    def feature(self, name: str) -> FeatureDrift:
        """The result of one feature (or output) by name."""
        for f in [*self.features, *(self.prediction.features if self.prediction else [])]:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping (the shape of the saved ``.json`` file)."""
        return {
            "format": FORMAT,
            "model": self.model,
            "version": self.version,
            "created_at": self.created_at,
            "window": self.window,
            "status": self.status,
            "drifted": self.drifted,
            "segments_drifted": [
                f"{s.column}={s.value}" for s in self.segments if s.status == "drift"
            ],
            "features": [f.to_dict() for f in self.features],
            "segments": [s.to_dict() for s in self.segments],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "settings": self.settings,
            "notes": self.notes,
            "attributions": None if self.attributions is None else self.attributions.to_dict(),
        }

    def to_json(self) -> bytes:
        """The saved file's bytes (indented JSON)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """Read a report file's mapping, tolerating older and partial shapes (see the module).

        Examples:
            >>> DriftReport.from_dict({"status": "ok", "window": {"rows": 10}}).window
            {'rows': 10, 'start': None, 'end': None}
        """
        raw_window = data.get("window")
        window: Mapping[str, Any] = raw_window if isinstance(raw_window, Mapping) else {}
        version = data.get("version")
        prediction = data.get("prediction")
        settings = data.get("settings")
        attributions = data.get("attributions")
        return cls(
            model=str(data.get("model") or ""),
            version=version if isinstance(version, int) and not isinstance(version, bool) else None,
            created_at=str(data.get("created_at") or ""),
            window={
                "rows": _count(window.get("rows")),
                "start": _text(window.get("start")),
                "end": _text(window.get("end")),
            },
            status=str(data.get("status") or "unknown"),
            features=_features(data.get("features")),
            segments=[SegmentDrift.from_dict(v, k or "?") for k, v in _items(data.get("segments"))],
            prediction=PredictionDrift.from_dict(prediction)
            if isinstance(prediction, Mapping)
            else None,
            settings=dict(settings) if isinstance(settings, Mapping) else {},
            notes=_strings(data.get("notes")),
            attributions=AttributionShift.from_dict(attributions)
            if isinstance(attributions, Mapping)
            else None,
        )

    def save(self, folder: str | Path, *, html: RenderDrift | None = None) -> dict[str, str]:
        """Write ``<stamp>.json`` and ``latest.json``, and with ``html`` the ``<stamp>.html`` page.

        ``html`` renders the page (the dashboard's ``render_drift_html``; the layers below
        the dashboard render nothing). Each file is written atomically; the stamp is
        :func:`report_stem` of ``created_at``. Returns (and records in ``files``) the paths
        of the JSON and HTML files.
        """
        directory = Path(folder)
        stem = report_stem(self.created_at) + (FLAGGED if self.status == "drift" else "")
        payload = self.to_json()
        self.files = {"json": str(atomic_write(directory / f"{stem}.json", payload))}
        if html is not None:
            page = html(self).encode("utf-8")
            self.files["html"] = str(atomic_write(directory / f"{stem}.html", page))
        atomic_write(directory / LATEST, payload)
        return self.files


def prune_reports(
    folder: str | Path, *, max_age_s: float, max_files: int, now: datetime | None = None
) -> list[Path]:
    """Remove report files past the retention policy; return what was removed.

    A report (its ``.json`` and ``.html``) is removed when it is older than ``max_age_s``
    or not among the newest ``max_files`` reports. Never removed: ``latest.json``, the
    newest report, and every report that found drift (``-drift`` stems). The page goes
    before the JSON, so a crash in between leaves a JSON without its page (readable),
    never a page without its data for long: an orphan page is removed by the next prune.

    Examples:
        >>> prune_reports(drift_folder(home, "income"), max_age_s=7 * 86400,
        ...               max_files=2000)  # doctest: +SKIP
        []
    """
    directory = Path(folder)
    if not directory.is_dir():
        return []
    now = now or datetime.now(UTC)
    stems: dict[str, datetime] = {}
    pages: set[str] = set()
    for path in directory.iterdir():
        if path.name == LATEST or path.suffix not in (".json", ".html"):
            continue
        stamp = stem_time(path.stem)
        if stamp is None:
            continue
        if path.suffix == ".json":
            stems[path.stem] = stamp
        else:
            pages.add(path.stem)
    ordered = sorted(stems, key=lambda stem: (stems[stem], stem), reverse=True)
    removed: list[Path] = []
    for index, stem in enumerate(ordered):
        keep = index == 0 or stem.endswith(FLAGGED)
        fresh = (now - stems[stem]).total_seconds() <= max_age_s and index < max_files
        if keep or fresh:
            continue
        for suffix in (".html", ".json"):
            target = directory / f"{stem}{suffix}"
            if target.exists():
                target.unlink(missing_ok=True)
                removed.append(target)
    for stem in pages - set(stems):
        target = directory / f"{stem}.html"
        target.unlink(missing_ok=True)
        removed.append(target)
    return removed


def read_report(path: Path) -> DriftReport:
    """Read one report file.

    Raises:
        DataError: the file cannot be read, is not JSON, or is not a JSON object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path.name}: not readable as JSON ({exc})") from exc
    if not isinstance(data, Mapping):
        raise DataError(f"{path.name}: expected a JSON object")
    return DriftReport.from_dict(data)


#: Renders a drift report as a self-contained HTML page (the dashboard's ``render_drift_html``).
RenderDrift = Callable[[DriftReport], str]
