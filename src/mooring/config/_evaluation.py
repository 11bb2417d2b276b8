"""``[evaluation]``: metrics, costs, bootstrap, windows and gates."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from mooring.config._base import Section


class CostConfig(Section):
    """``[evaluation.cost]``: what each kind of decision costs, in any one currency."""

    false_positive: float = Field(1.0, ge=0.0, description="Cost of one false positive.")
    false_negative: float = Field(1.0, ge=0.0, description="Cost of one false negative.")
    true_positive_benefit: float = Field(
        0.0, ge=0.0, description="Benefit of one true positive (subtracted from the cost)."
    )


class ThresholdTarget(Section):
    """``threshold = { precision = 0.8 }`` or ``{ recall = 0.5 }``: a threshold chosen for a target.

    Precision: the lowest threshold whose precision on the evaluated rows reaches the
    target (the most positives found at that precision). Recall: the highest threshold
    whose recall reaches it (the fewest false alarms at that recall). Exactly one of the
    two. Example::

        [evaluation]
        threshold = { precision = 0.8 }
    """

    precision: float | None = Field(
        None, gt=0.0, le=1.0, description="Least precision at the operating threshold."
    )
    recall: float | None = Field(
        None, gt=0.0, le=1.0, description="Least recall at the operating threshold."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ThresholdTarget:
        if (self.precision is None) == (self.recall is None):
            raise ValueError(
                "a threshold target names exactly one of precision or recall, e.g. "
                "threshold = { precision = 0.8 } or threshold = { recall = 0.5 }"
            )
        return self

    @property
    def metric(self) -> str:
        """``"precision"`` or ``"recall"``."""
        return "precision" if self.precision is not None else "recall"

    @property
    def value(self) -> float:
        """The target."""
        found = self.precision if self.precision is not None else self.recall
        assert found is not None
        return found

    @property
    def source(self) -> str:
        """How the recorded threshold was chosen: ``precision_target`` or ``recall_target``."""
        return f"{self.metric}_target"


#: How a threshold the evaluation chose is recorded (``threshold_source``); a number in
#: the configuration is recorded as ``configured``.
CHOSEN_THRESHOLD_SOURCES = ("f1_optimal", "cost_optimal", "precision_target", "recall_target")


class BootstrapConfig(Section):
    """``[evaluation.bootstrap]``: seeded bootstrap confidence intervals."""

    samples: int = Field(1000, ge=0, le=100_000, description="Resamples; 0 turns intervals off.")
    seed: int = Field(
        0, ge=0, description="Seed of the resampling: the same seed gives the same intervals."
    )
    confidence: float = Field(
        0.95, gt=0.0, lt=1.0, description="Coverage of the confidence intervals (0 to 1)."
    )
    metrics: list[str] | None = Field(
        None, description="Metrics to bootstrap; default: the task's headline metrics."
    )


class WindowsConfig(Section):
    """``[evaluation.windows]``: metrics per time window (or per block of N ordered rows)."""

    column: str | None = Field(
        None, description="Timestamp or ordering column; default: [data] timestamp."
    )
    freq: Literal["day", "week", "month"] | int = Field(
        "week", description="'day', 'week', 'month' (timestamp column) or N rows per window."
    )
    min_size: int = Field(30, ge=1, description="Windows with fewer rows are reported, not scored.")

    @field_validator("freq")
    @classmethod
    def _positive_rows(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 1:
            raise ValueError("a number of rows per window must be at least 1, e.g. freq = 10000")
        return value


class ChangeThresholdConfig(Section):
    """A change threshold against the production model: diff = candidate − baseline."""

    direction: Literal["higher", "lower"] = Field(
        description="'higher' when a larger value is better (auc), 'lower' otherwise (log_loss)."
    )
    absolute: float | None = Field(None, description="Bound on diff.")
    relative: float | None = Field(None, description="Bound on diff ÷ baseline.")

    @model_validator(mode="after")
    def _one_bound(self) -> ChangeThresholdConfig:
        if self.absolute is None and self.relative is None:
            raise ValueError(
                "a change threshold needs 'absolute' or 'relative' (or both), "
                "e.g. change = { direction = 'higher', absolute = -0.01 }"
            )
        return self


class GateConfig(Section):
    """``[[evaluation.gates]]``: one validation gate on one metric, overall or on a slice.

    ``kind = "baseline"`` compares each candidate with the candidate named ``baseline``
    on the same records: it fails when the candidate's ``metric`` is worse than the
    baseline's beyond the baseline's confidence interval.

    ``lower = "majority"`` (``metric = "accuracy"`` only) is the share of the most frequent
    class in the evaluated rows (overall; not on a slice): the accuracy of always
    answering that class, measured on the data the model is judged on rather than fixed
    when the file was written. Example::

        [[evaluation.gates]]
        metric = "accuracy"
        lower = "majority"
    """

    kind: Literal["threshold", "baseline"] = Field(
        "threshold",
        description="threshold: bounds on the value or its change against production; "
        "baseline: no worse than the named candidate beyond its interval.",
    )
    baseline: str | None = Field(
        None, description="kind = 'baseline': the [[model.candidates]] name to compare with."
    )
    metric: str = Field(description="Metric name, e.g. 'auc', 'log_loss', 'flip_rate'.")
    slice: str | None = Field(None, description="Slice name such as 'sex=Female'; default overall.")
    lower: float | Literal["majority"] | None = Field(
        None,
        description="Inclusive lower bound on the value; for accuracy also 'majority': the "
        "most frequent class's share in the evaluated rows.",
    )
    upper: float | None = Field(None, description="Inclusive upper bound on the value.")
    change: ChangeThresholdConfig | None = None

    @model_validator(mode="after")
    def _some_threshold(self) -> GateConfig:
        if self.kind == "baseline":
            if self.baseline is None:
                raise ValueError(
                    f"gate on '{self.metric}': kind = 'baseline' needs baseline = the name of a "
                    "candidate, e.g. baseline = 'linear'"
                )
            if self.lower is not None or self.upper is not None or self.change is not None:
                raise ValueError(
                    f"gate on '{self.metric}': a baseline gate takes no lower, upper or change; "
                    "put those in a gate of their own"
                )
            return self
        if self.baseline is not None:
            raise ValueError(
                f"gate on '{self.metric}': baseline = {self.baseline!r} needs kind = 'baseline'"
            )
        if self.lower is None and self.upper is None and self.change is None:
            raise ValueError(
                f"gate on '{self.metric}' has no threshold; set lower, upper or change"
            )
        if self.lower == "majority" and (self.metric != "accuracy" or self.slice is not None):
            raise ValueError(
                f"gate on '{self.metric}'"
                + (f" [{self.slice}]" if self.slice else "")
                + ": lower = 'majority' (the most frequent class's share) bounds overall "
                "accuracy only; use metric = 'accuracy' without a slice, or a number"
            )
        if (
            isinstance(self.lower, float | int)
            and self.upper is not None
            and self.lower > self.upper
        ):
            raise ValueError(
                f"gate on '{self.metric}': lower {self.lower} is above upper {self.upper}; "
                "swap them"
            )
        return self


class EvaluationConfig(Section):
    """``[evaluation]``: metrics, slices, calibration, thresholds, cost, windows and gates."""

    slices: list[str] = Field(default_factory=list, description="Columns to slice by value.")
    slice_buckets: dict[str, list[float] | int] = Field(
        default_factory=dict,
        description="Numeric columns to bucket: boundaries or a number of quantile buckets.",
    )
    crosses: list[list[str]] = Field(
        default_factory=list, description="Pairs of columns to slice by jointly."
    )
    min_slice_size: int = Field(30, ge=1, description="Smaller slices are listed, not scored.")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    calibration_bins: int = Field(
        10, ge=2, le=1000, description="Bins of the reliability diagram and of the ECE."
    )
    threshold: float | Literal["cost_optimal", "f1_optimal"] | ThresholdTarget = Field(
        0.5,
        description="Operating threshold on the positive-class probability (binary), or how "
        "the evaluation chooses it on the evaluated rows: 'f1_optimal', 'cost_optimal' (with "
        "[evaluation.cost]), or a target, { precision = 0.8 } or { recall = 0.5 }. The "
        "threshold gates (accuracy, recall, precision, cost) judge only a chosen threshold; "
        "the one chosen is recorded with the version.",
    )
    threshold_points: int = Field(101, ge=2, le=100_000, description="Points in the sweep.")
    top_k: int = Field(3, ge=1, description="k of top-k accuracy (multiclass).")
    cost: CostConfig | None = None
    windows: WindowsConfig | None = None
    gates: list[GateConfig] = Field(
        default_factory=list,
        description="The gates a model must pass to be blessed. None declared (or none that "
        "could judge, e.g. only change gates on a first model): the default gates judge, "
        "unless default_gates = false.",
    )
    default_gates: bool = Field(
        True,
        description="Judge with the default gates when no [[evaluation.gates]] can: the "
        "headline metric (auc binary, accuracy multiclass, r2 regression) beats chance beyond "
        "its interval (auc 0.5, the most frequent class's share, r2 0 = predicting the mean); "
        "better than the prior: log-loss below always predicting the training class "
        "frequencies (classification), squared error below predicting the training mean "
        "beyond its interval (regression); binary, only at a threshold the evaluation chose "
        "(threshold = 'f1_optimal', 'cost_optimal' or a target): precision above the "
        "positive share, recall at least default_min_recall, the precision target reached, "
        "or the cost below the cheaper constant answer's; "
        "no worse than the run's 'linear' candidate beyond its interval; no worse than "
        "production by more than default_margin beyond production's interval. false: a model "
        "no gate judged is 'ungated', never blessed, and deploys only with --force and a reason.",
    )
    default_margin: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="The default production gate: how far the headline metric (auc, accuracy "
        "or r2) may fall below production's, e.g. 0.01 = one point of AUC; the drop must also "
        "leave production's interval to fail.",
    )

    default_min_recall: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="The default recall gate (binary): the least share of the positive class "
        "a model must find at an operating threshold the evaluation chose (f1_optimal or a "
        "precision target); 0 turns the gate off.",
    )
    accept_perfect: str | None = Field(
        None,
        description="Why a near-perfect evaluation (AUC or R² at least 0.995, a multiclass "
        "accuracy at least 0.995 on 600 rows or more) is believed: without it such a model "
        "is held, not blessed, since it usually means a column leaks the label; audited "
        "(an accept_perfect event) on each run it lets through. `mooring run "
        "--accept-perfect -r REASON` does the same for one run.",
    )

    @field_validator("accept_perfect")
    @classmethod
    def _a_reason(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                'needs a reason, e.g. accept_perfect = "the label is computed from the '
                'inputs by a fixed rule"; remove the key to hold near-perfect results'
            )
        return value

    @field_validator("threshold")
    @classmethod
    def _unit_threshold(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and not 0.0 <= float(value) <= 1.0:
            raise ValueError("an operating threshold is a probability between 0 and 1, e.g. 0.5")
        return value

    @field_validator("crosses")
    @classmethod
    def _pairs(cls, value: list[list[str]]) -> list[list[str]]:
        for cross in value:
            if len(cross) != 2 or cross[0] == cross[1]:
                raise ValueError(
                    f"each cross names two different columns, e.g. [['sex', 'race']]; got {cross}"
                )
        return value

    @model_validator(mode="after")
    def _cost_for_cost_optimal(self) -> EvaluationConfig:
        if self.threshold == "cost_optimal" and self.cost is None:
            raise ValueError(
                "threshold = 'cost_optimal' needs costs; add "
                "cost = { false_positive = 1.0, false_negative = 5.0 }"
            )
        return self
