"""A small real Adult model, trained once per session and registered, for the export tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mooring.config import MooringConfig, load_config
from mooring.contract._io import ReadOptions, read_table
from mooring.contract._statistics import compute_statistics
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged

TRAIN_ROWS = 3000
EVAL_ROWS = 2000
CONFIG = """
[project]
name = "income"
home = "home"

[data]
train = "train.csv"
eval = "eval.csv"
label = "class"
positive = ">50K"
na_values = ["?", ""]

[features]
capital-gain = {{ transform = "bucketize", buckets = 10 }}
capital-loss = {{ transform = "bucketize", buckets = 10 }}
{features}

[model]
task = "binary"
hidden = [32]
epochs = 1
batch_size = 32
learning_rate = 0.01
schedule = "constant"
validation_split = 0.0
parity_records = 0
seed = 42

[export]
latency_rows = 20
"""


@dataclass
class AdultProject:
    """A project folder with a trained model registered as version 1 of 'income'."""

    folder: Path
    config_path: Path
    config: MooringConfig
    registry_url: str
    model_dir: Path
    train: pa.Table
    eval: pa.Table

    def registry(self) -> Registry:
        return Registry.from_config(self.config)


def make_project(folder: Path, adult_dir: Path, features: str = "") -> AdultProject:
    """Write small Adult train/eval files and a mooring.toml, train, register version 1."""
    from mooring.training._train import train_model

    folder.mkdir(parents=True, exist_ok=True)
    options = ReadOptions(na_values=("?", ""))
    train = read_table(adult_dir / "adult.data.csv.gz", options).slice(0, TRAIN_ROWS)
    evaluation = read_table(adult_dir / "adult.test.csv.gz", options).slice(0, EVAL_ROWS)
    pacsv.write_csv(train, folder / "train.csv")
    pacsv.write_csv(evaluation, folder / "eval.csv")
    config_path = folder / "mooring.toml"
    config_path.write_text(CONFIG.format(features=features), encoding="utf-8")
    cfg = load_config(config_path)
    stats = compute_statistics(folder / "train.csv", ReadOptions.from_config(cfg.data))
    result = train_model(
        cfg, statistics=stats, schema=None, output_dir=folder / "run", tensorboard=False
    )
    from mooring.formats._files import file_fingerprint

    lineage: dict[str, Any] = {"data_fingerprint": file_fingerprint(folder / "train.csv")}
    with Registry.from_config(cfg) as reg:
        register_judged(
            reg,
            name="income",
            artifact_dir=result.model_dir,
            record=VersionRecord(lineage=lineage, gate={"blessed": True, "gates": []}),
        )
    return AdultProject(
        folder=folder,
        config_path=config_path,
        config=cfg,
        registry_url=f"sqlite:///{cfg.home / 'registry.db'}",
        model_dir=Path(result.model_dir),
        train=train,
        eval=evaluation,
    )


@pytest.fixture(scope="session")
def adult_project(tmp_path_factory: pytest.TempPathFactory, adult_dir: Path) -> AdultProject:
    return make_project(tmp_path_factory.mktemp("export-adult"), adult_dir)


@pytest.fixture(scope="session")
def hashing_project(tmp_path_factory: pytest.TempPathFactory, adult_dir: Path) -> AdultProject:
    """The same model with a hashed column: TF Lite needs a TensorFlow op for it."""
    return make_project(
        tmp_path_factory.mktemp("export-hashing"),
        adult_dir,
        features='native-country = { encoding = "hashing", bins = 64, dim = 4 }',
    )
