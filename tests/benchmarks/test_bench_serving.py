"""The serving benchmark still runs end to end (quick, mooring only), gRPC cells included,
so it cannot rot. No timings are checked: only the report's shape and that requests
were answered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_serving.py"


@pytest.mark.slow
def test_bench_serving_quick_run_writes_rest_and_grpc_cells(tmp_path: Path) -> None:
    out = tmp_path / "bench_serving.json"
    args = ["--quick", "--duration", "0.5", "--only", "mooring", "--grpc-procs", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    cells = {(c["server"], c["rows"], c["concurrency"]): c for c in report["cells"]}
    assert {("mooring", 1, 1), ("mooring", 1, 32), ("mooring", 64, 8)} <= set(cells)
    assert {("grpc", 1, 1), ("grpc", 1, 32), ("grpc", 64, 1), ("grpc", 64, 32)} <= set(cells)
    assert ("grpc-echo", 1, 32) in cells
    for key, cell in cells.items():
        assert cell["requests"] > 0 and cell["errors"] == 0, (key, cell["statuses"])
        assert cell["p50_ms"] <= cell["p99_ms"], key
    for key in [k for k in cells if k[0].startswith("grpc")]:
        assert cells[key]["statuses"] == {"OK": cells[key]["requests"]}
        assert len(cells[key]["client_cpu"]) == cells[key]["client_procs"] == 1
    summary = report["summary"]
    assert summary["ceiling"]["rows_per_s"] > 0
    assert summary["grpc_single_row_c32_vs_rest"] > 0
    assert summary["grpc_rows64_fraction_of_ceiling"] > 0
    assert set(summary["grpc_floors"]) == {
        "single_row_c32_at_least_rest",
        "rows64_at_least_70pct_of_ceiling",
    }
