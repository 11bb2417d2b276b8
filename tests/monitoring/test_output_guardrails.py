"""The canary's output guardrails: broken answers, its own evaluation, its validated quality."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mooring.config._monitoring import GuardrailsConfig
from mooring.monitoring._baselines import prediction_statistics
from mooring.monitoring._guardrails import GuardrailResult, live_metric_guardrail
from mooring.monitoring._output_guardrails import output_guardrails

RULES = GuardrailsConfig(min_prediction_rows=200)


def logged(scores: np.ndarray[Any, Any], *, ages: np.ndarray[Any, Any] | None = None) -> pa.Table:
    """Logged rows as the server writes them: inputs, then the model's outputs."""
    n = scores.size
    ages = ages if ages is not None else np.arange(n, dtype=np.float64) % 70 + 18
    return pa.table(
        {
            "age": ages,
            "output.probabilities": [[1.0 - s, s] for s in scores.tolist()],
            "output.classes": [">50K" if s > 0.5 else "<=50K" for s in scores.tolist()],
        }
    )


def reference(scores: np.ndarray[Any, Any]) -> Any:
    classes = np.where(scores > 0.5, ">50K", "<=50K")
    return prediction_statistics(probabilities=np.stack([1 - scores, scores], 1), classes=classes)


def judge(
    canary: pa.Table | None,
    production: pa.Table | None,
    ref: Any,
    *,
    canary_eval: dict[str, Any] | None = None,
    production_eval: dict[str, Any] | None = None,
    rules: GuardrailsConfig = RULES,
) -> dict[str, GuardrailResult]:
    results = output_guardrails(
        canary,
        production,
        reference=ref,
        reference_source="test reference",
        canary_eval=canary_eval or {"metrics": {"auc": 0.8}, "data_fingerprint": "a" * 64},
        production_eval=production_eval,
        rules=rules,
    )
    return {r.name: r for r in results}


rng = np.random.default_rng(0)
GOOD = rng.beta(2, 5, 2000)
STALE = rng.beta(5, 2, 2000)  # a stale production model answering very differently


def test_a_canary_behaving_as_validated_passes_however_far_from_production() -> None:
    results = judge(logged(GOOD[:600]), logged(STALE[:600]), reference(GOOD))
    assert results["outputs"].status == "ok"
    assert results["broken"].status == "ok"
    # Reported, not decisive.
    assert results["divergence"].status == "ok" and (results["divergence"].value or 0) > 0.3
    assert "not decisive" in results["divergence"].message
    decisive = GuardrailsConfig(min_prediction_rows=200, divergence_js=0.2)
    made = judge(logged(GOOD[:600]), logged(STALE[:600]), reference(GOOD), rules=decisive)
    assert made["divergence"].status == "breach"


def test_a_canary_unlike_its_own_evaluation_breaches() -> None:
    results = judge(logged(STALE[:600]), logged(STALE[:600]), reference(GOOD))
    own = results["outputs"]
    assert own.status == "breach" and "does not behave as it did when validated" in own.message
    divergence = results["divergence"]
    assert divergence.status == "ok" and divergence.value is not None and divergence.value < 0.1


def test_constant_answers_to_varying_inputs_are_broken() -> None:
    flat = np.full(300, 0.3)
    results = judge(logged(flat), logged(GOOD[:300]), reference(flat))
    assert results["broken"].status == "breach" and "constant model" in results["broken"].message
    # Identical inputs may get identical answers.
    same = judge(logged(flat, ages=np.full(300, 40.0)), logged(GOOD[:300]), reference(flat))
    assert same["broken"].status == "ok"


def test_nan_outputs_are_broken_at_once() -> None:
    scores = GOOD[:50].copy()
    scores[3] = np.nan
    result = judge(logged(scores), logged(GOOD[:50]), reference(GOOD))["broken"]
    assert result.status == "breach" and "1 of 50" in result.message


def test_few_rows_wait_and_no_log_at_all_does_not() -> None:
    few = judge(logged(GOOD[:50]), logged(GOOD[:50]), reference(GOOD))
    assert few["outputs"].status == few["broken"].status == "insufficient_data"
    none = judge(None, None, reference(GOOD))
    assert {r.status for name, r in none.items() if name != "validated"} == {"unavailable"}


@pytest.mark.parametrize(
    ("canary", "production", "status", "words"),
    [
        # Same eval data (same sha256): compared directly.
        ({"auc": 0.70}, {"auc": 0.80}, "breach", "worse by 0.1000"),
        ({"auc": 0.79}, {"auc": 0.80}, "ok", "on the same data"),
    ],
)
def test_validated_quality_on_the_same_data(
    canary: dict[str, float], production: dict[str, float], status: str, words: str
) -> None:
    fingerprint = "b" * 64
    result = judge(
        None,
        None,
        None,
        canary_eval={"metrics": canary, "data_fingerprint": fingerprint, "data": "e.csv"},
        production_eval={"version": 1, "metrics": production, "data_fingerprint": fingerprint},
    )["validated"]
    assert result.status == status and words in result.message


def test_validated_quality_on_other_data_needs_the_runs_comparison_or_beats_chance() -> None:
    prod = {"version": 1, "metrics": {"auc": 0.83}, "data_fingerprint": "p" * 64, "data": "young"}
    compared = {"version": 1, "metrics": {"auc": 0.68}}
    better = {"metrics": {"auc": 0.71}, "data_fingerprint": "c" * 64, "baseline": compared}
    kept = judge(None, None, None, canary_eval=better, production_eval=prod)["validated"]
    assert kept.status == "ok"
    shuffled = {"metrics": {"auc": 0.54}, "data_fingerprint": "c" * 64, "baseline": compared}
    result = judge(None, None, None, canary_eval=shuffled, production_eval=prod)["validated"]
    assert result.status == "breach" and "worse by 0.1400" in result.message
    # Without the run's comparison the numbers are not comparable: only chance is.
    alone = {"metrics": {"auc": 0.71}, "data_fingerprint": "c" * 64}
    ok = judge(None, None, None, canary_eval=alone, production_eval=prod)["validated"]
    assert ok.status == "ok" and "not comparable" in ok.message
    inverted = {"metrics": {"auc": 0.30}, "data_fingerprint": "c" * 64}
    bad = judge(None, None, None, canary_eval=inverted, production_eval=prod)["validated"]
    assert bad.status == "breach" and "no better than chance" in bad.message


def test_the_live_metric_is_an_interval_valid_at_every_look() -> None:
    # 0.03 worse at a standard error of the difference of 0.014: one look's 5% bar would
    # roll it back, but the labels are re-tested at every tick; the interval still
    # reaches below the 0.02 margin, so it is undecided. It leans worse than the margin,
    # so the step waits for more labels.
    near = live_metric_guardrail((0.75, 1000, 0.01), (0.78, 1000, 0.01), GuardrailsConfig())
    assert near.state == "undecided" and near.numbers["drop"] == pytest.approx(0.03)
    assert not near.advisory and near.interval is not None and near.interval[0] < 0.02
    assert "the step waits for them" in near.message
    # Leaning no worse than the margin, undecided labels do not hold the step.
    close = live_metric_guardrail((0.77, 1000, 0.01), (0.78, 1000, 0.01), GuardrailsConfig())
    assert close.state == "undecided" and close.advisory
    # 0.08 worse on the same labels: past the margin beyond the interval.
    worse = live_metric_guardrail((0.70, 1000, 0.01), (0.78, 1000, 0.01), GuardrailsConfig())
    assert worse.state == "fail"
    # No worse on many labels: passes; clearly better: a win.
    same = live_metric_guardrail((0.78, 20000, 0.002), (0.78, 20000, 0.002), GuardrailsConfig())
    assert same.state == "pass" and same.numbers["win"] is False
    win = live_metric_guardrail((0.86, 3000, 0.006), (0.78, 3000, 0.007), GuardrailsConfig())
    assert win.state == "pass" and win.numbers["win"] is True


def test_a_few_labels_never_roll_a_canary_back_many_do() -> None:
    # 0.05 worse on 60 labels each: within the uncertainty of the difference.
    few = live_metric_guardrail(
        (0.75, 60, 0.06), (0.80, 60, 0.055), GuardrailsConfig(min_labels=50)
    )
    assert few.state == "undecided" and few.numbers["standard_error"] > 0.05
    many = live_metric_guardrail((0.72, 5000, 0.007), (0.80, 5000, 0.006), GuardrailsConfig())
    assert many.status == "breach"
    none = live_metric_guardrail((None, 0), (None, 0), GuardrailsConfig())
    assert none.status == "unavailable"
    required = live_metric_guardrail((None, 0), (None, 0), GuardrailsConfig(require_labels=True))
    assert required.status == "insufficient_data"
