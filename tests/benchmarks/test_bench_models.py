"""The models benchmark still runs end to end (quick mode), so it cannot rot. No timings checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_models.py"


@pytest.mark.slow
def test_bench_models_quick_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench_models.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "floors:" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["quick"] is True
    adult = report["adult"]
    assert set(adult["auc"]) == {
        "gbt",
        "mlp",
        "sklearn_hist_gradient_boosting",
        "sklearn_logistic_regression",
    }
    assert all(0.5 < v <= 1.0 for v in adult["auc"].values())
    assert set(adult["served_single_row_p50_ms"]) == {"gbt", "mlp"}
    assert adult["gbt_trees"] >= 1
    assert set(report["small"]) == {"wine", "diabetes"}
    assert report["small"]["wine"]["metric"] == "accuracy"
    assert report["small"]["diabetes"]["metric"] == "rmse"
    assert set(report["floors"]) == {
        "adult_gbt_auc",
        "adult_mlp_auc",
        "wine_accuracy",
        "diabetes_rmse",
        "gbt_fit_seconds",
        "gbt_p50_over_mlp_p50",
    }
    assert all(isinstance(row["met"], bool) for row in report["floors"].values())
