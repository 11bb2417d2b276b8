"""``mooring train`` on a small project: exit codes, outputs, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from mooring.cli import main
from tests._support.synthetic import synthetic_table


def _project(tmp_path: Path, model: str = "epochs = 1\nhidden = [8]\nparity_records = 20") -> Path:
    pacsv.write_csv(synthetic_table(rows=300), tmp_path / "train.csv")
    config = tmp_path / "mooring.toml"
    config.write_text(
        '[project]\nname = "toy"\nhome = "state"\n'
        '[data]\ntrain = "train.csv"\nlabel = "target"\n'
        f"[model]\n{model}\n"
    )
    return config


def test_train_writes_a_model_and_prints_the_run_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--output", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["task"] == "binary"
    assert (out / "model" / "saved_model.pb").is_file()
    assert (out / "model" / "mooring.json").is_file()
    # Resuming a finished run trains nothing more and exports the same model.
    assert main(["train", "-c", str(config), "-o", str(out), "--resume", "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["resumed_from"] == 1


def test_bad_model_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, model="epochs = 0")
    assert main(["train", "--config", str(config)]) == 2
    assert "epochs" in capsys.readouterr().err
