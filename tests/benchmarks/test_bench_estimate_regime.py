"""The regime benchmark still runs (``--quick --seeds 1``: the rain label, one seed, two
i.i.d. windows and three months), so it
cannot rot: every window has its realized AUC, CBPE's band, ``unreliable`` with the checks
behind it, and the floors are computed. No figure is checked: they are the benchmark's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mooring.monitoring._estimate_checks import Check, verdict

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_estimate_regime.py"


def test_the_regime_benchmark_reports_estimates_checks_and_floors(tmp_path: Path) -> None:
    out = tmp_path / "regime.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--seeds", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    windows = report["windows"]
    assert [w["window"] for w in windows] == ["iid 0", "iid 1", "month 4", "month 7", "month 12"]
    for window in windows:
        band = window["cbpe"]["auc"]
        assert band["low"] <= band["value"] <= band["high"], band
        assert band["holds"] == (band["low"] <= window["realized"]["auc"] <= band["high"])
        names = [c["name"] for c in window["checks"]]
        assert names == ["inputs", "score_support", "score_move", "prior", "attribution_drift"]
        # The verdict written is the one its checks give.
        assert verdict([Check(**c) for c in window["checks"]]) == window["unreliable"]
    floors = report["summary"]["all"]["floors"]
    assert floors["far_below_marked"] <= floors["far_below"]
    assert out.with_suffix(".md").read_text(encoding="utf-8").startswith("# CBPE through")
