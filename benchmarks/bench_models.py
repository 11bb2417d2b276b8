"""Benchmark: the model kinds against scikit-learn's baselines on the same splits, one run.

* Adult (the bundled train/test files): mooring's ``gbt`` and ``mlp`` with defaults
  (no epochs/batch size set) against scikit-learn's logistic regression and
  HistGradientBoosting on the same rows (one-hot categories, NaN for missing): test AUC;
  the GBT's training seconds (YDF fit only, and train_model end to end).
* scikit-learn's wine and diabetes tables (column names as shipped), 25% test split
  (seed 0): mooring's ``mlp`` with defaults against logistic / linear regression.
* Served single-row latency: p50 of ``load_served_model(...).predict`` in process
  (the server's model call, without HTTP) for the GBT and the MLP on Adult rows.

Floors are evaluated and printed, never asserted. ``--quick`` uses an Adult sample and
few trees (the smoke test); its numbers say nothing about the floors.

Usage::

    python benchmarks/bench_models.py --out benchmarks/results/bench_models.json
    python benchmarks/bench_models.py --quick --out benchmarks/results/bench_models_quick.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT / "examples" / "adult"
FLOORS = {
    "adult_gbt_auc": (">=", 0.926),
    "adult_mlp_auc": (">=", 0.919),
    "wine_accuracy": (">=", 0.95),
    "diabetes_rmse": ("<=", 55.0),
    "gbt_fit_seconds": ("<=", 15.0),
    "gbt_p50_over_mlp_p50": ("<=", 2.0),
}


def _adult(folder: Path, rows: int | None) -> dict[str, Path]:
    import pandas as pd

    out = {}
    for key, name in (("train", "adult.data.csv.gz"), ("test", "adult.test.csv.gz")):
        frame = pd.read_csv(ADULT / name, skipinitialspace=True)
        frame = frame.head(rows) if rows else frame
        out[key] = folder / f"adult_{key}.csv"
        frame.to_csv(out[key], index=False)
    return out


def _train(
    root: Path, name: str, train: Path, label: str, model: dict[str, Any], **data: Any
) -> Any:
    from mooring.config import MooringConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.training._fit import train_model

    cfg = MooringConfig.from_mapping(
        {"project": {"name": name}, "data": {"train": str(train), "label": label, **data},
         "model": model},
        root=root,
    )  # fmt: skip
    stats = compute_statistics(train, ReadOptions.from_config(cfg.data))
    schema = infer_schema(stats, label=label)
    start = time.perf_counter()
    result = train_model(
        cfg, statistics=stats, schema=schema, output_dir=root / name, tensorboard=False
    )
    return result, time.perf_counter() - start


def _p50_ms(model_dir: Path, rows: list[dict[str, Any]], repeats: int) -> float:
    from mooring.features._inputs import columns_from_records, model_spec
    from mooring.serving._loaded import load_served_model

    served = load_served_model("bench", 1, model_dir)
    spec = model_spec(served.folder)
    feeds = [columns_from_records([row], spec) for row in rows]
    for feed in feeds[:20]:
        served.predict(feed)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        served.predict(feeds[i % len(feeds)])
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def bench_adult(root: Path, quick: bool) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from mooring.contract._io import ReadOptions, read_table
    from mooring.features._inputs import predict_saved_model

    paths = _adult(root, 3000 if quick else None)
    data = {"positive": ">50K", "na_values": ["?", ""]}
    gbt_model = {"kind": "gbt", "task": "binary", **({"gbt": {"num_trees": 20}} if quick else {})}
    gbt, gbt_total = _train(root, "adult_gbt", paths["train"], "class", gbt_model, **data)
    mlp_model = {"kind": "mlp", "task": "binary", **({"max_steps": 200} if quick else {})}
    mlp, mlp_total = _train(root, "adult_mlp", paths["train"], "class", mlp_model, **data)
    test = read_table(paths["test"], ReadOptions(na_values=("?", "")))
    y = (np.asarray(test.column("class").to_pylist()) == ">50K").astype(int)
    features = test.drop(["class"])
    auc = {}
    for key, result in (("gbt", gbt), ("mlp", mlp)):
        out = predict_saved_model(result.model_dir, features)
        auc[key] = float(roc_auc_score(y, out["probabilities"][:, 1]))
    train = pd.read_csv(paths["train"], na_values=["?"])
    frame = pd.concat([train, features.to_pandas()], keys=["train", "test"])
    x = pd.get_dummies(frame.drop(columns=["class"]), dummy_na=False).astype(float)
    x_train, x_test = x.loc["train"], x.loc["test"]
    y_train = (train["class"] == ">50K").astype(int)
    hgb = HistGradientBoostingClassifier(random_state=0).fit(x_train, y_train)
    auc["sklearn_hist_gradient_boosting"] = float(roc_auc_score(y, hgb.predict_proba(x_test)[:, 1]))
    scaled_mean = x_train.mean()
    scaled_std: Any = x_train.std()
    scaled_std = scaled_std.where(scaled_std > 0, 1.0)
    lr = LogisticRegression(max_iter=2000).fit(
        ((x_train - scaled_mean) / scaled_std).fillna(0), y_train
    )
    lr_p = lr.predict_proba(((x_test - scaled_mean) / scaled_std).fillna(0))[:, 1]
    auc["sklearn_logistic_regression"] = float(roc_auc_score(y, lr_p))
    rows = features.slice(0, 200).to_pylist()
    repeats = 200 if quick else 2000
    gbt_p50 = _p50_ms(gbt.model_dir, rows, repeats)
    mlp_p50 = _p50_ms(mlp.model_dir, rows, repeats)
    return {
        "train_rows": gbt.record["data"]["train_rows"],
        "test_rows": len(y),
        "auc": auc,
        "gbt_trees": gbt.record["trees"],
        "gbt_fit_seconds": gbt.timings["fit_seconds"],
        "gbt_train_model_seconds": gbt_total,
        "mlp_train_model_seconds": mlp_total,
        "mlp_plan": mlp.record["plan"],
        "mlp_rounds_run": len(mlp.epochs),
        "served_single_row_p50_ms": {"gbt": gbt_p50, "mlp": mlp_p50},
        "latency_method": "in-process load_served_model(...).predict, one row per call",
        "gbt_top_features": dict(list(gbt.record["feature_importances"].items())[:5]),
    }


def bench_small(root: Path) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mooring.features._inputs import predict_saved_model

    out: dict[str, Any] = {}
    for name, loader in (("wine", load_wine), ("diabetes", load_diabetes)):
        frame = loader(as_frame=True).frame
        classify = name == "wine"
        if classify:
            frame["target"] = "class_" + frame["target"].astype(str)
        train, test = train_test_split(
            frame, test_size=0.25, random_state=0, stratify=frame["target"] if classify else None
        )
        cols = [c for c in frame.columns if c != "target"]
        path = root / f"{name}.csv"
        train.to_csv(path, index=False)
        result, seconds = _train(root, name, path, "target", {})
        pred = predict_saved_model(
            result.model_dir, pa.Table.from_pandas(test[cols], preserve_index=False)
        )
        truth = test["target"].to_numpy()
        if classify:
            ours = float(np.mean(np.array([c.decode() for c in pred["classes"]]) == truth))
            base = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            theirs = float(base.fit(train[cols], train["target"]).score(test[cols], truth))
            out[name] = {
                "metric": "accuracy",
                "mooring_mlp": ours,
                "sklearn_logistic_regression": theirs,
            }
        else:
            ours = float(np.sqrt(np.mean((pred["value"] - truth) ** 2)))
            fitted = LinearRegression().fit(train[cols], train["target"]).predict(test[cols])
            theirs = float(np.sqrt(np.mean((fitted - truth) ** 2)))
            out[name] = {"metric": "rmse", "mooring_mlp": ours, "sklearn_linear_regression": theirs}
        out[name].update(
            train_rows=len(train), seconds=seconds, plan=result.record["plan"]["reason"],
            rounds_run=len(result.epochs), best_round=result.best_epoch,
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="an Adult sample; smoke test only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_models.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-models-") as scratch:
        root = Path(scratch)
        adult = bench_adult(root, args.quick)
        small = bench_small(root)
    p50 = adult["served_single_row_p50_ms"]
    measured = {
        "adult_gbt_auc": adult["auc"]["gbt"],
        "adult_mlp_auc": adult["auc"]["mlp"],
        "wine_accuracy": small["wine"]["mooring_mlp"],
        "diabetes_rmse": small["diabetes"]["mooring_mlp"],
        "gbt_fit_seconds": adult["gbt_fit_seconds"],
        "gbt_p50_over_mlp_p50": p50["gbt"] / p50["mlp"] if p50["mlp"] > 0 else float("inf"),
    }
    floors = {
        key: {"value": measured[key], "floor": f"{op} {limit}",
              "met": measured[key] >= limit if op == ">=" else measured[key] <= limit}
        for key, (op, limit) in FLOORS.items()
    }  # fmt: skip
    report = {
        "benchmark": "models",
        "quick": args.quick,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "adult": adult,
        "small": small,
        "floors": floors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("floors:")
    for key, row in floors.items():
        verdict = "ok" if row["met"] else "MISSED"
        print(f"  {key:24s} {row['value']:10.4f}  {row['floor']:10s} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
