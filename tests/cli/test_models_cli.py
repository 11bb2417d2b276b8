"""``mooring models …`` and ``mooring audit …`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mooring.cli import main
from mooring.config import load_config
from mooring.dashboard._card import render_model_card
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.artifacts import (
    BLESSED,
    LINEAGE,
    NOT_BLESSED,
    UNGATED,
    make_model_dir,
    tamper,
)
from tests._support.audit import HEX_KEY, rewrite_audit


@pytest.fixture
def reg_args(tmp_path: Path) -> list[str]:
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    with Registry.open(url) as reg:
        for i, gate in enumerate([BLESSED, BLESSED, NOT_BLESSED]):
            register_judged(
                reg,
                name="income",
                artifact_dir=make_model_dir(tmp_path / "src", i),
                record=VersionRecord(
                    lineage=LINEAGE, gate=gate, metrics={"overall": {"auc": 0.9 - i / 100}}
                ),
                render_card=render_model_card,
            )
    return ["--registry", url]


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_list_and_show(reg_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", *reg_args, "--json"]) == 0
    [summary] = _json(capsys)  # type: ignore[misc]
    assert summary["name"] == "income" and summary["versions"] == 3
    assert main(["models", "list", "income", *reg_args, "--json"]) == 0
    assert [v["version"] for v in _json(capsys)] == [1, 2, 3]  # type: ignore[union-attr]
    assert main(["models", "show", "income", "--version", "2", *reg_args, "--json"]) == 0
    shown = _json(capsys)
    assert shown["version"] == 2 and shown["lineage"]["schema_hash"] == "b" * 64  # type: ignore[index]
    assert main(["models", "show", "income", "--card", *reg_args]) == 0
    assert "Model card: income version 3" in capsys.readouterr().out
    assert main(["models", "list", *reg_args]) == 0
    assert "income" in capsys.readouterr().out
    assert main(["models", "show", "income", *reg_args]) == 0
    assert "lineage.data_fingerprint" in capsys.readouterr().out


def test_promote_rollback_archive(reg_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "promote", "income", "1", "-r", "first", *reg_args, "--json"]) == 0
    assert _json(capsys)["production"] == 1  # type: ignore[index]
    assert main(["models", "promote", "income", "3", *reg_args]) == 1  # not blessed
    assert "not blessed" in capsys.readouterr().err
    assert main(["models", "promote", "income", "3", "--force", *reg_args]) == 2  # no reason
    assert "needs a reason" in capsys.readouterr().err
    args = ["models", "promote", "income", "3", "--force", "-r", "hotfix", "--actor", "ops"]
    assert main([*args, *reg_args]) == 0
    capsys.readouterr()
    assert main(["models", "rollback", "income", "-r", "errors", *reg_args, "--json"]) == 0
    assert _json(capsys)["production"] == 1  # type: ignore[index]
    assert main(["models", "archive", "income", "1", *reg_args]) == 2  # production: a reason
    assert "out of service needs a reason" in capsys.readouterr().err
    assert main(["models", "archive", "income", "2", "-r", "old", *reg_args, "--json"]) == 0
    assert _json(capsys)["status"] == "archived"  # type: ignore[index]
    assert (
        main(
            [
                "models",
                "deploy",
                "income",
                "-p",
                "1",
                "--canary",
                "3",
                "-w",
                "10",
                "--force",
                "-r",
                "try",
                *reg_args,
                "--json",
            ]
        )
        == 0
    )
    assert _json(capsys)["canary_weight"] == 10  # type: ignore[index]
    assert main(["models", "alias", "income", "champion", "1", *reg_args]) == 0
    capsys.readouterr()
    assert main(["audit", "log", "income", *reg_args, "--json"]) == 0
    events = _json(capsys)
    actions = [e["action"] for e in events]  # type: ignore[union-attr]
    assert actions == ["register"] * 3 + [
        "promote",
        "promote",
        "rollback",
        "archive",
        "deploy",
        "alias",
    ]
    forced = [e for e in events if e["forced"]]  # type: ignore[union-attr]
    assert [(e["actor"], e["reason"]) for e in forced] == [
        ("ops", "hotfix"),
        (forced[1]["actor"], "try"),
    ]
    assert main(["audit", "log", *reg_args, "-n", "2"]) == 0
    assert "alias" in capsys.readouterr().out


def test_an_ungated_version_is_shown_as_ungated_and_deploys_only_by_force(
    reg_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Registry.open(reg_args[1]) as reg:
        register_judged(
            reg,
            name="income",
            artifact_dir=make_model_dir(tmp_path / "ungated", 9),
            record=VersionRecord(lineage=LINEAGE, gate=UNGATED),
        )
    assert main(["models", "list", "income", *reg_args]) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines() if "│" in line}
    assert "ungated" in rows["4"] and "ungated" not in rows["3"] and "yes" in rows["1"]
    assert main(["models", "list", "income", *reg_args, "--json"]) == 0
    listed = _json(capsys)
    assert [v["ungated"] for v in listed] == [False, False, False, True]  # type: ignore[union-attr]
    assert main(["models", "show", "income", "--version", "4", *reg_args]) == 0
    assert "ungated: no gate judged it" in capsys.readouterr().out
    assert main(["models", "promote", "income", "4", *reg_args]) == 1
    err = capsys.readouterr().err
    assert "income@4 is not blessed (ungated: no gate judged it)" in err, err
    assert "--force --reason TEXT" in err and "Traceback" not in err
    assert main(["models", "deploy", "income", "-p", "4", *reg_args]) == 1
    assert "ungated: no gate judged it" in capsys.readouterr().err
    forced = ["models", "promote", "income", "4", "--force", "-r", "gates off on purpose"]
    assert main([*forced, *reg_args, "--json"]) == 0
    assert _json(capsys)["production"] == 4  # type: ignore[index]


def test_promote_and_deploy_refuse_a_tampered_artifact_unless_forced_with_a_reason(
    reg_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "promote", "income", "1", *reg_args]) == 0
    with Registry.open(reg_args[1]) as reg:
        tamper(reg, "income", 2, "variables/variables.index")
    capsys.readouterr()
    for args in (["promote", "income", "2"], ["deploy", "income", "-p", "1", "--canary", "2"]):
        assert main(["models", *args, *reg_args]) == 1
        err = capsys.readouterr().err
        assert "income@2" in err and "changed: variables/variables.index" in err, err
        assert "--force --reason" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert main(["models", "promote", "income", "2", "--force", *reg_args]) == 2
    err = capsys.readouterr().err
    assert "needs a reason" in err and "--reason TEXT" in err and "Traceback" not in err
    args = ["models", "promote", "income", "2", "--force", "-r", "incident 7", "--actor", "ops"]
    assert main([*args, *reg_args, "--json"]) == 0
    assert _json(capsys)["production"] == 2  # type: ignore[index]
    assert main(["audit", "log", "income", *reg_args, "--json"]) == 0
    event = _json(capsys)[-1]  # type: ignore[index]
    assert (event["action"], event["actor"], event["forced"]) == ("promote", "ops", True)
    assert event["reason"].startswith("incident 7 [deployed although: income@2")
    assert "variables/variables.index" in event["reason"]


def test_audit_verify_exit_codes(
    reg_args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # reg_args' registry was written without a key: verify will not vouch for it.
    monkeypatch.delenv("MOORING_AUDIT_KEY", raising=False)
    assert main(["audit", "verify", *reg_args]) == 2
    out = capsys.readouterr()
    assert "cannot verify the audit log: no audit key" in out.err
    assert "set MOORING_AUDIT_KEY" in out.err and "Traceback" not in out.out + out.err
    monkeypatch.setenv("MOORING_AUDIT_KEY", HEX_KEY)
    assert main(["audit", "verify", *reg_args]) == 1
    assert "event 3 (unsealed)" in capsys.readouterr().out
    assert main(["audit", "seal", *reg_args, "-r", "keyed audit"]) == 0
    assert "3 from before the key" in capsys.readouterr().out
    assert main(["audit", "verify", *reg_args]) == 0
    out = capsys.readouterr()
    assert "HMAC chain verified" in out.out and "first 3 event(s) predate the key" in out.out
    engine = create_engine(reg_args[1])
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    assert main(["audit", "verify", *reg_args, "--json"]) == 1
    report = _json(capsys)
    assert report["ok"] is False  # type: ignore[index]
    assert report["problems"][0]["seq"] == 2  # type: ignore[index]
    assert main(["audit", "verify", *reg_args]) == 1
    assert "event 2 (edited)" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_2(
    reg_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["models", "show", "nope", *reg_args]) == 2
    assert "model 'nope' is not in the registry" in capsys.readouterr().err
    assert main(["models", "show", "../x", *reg_args]) == 2
    assert "model name '../x' is not allowed" in capsys.readouterr().err
    assert main(["models", "alias", "income", "bad/alias", "1", *reg_args]) == 2
    assert "alias 'bad/alias' is not allowed" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["models", "list"]) == 2
    assert "no registry given" in capsys.readouterr().err
    bad = "postgresql+psycopg://ana:s3cret@127.0.0.1:1/reg"
    assert main(["models", "list", "--registry", bad, "--artifacts", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot be used" in err and "s3cret" not in err and "***" in err


def test_registry_from_project_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mooring.toml").write_text(
        '[project]\nname = "income"\nhome = "state"\n\n[data]\ntrain = "train.csv"\n'
    )
    with Registry.open(f"sqlite:///{tmp_path / 'state' / 'registry.db'}") as reg:
        register_judged(
            reg,
            name="income",
            artifact_dir=make_model_dir(tmp_path),
            record=VersionRecord(lineage={}),
        )
    assert main(["models", "list", "-c", str(tmp_path / "mooring.toml"), "--json"]) == 0
    assert _json(capsys)[0]["latest_version"] == 1  # type: ignore[index]


def test_killed_uploads_are_collected_on_open_and_by_gc(
    reg_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import time

    artifacts = tmp_path / "home" / "artifacts"
    old, fresh = artifacts / "staging" / "old-upload", artifacts / "staging" / "fresh-upload"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"half written")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    with Registry.open(reg_args[1]) as reg:  # opening collects staging older than an hour
        assert not old.exists() and fresh.exists()
        assert len(reg.versions("income")) == 3
    assert main(["models", "gc", "--older-than", "0s", *reg_args, "--json"]) == 0
    assert _json(capsys) == {"removed": ["staging/fresh-upload"]}
    assert not fresh.exists()
    with Registry.open(reg_args[1]) as reg:  # every version still loads: nothing referenced went
        assert all(reg.load("income", version=v).is_dir() for v in (1, 2, 3))
    assert main(["models", "gc", "--older-than", "soon", *reg_args]) == 2
    assert "--older-than 'soon' is not a duration" in capsys.readouterr().err


def test_audit_head_and_an_anchored_verify_through_a_project_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOORING_AUDIT_KEY", raising=False)
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "income"\nhome = "{tmp_path / "home"}"\n[data]\ntrain = "t.csv"\n'
    )
    with Registry.from_config(load_config(config)) as reg:
        for i in range(2):
            register_judged(
                reg,
                name="income",
                artifact_dir=make_model_dir(tmp_path / "src", i),
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
    assert (tmp_path / "home" / "audit.key").exists()
    assert main(["audit", "head", "-c", str(config)]) == 0
    head = capsys.readouterr().out.strip()
    assert head.startswith("2:")
    assert main(["audit", "verify", "-c", str(config), "--expect-head", f" {head}\n"]) == 0
    assert f"HMAC chain verified with the audit key, head {head}" in capsys.readouterr().out
    # Cut the last event and move the head back: caught against the anchor, no traceback.
    engine = create_engine(f"sqlite:///{tmp_path / 'home' / 'registry.db'}")
    with engine.begin() as conn:
        prev = conn.execute(text("SELECT prev_hash FROM audit_events WHERE seq = 2")).scalar()
        conn.execute(text("DELETE FROM audit_events WHERE seq = 2"))
        conn.execute(text("UPDATE audit_head SET seq = 1, hash = :h"), {"h": prev})
    engine.dispose()
    assert main(["audit", "verify", "-c", str(config), "--expect-head", head]) == 1
    out = capsys.readouterr()
    assert "event 2 (deleted)" in out.out and "cut short" in out.out
    assert "Traceback" not in out.out + out.err
    assert main(["audit", "verify", "-c", str(config), "--expect-head", "2:zz"]) == 2
    assert "SEQ:HASH" in capsys.readouterr().err


def test_a_rewrite_through_sql_fails_verify_naming_the_event_and_the_key_is_never_remade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOORING_AUDIT_KEY", raising=False)
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "income"\nhome = "{tmp_path / "home"}"\n[data]\ntrain = "t.csv"\n'
    )
    key = tmp_path / "home" / "audit.key"
    assert main(["audit", "log", "-c", str(config)]) == 0  # a read makes no key
    assert not key.exists()
    with Registry.from_config(load_config(config)) as reg:
        for i in range(3):
            register_judged(
                reg,
                name="income",
                artifact_dir=make_model_dir(tmp_path / "src", i),
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
    assert key.stat().st_mode & 0o777 == 0o600  # made by the first write
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    rewrite_audit(url, None, seq=2, actor="mallory", start=2)
    assert main(["audit", "verify", "-c", str(config)]) == 1
    out = capsys.readouterr()
    assert "event 2 (unkeyed): audit event 2 (register) is chained with plain sha256" in out.out
    assert "Traceback" not in out.out + out.err
    # Lose the key file: verify says how to provide it; a write refuses to make a new one.
    key.unlink()
    assert main(["audit", "verify", "-c", str(config)]) == 2
    out = capsys.readouterr()
    assert "no audit key" in out.err and str(key) in out.err.replace("\n", "")
    assert main(["models", "alias", "income", "champion", "1", "-c", str(config)]) == 2
    out = capsys.readouterr()
    assert "audit log is keyed" in out.err and "Traceback" not in out.out + out.err
    assert not key.exists()


def test_show_and_the_card_name_the_operating_threshold_and_how_it_was_chosen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry.open(url) as reg:
        for i, run in enumerate(
            [RunRecord(task="binary", threshold=0.1834, threshold_source="f1_optimal"), None]
        ):
            register_judged(
                reg,
                name="income",
                artifact_dir=make_model_dir(tmp_path / "src", i),
                record=VersionRecord(lineage=LINEAGE, gate=BLESSED, run=run or RunRecord()),
                render_card=render_model_card,
            )
    args = ["--registry", url]
    line = "0.1834 (f1_optimal: chosen on the evaluation data; binary classes are answered at it)"
    assert main(["models", "show", "income", "--version", "1", *args, "--card", "--json"]) == 0
    assert f"| operating threshold | {line} |" in _json(capsys)["model_card"]  # type: ignore[index]
    assert main(["models", "show", "income", "--version", "1", *args]) == 0
    shown = capsys.readouterr().out
    assert "operating threshold" in shown and "0.1834 (f1_optimal: chosen on" in shown
    # A version with none shows none, not a threshold it is not answered at.
    assert main(["models", "show", "income", "--version", "2", *args]) == 0
    assert "operating threshold │ — │" in " ".join(capsys.readouterr().out.split())
    assert main(["models", "show", "income", "--version", "2", *args, "--card", "--json"]) == 0
    assert "operating threshold" not in _json(capsys)["model_card"]  # type: ignore[index]
