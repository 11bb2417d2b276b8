"""Performance estimated without labels from calibrated scores (CBPE): the isotonic map
against scikit-learn's, bands that hold where the map holds, a model of Adult under a
population shift, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

from mooring.config._monitoring import GuardrailsConfig
from mooring.monitoring._estimate import (
    MAX_ECE,
    EstimationReference,
    ScoreMap,
    estimate,
    estimated_guardrail,
    fit_reference,
)
from mooring.monitoring._estimate_checks import Check, verdict
from mooring.registry import ModelVersion, Registry
from tests._support.adult_arrays import adult_model_scores
from tests._support.estimation import register_scored, scored_log

Floats = npt.NDArray[np.float64]


def _realized(labels: Floats, scores: Floats, threshold: float) -> dict[str, float]:
    predicted = scores >= threshold
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted)),
    }


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20).map(lambda s: s / 20), st.booleans()),
        min_size=2,
        max_size=200,
    ),
    st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=20),
)
def test_the_isotonic_map_is_scikit_learns_ties_and_out_of_range_included(
    pairs: list[tuple[float, bool]], at: list[float]
) -> None:
    scores = np.array([s for s, _ in pairs])
    labels = np.array([y for _, y in pairs], dtype=np.float64)
    ours = ScoreMap.isotonic(scores, labels)(np.array(at))
    if np.unique(scores).size == 1:
        theirs = np.full(len(at), labels.mean())  # scikit-learn's interp1d needs two points
    else:
        model = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
        theirs = model.predict(np.array(at))
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_calibrated_scores_keep_the_identity_and_skewed_ones_get_a_map() -> None:
    # Calibrated scores show an ECE above the largest of 40 by chance one time in 41:
    # those get an isotonic map, which is then close to the identity.
    rng = np.random.default_rng(3)
    kept = 0
    for _ in range(10):
        p = rng.random(6000)
        calibrated = fit_reference(p, rng.random(6000) < p, threshold=0.5)
        assert calibrated.refused is None
        kept += calibrated.score_map.identity
        assert np.abs(calibrated.score_map(p) - p).mean() < 0.03
    assert kept >= 9, kept
    p = rng.random(6000)
    labels = rng.random(6000) < p
    skewed = fit_reference(p**3, labels, threshold=0.5)  # every score far too low
    assert not skewed.score_map.identity and skewed.refused is None
    assert skewed.ece_raw is not None and skewed.ece_mapped is not None
    assert skewed.ece_mapped < MAX_ECE < skewed.ece_raw
    # Mapped back, the skewed scores are the probabilities they were made from.
    assert np.abs(skewed.score_map(p[:500] ** 3) - p[:500]).mean() < 0.05


def test_realized_metrics_fall_within_the_band_where_the_map_holds() -> None:
    # Forty windows whose labels follow the probabilities the map gives: each metric's
    # realized value (scikit-learn's) is inside its 95% band in about 38 of them.
    rng = np.random.default_rng(11)
    truth = rng.random(8000)
    reference = fit_reference(truth**2, rng.random(8000) < truth, threshold=0.3)
    held = dict.fromkeys(("auc", "accuracy", "precision", "recall"), 0)
    for window in range(40):
        p = rng.beta(1 + window % 3, 2, size=600)  # populations of their own
        labels = rng.random(600) < p
        est = estimate(reference, p**2, seed=window)
        realized = _realized(labels, p**2, 0.3)
        for name in held:
            held[name] += est.metrics[name].holds(realized[name])
    assert all(count >= 33 for count in held.values()), held


def test_on_adult_older_more_educated_workers_are_estimated_before_their_labels() -> None:
    # The model's scores on a random half of adult.test are frozen with their labels; the
    # window is the other half's workers of 45 or more with a degree (about 60% earn
    # >50K, against 24%). Over four such splits the estimated AUC and accuracy hold
    # their realized values in 7 of 8 bands (95% each); the held-out accuracy, what a
    # monitor without estimates assumes, is outside every band.
    test, labels, scores = adult_model_scores()
    older = (test["age"].to_numpy() >= 45) & (test["education-num"].to_numpy() >= 13)
    held, misses = 0, []
    for seed in range(4):
        order = np.random.default_rng(seed).permutation(labels.size)
        frozen, served = order[: labels.size // 2], order[labels.size // 2 :]
        reference = fit_reference(scores[frozen], labels[frozen], threshold=0.5)
        assert reference.refused is None, reference.refused
        window = served[older[served]]
        assert labels[window].mean() > 2 * labels[frozen].mean()
        est = estimate(reference, scores[window])
        realized = _realized(labels[window], scores[window], 0.5)
        for name in ("auc", "accuracy"):
            held += est.metrics[name].holds(realized[name])
        naive = _realized(labels[frozen], scores[frozen], 0.5)["accuracy"]
        misses.append(est.metrics["accuracy"].holds(naive))
    assert held >= 7 and not any(misses), (held, misses)


def test_a_reference_without_enough_of_a_class_refuses_and_says_how_many() -> None:
    scores = np.linspace(0, 1, 500)
    labels = scores > 0.97  # 15 positives
    reference = fit_reference(scores, labels, threshold=0.5)
    assert reference.refused is not None and "15 positive" in reference.refused
    est = estimate(reference, scores)
    assert est.metrics == {} and est.refused == reference.refused


def test_scores_whose_map_cannot_be_shown_calibrated_are_refused() -> None:
    # 400 skewed scores: the map, judged out of fold, misses by more than MAX_ECE.
    rng = np.random.default_rng(0)
    p = rng.random(400)
    reference = fit_reference(p**4, rng.random(400) < p, threshold=0.5)
    assert reference.ece_mapped is not None and reference.ece_mapped > MAX_ECE
    assert reference.refused is not None and "poorly calibrated" in reference.refused
    assert estimate(reference, p).refused == reference.refused


def test_one_label_per_score_is_required() -> None:
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        fit_reference([0.1, 0.2, 0.3], [0, 1], threshold=0.5)


def test_a_window_with_no_row_predicted_positive_has_no_precision() -> None:
    rng = np.random.default_rng(2)
    p = rng.random(3000)
    reference = fit_reference(p, rng.random(3000) < p, threshold=0.5)
    est = estimate(reference, rng.random(400) * 0.4)
    assert "precision" not in est.metrics and {"auc", "accuracy", "recall"} <= set(est.metrics)
    assert estimate(reference, []).refused == "the window has no scored rows"


def test_the_stored_reference_round_trips_and_anything_else_reads_as_none() -> None:
    rng = np.random.default_rng(4)
    p = rng.random(2000)
    features = pa.table({"x": p * 10, "noise": rng.random(2000), "city": ["a"] * 2000})
    reference = fit_reference(p**2, rng.random(2000) < p, threshold=0.4, features=features)
    assert reference.support is not None and reference.support.inputs is not None
    assert [i.column for i in reference.support.inputs] == ["x"]  # the one carrying the score
    assert set(reference.spread) == {"auc", "accuracy", "precision", "recall"}
    assert EstimationReference.read(reference.to_dict()) == reference
    assert EstimationReference.read(None) is None
    assert EstimationReference.read({"threshold": "high"}) is None
    broken = EstimationReference.read({"threshold": 0.5, "score_map": {"scores": [0.1]}})
    assert broken is not None and broken.score_map.identity
    # A reference stored before the checks still estimates; its checks say they did not run.
    old = {k: v for k, v in reference.to_dict().items() if k not in ("support", "spread")}
    before = EstimationReference.read(old)
    assert before is not None and before.support is None and not before.spread
    est = estimate(before, rng.random(500) ** 4)
    assert est.unreliable is None and {"auc", "accuracy"} <= set(est.metrics)
    assert all(c.fired is None for c in est.checks if c.name != "attribution_drift")
    assert "registered before" in next(c.said for c in est.checks if c.name == "inputs")


def test_a_band_holds_what_the_map_gets_wrong_on_rows_it_was_not_fitted_on() -> None:
    # 600 held-out rows of skewed scores: the isotonic map fits their noise, and the
    # label draws alone held an i.i.d. window's realized AUC in 30 of 37 draws; the
    # self-test's out-of-fold error widens the band to hold it in about 95%.
    held = judged = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        p = rng.beta(0.6, 4, 900)
        labels = (rng.random(900) < p).astype(np.float64)
        scores = p**0.6
        reference = fit_reference(scores[:600], labels[:600], threshold=0.5, seed=seed)
        if reference.refused is not None:
            continue
        est = estimate(reference, scores[600:], seed=seed)
        judged += 1
        held += est.metrics["auc"].holds(_realized(labels[600:], scores[600:], 0.5)["auc"])
    assert judged >= 30 and held >= 0.9 * judged, (held, judged)


# -- the checks of the assumption ------------------------------------------------------------
def _world(
    rng: np.random.Generator, rows: int, low: float = 0.0
) -> tuple[Floats, Floats, pa.Table]:
    """Rows whose score is a logistic of ``x`` (drawn from ``low`` to 10) and labels drawn
    from it: calibrated where the model has seen ``x``."""
    x = rng.uniform(low, 10.0, rows)
    p = 1.0 / (1.0 + np.exp(-(x - 6.0)))
    labels = (rng.random(rows) < p).astype(np.float64)
    return p, labels, pa.table({"x": x, "other": rng.normal(size=rows)})


def test_a_window_the_model_has_seen_is_estimated_and_one_beyond_its_inputs_is_unreliable() -> None:
    rng = np.random.default_rng(21)
    scores, labels, features = _world(rng, 4000)
    reference = fit_reference(scores, labels, threshold=0.5, features=features)
    # The same population: nothing fires.
    same, _, same_inputs = _world(rng, 1500)
    assert estimate(reference, same, inputs=same_inputs).unreliable is None
    # A population the model has seen (x from 7 on: positives 3 times as common):
    # scores and rate move, the inputs stay in range, and the estimate holds.
    seen, seen_labels, seen_inputs = _world(rng, 1500, low=7.0)
    est = estimate(reference, seen, inputs=seen_inputs)
    assert est.unreliable is None, est.unreliable
    moved = {c.name: c for c in est.checks}
    assert moved["score_move"].fired and moved["prior"].fired and not moved["inputs"].fired
    assert est.metrics["accuracy"].holds(_realized(seen_labels, seen, 0.5)["accuracy"])
    # Served rows beyond anything held out (x of 12 to 20: the scores saturate, and the
    # labels no longer follow them): unreliable, saying why, the metrics kept.
    x = rng.uniform(12.0, 20.0, 1000)
    beyond = pa.table({"x": x, "other": rng.normal(size=1000)})
    est = estimate(reference, 1.0 / (1.0 + np.exp(-(x - 6.0))), inputs=beyond)
    assert est.unreliable is not None and est.metrics
    assert "100% of rows have an input outside the held-out range" in est.unreliable
    assert "x 100%" in est.unreliable and "extrapolates" in est.unreliable
    assert est.to_dict()["unreliable"] == est.unreliable


def test_without_inputs_scores_that_moved_with_the_rate_they_imply_are_unreliable() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(4000)
    reference = fit_reference(p, rng.random(4000) < p, threshold=0.5)
    assert estimate(reference, rng.random(800)).unreliable is None
    est = estimate(reference, 0.01 + 0.98 * rng.random(800) ** 4)  # low, in the map's range
    assert est.unreliable is not None
    assert est.unreliable.startswith("scores moved beyond their natural variation (distance")
    assert "the positive rate implied by the scores fell from" in est.unreliable


def _check(
    name: str, value: float | None, fired: bool | None, chance: float | None = None
) -> Check:
    return Check(name, value, None if value is None else 0.5, fired, f"{name} said", chance)


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        # Inputs in range, scores and rate moved: a shift the model has seen.
        ([_check("inputs", 0.01, False, 0.02), _check("score_move", 0.3, True),
          _check("prior", 0.1, True)], None),
        # Inputs a little beyond chance, with the scores and rate moved.
        ([_check("inputs", 0.03, False, 0.02), _check("score_move", 0.3, True),
          _check("prior", 0.1, True)], "score_move said; prior said; inputs said"),
        # Inputs not checked (no numeric input, an old reference): the scores decide.
        ([_check("inputs", None, None), _check("score_move", 0.3, True),
          _check("prior", 0.1, True)], "score_move said; prior said"),
        ([_check("inputs", None, None), _check("score_move", 0.3, True),
          _check("prior", 0.1, False)], None),
        ([_check("inputs", 0.4, True, 0.02), _check("score_move", 0.01, False)], "inputs said"),
        ([_check("score_support", 0.2, True), _check("attribution_drift", 0.6, True)],
         "score_support said; attribution_drift said"),
    ],
)  # fmt: skip
def test_the_verdict_reads_extrapolation_first_and_the_score_move_without_inputs(
    checks: list[Check], expected: str | None
) -> None:
    assert verdict(checks) == expected


def test_drifted_columns_carrying_most_attributions_make_the_estimate_unreliable() -> None:
    rng = np.random.default_rng(6)
    p = rng.random(3000)
    reference = fit_reference(p, rng.random(3000) < p, threshold=0.5)
    window = rng.random(600)
    assert estimate(reference, window, drifted={"age": 0.2}).unreliable is None
    est = estimate(reference, window, drifted={"age": 0.4, "hours": 0.25})
    assert est.unreliable == "drifted columns carry 65% of the attributions (age 40%, hours 25%)"


# -- the rollout's estimated-quality guardrail ----------------------------------------------
RULES = GuardrailsConfig(min_prediction_rows=200)


def _noisy(p: Floats, rng: np.random.Generator, noise: float) -> Floats:
    logit = np.log(p / (1.0 - p)) + rng.normal(0.0, noise, p.size)
    scores: Floats = 1.0 / (1.0 + np.exp(-logit))
    return scores


def _rollout(
    tmp_path: Path,
    noise: float,
    *,
    stored: bool = True,
    fingerprint: str = "e" * 64,
    served_rows: int = 3000,
    held_rows: int = 6000,
) -> tuple[ModelVersion, ModelVersion, Floats, Floats]:
    """Production (its scores the true probabilities) and a canary whose scores carry
    ``noise`` (logit scale), each with its map from ``held_rows`` held-out rows; the canary's
    references hold production's map on its evaluation rows when ``stored``; and both
    versions' scores on the same ``served_rows`` served rows."""
    rng = np.random.default_rng(8)
    held = np.clip(rng.beta(2, 3, held_rows), 1e-4, 1 - 1e-4)
    labels = rng.random(held_rows) < held
    production_ref = fit_reference(held, labels, threshold=0.5).to_dict()
    canary_ref = fit_reference(_noisy(held, rng, noise), labels, threshold=0.5).to_dict()
    if stored:
        canary_ref["production"] = {**production_ref, "version": 1}
    served = np.clip(rng.beta(2, 3, served_rows), 1e-4, 1 - 1e-4)
    registry = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "a")
    with registry:
        production = register_scored(registry, tmp_path / "src", 0, production_ref)
        canary = register_scored(registry, tmp_path / "src", 1, canary_ref, fingerprint=fingerprint)
    return canary, production, _noisy(served, rng, noise), served


def test_a_canary_estimated_worse_on_the_same_traffic_fails_before_any_label(
    tmp_path: Path,
) -> None:
    canary, production, canary_scores, production_scores = _rollout(tmp_path, noise=2.0)
    result = estimated_guardrail(
        scored_log(canary_scores), scored_log(production_scores), canary, production, RULES
    )
    assert result.status == "breach", result.message
    assert result.interval is not None and result.interval[1] < -RULES.estimated_drop
    assert "estimated auc" in result.message and "on the same traffic" in result.message
    assert result.numbers["production_map"] == "income@1 on income@2's evaluation data"


def test_a_canary_as_good_as_production_passes_and_a_short_window_waits_unheld(
    tmp_path: Path,
) -> None:
    # 40,000 held-out and 20,000 served rows narrow the difference's band below the
    # margin (the band holds what the held-out rows leave unknown of each map, and no
    # estimate is surer than its held-out rows); 3,000 served do not.
    canary, production, canary_scores, production_scores = _rollout(
        tmp_path, noise=0.05, served_rows=20_000, held_rows=40_000
    )
    result = estimated_guardrail(
        scored_log(canary_scores), scored_log(production_scores), canary, production, RULES
    )
    assert result.status == "ok", result.message
    few = estimated_guardrail(
        scored_log(canary_scores[:50]), scored_log(production_scores), canary, production, RULES
    )
    assert few.status == "insufficient_data" and few.advisory, few
    assert "50 logged rows" in few.message
    undecided = estimated_guardrail(
        scored_log(canary_scores[:3000]),
        scored_log(production_scores[:3000]),
        canary,
        production,
        RULES,
    )
    assert undecided.status == "insufficient_data" and undecided.advisory, undecided
    off = GuardrailsConfig(estimated_drop=False)
    assert estimated_guardrail(None, None, canary, production, off).status == "off"


def test_maps_fitted_on_different_data_are_not_compared(tmp_path: Path) -> None:
    canary, production, canary_scores, production_scores = _rollout(
        tmp_path, noise=2.0, stored=False, fingerprint="f" * 64
    )
    result = estimated_guardrail(
        scored_log(canary_scores), scored_log(production_scores), canary, production, RULES
    )
    assert result.status == "unavailable", result
    assert "no score map of income@1 on income@2's evaluation data" in result.message
    # On the same evaluation data, production's own map is used.
    same, other, c_scores, p_scores = _rollout(tmp_path / "same", noise=2.0, stored=False)
    result = estimated_guardrail(scored_log(c_scores), scored_log(p_scores), same, other, RULES)
    assert result.status == "breach", result.message
    assert result.numbers["production_map"] == "income@1's own evaluation (the same data)"


def test_the_kept_scores_are_whichever_is_better_calibrated_out_of_fold() -> None:
    # Small, slightly skewed held-out sets: the map is kept only where it is closer out of
    # fold, so a reference whose raw scores are within MAX_ECE is never refused.
    rng = np.random.default_rng(12)
    for _ in range(20):
        p = rng.random(300)
        reference = fit_reference(p**1.3, rng.random(300) < p, threshold=0.5)
        assert reference.ece_raw is not None and reference.ece_mapped is not None
        kept = reference.ece_raw if reference.score_map.identity else reference.ece_mapped
        if not reference.score_map.identity:
            assert reference.ece_mapped < reference.ece_raw, reference
        assert (reference.refused is None) == (kept <= MAX_ECE), reference
