"""The contract benchmark still runs end to end (tiny), so it cannot rot. No timings checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_contract.py"


def test_bench_contract_smoke_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench_contract.json"
    args = ["--rows", "2000", "--repeats", "1", "--memory-batch-mb", "8"]
    args += ["--data-dir", str(tmp_path / "data"), "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "floors:" in proc.stdout

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["rows"] == 2000
    assert set(report["formats"]) == {"csv", "parquet"}
    for fmt, block in report["formats"].items():
        assert block["file_mb"] > 0, fmt
        tools = {"mooring", "mooring_validate", "validate_saved", "arrow_scan", "pandas"}
        extra = {"arrow_scan_dict"} if fmt == "parquet" else set()
        assert set(block["tools"]) == tools | extra
        for tool, summary in block["tools"].items():
            assert summary["rows"] == 2000, (fmt, tool)
            assert summary["seconds_median"] > 0, (fmt, tool)
            assert summary["peak_rss_mb"] > 0, (fmt, tool)
        mooring = block["tools"]["mooring"]
        assert mooring["stats_seconds_median"] > 0
        # Resampled Adult validates against the schema inferred from itself, both ways.
        assert mooring["errors"] == 0
        one_read = block["tools"]["mooring_validate"]
        assert one_read["errors"] == 0
        assert one_read["anomalies"] == mooring["anomalies"]
        assert 0 < one_read["fingerprint_seconds_median"] < one_read["seconds_median"]
        # The new file checked against the contract saved before the run: no errors either.
        saved = block["tools"]["validate_saved"]
        assert saved["errors"] == 0 and saved["anomalies"] >= 0
        bases = ("scan", "pandas", *(["scan_dict"] if fmt == "parquet" else []))
        variants = ("mooring_stats", "mooring_validate", "mooring_two_reads", "validate_saved")
        assert (
            set(block["ratios"])
            == set(block["ratios_per_repeat_median"])
            == {f"{variant}_vs_{base}" for variant in variants for base in bases}
        )
        for name in ("ratios", "ratios_per_repeat_median"):
            assert all(ratio > 0 for ratio in block[name].values()), (fmt, name)
        limit = {"csv": 1.5, "parquet": 1.2}[fmt]
        for floor, bound in (
            (f"{fmt}_validate_saved_le_{limit:g}x_scan", limit),
            (f"{fmt}_validate_saved_faster_than_pandas", 1.0),
        ):
            numbers = report["validate_saved_floors"][floor]
            assert numbers["limit"] == bound
            assert numbers["ratio"] > 0 and numbers["ratio_per_repeat_median"] > 0
            assert report["floors"][floor] is numbers["met"] is (numbers["ratio"] <= bound)
        for variant in ("stats", "validate", "two_reads"):
            assert f"{fmt}_mooring_{variant}_le_3x_scan" in report["floors"]
            assert f"{fmt}_mooring_{variant}_faster_than_pandas" in report["floors"]
            dictionary_floor = f"{fmt}_mooring_{variant}_le_3x_dictionary_scan"
            assert (dictionary_floor in report["floors"]) == (fmt == "parquet")
    [run] = report["streaming_memory"]["runs"]
    assert run["batch_mb"] == 8
    assert run["peak_rss_mb"] >= run["baseline_rss_mb"]
    assert "csv_streaming_memory_bounded" in report["floors"]
    # A 2,000-row file is smaller than the batch budget: boundedness is not decidable.
    assert report["floors"]["csv_streaming_memory_bounded"] is None
    assert len(report["machine"]["loadavg_start"]) == 3
    assert (tmp_path / "data" / report["contract"]).is_file()
