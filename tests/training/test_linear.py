"""The linear baseline is solved to its optimum: scikit-learn's fit on the same encoded rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score

from mooring.config import MooringConfig
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._schema import infer_schema
from mooring.contract._statistics import compute_statistics
from mooring.errors import UsageError
from mooring.features._infer import build_feature_spec
from mooring.features._inputs import columns_from_table, predict_saved_model
from mooring.training import _linear, _network
from mooring.training._builders import build_model
from mooring.training._fit import TrainingResult
from mooring.training._labels import resolve_label
from mooring.training._train import train_model
from tests.training.conftest import prepare, synthetic_table


def _config(train: Path, features: dict[str, Any] | None = None, **model: Any) -> MooringConfig:
    # A network's budget (2 epochs of 64 rows) that a linear fit ignores.
    settings = {"kind": "linear", "epochs": 2, "batch_size": 64, "parity_records": 40, **model}
    return MooringConfig.from_mapping(
        {
            "project": {"name": "linear"},
            "data": {"train": str(train), "label": "target"},
            "features": features or {},
            "model": settings,
        },
        root=train.parent,
    )


def _train(tmp: Path, table: pa.Table, **options: Any) -> tuple[TrainingResult, MooringConfig]:
    name = options.pop("name", "train.csv")
    tmp.mkdir(exist_ok=True)
    path, stats, schema = prepare(tmp, table, name=name)
    cfg = _config(path, **options)
    return train_model(cfg, statistics=stats, schema=schema, output_dir=tmp / "run"), cfg


def _encoded(cfg: MooringConfig, table: pa.Table) -> tuple[np.ndarray[Any, Any], Any]:
    """The encoded matrix (no intercept column) and the encoded label of ``table``."""
    stats = compute_statistics(cfg.path(cfg.data.train), ReadOptions())
    schema = infer_schema(stats, label="target")
    label = resolve_label(cfg, stats, schema)
    spec = build_feature_spec(cfg.features, statistics=stats, schema=schema, label="target")
    model = build_model(spec, label, cfg.model)
    x = _linear.design_matrix(model, columns_from_table(table, spec))
    assert np.all(x[:, -1] == 1.0)
    return x[:, :-1], label.encode(table.column("target"))[0]


def _sum_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 100, rows).round(2), rng.normal(50, 20, rows).round(2)
    return pa.table({"a": a, "b": b, "noise": rng.normal(size=rows), "target": a + b})


def _probabilities(result: TrainingResult, table: pa.Table) -> np.ndarray[Any, Any]:
    return np.asarray(predict_saved_model(result.model_dir, table)["probabilities"])


def test_a_label_that_is_a_sum_of_two_columns_is_found(tmp_path: Path) -> None:
    result, cfg = _train(tmp_path, _sum_table(600, seed=1))
    held_out = _sum_table(300, seed=2)
    predicted = predict_saved_model(result.model_dir, held_out)["value"].reshape(-1)
    truth = held_out.column("target").to_numpy()
    rmse = float(np.sqrt(np.mean((predicted - truth) ** 2)))
    assert rmse < 0.01 * float(np.std(truth)), rmse  # 35 is the label's spread
    x, y = _encoded(cfg, read_table(cfg.path(cfg.data.train), ReadOptions()))
    ridge = Ridge(alpha=1.0).fit(x, y)
    x_held, _ = _encoded(cfg, held_out)
    reference = float(np.sqrt(np.mean((ridge.predict(x_held) - truth) ** 2)))
    assert rmse <= 1.02 * reference + 1e-3, (rmse, reference)
    assert result.record.linear_fit["method"] == "normal_equations"
    assert result.record.data["train_rows"] == 600  # validation rows are fitted too


def test_binary_is_scikit_learns_logistic_regression_on_the_encoded_features(
    tmp_path: Path,
) -> None:
    table = synthetic_table(600, seed=0)
    result, cfg = _train(tmp_path, table)
    fit = result.record.linear_fit
    assert fit["method"] == "newton" and fit["converged"], fit
    losses = [e["loss"] for e in result.epochs]
    assert len(losses) == fit["iterations"] < 20 and losses == sorted(losses, reverse=True)
    x, y = _encoded(cfg, table)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
    ours = _probabilities(result, table)[:, 1]
    theirs = reference.predict_proba(x)[:, 1]
    assert float(np.max(np.abs(ours - theirs))) < 2e-3
    held_out = synthetic_table(400, seed=9)
    x_held, y_held = _encoded(cfg, held_out)
    auc = roc_auc_score(y_held, _probabilities(result, held_out)[:, 1])
    assert auc >= roc_auc_score(y_held, reference.predict_proba(x_held)[:, 1]) - 0.005


def test_multiclass_with_an_embedded_category_is_the_multinomial_optimum(tmp_path: Path) -> None:
    # An embedding carries a weight per value and class: set through embedding x kernel.
    table = synthetic_table(600, seed=3, task="multiclass")
    features = {"color": {"encoding": "embedding", "dim": 3}}
    result, cfg = _train(tmp_path, table, features=features, class_weight="balanced")
    assert result.record.linear_fit["converged"]
    x, y = _encoded(cfg, table)
    counts = np.bincount(y, minlength=3)
    weights = (len(y) / (3 * counts))[y]
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000)
    reference.fit(x, y, sample_weight=weights)
    ours = _probabilities(result, table)
    assert float(np.max(np.abs(ours - reference.predict_proba(x)))) < 2e-3


def test_a_design_too_wide_for_newton_is_fitted_by_lbfgs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_linear, "NEWTON_MAX_PARAMETERS", 4)
    table = synthetic_table(600, seed=0)
    result, cfg = _train(tmp_path, table)
    assert result.record.linear_fit["method"] == "lbfgs"
    assert result.record.linear_fit["converged"]
    x, y = _encoded(cfg, table)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
    ours = _probabilities(result, table)[:, 1]
    assert float(np.max(np.abs(ours - reference.predict_proba(x)[:, 1]))) < 2e-3


def test_streamed_parquet_gives_the_in_memory_fit(tmp_path: Path) -> None:
    table = synthetic_table(600, seed=4, task="regression")
    in_memory, _ = _train(tmp_path / "memory", table)
    streamed, _ = _train(tmp_path / "streamed", table, name="train.parquet", memory_limit_mb=0.001)
    assert streamed.record.data["streamed"] and not in_memory.record.data["streamed"]
    ours = predict_saved_model(streamed.model_dir, table)["value"]
    np.testing.assert_allclose(
        ours, predict_saved_model(in_memory.model_dir, table)["value"], rtol=1e-4, atol=1e-3
    )


def test_wider_than_the_solvers_it_is_stepped_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_network, "LBFGS_MAX_PARAMETERS", 4)
    result, _ = _train(tmp_path, synthetic_table(300, seed=0))
    assert result.record.linear_fit is None
    assert len(result.epochs) == 2  # the configured epochs
    assert any("are more than the 4 fitted to the optimum" in w for w in result.warnings)


def test_a_linear_model_is_not_a_worker_of_a_job(tmp_path: Path) -> None:
    path, stats, schema = prepare(tmp_path)
    with pytest.raises(UsageError, match="kind = 'linear' is fitted in one process"):
        train_model(
            _config(path),
            statistics=stats,
            schema=schema,
            output_dir=tmp_path / "run",
            pod=(1, ["127.0.0.1:1", "127.0.0.1:2"]),
        )
