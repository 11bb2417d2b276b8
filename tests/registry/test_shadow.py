"""The deployment's shadow: set, validate, audit, survive deploys, and the 0003 migration."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect

from mooring.errors import ConflictError, NotFoundError, UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry.migrations import LOCATION
from tests._support.artifacts import BLESSED, LINEAGE, NOT_BLESSED, make_model_dir

NAME = "income"


def _versions(reg: Registry, tmp_path: Path, count: int) -> None:
    for seed in range(count):
        gate = NOT_BLESSED if seed == count - 1 else BLESSED
        folder = make_model_dir(tmp_path / f"m{seed}", seed=seed)
        register_judged(
            reg, name=NAME, artifact_dir=folder, record=VersionRecord(lineage=LINEAGE, gate=gate)
        )


def test_set_and_clear_a_shadow_is_a_new_revision_and_audited(
    registry: Registry, tmp_path: Path
) -> None:
    _versions(registry, tmp_path, 3)
    deployed = registry.deploy(NAME, production=1)
    # An unblessed version may be a shadow: it answers no client.
    dep = registry.set_shadow(NAME, version=3, rate=0.25, actor="ana", reason="compare v3")
    assert (dep.shadow, dep.shadow_rate, dep.revision) == (3, 0.25, deployed.revision + 1)
    assert registry.deployment(NAME).to_dict()["shadow"] == 3
    event = registry.history(NAME)[-1]
    assert (event.action, event.actor, event.version, event.reason) == (
        "shadow",
        "ana",
        3,
        "compare v3",
    )
    assert event.before == {"shadow": None, "shadow_rate": 0.0}
    assert event.after == {"shadow": 3, "shadow_rate": 0.25}
    cleared = registry.set_shadow(NAME, version=None, actor="ana", reason="done")
    assert (cleared.shadow, cleared.shadow_rate, cleared.revision) == (None, 0.0, dep.revision + 1)
    assert registry.history(NAME)[-1].after == {"shadow": None, "shadow_rate": 0.0}
    # Clearing no shadow changes nothing and records nothing.
    events = len(registry.history(NAME))
    assert registry.set_shadow(NAME, version=None).revision == cleared.revision
    assert len(registry.history(NAME)) == events
    assert registry.verify_audit().ok


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        (0.0, r"shadow rate 0 is out of range; use a share of requests above 0"),
        (1.5, r"shadow rate 1.5 is out of range"),
        (math.nan, r"shadow rate nan is not a number"),
        (True, r"shadow rate True is not a number"),
    ],
)
def test_shadow_rate_must_be_a_share(
    registry: Registry, tmp_path: Path, rate: float, message: str
) -> None:
    _versions(registry, tmp_path, 2)
    registry.deploy(NAME, production=1)
    with pytest.raises(UsageError, match=message):
        registry.set_shadow(NAME, version=2, rate=rate)


def test_shadow_must_be_a_ready_version_beside_production(
    registry: Registry, tmp_path: Path
) -> None:
    _versions(registry, tmp_path, 4)
    with pytest.raises(ConflictError, match=r"no production version to copy requests from"):
        registry.set_shadow(NAME, version=2)
    registry.deploy(NAME, production=1, canary=2, weight=10)
    with pytest.raises(UsageError, match=r"income@1 is the production version"):
        registry.set_shadow(NAME, version=1)
    with pytest.raises(UsageError, match=r"income@2 is the canary version"):
        registry.set_shadow(NAME, version=2)
    with pytest.raises(NotFoundError, match=r"9"):
        registry.set_shadow(NAME, version=9)
    registry.archive(NAME, version=3)
    with pytest.raises(ConflictError, match=r"income@3 is archived and cannot be the shadow"):
        registry.set_shadow(NAME, version=3)
    registry.restore(NAME, version=3)
    registry.set_shadow(NAME, version=3, rate=0.5)
    with pytest.raises(ConflictError, match=r"it is the shadow version; clear it first"):
        registry.archive(NAME, version=3)
    with pytest.raises(ConflictError, match=r"it is the shadow version"):
        registry.delete(NAME, version=3)


def test_shadow_stays_through_deploys_until_it_serves(registry: Registry, tmp_path: Path) -> None:
    _versions(registry, tmp_path, 4)
    registry.deploy(NAME, production=1)
    registry.set_shadow(NAME, version=3, rate=0.1)
    registry.promote(NAME, version=2)
    assert registry.deployment(NAME).shadow == 3
    registry.rollback(NAME)
    dep = registry.deployment(NAME)
    assert (dep.production, dep.shadow, dep.shadow_rate) == (1, 3, 0.1)
    # The audit event of a deploy records the shadow it leaves in place.
    assert registry.history(NAME)[-1].after == {
        "production": 1,
        "canary": None,
        "weight": 0,
        "shadow": 3,
        "shadow_rate": 0.1,
    }
    # Becoming the canary (the monitor's start = "shadow") ends the shadow.
    dep = registry.deploy(NAME, production=1, canary=3, weight=5, force=True, reason="try it")
    assert (dep.canary, dep.shadow, dep.shadow_rate) == (3, None, 0.0)
    registry.deploy(NAME, production=1)
    registry.set_shadow(NAME, version=2, rate=1.0)
    assert registry.promote(NAME, version=2).shadow is None


def test_migration_adds_the_shadow_to_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry.open(url, artifacts=tmp_path / "artifacts") as reg:
        _versions(reg, tmp_path, 2)
        reg.deploy(NAME, production=1)
        before = reg.deployment(NAME)
    engine = create_engine(url)
    with engine.begin() as conn:  # back to the schema of a registry made before shadows
        config = Config()
        config.set_main_option("script_location", str(LOCATION))
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("deployments")}
    engine.dispose()
    assert "shadow_version" not in columns
    with Registry.open(url, artifacts=tmp_path / "artifacts") as reg:
        dep = reg.deployment(NAME)
        assert (dep.production, dep.revision, dep.shadow, dep.shadow_rate) == (
            1,
            before.revision,
            None,
            0.0,
        )
        assert reg.set_shadow(NAME, version=2, rate=0.5).shadow == 2
        assert reg.verify_audit().ok
