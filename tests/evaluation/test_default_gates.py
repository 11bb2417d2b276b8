"""The default gates on Adult's records: chance, the linear candidate, production; ungated.

No model is trained: the "models" are arithmetic on Adult's own columns
(:mod:`tests._support.adult_arrays`), and the same predictions against shuffled labels
are the model that learned nothing. Metric values are checked against scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, r2_score, recall_score, roc_auc_score

from mooring.config._evaluation import EvaluationConfig, GateConfig
from mooring.evaluation._candidates import CandidateEvaluation, pick
from mooring.evaluation._defaults import hanley_mcneil
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import decide
from mooring.evaluation._result import EvaluationResult
from mooring.formats._gate import is_ungated, verdict
from mooring.monitoring._guardrails import standard_error
from tests._support.adult_arrays import (
    adult_rows,
    age_predictions,
    income_scores,
    marital_probabilities,
)

TEST = adult_rows(rows=1500)
TRAIN = adult_rows("adult.data.csv.gz", rows=3000)
LABELS, SCORES = income_scores(TEST)
SHUFFLED = np.random.default_rng(0).permutation(LABELS)
CHANCE = "auc beats chance beyond its interval"
MAJORITY = "accuracy at least the majority share"
RECALL = "recall at least 0.1 at the operating threshold"


def _binary(
    labels: np.ndarray, scores: np.ndarray, samples: int = 200, **config: object
) -> EvaluationResult:
    cfg = EvaluationConfig.model_validate({"bootstrap": {"samples": samples}, **config})
    return evaluate(task="binary", labels=labels, scores=scores, config=cfg)


def test_a_real_model_is_blessed_by_the_default_gates_which_say_so() -> None:
    result = _binary(LABELS, SCORES)
    decision = decide(result)
    assert decision.blessed and decision.defaults and not decision.ungated
    chance, majority, recall, linear, production = decision.gates
    assert all(g.default for g in decision.gates)
    assert [g.name for g in decision.judged] == [CHANCE, MAJORITY, RECALL]
    assert chance.value == pytest.approx(roc_auc_score(LABELS, SCORES))
    interval = result.intervals["auc"]
    assert chance.bound["interval"] == [interval.lower, interval.upper] and interval.lower > 0.5
    assert "bootstrap interval" in chance.message
    assert linear.skipped and "no linear baseline" in linear.message
    assert production.skipped and "first model" in production.message
    assert any("judged by the default gates" in w for w in decision.warnings)
    data = orjson.loads(orjson.dumps(decision.to_dict()))
    assert data["defaults"] is True and data["ungated"] is False
    assert [g["default"] for g in data["gates"]] == [True] * 5
    share = max(LABELS.mean(), 1 - LABELS.mean())
    assert majority.bound == {"lower": pytest.approx(share), "reference": "majority"}
    assert majority.value == pytest.approx(accuracy_score(LABELS, SCORES >= 0.5))
    assert recall.value == pytest.approx(recall_score(LABELS, SCORES >= 0.5))
    assert majority.value > share and recall.value >= 0.1 and majority.passed and recall.passed


@pytest.mark.parametrize("samples", [200, 0])
def test_shuffled_labels_are_not_blessed_and_the_message_names_gate_value_interval(
    samples: int,
) -> None:
    result = _binary(SHUFFLED, SCORES, samples)
    decision = decide(result)
    assert not decision.blessed and not decision.ungated
    failed, below_majority = decision.failures
    assert below_majority.name == MAJORITY
    auc = roc_auc_score(SHUFFLED, SCORES)
    assert failed.name == CHANCE and failed.value == pytest.approx(auc)
    assert 0.45 < auc < 0.55
    lower, upper = failed.bound["interval"]
    assert lower <= 0.5
    assert f"'{CHANCE}'" in failed.message and f"auc = {auc:.4g}" in failed.message
    assert f"[{lower:.4g}, {upper:.4g}]" in failed.message


def test_without_bootstrap_the_auc_interval_is_hanley_mcneil() -> None:
    result = _binary(LABELS, SCORES, samples=0)
    assert result.intervals == {}
    (chance, *_) = decide(result).gates
    auc = roc_auc_score(LABELS, SCORES)
    positives = int(LABELS.sum())
    se = standard_error("auc", auc, len(LABELS), positives)  # the monitor's formula
    assert se is not None and hanley_mcneil(auc, positives, len(LABELS) - positives) == (
        pytest.approx(se)
    )
    assert chance.bound["interval"] == pytest.approx([auc - 1.959964 * se, auc + 1.959964 * se])
    assert chance.passed and "Hanley–McNeil" in chance.message
    # The confidence is the bootstrap's, even with no resample drawn.
    narrow = _binary(LABELS, SCORES, samples=0, bootstrap={"samples": 0, "confidence": 0.5})
    assert decide(narrow).gates[0].bound["interval"][0] > chance.bound["interval"][0]


@pytest.mark.parametrize("samples", [200, 0])
def test_regression_must_beat_predicting_the_mean(samples: int) -> None:
    targets, predictions = age_predictions(TRAIN, TEST)
    cfg = EvaluationConfig(bootstrap={"samples": samples})
    real = decide(evaluate(task="regression", labels=targets, values=predictions, config=cfg))
    (chance, *_) = real.gates
    assert real.blessed and chance.metric == "r2" and chance.bound["lower"] == 0.0
    assert chance.value == pytest.approx(r2_score(targets, predictions))
    assert chance.bound["interval"][0] > 0.0
    noise = np.random.default_rng(1).permutation(predictions)
    shuffled = decide(evaluate(task="regression", labels=targets, values=noise, config=cfg))
    assert not shuffled.blessed
    assert shuffled.failures[0].value == pytest.approx(r2_score(targets, noise))
    assert "predicting the mean" in shuffled.failures[0].message


@pytest.mark.parametrize("samples", [200, 0])
def test_multiclass_must_beat_always_predicting_the_most_frequent_class(samples: int) -> None:
    labels, proba, classes = marital_probabilities(TRAIN, TEST)
    cfg = EvaluationConfig(bootstrap={"samples": samples})
    kwargs = {"task": "multiclass", "probabilities": proba, "config": cfg}
    real = decide(evaluate(labels=labels, **kwargs))
    (chance, *_) = real.gates
    share = np.bincount(labels).max() / len(labels)
    assert chance.bound["lower"] == pytest.approx(share)
    assert chance.value == pytest.approx(accuracy_score(labels, proba.argmax(axis=1)))
    assert real.blessed and len(classes) > 2
    shuffled_labels = np.random.default_rng(2).permutation(labels)
    shuffled = decide(evaluate(labels=shuffled_labels, **kwargs))
    assert not shuffled.blessed and "most frequent class" in shuffled.failures[0].message


def _noisier(seed: int, sd: float) -> np.ndarray:
    """SCORES with noise that ranks worse but answers the same at the threshold 0.5.

    The threshold gates (accuracy, recall) then see the same decisions, so only the AUC
    gates can tell the two apart.
    """
    noisy = np.clip(SCORES + np.random.default_rng(seed).normal(0, sd, SCORES.size), 0, 1)
    same_side = (noisy >= 0.5) == (SCORES >= 0.5)
    return np.where(same_side, noisy, SCORES)


def _kind(result: EvaluationResult, kind: str) -> EvaluationResult:
    result.model = {"kind": kind}
    return result


def test_the_linear_candidate_is_the_default_baseline() -> None:
    linear = _kind(_binary(LABELS, SCORES), "linear")
    # A network that learned less than the linear model, though more than chance.
    weaker = _noisier(3, 0.35)
    mlp = _kind(_binary(LABELS, weaker), "mlp")
    everyone = {"linear": linear, "mlp": mlp}
    bad = decide(mlp, name="mlp", candidates=everyone)
    assert not bad.blessed and bad.defaults
    (failed,) = bad.failures
    assert failed.name == "auc no worse than the linear baseline" and failed.default
    assert failed.bound["limit"] == linear.intervals["auc"].lower
    assert failed.baseline == pytest.approx(roc_auc_score(LABELS, SCORES))
    itself = decide(linear, name="linear", candidates=everyone)
    assert itself.blessed and itself.gates[3].skipped

    no_linear = {"mlp": mlp, "gbt": _kind(_binary(LABELS, SCORES), "gbt")}
    skipped = decide(no_linear["gbt"], name="gbt", candidates=no_linear)
    assert skipped.blessed
    assert skipped.gates[3].skipped and "candidates: mlp, gbt" in skipped.gates[3].message


def test_no_worse_than_production_within_the_margin_and_its_interval() -> None:
    production = _binary(LABELS, SCORES)
    base = production.metric("auc")
    assert base is not None
    lower = production.intervals["auc"].lower
    slightly = _binary(LABELS, np.clip(SCORES + (LABELS - 0.5) * -0.002, 0, 1))
    (*_, close) = decide(slightly, baseline=production).gates
    assert close.passed and not close.skipped and close.kind == "change"
    assert close.bound["lower"] == pytest.approx(min(base - 0.01, lower))
    assert close.diff == pytest.approx(roc_auc_score(LABELS, slightly.predictions) - base)

    worse = _binary(LABELS, _noisier(4, 0.3))
    decision = decide(worse, baseline=production)
    assert not decision.blessed
    assert [g.name for g in decision.failures] == ["auc no worse than production by more than 0.01"]
    assert "the lower end of production's 95% bootstrap interval" in decision.failures[0].message
    # A wider margin lets the same drop through: the bound is the lower of the two.
    lenient = _binary(LABELS, worse.predictions, default_margin=0.2)
    assert decide(lenient, baseline=production).blessed

    other_records = _binary(LABELS[:1000], SCORES[:1000])
    mismatched = decide(other_records, baseline=production)
    assert not mismatched.blessed and "different records" in mismatched.failures[0].message


def test_default_gates_off_and_no_gates_is_ungated_never_blessed() -> None:
    result = _binary(LABELS, SCORES, default_gates=False)
    decision = decide(result)
    assert not decision.blessed and decision.ungated and decision.gates == []
    assert decision.warnings[0].startswith("ungated: no gate judged this model")
    data = decision.to_dict()
    assert data["ungated"] is True and verdict(data) == "ungated"
    # Gates that all skip judge nothing: not blessed either (a first model's change gate).
    change = GateConfig(metric="auc", change={"direction": "higher", "absolute": -0.01})
    skipped = decide(result, gates=[change])
    assert skipped.ungated and not skipped.blessed and skipped.gates[0].skipped


def test_configured_gates_that_all_skip_leave_the_judgment_to_the_defaults() -> None:
    change = GateConfig(metric="auc", change={"direction": "higher", "absolute": -0.01})
    decision = decide(_binary(SHUFFLED, SCORES), gates=[change])
    assert decision.defaults and not decision.blessed
    assert decision.gates[0].skipped and not decision.gates[0].default
    assert [g.name for g in decision.failures] == [CHANCE, MAJORITY]
    assert any("none of the 1 configured gate(s) could judge" in w for w in decision.warnings)


def test_ungated_candidates_pick_the_best_by_select_unblessed() -> None:
    weaker = np.clip(SCORES + np.random.default_rng(5).normal(0, 0.3, SCORES.size), 0, 1)
    candidates = [
        CandidateEvaluation(n, Path(n), _binary(LABELS, s, default_gates=False), 0.01, 1)
        for n, s in (("weak", weaker), ("strong", SCORES))
    ]
    for c in candidates:
        c.decision = decide(c.result)
    chosen = pick(candidates, "auc")
    assert chosen is not None and chosen.name == "strong" and not chosen.blessed
    assert chosen.reason.startswith("chosen, ungated") and chosen.summary()["ungated"] is True


def test_older_records_are_read_the_same_way() -> None:
    assert verdict({"blessed": True, "gates": []}) == "blessed"  # blessed before defaults
    assert verdict({"blessed": False, "gates": []}) == "ungated"
    skipped = {"name": "auc change", "passed": True, "skipped": True}
    assert is_ungated({"blessed": False, "gates": [skipped]})
    failed = {"name": "auc", "passed": False}
    assert verdict({"blessed": False, "gates": [skipped, failed]}) == "not blessed"
    assert verdict(None) == "unevaluated" and not is_ungated(None)


def test_default_gate_settings_are_validated() -> None:
    settings = EvaluationConfig()
    assert settings.default_gates is True and settings.default_margin == 0.01
    with pytest.raises(ValidationError, match="default_margin"):
        EvaluationConfig.model_validate({"default_margin": -0.1})


def _rare_positive_model(rows: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """A model that ranks well (AUC ~0.9) but, at 0.5, answers 'positive' almost never.

    The shape of a rare positive class trained without weights: ~10% positives, scores
    squeezed below the threshold, and the few rows above it mostly negatives, so its
    accuracy falls just below always answering 'negative' while its recall is ~1.5%.
    """
    rng = np.random.default_rng(6)
    labels = (rng.random(rows) < 0.1).astype(np.int64)
    logits = rng.normal(-4.0, 1.0, rows) + 2.0 * labels
    confusing = rng.choice(np.flatnonzero(labels == 0), 20, replace=False)
    logits[confusing] = 0.5
    return labels, 1.0 / (1.0 + np.exp(-logits))


def test_a_model_below_the_majority_share_with_no_recall_is_not_blessed() -> None:
    labels, scores = _rare_positive_model()
    result = _binary(labels, scores)
    decision = decide(result)
    assert not decision.blessed and decision.defaults
    assert result.metric("auc") is not None and result.metric("auc") > 0.85  # type: ignore[operator]
    majority, recall = decision.failures
    share = 1 - labels.mean()
    accuracy = accuracy_score(labels, scores >= 0.5)
    assert majority.name == MAJORITY and majority.value == pytest.approx(accuracy)
    assert accuracy < share
    assert f"accuracy {accuracy:.4g}" in majority.message
    assert (
        f"majority share {share:.4g}" in majority.message
        and "always answering 0" in majority.message
    )
    assert 'threshold = "f1_optimal"' in majority.message
    found = recall_score(labels, scores >= 0.5)
    assert recall.name == RECALL and recall.value == pytest.approx(found) and found < 0.1
    assert f"is {found:.4g} at its operating threshold 0.5 (configured)" in recall.message
    assert "below the floor 0.1 ([evaluation] default_min_recall)" in recall.message
    assert "lower default_min_recall" in recall.message
    # The fix the message names: the threshold that suits the aim.
    fixed = decide(_binary(labels, scores, threshold="f1_optimal"))
    assert fixed.blessed, [g.message for g in fixed.failures]


def test_the_recall_floor_is_a_setting_and_zero_turns_it_off() -> None:
    labels, scores = _rare_positive_model()
    off = decide(_binary(labels, scores, default_min_recall=0.0))
    recall = next(g for g in off.gates if g.metric == "recall")
    assert recall.skipped and recall.message == "skipped: [evaluation] default_min_recall = 0"
    assert [g.name for g in off.failures] == [MAJORITY]
    with pytest.raises(ValidationError, match="default_min_recall"):
        EvaluationConfig.model_validate({"default_min_recall": 1.5})


def test_with_costs_the_model_is_compared_with_the_cheaper_constant_answer() -> None:
    labels, scores = _rare_positive_model()
    cost = {"false_positive": 1.0, "false_negative": 20.0}
    # Missing a positive costs 20 false alarms: the cost-optimal threshold is low, so the
    # accuracy falls below the majority share, and that is the point.
    result = _binary(labels, scores, threshold="cost_optimal", cost=cost)
    assert result.metric("accuracy") < 1 - labels.mean()  # type: ignore[operator]
    decision = decide(result)
    assert decision.blessed, [g.message for g in decision.failures]
    gate = next(g for g in decision.gates if g.metric == "cost_per_1000")
    positives, negatives = labels.sum(), len(labels) - labels.sum()
    constant = min(20.0 * positives, 1.0 * negatives) * 1000 / len(labels)
    assert gate.bound["upper"] == pytest.approx(constant) and gate.value < constant
    # The same costs at a threshold that answers 'negative' to nearly all: costlier.
    naive = decide(_binary(labels, scores, cost=cost))
    failed = next(g for g in naive.failures if g.metric == "cost_per_1000")
    assert "costs more than answering always" in failed.message


def test_multiclass_and_regression_get_no_threshold_gates() -> None:
    labels, proba, _ = marital_probabilities(TRAIN, TEST)
    cfg = EvaluationConfig(bootstrap={"samples": 0})
    multiclass = decide(evaluate(task="multiclass", labels=labels, probabilities=proba, config=cfg))
    # Its chance gate already is accuracy against the majority share, beyond its interval.
    assert [g.metric for g in multiclass.gates] == ["accuracy"] * 3
    targets, predictions = age_predictions(TRAIN, TEST)
    regression = decide(evaluate(task="regression", labels=targets, values=predictions, config=cfg))
    assert [g.metric for g in regression.gates] == ["r2"] * 3


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=4, max_size=60).filter(
        lambda v: 0 < sum(v) < len(v)
    ),
    seed=st.integers(0, 2**16),
)
def test_the_majority_gate_passes_exactly_when_accuracy_reaches_the_share(
    labels: list[int], seed: int
) -> None:
    y = np.asarray(labels)
    scores = np.random.default_rng(seed).random(y.size)
    gate = next(g for g in decide(_binary(y, scores, samples=0)).gates if g.name == MAJORITY)
    accuracy = ((scores >= 0.5) == y).sum() / y.size
    share = np.bincount(y).max() / y.size
    assert gate.passed == (accuracy >= share) and gate.bound["lower"] == pytest.approx(share)
