"""Benchmark: mooring's linear baseline beside scikit-learn's on the same encoded features.

For each table (scikit-learn's bundled sets, ``palmerpenguins``, the Adult data that ships
with mooring, and three generated tables: a 17%-positive logistic ground truth, a label
that is the exact sum of two columns, and a 2,200-value category that takes the wide
path), the rows are split 80/20 (seeded, stratified for classes) and:

1. mooring trains ``kind = "linear"`` on the training part with nothing else set, in a
   process of its own (``--before SRC`` runs this step with another source tree, to
   compare with the code before a change), and its exported SavedModel predicts the
   held-out part;
2. scikit-learn's ``LogisticRegression()`` (binary, multiclass) or ``Ridge()``
   (regression), their defaults (``C = 1``, ``alpha = 1``), is fitted on the matrix the
   model's own preprocessing layers give for the same training rows
   (``mooring.training._linear.design_matrix``) and scores the same held-out rows.

Metric: ROC AUC (binary; one-vs-rest macro for multiclass) or RMSE (regression, in the
label's units). ``within``: AUC no more than 0.005 below scikit-learn's, RMSE no more than
2% above it (plus 0.001 of the label's spread, for a label the features give exactly).
Writes ``--out`` (JSON, and a ``.md`` table) with the machine and the commit; exits 1 when a
table is not within.

Usage::

    python benchmarks/bench_linear.py                        # every table (about 2 minutes)
    python benchmarks/bench_linear.py --only adult --only sum_ab
    python benchmarks/bench_linear.py --before ../main/src   # the linear model before
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
ADULT = SRC / "mooring" / "_demo" / "adult.data.csv.gz"


def _bunch(loader: str, label: str = "target", names: bool = True) -> Callable[[], Any]:
    def load() -> Any:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader)(as_frame=True)
        frame = bunch.frame
        if names:
            frame["target"] = frame["target"].map(dict(enumerate(bunch.target_names)))
        return frame.rename(columns={"target": label})

    return load


def _penguins() -> Any:
    from palmerpenguins import load_penguins

    return load_penguins()


def _adult() -> Any:
    import pandas as pd

    return pd.read_csv(ADULT, na_values=["?"], skipinitialspace=True)


def _logistic17() -> Any:
    """3,000 rows, a logistic ground truth, about 17% positives (oracle AUC near 0.68)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(17)
    n = 3000
    x = rng.normal(size=(n, 4))
    shop = rng.choice(["web", "store", "phone"], n, p=[0.5, 0.3, 0.2])
    logit = -1.75 + 0.45 * x[:, 0] - 0.3 * x[:, 1] + 0.2 * x[:, 2] + 0.3 * (shop == "phone")
    label = np.where(rng.random(n) < 1.0 / (1.0 + np.exp(-logit)), "yes", "no")
    frame = pd.DataFrame({f"x{i}": x[:, i] for i in range(4)})
    return frame.assign(shop=shop, bought=label)


def _sum_ab() -> Any:
    """2,000 rows whose label is exactly a + b; c is noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    n = 2000
    a = rng.uniform(0, 100, n).round(2)
    b = rng.normal(50, 20, n).round(2)
    return pd.DataFrame({"a": a, "b": b, "c": rng.normal(size=n), "total": a + b})


def _wide() -> Any:
    """15,000 rows; a 2,200-value category (embedded; too wide for Newton: the L-BFGS path)
    and two numbers."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    n, values = 15000, 2200
    shop = rng.integers(0, values, n)
    effect = rng.normal(0, 1, values)
    x = rng.normal(size=(n, 2))
    logit = -1.0 + effect[shop] + 0.7 * x[:, 0] - 0.4 * x[:, 1]
    label = np.where(rng.random(n) < 1.0 / (1.0 + np.exp(-logit)), "churn", "stay")
    return pd.DataFrame(
        {"shop": [f"s{v:04d}" for v in shop], "x0": x[:, 0], "x1": x[:, 1], "status": label}
    )


#: name → (loader, label column, task, shape)
TABLES: dict[str, tuple[Callable[[], Any], str, str, str]] = {
    "diabetes": (_bunch("load_diabetes", names=False), "target", "regression", "442 x 10"),
    "breast_cancer": (_bunch("load_breast_cancer", "diagnosis"), "diagnosis", "binary", "569 x 30"),
    "wine": (_bunch("load_wine", "cultivar"), "cultivar", "multiclass", "178 x 13, 3 classes"),
    "iris": (_bunch("load_iris", "species"), "species", "multiclass", "150 x 4, 3 classes"),
    "digits": (
        _bunch("load_digits", "digit", names=False),
        "digit",
        "multiclass",
        "1,797 x 64, 10 classes",
    ),
    "penguins": (_penguins, "species", "multiclass", "344 x 7, nulls, text"),
    "adult": (_adult, "class", "binary", "32,561 x 14, text, nulls"),
    "logistic17": (_logistic17, "bought", "binary", "3,000 x 5, 17% positive"),
    "sum_ab": (_sum_ab, "total", "regression", "2,000 x 3, label = a + b"),
    "wide_category": (_wide, "status", "binary", "15,000 x 3, a 2,200-value category"),
}


def worker(folder: Path) -> None:
    """Train ``kind = "linear"`` on ``folder/train.parquet`` with whichever mooring is on the
    path, predict ``folder/test.parquet``, save the predictions; print the fit's facts."""
    import numpy as np
    import pyarrow.parquet as pq

    from mooring.config import MooringConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.features._inputs import predict_saved_model
    from mooring.training._train import train_model

    meta = json.loads((folder / "meta.json").read_text("utf-8"))
    path = folder / "train.parquet"
    stats = compute_statistics(path, ReadOptions())
    schema = infer_schema(stats, label=meta["label"])
    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": "linear"},
            "data": {"train": str(path), "label": meta["label"]},
            "model": {"kind": "linear", "task": meta["task"], "parity_records": 50},
        },
        root=folder,
    )
    started = time.perf_counter()
    result = train_model(cfg, statistics=stats, schema=schema, output_dir=folder / "run")
    seconds = time.perf_counter() - started
    out = predict_saved_model(result.model_dir, pq.read_table(folder / "test.parquet"))
    if meta["task"] == "regression":
        np.save(folder / "predicted.npy", np.asarray(out["value"], dtype=np.float64).reshape(-1))
    else:
        np.save(folder / "predicted.npy", np.asarray(out["probabilities"], dtype=np.float64))
    fit = result.record.linear_fit or {"method": "optimizer"}
    print(
        json.dumps(
            {
                "fit_seconds": round(result.timings["fit_seconds"], 3),
                "fit_cpu_seconds": round(result.timings["fit_cpu_seconds"], 3),
                "train_seconds": round(seconds, 3),
                "method": fit["method"],
                "passes": len(result.epochs),
                "vocabulary": list(result.label_vocabulary),
            }
        )
    )


def _reference(folder: Path, label: str, task: str) -> dict[str, Any]:
    """scikit-learn's fit on the encoded matrix of this tree's preprocessing layers."""
    import numpy as np
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression, Ridge

    from mooring.config import MooringConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.features._infer import build_feature_spec
    from mooring.features._inputs import columns_from_table
    from mooring.training._builders import build_model
    from mooring.training._labels import resolve_label
    from mooring.training._linear import design_matrix

    path = folder / "train.parquet"
    stats = compute_statistics(path, ReadOptions())
    schema = infer_schema(stats, label=label)
    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": "linear"},
            "data": {"train": str(path), "label": label},
            "model": {"kind": "linear", "task": task},
        },
        root=folder,
    )
    encoding = resolve_label(cfg, stats, schema)
    spec = build_feature_spec(cfg.features, statistics=stats, schema=schema, label=label)
    model = build_model(spec, encoding, cfg.model)
    train, test = pq.read_table(path), pq.read_table(folder / "test.parquet")

    def rows(table: Any) -> tuple[Any, Any]:
        raw, _ = encoding.encode(table.column(label))
        keep = raw >= 0 if encoding.is_classification else ~np.isnan(raw)
        x = design_matrix(model, columns_from_table(table.filter(keep), spec))[:, :-1]
        return x, raw[keep]

    x_train, y_train = rows(train)
    x_test, _ = rows(test)
    started, cpu = time.perf_counter(), time.process_time()
    if task == "regression":
        predicted = Ridge(alpha=1.0).fit(x_train, y_train).predict(x_test)
    else:
        fitted = LogisticRegression(C=1.0, max_iter=20000).fit(x_train, y_train.astype(int))
        predicted = np.zeros((len(x_test), encoding.num_classes))
        predicted[:, fitted.classes_] = fitted.predict_proba(x_test)
    return {
        "predicted": predicted,
        "fit_seconds": round(time.perf_counter() - started, 3),
        "fit_cpu_seconds": round(time.process_time() - cpu, 3),
        "columns": int(x_train.shape[1]),
        "vocabulary": list(encoding.vocabulary),
    }


def _metric(task: str, truth: Any, predicted: Any) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if task == "regression":
        return float(np.sqrt(np.mean((np.asarray(predicted) - truth) ** 2)))
    if task == "binary":
        return float(roc_auc_score(truth, predicted[:, 1]))
    return float(roc_auc_score(truth, predicted, multi_class="ovr"))


def run_table(name: str, tmp: Path, source: Path) -> dict[str, Any]:
    """Split, train mooring's linear model (in a process of its own), fit the reference."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.model_selection import train_test_split

    load, label, task, shape = TABLES[name]
    frame = load()
    frame = frame[frame[label].notna()].reset_index(drop=True)
    train, test = train_test_split(
        frame,
        test_size=0.2,
        random_state=0,
        stratify=frame[label] if task != "regression" else None,
    )
    folder = tmp / name
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(train, preserve_index=False), folder / "train.parquet")
    pq.write_table(pa.Table.from_pandas(test, preserve_index=False), folder / "test.parquet")
    (folder / "meta.json").write_text(json.dumps({"label": label, "task": task}), "utf-8")
    env = {**os.environ, "PYTHONPATH": str(source), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"table": name, "failed": done.stderr[-2000:]}
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    reference = _reference(folder, label, task)
    if facts["vocabulary"] != reference["vocabulary"]:
        return {"table": name, "failed": f"label order {facts['vocabulary']} vs reference"}
    ours = np.load(folder / "predicted.npy")
    if task == "regression":
        truth = test[label].to_numpy(dtype=np.float64)
        spread = float(np.std(truth))
    else:
        index = {v: i for i, v in enumerate(reference["vocabulary"])}
        truth = np.array([index[str(v)] for v in test[label]])
        spread = 0.0
    if task == "regression":
        # The reference was fitted on the label in its units: compare in them.
        mooring, sklearn = _metric(task, truth, ours), _metric(task, truth, reference["predicted"])
        within = mooring <= 1.02 * sklearn + 1e-3 * spread
        gap = (mooring - sklearn) / sklearn if sklearn > 0 else mooring
    else:
        mooring, sklearn = _metric(task, truth, ours), _metric(task, truth, reference["predicted"])
        within = mooring >= sklearn - 0.005
        gap = mooring - sklearn
    return {
        "table": name,
        "shape": shape,
        "task": task,
        "rows": [len(train), len(test)],
        "encoded_columns": reference["columns"],
        "metric": "rmse" if task == "regression" else "auc",
        "mooring": round(mooring, 4),
        "sklearn": round(sklearn, 4),
        "gap": round(gap, 4),
        "within": bool(within),
        "method": facts["method"],
        "passes": facts["passes"],
        "mooring_fit_seconds": facts["fit_seconds"],
        "sklearn_fit_seconds": reference["fit_seconds"],
        "mooring_fit_cpu_seconds": facts.get("fit_cpu_seconds"),
        "sklearn_fit_cpu_seconds": reference["fit_cpu_seconds"],
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| table | shape | encoded columns | metric | scikit-learn | mooring linear | gap | "
        "within | fit | passes | fit s (mooring / scikit-learn) | fit CPU-s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "failed" in r:
            lines.append(f"| {r['table']} | failed | | | | | | | | | | |")
            continue
        gap = f"{r['gap']:+.1%}" if r["metric"] == "rmse" else f"{r['gap']:+.4f}"
        lines.append(
            f"| {r['table']} | {r['shape']} | {r['encoded_columns']} | {r['metric']} | "
            f"{r['sklearn']:.4f} | {r['mooring']:.4f} | {gap} | "
            f"{'yes' if r['within'] else '**no**'} | {r['method']} | {r['passes']} | "
            f"{r['mooring_fit_seconds']:.2f} / {r['sklearn_fit_seconds']:.2f} | "
            f"{r['mooring_fit_cpu_seconds'] or 0:.2f} / {r['sklearn_fit_cpu_seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "linear.json")
    parser.add_argument("--only", action="append", choices=sorted(TABLES))
    parser.add_argument(
        "--before", type=Path, help="train mooring's side from this source tree's src/"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return 0
    source = (args.before or SRC).resolve()
    results = []
    with tempfile.TemporaryDirectory(prefix="mooring-linear-") as tmp:
        for name in args.only or list(TABLES):
            result = run_table(name, Path(tmp), source)
            results.append(result)
            print(json.dumps(result), flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "mooring_source": str(source),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "tables": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    table = markdown(results)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    return 0 if all(r.get("within") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
