"""The estimation benchmark still runs (``--quick``: Adult, one seed, three windows), so it
cannot rot: its JSON has every window's realized metrics, CBPE's estimate and band, the
naive estimate and the summaries, all finite. No timings are checked."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_estimation.py"
METRICS = ("auc", "accuracy")


def _numbers(value: Any) -> list[float]:
    """Every number in a JSON value (booleans aside)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    assert isinstance(value, list), value
    return [n for v in value for n in _numbers(v)]


def test_the_estimation_benchmark_reports_cbpe_beside_the_naive_estimate(tmp_path: Path) -> None:
    out = tmp_path / "estimation.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["benchmark"] == "estimation" and report["quick"] is True
    assert report["seeds"] == 1 and set(report["tables"]) == {"adult"}
    assert report["nannyml"] in ("installed", "not installed")
    machine = report["machine"]
    assert machine["cpus"] >= 1 and machine["python"]
    assert {"numpy", "scipy", "scikit-learn"} <= set(machine["versions"])
    windows = report["windows"]
    assert [w["window"] for w in windows] == ["random", "age>=45 & education-num>=13", "age<30"]
    for window in windows:
        assert window["rows"] > 100 and window["cbpe"]["refused"] is None, window
        for name in METRICS:
            realized, band = window["realized"][name], window["cbpe"][name]
            assert 0.0 <= realized <= 1.0 and 0.0 <= window["naive"][name] <= 1.0
            assert band["low"] <= band["value"] <= band["high"], band
            assert band["holds"] == (band["low"] <= realized <= band["high"])
    # The shifted windows moved the positive rate away from the reference's.
    rate = report["references"][0]["positive_rate"]
    assert windows[1]["positive_rate"] > rate + 0.2 and windows[2]["positive_rate"] < rate / 2
    for summary in (report["summary"]["all"], *report["summary"]["tables"].values()):
        assert summary["windows"] == summary["estimated"] == 3
        for name in METRICS:
            assert summary[name]["judged"] == 3 and 0.0 <= summary[name]["coverage"] <= 1.0
            assert summary[name]["cbpe_mae"] >= 0.0 and summary[name]["naive_mae"] >= 0.0
    assert set(report["floor"]) >= {"window", "seeds", "auc_within", "accuracy_within", "met"}
    # The regression part: Adult's age, its error estimated (DLE) on five windows.
    regression = report["regression"]
    assert [r["window"] for r in regression][:2] == ["random", "relationship = Own-child"]
    for record in regression:
        for name in ("mae", "rmse"):
            band, realized = record["dle"][name], record["realized"][name]
            assert 0.0 < band["low"] <= band["value"] <= band["high"] and realized > 0.0
            assert band["holds"] == (band["low"] <= realized <= band["high"])
    numbers = _numbers(report)
    assert numbers and all(math.isfinite(n) for n in numbers)
    report_md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "| adult | random |" in report_md and "| relationship = Own-child |" in report_md
