"""The canary's output guardrails: broken answers, its own evaluation, its validated quality."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import tempfile
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mooring.config._monitoring import GuardrailsConfig
from mooring.contract._statistics import compute_statistics
from mooring.formats._predictions import (
    CLIENT_REQUEST_ID,
    CONTRACT_VIOLATIONS,
    LOG_COLUMNS,
    MODEL,
    MODEL_VERSION,
    REQUEST_ID,
    SHADOW,
    TIMESTAMP,
    VIOLATIONS_TYPE,
    read_prediction_log,
    write_log_table,
)
from mooring.monitoring._baselines import prediction_statistics
from mooring.monitoring._guardrail_live import live_metric_guardrail
from mooring.monitoring._guardrails import GuardrailResult
from mooring.monitoring._output_guardrails import move_shape, output_guardrails
from tests._support.generated_tables import TableSpec, table_specs

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
    production_ref: Any = None,
) -> dict[str, GuardrailResult]:
    results = output_guardrails(
        canary,
        production,
        reference=ref,
        reference_source="test reference",
        canary_eval=canary_eval or {"metrics": {"auc": 0.8}, "data_fingerprint": "a" * 64},
        production_eval=production_eval,
        rules=rules,
        production_reference=production_ref,
        production_reference_source="production's test reference",
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


def test_a_metric_near_its_margin_says_the_budget_decides_not_a_million_more_labels() -> None:
    # The live AUC of a retrained canary on real traffic after 701 labels (bench_regime):
    # 0.022 worse against a 0.02 margin, its interval wide on both sides.
    near = live_metric_guardrail((0.6599, 701, 0.02), (0.6822, 12799, 0.005), GuardrailsConfig())
    assert near.state == "undecided" and near.needed is not None
    assert re.search(r"about [\d,]+ more labels per version expected \([\d,]+ times", near.needed)
    assert "end-of-horizon policy decide" in near.needed and near.needed in near.message
    # Far from the margin, the count is what the next labels can bring: nothing to add.
    early = live_metric_guardrail((0.60, 150, 0.04), (0.68, 150, 0.04), GuardrailsConfig())
    assert early.state == "undecided" and early.needed is not None
    assert early.needed.endswith("more labels per version expected"), early.needed


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


# -- the reference of the outputs guardrail once the traffic moved -----------------------
# Production was evaluated where scores lean low (beta(2, 5)); the traffic moved, and
# production's own live scores now lean high (beta(5, 2)). The canary was retrained for the
# new traffic but evaluated on the same stale file: its own evaluation outputs lean low too.
drift = np.random.default_rng(7)
EVAL_TIME = reference(drift.beta(2, 5, 2000))  # both versions' outputs on the stale eval file
MOVED = drift.beta(5, 2, 3000)  # production's live scores on the new traffic
# Production on traffic like its evaluation data: a fresh draw of the same distribution.
UNMOVED = drift.beta(2, 5, 3000)


def test_a_drift_fixing_canary_close_to_production_on_the_traffic_passes() -> None:
    fixing = drift.beta(4.5, 2, 250)  # near production on the same traffic
    results = judge(logged(fixing), logged(MOVED), EVAL_TIME, production_ref=EVAL_TIME)
    outputs = results["outputs"]
    assert outputs.status == "ok", outputs.message
    assert outputs.numbers["reference_used"] == "production on the same traffic"
    assert "reference: production's outputs on the same traffic, because production's own " in (
        outputs.message
    )
    assert "the evaluation data no longer looks like the traffic" in outputs.message
    # Both distances are reported: far from its own stale evaluation, near production.
    own = max(outputs.numbers["jensen_shannon"].values())
    moved = max(outputs.numbers["production_moved"].values())
    assert own > 0.5 and moved > 0.5 and outputs.value is not None and outputs.value < 0.2
    assert outputs.value == max(outputs.numbers["canary_vs_production"].values())
    # A canary registered without its own evaluation outputs is judged on production too.
    bare = judge(logged(fixing), logged(MOVED), None, production_ref=EVAL_TIME)["outputs"]
    assert bare.status == "ok" and "no own reference" in bare.message
    # Without production's evaluation outputs, the stale evaluation still decides.
    alone = judge(logged(fixing), logged(MOVED), EVAL_TIME)["outputs"]
    assert alone.status == "breach" and "whether the traffic moved cannot be told" in (
        alone.message
    )
    assert "point it at recent labelled data and re-run `mooring run`" in alone.message


def test_a_moved_traffic_waits_for_production_s_outputs_before_judging_the_canary() -> None:
    """The canary logs its outputs first: unlike its stale evaluation, it waits for
    production's on the same traffic instead of failing on that evaluation alone."""
    fixing = drift.beta(4.5, 2, 250)
    results = output_guardrails(
        logged(fixing),
        logged(MOVED[:150]),  # fewer than min_prediction_rows since the rollout started
        reference=EVAL_TIME,
        reference_source="test reference",
        canary_eval={"metrics": {"auc": 0.8}, "data_fingerprint": "a" * 64},
        production_eval=None,
        rules=RULES,
        production_reference=EVAL_TIME,
        production_reference_source="production's test reference",
        production_recent=logged(MOVED),  # its newest rows, from before the rollout too
    )
    outputs = next(r for r in results if r.name == "outputs")
    assert outputs.status == "insufficient_data", outputs.message
    assert "production on the same traffic decides, from 200 of its outputs" in outputs.message
    assert "(150 so far)" in outputs.message
    assert max(outputs.numbers["jensen_shannon"].values()) > RULES.prediction_js


def test_a_canary_unlike_production_on_the_same_traffic_still_fails() -> None:
    odd = drift.beta(0.4, 0.4, 250)  # neither its evaluation nor production on this traffic
    outputs = judge(logged(odd), logged(MOVED), EVAL_TIME, production_ref=EVAL_TIME)["outputs"]
    assert outputs.status == "breach"
    assert outputs.numbers["reference_used"] == "production on the same traffic"
    assert "it answers the traffic unlike production" in outputs.message
    assert outputs.threshold == RULES.prediction_js and (outputs.value or 0) > 0.2


def test_without_drift_the_canary_is_judged_on_its_own_evaluation_as_before() -> None:
    # Production's live outputs are within natural variation of its evaluation outputs.
    unlike = judge(logged(MOVED[:250]), logged(UNMOVED), EVAL_TIME, production_ref=EVAL_TIME)
    outputs = unlike["outputs"]
    assert outputs.status == "breach" and outputs.numbers["reference_used"] == "own evaluation"
    assert "does not behave as it did when validated" in outputs.message
    assert "production's own outputs moved only" in outputs.message
    assert "(natural variation 0.0" in outputs.message
    moved = outputs.numbers["production_moved"]["output.score"]
    natural = outputs.numbers["production_natural_variation"]["output.score"]
    assert moved < natural and natural >= 0.25 * 0.2
    # A canary like its own evaluation passes on it, whatever production does.
    like = judge(logged(UNMOVED[:250]), logged(MOVED), EVAL_TIME, production_ref=EVAL_TIME)
    assert like["outputs"].status == "ok"
    assert like["outputs"].numbers["reference_used"] == "own evaluation"


# Two populations on inputs (x1, x2): the new one moved x1 (covariate shift) and its labels
# follow a stronger, higher-based rule (concept shift). Production learnt the old rule; a
# retrain learnt the new one; both were evaluated on the stale file of the old population.
world = np.random.default_rng(11)
OLD_X = world.normal(0.0, 1.0, (2000, 2))
NEW_X = world.normal(0.0, 1.0, (3000, 2)) + np.array([1.0, 0.0])


def old_rule(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-(x[:, 0] + x[:, 1]))))


def new_rule(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-(3.0 * (x[:, 0] + x[:, 1]) + 1.5))))


def moved_world(canary_live: np.ndarray[Any, Any], canary_rule: Any) -> GuardrailResult:
    """The outputs guardrail with both versions evaluated on the old population."""
    return judge(
        logged(canary_live),
        logged(old_rule(NEW_X)),
        reference(canary_rule(OLD_X)),
        production_ref=reference(old_rule(OLD_X)),
    )["outputs"]


def test_covariate_shift_a_retrain_answering_like_production_passes_on_production() -> None:
    like = moved_world(old_rule(NEW_X[:250] + np.array([0.05, 0.0])), old_rule)
    assert like.status == "ok", like.message
    assert like.numbers["reference_used"] == "production on the same traffic"
    assert max(like.numbers["jensen_shannon"].values()) > 0.2  # its stale evaluation fails it


def test_concept_shift_a_good_retrain_unlike_production_passes_on_production_s_move() -> None:
    retrain = moved_world(new_rule(NEW_X[:250]), new_rule)
    assert retrain.status == "ok", retrain.message
    assert retrain.numbers["reference_used"] == "production's move on the same traffic"
    # Unlike its stale evaluation and unlike production, but moved as production moved.
    assert max(retrain.numbers["jensen_shannon"].values()) > 0.2
    assert max(retrain.numbers["canary_vs_production"].values()) > 0.2
    assert retrain.value is not None and retrain.value < 0.2
    assert retrain.value == max(retrain.numbers["move_unlike_production"].values())
    assert "it moved like production, so the traffic moved, not the canary" in retrain.message
    assert "labels (the live metric) tell which answers better" in retrain.message
    assert "point [data] eval at recent labelled data" in retrain.message


@pytest.mark.parametrize(
    ("harm", "live"),
    [
        # Served unlike its evaluation: x1 reaches it unscaled (ten times too large).
        ("serving skew", lambda x: new_rule(x * [10.0, 1.0])),
        # Its answers turned around: the positive class's probability logged as the other's.
        ("inverted", lambda x: 1.0 - new_rule(x)),
    ],
)
def test_a_canary_that_moved_unlike_production_fails_on_the_moved_traffic(
    harm: str, live: Any
) -> None:
    bad = moved_world(live(NEW_X[:250]), new_rule)
    assert bad.status == "breach", (harm, bad.message)
    assert "its outputs moved unlike production's, so the traffic does not explain them" in (
        bad.message
    )
    assert "it answers the traffic unlike production" in bad.message
    assert "check how the canary is served" in bad.message
    assert max(bad.numbers["move_unlike_production"].values()) > 0.2


def test_without_drift_the_move_of_production_is_not_consulted() -> None:
    # Traffic from the old population: production did not move; a skewed canary fails on
    # its own evaluation, and the moves are not compared.
    skewed = judge(
        logged(new_rule(OLD_X[:250] * [10.0, 1.0])),
        logged(old_rule(world.normal(0.0, 1.0, (3000, 2)))),
        reference(new_rule(OLD_X)),
        production_ref=reference(old_rule(OLD_X)),
    )["outputs"]
    assert skewed.status == "breach" and skewed.numbers["reference_used"] == "own evaluation"
    assert "move_unlike_production" not in skewed.numbers


@settings(max_examples=25, deadline=None)
@given(
    power=st.floats(0.3, 3.0),
    shift=st.floats(0.8, 1.5),
    down=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_moves_compare_on_positions_whatever_scale_a_version_answers_in(
    power: float, shift: float, down: bool, seed: int
) -> None:
    # On the same moved traffic, a canary answering in another (monotone) scale than
    # production moved exactly like it; one whose answers turned around moved the other way.
    r = np.random.default_rng(seed)
    shift = -shift if down else shift
    x_eval, x_live = r.normal(0.0, 1.0, 3000), r.normal(shift, 1.0, 400)
    p_eval, p_live = 1 / (1 + np.exp(-x_eval)), 1 / (1 + np.exp(-x_live))
    p_ref = compute_statistics(pa.table({"output.score": p_eval}))
    rules = GuardrailsConfig(min_prediction_rows=200)

    def unlike(c_eval: Any, c_live: Any) -> float:
        ref = compute_statistics(pa.table({"output.score": c_eval}))
        live, p_table = pa.table({"output.score": c_live}), pa.table({"output.score": p_live})
        return move_shape(live, ref, p_table, p_ref, rules)["output.score"]

    assert unlike(p_eval**power, p_live**power) < 1e-9
    assert unlike(p_eval**power, (1 - p_live) ** power) > 0.2


# -- every column type the prediction log holds ------------------------------------------
#: Columns the generated tables lack, each constant or varying: (kind, varies) → array.
EXTRA = {
    "large_text": lambda n, v: pa.array(
        [f"t{i % 3 if v else 0}" for i in range(n)], pa.large_string()
    ),
    "decimal": lambda n, v: pa.array(
        [decimal.Decimal(f"{i % 4 if v else 1}.25") for i in range(n)], pa.decimal128(6, 2)
    ),
    "list": lambda n, v: pa.array([[1.0, float(i % 2 if v else 0)] for i in range(n)]),
    "struct": lambda n, v: pa.array([{"a": i % 2 if v else 0, "b": "x"} for i in range(n)]),
    "binary": lambda n, v: pa.array([b"\x00" * (1 + (i % 2 if v else 0)) for i in range(n)]),
    "null": lambda n, v: pa.nulls(n),
    "big_id": lambda n, v: pa.array([2**60 + (i if v else 0) for i in range(n)], pa.int64()),
}


def _as_logged(table: pa.Table, scores: np.ndarray[Any, Any], version: int) -> pa.Table:
    n = table.num_rows
    start = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    log = {
        REQUEST_ID: [f"r{version}-{i}" for i in range(n)],
        TIMESTAMP: pa.array(
            [start + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")
        ),
        MODEL: ["m"] * n,
        MODEL_VERSION: pa.array([version] * n, pa.int64()),
        SHADOW: [False] * n,
        CLIENT_REQUEST_ID: pa.nulls(n, pa.string()),
        CONTRACT_VIOLATIONS: pa.nulls(n, VIOLATIONS_TYPE),
    }
    outputs = {
        "output.probabilities": [[1.0 - s, s] for s in scores.tolist()],
        "output.classes": pa.array([b"yes" if s > 0.5 else b"no" for s in scores.tolist()]),
    }
    columns = {**log, **{c: table[c] for c in table.column_names}, **outputs}
    return pa.table(columns)


def _differ(column: pa.ChunkedArray) -> bool:
    return len({repr(v) for v in column.to_pylist()}) > 1


@settings(max_examples=25, deadline=None)
@given(
    spec=table_specs(max_columns=4, max_rows=160),
    extra=st.lists(st.tuples(st.sampled_from(sorted(EXTRA)), st.booleans()), max_size=3),
    keep_signal=st.booleans(),
    constant=st.booleans(),
)
def test_every_column_type_of_the_log_is_judged_without_error(
    spec: TableSpec, extra: list[tuple[str, bool]], keep_signal: bool, constant: bool
) -> None:
    names = [name for name, _ in spec.columns] + [spec.signal, spec.label]
    assume(not any(n in LOG_COLUMNS or n.startswith("output.") for n in names))
    table = spec.table().drop_columns([spec.label] + ([] if keep_signal else [spec.signal]))
    for i, (kind, varies) in enumerate(extra):
        table = table.append_column(f"extra {i} {kind}", EXTRA[kind](table.num_rows, varies))
    half = table.num_rows // 2
    scores = np.full(half, 0.3) if constant else np.linspace(0.1, 0.9, half)
    rules = GuardrailsConfig(min_prediction_rows=20)
    with tempfile.TemporaryDirectory() as folder:
        start = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        write_log_table(folder, _as_logged(table.slice(0, half), scores, 2), start)
        write_log_table(
            folder, _as_logged(table.slice(half), GOOD[: table.num_rows - half], 1), start
        )
        canary = read_prediction_log(folder, "m", version=2)
        production = read_prediction_log(folder, "m", version=1)
    # Text reads back dictionary-encoded, as the monitor meets it.
    text = [f.name for f in canary.schema if pa.types.is_dictionary(f.type)]
    assert all(pa.types.is_string(table.schema.field(c).type) for c in text)
    results = {
        r.name: r
        for r in output_guardrails(
            canary,
            production,
            reference=reference(GOOD),
            reference_source="test reference",
            canary_eval={"metrics": {"auc": 0.8}, "data_fingerprint": "a" * 64},
            production_eval=None,
            rules=rules,
            production_reference=reference(GOOD),
        )
    }
    assert set(results) == {"broken", "outputs", "validated", "divergence"}
    inputs_differ = any(_differ(table.slice(0, half)[c]) for c in table.column_names)
    broken = results["broken"]
    if constant and inputs_differ:
        assert broken.status == "breach" and "constant model" in broken.message
    else:
        assert broken.status == "ok", broken.message


STALE_COMPARISON = {
    "canary_eval": {"metrics": {"auc": 0.787}, "data_fingerprint": "c" * 64, "data": "old.csv"},
    "production_eval": {"version": 1, "metrics": {"auc": 0.827}, "data_fingerprint": "c" * 64},
}


def stale_world(canary_live: np.ndarray[Any, Any] | None) -> dict[str, GuardrailResult]:
    """Both versions evaluated on the old population; the canary scored worse there."""
    return judge(
        None if canary_live is None else logged(canary_live),
        logged(old_rule(NEW_X)),
        reference(new_rule(OLD_X)),
        production_ref=reference(old_rule(OLD_X)),
        **STALE_COMPARISON,  # type: ignore[arg-type]
    )


def test_a_comparison_on_data_the_traffic_left_waits_for_the_canary_s_outputs() -> None:
    # Before any canary row: it waits, instead of rolling back before a single request.
    waiting = stale_world(None)["validated"]
    assert waiting.status == "insufficient_data", waiting.message
    assert "worse by 0.0400" in waiting.message and "traffic moved away" in waiting.message
    # The retrain moved with the traffic: the comparison describes older traffic.
    retrain = stale_world(new_rule(NEW_X[:250]))["validated"]
    assert retrain.status == "unavailable", retrain.message
    assert "describes older traffic" in retrain.message and retrain.numbers["stale_data"]
    # Moved unlike production: it stands, marked for labels to settle.
    skewed = stale_world(new_rule(NEW_X[:250] * [10.0, 1.0]))
    assert skewed["validated"].status == "breach" and skewed["validated"].numbers["traffic_moved"]
    assert skewed["outputs"].status == "breach" and skewed["outputs"].numbers["traffic_moved"]


def test_a_comparison_on_data_the_traffic_did_not_leave_decides_at_once() -> None:
    result = judge(
        None,
        logged(old_rule(OLD_X)),
        None,
        production_ref=reference(old_rule(OLD_X)),
        **STALE_COMPARISON,  # type: ignore[arg-type]
    )["validated"]
    assert result.status == "breach" and "traffic" not in result.message, result.message


@pytest.mark.parametrize(
    ("canary_auc", "status", "advisory", "words"),
    [
        (0.90, "ok", False, "labels decide (no worse"),  # shown no worse: labels decide
        (0.79, "insufficient_data", True, "lean no worse, so the step goes on"),
        (0.70, "insufficient_data", False, "are awaited"),  # leaning worse: the step waits
        (0.40, "breach", False, "it answers the traffic unlike production"),  # shown worse
    ],
)
def test_labels_arriving_settle_a_canary_that_moved_unlike_production(
    canary_auc: float, status: str, advisory: bool, words: str
) -> None:
    from mooring.monitoring._rollout_state import labels_decide

    outputs = stale_world(new_rule(NEW_X[:250] * [10.0, 1.0]))["outputs"]
    live = live_metric_guardrail((canary_auc, 400, 0.02), (0.80, 400, 0.02), RULES)
    decided = {r.name: r for r in labels_decide([outputs, live])}["outputs"]
    assert (decided.status, decided.advisory) == (status, advisory), decided.message
    assert words in decided.message
