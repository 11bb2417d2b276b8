"""Benchmark: mooring's evaluation against the straightforward scikit-learn loop.

One process, one synthetic binary data set (default 1,000,000 predictions with five
slice columns: four categorical, one numeric bucketed), and two contenders computing
the same numbers:

* ``mooring``: one ``evaluate()`` call — overall metrics, 1,000 seeded bootstrap
  resamples of ROC AUC (percentile interval), a 1,000-point threshold sweep
  (precision, recall, F1, false positive rate, cost), and every metric on every slice.
* ``sklearn``: the loop a practitioner would write — ``roc_auc_score(y[idx], p[idx])``
  for each resample, drawing the *same* indices from the same seeded generator
  (``numpy.random.default_rng(seed).integers(0, n, n)`` per resample); one
  ``confusion_matrix`` per threshold (cheaper than separate precision/recall/F1
  calls, which favours the baseline); and ``roc_auc_score``, ``average_precision_score``,
  ``log_loss``, ``brier_score_loss``, ``accuracy_score``, ``precision_score``,
  ``recall_score`` and ``f1_score`` on each slice's boolean mask.

Every number both sides produce is compared; the largest absolute difference is
reported and must stay below 1e-9. The floor is mooring >= 5x faster (wall clock).
Both wall-clock and process CPU seconds are recorded: on a shared machine the wall
clock of a long run also measures the neighbours, the CPU time much less so. Times
are printed and written to JSON, never asserted in tests.

Usage::

    python benchmarks/bench_evaluation.py                    # 1M rows, full size
    python benchmarks/bench_evaluation.py --rows 5000 --samples 20 --thresholds 50
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn import metrics as skm

from mooring.config._evaluation import EvaluationConfig
from mooring.evaluation._bootstrap import bootstrap_indices
from mooring.evaluation._evaluate import evaluate

HERE = Path(__file__).resolve().parent
SLICE_COLUMNS = {"sex": 2, "race": 5, "workclass": 8, "region": 12}
AGE_BOUNDARIES = [25.0, 35.0, 45.0, 55.0, 65.0]
COST = {"false_positive": 1.0, "false_negative": 5.0, "true_positive_benefit": 0.0}
SLICE_METRICS = ("auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1")
SPEEDUP_FLOOR = 5.0
TOLERANCE = 1e-9


def make_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """Labels, float32-precision scores (as a model emits) and five slice columns."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {
        name: np.char.add(name[:2], rng.integers(0, k, rows).astype(str))
        for name, k in SLICE_COLUMNS.items()
    }
    age = rng.integers(17, 91, rows).astype(np.float64)
    y = (rng.random(rows) < 0.3).astype(np.int64)
    quality = 1.0 + 0.5 * (columns["race"] == "ra3")  # one slice is noticeably worse
    logit = (2 * y - 1) * 1.4 + rng.normal(0.0, 1.0, rows) * quality - 0.8
    p = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32).astype(np.float64)
    table = pa.table({**columns, "age": age})
    return y, p, table


def run_mooring(
    y: np.ndarray, p: np.ndarray, table: pa.Table, args: argparse.Namespace
) -> tuple[tuple[float, float], dict[str, Any]]:
    cfg = EvaluationConfig.model_validate(
        {
            "slices": list(SLICE_COLUMNS),
            "slice_buckets": {"age": AGE_BOUNDARIES},
            "min_slice_size": 1,
            "bootstrap": {"samples": args.samples, "seed": args.seed, "metrics": ["auc"]},
            "threshold_points": args.thresholds,
            "cost": COST,
        }
    )
    start, cpu = time.perf_counter(), time.process_time()
    result = evaluate(task="binary", labels=y, scores=p, table=table, config=cfg)
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    assert result.sweep is not None and result.sweep.cost_per_1000 is not None
    ci = result.intervals["auc"]
    numbers = {
        "overall": {m: result.metrics[m] for m in SLICE_METRICS},
        "auc_interval": [ci.lower, ci.upper],
        "sweep": {
            "precision": result.sweep.precision,
            "recall": result.sweep.recall,
            "f1": result.sweep.f1,
            "fpr": result.sweep.fpr,
            "cost_per_1000": result.sweep.cost_per_1000,
        },
        "slices": {s.name: {m: s.metrics[m] for m in SLICE_METRICS} for s in result.slices},
    }
    return elapsed, numbers


def _sk_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float | None]:
    pred = p >= threshold
    both = 0 < y.sum() < y.size
    return {
        "auc": skm.roc_auc_score(y, p) if both else None,
        "pr_auc": skm.average_precision_score(y, p) if y.sum() > 0 else None,
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, p, labels=[0, 1]),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0) if y.sum() > 0 else None,
        "f1": skm.f1_score(y, pred, zero_division=0),
    }


def run_sklearn(
    y: np.ndarray, p: np.ndarray, table: pa.Table, args: argparse.Namespace
) -> tuple[tuple[float, float], dict[str, Any]]:
    start, cpu = time.perf_counter(), time.process_time()
    overall = _sk_metrics(y, p)
    aucs = [
        skm.roc_auc_score(y[idx], p[idx])
        for idx in bootstrap_indices(y.size, args.samples, args.seed)
    ]
    lower, upper = np.quantile(aucs, [0.025, 0.975])
    thresholds = np.linspace(0.0, 1.0, args.thresholds)
    sweep: dict[str, list[float]] = {
        k: [] for k in ("precision", "recall", "f1", "fpr", "cost_per_1000")
    }
    for t in thresholds:
        tn, fp, fn, tp = skm.confusion_matrix(y, p >= t, labels=[0, 1]).ravel()
        sweep["precision"].append(tp / (tp + fp) if tp + fp else 0.0)
        sweep["recall"].append(tp / (tp + fn) if tp + fn else 0.0)
        sweep["f1"].append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        sweep["fpr"].append(fp / (fp + tn) if fp + tn else 0.0)
        cost = COST["false_positive"] * fp + COST["false_negative"] * fn
        sweep["cost_per_1000"].append(1000.0 * (cost - COST["true_positive_benefit"] * tp) / y.size)
    slices: dict[str, dict[str, float | None]] = {}
    for name in SLICE_COLUMNS:
        values = table.column(name).to_numpy(zero_copy_only=False)
        for value in sorted(set(values)):
            mask = values == value
            slices[f"{name}={value}"] = _sk_metrics(y[mask], p[mask])
    age = table.column("age").to_numpy()
    edges = [-np.inf, *AGE_BOUNDARIES, np.inf]
    for lo, hi in itertools.pairwise(edges):
        mask = (age >= lo) & (age < hi)
        if mask.any():
            slices[f"age=[{lo:g}, {hi:g})"] = _sk_metrics(y[mask], p[mask])
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    return elapsed, {
        "overall": overall,
        "auc_interval": [lower, upper],
        "sweep": sweep,
        "slices": slices,
    }


def max_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, int]:
    """Largest absolute difference over every number both sides computed, and the count."""
    worst, count = 0.0, 0

    def visit(x: Any, y: Any, where: str) -> None:
        nonlocal worst, count
        if isinstance(x, dict):
            if set(x) != set(y):
                raise SystemExit(f"{where}: keys differ: {sorted(set(x) ^ set(y))[:5]}")
            for k in x:
                visit(x[k], y[k], f"{where}.{k}")
            return
        if x is None or y is None:
            if (x is None) != (y is None):
                raise SystemExit(f"{where}: one side is undefined ({x} vs {y})")
            return
        xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        worst = max(worst, float(np.max(np.abs(xa - ya))) if xa.size else 0.0)
        count += xa.size

    visit(a, b, "result")
    return worst, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--thresholds", type=int, default=1000, help="sweep points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_evaluation.json")
    args = parser.parse_args(argv)

    y, p, table = make_data(args.rows, args.seed)
    mooring_s, mooring_numbers = run_mooring(y, p, table, args)
    sklearn_s, sklearn_numbers = run_sklearn(y, p, table, args)
    worst, compared = max_difference(mooring_numbers, sklearn_numbers)
    speedup = sklearn_s[0] / mooring_s[0]
    cpu_speedup = sklearn_s[1] / mooring_s[1]
    report = {
        "benchmark": "evaluation",
        "rows": args.rows,
        "slice_columns": len(SLICE_COLUMNS) + 1,
        "slices": len(mooring_numbers["slices"]),
        "bootstrap_samples": args.samples,
        "threshold_points": args.thresholds,
        "seconds": {"mooring": mooring_s[0], "sklearn_loop": sklearn_s[0]},
        "cpu_seconds": {"mooring": mooring_s[1], "sklearn_loop": sklearn_s[1]},
        "speedup": speedup,
        "cpu_speedup": cpu_speedup,
        "load_average_1m": os.getloadavg()[0],
        "speedup_floor": SPEEDUP_FLOOR,
        "numbers_compared": compared,
        "max_abs_difference": worst,
        "tolerance": TOLERANCE,
        "values_match": worst <= TOLERANCE,
        "meets_floor": speedup >= SPEEDUP_FLOOR,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(
        f"\n{args.rows:,} predictions · {report['slices']} slices over "
        f"{report['slice_columns']} columns · {args.samples:,} bootstrap resamples of ROC AUC · "
        f"{args.thresholds:,}-point threshold sweep"
    )
    print(f"{'contender':<16}{'wall s':>10}{'CPU s':>10}")
    print(f"{'mooring':<16}{mooring_s[0]:>10.2f}{mooring_s[1]:>10.2f}")
    print(f"{'sklearn loop':<16}{sklearn_s[0]:>10.2f}{sklearn_s[1]:>10.2f}")
    print(
        f"speedup {speedup:.1f}x wall, {cpu_speedup:.1f}x CPU (floor {SPEEDUP_FLOOR:g}x: "
        f"{'met' if report['meets_floor'] else 'NOT met'})"
    )
    print(
        f"{compared:,} numbers compared, max |difference| {worst:.3g} "
        f"({'within' if report['values_match'] else 'OUTSIDE'} {TOLERANCE:g})"
    )
    print(f"results written to {args.out}")
    return 0 if report["values_match"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
