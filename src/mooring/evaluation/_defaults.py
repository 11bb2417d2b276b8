"""The default gates: what judges a model when no declared gate can.

With no ``[[evaluation.gates]]`` (or none that could judge: only change gates on a first
model, a baseline gate outside a run of candidates) and ``[evaluation] default_gates =
true`` (the default), the default gates judge what a model *is*, each scale-free and
none tied to a threshold nobody chose. Their headline metric per task: ``auc`` (binary),
``accuracy`` (multiclass), ``r2`` (regression).

- **Beats chance beyond its interval**: the lower end of the metric's interval must be
  above chance: AUC 0.5 (a random score), the share of the most frequent class (always
  predicting it), R² 0 (predicting the mean of the evaluated labels, which a training
  mean can only do worse than). The interval is the seeded bootstrap's
  (``[evaluation.bootstrap]``); where there is none (``samples = 0``, or the metric not
  bootstrapped) a normal approximation at the same confidence: Hanley & McNeil (1982)
  for AUC, the binomial standard error for accuracy, and for R² the standard error of
  the mean paired difference of squared errors (the mean's minus the model's) over the
  labels' variance.
- **Better than the prior** (:func:`prior_gate`): a classifier's log-loss below always
  predicting the training label's class frequencies (a binary label's base rate); a
  regression's squared error below predicting the training mean, beyond its interval.
  The training label's frequencies or mean come with the result
  (:attr:`EvaluationResult.prior`, read from the training statistics); without them
  the evaluated rows' own, and the gate says so.
- **At a chosen operating threshold** (binary, :func:`threshold_gates`): accuracy,
  recall, precision and cost depend on the threshold, so they judge only a threshold
  the evaluation chose for an aim (``[evaluation] threshold = "f1_optimal"``,
  ``"cost_optimal"``, ``{ precision = 0.8 }`` or ``{ recall = 0.5 }``). At a number
  in the configuration (0.5 by default) they are skipped, saying how to choose one: a
  calibrated model on a rare positive class seldom scores above 0.5 however well it
  ranks. At a chosen threshold: precision above the positive share (answering positive
  at random) and recall at least ``[evaluation] default_min_recall`` (F1), the
  precision target reached and the recall floor (precision target), precision above
  the positive share (recall target), the cost below the cheaper constant answer's
  (cost, strictly: the cost-optimal threshold can always answer a constant). Accuracy
  against the majority share is no gate at the F1 optimum, which trades accuracy for
  recall; it is listed as skipped with that reason.
- **No worse than the linear baseline**: in a run of ``[[model.candidates]]`` with one of
  ``kind = "linear"``, a baseline gate against it (exactly ``kind = "baseline"``). With
  no linear candidate the gate is skipped and says why: training an extra model on
  every run only to judge would double the cost of a run.
- **No worse than production within the margin**: with a production model evaluated on
  the same records, the model fails when its metric is below production's by more than
  ``[evaluation] default_margin`` *and* below the lower end of production's interval (the
  bound is the lower of the two). A first model skips it.

A failing gate's message names the gate, the value and a change that would pass it.
Every result is marked ``default = True``, and the decision's ``defaults`` says the
default gates judged.

Examples:
    >>> gates = default_gates(result, baseline=None, margin=0.01)  # doctest: +SKIP
    >>> [(g.name, g.passed, g.skipped) for g in gates]  # doctest: +SKIP
    [('auc beats chance beyond its interval', True, False),
     ('log_loss below always predicting the training base rate', True, False),
     ('precision above the positive share at the chosen threshold', True, False),
     ('recall at least 0.1 at the chosen threshold', True, False),
     ('auc no worse than the linear baseline', True, True),
     ('auc no worse than production by more than 0.01', True, True)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from mooring.config._evaluation import CHOSEN_THRESHOLD_SOURCES, GateConfig, ThresholdTarget
from mooring.evaluation._baseline_gate import baseline_gate
from mooring.evaluation._metrics import EPS
from mooring.evaluation._result import EVALUATED_ROWS, EvaluationResult, Prior
from mooring.formats._gate import GateRecord

__all__ = [
    "DEFAULT_METRIC",
    "Bounds",
    "chance_gate",
    "chance_level",
    "default_gates",
    "hanley_mcneil",
    "interval",
    "linear_gate",
    "precision_gate",
    "prior_gate",
    "production_gate",
    "recall_gate",
    "target_gate",
    "threshold_gates",
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


def chance_gate(result: EvaluationResult) -> GateRecord:
    """The default metric beats chance: the lower end of its interval is above chance."""
    metric = _metric(result)
    chance, trivial = chance_level(result)
    name = f"{metric} beats chance beyond its interval"
    bound: dict[str, Any] = {"lower": chance}
    where = f"default gate '{name}'"

    def out(passed: bool, message: str, value: float | None = None) -> GateRecord:
        return GateRecord(name, metric, None, "value", value, bound, passed, message, default=True)

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


#: How to let the evaluation choose the operating threshold, for the messages.
CHOOSE_THRESHOLD = (
    '[evaluation] threshold = "f1_optimal", a target such as threshold = { precision = 0.8 } '
    'or { recall = 0.5 }, or "cost_optimal" with [evaluation.cost] = { false_positive = 1, '
    "false_negative = 5 }"
)


def _positive_share(result: EvaluationResult) -> float | None:
    if result.labels is None or result.rows == 0:
        return None
    return float((np.asarray(result.labels) == 1).mean())


def threshold_gates(result: EvaluationResult, min_recall: float) -> list[GateRecord]:
    """Binary: the gates that depend on the operating threshold, only where it was chosen.

    See the module docstring for which apply to which choice; a configured number gives
    one skipped gate that says how to choose one.
    """
    source = result.threshold_source
    if source not in CHOSEN_THRESHOLD_SOURCES:
        value = result.metric("accuracy")
        threshold = result.operating_threshold
        shown = "" if threshold is None else f" {threshold:g}"
        return [
            GateRecord(
                "accuracy, recall and precision at a chosen threshold",
                "accuracy",
                None,
                "value",
                value,
                {"threshold": threshold, "source": source},
                True,
                f"skipped: the operating threshold{shown} is a number in the configuration, "
                "not one chosen for an aim, so accuracy, recall and precision at it do not "
                "judge the model (a calibrated model of a rare positive class seldom scores "
                "above 0.5 however well it ranks); to judge them, let the evaluation choose "
                f"it: {CHOOSE_THRESHOLD}",
                skipped=True,
                default=True,
            )
        ]
    if source == "cost_optimal":
        return [_constant_cost_gate(result, strict=True)]
    gates: list[GateRecord] = []
    if result.cost is not None:
        gates.append(_constant_cost_gate(result, strict=False))
    if source == "f1_optimal":
        gates.append(_majority_skipped(result))
    target = result.config.threshold
    if source == "precision_target" and isinstance(target, ThresholdTarget):
        gates += [target_gate(result, target.value), recall_gate(result, min_recall)]
    elif source == "recall_target":
        gates.append(precision_gate(result))
    else:
        gates += [precision_gate(result), recall_gate(result, min_recall)]
    return gates


def _majority_skipped(result: EvaluationResult) -> GateRecord:
    """At the F1 optimum, accuracy against the majority share is no gate: said, skipped."""
    share, _ = chance_level(result, majority=True)
    return GateRecord(
        "accuracy at least the majority share",
        "accuracy",
        None,
        "value",
        result.metric("accuracy"),
        {"lower": share, "reference": "majority"},
        True,
        "skipped: the F1-optimal threshold trades accuracy for recall (it answers positive "
        "more often than the majority class's share would), so accuracy below the majority "
        "share is expected there and says nothing against the model; precision above the "
        "positive share and the recall floor judge this operating point",
        skipped=True,
        default=True,
    )


def precision_gate(result: EvaluationResult) -> GateRecord:
    """Binary, chosen threshold: precision above the positive share, random's precision.

    Answering positive at random, at any rate, is right as often as the positive share
    of the rows; a threshold whose best precision is no better (always answering
    positive is what the F1 optimum falls back to) finds nothing the label's rate does
    not already say.
    """
    name = "precision above the positive share at the chosen threshold"
    where = f"default gate '{name}'"
    value, why = result.lookup("precision")
    share = _positive_share(result)

    def out(passed: bool, message: str) -> GateRecord:
        bound = {"lower": share, "reference": "positive share", "exclusive": True}
        return GateRecord(
            name, "precision", None, "value", value, bound, passed, message, default=True
        )

    if value is None or share is None:
        missing = why or "the evaluated labels are not in memory"
        return out(False, f"failed: {where}: precision or the positive share is unknown: {missing}")
    positive = _class_name(result, 1)
    if value > share:
        return out(
            True,
            f"passed: precision of {positive} {value:.4g} {_where_threshold(result)} is above "
            f"the positive share {share:.4g} (answering positive at random)",
        )
    return out(
        False,
        f"failed: {where}: precision of {positive} is {value:.4g} {_where_threshold(result)}, "
        f"no better than the positive share {share:.4g} of the {result.rows} evaluated rows: "
        "answering positive at random would do as well, so the scores do not pick out "
        "positives at this operating point. Check the label column and the features (a "
        "shuffled or misaligned label, a broken join); if the scores do rank (see the auc "
        "gate), choose the threshold for a precision: threshold = { precision = 0.5 }",
    )


def target_gate(result: EvaluationResult, target: float) -> GateRecord:
    """Binary, ``threshold = { precision = p }``: a threshold reaches precision ``p``.

    The evaluation picks the lowest threshold that reaches it; when none does, the
    threshold of the highest precision, and this gate fails naming it.
    """
    name = f"precision at least the target {target:g} at the chosen threshold"
    where = f"default gate '{name}'"
    value, why = result.lookup("precision")

    def out(passed: bool, message: str) -> GateRecord:
        bound = {"lower": target, "reference": "threshold target"}
        return GateRecord(
            name, "precision", None, "value", value, bound, passed, message, default=True
        )

    if value is None:
        return out(False, f"failed: {where}: precision was not computed: {why}")
    if value >= target:
        return out(
            True,
            f"passed: precision {value:.4g} {_where_threshold(result)} reaches the target "
            f"{target:g}",
        )
    reachable = math.floor(value * 100) / 100
    return out(
        False,
        f"failed: {where}: no threshold reaches precision {target:g} on the {result.rows} "
        f"evaluated rows; the highest is {value:.4g} {_where_threshold(result)}. Lower the "
        f"target (threshold = {{ precision = {reachable:g} }} is reached), set a recall "
        'target instead (threshold = { recall = 0.5 }), or threshold = "f1_optimal"',
    )


def _constant_cost_gate(result: EvaluationResult, *, strict: bool) -> GateRecord:
    """With costs declared: no costlier than the cheaper of always-negative, always-positive.

    ``strict`` (the threshold was chosen for the cost): cheaper than it, since the
    cost-optimal threshold can always answer a constant, and one that does saves nothing.
    """
    name = "cost below a constant answer's" if strict else "cost no higher than a constant answer's"
    where = f"default gate '{name}'"
    cost, labels = result.cost, result.labels
    if cost is None or labels is None or result.rows == 0:
        return GateRecord(
            name,
            "cost_per_1000",
            None,
            "value",
            None if cost is None else cost.cost_per_1000,
            {},
            False,
            f"failed: {where}: "
            + (
                "no cost was computed: declare [evaluation.cost]"
                if cost is None
                else "the evaluated labels are not in memory"
            ),
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
    # Two sums of the same counts in another order differ in the last bits: equal is equal.
    same = math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-9)
    passed = (value < limit and not same) if strict else (value <= limit or same)
    message = (
        f"cost per 1,000 predictions {value:.4g} {_where_threshold(result)} vs {limit:.4g} "
        f"answering {cheaper} (the cheaper constant answer; [evaluation.cost])"
    )
    if passed:
        message = f"passed: {message}"
    elif strict:
        message = (
            f"failed: {where}: {message}: at these costs the cheapest threshold answers "
            f"{cheaper}, so the model saves nothing over a constant. Check the costs "
            "([evaluation.cost]: is a missed positive really that cheap?), or the label "
            "column and the features"
        )
    else:
        message = (
            f"failed: {where}: {message}: the model costs more than answering {cheaper}; "
            f'set [evaluation] threshold = "cost_optimal", check the costs, or check the '
            "label column and the features"
        )
    return GateRecord(
        name,
        "cost_per_1000",
        None,
        "value",
        value,
        {"upper": limit, "reference": cheaper, "exclusive": strict},
        passed,
        message,
        default=True,
    )


def recall_gate(result: EvaluationResult, floor: float) -> GateRecord:
    """Binary: recall of the positive class at the chosen threshold at least ``floor``.

    A model that finds almost none of the positives is answering the majority class
    while its AUC can still look fine; ``[evaluation] default_min_recall`` (0 turns the
    gate off). One in ten is low enough that a deliberate high-precision operating point
    (fraud review, say) passes.
    """
    name = f"recall at least {floor:g} at the chosen threshold"
    where = f"default gate '{name}'"
    value, why = result.lookup("recall")

    def out(passed: bool, message: str, skipped: bool = False) -> GateRecord:
        bound = {"lower": floor}
        return GateRecord(
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
    fix = (
        "Lower the precision target (threshold = { precision = … })"
        if result.threshold_source == "precision_target"
        else f"Set a recall target instead: threshold = {{ recall = {floor:g} }}"
    )
    return out(
        False,
        f"failed: {where}: recall of the positive class {positive} is {value:.4g} "
        f"{_where_threshold(result)}{found}, below the floor {floor:g} "
        f"([evaluation] default_min_recall): the model hardly ever answers positive. {fix}, "
        "or lower default_min_recall when so rare a positive answer is intended",
    )


def _prior_values(result: EvaluationResult) -> tuple[Prior | None, str]:
    """The result's prior, else the evaluated rows' (None, why) when neither is known."""
    if result.prior is not None:
        return result.prior, ""
    if result.labels is None or result.rows == 0:
        return None, "the evaluated labels are not in memory"
    labels = np.asarray(result.labels)
    if result.task == "regression":
        return Prior(EVALUATED_ROWS, mean=float(labels.astype(np.float64).mean())), ""
    classes = max(len(result.label_vocabulary or ()), int(labels.max()) + 1, 2)
    counts = np.bincount(labels.astype(np.int64), minlength=classes)
    return Prior(EVALUATED_ROWS, frequencies=tuple((counts / counts.sum()).tolist())), ""


def _from(prior: Prior) -> str:
    if prior.from_training:
        return f"read from {prior.source}"
    return (
        "read from the evaluated rows themselves, for want of the training label's (no "
        "training statistics of this model's label were found)"
    )


def prior_gate(result: EvaluationResult) -> GateRecord:
    """Better than the prior: what a model that learned nothing from the features predicts.

    Classification: log-loss below always predicting the training class frequencies
    (binary: the training base rate), on the evaluated rows. A point comparison, with no
    interval: the chance gate already shows, beyond its interval, that the scores carry
    signal; this gate asks whether the probabilities as served are better than the
    constant, and any shortfall, however small, means they mislead whoever reads them
    (a mis-calibrated model, a prior shifted by class weights).

    Regression: squared error below predicting the training mean beyond its interval
    (the normal approximation of the mean paired difference of squared errors): the
    same question as R² > 0, asked of the mean the model could have learned, not of the
    evaluated rows' own.
    """
    prior, why = _prior_values(result)
    regression = result.task == "regression"
    if regression:
        name = "squared error below predicting the training mean beyond its interval"
        metric = "rmse"
    else:
        constant = "base rate" if result.task == "binary" else "class frequencies"
        name = f"log_loss below always predicting the training {constant}"
        metric = "log_loss"
    where = f"default gate '{name}'"

    def out(passed: bool, message: str, value: float | None, bound: dict[str, Any]) -> GateRecord:
        return GateRecord(name, metric, None, "value", value, bound, passed, message, default=True)

    if prior is None or result.labels is None or result.predictions is None:
        return out(False, f"failed: {where}: the prior is unknown: {why}", None, {})
    labels = np.asarray(result.labels)
    bound: dict[str, Any] = {"reference": "prior", "source": prior.source}
    if regression:
        return _mean_prior(result, prior, labels, out, bound, where)
    frequencies = np.asarray(prior.frequencies or (), dtype=np.float64)
    value, missing = result.lookup("log_loss")
    if value is None or frequencies.size <= int(labels.max()):
        reason = missing or f"the prior has {frequencies.size} classes"
        return out(False, f"failed: {where}: log_loss was not computed: {reason}", value, bound)
    chosen = np.clip(frequencies[labels.astype(np.int64)], EPS, 1.0 - EPS)
    limit = float(-np.log(chosen).mean())
    bound.update(upper=limit, exclusive=True, prior=frequencies.tolist())
    shown = (
        f"the base rate {frequencies[1]:.4g}"
        if result.task == "binary"
        else "the class frequencies " + ", ".join(f"{f:.3g}" for f in frequencies)
    )
    said = f"log_loss {value:.4g} vs {limit:.4g} always predicting {shown} ({_from(prior)})"
    if value < limit:
        return out(True, f"passed: {said}", value, bound)
    return out(
        False,
        f"failed: {where}: {said}: the model's probabilities are no better than the constant "
        "prior, so its answers mislead more than they tell. If [model] class_weight is set, "
        "remove it (weighting moves the probabilities away from the base rate); otherwise "
        "check the label column and the features, or train longer ([model] max_steps)",
        value,
        bound,
    )


def _mean_prior(
    result: EvaluationResult,
    prior: Prior,
    labels: npt.NDArray[Any],
    out: Callable[[bool, str, float | None, dict[str, Any]], GateRecord],
    bound: dict[str, Any],
    where: str,
) -> GateRecord:
    """The regression half of :func:`prior_gate`."""
    assert prior.mean is not None and result.predictions is not None
    y = labels.astype(np.float64)
    predictions = np.asarray(result.predictions, dtype=np.float64)
    gain = (y - prior.mean) ** 2 - (y - predictions) ** 2
    n = int(y.size)
    value = float(math.sqrt(((y - predictions) ** 2).mean()))
    limit = float(math.sqrt(((y - prior.mean) ** 2).mean()))
    bound.update(upper=limit, exclusive=True, prior=prior.mean)
    if n < 2:
        return out(False, f"failed: {where}: {n} evaluated row(s) give no interval", value, bound)
    confidence = result.config.bootstrap.confidence
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    mean, se = float(gain.mean()), float(gain.std(ddof=1) / math.sqrt(n))
    low, high = mean - z * se, mean + z * se
    bound["improvement_interval"] = [low, high]
    said = (
        f"rmse {value:.4g} vs {limit:.4g} predicting the mean {prior.mean:.4g} "
        f"({_from(prior)}); the mean gain in squared error {mean:.4g} has the "
        f"{confidence:.0%} normal-approximation interval [{low:.4g}, {high:.4g}]"
    )
    if low > 0.0:
        return out(True, f"passed: {said}", value, bound)
    return out(
        False,
        f"failed: {where}: {said}, whose lower end is not above 0: the model is not shown to "
        "predict better than the mean. Check the label column and the features, or evaluate "
        "on more rows ([data] eval, or a larger `mooring init --holdout`)",
        value,
        bound,
    )


def linear_gate(
    result: EvaluationResult,
    name: str | None,
    candidates: Mapping[str, EvaluationResult] | None,
) -> GateRecord:
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
        return GateRecord(
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
    message = judged.message
    if not judged.passed:
        message += (
            f"; a model no better than the linear candidate '{linear}' adds only cost: the "
            "run picks the best candidate that passes (the linear one passes this gate); "
            "give this one more capacity or training ([model] hidden, max_steps) to beat it"
        )
    return replace(judged, name=title, default=True, message=message)


def production_gate(
    result: EvaluationResult, baseline: EvaluationResult | None, margin: float
) -> GateRecord:
    """No worse than production by more than ``margin`` beyond production's interval."""
    metric = _metric(result)
    title = f"{metric} no worse than production by more than {margin:g}"
    bound: dict[str, Any] = {"direction": "higher", "margin": margin}
    where = f"default gate '{title}'"

    def out(passed: bool, message: str, **extra: Any) -> GateRecord:
        return GateRecord(
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
    fix = (
        ""
        if passed
        else "; to accept a model this much below production (a production that leaked, "
        f"a changed label), raise [evaluation] default_margin (now {margin:g}) or declare "
        "[[evaluation.gates]] of your own"
    )
    return out(
        passed,
        f"{'passed' if passed else 'failed'}: {where}: {metric} {value:.4g} vs production "
        f"{base:.4g} (diff {value - base:+.4g}); the bound {limit:.4g} is the lower of "
        f"production − {margin:g} ({base - margin:.4g}) and {within}{fix}",
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
) -> list[GateRecord]:
    """The default gates (see the module docstring), in order; skipped ones say why.

    ``min_recall`` is the binary recall floor at a chosen threshold (``[evaluation]
    default_min_recall``).
    """
    gates = [chance_gate(result), prior_gate(result)]
    if result.task == "binary":
        gates += threshold_gates(result, min_recall)
    return [
        *gates,
        linear_gate(result, name, candidates),
        production_gate(result, baseline, margin),
    ]
