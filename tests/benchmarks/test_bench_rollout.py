"""The rollout benchmark still runs end to end (a few seeds), so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_rollout.py"


def test_bench_rollout_smoke_run_writes_every_rule_set_and_the_floors(tmp_path: Path) -> None:
    out = tmp_path / "bench_rollout.json"
    args = ["--runs", "1", "--max-ticks", "30", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "floors (sequential rules):" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = report["rows"]
    assert {r["rules"] for r in rows} == {"sequential", "strict_tail", "rank", "fixed"}
    # Each scenario ran under every rule set, with the same seeds.
    names = [r["scenario"] for r in rows]
    assert all(names.count(n) == 4 for n in names)
    assert any(n.startswith("heavier tail") for n in names)
    broken = [r for r in rows if r["scenario"].startswith("broken")]
    assert broken and all(r["false_promotion_rate"] == 0.0 for r in broken)
    assert "false_rollback_le_2pct" in report["floors"]
    assert "latency_shapes_false_promotion_le_1pct" in report["floors"]
    # The outputs scenarios on drifted traffic, under today's rule and the two before it.
    outputs = report["outputs_rows"]
    assert {r["rules"] for r in outputs} == {
        "moved_like_production",
        "production_only",
        "own_evaluation",
    }

    def rate(rules: str, scenario: str, key: str) -> float:
        return next(r[key] for r in outputs if (r["rules"], r["scenario"]) == (rules, scenario))

    retrain = "concept shift, retrain 25%"
    assert rate("moved_like_production", retrain, "false_rollback_rate") == 0.0
    assert rate("own_evaluation", retrain, "false_rollback_rate") == 1.0
    assert rate("moved_like_production", "concept shift, inverted 5%", "false_promotion_rate") == 0
    assert "outputs_false_promotion_skewed_inverted_eq_0" in report["floors"]
