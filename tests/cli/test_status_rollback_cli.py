"""``mooring status`` shows the last rollback: which version, when, by whom and why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mooring.config import load_config
from mooring.monitoring._rollout import ACTOR
from tests._support.cli import run_mooring as mooring
from tests._support.rollout_evidence import rolled_back_then_next, write_config


def test_status_shows_the_last_rollback_in_text_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    toml = write_config(tmp_path / "mooring.toml", "state")
    cfg = load_config(toml)
    rolled_back_then_next(cfg)

    state = mooring("status", "-c", str(toml), "--json")
    assert state.returncode == 0, state.stderr
    rollback = json.loads(state.stdout)["last_rollback"]
    assert (rollback["version"], rollback["actor"]) == (2, ACTOR)
    assert "rolled back at 10%" in rollback["reason"]

    shown = mooring("status", "-c", str(toml))
    assert shown.returncode == 0, shown.stderr
    text = re.sub(r"\s+", " ", re.sub(r"[│┃┏┓┗┛━─┡┩└┘┌┐├┤┼╇╈]", " ", shown.stdout))
    assert f"last rollback v2 at {rollback['at']} by {ACTOR}: canary income@2 rolled back" in text
