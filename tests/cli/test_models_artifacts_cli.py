"""``mooring models show`` lists the artifacts attached to a version."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mooring.cli import main
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, SKIPPED_GATE, make_model_dir


def test_show_lists_attached_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    payload = b"TFL3" * 1000
    lite = tmp_path / "model.tflite"
    lite.write_bytes(payload)
    with Registry.open(url) as reg:
        for seed in (0, 1):
            register_judged(
                reg,
                name="income",
                artifact_dir=make_model_dir(tmp_path / "src", seed),
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
        reg.attach_artifact(
            "income", version=1, artifact="tflite-int8", path=lite, details={"mode": "int8"}
        )
    sha = hashlib.sha256(payload).hexdigest()

    assert main(["models", "show", "income", "--version", "1", "--registry", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    [item] = shown["artifacts"]
    assert item["artifact"] == "tflite-int8"
    assert item["files"] == {"model.tflite": sha}
    assert item["details"] == {"mode": "int8"}

    assert main(["models", "show", "income", "--version", "1", "--registry", url]) == 0
    text = capsys.readouterr().out
    assert "artifact.tflite-int8" in text and sha[:16] in text

    assert main(["models", "show", "income", "--registry", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["artifacts"] == []


def test_show_says_why_a_gate_was_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # each row on one line
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    with Registry.open(url) as reg:
        register_judged(
            reg,
            name="income",
            artifact_dir=make_model_dir(tmp_path / "src", 0),
            record=VersionRecord(lineage=LINEAGE, gate={"blessed": True, "gates": [SKIPPED_GATE]}),
        )
    assert main(["models", "show", "income", "--registry", url]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "gate.auc change" in line]
    assert "skipped: first model — there is no production model to compare with" in row
    assert "0.91" not in row
