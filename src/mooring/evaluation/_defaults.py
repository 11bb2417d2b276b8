"""The default gates: what judges a model when no declared gate can.

With no ``[[evaluation.gates]]`` (or none that could judge: only change gates on a first
model, a baseline gate outside a run of candidates) and ``[evaluation] default_gates =
true`` (the default), three gates judge a model on its task's headline metric, each
higher-is-better and scale-free: ``auc`` (binary), ``accuracy`` (multiclass), ``r2``
(regression); a binary model is also judged at its operating threshold, where AUC says
nothing (a model can rank well and still answer the majority class to every row).

- **Beats chance beyond its interval**: the lower end of the metric's interval must be
  above chance: AUC 0.5 (a random score), the share of the most frequent class (always
  predicting it), R² 0 (predicting the mean of the evaluated labels, which a training
  mean can only do worse than). The interval is the seeded bootstrap's
  (``[evaluation.bootstrap]``); where there is none (``samples = 0``, or the metric not
  bootstrapped) a normal approximation at the same confidence: Hanley & McNeil (1982)
  for AUC, the binomial standard error for accuracy, and for R² the standard error of
  the mean paired difference of squared errors (the mean's minus the model's) over the
  labels' variance.
- **Accuracy at least the majority share** (binary): the accuracy at the operating
  threshold is at least the most frequent class's share in the evaluated rows, what
  always answering that class scores. With ``[evaluation.cost]`` declared, accuracy is
  not the aim: the expected cost per 1,000 predictions must instead be no higher than the
  cheaper constant answer's (always negative, always positive). For multiclass models the
  chance gate already is this comparison, and stricter (beyond its interval).
- **Recall at least a floor** (binary): recall of the positive class at the operating
  threshold at least ``[evaluation] default_min_recall`` (0.1; 0 turns it off). A model
  that finds fewer than one positive in ten misses nearly all it exists to find, and it is
  the typical failure of a rare positive class at threshold 0.5: an AUC well above chance,
  accuracy at the majority share, recall near 0. One in ten is low enough that a
  deliberate high-precision operating point (fraud review, say) passes; lower the key when
  rarer positive answers are intended.
- **No worse than the linear baseline**: in a run of ``[[model.candidates]]`` with one of
  ``kind = "linear"``, a baseline gate against it (exactly ``kind = "baseline"``). With
  no linear candidate the gate is skipped and says why: training an extra model on
  every run only to judge would double the cost of a run.
- **No worse than production within the margin**: with a production model evaluated on
  the same records, the model fails when its metric is below production's by more than
  ``[evaluation] default_margin`` *and* below the lower end of production's interval (the
  bound is the lower of the two). A first model skips it.

Every result is marked ``default = True``, and the decision's ``defaults`` says the
default gates judged.

Examples:
    >>> gates = default_gates(result, baseline=None, margin=0.01)  # doctest: +SKIP
    >>> [(g.name, g.passed, g.skipped) for g in gates]  # doctest: +SKIP
    [('auc beats chance beyond its interval', True, False),
     ('accuracy at least the majority share', True, False),
     ('recall at least 0.1 at the operating threshold', True, False),
     ('auc no worse than the linear baseline', True, True),
     ('auc no worse than production by more than 0.01', True, True)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from mooring.config._evaluation import GateConfig
from mooring.evaluation._gates import GateResult, baseline_gate
from mooring.evaluation._result import EvaluationResult

__all__ = [
    "DEFAULT_METRIC",
    "Bounds",
    "chance_gate",
    "chance_level",
    "default_gates",
    "hanley_mcneil",
    "interval",
    "linear_gate",
    "majority_gate",
    "production_gate",
    "recall_gate",
]

#: The metric the default gates judge, per task.
DEFAULT_METRIC: dict[str, str] = {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}


@dataclass(frozen=True)
class Bounds:
    """An interval of one metric and how it was made (bootstrap or normal approximation)."""

    lower: float
    upper: float
    confidence: float
    method: str

    def describe(self) -> str:
        """``95% bootstrap interval [0.851, 0.889]``."""
        return f"{self.confidence:.0%} {self.method} interval [{self.lower:.4g}, {self.upper:.4g}]"


def hanley_mcneil(auc: float, positives: int, negatives: int) -> float | None:
    """The standard error of an AUC (Hanley & McNeil, 1982); ``None`` without both classes.

    >>> round(hanley_mcneil(0.8, 100, 300), 4)
    0.0283
    """
    if positives <= 0 or negatives <= 0:
        return None
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    var = (
        auc * (1.0 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(var, 0.0))


def _standard_error(
    result: EvaluationResult, metric: str, value: float
) -> tuple[float | None, str]:
    """A normal approximation's standard error and its name, or (None, why not)."""
    if result.labels is None:
        return None, "the evaluated labels are not in memory"
    labels = np.asarray(result.labels)
    n = int(labels.shape[0])
    if metric == "auc":
        positives = int((labels == 1).sum())
        return hanley_mcneil(value, positives, n - positives), "Hanley–McNeil"
    if metric == "accuracy" and n > 0:
        return math.sqrt(max(value * (1.0 - value), 0.0) / n), "binomial"
    if metric == "r2" and result.predictions is not None and n > 1:
        y = labels.astype(np.float64)
        spread = (y - y.mean()) ** 2
        paired = spread - (y - np.asarray(result.predictions, dtype=np.float64)) ** 2
        variance = float(spread.mean())
        if variance <= 0.0:
            return None, "the labels are constant"
        return float(paired.std(ddof=1) / math.sqrt(n) / variance), "paired squared errors"
    return None, f"no normal approximation is known for {metric}"


def interval(result: EvaluationResult, metric: str) -> tuple[Bounds | None, str]:
    """The metric's bootstrap interval, else its normal approximation; (None, why) if neither.

    The approximation uses ``[evaluation.bootstrap] confidence``.
    """
    found = result.intervals.get(metric)
    if found is not None:
        return Bounds(found.lower, found.upper, found.confidence, "bootstrap"), ""
    value, why = result.lookup(metric)
    if value is None:
        return None, why
    se, method = _standard_error(result, metric, value)
    if se is None:
        return None, method
    confidence = result.config.bootstrap.confidence
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    return (
        Bounds(value - z * se, value + z * se, confidence, f"normal-approximation ({method})"),
        "",
    )


def chance_level(result: EvaluationResult, *, majority: bool = False) -> tuple[float | None, str]:
    """What chance scores on the default metric, and the trivial model that scores it.

    ``majority``: the accuracy of always answering the most frequent class, for any
    classifier (binary too, whose default metric's chance is AUC 0.5).
    """
    if result.task == "binary" and not majority:
        return 0.5, "a random score"
    if result.task == "regression":
        return 0.0, "predicting the mean"
    if result.labels is None:
        return None, "the evaluated labels are not in memory, so the most frequent class is unknown"
    counts = np.bincount(np.asarray(result.labels, dtype=np.int64))
    if counts.sum() == 0:
        return None, "there are no evaluated labels"
    return float(counts.max() / counts.sum()), "always predicting the most frequent class"


def _metric(result: EvaluationResult) -> str:
    return DEFAULT_METRIC[result.task]


def chance_gate(result: EvaluationResult) -> GateResult:
    """The default metric beats chance: the lower end of its interval is above chance."""
    metric = _metric(result)
    chance, trivial = chance_level(result)
    name = f"{metric} beats chance beyond its interval"
    bound: dict[str, Any] = {"lower": chance}
    where = f"default gate '{name}'"

    def out(passed: bool, message: str, value: float | None = None) -> GateResult:
        return GateResult(name, metric, None, "value", value, bound, passed, message, default=True)

    value, why = result.lookup(metric)
    if value is None:
        return out(False, f"failed: {where}: {metric} was not computed: {why}")
    if chance is None:
        return out(False, f"failed: {where}: {trivial}", value)
    bounds, why = interval(result, metric)
    if bounds is None:
        return out(
            False,
            f"failed: {where}: {metric} = {value:.4g} has no interval ({why}); set "
            "[evaluation.bootstrap] samples > 0 (e.g. 1000)",
            value,
        )
    bound.update(interval=[bounds.lower, bounds.upper], confidence=bounds.confidence)
    bound["method"] = bounds.method
    if bounds.lower > chance:
        return out(
            True,
            f"passed: {metric} {value:.4g} beats chance {chance:.4g} ({trivial}) beyond its "
            f"{bounds.describe()}",
            value,
        )
    return out(
        False,
        f"failed: {where}: {metric} = {value:.4g}, {bounds.describe()}: its lower end "
        f"{bounds.lower:.4g} is not above chance {chance:.4g} ({trivial}), so the model is not "
        "shown to be better than chance; check the label column and the features (a shuffled "
        "or misaligned label, a broken join), or evaluate on more rows",
        value,
    )


def _class_name(result: EvaluationResult, index: int) -> str:
    vocabulary = result.label_vocabulary
    return repr(vocabulary[index]) if vocabulary and index < len(vocabulary) else str(index)


def _where_threshold(result: EvaluationResult) -> str:
    threshold = result.operating_threshold
    if threshold is None:
        return "at its operating threshold"
    source = result.threshold_source or "configured"
    return f"at its operating threshold {threshold:.4g} ({source})"


_THRESHOLD_FIX = (
    '[evaluation] threshold = "f1_optimal" (or "cost_optimal" with [evaluation.cost]) or a '
    'lower number, or [model] class_weight = "balanced"'
)


def majority_gate(result: EvaluationResult) -> GateResult:
    """Binary: no worse than always answering the most frequent class.

    Accuracy at the operating threshold at least the majority class's share in the
    evaluated rows; with ``[evaluation.cost]``, where accuracy is not the aim, the expected
    cost per 1,000 predictions no higher than the cheaper constant answer's.
    """
    share, _ = chance_level(result, majority=True)
    if result.cost is not None:
        return _constant_cost_gate(result)
    name = "accuracy at least the majority share"
    where = f"default gate '{name}'"
    value, why = result.lookup("accuracy")

    def out(passed: bool, message: str) -> GateResult:
        bound = {"lower": share, "reference": "majority"}
        return GateResult(
            name, "accuracy", None, "value", value, bound, passed, message, default=True
        )

    if value is None or share is None or result.labels is None:
        missing = why or "the evaluated labels are not in memory"
        return out(False, f"failed: {where}: accuracy or the majority share is unknown: {missing}")
    top = int(np.bincount(np.asarray(result.labels, dtype=np.int64)).argmax())
    always = f"always answering {_class_name(result, top)}"
    if value >= share:
        return out(
            True,
            f"passed: accuracy {value:.4g} {_where_threshold(result)} is at least the majority "
            f"share {share:.4g} ({always})",
        )
    return out(
        False,
        f"failed: {where}: accuracy {value:.4g} {_where_threshold(result)} is below the "
        f"majority share {share:.4g} of the {result.rows} evaluated rows: {always} would be "
        f"right more often. Choose the threshold for the aim: {_THRESHOLD_FIX}; with costs "
        "that make the errors unequal, declare [evaluation.cost] and this gate compares "
        "costs instead",
    )


def _constant_cost_gate(result: EvaluationResult) -> GateResult:
    """With costs declared: no costlier than the cheaper of always-negative, always-positive."""
    name = "cost no higher than a constant answer's"
    where = f"default gate '{name}'"
    cost, labels = result.cost, result.labels
    assert cost is not None
    if labels is None or result.rows == 0:
        return GateResult(
            name,
            "cost_per_1000",
            None,
            "value",
            cost.cost_per_1000,
            {},
            False,
            f"failed: {where}: the evaluated labels are not in memory",
            default=True,
        )
    positives = float((np.asarray(labels) == 1).sum())
    negatives = float(result.rows) - positives
    per = 1000.0 / result.rows
    answers = {
        "always negative": cost.false_negative * positives * per,
        "always positive": (
            cost.false_positive * negatives - cost.true_positive_benefit * positives
        )
        * per,
    }
    cheaper = min(answers, key=lambda k: answers[k])
    limit = answers[cheaper]
    value = cost.cost_per_1000
    passed = value <= limit
    message = (
        f"cost per 1,000 predictions {value:.4g} {_where_threshold(result)} vs {limit:.4g} "
        f"answering {cheaper} (the cheaper constant answer; [evaluation.cost])"
    )
    if passed:
        message = f"passed: {message}"
    else:
        message = (
            f"failed: {where}: {message}: the model costs more than answering {cheaper}; "
            f'set [evaluation] threshold = "cost_optimal", check the costs, or check the '
            "label column and the features"
        )
    return GateResult(
        name,
        "cost_per_1000",
        None,
        "value",
        value,
        {"upper": limit, "reference": cheaper},
        passed,
        message,
        default=True,
    )


def recall_gate(result: EvaluationResult, floor: float) -> GateResult:
    """Binary: recall of the positive class at the operating threshold at least ``floor``.

    A model that finds almost none of the positives is answering the majority class
    while its AUC can still look fine; ``[evaluation] default_min_recall`` (0 turns the
    gate off).
    """
    name = f"recall at least {floor:g} at the operating threshold"
    where = f"default gate '{name}'"
    value, why = result.lookup("recall")

    def out(passed: bool, message: str, skipped: bool = False) -> GateResult:
        bound = {"lower": floor}
        return GateResult(
            name, "recall", None, "value", value, bound, passed, message, skipped, default=True
        )

    if floor <= 0.0:
        return out(True, "skipped: [evaluation] default_min_recall = 0", skipped=True)
    if value is None:
        return out(False, f"failed: {where}: recall was not computed: {why}")
    positive = _class_name(result, 1)
    found = ""
    if result.labels is not None:
        positives = int((np.asarray(result.labels) == 1).sum())
        found = f", {round(value * positives)} of {positives} positives found"
    if value >= floor:
        return out(
            True,
            f"passed: recall of {positive} {value:.4g} {_where_threshold(result)} is at least "
            f"{floor:g}{found}",
        )
    return out(
        False,
        f"failed: {where}: recall of the positive class {positive} is {value:.4g} "
        f"{_where_threshold(result)}{found}, below the floor {floor:g} "
        "([evaluation] default_min_recall): the model hardly ever answers positive. Lower the "
        f"threshold ({_THRESHOLD_FIX}), or lower default_min_recall when so rare a positive "
        "answer is intended",
    )


def linear_gate(
    result: EvaluationResult,
    name: str | None,
    candidates: Mapping[str, EvaluationResult] | None,
) -> GateResult:
    """No worse than the run's ``kind = "linear"`` candidate beyond its interval, or skipped."""
    metric = _metric(result)
    title = f"{metric} no worse than the linear baseline"
    linear = next(
        (n for n, other in (candidates or {}).items() if other.model.get("kind") == "linear"),
        None,
    )
    if linear is None:
        why = (
            "this evaluates a single model; a `mooring run` of [[model.candidates]] with one of "
            "kind = 'linear' compares every candidate with it"
            if candidates is None
            else f"no candidate of kind 'linear' in this run (candidates: "
            f"{', '.join(candidates) or 'none'}); add one to [[model.candidates]] to compare "
            "with a linear baseline"
        )
        return GateResult(
            title,
            metric,
            None,
            "baseline",
            result.metric(metric),
            {"baseline": None},
            True,
            f"skipped: no linear baseline: {why}",
            skipped=True,
            default=True,
        )
    gate = GateConfig(kind="baseline", baseline=linear, metric=metric)
    judged = baseline_gate(gate, result, name, candidates or {})
    return replace(judged, name=title, default=True)


def production_gate(
    result: EvaluationResult, baseline: EvaluationResult | None, margin: float
) -> GateResult:
    """No worse than production by more than ``margin`` beyond production's interval."""
    metric = _metric(result)
    title = f"{metric} no worse than production by more than {margin:g}"
    bound: dict[str, Any] = {"direction": "higher", "margin": margin}
    where = f"default gate '{title}'"

    def out(passed: bool, message: str, **extra: Any) -> GateResult:
        return GateResult(
            title,
            metric,
            None,
            "change",
            extra.get("value"),
            bound,
            passed,
            message,
            skipped=extra.get("skipped", False),
            baseline=extra.get("base"),
            diff=extra.get("diff"),
            default=True,
        )

    if baseline is None:
        return out(
            True,
            "skipped: first model — there is no production model to compare with "
            "(`mooring evaluate` compares with one given --baseline)",
            value=result.metric(metric),
            skipped=True,
        )
    if result.data_fingerprint != baseline.data_fingerprint:
        return out(
            False,
            f"failed: {where}: production was evaluated on different records (fingerprint "
            f"{baseline.data_fingerprint} vs {result.data_fingerprint}); evaluate both on the "
            "same eval data",
        )
    value, why = result.lookup(metric)
    if value is None:
        return out(False, f"failed: {where}: {metric} was not computed: {why}")
    base, base_why = baseline.lookup(metric)
    if base is None:
        return out(
            False,
            f"failed: {where}: production's {metric} was not computed: {base_why}",
            value=value,
        )
    bounds, no_interval = interval(baseline, metric)
    limit = base - margin
    if bounds is not None:
        limit = min(limit, bounds.lower)
        within = f"the lower end of production's {bounds.describe()}"
    else:
        within = f"production's interval (none: {no_interval})"
    bound["lower"] = limit
    passed = value >= limit
    return out(
        passed,
        f"{'passed' if passed else 'failed'}: {where}: {metric} {value:.4g} vs production "
        f"{base:.4g} (diff {value - base:+.4g}); the bound {limit:.4g} is the lower of "
        f"production − {margin:g} ({base - margin:.4g}) and {within}",
        value=value,
        base=base,
        diff=value - base,
    )


def default_gates(
    result: EvaluationResult,
    *,
    baseline: EvaluationResult | None,
    margin: float,
    min_recall: float = 0.1,
    name: str | None = None,
    candidates: Mapping[str, EvaluationResult] | None = None,
) -> list[GateResult]:
    """The default gates (see the module docstring), in order; skipped ones say why.

    ``min_recall`` is the binary recall floor (``[evaluation] default_min_recall``).
    """
    gates = [chance_gate(result)]
    if result.task == "binary":
        gates += [majority_gate(result), recall_gate(result, min_recall)]
    return [
        *gates,
        linear_gate(result, name, candidates),
        production_gate(result, baseline, margin),
    ]
