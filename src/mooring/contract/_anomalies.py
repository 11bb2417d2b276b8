"""What validation finds: each :class:`Anomaly` with the numbers behind it, the
distribution :class:`Distance` to a baseline, and the :class:`ValidationResult` that
holds them, with its text report and JSON.

Examples:
    >>> result = ValidationResult(source="new.csv", num_rows=0)
    >>> result.ok, result.to_dict()["errors"]
    (True, 0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from mooring.contract._statistics import DatasetStatistics
from mooring.formats._files import atomic_write

__all__ = ["Anomaly", "AnomalyKind", "Distance", "ValidationResult"]


class AnomalyKind(StrEnum):
    EMPTY_DATASET = "empty_dataset"
    MISSING_COLUMN = "missing_column"
    UNEXPECTED_COLUMN = "unexpected_column"
    RENAMED_COLUMN = "renamed_column"
    CONSTANT_COLUMN = "constant_column"
    TYPE_MISMATCH = "type_mismatch"
    NULL_FRACTION = "null_fraction"
    OUT_OF_RANGE = "out_of_range"
    UNSEEN_CATEGORY = "unseen_category"
    ROW_COUNT_CHANGE = "row_count_change"
    STALE_DATA = "stale_data"
    DISTRIBUTION_DRIFT = "distribution_drift"


@dataclass(frozen=True)
class Anomaly:
    """One problem found in the data, with the numbers behind it."""

    kind: AnomalyKind
    severity: str
    column: str | None
    message: str
    count: int | None = None
    fraction: float | None = None
    examples: tuple[Any, ...] = ()
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = str(self.kind)
        out["examples"] = list(self.examples)
        return {k: v for k, v in out.items() if v is not None and v != []}


@dataclass(frozen=True)
class Distance:
    """A distribution distance between the data and the baseline for one column."""

    column: str
    metric: str
    value: float
    threshold: float | None
    exceeded: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationResult:
    """All anomalies and distances of one dataset. ``ok`` is False when any is an error."""

    source: str
    num_rows: int
    anomalies: list[Anomaly] = field(default_factory=list)
    distances: list[Distance] = field(default_factory=list)
    schema_fingerprint: str = ""
    baseline_source: str | None = None
    statistics: DatasetStatistics | None = field(default=None, repr=False, compare=False)

    @property
    def errors(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity == "error"]

    @property
    def warnings(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, kind: AnomalyKind | str, column: str | None = None) -> int:
        """How many anomalies of ``kind`` (optionally on ``column``) were found."""
        return sum(
            1 for a in self.anomalies if a.kind == kind and (column is None or a.column == column)
        )

    def find(self, kind: AnomalyKind | str, column: str | None = None) -> Anomaly:
        for anomaly in self.anomalies:
            if anomaly.kind == kind and (column is None or anomaly.column == column):
                return anomaly
        raise KeyError(f"no {kind} anomaly" + (f" on {column!r}" if column else ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "num_rows": self.num_rows,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "schema_fingerprint": self.schema_fingerprint,
            "baseline": self.baseline_source,
            "anomalies": [a.to_dict() for a in self.anomalies],
            "distances": [d.to_dict() for d in self.distances],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)

    def save(self, path: str | Path) -> Path:
        return atomic_write(Path(path), self.to_json())

    def render_text(self) -> str:
        """A readable report: a headline, then one line per anomaly, then distances."""
        verdict = "PASSED" if self.ok else "FAILED"
        lines = [
            f"{verdict}: {self.source} — {self.num_rows:,} rows, "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        ]
        for a in sorted(self.anomalies, key=lambda a: (a.severity != "error", a.column or "")):
            lines.append(f"  {a.severity.upper():7} {a.kind:18} {a.column or '-':20} {a.message}")
        if self.distances:
            lines.append(f"  distances to baseline {self.baseline_source}:")
            for d in self.distances:
                mark = "!" if d.exceeded else " "
                bound = f" (threshold {d.threshold:g})" if d.threshold is not None else ""
                lines.append(f"   {mark} {d.column:20} {d.metric:15} {d.value:.4f}{bound}")
        return "\n".join(lines)
