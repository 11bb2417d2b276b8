"""The scale benchmark still runs end to end (tiny, local engines), so it cannot rot.

No timings are checked: only that every cell is measured and that the engines agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_scale.py"


@pytest.mark.slow
def test_bench_scale_tiny_run_writes_every_cell(tmp_path: Path) -> None:
    out = tmp_path / "bench_scale.json"
    args = ["--rows", "20000", "--shards", "4", "--rounds", "1", "--no-ray"]
    args += ["--data-dir", str(tmp_path / "data"), "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "floors:" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["rows"] == 20000
    assert report["shards"] == 4
    configs = {"local_1", "local_2"}
    assert set(report["configs"]) == configs
    tasks = {"statistics", "scoring"} if report["scoring"] else {"statistics"}
    for task in tasks:
        block = report["results"][task]
        assert set(block["cells"]) == configs, task
        for name, cell in block["cells"].items():
            assert cell["seconds_median"] > 0, (task, name)
            assert cell["rows_per_s"] > 0, (task, name)
            assert cell["worker_peak_mb"] > 0, (task, name)
            assert cell["driver_peak_mb"] > 0, (task, name)
        # One process ran the one-worker cell. The two-worker cell started two, but a
        # loaded machine may let the first take every small shard before the second has
        # imported (tests/scale checks that two processes really share the work).
        assert block["cells"]["local_1"]["workers_per_run"] == [1]
        assert block["cells"]["local_2"]["workers_per_run"][0] in (1, 2)
        assert "local" in block["speedup_1_to_2"]
        assert (
            f"{task}_local_1_to_2_workers_ge_{1.6 if task == 'scoring' else 1.5:g}x"
            in (report["floors"])
        )
    agreement = report["agreement"]
    assert agreement["statistics_rows"] == {"local_1": 20000, "local_2": 20000}
    assert agreement["statistics_equal_to_local_1"] == {"local_2": True}
    if report["scoring"]:
        assert agreement["scoring_rows"] == {"local_1": 20000, "local_2": 20000}
        assert (
            report["results"]["scoring"]["scored"] + report["results"]["scoring"]["rejected"]
            == 20000
        )
    assert report["floors"]["engines_agree"]["met"] is True
    projection = report["projection"]
    assert projection["engine"] == "local"
    assert set(projection["statistics"]["by_workers"]) >= {"1", "2", "4"}
    assert report["results"]["memory"]["batch_mb"] == 16
    assert len(report["machine"]["loadavg_start"]) == 3
