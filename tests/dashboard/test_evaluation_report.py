"""The saved report: self-contained HTML with inline SVG, and the same numbers as JSON."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from mooring.config._evaluation import EvaluationConfig
from mooring.dashboard._evaluation_report import render_evaluation_html
from mooring.evaluation._evaluate import evaluate
from mooring.evaluation._gates import decide


def test_save_writes_self_contained_html_and_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    table = pa.table(
        {
            "sex": rng.choice(["F", "M"], n),
            "age": rng.integers(18, 80, n).astype(float),
            "ts": [
                dt.datetime(2024, 1, 1) + dt.timedelta(hours=int(h))
                for h in rng.integers(0, 900, n)
            ],
        }
    )
    cfg = EvaluationConfig.model_validate(
        {
            "slices": ["sex"],
            "slice_buckets": {"age": 3},
            "bootstrap": {"samples": 50},
            "cost": {"false_positive": 1, "false_negative": 3},
            "threshold": "cost_optimal",
            "windows": {"column": "ts", "freq": "week"},
            "gates": [{"metric": "auc", "lower": 0.99}],
        }
    )
    result = evaluate(task="binary", labels=y, scores=p, table=table, config=cfg)
    decision = decide(result)
    folder = result.save(tmp_path / "report", decision, html=render_evaluation_html)
    html = (folder / "report.html").read_text(encoding="utf-8")
    data = orjson.loads((folder / "report.json").read_bytes())

    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)
    assert html.count("<svg") >= 7  # ROC, PR, reliability, sweep, cost, slices, windows
    assert "NOT BLESSED" in html and "FAIL" in html
    assert data["decision"]["blessed"] is False
    assert data["metrics"]["auc"] == result.metrics["auc"]
    assert data["operating_threshold"] == result.operating_threshold
    assert data["threshold_source"] == "cost_optimal"
    assert data["cost"]["optimal_threshold"] == result.operating_threshold
    assert len(data["threshold_sweep"]["threshold"]) == cfg.threshold_points
    assert {s["name"] for s in data["slices"]} >= {"sex=F", "sex=M"}
    assert data["windows"]["windows"]
    assert data["intervals"]["auc"]["samples"] == 50


def test_multiclass_and_regression_reports(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    proba = rng.dirichlet(np.ones(3), 300)
    cfg = EvaluationConfig.model_validate({"bootstrap": {"samples": 20}})
    multi = evaluate(
        task="multiclass",
        labels=np.array(["a", "b", "c"])[y],
        probabilities=proba,
        config=cfg,
        label_vocabulary=["a", "b", "c"],
    )
    assert multi.per_class is not None and len(multi.per_class["recall"]) == 3
    html = (multi.save(tmp_path / "m", html=render_evaluation_html) / "report.html").read_text(
        encoding="utf-8"
    )
    assert "Per class" in html and "top_k_accuracy" in html
    targets = rng.normal(size=300)
    reg = evaluate(task="regression", labels=targets, values=targets + 0.1, config=cfg)
    data = orjson.loads(
        (reg.save(tmp_path / "r", html=render_evaluation_html) / "report.json").read_bytes()
    )
    assert (
        data["metrics"]["mae"] == np.float64(0.1).item() or abs(data["metrics"]["mae"] - 0.1) < 1e-9
    )
    assert data["threshold_sweep"] is None
