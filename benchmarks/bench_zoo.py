"""Benchmark: a zoo of real tables through the CLI with no edits, beside scikit-learn.

Adult is one table. The zoo's tables ship with packages a user can install
(scikit-learn's bundled sets, ``palmerpenguins``, ``vega_datasets``) and are chosen for
their shapes: capitalised, spaced and punctuated names, ids, dates, yes/no columns,
nulls (in a label too), rare classes, tiny and wide. Each is written as a user would
have it (CSV with ``,``, ``;`` or tab, or Parquet) into a fresh folder and goes through
the real CLI, one process a command:

1. ``mooring init FILE --label LABEL``: the project mooring proposes, unedited (init
   holds out 20% of the rows: the latest by a timestamp column where it finds one, else
   a seeded sample, written as two Parquet files);
2. ``mooring run``: the model kind the defaults choose and its metrics on the held-out
   part;
3. ``mooring serve`` and one ``:predict`` of the first held-out row as the file has it
   (its label, id and timestamp columns included: a project's known non-feature columns
   are ignored at the door);
4. the baseline: scikit-learn's ``HistGradientBoosting`` (text one-hot, dates as
   numbers, the columns mooring uses as features) fitted on the same training file and
   scored on the same held-out file with the task's default metric (binary: ROC AUC;
   multiclass: accuracy; regression: R²).

Writes ``--out`` (``benchmarks/results/zoo.json``, and ``.md``): per table its shape,
the file format, the kind chosen, mooring's metric and the baseline's, and the seconds
each step took; with the machine and the commit. Nothing is asserted: a table whose
command fails is reported with the command's last lines, the next table follows, and
the exit code is 1.

Usage::

    python benchmarks/bench_zoo.py                          # every table (about 6 minutes)
    python benchmarks/bench_zoo.py --only iris --only wine  # some of them
    python benchmarks/bench_zoo.py --only penguins          # what the suite runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Table:
    """A zoo table: how to load it, its label, the file a user would have, what it tests."""

    name: str
    label: str
    file: str  # the file's name: .csv or .parquet
    delimiter: str
    shape: str
    load: Callable[[], Any]  # a pandas DataFrame


def _sklearn(loader: str) -> Callable[[], Any]:
    def load() -> Any:
        import sklearn.datasets

        return getattr(sklearn.datasets, loader)(as_frame=True).frame

    return load


def _iris() -> Any:
    import sklearn.datasets

    bunch = sklearn.datasets.load_iris(as_frame=True)
    frame = bunch.frame
    frame["target"] = frame["target"].map(dict(enumerate(bunch.target_names)))
    return frame.rename(columns={"target": "Species"})


def _breast_cancer() -> Any:
    import sklearn.datasets

    bunch = sklearn.datasets.load_breast_cancer(as_frame=True)
    frame = bunch.frame
    frame["target"] = frame["target"].map(dict(enumerate(bunch.target_names)))
    return frame.rename(columns={"target": "diagnosis"})


def _penguins() -> Any:
    from palmerpenguins import load_penguins_raw

    return load_penguins_raw()


def _vega(name: str) -> Callable[[], Any]:
    def load() -> Any:
        from vega_datasets import data

        return getattr(data, name.replace("-", "_"))()

    return load


TABLES = (
    Table("iris", "Species", "iris.csv", ",", "150 rows; 'sepal length (cm)'", _iris),
    Table(
        "wine",
        "target",
        "wine.csv",
        "\t",
        "178 rows, 3 classes; 'od280/od315_of_diluted_wines'; tab-separated",
        _sklearn("load_wine"),
    ),
    Table(
        "penguins",
        "Species",
        "penguins_raw.csv",
        ",",
        "344 rows x 17: 'Culmen Length (mm)', 'Delta 15 N (o/oo)', ids ('Individual ID', "
        "'Sample Number'), a date, Yes/No, nulls, free-text comments",
        _penguins,
    ),
    Table(
        "diabetes",
        "target",
        "diabetes.csv",
        ";",
        "442 rows, regression; ';'-separated",
        _sklearn("load_diabetes"),
    ),
    Table(
        "cars",
        "Miles_per_Gallon",
        "cars.parquet",
        ",",
        "406 rows, regression with 8 null labels; a date ('Year'), a near-unique name",
        _vega("cars"),
    ),
    Table(
        "breast-cancer",
        "diagnosis",
        "breast_cancer.parquet",
        ",",
        "569 rows x 31, binary; 'mean radius', 'worst concave points'",
        _breast_cancer,
    ),
    Table(
        "seattle-weather",
        "weather",
        "seattle-weather.csv",
        ";",
        "1,461 days, 5 classes (snow: 26 rows); a date column; ';'-separated",
        _vega("seattle-weather"),
    ),
    Table(
        "digits",
        "target",
        "digits.parquet",
        ",",
        "1,797 rows x 65, 10 classes; 'pixel_0_0' … 'pixel_7_7'",
        _sklearn("load_digits"),
    ),
)
DEFAULT_METRIC = {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}


def write_table(table: Table, folder: Path) -> Path:
    """The table as a user would have the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = table.load()
    path = folder / table.file
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    else:
        frame.to_csv(path, sep=table.delimiter, index=False)
    return path


def mooring(*args: str, cwd: Path, timeout: float = 900) -> tuple[int, str, float]:
    """``python -m mooring ARGS`` in ``cwd``: exit code, output, seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mooring", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def serve_one(folder: Path, model: str, row: dict[str, Any]) -> dict[str, Any]:
    """Start ``mooring serve``, send ``row`` to ``:predict`` and ``:explain``; the status
    and answer of each (of the explanation: its unit, method, columns and how far its
    attributions are from adding up to the explained value less the baseline)."""
    import httpx

    port = _free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "mooring", "serve", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                return {
                    "status": None,
                    "error": (server.stderr.read() if server.stderr else "")[-2000:],
                }
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2, verify=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                return {"status": None, "error": "not ready after 120 s"}
            time.sleep(0.2)
        ready_s = time.perf_counter() - started
        body = {"instances": [{k: _json_value(v) for k, v in row.items()}]}
        answer = httpx.post(f"{base}/v1/models/{model}:predict", json=body, timeout=30)
        why = httpx.post(f"{base}/v1/models/{model}:explain", json=body, timeout=60)
        explained: dict[str, Any] = {"status": why.status_code}
        if why.status_code == 200:
            document = why.json()
            e = document["explanations"][0]
            explained.update(
                unit=document["unit"],
                method=document["method"],
                columns=len(e["attributions"]),
                gap=abs(sum(e["attributions"].values()) - (e["explained"] - e["baseline"])),
            )
        else:
            explained["error"] = why.text[:500]
        return {
            "status": answer.status_code,
            "ready_s": round(ready_s, 2),
            "answer": answer.json() if answer.status_code == 200 else answer.text[:500],
            "explained": explained,
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def baseline(folder: Path, task: str) -> dict[str, Any]:
    """HistGradientBoosting on the project's own split and feature columns."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from mooring.config import load_config

    cfg = load_config(folder / "mooring.toml")
    label = cfg.data.label
    train = pq.read_table(folder / cfg.data.train).to_pandas()
    test = pq.read_table(folder / str(cfg.data.eval)).to_pandas()
    train = train[train[label].notna()]
    test = test[test[label].notna()]
    left_out = {label, *cfg.features.exclude, cfg.data.timestamp}
    columns = [c for c in train.columns if c not in left_out]

    def numbers(frame: Any) -> Any:
        out = frame[columns].copy()
        for name in columns:
            if pd.api.types.is_datetime64_any_dtype(out[name]):
                out[name] = out[name].astype("int64") / 1e9
            elif pd.api.types.is_bool_dtype(out[name]):
                out[name] = out[name].astype(float)
        return out

    x_train, x_test = numbers(train), numbers(test)
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(x_train[c])]
    numeric = [c for c in columns if c not in text]
    prepare = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), numeric),
            (
                "text",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False),
                ),
                text,
            ),
        ]
    )
    if task == "regression":
        fitted = make_pipeline(prepare, HistGradientBoostingRegressor(random_state=0))
        fitted.fit(x_train.astype({c: str for c in text}), train[label].astype(float))
        predicted = fitted.predict(x_test.astype({c: str for c in text}))
        return {"r2": float(r2_score(test[label].astype(float), predicted))}
    y_train, y_test = train[label].astype(str), test[label].astype(str)
    fitted = make_pipeline(prepare, HistGradientBoostingClassifier(random_state=0))
    fitted.fit(x_train.astype({c: str for c in text}), y_train)
    features = x_test.astype({c: str for c in text})
    if task == "binary":
        positive = cfg.data.positive
        index = list(fitted.classes_).index(positive) if positive in fitted.classes_ else 1
        scores = fitted.predict_proba(features)[:, index]
        truth = np.asarray(y_test == (positive or fitted.classes_[1]), dtype=int)
        return {"auc": float(roc_auc_score(truth, scores))}
    return {"accuracy": float(accuracy_score(y_test, fitted.predict(features)))}


#: What a command should never print without --debug: tracebacks, Python warnings with
#: their source, library log lines (``WARNING:absl:…``) and TensorFlow's native lines.
NOISE = re.compile(r"^(Traceback|WARNING:|[IWEF]\d{4} )|\w+Warning: |^\S+\.py:\d+: ")


def noisy_lines(output: str) -> list[str]:
    """The lines of a command's output a user should not see (:data:`NOISE`)."""
    return [line for line in output.splitlines() if NOISE.search(line)]


def run_table(table: Table, root: Path) -> dict[str, Any]:
    """One table through init, run, serve and the baseline."""
    import pyarrow.parquet as pq

    from mooring.config import load_config

    folder = root / table.name
    folder.mkdir(parents=True)
    data = write_table(table, folder)
    result: dict[str, Any] = {"table": table.name, "file": table.file, "shape": table.shape}
    code, out, seconds = mooring("init", data.name, "--label", table.label, cwd=folder)
    result["init_s"] = round(seconds, 1)
    if code != 0:
        return {**result, "failed": "init", "exit": code, "output": out[-3000:]}
    noise = noisy_lines(out)
    code, out, seconds = mooring("run", cwd=folder)
    result["run_s"] = round(seconds, 1)
    if code != 0:
        return {**result, "failed": "run", "exit": code, "output": out[-3000:]}
    result["noise"] = noise + noisy_lines(out)
    record = json.loads(
        max((folder / ".mooring" / "runs").glob("*/run.json"), key=os.path.getmtime).read_text()
    )
    steps = {s["name"]: s.get("outputs") or {} for s in record["steps"]}
    task = steps["train"]["task"]
    metric = DEFAULT_METRIC[task]
    evaluated = steps["evaluate"]
    result.update(
        task=task,
        kind=evaluated.get("chosen") or steps["train"].get("kind"),
        metric=metric,
        mooring=evaluated["metrics"].get(metric),
        deployed_as=steps.get("deploy", {}).get("deployed_as"),
    )
    cfg = load_config(folder / "mooring.toml")
    result["rows"] = {
        "train": pq.ParquetFile(folder / cfg.data.train).metadata.num_rows,
        "eval": pq.ParquetFile(folder / str(cfg.data.eval)).metadata.num_rows,
    }
    started = time.perf_counter()
    result["baseline"] = baseline(folder, task).get(metric)
    result["baseline_s"] = round(time.perf_counter() - started, 1)
    row = pq.read_table(folder / str(cfg.data.eval)).slice(0, 1).to_pylist()[0]
    result["served"] = serve_one(folder, cfg.project.name, row)
    if result["served"]["status"] != 200:
        result["failed"] = "serve"
    elif result["served"]["explained"]["status"] != 200:
        result["failed"] = "explain"
    return result


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| table | file | rows (train / held out) | task | kind chosen | metric | mooring "
        "| scikit-learn HGB | served | explained (unit, sum gap) | run s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "failed" in r and r["failed"] not in ("serve", "explain"):
            lines.append(
                f"| {r['table']} | `{r['file']}` | | | failed at {r['failed']} | | | | | | |"
            )
            continue
        mine, theirs = r["mooring"], r["baseline"]
        why = r["served"].get("explained", {})
        shown = (
            f"{why['status']} ({why['unit']}, {why['gap']:.1e})"
            if why.get("status") == 200
            else str(why.get("status", "-"))
        )
        lines.append(
            f"| {r['table']} | `{r['file']}` | {r['rows']['train']} / {r['rows']['eval']} | "
            f"{r['task']} | {r['kind']} | {r['metric']} | "
            f"{'-' if mine is None else f'{mine:.3f}'} | "
            f"{'-' if theirs is None else f'{theirs:.3f}'} | {r['served']['status']} | "
            f"{shown} | {r['run_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", action="append", choices=[t.name for t in TABLES])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "zoo.json")
    args = parser.parse_args()
    names = set(args.only or ())
    chosen = [t for t in TABLES if not names or t.name in names]
    load_start = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="mooring-zoo-") as tmp:
        for table in chosen:
            started = time.perf_counter()
            result = run_table(table, Path(tmp))
            result["seconds"] = round(time.perf_counter() - started, 1)
            results.append(result)
            shown = {k: v for k, v in result.items() if k not in ("output", "served")}
            print(json.dumps(shown), flush=True)
            if "failed" in result:
                print(result.get("output") or result.get("served"), flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
        },
        "tables": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    table = markdown(results)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
