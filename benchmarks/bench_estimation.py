"""Benchmark: performance estimated without labels (CBPE, DLE) on shifted windows of real tables.

A monitor without estimates assumes a version still performs as it did on its held-out
data (the **naive** estimate: the reference's own realized metric). CBPE
(``mooring.monitoring._estimate``) estimates a window's metrics from its scores alone,
through the score map frozen at registration. This measures how far each lands from the
metric the window's labels realize, on populations that moved.

Three real binary tables that installed packages ship, each read offline:

* ``adult``: the bundled census records (``examples/adult``), income above 50K; the
  model learns ``adult.data``, ``adult.test`` is the held-out part.
* ``breast-cancer``: scikit-learn's ``load_breast_cancer``, malignant is positive.
* ``seattle-weather``: ``vega_datasets``' Seattle days (bundled with the package), a sunny
  day is positive, from precipitation, temperatures, wind and month.

For each table and seed: scikit-learn's ``HistGradientBoostingClassifier``
(``random_state=0``) is trained on the train part (the small tables: a seeded stratified
half of the rows); the held-out part is shuffled with the seed, and its first half
freezes the reference (``fit_reference``, threshold 0.5), its other half (the *pool*)
gives the windows: ``random`` (a random half of the pool: no shift) and shifted windows,
the pool's rows meeting a condition on real columns that moves the positive rate (Adult:
``age >= 45`` with ``education-num >= 13``, ``age < 30``, women, ``hours-per-week >= 50``;
the others: a column's upper or lower quartile in the pool).

Per window: the realized ROC AUC and accuracy (scikit-learn on the true labels, a row
predicted positive when its score is at least 0.5), CBPE's estimate and whether the
realized value falls within its band, the naive estimate, and NannyML's CBPE on the same
reference and window when ``nannyml`` imports (it is not a dependency; otherwise
recorded as not installed). Per table and overall: the mean absolute error of CBPE and
of the naive estimate, and the coverage (share of windows whose realized value is within
CBPE's band). A window with one class only has no AUC and is left out of AUC's figures.

Regression (direct loss estimation, ``mooring.monitoring._estimate_loss``): Adult's
``age`` from every other column (scikit-learn's ``HistGradientBoostingRegressor``,
trained on ``adult.data``); per seed a random half of ``adult.test`` freezes the error
model, the other half gives a random window and windows of Own-child, married people,
``hours-per-week >= 50`` and women. Per window: the realized MAE and RMSE, DLE's
estimate and band, and the naive estimate (the held-out half's MAE and RMSE).

Floor: on Adult's shifted window (``age >= 45`` and ``education-num >= 13``) the
realized AUC and accuracy fall within CBPE's band (every seed). It is reported, not
enforced by the exit code.

Writes ``--out`` (``benchmarks/results/estimation.json``) and a ``.md`` beside it.

Usage::

    python benchmarks/bench_estimation.py                 # 3 tables, 5 seeds
    python benchmarks/bench_estimation.py --seeds 2       # fewer splits
    python benchmarks/bench_estimation.py --quick         # Adult, 1 seed, 3 windows
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mooring.monitoring._estimate import EstimationReference, estimate, fit_reference

HERE = Path(__file__).resolve().parent
ADULT = HERE.parent / "examples" / "adult"
THRESHOLD = 0.5
METRICS = ("auc", "accuracy")
#: The window the floor is judged on.
FLOOR_TABLE, FLOOR_WINDOW = "adult", "age>=45 & education-num>=13"

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Split = tuple[pd.DataFrame, Floats, pd.DataFrame, Floats]


@dataclass(frozen=True)
class Shift:
    """A window: the pool's rows for which ``select`` is true."""

    name: str
    select: Callable[[pd.DataFrame], Mask]


def _quartile(column: str, upper: bool) -> Shift:
    def select(frame: pd.DataFrame) -> Mask:
        values = frame[column].to_numpy(np.float64)
        if upper:
            return np.asarray(values >= np.quantile(values, 0.75))
        return np.asarray(values <= np.quantile(values, 0.25))

    return Shift(f"{column} {'top' if upper else 'bottom'} quartile", select)


def _where(name: str, select: Callable[[pd.DataFrame], Any]) -> Shift:
    return Shift(name, lambda frame: np.asarray(select(frame), dtype=np.bool_))


@dataclass(frozen=True)
class Table:
    """A binary table: how its train and held-out parts are made for a seed, its windows."""

    name: str
    source: str
    split: Callable[[int], Split]
    shifts: tuple[Shift, ...]


def _categorical(train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Text columns as categories (the train part's), in place: the model's input."""
    for column in train.columns:
        if not pd.api.types.is_numeric_dtype(train[column]):
            train[column] = train[column].astype("category")
            test[column] = pd.Categorical(test[column], categories=train[column].cat.categories)


def _adult_file(name: str) -> tuple[pd.DataFrame, Floats]:
    frame = pd.read_csv(ADULT / name)
    labels = frame.pop("class").astype(str).str.startswith(">50K").to_numpy()
    return frame, labels.astype(np.float64)


@functools.cache
def _adult(seed: int) -> Split:
    """adult.data to train on, adult.test held out (the same for every seed)."""
    del seed
    train, train_y = _adult_file("adult.data.csv.gz")
    test, test_y = _adult_file("adult.test.csv.gz")
    _categorical(train, test)
    return train, train_y, test, test_y


def _halves(frame: pd.DataFrame, labels: Floats, seed: int) -> Split:
    """A stratified seeded half of the rows to train on, the rest held out."""
    rng = np.random.default_rng(seed)
    train = np.zeros(labels.size, dtype=np.bool_)
    for value in (0.0, 1.0):
        rows = np.flatnonzero(labels == value)
        train[rng.permutation(rows)[: rows.size // 2]] = True
    return (
        frame[train].reset_index(drop=True),
        labels[train],
        frame[~train].reset_index(drop=True),
        labels[~train],
    )


def _breast_cancer(seed: int) -> Split:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    labels = (frame.pop("target").to_numpy() == 0).astype(np.float64)  # 0 is malignant
    return _halves(frame, labels, seed)


def _seattle(seed: int) -> Split:
    from vega_datasets import data  # type: ignore[import-untyped]

    days = data.seattle_weather()
    labels = (days["weather"] == "sun").to_numpy(np.float64)
    frame = days[["precipitation", "temp_max", "temp_min", "wind"]].copy()
    frame["month"] = days["date"].dt.month
    return _halves(frame, labels, seed)


TABLES = (
    Table(
        "adult",
        "examples/adult (adult.data / adult.test), income >50K",
        _adult,
        (
            _where(
                "age>=45 & education-num>=13",
                lambda f: (f["age"] >= 45) & (f["education-num"] >= 13),
            ),
            _where("age<30", lambda f: f["age"] < 30),
            _where("women", lambda f: f["sex"] == "Female"),
            _where("hours-per-week>=50", lambda f: f["hours-per-week"] >= 50),
        ),
    ),
    Table(
        "breast-cancer",
        "scikit-learn load_breast_cancer, malignant",
        _breast_cancer,
        (_quartile("mean radius", upper=True), _quartile("mean texture", upper=False)),
    ),
    Table(
        "seattle-weather",
        "vega_datasets seattle_weather, weather == 'sun'",
        _seattle,
        (_quartile("temp_max", upper=True), _quartile("wind", upper=True)),
    ),
)


def realized(labels: Floats, scores: Floats) -> dict[str, float | None]:
    """The window's AUC (None with one class only) and accuracy, by scikit-learn."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    both = 0 < labels.sum() < labels.size
    return {
        "auc": float(roc_auc_score(labels, scores)) if both else None,
        "accuracy": float(accuracy_score(labels, scores >= THRESHOLD)),
    }


def nannyml_status() -> str | None:
    """None when ``nannyml`` imports, else why not."""
    try:
        importlib.import_module("nannyml")
    except ImportError:
        return "not installed"
    return None


def nannyml_estimate(
    ref_scores: Floats, ref_labels: Floats, window_scores: Floats
) -> dict[str, float | None]:
    """NannyML's CBPE fitted on the reference rows, on the window as one chunk."""
    nml: Any = importlib.import_module("nannyml")

    def frame(scores: Floats, labels: Floats | None = None) -> pd.DataFrame:
        out = pd.DataFrame(
            {"y_pred_proba": scores, "y_pred": (scores >= THRESHOLD).astype(np.int64)}
        )
        if labels is not None:
            out["y_true"] = labels.astype(np.int64)
        return out

    estimator = nml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="y_true",
        metrics=["roc_auc", "accuracy"],
        problem_type="classification_binary",
        chunk_number=1,
    )
    estimator.fit(frame(ref_scores, ref_labels))
    found = estimator.estimate(frame(window_scores)).to_df()
    out: dict[str, float | None] = {}
    for ours, theirs in (("auc", "roc_auc"), ("accuracy", "accuracy")):
        value = float(found[(theirs, "value")].iloc[-1])
        out[ours] = value if math.isfinite(value) else None
    return out


@functools.cache
def _model_scores(table: Table, seed: int) -> tuple[Floats, pd.DataFrame, Floats]:
    """The held-out part's scores by a model trained on the train part, its rows and labels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train, train_y, held, held_y = table.split(seed)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(train, train_y)
    return np.asarray(model.predict_proba(held)[:, 1], dtype=np.float64), held, held_y


def run_split(
    table: Table, seed: int, shifts: tuple[Shift, ...], nannyml: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The reference of one seed's split and its windows' records."""
    # Adult's split is the same for every seed: its model is trained once.
    scores, held, labels = _model_scores(table, 0 if table.name == "adult" else seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(labels.size)
    ref_rows, pool_rows = order[: labels.size // 2], order[labels.size // 2 :]
    ref_scores, ref_labels = scores[ref_rows], labels[ref_rows]
    import pyarrow as pa

    inputs = pa.Table.from_pandas(held, preserve_index=False)
    reference = fit_reference(
        ref_scores, ref_labels, threshold=THRESHOLD, seed=seed, features=inputs.take(ref_rows)
    )
    naive = realized(ref_labels, ref_scores)
    pool = held.iloc[pool_rows].reset_index(drop=True)
    pool_scores, pool_labels = scores[pool_rows], labels[pool_rows]
    random_half = np.zeros(pool_rows.size, dtype=np.bool_)
    random_half[rng.permutation(pool_rows.size)[: pool_rows.size // 2]] = True
    windows = [("random", random_half)] + [(s.name, s.select(pool)) for s in shifts]
    ref_info = {
        "table": table.name,
        "seed": seed,
        "rows": int(ref_rows.size),
        "positive_rate": float(ref_labels.mean()),
        "identity_map": reference.score_map.identity,
        "ece_raw": reference.ece_raw,
        "ece_mapped": reference.ece_mapped,
        "refused": reference.refused,
        "naive": naive,
    }
    records = [
        window_record(
            table.name,
            seed,
            name,
            reference,
            naive,
            pool_labels[mask],
            pool_scores[mask],
            inputs.take(pool_rows[mask]),
            (ref_scores, ref_labels) if nannyml else None,
        )
        for name, mask in windows
    ]
    return ref_info, records


def window_record(
    table: str,
    seed: int,
    window: str,
    reference: EstimationReference,
    naive: dict[str, float | None],
    labels: Floats,
    scores: Floats,
    inputs: Any,
    nannyml_reference: tuple[Floats, Floats] | None,
) -> dict[str, Any]:
    """One window: what its labels realize and what each estimate said before them."""
    truth = realized(labels, scores)
    found = estimate(reference, scores, seed=seed, inputs=inputs)
    cbpe: dict[str, Any] = {"refused": found.refused}
    for name in METRICS:
        metric = found.metrics.get(name)
        value = truth[name]
        if metric is None:
            cbpe[name] = None
            continue
        outside = None if value is None else max(metric.low - value, value - metric.high, 0.0)
        cbpe[name] = {
            **metric.to_dict(),
            "holds": None if value is None else metric.holds(value),
            "outside_by": outside,
        }
    other: dict[str, Any] | None = None
    if nannyml_reference is not None:
        try:
            other = nannyml_estimate(*nannyml_reference, scores)
        except Exception as error:  # a failing contender is reported, the run goes on
            other = {"error": f"{type(error).__name__}: {error}"[:300]}
    return {
        "table": table,
        "seed": seed,
        "window": window,
        "rows": int(labels.size),
        "positive_rate": float(labels.mean()) if labels.size else None,
        "realized": truth,
        "cbpe": cbpe,
        "naive": naive,
        "nannyml": other,
        "unreliable": found.unreliable,
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean absolute errors (CBPE, naive, NannyML) and CBPE's coverage over ``records``."""
    out: dict[str, Any] = {
        "windows": len(records),
        "estimated": sum(r["cbpe"]["refused"] is None for r in records),
        "unreliable": sum(r.get("unreliable") is not None for r in records),
    }
    for name in METRICS:
        errors: dict[str, list[float]] = {"cbpe": [], "naive": [], "nannyml": []}
        judged = covered = 0
        for r in records:
            value = r["realized"][name]
            guess = r["cbpe"][name]
            if value is None or guess is None:
                continue
            judged += 1
            covered += bool(guess["holds"])
            errors["cbpe"].append(abs(guess["value"] - value))
            naive = r["naive"][name]
            if naive is not None:
                errors["naive"].append(abs(naive - value))
            theirs = (r["nannyml"] or {}).get(name)
            if isinstance(theirs, int | float):
                errors["nannyml"].append(abs(float(theirs) - value))
        out[name] = {
            "judged": judged,
            "cbpe_mae": _mean(errors["cbpe"]),
            "naive_mae": _mean(errors["naive"]),
            "nannyml_mae": _mean(errors["nannyml"]),
            "covered": covered,
            "coverage": covered / judged if judged else None,
        }
    return out


def floors(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The floor: Adult's shifted window's realized AUC and accuracy within CBPE's band."""
    chosen = [r for r in records if (r["table"], r["window"]) == (FLOOR_TABLE, FLOOR_WINDOW)]
    held = {name: [bool((r["cbpe"][name] or {}).get("holds")) for r in chosen] for name in METRICS}
    return {
        "window": f"{FLOOR_TABLE}: {FLOOR_WINDOW}",
        "seeds": len(chosen),
        **{f"{name}_within": sum(held[name]) for name in METRICS},
        "met": bool(chosen) and all(all(v) for v in held.values()),
    }


#: Adult's age as a regression: the windows, by columns the error model sees.
AGE_SHIFTS = (
    _where("relationship = Own-child", lambda f: f["relationship"] == "Own-child"),
    _where("married", lambda f: f["marital-status"].astype(str).str.startswith("Married")),
    _where("hours-per-week >= 50", lambda f: f["hours-per-week"] >= 50),
    _where("women", lambda f: f["sex"] == "Female"),
)


@functools.cache
def _age_model() -> tuple[pd.DataFrame, Floats, Floats]:
    """adult.test's rows, their age and scikit-learn's gradient boosted trees' prediction
    of it, trained on adult.data from every other column (the label too)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    train, test = pd.read_csv(ADULT / "adult.data.csv.gz"), pd.read_csv(ADULT / "adult.test.csv.gz")
    train_age = train.pop("age").to_numpy(np.float64)
    test_age = test.pop("age").to_numpy(np.float64)
    plain = test.copy()
    _categorical(train, test)
    model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
    model.fit(train, train_age)
    return plain, test_age, np.asarray(model.predict(test), dtype=np.float64)


def run_regression(seeds: int) -> list[dict[str, Any]]:
    """Direct loss estimation of the age model's MAE and RMSE, beside the naive estimate."""
    import pyarrow as pa

    from mooring.monitoring._estimate_loss import estimate_loss, fit_loss_reference

    frame, age, predicted = _age_model()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    records = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(age.size)
        frozen, pool = order[: age.size // 2], order[age.size // 2 :]
        reference = fit_loss_reference(table.take(frozen), predicted[frozen], age[frozen])
        if reference.refused is not None:
            raise SystemExit(f"seed {seed}: the age model's error model: {reference.refused}")
        naive = {
            "mae": float(np.mean(np.abs(age[frozen] - predicted[frozen]))),
            "rmse": float(np.sqrt(np.mean((age[frozen] - predicted[frozen]) ** 2))),
        }
        pool_frame = frame.iloc[pool].reset_index(drop=True)
        windows = [("random", pool[: pool.size // 2])]
        windows += [(shift.name, pool[shift.select(pool_frame)]) for shift in AGE_SHIFTS]
        for name, rows in windows:
            est = estimate_loss(reference, table.take(rows), predicted[rows])
            error = age[rows] - predicted[rows]
            real = {
                "mae": float(np.mean(np.abs(error))),
                "rmse": float(np.sqrt(np.mean(error**2))),
            }
            records.append(
                {
                    "seed": seed,
                    "window": name,
                    "rows": int(rows.size),
                    "realized": real,
                    "naive": naive,
                    "dle": {
                        m: {**est.metrics[m].to_dict(), "holds": est.metrics[m].holds(real[m])}
                        for m in ("mae", "rmse")
                    },
                    "unreliable": est.unreliable,
                }
            )
    return records


def regression_markdown(records: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "Regression (DLE): Adult's age, scikit-learn's gradient boosted trees.",
        "",
        "| window | rows | realized MAE | DLE err | naive err | MAE within | realized RMSE "
        "| DLE err | naive err | RMSE within | unreliable |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for window in dict.fromkeys(r["window"] for r in records):
        chosen = [r for r in records if r["window"] == window]
        cells = []
        for m in ("mae", "rmse"):
            real = [r["realized"][m] for r in chosen]
            cells += [
                _f(float(np.mean(real))),
                _f(float(np.mean([abs(r["dle"][m]["value"] - r["realized"][m]) for r in chosen]))),
                _f(float(np.mean([abs(r["naive"][m] - r["realized"][m]) for r in chosen]))),
                f"{sum(r['dle'][m]['holds'] for r in chosen)}/{len(chosen)}",
            ]
        rows = float(np.mean([r["rows"] for r in chosen]))
        marked = f"{sum(r['unreliable'] is not None for r in chosen)}/{len(chosen)}"
        lines.append(f"| {window} | {rows:.0f} | " + " | ".join(cells) + f" | {marked} |")
    return lines


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    nml = result["nannyml"]
    lines = [
        f"CBPE against the naive estimate; NannyML: {nml}. "
        f"{result['seeds']} seed(s); {result['date']}, commit {result['commit']}.",
        "",
        "| table | windows (estimated, unreliable) | AUC MAE CBPE | naive | NannyML "
        "| AUC within band | accuracy MAE CBPE | naive | NannyML | accuracy within band |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in [*result["summary"]["tables"].items(), ("all", result["summary"]["all"])]:
        cells = []
        for metric in METRICS:
            m = s[metric]
            cells += [
                _f(m["cbpe_mae"]),
                _f(m["naive_mae"]),
                _f(m["nannyml_mae"]),
                f"{m['covered']}/{m['judged']}",
            ]
        lines.append(
            f"| {name} | {s['windows']} ({s['estimated']}, {s['unreliable']}) | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "| table | window | rows | positive rate | realized AUC | CBPE AUC err | naive AUC err "
        "| AUC within | realized accuracy | CBPE acc err | naive acc err | accuracy within |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in result["summary"]["windows"].items():
        table, window = key.split(" / ", 1)
        cells = []
        for metric in METRICS:
            m = s[metric]
            cells += [
                _f(s["realized"][metric]),
                _f(m["cbpe_mae"]),
                _f(m["naive_mae"]),
                f"{m['covered']}/{m['judged']}",
            ]
        lines.append(
            f"| {table} | {window} | {s['rows']:.0f} | {_f(s['positive_rate'], 2)} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "References refused (no estimate from them):", ""]
    for name in result["tables"]:
        refs = [r for r in result["references"] if r["table"] == name]
        refused = [r for r in refs if r["refused"] is not None]
        eces = ", ".join(f"{_f(r['ece_raw'])} / {_f(r['ece_mapped'])}" for r in refused)
        lines.append(
            f"- {name}: {len(refused)} of {len(refs)} ({refs[0]['rows']} reference rows each)"
            + (f"; ECE as they are / through the map out of fold: {eces}" if refused else "")
        )
    lines += ["", "Windows whose realized value fell outside CBPE's band:", ""]
    misses = [
        (r, name)
        for r in result["windows"]
        for name in METRICS
        if r["cbpe"][name] is not None and r["cbpe"][name]["holds"] is False
    ]
    for r, name in misses:
        band = r["cbpe"][name]
        lines.append(
            f"- {r['table']} seed {r['seed']}, {r['window']}: {name} {r['realized'][name]:.4f}, "
            f"band {band['low']:.4f}–{band['high']:.4f} (outside by {band['outside_by']:.4f})"
        )
    if not misses:
        lines.append("- none")
    floor = result["floor"]
    lines += [
        "",
        f"Floor ({floor['window']}): AUC within the band on {floor['auc_within']}/"
        f"{floor['seeds']} seeds, accuracy on {floor['accuracy_within']}/{floor['seeds']}: "
        f"{'met' if floor['met'] else 'NOT met'}.",
    ]
    lines += regression_markdown(result["regression"])
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
    parser.add_argument("--out", type=Path, default=HERE / "results" / "estimation.json")
    parser.add_argument("--seeds", type=int, default=5, help="random splits per table")
    parser.add_argument(
        "--quick", action="store_true", help="Adult only, 1 seed, the random and two shifts"
    )
    args = parser.parse_args(argv)
    started, cpu = time.perf_counter(), time.process_time()
    load_start = os.getloadavg()
    tables = TABLES[:1] if args.quick else TABLES
    seeds = 1 if args.quick else args.seeds
    missing = nannyml_status()
    references, records = [], []
    regression = run_regression(seeds)
    for table in tables:
        shifts = table.shifts[:2] if args.quick else table.shifts
        for seed in range(seeds):
            ref, found = run_split(table, seed, shifts, nannyml=missing is None)
            references.append(ref)
            records += found
            print(
                f"{table.name} seed {seed}: "
                + "; ".join(
                    f"{r['window']} ({r['rows']} rows) auc {_f(r['realized']['auc'])} est "
                    f"{_f((r['cbpe']['auc'] or {}).get('value'))}"
                    for r in found
                ),
                flush=True,
            )
    by_window: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys(f"{r['table']} / {r['window']}" for r in records):
        chosen = [r for r in records if f"{r['table']} / {r['window']}" == key]
        summary = summarise(chosen)
        summary["rows"] = float(np.mean([r["rows"] for r in chosen]))
        summary["positive_rate"] = _mean(
            [r["positive_rate"] for r in chosen if r["positive_rate"] is not None]
        )
        summary["realized"] = {
            name: _mean([r["realized"][name] for r in chosen if r["realized"][name] is not None])
            for name in METRICS
        }
        by_window[key] = summary
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    result: dict[str, Any] = {
        "benchmark": "estimation",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "quick": args.quick,
        "seeds": seeds,
        "threshold": THRESHOLD,
        "nannyml": missing or "installed",
        "tables": {t.name: t.source for t in tables},
        "references": references,
        "windows": records,
        "summary": {
            "all": summarise(records),
            "tables": {
                t.name: summarise([r for r in records if r["table"] == t.name]) for t in tables
            },
            "windows": by_window,
        },
        "floor": floors(records),
        "regression": regression,
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
