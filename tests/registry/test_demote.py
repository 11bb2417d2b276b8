"""A bad production version leaves service with a reason: what serves instead, audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from mooring.cli import main
from mooring.errors import ChecksFailedError, ConflictError, UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, NOT_BLESSED, make_model_dir

NAME = "income"


def _versions(registry: Registry, tmp_path: Path, count: int) -> list[int]:
    return [
        register_judged(
            registry,
            name=NAME,
            artifact_dir=make_model_dir(tmp_path / "src", seed),
            record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
        ).version
        for seed in range(count)
    ]


def test_archiving_production_falls_back_to_the_previous_one_and_keeps_the_canary(
    registry: Registry, tmp_path: Path
) -> None:
    v1, v2, v3 = _versions(registry, tmp_path, 3)
    registry.deploy(NAME, production=v1)
    registry.promote(NAME, version=v2)
    registry.deploy(NAME, production=v2, canary=v3, weight=10)
    with pytest.raises(UsageError, match=r"out of service needs a reason"):
        registry.archive(NAME, version=v2)
    mv = registry.archive(NAME, version=v2, reason="reads a leaking column", actor="ana")
    dep = registry.deployment(NAME)
    assert mv.status == "archived"
    assert (dep.production, dep.canary, dep.canary_weight) == (v1, v3, 10)
    assert v2 not in dep.previous and registry.aliases(NAME)["production"] == v1
    demote, archive = registry.history(NAME)[-2:]
    assert (demote.action, demote.version, demote.actor) == ("demote", v2, "ana")
    assert demote.reason == "reads a leaking column" and archive.action == "archive"
    assert demote.after is not None and demote.after["production"] == v1
    assert registry.verify_audit().ok  # the replay explains the demotion
    with pytest.raises(ConflictError, match=r"no earlier production version to roll back"):
        registry.rollback(NAME)  # the archived version is not brought back


def test_demoting_the_only_production_leaves_nothing_serving(
    registry: Registry, tmp_path: Path
) -> None:
    v1, v2 = _versions(registry, tmp_path, 2)
    registry.deploy(NAME, production=v1, canary=v2, weight=20)
    with pytest.raises(ConflictError, match=r"income@2 is not the production version"):
        registry.demote(NAME, version=v2, reason="wrong one")
    dep = registry.demote(NAME, version=v1, reason="leaks the label")
    assert (dep.production, dep.canary) == (None, None)
    assert registry.get(NAME, version=v1).status == "ready"  # demoted, not archived
    assert "production" not in registry.aliases(NAME)
    assert registry.verify_audit().ok
    assert registry.promote(NAME, version=v2).production == v2


def test_demote_to_a_named_version_checks_it_as_a_deploy_does(
    registry: Registry, tmp_path: Path
) -> None:
    v1, v2 = _versions(registry, tmp_path, 2)
    bad = register_judged(
        registry,
        name=NAME,
        artifact_dir=make_model_dir(tmp_path / "src", 7),
        record=VersionRecord(lineage=LINEAGE, gate=NOT_BLESSED),
    ).version
    registry.deploy(NAME, production=v1)
    with pytest.raises(ChecksFailedError, match=r"income@3 is not blessed"):
        registry.demote(NAME, version=v1, reason="leak", to=bad)
    assert registry.deployment(NAME).production == v1
    assert registry.demote(NAME, version=v1, reason="leak", to=v2).production == v2


def test_the_cli_archives_production_and_says_what_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry.open(url, artifacts=tmp_path / "artifacts") as registry:
        _versions(registry, tmp_path, 2)
        registry.deploy(NAME, production=1)
        registry.promote(NAME, version=2)
    args = ["--registry", url, "--artifacts", str(tmp_path / "artifacts")]
    assert main(["models", "archive", NAME, "2", *args]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert main(["models", "archive", NAME, "2", "-r", "leaks reject", *args]) == 0
    assert "income@2: demoted and archived; production is now 1" in capsys.readouterr().out
    assert main(["models", "demote", NAME, "1", "-r", "also bad", *args]) == 0
    assert "nothing serves income now" in " ".join(capsys.readouterr().out.split())
