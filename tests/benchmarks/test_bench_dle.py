"""The time-ordered DLE benchmark still runs (``--quick``: the linear model trained on
nycflights13's first two months, two later months as windows), so it cannot rot: its
JSON has each window's realized MAE and RMSE, DLE's estimate, band and whether it is
shown, the carried-forward evaluation, and summaries that agree with them. No timings
and no figures are checked."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_dle.py"


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    assert isinstance(value, list), value
    return [n for v in value for n in _numbers(v)]


def test_the_dle_benchmark_reports_each_month_beside_carrying_the_evaluation_forward(
    tmp_path: Path,
) -> None:
    out = tmp_path / "dle.json"
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
    assert report["benchmark"] == "dle" and report["quick"] is True
    assert report["nannyml"] in ("installed", "not installed")
    assert report["rows"] > 300_000
    (scenario,) = report["scenarios"]
    assert scenario["scenario"] == "linear, months 1-2"
    reference = scenario["reference"]
    assert reference["refused"] is None and reference["rows"] > 10_000
    test = reference["self_test"]
    assert test["ordered_by"] == "date" and test["dle"] <= test["carried"] + test["noise"]
    windows = scenario["windows"]
    assert [w["month"] for w in windows] == [3, 4]
    for window in windows:
        assert window["carried"] == reference["evaluation"]
        for name in ("mae", "rmse"):
            band, realized = window["dle"][name], window["realized"][name]
            assert 0.0 <= band["low"] <= band["value"] <= band["high"] and realized > 0.0
            assert band["holds"] == (band["low"] <= realized <= band["high"])
    shown = [w for w in windows if w["dle"]["unreliable"] is None]
    mae = scenario["summary"]["mae"]
    assert mae["windows"] == mae["estimated"] == 2 and mae["shown_windows"] == len(shown)
    errors = [abs(w["dle"]["mae"]["value"] - w["realized"]["mae"]) for w in windows]
    assert math.isclose(mae["all"]["dle_error"], sum(errors) / 2)
    assert set(report["floor"]["verdicts"]) == {"linear, months 1-2"}
    numbers = _numbers(report)
    assert numbers and all(math.isfinite(n) for n in numbers)
    report_md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "| linear, months 1-2 | 3 |" in report_md and "Floor (" in report_md
