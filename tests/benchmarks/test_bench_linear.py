"""The linear-baseline benchmark still runs end to end (two small tables), so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_linear.py"


@pytest.mark.slow
def test_bench_linear_matches_scikit_learn_on_iris_and_a_sum(tmp_path: Path) -> None:
    out = tmp_path / "linear.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "iris", "--only", "sum_ab", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    iris, total = report["tables"]
    assert (iris["method"], iris["metric"], iris["within"]) == ("newton", "auc", True)
    assert abs(iris["gap"]) <= 0.005
    assert (total["method"], total["metric"], total["within"]) == ("normal_equations", "rmse", True)
    assert total["mooring"] < 0.001 * 35  # the label a + b has a spread of about 35
    assert "| iris |" in out.with_suffix(".md").read_text(encoding="utf-8")
