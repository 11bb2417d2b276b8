"""A regression's error estimated without labels (direct loss estimation): on Adult's own
records, on errors that grow with a column, its refusals, and the rollout's guardrail
comparing a canary's estimated error with production's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from sklearn.metrics import mean_absolute_error, mean_squared_error

from mooring.config._monitoring import GuardrailsConfig
from mooring.monitoring._estimate import estimated_guardrail
from mooring.monitoring._estimate_loss import LossReference, estimate_loss, fit_loss_reference
from mooring.monitoring._guardrails import GuardrailResult
from mooring.registry import ModelVersion, Registry
from tests._support.adult_arrays import adult_rows, age_predictions
from tests._support.estimation import register_scored, valued_log
from tests._support.generated_tables import TableSpec, table_specs

NUMBERS = ("education-num", "capital-gain", "capital-loss", "hours-per-week")
Floats = npt.NDArray[np.float64]
# A regression rollout: canary, production, the served rows, their predictions by each.
Rollout = tuple[ModelVersion, ModelVersion, pa.Table, Floats, Floats]
TEXTS = ("workclass", "education", "marital-status", "occupation", "relationship", "sex")


def _table(rows: list[dict[str, str]]) -> pa.Table:
    columns: dict[str, list[object]] = {c: [r[c] for r in rows] for c in TEXTS}
    columns.update({c: [float(r[c]) for r in rows] for c in NUMBERS})
    return pa.table(columns)


def test_on_adult_the_age_error_of_a_population_is_estimated_before_its_labels() -> None:
    # A least-squares model of age from five columns (fitted on 3,000 rows) errs by about
    # 9.6 years on adult.test; on people whose relationship is Own-child it errs by 6.3.
    # The error model frozen from 6,000 held-out rows estimates both within their bands;
    # the held-out MAE, what a monitor without estimates assumes, is outside the second.
    rows = adult_rows(rows=15000)
    age, predicted = age_predictions(rows[:3000], rows[3000:])
    table = _table(rows[3000:])
    order = np.random.default_rng(0).permutation(age.size)
    frozen, served = order[:6000], order[6000:]
    reference = fit_loss_reference(table.take(frozen), predicted[frozen], age[frozen])
    assert reference.refused is None and reference.rows == 6000
    child = np.array([r["relationship"] == "Own-child" for r in rows[3000:]])
    naive = mean_absolute_error(age[frozen], predicted[frozen])
    for window in (served, served[child[served]]):
        est = estimate_loss(reference, table.take(window), predicted[window])
        mae = mean_absolute_error(age[window], predicted[window])
        rmse = mean_squared_error(age[window], predicted[window]) ** 0.5
        assert est.metrics["mae"].holds(mae), (est.metrics["mae"], mae)
        assert est.rows == window.size and est.metrics["rmse"].value > est.metrics["mae"].value
        if window.size < served.size:
            assert mae < naive - 2 and not est.metrics["mae"].holds(naive), (mae, naive)
        else:
            assert est.metrics["rmse"].holds(rmse), (est.metrics["rmse"], rmse)


def test_errors_that_grow_with_a_column_are_followed_to_a_window_where_it_is_large() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=5000)
    truth = 2 * x + rng.normal(0.0, 1 + np.abs(x))
    reference = fit_loss_reference(pa.table({"x": x}), 2 * x, truth)
    far = np.abs(x) > 1.5
    est = estimate_loss(reference, pa.table({"x": x[far]}), 2 * x[far])
    realized = mean_absolute_error(truth[far], 2 * x[far])
    overall = mean_absolute_error(truth, 2 * x)
    assert realized > 1.5 * overall
    assert est.metrics["mae"].holds(realized), (est.metrics["mae"], realized)


def test_a_window_beyond_the_fitted_range_is_unreliable_and_not_extrapolated() -> None:
    # The error peaks mid-range of x on the held-out rows; a model of the error on the
    # prediction and its square extrapolates that hump below zero beyond them. A window
    # of x from 2 to 3 is marked unreliable, naming the columns and their range, and its
    # estimate stays within the errors the held-out rows show (trees are flat beyond).
    rng = np.random.default_rng(5)
    x = rng.random(4000)
    truth = 2 * x + rng.normal(0.0, 1.0 + 4.0 * x * (1.0 - x))
    reference = fit_loss_reference(pa.table({"x": x}), 2 * x, truth)
    assert reference.refused is None and reference.model is not None
    far = 2.0 + rng.random(500)
    est = estimate_loss(reference, pa.table({"x": far}), 2 * far)
    assert est.unreliable is not None and est.refused is None
    assert "100% of its rows have the prediction outside" in est.unreliable, est.unreliable
    assert "100% of its rows have x outside 0.005" in est.unreliable, est.unreliable
    expected, _ = reference.model.expected(pa.table({"x": x}), 2 * x)
    mae = est.metrics["mae"]
    low, high = expected.min() - 1e-9, expected.max() + 1e-9
    assert low <= mae.value <= high, (mae, low, high)
    assert mae.value > 0.5 * mean_absolute_error(truth, 2 * x), mae
    inside = estimate_loss(reference, pa.table({"x": x[:500]}), 2 * x[:500])
    assert inside.unreliable is None and inside.metrics["mae"].holds(
        mean_absolute_error(truth[:500], 2 * x[:500])
    )


def _flipping(rows: int, seed: int) -> tuple[pa.Table, Floats, Floats]:
    """Rows in time order whose error is large where x > 0 in the first half and where
    x < 0 in the second: the error depends on x, but not as it did."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    later = np.arange(rows) >= rows // 2
    scale = 1.0 + 3.0 * np.where(later, x < 0, x > 0)
    when = np.datetime64("2026-01-01T00:00:00", "s") + np.arange(rows) * np.timedelta64(3600, "s")
    table = pa.table({"x": x, "at": pa.array(when, pa.timestamp("s"))})
    return table, x, x + rng.normal(0.0, scale)


def test_an_error_model_that_misleads_on_the_later_rows_is_refused_as_not_estimable() -> None:
    # Shuffled, with a timestamp: the self-test orders the rows by it, fits the error
    # model on the earlier half and finds it further from the later half's windows than
    # the earlier half's MAE carried forward. Without the timestamp, in shuffled order,
    # the halves are alike and the error model stands.
    table, predicted, truth = _flipping(2000, seed=8)
    shuffled = np.random.default_rng(9).permutation(2000)
    table, predicted, truth = table.take(shuffled), predicted[shuffled], truth[shuffled]
    reference = fit_loss_reference(table, predicted, truth)
    test = reference.self_test
    assert test is not None and test.ordered_by == "at" and not test.passed, test
    assert test.dle > test.carried + test.noise, test
    mae = mean_absolute_error(truth, predicted)
    rmse = mean_squared_error(truth, predicted) ** 0.5
    assert reference.refused is not None and reference.model is None
    assert reference.refused.startswith("not estimable: on the later half of the held-out")
    assert "(by at)" in reference.refused and "carrying the earlier half's MAE" in reference.refused
    assert f"the evaluation's MAE {mae:.4g} and RMSE {rmse:.4g} hold" in reference.refused
    assert reference.evaluation == pytest.approx({"mae": mae, "rmse": rmse})
    est = estimate_loss(reference, table, predicted)
    assert est.refused == reference.refused and not est.metrics
    unordered = fit_loss_reference(table.drop_columns(["at"]), predicted, truth)
    assert unordered.refused is None and unordered.self_test is not None
    assert unordered.self_test.ordered_by is None and unordered.self_test.passed


def test_a_small_reference_refuses_and_the_stored_reference_round_trips() -> None:
    x = np.arange(150, dtype=np.float64)
    small = fit_loss_reference(pa.table({"x": x}), x, x + 1)
    assert small.refused is not None and "150 rows" in small.refused
    assert small.refused.startswith("not estimable: ")
    assert estimate_loss(small, pa.table({"x": x}), x).refused == small.refused
    assert LossReference.read(small.to_dict()) == small
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    table = pa.table(
        {
            "x": x,
            "b": 5 + 3 * rng.normal(size=500),
            "kind": [("a", "b", None)[i] for i in rng.integers(0, 3, 500)],
        }
    )
    reference = fit_loss_reference(table, x, x + rng.normal(size=500) * (1 + np.abs(x)))
    assert reference.refused is None
    assert LossReference.read(reference.to_dict()) == reference
    # Stored with its keys sorted (as a record may be), the columns keep their order.
    stored = LossReference.read(
        orjson.loads(orjson.dumps(reference.to_dict(), option=orjson.OPT_SORT_KEYS))
    )
    assert stored is not None
    assert estimate_loss(stored, table, x).metrics == estimate_loss(reference, table, x).metrics
    assert LossReference.read({"method": "cbpe"}) is None
    assert LossReference.read({"method": "dle", "model": "trees", "design": {}}) is None
    # Trees that split on a column the design does not have are not read.
    beyond = reference.to_dict()
    beyond["absolute"]["columns"][0][0] = 99
    assert LossReference.read(beyond) is None
    # A reference stored before the trees (a linear model of the error) is refused.
    linear = LossReference.read(
        {"method": "dle", "design": {}, "absolute": [1.0], "squared": [1.0], "rows": 900}
    )
    assert linear is not None and linear.rows == 900
    assert estimate_loss(linear, table, x).refused == linear.refused
    assert linear.refused is not None and "the next `mooring run` registers" in linear.refused
    # A window without a column the model saw reads it as missing, not as an error.
    est = estimate_loss(reference, pa.table({"x": x[:50]}), x[:50])
    assert est.refused is None and {"mae", "rmse"} == set(est.metrics)


def test_one_prediction_and_one_target_per_row_are_required() -> None:
    with pytest.raises(ValueError, match="3 predictions, 2 targets and 3 rows"):
        fit_loss_reference(pa.table({"x": [1.0, 2.0, 3.0]}), [1.0, 2.0, 3.0], [1.0, 2.0])


def test_a_logged_column_of_one_value_a_row_in_a_list_reads_as_that_value() -> None:
    # A model with [N, 1] inputs logs one list per row; the error model reads scalars.
    # Several values a row do not cast and read as missing, not as an error; a text
    # column the window lacks is read as missing too, not as rows outside its values.
    rng = np.random.default_rng(2)
    x = rng.normal(size=400)
    kind = [("a", "b")[i] for i in rng.integers(0, 2, 400)]
    table = pa.table({"x": x, "kind": kind})
    reference = fit_loss_reference(table, x, x + rng.normal(size=400) * (1 + np.abs(x)))
    assert reference.refused is None
    plain = estimate_loss(reference, table.slice(0, 20), x[:20])
    logged = pa.table({"x": [[v] for v in x[:20]], "kind": [[k] for k in kind[:20]]})
    assert estimate_loss(reference, logged, x[:20]).metrics == plain.metrics
    several = pa.table({"x": [[v, v] for v in x[:20]], "kind": kind[:20]})
    missing = estimate_loss(reference, pa.table({"kind": kind[:20]}), x[:20])
    est = estimate_loss(reference, several, x[:20])
    assert est.metrics == missing.metrics and est.refused is None
    lacking = estimate_loss(reference, pa.table({"x": x[:20]}), x[:20])
    assert lacking.unreliable is None and lacking.refused is None


@settings(max_examples=25, deadline=None)
@given(spec=table_specs(max_columns=5, max_rows=500))
def test_any_table_a_team_brings_gets_an_error_model_or_a_refusal_never_a_crash(
    spec: TableSpec,
) -> None:
    # Names in any script, int64 ids beyond 2^53, booleans, dates, constant and empty
    # columns; the target is the signal, the prediction a noisy copy of it.
    table = spec.table()
    target = np.asarray(table[spec.signal].to_numpy(zero_copy_only=False), dtype=np.float64)
    predicted = target + np.random.default_rng(spec.seed).normal(0, 0.5, target.size)
    reference = fit_loss_reference(table, predicted, target, label=spec.label)
    if spec.rows < 200:
        assert reference.refused is not None and f"{spec.rows} rows" in reference.refused
        return
    assert reference.refused is None
    # The log holds text as dictionaries and may lack a column; the estimate still comes.
    logged = table.drop_columns([spec.label]).slice(0, 100)
    logged = pa.table(
        {n: pc.dictionary_encode(c) if pa.types.is_string(c.type) else c
         for n, c in zip(logged.column_names, logged.columns, strict=True)}
    )  # fmt: skip
    est = estimate_loss(reference, logged, predicted[:100])
    for metric in est.metrics.values():
        assert all(np.isfinite([metric.low, metric.value, metric.high])), metric
        assert 0.0 <= metric.low <= metric.value <= metric.high


# -- the rollout's estimated-quality guardrail, for a regression ----------------------------
def _regression_rollout(tmp_path: Path, noise: float, *, rows: int = 4000) -> Rollout:
    """Production predicts ``2 x`` of a target ``2 x + N(0, 1)``; the canary adds
    ``N(0, noise)`` to it. Each version's error model is fitted on the same ``rows``
    held-out rows, production's frozen beside the canary's; the served rows are as many
    others, with both versions' predictions."""
    rng = np.random.default_rng(21)

    def rows_of(n: int) -> tuple[pa.Table, Floats, Floats, Floats]:
        x = rng.normal(size=n)
        truth = 2 * x + rng.normal(size=n)
        return pa.table({"x": x}), truth, 2 * x, 2 * x + rng.normal(0, noise, n) if noise else 2 * x

    table, truth, production_pred, canary_pred = rows_of(rows)
    production_ref = fit_loss_reference(table, production_pred, truth).to_dict()
    canary_ref = fit_loss_reference(table, canary_pred, truth).to_dict()
    canary_ref["production"] = {**production_ref, "version": 1}
    served, _, production_served, canary_served = rows_of(rows)
    registry = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "a")
    with registry:
        production = register_scored(
            registry, tmp_path / "src", 0, production_ref, task="regression"
        )
        canary = register_scored(registry, tmp_path / "src", 1, canary_ref, task="regression")
    return canary, production, served, canary_served, production_served


def _judge(rollout: Rollout, rules: GuardrailsConfig, rows: int | None = None) -> GuardrailResult:
    """The estimated guardrail on a regression rollout's first ``rows`` served rows (all)."""
    canary, production, served, mine, theirs = rollout
    if rows is not None:
        served, mine, theirs = served.slice(0, rows), mine[:rows], theirs[:rows]
    return estimated_guardrail(
        valued_log(served, mine),
        valued_log(served, theirs),
        canary,
        production,
        rules,
        task="regression",
    )


def test_a_regression_canary_with_a_larger_estimated_error_fails_before_any_label(
    tmp_path: Path,
) -> None:
    # The canary's error is sqrt(2) times production's: its MAE is estimated about 41%
    # higher on the same traffic, beyond a 2% margin read relative to production's MAE.
    drop = 0.02
    rules = GuardrailsConfig(live_metric="mae", min_prediction_rows=200, estimated_drop=drop)
    result = _judge(_regression_rollout(tmp_path, noise=1.0), rules)
    assert result.status == "breach", result.message
    assert result.value is not None and 0.3 < result.value < 0.55, result.value
    assert result.interval is not None and result.interval[0] > drop
    assert "estimated mae" in result.message and "of production's" in result.message
    assert result.numbers["production_map"] == "income@1 on income@2's evaluation data"
    # The realized increase (the truth is known here) lies within the interval.
    truth = np.sqrt(2.0) - 1.0
    assert result.interval[0] <= truth <= result.interval[1], (result.interval, truth)


def test_a_regression_canary_as_good_as_production_passes_and_rmse_is_compared_too(
    tmp_path: Path,
) -> None:
    rollout = _regression_rollout(tmp_path, noise=0.0)
    canary, production = rollout[:2]
    for metric in ("mae", "rmse"):
        rules = GuardrailsConfig(live_metric=metric, min_prediction_rows=200, estimated_drop=0.1)
        result = _judge(rollout, rules)
        assert result.status == "ok", result.message
        assert result.value == pytest.approx(0.0, abs=1e-12) and not result.advisory
    undecided = _judge(
        rollout,
        GuardrailsConfig(live_metric="mae", min_prediction_rows=200, estimated_drop=0.001),
        rows=300,
    )
    assert undecided.status == "insufficient_data" and undecided.advisory, undecided
    r2 = estimated_guardrail(
        None, None, canary, production, GuardrailsConfig(live_metric="r2"), task="regression"
    )
    assert r2.status == "unavailable" and r2.message == (
        "r2 is not estimated without labels (mae, rmse)"
    )
