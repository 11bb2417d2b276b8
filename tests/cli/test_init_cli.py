"""``mooring init`` says what it detected and set: the event time and the model's name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mooring._project import Project
from mooring.cli import main
from mooring.config import load_config
from tests._support.timed_adult import write_timed_adult


def test_init_sets_the_timestamp_and_names_the_model_after_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "orders"
    train = write_timed_adult(folder / "data")
    test = write_timed_adult(folder / "data", "orders_test.csv", source="adult.test.csv.gz")
    out = folder / "mooring.toml"
    args = ["init", str(train), "--eval", str(test), "--na-value", "?", "--out", str(out)]
    assert main(args) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "name: orders (the project folder's name)" in said
    assert "timestamp: event_time (the only timestamp column), set as [data] timestamp" in said
    cfg = load_config(out)
    assert (cfg.project.name, cfg.data.timestamp) == ("orders", "event_time")
    assert Project.load(out).validate().ok

    assert main([*args, "--force", "--name", "income", "--timestamp", "", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["name"], summary["name_reason"]) == ("income", "given with --name")
    assert summary["timestamp"] is None
    cfg = load_config(out)
    assert (cfg.project.name, cfg.data.timestamp) == ("income", None)


def test_init_refuses_a_name_the_registry_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_timed_adult(tmp_path)
    out = tmp_path / "mooring.toml"
    assert main(["init", str(train), "--out", str(out), "--name", "my model"]) == 2
    assert "--name 'my model'" in capsys.readouterr().err
    assert not out.exists()
