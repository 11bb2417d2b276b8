"""``mooring audit verify`` vouches for the registry's state and keeps the project's key,
through the real CLI entry point: exit 1 naming each tamper, 2 for a malformed key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from mooring.cli import main
from mooring.config import load_config
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._audit import KEY_ENV
from mooring.registry._judged import register_judged
from mooring.registry._sql.tables import audit_head, deployments, versions
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir
from tests._support.audit import HEX_KEY, insert_version, run_sql


@dataclass(frozen=True)
class Project:
    """A project whose registry has versions 1-3, production 1 and canary 3 at 20%,
    written through its key file."""

    root: Path
    config: Path
    url: str
    key: Path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("MOORING_REGISTRY", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    config = root / "mooring.toml"
    config.write_text(
        f'[project]\nname = "income"\nhome = "{root / "home"}"\n[data]\ntrain = "t.csv"\n'
    )
    with Registry.from_config(load_config(config)) as reg:
        for i in range(3):
            register_judged(
                reg,
                "income",
                make_model_dir(tmp_path / "src", i),
                VersionRecord(lineage=LINEAGE, gate=BLESSED),
            )
        reg.promote("income", version=1, reason="go")
        reg.deploy("income", production=1, canary=3, weight=20)
    url = f"sqlite:///{root / 'home' / 'registry.db'}"
    return Project(root, config, url, root / "home" / "audit.key")


def _verify(project: Project, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["audit", "verify", "-c", str(project.config), *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out.out + out.err


def _production(url: str) -> None:
    run_sql(url, update(deployments).values(production_version=2))


def _canary(url: str) -> None:
    run_sql(url, update(deployments).values(canary_version=2, canary_weight=100))


def _deleted(url: str) -> None:
    run_sql(url, delete(versions).where(versions.c.version == 2))


def _inserted(url: str) -> None:
    insert_version(url, "income", like=1, version=7)


def _head(url: str) -> None:
    run_sql(url, delete(audit_head))


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            _production,
            "event 5 (state): model 'income': the production version is 2 in table "
            "deployments, but the audit events explain 1 (event 5, deploy)",
        ),
        (
            _canary,
            "event 5 (state): model 'income': the canary weight is 100 in table deployments, "
            "but the audit events explain 20",
        ),
        (
            _deleted,
            "event 2 (state): model 'income': version 2 was registered (event 2) and no event "
            "deleted it, but it is not in table versions",
        ),
        (
            _inserted,
            "  - state: model 'income': version 7 is in table versions, but no event registered it",
        ),
        (
            _head,
            "event 5 (head): the recorded head of the chain (table audit_head, row id 1) is "
            "missing",
        ),
    ],
    ids=["production", "canary-weight", "version-deleted", "version-inserted", "head-deleted"],
)
def test_a_tamper_by_sql_fails_verify_naming_it(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[str], None],
    named: str,
) -> None:
    assert _verify(project, capsys)[0] == 0
    head = main(["audit", "head", "-c", str(project.config)])
    anchor = capsys.readouterr().out.strip()
    assert head == 0
    tamper(project.url)
    code, out = _verify(project, capsys, "--expect-head", anchor)
    assert code == 1 and "audit log broken" in out
    assert named in out.replace("\n", " ")
    assert main(["audit", "verify", "-c", str(project.config), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problems"]


def test_a_deleted_head_stops_head_and_writers_with_exit_1(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    _head(project.url)
    assert main(["audit", "head", "-c", str(project.config)]) == 1
    out = capsys.readouterr()
    assert "audit_head, row id 1) is missing" in out.err and "no head to print" in out.err
    assert main(["models", "promote", "income", "2", "-c", str(project.config)]) == 1
    out = capsys.readouterr()
    assert "nothing was written" in out.err and "Traceback" not in out.out + out.err


def test_registry_by_url_keeps_the_projects_key(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project.root)  # mooring.toml here
    assert main(["audit", "verify", "--registry", project.url]) == 0
    assert "HMAC chain verified with the audit key" in capsys.readouterr().out
    assert main(["audit", "verify", "-c", str(project.config), "--registry", project.url]) == 0
    capsys.readouterr()
    monkeypatch.setenv("MOORING_REGISTRY", project.url)
    assert main(["models", "alias", "income", "champion", "2"]) == 0  # a keyed write
    assert main(["audit", "verify"]) == 0
    assert "audit log intact: 6 events" in capsys.readouterr().out
    # Outside the project a URL alone has no key: verify says where it looked.
    monkeypatch.chdir(project.root.parent)
    assert main(["audit", "verify"]) == 2
    assert "cannot verify the audit log: no audit key" in capsys.readouterr().err


def test_the_key_files_text_in_the_environment_verifies(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project.root.parent)  # no project: the variable is the key
    monkeypatch.setenv(KEY_ENV, project.key.read_text().strip())
    assert main(["audit", "verify", "--registry", project.url]) == 0
    assert "audit log intact: 5 events" in capsys.readouterr().out


def test_a_malformed_key_in_the_environment_is_a_usage_error(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, HEX_KEY[:-1])
    code, out = _verify(project, capsys)
    assert code == 2
    assert f"{KEY_ENV} does not hold an audit key: expected 64 hex digits" in out
    assert "got 63 characters" in out and "edited" not in out
