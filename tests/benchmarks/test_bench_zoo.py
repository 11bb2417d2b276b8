"""The zoo's table with the most shapes (the raw penguins: ids, a date, Yes/No, nulls,
free text, punctuated names) goes through ``mooring init`` (no edits), ``mooring run``
and ``mooring serve`` with one prediction and its explanation, beside scikit-learn's
baseline on the same split (``benchmarks/bench_zoo.py``; the whole zoo runs there). The
commands print no traceback, warning or library log line. No timings are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_zoo.py"
SUITE = {"penguins"}


@pytest.mark.slow
def test_zoo_tables_go_through_init_run_and_serve_unedited(tmp_path: Path) -> None:
    out = tmp_path / "zoo.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "penguins", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    tables = {t["table"]: t for t in report["tables"]}
    assert set(tables) == SUITE
    for name, table in tables.items():
        assert "failed" not in table, (name, table)
        assert table["noise"] == [], (name, table["noise"])
        assert table["served"]["status"] == 200, (name, table["served"])
        explained = table["served"]["explained"]  # the row, explained on the same server
        assert explained["status"] == 200 and explained["gap"] < 0.05, (name, explained)
        assert table["task"] == "multiclass" and table["metric"] == "accuracy", name
        assert table["kind"], name
        # Both scored on the same held-out rows: fractions of them.
        assert 0 <= table["mooring"] <= 1 and 0 <= table["baseline"] <= 1, name
    assert "| penguins |" in out.with_suffix(".md").read_text(encoding="utf-8")
