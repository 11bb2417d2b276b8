"""The drift report: its types, the JSON of a saved report, and where reports are written.

Monitoring computes a :class:`DriftReport` (``mooring.monitoring.check_drift``) and
saves it under ``<home>/monitoring/<model>/drift/`` as ``<UTC time>.json`` (plus
``latest.json``, and the HTML page when given a renderer); the dashboard reads the
folder back with :meth:`DriftReport.from_dict`.

Example:
    >>> f = FeatureDrift(name="age", kind="numeric", status="ok", rows=10,
    ...                  metrics={"psi": 0.01}, thresholds={"psi": 0.2})
    >>> FeatureDrift.from_dict(f.to_dict()) == f
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from mooring.formats.files import atomic_write

__all__ = [
    "DriftReport",
    "FeatureDrift",
    "PredictionDrift",
    "RenderDrift",
    "SegmentDrift",
    "Status",
]

#: Renders a drift report (its ``to_dict()``) as a self-contained HTML page.
RenderDrift = Callable[[dict[str, Any]], str]
Status = Literal["ok", "drift", "insufficient_data"]


@dataclass
class FeatureDrift:
    """One feature (or output) compared with its baseline.

    ``status`` is ``ok``, ``drift``, ``insufficient_data`` (fewer present values than
    ``min_samples``) or ``no_baseline``. ``baseline`` / ``current`` hold the histogram the
    distances were computed on: ``bins`` (labels), ``shares`` and ``counts``.
    """

    name: str
    kind: str
    status: str
    rows: int
    metrics: dict[str, float | None]
    thresholds: dict[str, float | None]
    reasons: list[str] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "rows": self.rows,
            "metrics": self.metrics,
            "thresholds": self.thresholds,
            "reasons": self.reasons,
        }
        share = "out_of_range_share" if self.kind == "numeric" else "unseen_share"
        out[share] = self.metrics.get(share)
        out["baseline"] = self.baseline
        out["current"] = self.current
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            status=str(data["status"]),
            rows=int(data.get("rows", 0)),
            metrics=dict(data.get("metrics") or {}),
            thresholds=dict(data.get("thresholds") or {}),
            reasons=list(data.get("reasons") or []),
            baseline=dict(data.get("baseline") or {}),
            current=dict(data.get("current") or {}),
        )


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
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentDrift:
        """Inverse of :meth:`to_dict`."""
        return cls(
            column=str(data["column"]),
            value=str(data["value"]),
            rows=int(data.get("rows", 0)),
            status=str(data["status"]),
            features=[FeatureDrift.from_dict(f) for f in data.get("features") or []],
            note=data.get("note"),
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
        """Inverse of :meth:`to_dict`."""
        return cls(
            status=str(data["status"]),
            source=data.get("source"),
            features=[FeatureDrift.from_dict(f) for f in data.get("features") or []],
            note=data.get("note"),
        )


@dataclass
class DriftReport:
    """The verdict on one window: overall, per feature, per segment and on the outputs."""

    model: str
    version: int | None
    created_at: str
    window: dict[str, Any]
    status: Status
    features: list[FeatureDrift]
    segments: list[SegmentDrift] = field(default_factory=list)
    prediction: PredictionDrift | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

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
            "format": "mooring.drift",
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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """Inverse of :meth:`to_dict` (a saved report's JSON).

        Raises:
            KeyError: a key every report holds is missing (not a drift report).
        """
        prediction = data.get("prediction")
        return cls(
            model=str(data["model"]),
            version=data.get("version"),
            created_at=str(data["created_at"]),
            window=dict(data.get("window") or {}),
            status=data["status"],
            features=[FeatureDrift.from_dict(f) for f in data.get("features") or []],
            segments=[SegmentDrift.from_dict(s) for s in data.get("segments") or []],
            prediction=None if prediction is None else PredictionDrift.from_dict(prediction),
            settings=dict(data.get("settings") or {}),
            notes=list(data.get("notes") or []),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)

    def save(self, folder: str | Path, *, html: RenderDrift | None = None) -> dict[str, str]:
        """Write ``<stamp>.json`` and ``latest.json`` atomically; ``<stamp>.html`` with ``html``.

        ``html`` renders the page (the dashboard's
        :func:`mooring.dashboard.render_drift_html`); this layer renders nothing itself.
        """
        directory = Path(folder)
        moment = datetime.fromisoformat(self.created_at).astimezone(UTC)
        stamp = f"{moment:%Y%m%dT%H%M%S}Z"  # the name readers of the folder expect
        payload = self.to_json()
        json_path = atomic_write(directory / f"{stamp}.json", payload)
        self.files = {"json": str(json_path)}
        if html is not None:
            page = html(self.to_dict()).encode("utf-8")
            self.files["html"] = str(atomic_write(directory / f"{stamp}.html", page))
        atomic_write(directory / "latest.json", payload)
        return self.files
