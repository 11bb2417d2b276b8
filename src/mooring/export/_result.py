"""What a TF Lite export measured and decided: :class:`LiteExport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mooring.registry._records import VersionArtifact

__all__ = ["AGREEMENT_TOLERANCE", "LiteExport"]

#: Largest mean absolute difference between the interpreter's and the SavedModel's
#: outputs (probabilities or values in the label's unit ÷ its std) expected per mode.
AGREEMENT_TOLERANCE: dict[str, float] = {"float16": 0.02, "dynamic": 0.02, "int8": 0.05}


@dataclass
class LiteExport:
    """A TF Lite export of one registered version: sizes, metrics, latency, gate decision.

    ``passed`` is the gate's decision; only a passing export is attached to the
    version in the registry (``artifact`` is then its record). ``reason`` says
    why in one paragraph a person can act on.
    """

    name: str
    version: int
    mode: str
    passed: bool
    reason: str
    path: Path | None = None
    sha256: str | None = None
    savedmodel_bytes: int = 0
    tflite_bytes: int | None = None
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    deltas: dict[str, float | None] = field(default_factory=dict)
    gate: list[dict[str, Any]] = field(default_factory=list)
    max_metric_drop: float = 0.01
    agreement: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)
    select_tf_ops: tuple[str, ...] = ()
    float_ops: tuple[str, ...] = ()
    conversion_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    artifact: VersionArtifact | None = None
    folder: Path | None = None

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def registered(self) -> bool:
        """Whether the export was attached to the version in the registry."""
        return self.artifact is not None

    @property
    def size_ratio(self) -> float | None:
        """TF Lite size ÷ SavedModel size."""
        if not self.tflite_bytes or not self.savedmodel_bytes:
            return None
        return self.tflite_bytes / self.savedmodel_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (what ``--json`` prints and the registry stores as details)."""
        return {
            "name": self.name,
            "version": self.version,
            "mode": self.mode,
            "passed": self.passed,
            "registered": self.registered,
            "reason": self.reason,
            "path": None if self.path is None else str(self.path),
            "sha256": self.sha256,
            "size": {
                "savedmodel_bytes": self.savedmodel_bytes,
                "tflite_bytes": self.tflite_bytes,
                "ratio": self.size_ratio,
            },
            "metrics": self.metrics,
            "deltas": self.deltas,
            "gate": self.gate,
            "max_metric_drop": self.max_metric_drop,
            "agreement": self.agreement,
            "latency": self.latency,
            "calibration": self.calibration,
            "evaluation": self.evaluation,
            "select_tf_ops": list(self.select_tf_ops),
            "float_ops": list(self.float_ops),
            "conversion_seconds": self.conversion_seconds,
            "warnings": list(self.warnings),
            "artifact": None if self.artifact is None else self.artifact.artifact,
        }

    def details(self) -> dict[str, Any]:
        """What is stored with the registry artifact: :meth:`to_dict` without local paths."""
        data = self.to_dict()
        for key in ("path", "registered", "artifact"):
            data.pop(key)
        return data
