"""``mooring status`` shows the last rollback: which version, when, by whom and why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mooring.config import load_config
from mooring.monitoring.alerts import AlertManager
from mooring.monitoring.rollout import ACTOR, RolloutController
from mooring.serving.metrics import ServingMetrics
from tests._support.cli import run_mooring as mooring
from tests._support.rollout import NAME, Clock, registry_with_versions, serve
from tests._support.rollout_evidence import write_config


def test_status_shows_the_last_rollback_in_text_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    toml = write_config(tmp_path / "mooring.toml", "state")
    cfg = load_config(toml)
    with registry_with_versions(cfg, 3) as registry:
        registry.deploy(NAME, production=1, canary=2, weight=10)
        metrics = ServingMetrics()
        controller = RolloutController(
            cfg, registry, metrics=metrics.render, alerts=AlertManager([]), clock=Clock()
        )
        controller.tick()
        serve(metrics, 1, 500, errors=1)
        serve(metrics, 2, 8, errors=6)
        assert controller.tick().action == "rollback"
        registry.deploy(NAME, production=1, canary=3, weight=10, reason="try v3")

    state = mooring("status", "-c", str(toml), "--json")
    assert state.returncode == 0, state.stderr
    rollback = json.loads(state.stdout)["last_rollback"]
    assert (rollback["version"], rollback["actor"]) == (2, ACTOR)
    assert "rolled back at 10%" in rollback["reason"]

    shown = mooring("status", "-c", str(toml))
    assert shown.returncode == 0, shown.stderr
    text = re.sub(r"\s+", " ", re.sub(r"[│┃┏┓┗┛━─┡┩└┘┌┐├┤┼╇╈]", " ", shown.stdout))
    assert f"last rollback v2 at {rollback['at']} by {ACTOR}: canary income@2 rolled back" in text
