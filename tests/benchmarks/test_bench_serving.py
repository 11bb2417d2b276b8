"""The serving benchmark still runs end to end (quick, one round, one workers level, every
server and part, the py-spy profile included), so it cannot rot. No timings are checked:
only the report's shape and that every request was answered without errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_serving.py"


@pytest.mark.slow
def test_bench_serving_quick_run_writes_every_cell(tmp_path: Path, bench_work: Path) -> None:
    if shutil.which("wrk") is None or shutil.which("h2load") is None:
        pytest.skip("bench_serving.py drives REST with wrk and gRPC with h2load (nghttp2-client)")
    out = tmp_path / "serving.json"
    args = ["--quick", "--duration", "1", "--rounds", "1", "--cold-runs", "1", "--log-pairs", "1"]
    args += ["--workers-levels", "1", "--profile", "--profile-s", "1", "--work", str(bench_work)]
    args += [f"--only={part}" for part in ("ceiling", "mooring", "mooring-nolog", "naive")]
    args += ["--only=in-process", "--only=grpc", "--only=shadow", "--only=cold"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "## Floors" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert out.with_suffix(".md").read_text(encoding="utf-8").startswith("## Cells")
    assert report["workers_levels"] == [1] and report["rounds"] == 1
    assert {"cpus", "load_average_start", "load_average_end", "python", "wrk"} <= set(
        report["machine"]
    )
    cells = {(c["server"], c["rows"], c["concurrency"]): c for c in report["cells"]}
    rest = {
        ("ceiling", 1, 32),
        ("ceiling", 1, 1),
        ("ceiling", 64, 32),
        ("mooring-w1", 1, 32),
        ("mooring-w1", 1, 1),
        ("mooring-w1", 64, 32),
        ("mooring-nolog", 1, 32),
        ("mooring-nolog", 64, 32),
        ("naive", 1, 32),
        ("naive", 1, 1),
        ("naive", 64, 32),
        ("mooring-dir", 1, 32),
        ("mooring-dir", 64, 32),
    }
    grpc = {("grpc", rows, c) for rows in (1, 64) for c in (1, 32)}
    grpc |= {("grpc-infer", 1, 32), ("grpc-infer", 64, 32)}
    grpc |= {("grpc-echo", 1, 32), ("grpc-echo", 1, 1)}
    granian = report["granian"]["path"] is not None  # found beside the venv's Python or on PATH
    if granian:
        rest |= {("granian", 1, 32), ("granian", 1, 1), ("granian", 64, 32)}
    assert set(cells) == rest | grpc
    for key in rest:
        cell = cells[key]
        assert cell["client"] == "wrk" and len(cell["rounds"]) == 1, key
        assert cell["requests"] > 0 and cell["rps"] > 0, key
        assert cell["non_2xx"] == 0 and cell["socket_errors"] == 0, (key, cell["rounds"])
        assert cell["p50_ms"] <= cell["p90_ms"] <= cell["p99_ms"], key
        assert cell["rows_per_s"] == pytest.approx(cell["rps"] * key[1])
    for key in grpc:
        cell = cells[key]
        assert cell["client"] == "h2load" and cell["requests"] > 0, key
        assert cell["failed"] == cell["grpc_errors"] == 0 and cell["status_after"] == ["OK"], key
        assert cell["p50_ms"] <= cell["p90_ms"] <= cell["p99_ms"], key
    summary = report["summary"]
    assert summary["ceiling"]["rows_per_s"] > 0
    assert not summary["servers_exited"] and not summary["stragglers"]
    for name in (
        "ceiling",
        "mooring-w1",
        "mooring-nolog",
        "naive",
        *(["granian"] if granian else []),
    ):
        assert summary["memory"][name]["rss_mib"] > 0 and summary["memory"][name]["pss_mib"] > 0
    assert summary["prediction_log"]["mooring-w1"]["written"] > 0  # every request logged
    assert summary["prediction_log"]["mooring-nolog"]["written"] == 0
    cold = {"mooring-registry", "mooring-dir", "naive", "ceiling"} | (
        {"granian"} if granian else set()
    )
    assert set(summary["cold_start_s"]) == cold
    assert all(v > 0 for v in summary["cold_start_s"].values())
    assert "mooring-w1 / mooring-nolog, 64 rows c=32" in summary["ratios"]
    assert len(summary["shadow_100pct"]["rounds"]["shadow"]) == 1
    assert summary["shadow_100pct"]["copies"]["ok"] > 0
    floors = summary["floors"]
    assert len(floors) == 15 and all(set(f) == {"value", "pass"} for f in floors.values())
    assert all(f["pass"] is not None for name, f in floors.items() if "gRPC" in name)
    assert floors["64 rows c=32: --workers 2 >= 1.5x --workers 1"]["pass"] is None  # one level
    profile = report["profile"]
    assert profile["server"] == "mooring-w1"
    if "error" not in profile:  # py-spy may be refused ptrace (reported, not failed)
        main = profile["groups"]["main"]
        assert main["samples"] > 0
        assert sum(s["share"] for s in main["stages"].values() if s["share"] is not None) == (
            pytest.approx(1.0)
        )


def test_every_frame_the_stage_profile_names_exists_in_the_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The profile's stage tables name files and functions of the request path; after a
    refactor a stale name would put its samples under "other" without a word."""
    import importlib.util

    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # its own helpers (_wrk)
    spec = importlib.util.spec_from_file_location("bench_serving", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_serving", bench)  # its dataclasses look it up
    spec.loader.exec_module(bench)
    src = ROOT / "src"
    for stage, piece, names in bench.STAGE_FRAMES:
        if not piece.startswith("mooring/"):
            continue  # a library's files: named by folder
        text = (src / piece).read_text(encoding="utf-8")
        for name in names or ():
            last = name.split(".")[-1]
            if last.startswith("<"):
                last = name.split(".")[-2]
            assert f"def {last}(" in text, (stage, piece, name)
    for piece, function, marker, _, _ in bench.STAGE_SPLITS:
        text = (src / piece).read_text(encoding="utf-8")
        assert f"def {function}(" in text and marker in text, (piece, function, marker)
