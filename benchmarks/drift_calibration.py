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
* **time**: Adult (both files) along a synthetic time axis where ``age`` drifts slowly
  (rows sorted by age + N(0, 30 years), a minute a row): the first 30,000 rows are the
  training period, the next ``--time-windows`` 2,000-row windows continue the drift.
  Each is judged with time-ordered calibration (``[data] timestamp`` set), random-window
  calibration and the floors alone, beside the shift between the training period's two
  halves. Floor: the windows whose age shift is no larger than the halves' are not flagged
  with time calibration.
* **cardinality**: a 300-value category (``fnlwgt`` hashed: 150 buckets of about 0.6%,
  150 of about 0.07%) in same-distribution windows of adult.test at 1,000, 2,000 and
  10,000 rows: alarms of the drift check (which knows each distance's sampling noise at
  the window's rows) beside the windows past the floor alone, and detection of 5% unseen
  values. Floor: no alarm, 100% detection.
* **Evidently** 0.7's ``DataDriftPreset`` (its own virtual environment, as in the
  throughput benchmark) on the first ``--evidently-windows`` of the same windows, with
  adult.data as the reference: an alarm when any column drifts, and when its
  dataset-level share of drifted columns reaches 0.5.

Windows are stored once as row indices (``.npz``) so both tools read the same rows.
``python benchmarks/drift_calibration.py`` runs the time and cardinality parts alone (no
Evidently needed).
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
TIME_TRAIN = 30_000


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
    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._io import ReadOptions, read_table
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._calibration import calibrate

    options = ReadOptions(na_values=tuple(NA_VALUES))
    config = MonitoringConfig()
    times: dict[str, list[float]] = {
        "statistics_s": [],
        "read_s": [],
        "calibrate_s": [],
        "calibrate_ordered_s": [],
    }
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
        start = time.perf_counter()
        calibrate(table, stats, config, columns=columns, order="ordered")
        times["calibrate_ordered_s"].append(time.perf_counter() - start)
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

    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._io import ReadOptions, read_table
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._calibration import calibrate
    from mooring.monitoring._drift import compute_drift

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


def time_verdicts(windows: int) -> dict[str, Any]:
    """The slow-drift timeline: per window the age shift and the three verdicts."""
    import numpy as np
    import pyarrow as pa

    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._io import ReadOptions, read_table
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._calibration import calibrate
    from mooring.monitoring._drift import compute_drift

    options = ReadOptions(na_values=tuple(NA_VALUES))
    rows = pa.concat_tables([read_table(p, options).drop([LABEL]) for p in (TRAIN, TEST)])
    rng = np.random.default_rng(0)
    age = np.asarray(rows["age"].to_numpy(), dtype=np.float64)
    rows = rows.take(pa.array(np.argsort(age + rng.normal(0.0, 30.0, rows.num_rows))))
    start = np.datetime64("2024-01-01T00:00", "s")
    stamps = start + np.arange(rows.num_rows) * np.timedelta64(60, "s")
    rows = rows.append_column("event_time", pa.array(stamps, pa.timestamp("s")))
    train, size = rows.slice(0, TIME_TRAIN), 2000
    config = MonitoringConfig(window_rows=size)
    stats = compute_statistics(train)
    halves = compute_drift(
        compute_statistics(train.slice(0, TIME_TRAIN // 2)),
        train.slice(TIME_TRAIN // 2),
        config,
        timestamp="event_time",
    )
    calibrations: dict[str, Any] = {"floors": None}
    seconds = {}
    for order in ("ordered", "random"):
        began = time.perf_counter()
        calibrations[order] = calibrate(train, stats, config, order=order, timestamp="event_time")
        seconds[order] = time.perf_counter() - began
    out: list[dict[str, Any]] = []
    for i in range(windows):
        window = rows.slice(TIME_TRAIN + i * size, size)
        if window.num_rows < size:
            break
        row: dict[str, Any] = {"window": i}
        for name, calibration in calibrations.items():
            report = compute_drift(
                stats, window, config, calibration=calibration, timestamp="event_time"
            )
            age_drift = report.feature("age")
            row["age_shift"] = age_drift.metrics["wasserstein"]
            row[name] = report.drifted
            if name == "ordered":
                row["natural"] = age_drift.natural.get("wasserstein")
                row["natural_kind"] = age_drift.natural_kind.get("wasserstein")
        out.append(row)
    return {
        "train_rows": TIME_TRAIN,
        "window_rows": size,
        "halves_age_shift": halves.feature("age").metrics["wasserstein"],
        "calibrate_s": seconds,
        "windows": out,
    }


def _buckets(table: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    f = np.asarray(table["fnlwgt"].to_numpy(), dtype=np.uint64)
    u = ((f * np.uint64(2_654_435_761)) % np.uint64(2**32)).astype(np.float64) / 2**32
    k = np.where(u < 0.9, u / 0.9 * 150, 150 + (u - 0.9) / 0.1 * 150).astype(np.int64)
    return pa.array([f"b{x:03d}" for x in k])


def cardinality_verdicts(windows: int) -> dict[str, Any]:
    """The 300-value category: alarms, past-the-floor windows and detection per size."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._io import ReadOptions, read_table
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._drift import compute_drift

    options = ReadOptions(na_values=tuple(NA_VALUES))
    train = read_table(TRAIN, options).select(["fnlwgt"])
    test = read_table(TEST, options).select(["fnlwgt"])
    stats = compute_statistics(pa.table({"bucket": _buckets(train)}))
    column = pa.table({"bucket": _buckets(test)})
    config = MonitoringConfig()
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for size in (1_000, 2_000, 10_000):
        alarms = past_floor = detected = 0
        started = time.perf_counter()
        for _ in range(windows):
            window = column.take(pa.array(np.sort(rng.choice(column.num_rows, size, False))))
            judged = compute_drift(stats, window, config).feature("bucket")
            alarms += judged.drifted
            past_floor += (judged.metrics["jensen_shannon"] or 0.0) >= 0.1
            unseen = pc.if_else(pa.array(rng.random(size) < 0.05), "b999", window["bucket"])
            changed = compute_drift(stats, pa.table({"bucket": unseen}), config)
            detected += changed.drifted == ["bucket"]
        out[f"{size}"] = {
            "windows": windows,
            "alarms": alarms,
            "past_js_floor": past_floor,
            "unseen_detected": detected,
            "seconds_per_check": (time.perf_counter() - started) / (2 * windows),
            "natural_js": judged.natural.get("jensen_shannon"),
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
    lines += time_report(result)
    lines.append("")
    for line in result["floors"]:
        lines.append(line)
    return lines


def time_report(result: dict[str, Any]) -> list[str]:
    """The printed lines of the time and cardinality parts (when measured)."""
    lines = []
    if "time" in result:
        t = result["time"]
        lines += [
            "",
            f"slow drift along time: the training period's halves differ by age "
            f"{t['halves_age_shift']:.3f} σ; calibrate ordered "
            f"{t['calibrate_s']['ordered']:.3f} s, random {t['calibrate_s']['random']:.3f} s",
            f"{'window':>7}{'age shift':>11}{'natural':>9}  {'time':12}{'random':12}floors",
        ]
        for w in t["windows"]:
            lines.append(
                f"{w['window']:>7}{w['age_shift']:>11.3f}{w['natural']:>9.3f}  "
                f"{_names(w['ordered']):12}{_names(w['random']):12}{_names(w['floors'])}"
            )
    if "cardinality" in result:
        lines += ["", "300-value category, same-distribution windows of adult.test:"]
        for size, c in result["cardinality"].items():
            lines.append(
                f"  {int(size):>6,} rows: {c['alarms']} alarms in {c['windows']} (past the JS "
                f"floor alone: {c['past_js_floor']}), 5% unseen detected "
                f"{c['unseen_detected']}/{c['windows']}, natural JS {c['natural_js']:.3f}, "
                f"{c['seconds_per_check'] * 1000:.1f} ms a check"
            )
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
    out += time_floors(result)
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


def _names(drifted: list[str]) -> str:
    """``-``, ``age`` or ``age +2`` (the first drifted feature and how many more)."""
    if not drifted:
        return "-"
    return drifted[0] + (f" +{len(drifted) - 1}" if len(drifted) > 1 else "")


def time_floors(result: dict[str, Any]) -> list[str]:
    """The floors of the time and cardinality parts (when measured)."""
    out = []
    if "time" in result:
        t = result["time"]
        within = [w for w in t["windows"] if w["age_shift"] <= t["halves_age_shift"]]
        quiet = sum(not w["ordered"] for w in within)
        out.append(
            f"windows moved no further than training's own halves, not flagged with time "
            f"calibration: {quiet}/{len(within)}: {'met' if quiet == len(within) else 'NOT met'}"
        )
    for size, c in result.get("cardinality", {}).items():
        ok = c["alarms"] == 0 and c["unseen_detected"] == c["windows"]
        out.append(
            f"300-value category at {int(size):,} rows: {c['alarms']} alarms, "
            f"{c['unseen_detected']}/{c['windows']} detected: {'met' if ok else 'NOT met'}"
        )
    return out


def to_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")


def main() -> int:
    """The time and cardinality parts alone: ``python benchmarks/drift_calibration.py``."""
    import argparse

    parser = argparse.ArgumentParser(description="Drift calibration over time; 300 categories.")
    parser.add_argument("--time-windows", type=int, default=8)
    parser.add_argument("--cardinality-windows", type=int, default=200)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "drift_time.json")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "time": time_verdicts(args.time_windows),
        "cardinality": cardinality_verdicts(args.cardinality_windows),
    }
    result["floors"] = time_floors(result)
    to_json(result, args.out)
    print("\n".join([*time_report(result), "", *result["floors"]]))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
