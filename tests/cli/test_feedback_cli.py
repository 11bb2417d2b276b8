"""``mooring feedback FILE`` takes the labels the ``:feedback`` endpoint takes, from CSV and
Parquet alike: a regression model's numbers (int or float columns), a classifier's classes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mooring.cli import main
from mooring.config import load_config
from mooring.formats._feedback import read_feedback
from mooring.registry import Registry
from mooring.serving._feedback import label_domain, parse_feedback
from tests._support.estimation import register_scored
from tests._support.rollout import NAME
from tests._support.rollout_evidence import write_config

IDS = ["r1", "r2", "r3"]


def _production(tmp_path: Path, task: str) -> Path:
    """A project whose production version is a ``task`` model; its mooring.toml."""
    toml = write_config(tmp_path / "mooring.toml", "state")
    cfg = load_config(toml)
    with Registry.from_config(cfg) as registry:
        register_scored(registry, cfg.home / "src", 0, {}, task=task)
        registry.deploy(NAME, production=1)
    return toml


def _write(path: Path, column: pa.Array) -> Path:
    table = pa.table({"request_id": IDS, "label": column})
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        rows = zip(IDS, column.to_pylist(), strict=True)
        path.write_text("request_id,label\n" + "".join(f"{i},{v}\n" for i, v in rows))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    "column",
    [pa.array([3, 250, -7], pa.int64()), pa.array([3.5, 250.0, -0.125], pa.float64())],
    ids=["int", "float"],
)
def test_regression_labels_from_a_file_are_stored_as_the_endpoint_stores_them(
    tmp_path: Path, suffix: str, column: pa.Array, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = _production(tmp_path, "regression")
    labels = _write(tmp_path / f"labels{suffix}", column)
    assert main(["feedback", str(labels), "--config", str(toml)]) == 0, capsys.readouterr().err
    stored = read_feedback(str(tmp_path / "state" / "feedback"), NAME)
    domain = label_domain({"task": "regression"}, "m")
    sent = zip(IDS, column.to_pylist(), strict=True)
    body = {"labels": [{"request_id": i, "label": v} for i, v in sent]}
    got = zip(stored["request_id"].to_pylist(), stored["label"].to_pylist(), strict=True)
    assert list(got) == parse_feedback(body, domain)


def test_a_regression_label_that_is_no_number_is_refused_naming_its_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = _production(tmp_path, "regression")
    labels = _write(tmp_path / "labels.csv", pa.array(["3.5", "high", "nan"]))
    assert main(["feedback", str(labels), "--config", str(toml)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "row 2: the label is 'high', but production (version 1 of 'income') is a " in said
    assert "regression model and takes a finite number" in said
    assert not (tmp_path / "state" / "feedback").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_classifier_still_takes_its_classes_and_refuses_numbers_it_lacks(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = _production(tmp_path, "binary")
    good = _write(tmp_path / f"good{suffix}", pa.array(["<=50K", ">50K", "1"]))
    assert main(["feedback", str(good), "--config", str(toml)]) == 0
    stored = read_feedback(str(tmp_path / "state" / "feedback"), NAME)
    assert stored["label"].to_pylist() == ["<=50K", ">50K", "1"]
    bad = _write(tmp_path / f"bad{suffix}", pa.array([0, 1, 2], pa.int64()))
    assert main(["feedback", str(bad), "--config", str(toml)]) == 2
    assert "row 3: the label is '2', not a class of production" in capsys.readouterr().err
