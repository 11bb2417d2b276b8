"""The contract commands through the real CLI entry point: output and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mooring.cli import main


def test_stats_json(adult_test: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stats.json"
    code = main(["stats", str(adult_test), "--na-value", "?", "--out", str(out), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_rows"] == 16_281
    assert data["columns"]["workclass"]["missing"] == 963
    assert out.is_file()


def test_infer_then_validate_exit_codes(
    adult_train: Path, adult_test: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = tmp_path / "schema.yaml"
    stats = tmp_path / "train.json"
    assert main(["stats", str(adult_train), "--na-value", "?", "--out", str(stats)]) == 0
    assert main(["schema", "infer", str(stats), "--label", "class", "--out", str(schema)]) == 0
    assert (
        main(
            [
                "validate",
                str(adult_test),
                "--schema",
                str(schema),
                "--baseline",
                str(stats),
                "--na-value",
                "?",
            ]
        )
        == 0
    )
    assert "PASSED" in capsys.readouterr().out
    # Make 'age' critical with a range the test data breaks: an error, exit 1.
    text = schema.read_text().replace(
        "  age:\n    type: integer\n", "  age:\n    type: integer\n    critical: true\n", 1
    )
    text = text.replace("    max: 98\n", "    max: 60\n", 1)
    schema.write_text(text)
    assert (
        main(["validate", str(adult_test), "--schema", str(schema), "--na-value", "?", "--json"])
        == 1
    )
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert any(a["kind"] == "out_of_range" and a["column"] == "age" for a in data["anomalies"])


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "x.csv")]) == 2
    assert "--schema" in capsys.readouterr().err
    assert main(["stats", str(tmp_path / "missing.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_error_messages_keep_section_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Square brackets in messages are text, not console markup: "[data]" must survive.
    cfg = tmp_path / "mooring.toml"
    cfg.write_text('[project]\nname = "m"\n[data]\ntrain = "t.csv"\ntrian = 1\n', encoding="utf-8")
    assert main(["validate", "--config", str(cfg)]) == 2
    assert "[data]" in capsys.readouterr().err


def test_project_validate(adult_dir: Path, tmp_path: Path) -> None:
    for name in ("mooring.toml", "adult.data.csv.gz", "adult.test.csv.gz"):
        shutil.copy(adult_dir / name, tmp_path / name)
    assert main(["validate", "--config", str(tmp_path / "mooring.toml")]) == 0
    # Checking is read-only: the project's contract is written by its first run.
    assert not (tmp_path / "contract").exists()
    assert (tmp_path / ".mooring" / "reports" / "validation.json").is_file()


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "mooring", "stats", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "binary content" in proc.stderr


def test_schema_diff_of_files_and_its_usage_errors(
    adult_test: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    schema = tmp_path / "schema.yaml"
    assert main(["schema", "infer", str(adult_test), "--na-value", "?", "--out", str(schema)]) == 0
    edited = tmp_path / "edited.yaml"
    edited.write_text(schema.read_text().replace("  race:", "  ethnicity:"))
    capsys.readouterr()
    assert main(["schema", "diff", str(schema), str(edited), "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["kind"], c["before"], c["after"]) for c in changes] == [
        ("renamed", "race", "ethnicity")
    ]
    # Outside a project, a name that is not a file cannot be a version.
    assert main(["schema", "diff", "production", str(schema)]) == 2
    assert "'production' is not a file" in capsys.readouterr().err
    assert main(["schema", "diff", "missing.yaml", str(schema)]) == 2
    assert "schema file 'missing.yaml' does not exist" in capsys.readouterr().err
    assert main(["schema", "accept", str(edited), "-r", "rename"]) == 2
    assert "run it inside the project" in capsys.readouterr().err
    assert main(["validate", str(adult_test), "--schema", str(schema), "--against", "3"]) == 2
    assert "not both" in capsys.readouterr().err


def test_validate_against_a_version_before_any_registry_is_a_usage_error(
    adult_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(adult_dir / "mooring.toml", tmp_path / "mooring.toml")
    cfg = str(tmp_path / "mooring.toml")
    data = str(adult_dir / "adult.test.csv.gz")
    assert main(["validate", data, "-c", cfg, "--against", "production"]) == 2
    assert "has no registry yet" in capsys.readouterr().err
    assert main(["validate", data, "-c", cfg]) == 2
    assert "has no contract yet" in capsys.readouterr().err
    assert main(["validate", data, "-c", cfg, "--schema", cfg, "--environment", "prod"]) == 2
    assert "--environment 'prod' is not one of" in capsys.readouterr().err
