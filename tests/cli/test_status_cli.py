"""``mooring status`` and ``mooring models show`` name the evaluation data behind each metric."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mooring.config import load_config
from mooring.formats._drift import LATEST, drift_folder
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.cli import run_mooring as mooring

GATE = {
    "blessed": True,
    "gates": [
        {
            "name": "auc change",
            "metric": "auc",
            "value": -0.01,
            "bound": {"direction": "lower", "absolute": None, "relative": 0.02},
            "passed": True,
        }
    ],
}


def _project(root: Path, evaluated: list[tuple[str, str] | None]) -> Path:
    """A project whose registry holds one version per entry: (eval file, sha256) or unknown."""
    toml = root / "mooring.toml"
    toml.write_text(
        '[project]\nname = "income"\nhome = "state"\n[data]\ntrain = "train.csv"\n'
        'label = "class"\n',
        encoding="utf-8",
    )
    with Registry.from_config(load_config(toml)) as registry:
        for i, data in enumerate(evaluated):
            folder = root / f"model-{i}"
            folder.mkdir()
            (folder / "weights.bin").write_bytes(bytes([i]) * 64)
            lineage = {"data_fingerprint": "ab" * 32}
            if data is not None:
                lineage |= {"eval_data": data[0], "eval_fingerprint": data[1]}
            register_judged(
                registry,
                name="income",
                artifact_dir=folder,
                record=VersionRecord(lineage=lineage, metrics={"auc": 0.85 + i / 100}, gate=GATE),
            )
        registry.deploy("income", production=1, canary=2, weight=10, reason="compare")
    return toml


def _visible(output: str) -> str:
    """Table text without borders, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[│┃┏┓┗┛━─┡┩└┘┌┐├┤┼╇╈]", " ", output)).strip()


def test_status_says_when_production_and_canary_were_evaluated_on_different_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    adult = ("/data/adult.test.csv.gz", "1a2b3c4d5e6f" + "0" * 52)
    fresh = ("/data/fresh-eval.csv", "9f8e7d6c5b4a" + "1" * 52)
    toml = _project(tmp_path, [adult, fresh])
    shown = mooring("status", "-c", str(toml))
    assert shown.returncode == 0, shown.stderr
    out = _visible(shown.stdout)
    assert "version 1 auc 0.85 (on adult.test.csv.gz 1a2b3c4d5e6f)" in out
    assert "version 2 at 10% auc 0.86 (on fresh-eval.csv 9f8e7d6c5b4a)" in out
    assert (
        "the metrics of v1 and v2 come from different evaluation data (v1: adult.test.csv.gz "
        "1a2b3c4d5e6f; v2: fresh-eval.csv 9f8e7d6c5b4a): not comparable"
    ) in out
    state = json.loads(mooring("status", "-c", str(toml), "--json").stdout)
    assert state["production_eval_data"] == "adult.test.csv.gz 1a2b3c4d5e6f"
    assert "not comparable" in state["metrics_note"]


def test_status_of_versions_without_a_fingerprint_says_it_cannot_tell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    toml = _project(tmp_path, [None, None])
    features = [{"name": f"feature_{i:03d}", "status": "drift"} for i in range(50)]
    latest = drift_folder(tmp_path / "state", "income") / LATEST
    latest.parent.mkdir(parents=True)
    latest.write_text(json.dumps({"status": "drift", "version": 1, "features": features}))
    out = _visible(mooring("status", "-c", str(toml)).stdout)
    assert "(on evaluation data unknown)" in out
    assert "whether the metrics of v1 and v2 are comparable cannot be told" in out
    # The last drift check names a few drifted features, not fifty.
    assert "feature_000, feature_001, feature_002 and 47 more" in out
    assert "feature_003" not in out
    show = mooring("models", "show", "income", "--version", "1", "-c", str(toml))
    assert show.returncode == 0, show.stderr
    gate = _visible(show.stdout)
    assert "pass: -0.01 vs direction lower, relative 0.02" in gate and "None" not in gate
