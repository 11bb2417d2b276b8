"""A project for the batch-scoring tests: a real SavedModel registered with its statistics.

The model is ``serving_model.build_model_dir`` (inputs ``age``, ``hours-per-week``,
``workclass``, ``sex``), registered in a SQLite registry with the statistics of the
Adult rows it scores (the drift baseline, and the contract the server infers from
them) and promoted to production. Shards are Adult's CSV rows with every column.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mooring.config import MooringConfig, load_config
from mooring.contract._io import ReadOptions
from mooring.contract._statistics import compute_statistics
from mooring.formats._columns import columns_from_rows
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.scale._score import ShardScorer
from mooring.serving._loaded import ServedModel, load_served_model
from tests._support.broken_adult import adult_sample, csv_bytes
from tests._support.server import BLESSED, LINEAGE, NAME

INPUTS = ("age", "hours-per-week", "workclass", "sex")
NUMERIC = ("age", "hours-per-week")


@dataclass
class ScoringProject:
    root: Path
    config: Path
    registry_url: str

    def cfg(self) -> MooringConfig:
        return load_config(self.config)

    def registry(self) -> Registry:
        return Registry.from_config(self.cfg())


def make_project(
    root: Path, model_dir: Path, *, serving: str = "", run: RunRecord | None = None
) -> ScoringProject:
    """A project whose registry holds ``model_dir`` as version 1, in production (``run``:
    what the version's run recorded, e.g. its operating threshold)."""
    root.mkdir(parents=True, exist_ok=True)
    header, rows = adult_sample(4000)
    train = root / "train.csv"
    train.write_bytes(csv_bytes(header, rows))
    config = root / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\nhome = "state"\n'
        f'[data]\ntrain = "{train.as_posix()}"\nlabel = "class"\nna_values = ["?", ""]\n'
        f"[serving]\nlog_sample_rate = 1.0\n{serving}",
        encoding="utf-8",
    )
    stats = compute_statistics(train, ReadOptions(na_values=("?", "")))
    cfg = load_config(config)
    with Registry.from_config(cfg) as reg:
        register_judged(
            reg,
            name=NAME,
            artifact_dir=model_dir,
            record=VersionRecord(
                lineage=LINEAGE, gate=BLESSED, statistics=stats.to_dict(), run=run or RunRecord()
            ),
        )
        reg.promote(NAME, version=1)
    return ScoringProject(root, config, cfg.project.registry or "")


def write_shards(folder: Path, shards: int, rows: int) -> list[Path]:
    """``shards`` CSV files holding Adult's first ``rows`` rows (every column)."""
    header, data = adult_sample(rows)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(shards):
        part = data[i * rows // shards : (i + 1) * rows // shards]
        path = folder / f"part-{i:04d}.csv"
        path.write_bytes(csv_bytes(header, part))
        paths.append(path)
    return paths


def request_rows(path: Path) -> list[dict[str, Any]]:
    """A shard's rows as a client sends them to the server: JSON values of the inputs."""
    out = []
    with path.open(newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for name in INPUTS:
                value = raw[name].strip()
                if value in ("?", ""):
                    row[name] = None
                else:
                    row[name] = float(value) if name in NUMERIC else value
            out.append(row)
    return out


def served_predictions(model: ServedModel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the server answers for ``rows``: decoded by its decoder, predicted by the model."""
    columns, _ = columns_from_rows(rows, model.inputs, where="instances")
    return model.predict(columns)


def load_version(project: ScoringProject) -> ServedModel:
    with project.registry() as reg:
        path = reg.load(NAME, version=1)
    return load_served_model(NAME, 1, path)


class CrashOnceScorer(ShardScorer):
    """A scorer whose process dies (``os._exit``) the first time it meets shard ``part-0005``.

    "First time" is a file next to the shard, made before dying, so the second attempt
    (on a restarted or another worker) scores it.
    """

    def __call__(self, shard: Any) -> Any:
        if shard.name == "part-0005":
            flag = Path(shard.path).parent / ".crashed-once"
            try:
                fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os._exit(1)
        return super().__call__(shard)
