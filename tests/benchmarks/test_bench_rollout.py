"""The rollout benchmark still runs end to end (a few seeds), so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_rollout.py"


def test_bench_rollout_smoke_run_writes_both_rule_sets_and_the_floors(tmp_path: Path) -> None:
    out = tmp_path / "bench_rollout.json"
    args = ["--runs", "2", "--max-ticks", "60", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "floors (sequential rules):" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = report["rows"]
    assert {r["rules"] for r in rows} == {"sequential", "fixed"}
    # Each scenario ran under both rule sets, with the same seeds.
    names = [r["scenario"] for r in rows]
    assert all(names.count(n) == 2 for n in names)
    broken = [r for r in rows if r["scenario"].startswith("broken")]
    assert broken and all(r["false_promotion_rate"] == 0.0 for r in broken)
    assert "false_rollback_le_2pct" in report["floors"]
