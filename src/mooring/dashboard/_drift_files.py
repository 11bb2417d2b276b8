"""A model's drift reports as the dashboard lists them: ``<home>/monitoring/<model>/drift/*.json``.

The monitoring layer writes the files; each is read here with
:func:`mooring.formats._drift.read_report` (tolerant of older and partial reports). A file
that cannot be read is named in ``problems`` instead of failing the page.

Examples:
    >>> history = read_drift_history(Path(".mooring"), "income")  # doctest: +SKIP
    >>> history.latest.status  # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mooring.errors import DataError
from mooring.formats._drift import (
    LATEST,
    DriftReport,
    FeatureDrift,
    SegmentDrift,
    drift_folder,
    parse_time,
    read_report,
    stem_time,
)

__all__ = [
    "DriftHistory",
    "DriftRun",
    "is_report_stem",
    "latest_drift",
    "read_drift_history",
]

#: Distances offered first on the drift page (the others follow in the files' order).
DISTANCE_ORDER = ("psi", "jensen_shannon", "wasserstein", "ks", "linf")
# Stems the pages accept in URLs and list: no path separators, bounded length.
_STEM = re.compile(r"^[A-Za-z0-9._:+-]{1,80}$")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class DriftRun:
    """One report file: its stem, the report, when it was made and whether its page exists."""

    stem: str
    report: DriftReport
    created_at: datetime | None
    has_html: bool

    @classmethod
    def read(cls, path: Path) -> DriftRun:
        """Read ``path``; the time comes from the report, else from the file's stem.

        Raises:
            DataError: the file is not a JSON object.
        """
        report = read_report(path)
        created = parse_time(report.created_at) or stem_time(path.stem)
        return cls(path.stem, report, created, path.with_suffix(".html").is_file())

    @property
    def when(self) -> str:
        """The report time for people (UTC, to the second)."""
        if self.created_at is None:
            return self.stem
        return self.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    # What the pages show of the report, by the names the templates use.
    @property
    def status(self) -> str:
        return self.report.status

    @property
    def version(self) -> int | None:
        return self.report.version

    @property
    def rows(self) -> int | None:
        rows = self.report.window.get("rows")
        return rows if isinstance(rows, int) else None

    @property
    def window_start(self) -> str | None:
        return _text(self.report.window.get("start"))

    @property
    def window_end(self) -> str | None:
        return _text(self.report.window.get("end"))

    @property
    def drifted(self) -> list[str]:
        return self.report.drifted

    @property
    def features(self) -> list[FeatureDrift]:
        return self.report.features

    @property
    def prediction(self) -> list[FeatureDrift]:
        """The model's outputs compared with their evaluation-time distribution."""
        return self.report.prediction.features if self.report.prediction else []

    @property
    def segments(self) -> list[SegmentDrift]:
        return self.report.segments

    def feature(self, name: str) -> FeatureDrift | None:
        """The named feature's result, if the report has one."""
        return next((f for f in self.report.features if f.name == name), None)


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
                measured = feature.measured
                for key in feature.bounds:
                    if key in measured and key not in with_threshold:
                        with_threshold.append(key)
                for key in measured:
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
            history.runs.append(DriftRun.read(path))
        except DataError as exc:
            history.problems.append(str(exc))
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
        return DriftRun.read(path)
    except DataError:
        return None
