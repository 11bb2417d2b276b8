"""``mooring export lite`` end to end through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mooring.cli import main
from tests._support.blocked_import import run_without
from tests._support.cli import run_mooring
from tests.export.conftest import AdultProject

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export-adult")]


def test_export_registers_and_models_show_lists_it(
    adult_project: AdultProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(adult_project.config_path)
    args = ["export", "lite", "income", "--version", "1", "--mode", "dynamic", "-c", config]
    code = main([*args, "--out", str(tmp_path), "--replace", "--reason", "edge app", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["passed"] is True and out["registered"] is True
    assert out["mode"] == "dynamic" and out["artifact"] == "tflite-dynamic"
    assert out["size"]["tflite_bytes"] < out["size"]["savedmodel_bytes"]
    assert set(out["deltas"]) >= {"auc", "accuracy", "log_loss"}
    assert out["latency"]["rows"] == 20

    assert main(["models", "show", "income", "--version", "1", "-c", config, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    listed = {a["artifact"]: a for a in shown["artifacts"]}
    assert listed["tflite-dynamic"]["files"] == {"model.tflite": out["sha256"]}
    assert listed["tflite-dynamic"]["details"]["deltas"] == out["deltas"]
    assert main(["audit", "log", "income", "-c", config, "--json"]) == 0
    last = json.loads(capsys.readouterr().out)[-1]
    assert (last["action"], last["reason"]) == ("attach", "edge app")

    # Human output, as a user runs it: the table, the file and its hash, the verdict said
    # once, and nothing on stderr (no "INFO: Created TensorFlow Lite XNNPACK delegate").
    done = run_mooring(*args, "--replace", "--no-register", "--out", str(tmp_path / "human"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    text = done.stdout
    assert "income@1 → TF Lite dynamic" in text and "sha256" in text
    assert "dynamic export of income@1 passed: auc" in text and text.count("passed") == 1


def test_without_the_lite_extra_export_refuses_first_and_writes_nothing(
    adult_project: AdultProject, tmp_path: Path
) -> None:
    out = tmp_path / "exports" / "v1"
    args = ["export", "lite", "income", "--version", "1", "--mode", "dynamic"]
    args += ["-c", str(adult_project.config_path), "--out", str(out)]
    script = f"import sys\nfrom mooring.cli import main\nsys.exit(main({args!r}))"
    done = run_without(("ai_edge_litert",), script, tmp_path)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr
    assert said.startswith("error: mooring export lite needs the 'lite' extra")
    assert said.endswith("pip install 'mooring-ml[lite]'") and "Traceback" not in said
    assert not (tmp_path / "exports").exists()


def test_refused_export_exits_1_with_the_reason(
    hashing_project: AdultProject, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(hashing_project.config_path)
    code = main(["export", "lite", "income", "--version", "1", "--mode", "int8", "-c", config])
    captured = capsys.readouterr()
    assert code == 1
    assert "cannot be exported with TF Lite builtin ops" in captured.err
    assert "StringToHashBucketFast" in captured.err
    assert main(["models", "show", "income", "--version", "1", "-c", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["artifacts"] == []


def test_usage_errors_exit_2(
    adult_project: AdultProject, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(adult_project.config_path)
    base = ["export", "lite", "income", "-c", config]
    assert main([*base, "--version", "1", "--mode", "int4"]) == 2
    assert "export mode 'int4' is not valid" in capsys.readouterr().err
    assert main([*base, "--version", "9", "--mode", "dynamic"]) == 2
    assert "has no version 9" in capsys.readouterr().err
