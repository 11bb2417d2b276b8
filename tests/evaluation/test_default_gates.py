"""The default gates on Adult's records: chance, the prior, the chosen threshold, the linear
candidate, production; ungated.

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
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from mooring.config._evaluation import EvaluationConfig, GateConfig
from mooring.evaluation._candidates import CandidateEvaluation, pick
from mooring.evaluation._defaults import hanley_mcneil
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import decide
from mooring.evaluation._result import EvaluationResult, Prior
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
PRIOR = "log_loss below always predicting the training base rate"
UNCHOSEN = "accuracy, recall and precision at a chosen threshold"
MAJORITY = "accuracy at least the majority share"
PRECISION = "precision above the positive share at the chosen threshold"
RECALL = "recall at least 0.1 at the chosen threshold"
TRAINING = "the training data's statistics"


def _binary(
    labels: np.ndarray,
    scores: np.ndarray,
    samples: int = 200,
    prior: Prior | None = None,
    **config: object,
) -> EvaluationResult:
    cfg = EvaluationConfig.model_validate({"bootstrap": {"samples": samples}, **config})
    return evaluate(task="binary", labels=labels, scores=scores, config=cfg, prior=prior)


def test_a_real_model_is_blessed_by_the_default_gates_which_say_so() -> None:
    result = _binary(LABELS, SCORES)
    decision = decide(result)
    assert decision.blessed and decision.defaults and not decision.ungated
    chance, prior, unchosen, linear, production = decision.gates
    assert all(g.default for g in decision.gates)
    assert [g.name for g in decision.judged] == [CHANCE, PRIOR]
    assert chance.value == pytest.approx(roc_auc_score(LABELS, SCORES))
    interval = result.intervals["auc"]
    assert chance.bound["interval"] == [interval.lower, interval.upper] and interval.lower > 0.5
    assert "bootstrap interval" in chance.message
    # No training prior given: the evaluated rows' own rate, and the gate says so.
    share = LABELS.mean()
    assert prior.value == pytest.approx(log_loss(LABELS, SCORES))
    assert prior.bound["upper"] == pytest.approx(log_loss(LABELS, np.full(LABELS.size, share)))
    assert prior.passed and "read from the evaluated rows themselves" in prior.message
    # The threshold 0.5 is the configuration's, not chosen: accuracy and recall do not judge.
    assert unchosen.name == UNCHOSEN and unchosen.skipped
    assert "is a number in the configuration" in unchosen.message
    assert 'threshold = "f1_optimal"' in unchosen.message
    assert linear.skipped and "no linear baseline" in linear.message
    assert production.skipped and "first model" in production.message
    assert any("judged by the default gates" in w for w in decision.warnings)
    data = orjson.loads(orjson.dumps(decision.to_dict()))
    assert data["defaults"] is True and data["ungated"] is False
    assert [g["default"] for g in data["gates"]] == [True] * 5


def test_the_prior_is_the_training_base_rate_when_the_result_has_it() -> None:
    _, train_labels = income_scores(TRAIN)
    rate = float(train_labels.mean())
    prior = Prior(TRAINING, frequencies=(1.0 - rate, rate))
    result = _binary(LABELS, SCORES, prior=prior)
    gate = next(g for g in decide(result).gates if g.name == PRIOR)
    assert gate.bound["upper"] == pytest.approx(log_loss(LABELS, np.full(LABELS.size, rate)))
    assert gate.bound["prior"] == pytest.approx([1.0 - rate, rate])
    assert gate.passed and f"the base rate {rate:.4g} (read from {TRAINING})" in gate.message
    assert orjson.loads(result.to_json())["prior"]["frequencies"] == pytest.approx([1 - rate, rate])
    # Probabilities worse than that constant fail it, naming the value and a fix.
    squeezed = _binary(LABELS, np.clip(SCORES * 3.0, 0.0, 0.999), prior=prior)
    failed = next(g for g in decide(squeezed).failures if g.name == PRIOR)
    assert failed.value == pytest.approx(log_loss(LABELS, squeezed.predictions))
    assert failed.value >= failed.bound["upper"]
    assert f"log_loss {failed.value:.4g} vs" in failed.message
    assert "class_weight is set, remove it" in failed.message


@pytest.mark.parametrize("samples", [200, 0])
def test_shuffled_labels_are_not_blessed_and_the_message_names_gate_value_interval(
    samples: int,
) -> None:
    result = _binary(SHUFFLED, SCORES, samples)
    decision = decide(result)
    assert not decision.blessed and not decision.ungated
    failed, worse_than_prior = decision.failures
    assert worse_than_prior.name == PRIOR
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
    train_mean = float(np.mean([float(r["age"]) for r in TRAIN]))
    prior = Prior(TRAINING, mean=train_mean)
    cfg = EvaluationConfig(bootstrap={"samples": samples})
    kwargs = {"task": "regression", "labels": targets, "config": cfg, "prior": prior}
    real = decide(evaluate(values=predictions, **kwargs))  # type: ignore[arg-type]
    chance, mean, *_ = real.gates
    assert real.blessed and chance.metric == "r2" and chance.bound["lower"] == 0.0
    assert chance.value == pytest.approx(r2_score(targets, predictions))
    assert chance.bound["interval"][0] > 0.0
    assert mean.name == "squared error below predicting the training mean beyond its interval"
    assert mean.value == pytest.approx(mean_squared_error(targets, predictions) ** 0.5)
    constant = np.full(targets.size, train_mean)
    assert mean.bound["upper"] == pytest.approx(mean_squared_error(targets, constant) ** 0.5)
    assert mean.passed and mean.bound["improvement_interval"][0] > 0.0
    noise = np.random.default_rng(1).permutation(predictions)
    shuffled = decide(evaluate(values=noise, **kwargs))  # type: ignore[arg-type]
    assert not shuffled.blessed
    assert shuffled.failures[0].value == pytest.approx(r2_score(targets, noise))
    assert "predicting the mean" in shuffled.failures[0].message
    assert shuffled.failures[1].name == mean.name
    assert "whose lower end is not above 0" in shuffled.failures[1].message


@pytest.mark.parametrize("samples", [200, 0])
def test_multiclass_must_beat_always_predicting_the_most_frequent_class(samples: int) -> None:
    labels, proba, classes = marital_probabilities(TRAIN, TEST)
    cfg = EvaluationConfig(bootstrap={"samples": samples})
    kwargs = {"task": "multiclass", "probabilities": proba, "config": cfg}
    real = decide(evaluate(labels=labels, **kwargs))
    (chance, prior, *_) = real.gates
    share = np.bincount(labels).max() / len(labels)
    assert chance.bound["lower"] == pytest.approx(share)
    assert chance.value == pytest.approx(accuracy_score(labels, proba.argmax(axis=1)))
    assert real.blessed and len(classes) > 2
    everyone = list(range(len(classes)))
    assert prior.name == "log_loss below always predicting the training class frequencies"
    assert prior.value == pytest.approx(log_loss(labels, proba, labels=everyone))
    frequencies = np.bincount(labels, minlength=len(classes)) / len(labels)
    constant = np.tile(frequencies, (len(labels), 1))
    assert prior.bound["upper"] == pytest.approx(log_loss(labels, constant, labels=everyone))
    shuffled_labels = np.random.default_rng(2).permutation(labels)
    shuffled = decide(evaluate(labels=shuffled_labels, **kwargs))
    assert not shuffled.blessed and "most frequent class" in shuffled.failures[0].message


def _noisier(seed: int, sd: float) -> np.ndarray:
    """SCORES with noise on their log-odds: it ranks worse, still better than the prior."""
    logits = np.log(SCORES / (1.0 - SCORES))
    noisy = logits + np.random.default_rng(seed).normal(0, sd, SCORES.size)
    return 1.0 / (1.0 + np.exp(-noisy))


def _kind(result: EvaluationResult, kind: str) -> EvaluationResult:
    result.model = {"kind": kind}
    return result


def test_the_linear_candidate_is_the_default_baseline() -> None:
    linear = _kind(_binary(LABELS, SCORES), "linear")
    # A network that learned less than the linear model, though more than chance.
    weaker = _noisier(3, 1.0)
    mlp = _kind(_binary(LABELS, weaker), "mlp")
    everyone = {"linear": linear, "mlp": mlp}
    bad = decide(mlp, name="mlp", candidates=everyone)
    assert not bad.blessed and bad.defaults
    (failed,) = bad.failures
    assert failed.name == "auc no worse than the linear baseline" and failed.default
    assert failed.bound["limit"] == linear.intervals["auc"].lower
    assert "give this one more capacity or training" in failed.message
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

    worse = _binary(LABELS, _noisier(4, 1.0))
    decision = decide(worse, baseline=production)
    assert not decision.blessed
    assert [g.name for g in decision.failures] == ["auc no worse than production by more than 0.01"]
    assert "the lower end of production's 95% bootstrap interval" in decision.failures[0].message
    assert "raise [evaluation] default_margin (now 0.01)" in decision.failures[0].message
    # A wider margin lets the same drop through: the bound is the lower of the two.
    lenient = _binary(LABELS, worse.predictions, default_margin=0.2)
    assert decide(lenient, baseline=production).blessed

    other_records = _binary(LABELS[:1000], SCORES[:1000])
    mismatched = decide(other_records, baseline=production)
    assert not mismatched.blessed and "different records" in mismatched.failures[0].message


def test_default_gates_off_and_no_gates_is_ungated_never_blessed() -> None:
    result = _binary(LABELS, SCORES, default_gates=False)
    decision = decide(result)
    assert not decision.blessed and decision.ungated and decision.gates == ()
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
    assert [g.name for g in decision.failures] == [CHANCE, PRIOR]
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
    assert chosen.reason.startswith("chosen, ungated") and chosen.summary().ungated is True


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

    The shape of a rare positive class: ~10% positives, calibrated scores mostly below
    the threshold 0.5, and 20 negatives scoring 0.62, so at 0.5 its accuracy falls just
    below always answering 'negative' while its recall is ~1.5%.
    """
    rng = np.random.default_rng(6)
    labels = (rng.random(rows) < 0.1).astype(np.int64)
    logits = rng.normal(-4.0, 1.0, rows) + 2.0 * labels
    confusing = rng.choice(np.flatnonzero(labels == 0), 20, replace=False)
    logits[confusing] = 0.5
    return labels, 1.0 / (1.0 + np.exp(-logits))


def test_a_rare_positive_model_is_judged_by_what_it_is_not_by_the_threshold_05() -> None:
    labels, scores = _rare_positive_model()
    share = 1 - labels.mean()
    # At 0.5 it answers 'negative' to nearly every row: below the majority share, recall
    # ~0, which refused it when gates judged a threshold nobody chose.
    assert accuracy_score(labels, scores >= 0.5) < share
    assert recall_score(labels, scores >= 0.5) < 0.1
    at_half = decide(_binary(labels, scores))
    assert at_half.blessed, [g.message for g in at_half.failures]
    assert [g.name for g in at_half.judged] == [CHANCE, PRIOR]
    # At the F1 optimum the threshold gates judge; accuracy is skipped, saying why.
    result = _binary(labels, scores, threshold="f1_optimal")
    decision = decide(result)
    assert decision.blessed, [g.message for g in decision.failures]
    _, _, majority, precision, recall, *_ = decision.gates
    assert majority.name == MAJORITY and majority.skipped
    assert "trades accuracy for recall" in majority.message
    threshold = result.operating_threshold
    assert threshold is not None and result.threshold_source == "f1_optimal"
    assert precision.name == PRECISION and precision.passed
    assert precision.value == pytest.approx(precision_score(labels, scores >= threshold))
    assert precision.bound["lower"] == pytest.approx(labels.mean())
    assert recall.name == RECALL and recall.passed
    assert recall.value == pytest.approx(recall_score(labels, scores >= threshold))
    assert f"at its operating threshold {threshold:.4g} (f1_optimal)" in recall.message


def test_a_precision_target_picks_the_lowest_threshold_that_reaches_it() -> None:
    labels, scores = _rare_positive_model()
    result = _binary(labels, scores, threshold={"precision": 0.6})
    precisions, recalls, thresholds = precision_recall_curve(labels, scores)
    # scikit-learn's curve: the lowest threshold whose precision reaches the target.
    first = int(np.flatnonzero(precisions[:-1] >= 0.6)[0])
    assert result.operating_threshold == pytest.approx(thresholds[first])
    assert result.threshold_source == "precision_target"
    assert result.metric("recall") == pytest.approx(recalls[first])
    decision = decide(result)
    target = next(g for g in decision.gates if g.metric == "precision")
    assert target.name == "precision at least the target 0.6 at the chosen threshold"
    assert target.passed and target.value == pytest.approx(precisions[first])
    assert decision.blessed, [g.message for g in decision.failures]
    # The report says how the threshold was chosen; the JSON records it with its source.
    from mooring.dashboard._evaluation_report import render_evaluation_html

    page = render_evaluation_html(result, decision)
    assert "precision ≥ 0.6 on the evaluated rows (precision_target)" in page
    recorded = orjson.loads(result.to_json(decision))
    assert recorded["threshold_source"] == "precision_target"
    assert recorded["config"]["threshold"] == {"precision": 0.6, "recall": None}
    # So high a target that the few rows above it are not one positive in ten: the
    # recall floor fails, naming the fix.
    strict = decide(_binary(labels, scores, threshold={"precision": 0.95}))
    (failed,) = strict.failures
    assert failed.name == RECALL and failed.value is not None and failed.value < 0.1
    assert "Lower the precision target" in failed.message


def test_an_unreachable_precision_target_fails_naming_the_one_reached() -> None:
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 0])
    scores = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1])
    result = _binary(labels, scores, samples=0, threshold={"precision": 0.9})
    best = max(precision_recall_curve(labels, scores)[0][:-1])
    gate = next(g for g in decide(result).failures if g.metric == "precision")
    assert gate.value == pytest.approx(best) and best < 0.9
    assert f"the highest is {best:.4g}" in gate.message
    assert f"threshold = {{ precision = {np.floor(best * 100) / 100:g} }}" in gate.message


def test_a_recall_target_is_judged_by_its_precision() -> None:
    labels, scores = _rare_positive_model()
    result = _binary(labels, scores, threshold={"recall": 0.5})
    precisions, recalls, thresholds = precision_recall_curve(labels, scores)
    last = int(np.flatnonzero(recalls[:-1] >= 0.5)[-1])
    assert result.operating_threshold == pytest.approx(thresholds[last])
    gates = decide(result).gates
    assert [g.name for g in gates[2:-2]] == [PRECISION]
    assert gates[2].value == pytest.approx(precisions[last])
    # The same recall target on labels the scores know nothing of: no better than random.
    noise = np.random.default_rng(7).permutation(labels)
    shuffled = decide(_binary(noise, scores, threshold={"recall": 0.5}))
    failed = next(g for g in shuffled.failures if g.name == PRECISION)
    assert "no better than the positive share" in failed.message


def test_the_recall_floor_is_a_setting_and_zero_turns_it_off() -> None:
    labels, scores = _rare_positive_model()
    off = decide(_binary(labels, scores, threshold={"precision": 0.95}, default_min_recall=0.0))
    recall = next(g for g in off.gates if g.metric == "recall")
    assert recall.skipped and recall.message == "skipped: [evaluation] default_min_recall = 0"
    assert off.blessed
    with pytest.raises(ValidationError, match="default_min_recall"):
        EvaluationConfig.model_validate({"default_min_recall": 1.5})
    with pytest.raises(ValidationError, match="exactly one of precision or recall"):
        EvaluationConfig.model_validate({"threshold": {"precision": 0.8, "recall": 0.5}})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        EvaluationConfig.model_validate({"threshold": {"precision": 1.5}})


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
    # Scores that put two negatives above every positive, at equal costs: no threshold
    # beats answering 'negative' to all, the cost-optimal one is that constant answer,
    # and the model saves nothing.
    useless = np.tile([0, 0, 1], 40)
    descending = np.linspace(0.9, 0.1, useless.size)
    equal = {"false_positive": 1.0, "false_negative": 1.0}
    nothing = decide(_binary(useless, descending, threshold="cost_optimal", cost=equal))
    failed = next(g for g in nothing.failures if g.metric == "cost_per_1000")
    assert failed.value == pytest.approx(failed.bound["upper"])
    assert "the model saves nothing over a constant" in failed.message
    # The same costs at the configured 0.5: not a chosen threshold, not judged.
    naive = decide(_binary(labels, scores, cost=cost))
    assert not any(g.metric == "cost_per_1000" for g in naive.gates)
    assert '"cost_optimal"' in next(g for g in naive.gates if g.name == UNCHOSEN).message


def test_multiclass_and_regression_get_no_threshold_gates() -> None:
    labels, proba, _ = marital_probabilities(TRAIN, TEST)
    cfg = EvaluationConfig(bootstrap={"samples": 0})
    multiclass = decide(evaluate(task="multiclass", labels=labels, probabilities=proba, config=cfg))
    # Its chance gate already is accuracy against the majority share, beyond its interval.
    assert [g.metric for g in multiclass.gates] == ["accuracy", "log_loss", "accuracy", "accuracy"]
    targets, predictions = age_predictions(TRAIN, TEST)
    regression = decide(evaluate(task="regression", labels=targets, values=predictions, config=cfg))
    assert [g.metric for g in regression.gates] == ["r2", "rmse", "r2", "r2"]


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=4, max_size=60).filter(
        lambda v: 0 < sum(v) < len(v)
    ),
    seed=st.integers(0, 2**16),
)
def test_at_the_f1_optimum_the_precision_gate_passes_exactly_above_the_positive_share(
    labels: list[int], seed: int
) -> None:
    y = np.asarray(labels)
    scores = np.random.default_rng(seed).random(y.size)
    result = _binary(y, scores, samples=0, threshold="f1_optimal")
    gate = next(g for g in decide(result).gates if g.name == PRECISION)
    assert result.operating_threshold is not None
    precision = precision_score(y, scores >= result.operating_threshold, zero_division=0)
    assert gate.value == pytest.approx(precision)
    assert gate.passed == (precision > y.mean()) and gate.bound["lower"] == pytest.approx(y.mean())


def _folder(home: Path, label: dict[str, object], fingerprint: str, kind: str = "mlp") -> object:
    """What :func:`training_prior` reads of a model folder: its ``mooring.json``."""
    from types import SimpleNamespace

    from mooring.formats._labels import LabelEncoding

    metadata = {"label": label, "statistics_hash": fingerprint, "kind": kind}
    encoding = LabelEncoding.from_dict(label)
    return SimpleNamespace(
        metadata=metadata, label=encoding, kind=kind, label_vocabulary=list(encoding.vocabulary)
    )


def test_the_training_prior_is_read_from_the_models_own_training_statistics(
    tmp_path: Path,
) -> None:
    import pyarrow as pa

    from mooring.contract._statistics import compute_statistics
    from mooring.evaluation._model import TRAIN_STATISTICS, training_prior

    income = np.array([r["class"] for r in TRAIN])
    table = pa.table({"class": income, "flag": (income == ">50K").astype(np.int64)})
    stats = compute_statistics(table)
    stats.save(tmp_path / TRAIN_STATISTICS)
    rate = float((income == ">50K").mean())
    text = {"column": "class", "task": "binary", "vocabulary": ["<=50K", ">50K"]}
    found = training_prior(_folder(tmp_path, text, stats.fingerprint()), tmp_path)  # type: ignore[arg-type]
    assert found == Prior(TRAINING, frequencies=(pytest.approx(1 - rate), pytest.approx(rate)))
    flag = {"column": "flag", "task": "binary", "vocabulary": ["1", "0"]}  # positive first
    numeric = training_prior(_folder(tmp_path, flag, stats.fingerprint()), tmp_path)  # type: ignore[arg-type]
    assert numeric is not None and numeric.frequencies == pytest.approx((rate, 1 - rate))
    # Statistics of another training file are not this model's: no prior from them.
    assert training_prior(_folder(tmp_path, text, "0" * 64), tmp_path) is None  # type: ignore[arg-type]
    # A regression's mean is also in the label encoding training standardised it with.
    amount = {"column": "amount", "task": "regression", "mean": 41.5, "std": 3.0}
    recorded = training_prior(_folder(tmp_path, amount, "0" * 64), tmp_path)  # type: ignore[arg-type]
    assert recorded == Prior("the model's label encoding (mooring.json)", mean=41.5)
    imported = _folder(tmp_path, amount, "0" * 64, kind="imported")
    assert training_prior(imported, tmp_path) is None  # type: ignore[arg-type]
