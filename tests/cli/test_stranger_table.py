"""A stranger's table through the first hour, with no edits: ``mooring init``, ``mooring
run``, and a server answering JSON booleans and OIP ``BOOL`` for it — as Parquet and as a
``;`` CSV (``tests/_support/stranger.py``: capitalised, accented, dotted and spaced names,
an int64 id beyond 2^53, a boolean, a zoned timestamp).

Without ``--eval``, init writes the train and held-out parts as Parquet, so the CSV's
project trains on exactly the rows the Parquet one does: it is run once, for Parquet, and
the CSV's parts are checked to hold the same rows."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from mooring.config import MooringConfig, load_config
from mooring.registry import Registry
from tests._support.cli import mooring_in_process
from tests._support.server import following
from tests._support.stranger import FEATURES, request_rows, write_stranger_table

pytestmark = pytest.mark.slow


def _init(project: Path, fmt: str) -> MooringConfig:
    data = write_stranger_table(project, fmt)
    init = mooring_in_process("init", data.name, cwd=project)
    assert init.returncode == 0, init.stdout + init.stderr
    said = " ".join(init.stdout.split())
    assert "ids: Kunden-ID (near-unique)" in said and "timestamp: Erstellt am" in said
    assert "holdout: the latest 100 of 500 rows by 'Erstellt am' → kunden.holdout.parquet" in said
    cfg = load_config(project / "mooring.toml")
    assert (cfg.data.train, cfg.data.eval) == ("kunden.train.parquet", "kunden.holdout.parquet")
    assert cfg.data.timestamp == "Erstellt am" and cfg.features.exclude == ["Kunden-ID"]
    assert cfg.data.delimiter == (";" if fmt == "csv" else ",")
    return cfg


def test_a_semicolon_csv_is_split_into_the_rows_the_parquet_file_gives(tmp_path: Path) -> None:
    _init(tmp_path / "a" / "kredit", "parquet")
    csv = _init(tmp_path / "b" / "kredit", "csv")
    for name in (csv.data.train, csv.data.eval):
        ours = pq.read_table(tmp_path / "b" / "kredit" / name)
        theirs = pq.read_table(tmp_path / "a" / "kredit" / name)
        assert ours.cast(theirs.schema).equals(theirs), name  # timestamps: ns from CSV, us here
    checked = mooring_in_process("validate", cwd=tmp_path / "b" / "kredit")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_strangers_table_goes_through_init_and_run_unedited_and_is_served(
    tmp_path: Path,
) -> None:
    project = tmp_path / "kredit"
    cfg = _init(project, "parquet")
    run = mooring_in_process("run", cwd=project)
    printed = run.stdout + run.stderr
    assert run.returncode == 0, printed
    assert "Traceback" not in printed and "Warning:" not in printed

    rows = request_rows(6)
    # Each row carries the id (beyond 2^53): a known non-feature column, ignored.
    infer = {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows)],
                "datatype": {"Aktiv": "BOOL", "Stadt Name": "BYTES", "Größe.cm": "FP64"}.get(
                    name, "INT64"
                ),
                "data": [r[name] for r in rows],
            }
            for name in FEATURES
        ]
    }
    with following(cfg, Registry.from_config(cfg), cfg.project.name) as server:
        rest = httpx.post(
            f"{server.url}/v1/models/{cfg.project.name}:predict", json={"instances": rows}
        )
        oip = httpx.post(f"{server.url}/v2/models/{cfg.project.name}/infer", json=infer)
    assert rest.status_code == 200, rest.text
    assert oip.status_code == 200, oip.text
    answers = [p["probabilities"] for p in rest.json()["predictions"]]
    probabilities = next(o for o in oip.json()["outputs"] if o["name"] == "probabilities")
    flat = [p for row in answers for p in row]
    assert probabilities["data"] == pytest.approx(flat, abs=1e-6)  # JSON true is OIP true
