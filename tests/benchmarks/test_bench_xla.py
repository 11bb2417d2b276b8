"""The XLA benchmark still runs end to end (quick mode), so it cannot rot. No timings checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_xla.py"


@pytest.mark.slow
def test_bench_xla_quick_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench_xla.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    adult, numeric = report["models"]
    assert adult["model"] == "adult" and adult["compiled"] is False
    assert adult["reason"].startswith("not compiled: XLA takes no string input")
    assert numeric["model"] == "adult-numeric" and numeric["compiled"] is True
    assert [cell["rows"] for cell in numeric["sizes"]] == [1, 2, 4, 8]
    for cell in numeric["sizes"]:
        assert cell["plain_us"] > 0 and cell["xla_us"] > 0
        assert cell["max_difference"] is not None and cell["max_difference"] <= 1e-5
    choice = numeric["server_choice"]
    assert choice["setting"] == "auto" and set(choice["speedup"]) == {"1", "2", "4", "8"}
    assert choice["used"] == bool(choice["batch_sizes"])
