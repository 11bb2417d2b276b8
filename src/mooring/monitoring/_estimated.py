"""A window's estimate without labels, as both estimators return it: CBPE's for a binary
classifier (:mod:`mooring.monitoring._estimate`) and DLE's for a regression
(:mod:`mooring.monitoring._estimate_loss`), which the guardrails, the monitor and the
CLI read alike.

Examples:
    >>> found = Estimate(500, {"mae": EstimatedMetric(1.2, 1.0, 1.4)})
    >>> found.metrics["mae"].holds(1.3), found.to_dict()["metrics"]["mae"]["low"]
    (True, 1.0)
    >>> Estimate(0, {}, NO_ROWS).refused
    'the window has no scored rows'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mooring.monitoring._estimate_checks import Check

__all__ = ["LOSS_METRICS", "METRICS", "NO_ROWS", "Estimate", "EstimatedMetric"]

#: A window without a scored row.
NO_ROWS = "the window has no scored rows"
#: The estimated metrics, in the order they are shown.
METRICS = ("auc", "accuracy", "precision", "recall")
#: A regression's estimated metrics (:mod:`mooring.monitoring._estimate_loss`).
LOSS_METRICS = ("mae", "rmse")


@dataclass(frozen=True)
class EstimatedMetric:
    """A metric's estimate and its sampling band (``low`` to ``high``)."""

    value: float
    low: float
    high: float

    def holds(self, realized: float) -> bool:
        """Whether a realized value falls within the band."""
        return self.low <= realized <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Estimate:
    """A window's estimated metrics (those that exist: precision needs a row predicted
    positive), over ``rows`` scores, or why none was made.

    ``unreliable`` says why the estimate's assumption does not hold on this window (the
    scores no longer mean what they meant on the held-out rows): the metrics are kept,
    marked, but no headline number is shown or compared. ``checks`` are the checks of the
    assumption it was judged by, each with its numbers.
    """

    rows: int
    metrics: dict[str, EstimatedMetric]
    refused: str | None = None
    unreliable: str | None = None
    checks: tuple[Check, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "refused": self.refused,
            "unreliable": self.unreliable,
            "checks": [c.to_dict() for c in self.checks],
        }
