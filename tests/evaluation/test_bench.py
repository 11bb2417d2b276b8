"""The evaluation benchmark runs at a tiny size (values compared, times never asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_evaluation.py"


def test_benchmark_smoke(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_evaluation", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_evaluation"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    code = module.main(
        ["--rows", "3000", "--samples", "10", "--thresholds", "25", "--out", str(out)]
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    assert code == 0
    assert report["values_match"] is True
    assert report["numbers_compared"] > 300
