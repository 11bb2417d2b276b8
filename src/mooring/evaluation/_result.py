"""The typed result of an evaluation, its JSON form, and where it is saved.

Examples:
    >>> result = evaluate(task="binary", labels=y, scores=p, table=None,
    ...                   config=EvaluationConfig())  # doctest: +SKIP
    >>> result.metric("auc")  # doctest: +SKIP
    0.91
    >>> result.save(home / "reports" / "v3")  # report.html + report.json  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

from mooring.config._evaluation import EvaluationConfig
from mooring.evaluation._bootstrap import Interval
from mooring.evaluation._calibration import Calibration
from mooring.evaluation._metrics import FloatArray, Task
from mooring.evaluation._thresholds import CostSummary, Sweep, jsonable
from mooring.formats._candidate import CandidateRecord
from mooring.formats._files import atomic_write

if TYPE_CHECKING:
    import pyarrow as pa

    from mooring.formats._gate import DecisionRecord

__all__ = [
    "Comparison",
    "EvaluationResult",
    "Prior",
    "RenderEvaluation",
    "SliceResult",
    "WindowResult",
    "WindowsSummary",
]

OVERALL = "overall"
#: Renders an evaluation (and its gate decision) as a self-contained HTML page.
RenderEvaluation = Callable[["EvaluationResult", "DecisionRecord | None"], str]


@dataclass(frozen=True)
class SliceResult:
    """Metrics on one slice; ``scored`` is False below the minimum slice size."""

    name: str
    columns: tuple[str, ...]
    values: tuple[str, ...]
    size: int
    metrics: dict[str, float | None]
    scored: bool
    flagged: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "name": self.name,
            "columns": list(self.columns),
            "values": list(self.values),
            "size": self.size,
            "scored": self.scored,
            "flagged": self.flagged,
            "note": self.note,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class WindowResult:
    """Metrics on one time window (or block of rows)."""

    name: str
    size: int
    metrics: dict[str, float | None]
    scored: bool
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class WindowsSummary:
    """Per-window metrics and the spread (best minus worst) of each metric across windows."""

    column: str | None
    freq: str | int
    primary: str
    windows: list[WindowResult]
    spread: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "column": self.column,
            "freq": self.freq,
            "primary": self.primary,
            "spread": self.spread,
            "windows": [w.to_dict() for w in self.windows],
        }


@dataclass(frozen=True)
class Comparison:
    """Candidate vs baseline predictions on the same records."""

    rows: int
    flip_rate: float | None  # share of rows whose predicted class differs (classification)
    mean_abs_diff: float  # mean |difference| of predictions (total variation for classes)
    fixes: int | None = None  # flips where the candidate is right and the baseline wrong
    harms: int | None = None  # flips where the baseline is right and the candidate wrong

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dict(self.__dict__)


#: A prior read from the evaluated rows themselves, for want of the training label's.
EVALUATED_ROWS = "the evaluated rows"


@dataclass(frozen=True)
class Prior:
    """What a model that learned nothing from the features would predict, and whence.

    ``frequencies``: each class's share in the training labels, in the label
    vocabulary's order (classification); ``mean``: the training labels' mean
    (regression). ``source`` says where they were read: the training data's statistics,
    the model's label encoding, or (for want of both) :data:`EVALUATED_ROWS`.

    >>> Prior("the training data's statistics", frequencies=(0.83, 0.17)).to_dict()["source"]
    "the training data's statistics"
    """

    source: str
    frequencies: tuple[float, ...] | None = None
    mean: float | None = None

    @property
    def from_training(self) -> bool:
        """Read from the training data, not from the evaluated rows."""
        return self.source != EVALUATED_ROWS

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "source": self.source,
            "frequencies": None if self.frequencies is None else list(self.frequencies),
            "mean": self.mean,
        }


@dataclass
class EvaluationResult:
    """Everything one evaluation computed. JSON via :meth:`to_json`, files via :meth:`save`."""

    task: Task
    rows: int
    config: EvaluationConfig
    metrics: dict[str, float | None]
    intervals: dict[str, Interval]
    calibration: Calibration
    data_fingerprint: str
    label_vocabulary: list[str] | None = None
    operating_threshold: float | None = None
    threshold_source: str | None = None
    per_class: dict[str, Any] | None = None
    sweep: Sweep | None = None
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    cost: CostSummary | None = None
    slices: list[SliceResult] = field(default_factory=list)
    windows: WindowsSummary | None = None
    warnings: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    #: The evaluated model: its ``kind``, and for trees ``feature_importances``.
    model: dict[str, Any] = field(default_factory=dict)
    #: Every candidate of a run side by side (see :mod:`mooring.evaluation._candidates`).
    candidates: tuple[CandidateRecord, ...] = ()
    #: The training label's class frequencies or mean: what the prior gate compares with.
    prior: Prior | None = None
    #: Prediction arrays kept in memory for candidate-vs-baseline comparison; never saved.
    predictions: FloatArray | None = field(default=None, repr=False)
    #: The encoded labels, kept in memory for the default gates' intervals; never saved.
    labels: npt.NDArray[np.generic] | None = field(default=None, repr=False)
    #: The evaluated rows' input columns (the label left out), kept in memory for the
    #: small model of a regression's error (monitoring/_estimate_loss.py); never saved.
    features: pa.Table | None = field(default=None, repr=False)

    def slice(self, name: str) -> SliceResult | None:
        """The slice called ``name`` (e.g. ``"sex=Female"``), if it exists."""
        return next((s for s in self.slices if s.name == name), None)

    def metric(self, name: str, slice: str | None = None) -> float | None:
        """A metric's value overall or on a slice; ``None`` when not computed."""
        return self.lookup(name, slice)[0]

    def lookup(self, name: str, slice: str | None = None) -> tuple[float | None, str]:
        """(value, why it is missing) for a metric overall or on a slice."""
        if name in ("flip_rate", "mean_abs_diff"):
            if self.comparison is None:
                return None, "needs a baseline model's predictions on the same records"
            if slice is not None:
                return None, f"'{name}' is computed overall only, not per slice"
            return getattr(self.comparison, name), ""
        if slice is None or slice == OVERALL:
            metrics = self.metrics
        else:
            found = self.slice(slice)
            if found is None:
                known = ", ".join(s.name for s in self.slices[:8]) or "none configured"
                return None, f"slice '{slice}' does not exist (slices: {known})"
            if not found.scored:
                return None, f"slice '{slice}' has {found.size} rows, below min_slice_size"
            metrics = found.metrics
        if name not in metrics:
            return None, f"metric '{name}' is not computed for {self.task} models"
        value = metrics[name]
        if value is None:
            return None, f"metric '{name}' is undefined on this data (e.g. a single class)"
        return value, ""

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain JSON-able dict (NaN becomes null)."""
        data: dict[str, Any] = {
            "task": self.task,
            "rows": self.rows,
            "data_fingerprint": self.data_fingerprint,
            "label_vocabulary": self.label_vocabulary,
            "operating_threshold": self.operating_threshold,
            "threshold_source": self.threshold_source,
            "metrics": self.metrics,
            "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
            "per_class": self.per_class,
            "calibration": self.calibration.to_dict(),
            "threshold_sweep": None if self.sweep is None else self.sweep.to_dict(),
            "curves": self.curves,
            "cost": None if self.cost is None else self.cost.to_dict(),
            "slices": [s.to_dict() for s in self.slices],
            "windows": None if self.windows is None else self.windows.to_dict(),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "model": self.model,
            "candidates": [c.to_dict() for c in self.candidates],
            "prior": None if self.prior is None else self.prior.to_dict(),
            "warnings": list(self.warnings),
            "config": self.config.model_dump(mode="json"),
        }
        return jsonable(data)  # type: ignore[no-any-return]

    def to_json(self, decision: DecisionRecord | None = None) -> bytes:
        """The report as indented JSON bytes; includes the gate decision when given."""
        data = self.to_dict()
        if decision is not None:
            data["decision"] = decision.to_dict()
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)

    def save(
        self,
        directory: str | Path,
        decision: DecisionRecord | None = None,
        *,
        html: RenderEvaluation | None = None,
    ) -> Path:
        """Write ``report.json`` and, with ``html``, a self-contained ``report.html``.

        ``html`` renders the page (the dashboard's
        :func:`mooring.dashboard.render_evaluation_html`); this layer renders nothing itself.
        Returns the folder.
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "report.json", self.to_json(decision))
        if html is not None:
            atomic_write(folder / "report.html", html(self, decision).encode("utf-8"))
        return folder
