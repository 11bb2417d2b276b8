"""The zoo's table with the most shapes (the raw penguins: ids, a date, Yes/No, nulls,
free text, punctuated names) goes through ``mooring init`` (no edits), ``mooring run``
and ``mooring serve`` with one prediction and its explanation, beside scikit-learn's
gradient-boosted and linear models on the same split (``benchmarks/bench_zoo.py``; the
whole zoo runs there), blessed by the default gates. The commands print no traceback,
warning or library log line. No timings are checked.

Without training: every table loads from its installed package with the shapes the zoo
claims; a refusal is shown with each candidate's failed gates and whether the data
explains it; the linear gap's sign and target; and the reference is fitted and scored on
init's own two files (checked against a least-squares fit on a generated table)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests._support.cli import mooring_in_process

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
        assert table["blessed"] is True and table["chosen"], (name, table["why"])
        assert table["why"] and all(w.startswith("passed: ") for w in table["why"]), name
        # All scored on the same held-out rows: fractions of them.
        sklearn = table["sklearn"]
        for value in (table["mooring"], sklearn["hgb"]["accuracy"], sklearn["linear"]["accuracy"]):
            assert 0 <= value <= 1, (name, table)
        linear = next(c for c in table["candidates"].values() if c["kind"] == "linear")
        gap = table["linear_gap"]
        assert gap["unit"] == "accuracy (points)" and gap["within"] is None, name
        assert math.isclose(gap["gap"], sklearn["linear"]["accuracy"] - linear["accuracy"])
    assert "| penguins |" in out.with_suffix(".md").read_text(encoding="utf-8")


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_zoo", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_zoo"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore:The 'convert_dates' keyword")  # vega_datasets' read_json
def test_the_zoo_s_tables_ship_inside_installed_packages_with_the_shapes_it_claims() -> None:
    """Every table loads from its package's own files (nothing is downloaded) with its
    label; the shapes the zoo is for are there: rare positives (1-20%, two tables at
    least), null labels, Parquet booleans, a wide table, and each named leak column."""
    import pandas as pd

    zoo = _bench()
    assert len(zoo.TABLES) >= 15 and len({t.name for t in zoo.TABLES}) == len(zoo.TABLES)
    rare, unlabelled, booleans, widest = [], [], [], 0
    for table in zoo.TABLES:
        frame = table.load()
        assert table.label in frame.columns, table.name
        assert not table.leak or table.leak in frame.columns, table.name
        labels = frame[table.label]
        if labels.isna().any():
            unlabelled.append(table.name)
        shares = labels.value_counts(normalize=True)
        if len(shares) == 2 and 0.01 <= shares.min() <= 0.20:
            rare.append(table.name)
        if any(pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns):
            booleans.append(table.name)
        widest = max(widest, frame.shape[1])
    assert {"caravan", "default", "hmda"} <= set(rare), rare
    assert {"cars", "hitters", "airquality"} <= set(unlabelled), unlabelled
    assert booleans == ["default"] and widest == 87


def test_a_refusal_shows_each_candidate_s_failed_gates_and_whether_the_data_explains_it() -> None:
    zoo = _bench()
    gate = {"name": "recall in [0.1, inf]", "passed": False, "skipped": False, "message": "-"}
    evaluated: dict[str, Any] = {
        "blessed": False,
        "chosen": None,
        "report": "/p/.mooring/runs/r/evaluation/gbt/report.html",
        "decision": {"blessed": False, "gates": [gate]},
        "candidates": [
            {"name": "linear", "failures": ["recall = 0 outside [0.1, inf]"]},
            {
                "name": "gbt",
                "failures": [
                    "accuracy = 0.940722 outside [0.941581, inf] (lower: the most frequent "
                    "class's share, the accuracy of always answering it)",
                    "recall = 0.0147 outside [0.1, inf]",
                ],
            },
        ],
    }
    verdict = zoo.gate_verdict(evaluated)
    assert verdict == {
        "blessed": False,
        "chosen": None,
        "why": [
            "linear: recall = 0 outside [0.1, inf]",
            "gbt: accuracy = 0.940722 outside [0.941581, inf]; recall = 0.0147 outside [0.1, inf]",
        ],
    }
    assert zoo.judged({**verdict, "mooring": 0.77}) == "refused, with no reason in the data"
    stated = zoo.judged({**verdict, "refusal": "past returns do not predict the day"})
    assert stated == "refused; in the data: past returns do not predict the day"
    blessed = {"blessed": True, "task": "binary", "mooring": 0.9996, "leak": "Today"}
    assert zoo.judged(blessed) == "blessed at 1.000: 'Today' gives the label away"
    assert zoo.judged({**blessed, "leak": None}) == "blessed"
    worse = {"blessed": True, "task": "regression", "metric": "r2", "mooring": -0.315}
    assert zoo.judged(worse) == "blessed at R² -0.315: no better than the mean"
    held = {**blessed, "status": "held", "run_reason": "a near-perfect evaluation"}
    assert zoo.judged(held) == "blessed, then held: a near-perfect evaluation"
    row = {
        "table": "caravan",
        "rows": {"train": 4658, "eval": 1164},
        "task": "binary",
        "positive": "Yes",
        "positives": 0.0601,
        "unlabelled": 0,
        "metric": "auc",
        "mooring": 0.766,
        "lead": "gbt",
        "candidates": {"linear": {"kind": "linear", "auc": 0.716}},
        "sklearn": {"hgb": {"auc": 0.733}, "linear": {"auc": 0.745}},
        "linear_gap": zoo.linear_gap("binary", {"auc": 0.716}, {"auc": 0.745}),
        "run_s": 116.0,
        **verdict,
    }
    line = zoo.markdown([row]).splitlines()[-1]
    assert line.startswith("| caravan | 4658 / 1164 | binary (6.0% Yes) | none (best: gbt) ")
    assert "| 0.716 (+0.029) | refused, with no reason in the data — linear: recall" in line
    guarded = zoo.markdown([{**row, "leak": "Today", "leak_excluded": True}]).splitlines()[-1]
    assert guarded.endswith(
        "recall = 0.0147 outside [0.1, inf] ('Today' left out of the features) | - | 116 |"
    )


@given(
    mine=st.floats(0.01, 100, allow_nan=False),
    theirs=st.floats(0.01, 100, allow_nan=False),
)
def test_the_linear_gap_is_positive_exactly_when_mooring_s_linear_model_is_worse(
    mine: float, theirs: float
) -> None:
    zoo = sys.modules.get("bench_zoo") or _bench()
    rmse = zoo.linear_gap("regression", {"rmse": mine}, {"rmse": theirs})
    assert rmse["unit"] == "rmse (relative)" and math.isclose(rmse["gap"], mine / theirs - 1)
    assert rmse["within"] == (mine / theirs - 1 <= 0.02)
    auc = zoo.linear_gap("binary", {"auc": mine / 100}, {"auc": theirs / 100})
    assert (auc["gap"] > 0) == (mine < theirs) and auc["unit"] == "auc (points)"
    accuracy = zoo.linear_gap("multiclass", {"accuracy": mine / 100}, {"accuracy": 0.5})
    assert accuracy["within"] is None  # no target for multiclass, the gap is shown
    assert zoo.linear_gap("binary", None, {"auc": 0.5}) is None


def test_the_reference_is_fitted_on_init_s_own_split_and_scored_on_its_held_out_rows(
    tmp_path: Path,
) -> None:
    """On a table whose label is 3a - 2b plus noise, scikit-learn's Ridge fitted by the
    benchmark on init's training file scores what a least-squares fit computed here from
    the same two files scores on the realized held-out labels; the text column is
    one-hot and the id left out as init excluded it."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    zoo = _bench()
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(size=400)
    frame = pd.DataFrame(
        {
            "id": np.arange(400),
            "a": a,
            "b": b,
            "colour": rng.choice(["red", "green"], size=400),
            "y": 3 * a - 2 * b + rng.normal(scale=0.5, size=400),
        }
    )
    frame.to_csv(tmp_path / "table.csv", index=False)
    done = mooring_in_process("init", "table.csv", "--label", "y", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    scores = zoo.reference(tmp_path, "regression")
    train = pq.read_table(next(tmp_path.glob("*.train.parquet"))).to_pandas()
    held = pq.read_table(next(tmp_path.glob("*.holdout.parquet"))).to_pandas()

    def design(rows: Any) -> Any:
        return np.column_stack([np.ones(len(rows)), rows["a"], rows["b"]])

    coef, *_ = np.linalg.lstsq(design(train), train["y"], rcond=None)
    residual = held["y"] - design(held) @ coef
    r2 = 1 - (residual**2).sum() / ((held["y"] - held["y"].mean()) ** 2).sum()
    assert len(held) == 80 and scores["linear"]["r2"] > 0.9
    assert abs(scores["linear"]["r2"] - r2) < 0.01
    assert abs(scores["linear"]["rmse"] - float(np.sqrt((residual**2).mean()))) < 0.02
    assert 0.5 < scores["hgb"]["r2"] < scores["linear"]["r2"]
