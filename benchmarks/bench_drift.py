"""Benchmark: mooring drift vs Evidently's data-drift preset on 1M logged rows × the Adult features.

The "logged" window is made by resampling the real rows of ``adult.test`` (fixed seed) and
shifting two features on purpose, so the verdicts are worth comparing: ``age`` +8 years,
``hours-per-week`` +2 hours, and a third of the ``Male`` rows turned ``Female``. It is written
once as a prediction log under ``benchmarks/data/``. The training baseline is ``adult.data``.

Contenders, each in a fresh subprocess per repeat (repeats interleaved, medians reported):

* ``mooring``: what ``mooring drift`` does once the training statistics are stored with the
  version: load the statistics JSON, ``read_prediction_log`` (the last N rows of a log
  folder laid out as the server writes it: ``date=…/part-….parquet``, 100k rows a file),
  ``compute_drift`` at the default thresholds. ``mooring_cold`` also computes the baseline
  statistics from ``adult.data`` in the same run (what it costs without a registry).
* ``evidently``: Evidently 0.7 ``Report([DataDriftPreset()])`` on the same window (read with
  pandas) against ``adult.data`` as the reference DataFrame — its default per-column tests
  (for more than 1000 rows: Wasserstein distance normed by the reference std ≥ 0.1 for
  numbers, Jensen-Shannon distance ≥ 0.1 for categories). It runs in its own virtual
  environment, ``benchmarks/.venv-evidently`` (created by ``--setup`` or on first run:
  ``pip install "evidently>=0.7,<0.8" "pandas<3"``), so it never touches mooring's.

Both report read and compute times separately and a per-feature verdict; the benchmark
prints whether the verdicts agree per feature. Times are measured, never asserted; the
floor (mooring ≥ 10× faster than Evidently, read + compute) is evaluated and printed.

With ``--calibration`` it measures the drift calibration instead (its cost at
registration, false alarms over same-distribution windows and detection of three
shifts, beside Evidently on the same windows): see ``benchmarks/drift_calibration.py``.

Usage::

    python benchmarks/bench_drift.py                       # 1M rows, 3 repeats
    python benchmarks/bench_drift.py --rows 20000 --repeats 1 --out small.json
    python benchmarks/bench_drift.py --calibration         # 1,000 windows, 1M-row cost
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRAIN = ROOT / "examples" / "adult" / "adult.data.csv.gz"
TEST = ROOT / "examples" / "adult" / "adult.test.csv.gz"
EVIDENTLY_VENV = HERE / ".venv-evidently"
EVIDENTLY_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3"]
NA_VALUES = ["?", ""]
LABEL = "class"
FLOOR = 10.0
LOG_FILE_ROWS = 100_000


# ---------------------------------------------------------------- data


def prepare(data_dir: Path, rows: int, seed: int) -> dict[str, Path]:
    """Write (once) the shifted window as a prediction log, and the baseline statistics."""
    import datetime as dt

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from mooring.contract._io import ReadOptions, read_table
    from mooring.contract._statistics import compute_statistics

    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"drift_log_{rows}_seed{seed}"
    baseline = data_dir / "drift_baseline_adult.json"
    options = ReadOptions(na_values=tuple(NA_VALUES))
    if not baseline.exists():
        compute_statistics(TRAIN, options).save(baseline)
    if not log.exists():
        test = read_table(TEST, options).drop([LABEL])
        rng = np.random.default_rng(seed)
        table = test.take(pa.array(rng.integers(0, test.num_rows, rows)))
        age = pc.add(table["age"], 8)
        hours = pc.add(table["hours-per-week"], 2)
        male = pc.equal(table["sex"], "Male")
        switch = pc.and_(male, pa.array(rng.random(rows) < 1 / 3))
        sex = pc.if_else(switch, "Female", table["sex"])
        for name, column in (("age", age), ("hours-per-week", hours), ("sex", sex)):
            table = table.set_column(table.column_names.index(name), name, column)
        # As the server logs them: numbers as floats, a missing string as "".
        for name in table.column_names:
            column = table[name]
            if pa.types.is_string(column.type):
                column = pc.fill_null(column, "")
            else:
                column = pc.cast(column, pa.float64())
            table = table.set_column(table.column_names.index(name), name, column)
        start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
        stamps = pa.array([start + dt.timedelta(milliseconds=i) for i in range(rows)])
        head = pa.table(
            {
                "request_id": pa.array([f"r{i}" for i in range(rows)]),
                "timestamp": stamps,
                "model": pa.array(["income"] * rows),
                "model_version": pa.array(np.ones(rows, dtype=np.int64)),
            }
        )
        for name in table.column_names:
            head = head.append_column(name, table[name])
        folder = log / "date=2024-05-01"
        folder.mkdir(parents=True)
        # Files of LOG_FILE_ROWS rows, named as the server names them (epoch ms, then an id).
        for i, offset in enumerate(range(0, rows, LOG_FILE_ROWS)):
            part = head.slice(offset, LOG_FILE_ROWS)
            pq.write_table(part, folder / f"part-{1714521600000 + i}-{i:08x}.parquet")
    return {"log": log, "baseline": baseline}


# ---------------------------------------------------------------- children


def child_mooring(log: Path, baseline: Path, rows: int, cold: bool) -> dict[str, Any]:
    # Imports stay outside the timings on both sides: Evidently's child imports pandas before
    # its timer, and pyarrow imports pandas lazily on its first timestamp conversion.
    import pandas  # noqa: F401

    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._statistics import DatasetStatistics, compute_statistics
    from mooring.formats._predictions import read_prediction_log
    from mooring.monitoring._drift import compute_drift

    start = time.perf_counter()
    if cold:
        stats = compute_statistics(TRAIN, ReadOptions(na_values=tuple(NA_VALUES)))
    else:
        stats = DatasetStatistics.load(baseline)
    table = read_prediction_log(str(log), "income", last=rows)
    read = time.perf_counter() - start
    begin = time.perf_counter()
    report = compute_drift(stats, table, MonitoringConfig(), model="income", version=1)
    compute = time.perf_counter() - begin
    return {
        "read_s": read,
        "compute_s": compute,
        "total_s": read + compute,
        "rows": table.num_rows,
        "verdicts": {f.name: f.drifted for f in report.features},
        "scores": {
            f.name: {k: f.metrics.get(k) for k in ("wasserstein", "jensen_shannon", "psi", "ks")}
            for f in report.features
        },
    }


def child_evidently(log: Path) -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    start = time.perf_counter()
    reference = pd.read_csv(TRAIN, na_values=NA_VALUES, keep_default_na=True).drop(columns=[LABEL])
    current = pd.read_parquet(sorted(log.rglob("*.parquet"))).drop(
        columns=["request_id", "timestamp", "model", "model_version"]
    )
    # The same missing values mooring sees: the server logs a missing string as "".
    current = current.replace("", float("nan"))
    read = time.perf_counter() - start
    begin = time.perf_counter()
    numeric = [c for c in reference.columns if reference[c].dtype != object]
    categorical = [c for c in reference.columns if reference[c].dtype == object]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    compute = time.perf_counter() - begin
    verdicts: dict[str, bool] = {}
    scores: dict[str, Any] = {}
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        value = float(metric["value"])
        # Distance methods (Wasserstein, Jensen-Shannon) detect drift at value >= threshold.
        verdicts[config["column"]] = value >= float(config["threshold"])
        scores[config["column"]] = {"method": config["method"], "value": value}
    return {
        "read_s": read,
        "compute_s": compute,
        "total_s": read + compute,
        "rows": len(current),
        "verdicts": verdicts,
        "scores": scores,
        "version": __import__("evidently").__version__,
    }


# ---------------------------------------------------------------- driver


def setup_evidently() -> Path:
    """Create the Evidently virtual environment once; return its Python."""
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS], check=True
        )
    return python


def run_child(python: Path, *args: str) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def calibration_child(kind: str, rest: list[str]) -> dict[str, Any]:
    import drift_calibration as cal

    if kind == "calibration_cost":
        return cal.mooring_cost(Path(rest[0]), int(rest[1]))
    if kind == "calibration_mooring":
        return cal.mooring_verdicts(Path(rest[0]))
    if kind == "calibration_time":
        return {
            "time": cal.time_verdicts(int(rest[0])),
            "cardinality": cal.cardinality_verdicts(int(rest[1])),
        }
    return cal.evidently_verdicts(Path(rest[0]), int(rest[1]))


def calibration_main(args: argparse.Namespace, evidently_python: Path) -> int:
    sys.path.insert(0, str(HERE))
    import drift_calibration as cal

    windows = cal.windows_file(args.data_dir, args.windows, args.shift_windows, args.seed)
    big = cal.big_training_file(args.data_dir, args.big_rows, args.seed)
    me = Path(sys.executable)
    cost = {
        "adult": run_child(me, "calibration_cost", str(TRAIN), str(args.repeats)),
        f"{args.big_rows // 1000}k": run_child(me, "calibration_cost", str(big), str(args.repeats)),
    }
    print("cost measured", flush=True)
    verdicts = run_child(me, "calibration_mooring", str(windows))
    print("mooring verdicts measured", flush=True)
    over_time = run_child(me, "calibration_time", "8", str(args.shift_windows))
    print("time and cardinality measured", flush=True)
    evidently = run_child(
        evidently_python, "calibration_evidently", str(windows), str(args.evidently_windows)
    )
    result: dict[str, Any] = {
        "benchmark": "drift_calibration",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "repeats": args.repeats,
        "windows": args.windows,
        "shift_windows": args.shift_windows,
        "evidently_windows": args.evidently_windows,
        "evidently_version": evidently.pop("version", None),
        "cost": cost,
        "mooring": verdicts,
        "evidently": evidently,
        **over_time,
    }
    result["floors"] = cal.floors(result)
    out = (
        args.out
        if args.out.name != "bench_drift.json"
        else args.out.with_name("bench_drift_calibration.json")
    )
    cal.to_json(result, out)
    print("\n".join(cal.report(result)))
    print(f"results: {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_drift.json")
    parser.add_argument("--setup", action="store_true", help="Only create the Evidently venv.")
    parser.add_argument("--calibration", action="store_true", help="Benchmark calibration.")
    parser.add_argument("--windows", type=int, default=1000, help="Same-distribution windows.")
    parser.add_argument("--shift-windows", type=int, default=100, help="Windows per shift.")
    parser.add_argument("--evidently-windows", type=int, default=200)
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="Cost on this many.")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        if kind.startswith("calibration"):
            print(json.dumps(calibration_child(kind, rest)))
            return 0
        if kind == "evidently":
            result = child_evidently(Path(rest[0]))
        else:
            result = child_mooring(
                Path(rest[0]), Path(rest[1]), int(rest[2]), cold=kind == "mooring_cold"
            )
        print(json.dumps(result))
        return 0

    evidently_python = setup_evidently()
    if args.setup:
        print(f"Evidently environment ready: {evidently_python}")
        return 0
    if args.calibration:
        return calibration_main(args, evidently_python)
    paths = prepare(args.data_dir, args.rows, args.seed)
    log, baseline, rows = str(paths["log"]), str(paths["baseline"]), str(args.rows)
    runs: dict[str, list[dict[str, Any]]] = {"mooring": [], "mooring_cold": [], "evidently": []}
    for repeat in range(args.repeats):
        runs["mooring"].append(run_child(Path(sys.executable), "mooring", log, baseline, rows))
        runs["mooring_cold"].append(
            run_child(Path(sys.executable), "mooring_cold", log, baseline, rows)
        )
        runs["evidently"].append(run_child(evidently_python, "evidently", log))
        print(
            f"repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(f"{k} {v[-1]['total_s']:.2f} s" for k, v in runs.items()),
            flush=True,
        )

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    summary = {
        kind: {key: median(kind, key) for key in ("read_s", "compute_s", "total_s")}
        for kind in runs
    }
    ours, theirs = runs["mooring"][-1]["verdicts"], runs["evidently"][-1]["verdicts"]
    agreement = {
        name: {
            "mooring": ours.get(name),
            "evidently": theirs.get(name),
            "agree": ours.get(name) == theirs.get(name),
        }
        for name in sorted(set(ours) | set(theirs))
    }
    ratio_total = summary["evidently"]["total_s"] / summary["mooring"]["total_s"]
    ratio_compute = summary["evidently"]["compute_s"] / summary["mooring"]["compute_s"]
    ratio_cold = summary["evidently"]["total_s"] / summary["mooring_cold"]["total_s"]
    result = {
        "benchmark": "drift",
        "rows": args.rows,
        "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "evidently_version": runs["evidently"][-1].get("version"),
        "median_seconds": summary,
        "speedup_total": ratio_total,
        "speedup_compute": ratio_compute,
        "speedup_cold": ratio_cold,
        "floor": FLOOR,
        "floor_met": ratio_total >= FLOOR,
        "agreement": agreement,
        "agreeing_features": sum(a["agree"] for a in agreement.values()),
        "features": len(agreement),
        "scores": {
            "mooring": runs["mooring"][-1]["scores"],
            "evidently": runs["evidently"][-1]["scores"],
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")

    print(
        f"\n{args.rows:,} logged rows × {len(agreement)} Adult features, median of {args.repeats}"
    )
    print(f"{'':14}{'read s':>9}{'compute s':>11}{'total s':>9}")
    for kind, row in summary.items():
        print(f"{kind:14}{row['read_s']:9.2f}{row['compute_s']:11.2f}{row['total_s']:9.2f}")
    print(
        f"Evidently / mooring: total {ratio_total:.1f}x, compute {ratio_compute:.1f}x, "
        f"vs mooring computing its baseline too {ratio_cold:.1f}x "
        f"(floor {FLOOR:g}x total: {'met' if ratio_total >= FLOOR else 'NOT met'})"
    )
    print("\nfeature            mooring  evidently  agree")
    for name, a in agreement.items():
        mark = "yes" if a["agree"] else "NO"
        print(f"{name:18} {a['mooring']!s:8} {a['evidently']!s:9}  {mark}")
    print(f"\nverdicts agree on {result['agreeing_features']}/{len(agreement)} features")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
