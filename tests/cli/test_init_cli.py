"""``mooring init`` says what it detected and set: the event time and the model's name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from mooring._project import Project
from mooring.cli import main
from mooring.config import load_config
from tests._support.cli import mooring_in_process, run_mooring
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


def test_a_feature_warning_is_one_line_without_a_source_path(tmp_path: Path) -> None:
    rows = ["plant,reading,ok"] + [f"P-{i % 3},{7.5},{'yes' if i % 2 else 'no'}" for i in range(60)]
    (tmp_path / "plants.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = run_mooring("init", "plants.csv", "--label", "ok", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "constant" in line]
    assert said and said[0].startswith("warning: feature 'reading' is constant"), done.stderr
    assert "FeatureWarning" not in done.stderr and ".py:" not in done.stderr
    debug = run_mooring("--debug", "init", "plants.csv", "--label", "ok", "--force", cwd=tmp_path)
    assert "FeatureWarning" in debug.stderr  # --debug shows Python's own form


def test_a_semicolon_file_is_read_as_one_without_being_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spreadsheet's export in a comma-decimal locale: `;` between fields, `,` in the
    numbers and in a name. init finds the separator and writes it; the project validates."""
    rows = ["Kunden ID;Alter;Betrag (€, netto);Ergebnis"] + [
        f"{9007199254740993 + i};{20 + i % 50};{i % 97},{i % 10}0;{'ja' if i % 3 else 'nein'}"
        for i in range(120)
    ]
    data = tmp_path / "kunden.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "mooring.toml"
    assert main(["init", str(data), "--label", "Ergebnis", "--out", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    says = "delimiter: ';' (the one that splits the file's lines alike), set as [data] delimiter"
    assert says in said, said
    cfg = load_config(out)
    assert cfg.data.delimiter == ";"
    assert Project.load(out).validate().ok
    assert main(["init", str(data), "--label", "Ergebnis", "--out", str(out), "--force",
                 "--delimiter", ","]) == 2  # fmt: skip
    # Told ',', init reads two columns split inside a name, and says so.
    assert "columns: Kunden ID;Alter;Betrag (€" in capsys.readouterr().err


@pytest.mark.slow
def test_init_states_the_plan_that_runs_and_the_run_counts_rows_without_a_label(
    tmp_path: Path,
) -> None:
    # scikit-learn's diabetes table (442 rows, a numeric target) with 45 targets blanked.
    frame = load_diabetes(as_frame=True).frame
    frame.loc[np.random.default_rng(0).choice(len(frame), 45, replace=False), "target"] = None
    data = tmp_path / "diabetes.csv"
    frame.to_csv(data, index=False)
    toml = tmp_path / "mooring.toml"
    assert main(["init", str(data), "--label", "target", "--out", str(toml)]) == 0
    text = toml.read_text(encoding="utf-8")
    stated = re.search(
        r"For these ([\d,]+) training rows .*\n# the validation split\): (.+)\.", text
    )
    assert stated is not None, text
    # The one model [model] describes (its plan is the comment's), without the candidates.
    text = text[: text.index("[[model.candidates]]")] + text[text.index("[evaluation]") :]
    toml.write_text(text, encoding="utf-8")

    done = mooring_in_process("run", "-c", str(toml))
    assert done.returncode in (0, 1), done.stderr  # blessed or not: the plan is the point
    said = " ".join(done.stdout.split())
    # The reference: the files init wrote, read by pandas.
    for what, name in (
        ("training", "diabetes.train.parquet"),
        ("eval", "diabetes.holdout.parquet"),
    ):
        part = pd.read_parquet(tmp_path / name)
        missing = int(part["target"].isna().sum())
        assert missing > 0
        assert f"dropped {missing} of {len(part)} {what} rows with no label in 'target'" in said
    [record] = (tmp_path / ".mooring" / "runs").glob("*/train/run.json")
    trained = json.loads(record.read_text())
    assert f"{trained['data']['train_rows']:,}" == stated[1]
    assert trained["plan"]["reason"] == stated[2]
    assert f"training the mlp model: {stated[1]} rows" in said
