"""Gates and the blessing decision, with TensorFlow Model Analysis semantics."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pytest

from mooring.config._evaluation import EvaluationConfig, GateConfig
from mooring.evaluation._compare import compare, compare_predictions
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import decide
from mooring.evaluation._result import EvaluationResult


def _result(noise: float = 0.0, seed: int = 0, **config: object) -> EvaluationResult:
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    if noise:
        p = np.clip(p + np.random.default_rng(seed).normal(0, noise, n), 0, 1)
    table = pa.table({"sex": np.where(np.arange(n) % 3 == 0, "F", "M")})
    cfg = EvaluationConfig.model_validate(
        {"bootstrap": {"samples": 0}, "slices": ["sex"], **config}
    )
    return evaluate(task="binary", labels=y, scores=p, table=table, config=cfg)


def gate(**kwargs: object) -> GateConfig:
    return GateConfig.model_validate(kwargs)


def test_value_bounds_are_inclusive() -> None:
    result = _result()
    auc = result.metric("auc")
    assert auc is not None
    decision = decide(result, gates=[gate(metric="auc", lower=auc, upper=auc)])
    assert decision.blessed
    failed = decide(result, gates=[gate(metric="auc", lower=np.nextafter(auc, 1.0))])
    assert not failed.blessed
    assert "outside" in failed.gates[0].message
    assert failed.gates[0].value == auc


def test_slice_gate_and_unknown_slice() -> None:
    result = _result()
    ok = decide(result, gates=[gate(metric="auc", slice="sex=F", lower=0.5)])
    assert ok.blessed and ok.gates[0].value == result.metric("auc", "sex=F")
    bad = decide(result, gates=[gate(metric="auc", slice="sex=X", lower=0.5)])
    assert not bad.blessed
    assert "slice 'sex=X' does not exist" in bad.gates[0].message


def test_metric_not_computed_fails_with_a_message() -> None:
    result = _result()
    decision = decide(result, gates=[gate(metric="rmse", upper=1.0)])
    assert not decision.blessed
    assert decision.gates[0].message.startswith("failed: rmse was not computed")
    assert "not computed for binary models" in decision.gates[0].message


@pytest.mark.parametrize(
    ("direction", "absolute", "relative", "passes"),
    [
        ("higher", -0.01, None, True),  # diff = -0.001 >= -0.01
        ("higher", 0.0, None, False),  # diff < 0
        ("higher", None, -0.05, True),  # ratio ≈ -0.1% >= -5%
        ("higher", -0.01, 0.0, False),  # both must pass
        ("lower", 0.0, None, True),  # for "lower is better", diff <= 0
        ("lower", -0.01, None, False),
    ],
)
def test_change_thresholds_follow_tfma(
    direction: str, absolute: float | None, relative: float | None, passes: bool
) -> None:
    baseline = _result()
    candidate = _result()
    c = candidate.metric("auc")
    assert c is not None
    b = c + 0.001  # the production model was slightly better
    baseline.metrics["auc"] = b
    change = {"direction": direction}
    if absolute is not None:
        change["absolute"] = absolute
    if relative is not None:
        change["relative"] = relative
    decision = decide(candidate, baseline=baseline, gates=[gate(metric="auc", change=change)])
    g = decision.gates[0]
    assert g.kind == "change"
    assert g.passed is passes
    assert g.diff == pytest.approx(c - b)
    assert g.baseline == b


def test_relative_change_against_zero_baseline_fails() -> None:
    baseline = _result()
    baseline.metrics["brier"] = 0.0
    decision = decide(
        _result(),
        baseline=baseline,
        gates=[gate(metric="brier", change={"direction": "lower", "relative": 0.1})],
    )
    assert not decision.blessed
    assert "relative change is undefined" in decision.gates[0].message


def test_first_model_skips_change_thresholds_explicitly() -> None:
    decision = decide(
        _result(),
        baseline=None,
        gates=[
            gate(metric="auc", lower=0.5, change={"direction": "higher", "absolute": 0.0}),
            gate(metric="flip_rate", upper=0.05),
        ],
    )
    assert decision.blessed
    kinds = [(g.kind, g.skipped) for g in decision.gates]
    assert kinds == [("value", False), ("change", True), ("value", True)]
    assert "first model" in decision.gates[1].message
    assert any("first model" in w for w in decision.warnings)


def test_no_gates_means_the_default_gates_judge_and_say_so() -> None:
    decision = decide(_result(), gates=[])
    assert decision.blessed and decision.defaults
    assert [g.name for g in decision.judged] == [
        "auc beats chance beyond its interval",
        "log_loss below always predicting the training base rate",
    ]
    assert all(g.default for g in decision.gates)
    warning = decision.warnings[0]
    assert warning.startswith("no [[evaluation.gates]] configured: judged by the default gates")


def test_no_gates_and_no_default_gates_is_ungated_not_blessed() -> None:
    decision = decide(_result(default_gates=False), gates=[])
    assert not decision.blessed and decision.ungated and decision.gates == ()
    assert "ungated" in decision.warnings[0]


def test_gates_default_to_the_configured_ones() -> None:
    result = _result(gates=[{"metric": "auc", "lower": 0.99}])
    decision = decide(result)
    assert not decision.blessed
    assert [g.metric for g in decision.failures] == ["auc"]


def test_baseline_on_other_records_fails_change_gates() -> None:
    other = evaluate(
        task="binary",
        labels=[0, 1, 1, 0],
        scores=[0.1, 0.9, 0.8, 0.4],
        config=EvaluationConfig.model_validate({"bootstrap": {"samples": 0}}),
    )
    decision = decide(
        _result(),
        baseline=other,
        gates=[gate(metric="auc", change={"direction": "higher", "absolute": 0})],
    )
    assert not decision.blessed
    assert "different records" in decision.gates[0].message


def test_flip_rate_and_mean_abs_diff_are_reported_and_gateable() -> None:
    baseline = _result()
    candidate = _result(noise=0.05, seed=1)
    comparison = compare(candidate, baseline)
    assert candidate.predictions is not None and baseline.predictions is not None
    flips = (candidate.predictions >= 0.5) != (baseline.predictions >= 0.5)
    assert comparison.flip_rate == pytest.approx(flips.mean())
    assert comparison.mean_abs_diff == pytest.approx(
        np.abs(candidate.predictions - baseline.predictions).mean()
    )
    decision = decide(
        candidate,
        baseline=baseline,
        gates=[gate(metric="flip_rate", upper=0.0), gate(metric="mean_abs_diff", upper=1.0)],
    )
    assert [g.passed for g in decision.gates] == [False, True]
    fresh = _result(noise=0.05, seed=1)
    missing = decide(fresh, baseline=baseline, gates=[gate(metric="flip_rate", upper=1.0)])
    assert not missing.blessed and "needs a baseline" in missing.gates[0].message
    given = decide(
        fresh,
        baseline=baseline,
        gates=[gate(metric="flip_rate", upper=1.0)],
        candidate_vs_baseline=comparison,
    )
    assert given.blessed


def test_compare_predictions_multiclass_and_regression() -> None:
    a = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    b = np.array([[0.6, 0.3, 0.1], [0.5, 0.2, 0.3]])
    c = compare_predictions("multiclass", a, b)
    assert c.flip_rate == 0.5
    assert c.mean_abs_diff == pytest.approx((0.1 + 0.3) / 2)
    r = compare_predictions("regression", np.array([1.0, 2.0]), np.array([1.5, 2.0]))
    assert r.flip_rate is None and r.mean_abs_diff == 0.25


def test_decision_dict_is_plain_json() -> None:
    decision = decide(_result(), gates=[gate(metric="auc", lower=0.5)])
    data = orjson.loads(orjson.dumps(decision.to_dict()))
    assert set(data) == {"blessed", "gates", "warnings", "defaults", "ungated"}
    assert set(data["gates"][0]) >= {
        "name",
        "metric",
        "slice",
        "value",
        "bound",
        "kind",
        "passed",
        "message",
        "default",
    }


def test_an_accuracy_gate_at_the_majority_share_reads_it_from_the_evaluated_rows() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(800) < 0.2).astype(np.int64)  # 80% negatives
    p = np.clip(0.45 * y + 0.6 * rng.random(800), 0, 1)
    cfg = EvaluationConfig.model_validate({"bootstrap": {"samples": 0}})
    result = evaluate(task="binary", labels=y, scores=p, config=cfg)
    share = np.bincount(y).max() / y.size
    accuracy = ((p >= 0.5) == y).mean()
    (judged,) = decide(result, gates=[gate(metric="accuracy", lower="majority")]).gates
    assert judged.name == "accuracy in [majority share, inf]"
    assert judged.bound == {"lower": pytest.approx(share), "upper": None, "reference": "majority"}
    assert judged.passed == (accuracy >= share) and judged.value == pytest.approx(accuracy)
    assert "the most frequent class's share" in judged.message
    # Always answering the majority class scores exactly the share: it passes, nothing less.
    always = evaluate(task="binary", labels=y, scores=np.zeros(y.size), config=cfg)
    (even,) = decide(always, gates=[gate(metric="accuracy", lower="majority")]).gates
    assert even.passed and even.value == pytest.approx(share)
    orjson.dumps(even.to_dict())


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"metric": "auc", "lower": "majority"}, "gate on 'auc': lower = 'majority'"),
        (
            {"metric": "accuracy", "slice": "sex=F", "lower": "majority"},
            r"gate on 'accuracy' \[sex=F\]: lower = 'majority' .* without a slice",
        ),
        ({"metric": "accuracy", "lower": "most"}, "lower"),
    ],
)
def test_a_majority_bound_is_for_overall_accuracy_only(
    config: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        GateConfig.model_validate(config)
