"""The replay flip gate judges flips against what the candidate was trained to change.

A drift-fixing retrain: the population moves (its inputs shift and the label's rule
with them); production learned the old population, the candidate the new one. On recent
traffic the candidate disagrees with production on well over 10% of the decisions and
is right more often: the gate passes it, by the labels of the replayed rows or, without
them, by the flips it already showed against production on its evaluation data. A
candidate that flips as much without being better (trained on shuffled labels) is still
refused. The "models" are logistic regressions on two columns (milliseconds to fit);
the gate's core works on their decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression

from mooring.evaluation._compare import compare_predictions
from mooring.formats._feedback import SCHEMA
from mooring.formats._predictions import REQUEST_ID
from mooring.pipeline._replay import FlipEvidence, encode_feedback, judge_flips, sign_test

BOUND = 0.1  # what `mooring init` writes


def _population(rng: np.random.Generator, rows: int, *, new: bool) -> tuple[Any, Any]:
    """Two columns and a label; the new population is shifted and follows another rule."""
    x = rng.normal(0.0, 1.0, (rows, 2))
    if new:
        x += [1.0, -0.5]
        logit = 3.0 * (x[:, 0] - 1.0) - 2.0 * x[:, 1]
    else:
        logit = 3.0 * x[:, 0] + 1.0 * x[:, 1]
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return x, y


@dataclass
class Drift:
    recent: Any  # the replayed traffic, from the new population
    labels: Any  # its labels, as the feedback store would give them
    holdout: Any  # [data] eval of the new population
    holdout_labels: Any
    production: LogisticRegression  # trained on the old population
    retrained: LogisticRegression  # trained on the new one
    shuffled: LogisticRegression  # trained on the new one with its labels shuffled

    def decisions(self, model: LogisticRegression, rows: Any) -> Any:
        return model.predict_proba(rows)[:, 1] >= 0.5

    def flips(self, model: LogisticRegression) -> tuple[Any, Any]:
        return self.decisions(model, self.recent), self.decisions(self.production, self.recent)

    def trained(self, model: LogisticRegression) -> dict[str, Any]:
        """The comparison the evaluate step records: candidate vs production on [data] eval."""
        comparison = compare_predictions(
            "binary",
            model.predict_proba(self.holdout)[:, 1],
            self.production.predict_proba(self.holdout)[:, 1],
            labels=self.holdout_labels,
        )
        return comparison.to_dict()


@pytest.fixture(scope="module")
def drift() -> Drift:
    rng = np.random.default_rng(11)
    old_x, old_y = _population(rng, 3000, new=False)
    new_x, new_y = _population(rng, 3000, new=True)
    holdout, holdout_labels = _population(rng, 1000, new=True)
    recent, labels = _population(rng, 1000, new=True)
    shuffled = rng.permutation(new_y)
    return Drift(
        recent,
        labels,
        holdout,
        holdout_labels,
        LogisticRegression().fit(old_x, old_y),
        LogisticRegression().fit(new_x, new_y),
        LogisticRegression().fit(new_x, shuffled),
    )


def test_the_drift_fixing_retrain_disagrees_with_production_and_is_better(drift: Drift) -> None:
    candidate, production = drift.flips(drift.retrained)
    assert (candidate != production).mean() > 0.1
    assert (candidate == drift.labels).mean() > (production == drift.labels).mean() + 0.05
    # The shuffled candidate (it answers the new base rate) also flips beyond the bound,
    # without being better.
    noise, _ = drift.flips(drift.shuffled)
    assert (noise != production).mean() > BOUND
    assert (noise == drift.labels).mean() < (production == drift.labels).mean()


def test_with_labels_flips_toward_the_label_are_fixes_and_only_harms_count(drift: Drift) -> None:
    candidate, production = drift.flips(drift.retrained)
    gate = judge_flips(candidate, production, BOUND, labels=drift.labels)
    evidence = FlipEvidence.from_arrays(candidate, production, drift.labels)
    assert gate["passed"] and gate["basis"] == "labels"
    assert gate["value"] == pytest.approx((candidate != production).mean())
    assert gate["value"] > BOUND
    assert gate["unexplained"] == pytest.approx(evidence.harms / evidence.rows)
    assert gate["unexplained"] <= BOUND
    assert evidence.fixes > 3 * evidence.harms and evidence.verdict == "fixes"
    assert f"{evidence.fixes} fixes vs {evidence.harms} harms" in gate["message"]

    noise, _ = drift.flips(drift.shuffled)
    refused = judge_flips(noise, production, BOUND, labels=drift.labels)
    assert not refused["passed"] and refused["basis"] in ("labels", "none")
    assert refused["unexplained"] > BOUND


def test_without_labels_the_disagreement_shown_on_its_evaluation_is_expected(
    drift: Drift,
) -> None:
    candidate, production = drift.flips(drift.retrained)
    trained = drift.trained(drift.retrained)
    assert trained["fixes"] > trained["harms"]
    gate = judge_flips(candidate, production, BOUND, trained=trained)
    assert gate["passed"] and gate["basis"] == "evaluation"
    rate = (candidate != production).mean()
    assert gate["unexplained"] == pytest.approx(max(0.0, rate - trained["flip_rate"]))
    assert "that the candidate was trained to have against production" in gate["message"]

    noise, _ = drift.flips(drift.shuffled)
    refused = judge_flips(noise, production, BOUND, trained=drift.trained(drift.shuffled))
    assert not refused["passed"] and refused["basis"] == "none"
    assert refused["unexplained"] == pytest.approx((noise != production).mean())
    message = refused["message"]
    assert "nothing shows the flips are fixes: no replayed row has a label yet" in message
    assert "flip rate against production on the evaluation data is not shown to be fixes" in (
        message
    )
    assert "`mooring feedback FILE`" in message and "replay_max_flip_rate" in message


def test_an_evaluation_on_the_old_population_explains_nothing_and_says_what_would(
    drift: Drift,
) -> None:
    # A stale [data] eval: there production is right and the candidate's few flips harm.
    stale_x, stale_y = _population(np.random.default_rng(12), 1000, new=False)
    stale = compare_predictions(
        "binary",
        drift.retrained.predict_proba(stale_x)[:, 1],
        drift.production.predict_proba(stale_x)[:, 1],
        labels=stale_y,
    ).to_dict()
    candidate, production = drift.flips(drift.retrained)
    gate = judge_flips(candidate, production, BOUND, trained=stale)
    assert not gate["passed"] and gate["basis"] == "none"
    assert "Send labels for recent traffic" in gate["message"]
    # The labels of the replayed rows then decide it.
    assert judge_flips(candidate, production, BOUND, labels=drift.labels, trained=stale)["passed"]


def test_flips_shown_to_harm_fail_below_the_bound() -> None:
    rng = np.random.default_rng(13)
    labels = rng.integers(0, 2, 2000)
    production = labels.astype(bool) ^ (rng.random(2000) < 0.1)  # right 90% of the time
    candidate = production.copy()
    right = np.flatnonzero(production == labels)[:100]  # 5% of decisions made wrong
    candidate[right] = ~candidate[right]
    gate = judge_flips(candidate, production, BOUND, labels=labels)
    assert gate["value"] == pytest.approx(0.05) and not gate["passed"]
    assert "shown to harm: 0 fixes vs 100 harms" in gate["message"]
    # Without labels nothing tells them apart: 5% of flips is within the bound.
    assert judge_flips(candidate, production, BOUND)["passed"]


def test_labels_of_the_replayed_rows_come_from_the_feedback_store() -> None:
    log = pa.table({REQUEST_ID: ["r1", "r2", "r3", "r4"], "x": [1.0, 2.0, 3.0, 4.0]})
    now = pa.scalar(0, pa.timestamp("us", tz="UTC"))
    feedback = pa.table(
        {
            REQUEST_ID: ["r2", "r4", "r9", "r1"],
            "label": [">50K", "1", ">50K", "maybe"],
            "timestamp": [now.as_py()] * 4,
            "model": ["income"] * 4,
        },
        schema=SCHEMA,
    )
    codes = encode_feedback(log, feedback, ["<=50K", ">50K"])
    assert codes is not None and codes.tolist() == [-1, 1, -1, 1]
    assert encode_feedback(log.drop_columns([REQUEST_ID]), feedback, ["a", "b"]) is None
    assert encode_feedback(log, SCHEMA.empty_table(), ["a", "b"]) is None


@settings(max_examples=60, deadline=None)
@given(wins=st.integers(0, 60), losses=st.integers(0, 60))
def test_the_sign_test_is_the_exact_binomial_tail(wins: int, losses: int) -> None:
    expected = 1.0 if wins == 0 else binomtest(wins, wins + losses, 0.5, "greater").pvalue
    assert sign_test(wins, losses) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_the_sign_test_approximation_beyond_exact_counts_is_close() -> None:
    for wins, losses in ((1100, 1000), (1040, 1000), (1500, 1400)):
        exact = binomtest(wins, wins + losses, 0.5, "greater").pvalue
        assert sign_test(wins, losses) == pytest.approx(exact, rel=0.02)


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
)
def test_fixes_minus_harms_is_the_gain_in_correct_decisions(labels: list[int], seed: int) -> None:
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    ours, theirs = rng.random(y.size), rng.random(y.size)
    comparison = compare_predictions("binary", ours, theirs, labels=y)
    gain = int(((ours >= 0.5) == y).sum() - ((theirs >= 0.5) == y).sum())
    assert comparison.fixes is not None and comparison.harms is not None
    assert comparison.fixes - comparison.harms == gain
    assert comparison.fixes + comparison.harms == round(comparison.flip_rate * y.size)  # type: ignore[operator]
