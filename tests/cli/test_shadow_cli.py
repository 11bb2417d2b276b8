"""``mooring models shadow``: start and stop shadow traffic, with errors that say the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mooring.cli import main
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir


@pytest.fixture
def reg_args(tmp_path: Path) -> list[str]:
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    with Registry.open(url) as reg:
        for i in range(3):
            folder = make_model_dir(tmp_path / "src", i)
            register_judged(
                reg,
                name="income",
                artifact_dir=folder,
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
        reg.deploy("income", production=1)
    return ["--registry", url]


def test_shadow_on_and_off(reg_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["models", "shadow", "income", "--version", "3", "--rate", "0.25", "-r", "try v3"]
    assert main([*args, *reg_args, "--json"]) == 0
    dep = json.loads(capsys.readouterr().out)
    assert (dep["shadow"], dep["shadow_rate"]) == (3, 0.25)
    assert main(["models", "shadow", "income", "--version", "2", *reg_args]) == 0
    out = capsys.readouterr().out
    assert "shadow 2 at 10%" in out and "production 1" in out
    assert main(["audit", "log", "income", *reg_args, "--json"]) == 0
    events = [e for e in json.loads(capsys.readouterr().out) if e["action"] == "shadow"]
    assert [e["version"] for e in events] == [3, 2] and events[0]["reason"] == "try v3"
    assert main(["models", "shadow", "income", "--off", *reg_args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shadow"] is None


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        ([], 2, "pass --version VERSION (with --rate) to start shadow traffic for 'income'"),
        (["--version", "2", "--off"], 2, "or --off to stop it; got both"),
        (["--version", "2", "--rate", "2"], 2, "shadow rate 2 is out of range"),
        (["--version", "1"], 2, "income@1 is the production version"),
        (["--version", "7"], 2, "model 'income' has no version 7 (existing: 1, 2, 3)"),
    ],
)
def test_shadow_errors_name_the_fix(
    reg_args: list[str],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
    message: str,
) -> None:
    assert main(["models", "shadow", "income", *extra, *reg_args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
