"""The calibration benchmark's mooring side still runs (tiny), so it cannot rot. No timings checked.

(Evidently runs in its own virtual environment, created by the benchmark itself; the
smoke test leaves it out.)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "drift_calibration", ROOT / "benchmarks" / "drift_calibration.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["drift_calibration"] = module
    spec.loader.exec_module(module)
    return module


def test_the_calibration_benchmark_measures_cost_alarms_and_detection(tmp_path: Path) -> None:
    cal = _module()
    windows = cal.windows_file(tmp_path, windows=3, shift_windows=2, seed=0)
    cost = cal.mooring_cost(cal.TRAIN, repeats=1)
    assert cost["rows"] == 32_561 and cost["calibrate_s"] > 0 and cost["statistics_s"] > 0
    verdicts = cal.mooring_verdicts(windows)
    assert set(verdicts) == {f"{s}@{n}" for s in cal.SHIFTS for n in cal.SIZES}
    for key, row in verdicts.items():
        assert row["windows"] == (3 if key.startswith("none") else 2)
        for judged in ("calibrated", "floors"):
            assert 0.0 <= row[judged]["rate"] <= 1.0
    # The shifts are real ones: flagged in every tiny window too.
    assert verdicts["age+5@10000"]["calibrated"]["features"] == {"age": 2}
    result = {"cost": {"adult": cost}, "mooring": verdicts}
    lines = cal.floors(result)
    assert any(line.startswith("false alarms at 10,000 rows") for line in lines)
    result["floors"] = lines
    assert "calibration cost (median):" in cal.report(result)
