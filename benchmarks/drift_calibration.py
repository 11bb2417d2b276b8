"""Drift calibration: its cost at registration, false alarms and detection, beside Evidently.

Run through ``python benchmarks/bench_drift.py --calibration`` (this module holds that
mode so that ``bench_drift.py`` stays readable). One run measures, on the bundled Adult:

* **cost**: ``calibrate`` (random windows, every column but the label) against the
  statistics pass it accompanies at registration (``compute_statistics`` of the training
  file, as ``mooring run`` does), median of ``--repeats`` interleaved runs each, on
  adult.data (32,561 rows) and on a 1,000,000-row resample of it (written once as CSV
  under ``benchmarks/data/``); reading the table is reported on its own. Floor: ≤ 20%.
* **false alarms**: ``--windows`` same-distribution windows (rows drawn without
  replacement from adult.test, fixed seed) of 10,000 rows (the default ``window_rows``)
  and of 1,000 rows (the default ``min_samples``), judged by ``compute_drift`` with the
  calibration and with the floors alone. A window is an alarm when any feature drifts.
  Floor: ≤ 0.5% with calibration.
* **detection**: ``--shift-windows`` windows per shift and size: age + 5 years, the sex
  mix flipped, 5% of ``workclass`` set to a category never seen. Floor: 100%.
* **Evidently** 0.7's ``DataDriftPreset`` (its own virtual environment, as in the
  throughput benchmark) on the first ``--evidently-windows`` of the same windows, with
  adult.data as the reference: an alarm when any column drifts, and when its
  dataset-level share of drifted columns reaches 0.5.

Windows are stored once as row indices (``.npz``) so both tools read the same rows.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRAIN = ROOT / "examples" / "adult" / "adult.data.csv.gz"
TEST = ROOT / "examples" / "adult" / "adult.test.csv.gz"
NA_VALUES = ["?", ""]
LABEL = "class"
SHIFTS = ("none", "age+5", "sex_flipped", "unseen_workclass")
SIZES = (10_000, 1_000)
COST_FLOOR = 0.20
FALSE_ALARM_FLOOR = 0.005


def windows_file(data_dir: Path, windows: int, shift_windows: int, seed: int) -> Path:
    """Row indices of every window, and the rows a shift changes, written once."""
    import numpy as np
    import pyarrow.csv as pacsv

    path = data_dir / f"calibration_windows_{windows}_{shift_windows}_seed{seed}.npz"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = pacsv.read_csv(TEST).num_rows
    rng = np.random.default_rng(seed)
    arrays: dict[str, Any] = {}
    for size in SIZES:
        for shift in SHIFTS:
            count = windows if shift == "none" else shift_windows
            picks = [np.sort(rng.choice(rows, size, replace=False)) for _ in range(count)]
            arrays[f"{shift}@{size}"] = np.stack(picks)
            arrays[f"{shift}@{size}:unseen"] = rng.random((count, size)) < 0.05
    np.savez_compressed(path, **arrays)
    return path


def big_training_file(data_dir: Path, rows: int, seed: int) -> Path:
    """adult.data resampled to ``rows`` rows (fixed seed), as CSV, written once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = data_dir / f"adult_train_{rows}_seed{seed}.csv"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        table = pacsv.read_csv(TRAIN)
        rng = np.random.default_rng(seed)
        pacsv.write_csv(table.take(pa.array(rng.integers(0, table.num_rows, rows))), path)
    return path


# ---------------------------------------------------------------- mooring


def _shifted(table: Any, shift: str, unseen: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    def put(name: str, column: Any) -> Any:
        return table.set_column(table.column_names.index(name), name, column)

    if shift == "age+5":
        return put("age", pc.add(table["age"], 5))
    if shift == "sex_flipped":
        return put("sex", pc.if_else(pc.equal(table["sex"], "Male"), "Female", "Male"))
    if shift == "unseen_workclass":
        return put("workclass", pc.if_else(pa.array(unseen), "Never-seen", table["workclass"]))
    return table


def mooring_cost(path: Path, repeats: int) -> dict[str, Any]:
    """Median seconds of the statistics pass, reading the table, and calibrating."""
    from mooring.config import MonitoringConfig
    from mooring.contract import ReadOptions, compute_statistics, read_table
    from mooring.monitoring import calibrate

    options = ReadOptions(na_values=tuple(NA_VALUES))
    config = MonitoringConfig()
    times: dict[str, list[float]] = {"statistics_s": [], "read_s": [], "calibrate_s": []}
    rows = 0
    for _ in range(repeats):
        start = time.perf_counter()
        stats = compute_statistics(path, options)
        times["statistics_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        table = read_table(path, options)
        times["read_s"].append(time.perf_counter() - start)
        columns = [c for c in stats.column_names if c != LABEL]
        start = time.perf_counter()
        calibrate(table, stats, config, columns=columns)
        times["calibrate_s"].append(time.perf_counter() - start)
        rows = table.num_rows
    out: dict[str, Any] = {k: statistics.median(v) for k, v in times.items()}
    out["rows"] = rows
    out["calibrate_over_statistics"] = out["calibrate_s"] / out["statistics_s"]
    out["read_and_calibrate_over_statistics"] = (out["read_s"] + out["calibrate_s"]) / out[
        "statistics_s"
    ]
    out["runs"] = times
    return out


def mooring_verdicts(windows: Path) -> dict[str, Any]:
    """Alarm counts per shift and size, with the calibration and with the floors alone."""
    import numpy as np

    from mooring.config import MonitoringConfig
    from mooring.contract import ReadOptions, compute_statistics, read_table
    from mooring.monitoring import calibrate, compute_drift

    options = ReadOptions(na_values=tuple(NA_VALUES))
    stats = compute_statistics(TRAIN, options)
    train = read_table(TRAIN, options)
    config = MonitoringConfig()
    columns = [c for c in stats.column_names if c != LABEL]
    calibration = calibrate(train, stats, config, columns=columns)
    test = read_table(TEST, options).drop([LABEL])
    arrays = np.load(windows)
    out: dict[str, Any] = {}
    for size in SIZES:
        for shift in SHIFTS:
            picks, unseen = arrays[f"{shift}@{size}"], arrays[f"{shift}@{size}:unseen"]
            flagged = {"calibrated": [], "floors": []}
            for i, rows in enumerate(picks):
                window = _shifted(test.take(rows), shift, unseen[i])
                for name, cal in (("calibrated", calibration), ("floors", None)):
                    report = compute_drift(stats, window, config, calibration=cal)
                    flagged[name].append(report.drifted)
            out[f"{shift}@{size}"] = {
                "windows": len(picks),
                **{
                    name: {
                        "alarms": sum(bool(d) for d in drifted),
                        "rate": sum(bool(d) for d in drifted) / len(picks),
                        "features": _count(drifted),
                    }
                    for name, drifted in flagged.items()
                },
            }
    return out


def _count(drifted: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for names in drifted:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------- Evidently (its venv)


def evidently_verdicts(windows: Path, limit: int) -> dict[str, Any]:
    """Evidently's DataDriftPreset on the first ``limit`` windows of every set."""
    import numpy as np
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_csv(TRAIN, na_values=NA_VALUES, keep_default_na=True).drop(columns=[LABEL])
    test = pd.read_csv(TEST, na_values=NA_VALUES, keep_default_na=True).drop(columns=[LABEL])
    numeric = [c for c in reference.columns if reference[c].dtype != object]
    categorical = [c for c in reference.columns if reference[c].dtype == object]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref = Dataset.from_pandas(reference, data_definition=definition)
    arrays = np.load(windows)
    out: dict[str, Any] = {}
    for size in SIZES:
        for shift in SHIFTS:
            picks = arrays[f"{shift}@{size}"][:limit]
            unseen = arrays[f"{shift}@{size}:unseen"][:limit]
            any_column, dataset, features = 0, 0, {}
            started = time.perf_counter()
            for i, rows in enumerate(picks):
                window = test.iloc[rows].reset_index(drop=True)
                if shift == "age+5":
                    window["age"] = window["age"] + 5
                elif shift == "sex_flipped":
                    male, female = window["sex"] == "Male", window["sex"] == "Female"
                    window.loc[male, "sex"] = "Female"
                    window.loc[female, "sex"] = "Male"
                elif shift == "unseen_workclass":
                    window.loc[unseen[i], "workclass"] = "Never-seen"
                result = (
                    Report([DataDriftPreset()])
                    .run(Dataset.from_pandas(window, data_definition=definition), ref)
                    .dict()
                )
                drifted = []
                share = 0.0
                for metric in result["metrics"]:
                    config = metric.get("config", {})
                    kind = config.get("type", "")
                    if kind == "evidently:metric_v2:ValueDrift":
                        if float(metric["value"]) >= float(config["threshold"]):
                            drifted.append(config["column"])
                    elif kind == "evidently:metric_v2:DriftedColumnsCount":
                        share = float(metric["value"]["share"])
                any_column += bool(drifted)
                dataset += share >= 0.5
                for name in drifted:
                    features[name] = features.get(name, 0) + 1
            out[f"{shift}@{size}"] = {
                "windows": len(picks),
                "any_column": {"alarms": any_column, "rate": any_column / max(len(picks), 1)},
                "dataset": {"alarms": dataset, "rate": dataset / max(len(picks), 1)},
                "features": dict(sorted(features.items(), key=lambda kv: -kv[1])),
                "seconds": time.perf_counter() - started,
            }
    out["version"] = __import__("evidently").__version__
    return out


def report(result: dict[str, Any]) -> list[str]:
    """The printed table."""
    lines = ["", "calibration cost (median):"]
    for name, cost in result["cost"].items():
        lines.append(
            f"  {name:10} {cost['rows']:>9,} rows: statistics {cost['statistics_s']:.3f} s, "
            f"read {cost['read_s']:.3f} s, calibrate {cost['calibrate_s']:.3f} s = "
            f"{cost['calibrate_over_statistics']:.0%} of the statistics pass"
        )
    lines.append("")
    head = ("windows", "mooring", "floors only", "Evidently any", "Evid. dataset")
    lines.append(f"{head[0]:24}{head[1]:>12}{head[2]:>13}{head[3]:>15}{head[4]:>15}")
    evidently = result.get("evidently", {})
    for key, row in result["mooring"].items():
        ev = evidently.get(key, {})
        ev_any = f"{ev['any_column']['rate']:.1%} of {ev['windows']}" if ev else "-"
        ev_set = f"{ev['dataset']['rate']:.1%}" if ev else "-"
        lines.append(
            f"{key:24}{row['calibrated']['rate']:>11.1%} {row['floors']['rate']:>12.1%}"
            f"{ev_any:>15}{ev_set:>15}"
        )
    lines.append("")
    for line in result["floors"]:
        lines.append(line)
    return lines


def floors(result: dict[str, Any]) -> list[str]:
    """Each floor of the issue with its measured number."""
    out = []
    for name, cost in result["cost"].items():
        ratio = cost["calibrate_over_statistics"]
        out.append(
            f"calibration cost on {name}: {ratio:.0%} of the statistics pass "
            f"(≤ {COST_FLOOR:.0%}): {'met' if ratio <= COST_FLOOR else 'NOT met'}"
        )
    for size in SIZES:
        rate = result["mooring"][f"none@{size}"]["calibrated"]["rate"]
        out.append(
            f"false alarms at {size:,} rows: {rate:.2%} (≤ {FALSE_ALARM_FLOOR:.1%}): "
            f"{'met' if rate <= FALSE_ALARM_FLOOR else 'NOT met'}"
        )
        for shift in SHIFTS[1:]:
            rate = result["mooring"][f"{shift}@{size}"]["calibrated"]["rate"]
            out.append(
                f"detection of {shift} at {size:,} rows: {rate:.0%} (100%): "
                f"{'met' if rate >= 1.0 else 'NOT met'}"
            )
    return out


def to_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
