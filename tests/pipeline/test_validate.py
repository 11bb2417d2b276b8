"""The validate step judges the eval data's distributions against the training data's as
the drift check judges a window: a random holdout of a small table is "too few rows",
not a list of drift warnings; a real shift is still flagged (an error on a critical
column); the time columns are never judged. No model is trained: the step alone runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from mooring.config import MooringConfig, load_config
from mooring.contract._anomalies import AnomalyKind
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.contract._validation import validate_statistics
from mooring.pipeline._cache import StepCache
from mooring.pipeline._context import RunContext
from mooring.pipeline._record import StepRecord
from mooring.pipeline._steps import validate
from mooring.pipeline._workspace import Workspace

DRIFT = AnomalyKind.DISTRIBUTION_DRIFT


@pytest.fixture(scope="module")
def cancer() -> pa.Table:
    """A real small table: 569 rows, 30 numeric features and a 0/1 label."""
    return pa.Table.from_pandas(load_breast_cancer(as_frame=True).frame, preserve_index=False)


def _holdout(table: pa.Table, share: float = 0.4, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """A random ``share`` of the rows as the eval data, the rest as the training data."""
    order = np.random.default_rng(seed).permutation(table.num_rows)
    cut = int(share * table.num_rows)
    return table.take(np.sort(order[cut:])), table.take(np.sort(order[:cut]))


def _project(root: Path, train: pa.Table, evaluation: pa.Table, toml: str = "") -> MooringConfig:
    root.mkdir(parents=True, exist_ok=True)
    pv.write_csv(train, root / "train.csv")
    pv.write_csv(evaluation, root / "eval.csv")
    (root / "mooring.toml").write_text(
        '[project]\nname = "small"\nhome = "state"\n'
        '[data]\ntrain = "train.csv"\neval = "eval.csv"\nlabel = "target"\n' + toml,
        encoding="utf-8",
    )
    return load_config(root / "mooring.toml")


def _report(cfg: MooringConfig) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((cfg.home / "reports" / "validation.json").read_bytes())
    return data


def test_a_random_holdout_of_a_small_table_is_too_few_rows_not_drift(
    tmp_path: Path, cancer: pa.Table
) -> None:
    train, evaluation = _holdout(cancer)
    cfg = _project(tmp_path, train, evaluation)
    ctx = RunContext(workspace=Workspace(cfg), cache=StepCache(tmp_path / "cache"), code={})
    ctx.code["code_version"] = "test"
    record = StepRecord("validate")
    output = validate.run(ctx, record)
    assert output.ok and output.eval_rows == 227
    # The step says why nothing was judged, in the run's output.
    assert record.message.startswith(
        "contract ok (3 warning(s)); eval distributions against the training data: not "
        "judged: too few rows in all 30 features (227 rows cannot tell a shift"
    )
    data = _report(cfg)
    assert data["ok"] and not [a for a in data["eval"]["anomalies"] if a["kind"] == DRIFT]
    # The format every reader knows is kept; the verdict is added beside it.
    assert {"source", "num_rows", "ok", "errors", "warnings", "baseline", "anomalies"} <= set(
        data["eval"]
    )
    assert data["eval"]["distances"] and not any(d["exceeded"] for d in data["eval"]["distances"])
    judged = data["eval"]["distributions"]
    assert judged["status"] == "insufficient_data" and judged["drifted"] == []
    assert "target" not in judged["judged"] and len(judged["too_few_rows"]) == 30
    assert judged["too_few_rows"]["mean radius"].startswith("too few rows (227; ")
    # The contract's fixed distances alone call this same holdout drifted many times over.
    ws = ctx.workspace
    fixed = validate_statistics(ws.statistics("eval"), ws.schema(), baseline=ws.statistics())
    assert fixed.count(DRIFT) >= 20


def test_a_unit_change_is_still_drift_and_an_error_on_a_critical_column(
    tmp_path: Path, cancer: pa.Table
) -> None:
    # The mean and worst measures only: what decides is the same, at a third of the cost.
    kept = [n for n in cancer.column_names if n.startswith(("mean ", "worst ")) or n == "target"]
    train, evaluation = _holdout(cancer.select(kept))
    for name in ("mean area", "worst area"):  # square micrometres read as hundredths
        index = evaluation.column_names.index(name)
        moved = pa.compute.multiply(evaluation[name], 100.0)
        evaluation = evaluation.set_column(index, name, moved)
    cfg = _project(tmp_path, train, evaluation, '[contract]\ncritical = ["worst area"]\n')
    result = validate.check(Workspace(cfg))
    assert result.eval is not None and result.distributions is not None
    assert result.distributions.drifted == ["mean area", "worst area"]
    assert result.eval.find(DRIFT, "mean area").severity == "warning"
    critical = result.eval.find(DRIFT, "worst area")
    assert critical.severity == "error" and not result.ok
    assert "out_of_range_share" in critical.message and "[monitoring.features." in critical.message
    assert result.eval.count(DRIFT) == 2
    assert (
        "distributions against the training data: 2 of 20 features drifted (mean area, "
        "worst area)" in result.render_text()
    )
    assert _report(cfg)["eval"]["distributions"]["drifted"] == ["mean area", "worst area"]


def test_the_time_columns_are_never_judged(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)

    def rows(n: int, first: dt.date) -> pa.Table:
        return pa.table(
            {
                "day": [first + dt.timedelta(days=int(d)) for d in rng.integers(0, 28, n)],
                "signup": [
                    dt.datetime(first.year, first.month, 1) + dt.timedelta(hours=int(h))
                    for h in rng.integers(0, 600, n)
                ],
                "x": rng.normal(size=n),
                "target": rng.integers(0, 2, n),
            }
        )

    # Every eval time lies past the training data's: a new month.
    train, later = rows(3000, dt.date(2025, 1, 1)), rows(2000, dt.date(2025, 2, 1))
    cfg = _project(tmp_path, train, later, 'timestamp = "day"\n')
    result = validate.check(Workspace(cfg))
    assert result.eval is not None and result.distributions is not None
    assert [f.name for f in result.distributions.features] == ["x"]
    assert {d.column for d in result.eval.distances} == {"x"}
    assert result.eval.count(DRIFT) == 0
    judged = _report(cfg)["eval"]["distributions"]
    # [data] timestamp is not a model input; any other date or time column is named.
    assert "time columns, never judged for drift: signup" in judged["notes"]
    assert judged["status"] == "ok" and judged["judged"] == ["x"]


def _synthetic(rows: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "x": rng.normal(shift, 1.0, rows),
            "y": rng.gamma(2.0, 3.0, rows),
            "colour": rng.choice(["red", "green", "blue", "grey"], rows, p=[0.4, 0.3, 0.2, 0.1]),
            "target": rng.integers(0, 2, rows),
        }
    )


def _judge(train: pa.Table, evaluation: pa.Table) -> list[str]:
    stats = compute_statistics(train)
    schema = infer_schema(stats, label="target")
    result = validate_statistics(compute_statistics(evaluation, schema=schema), schema)
    report = validate.judge_distributions(result, stats, schema, None)
    assert report is not None and result.count(DRIFT) == len(report.drifted)
    return report.drifted


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16))
def test_a_random_holdout_of_a_judged_table_never_drifts(seed: int) -> None:
    train, evaluation = _holdout(_synthetic(5000, 7), seed=seed)
    assert _judge(train, evaluation) == []


def test_a_shift_of_half_a_deviation_is_drift_where_the_rows_can_tell() -> None:
    assert _judge(_synthetic(3000, 1), _synthetic(2000, 2, shift=0.5)) == ["x"]
