"""A small monitored project: a real trained model, a real registry and a real prediction log.

Adult rows with four features, a model trained for one epoch, registered with its training
statistics and deployed to production; :func:`log_rows` writes logged traffic with the
serving layer's own :class:`PredictionLog`, one request per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from mooring.config import MooringConfig, load_config
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import compute_statistics
from mooring.formats._files import file_fingerprint
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.serving._log import PredictionLog

ROOT = Path(__file__).resolve().parents[2] / "examples" / "adult"
FEATURES = ["age", "hours-per-week", "workclass", "sex"]
NAME = "income"
OPTIONS = ReadOptions(na_values=("?", ""))

TOML = """
[project]
name = "income"
home = "home"

[data]
train = "train.csv"
eval = "eval.csv"
label = "class"
positive = ">50K"
na_values = ["?", ""]

[model]
hidden = [8]
epochs = 1
batch_size = 256
parity_records = 0

[monitoring]
segments = ["sex"]
min_samples = 1000
live_min_labels = 50
"""


@dataclass
class MonitoredProject:
    root: Path
    config_path: Path
    cfg: MooringConfig
    model_dir: Path
    eval_table: pa.Table


_BUILT: dict[str, MonitoredProject] = {}


def shared_project(tmp_path_factory: pytest.TempPathFactory) -> MonitoredProject:
    """One trained, registered, deployed project per test process, its log and labels reset."""
    if "project" not in _BUILT:
        _BUILT["project"] = build_project(tmp_path_factory.mktemp("monitored-project"))
    project = _BUILT["project"]
    reset(project)
    return project


def reset(project: MonitoredProject) -> None:
    """Remove the logged traffic, the labels and the reports of earlier tests."""
    import shutil

    # The derived baselines (monitoring/income/baseline) stay: they belong to version 1.
    for folder in ("predictions", "feedback", "monitoring/income/drift"):
        shutil.rmtree(project.cfg.home / folder, ignore_errors=True)


def build_project(root: Path) -> MonitoredProject:
    """Train, register (with statistics and lineage) and deploy version 1."""
    from mooring.training._train import train_model

    root.mkdir(parents=True, exist_ok=True)
    train = read_table(ROOT / "adult.data.csv.gz", OPTIONS).select([*FEATURES, "class"])
    test = read_table(ROOT / "adult.test.csv.gz", OPTIONS).select([*FEATURES, "class"])
    pacsv.write_csv(train.slice(0, 4000), root / "train.csv")
    pacsv.write_csv(test.slice(0, 2000), root / "eval.csv")
    (root / "mooring.toml").write_text(TOML, encoding="utf-8")
    cfg = load_config(root / "mooring.toml")
    stats = compute_statistics(root / "train.csv", ReadOptions.from_config(cfg.data))
    result = train_model(
        cfg, statistics=stats, schema=None, output_dir=root / "run", tensorboard=False
    )
    with Registry.from_config(cfg) as registry:
        register_judged(
            registry,
            name=NAME,
            artifact_dir=result.model_dir,
            record=VersionRecord(
                lineage={
                    "data_fingerprint": file_fingerprint(root / "train.csv"),
                    "train_data": str(root / "train.csv"),
                    "eval_fingerprint": file_fingerprint(root / "eval.csv"),
                    "eval_data": str(root / "eval.csv"),
                },
                metrics={"auc": 0.8, "accuracy": 0.8},
                gate={"blessed": True, "gates": []},
                statistics=stats.to_dict(),
            ),
        )
        registry.deploy(NAME, production=1)
    eval_table = read_table(root / "eval.csv", ReadOptions.from_config(cfg.data))
    return MonitoredProject(root, root / "mooring.toml", cfg, Path(result.model_dir), eval_table)


def shifted(table: pa.Table, *, age: float = 0.0, flip_sex: bool = False) -> pa.Table:
    """The table with ``age`` moved and/or the sex mix flipped."""
    if age:
        table = table.set_column(table.column_names.index("age"), "age", pc.add(table["age"], age))
    if flip_sex:
        sex = table["sex"]
        table = table.set_column(
            table.column_names.index("sex"),
            "sex",
            pc.if_else(pc.equal(sex, "Male"), "Female", "Male"),
        )
    return table


def log_rows(
    project: MonitoredProject, table: pa.Table, *, version: int = 1, prefix: str = "r"
) -> list[str]:
    """Score ``table`` with the model and log one request per row; return the request ids."""
    from mooring.features._inputs import predict_saved_model

    outputs = predict_saved_model(project.model_dir, table)
    url = str(project.cfg.home / "predictions")
    plog = PredictionLog(url, sample_rate=1.0, buffer_rows=table.num_rows + 1, flush_rows=400)
    plog.start()
    ids = []
    columns: dict[str, Any] = {}
    for name in FEATURES:
        column = table[name]
        if pa.types.is_string(column.type):
            columns[name] = np.array(
                [v if v is not None else "" for v in column.to_pylist()], dtype=object
            )
        else:
            values = column.to_numpy(zero_copy_only=False)
            columns[name] = np.asarray(values, dtype=np.float32)
    for i in range(table.num_rows):
        rid = f"{prefix}{i}"
        plog.record(
            model=NAME,
            version=version,
            request_id=rid,
            columns={k: v[i : i + 1] for k, v in columns.items()},
            outputs={k: v[i : i + 1] for k, v in outputs.items()},
            rows=1,
        )
        ids.append(rid)
    plog.close()
    assert plog.written == table.num_rows
    return ids
