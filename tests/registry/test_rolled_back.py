"""Promoting a version that was rolled back needs force and a reason (SQLite: the rule reads
the audit log, the same on every backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mooring.cli import main
from mooring.config import MooringConfig
from mooring.errors import ChecksFailedError, ConflictError, UsageError
from mooring.formats._version_record import VersionRecord
from mooring.monitoring._alerts import AlertManager
from mooring.monitoring._rollout import RolloutController
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry._rolled_back import rolled_back
from mooring.serving._metrics import ServingMetrics
from tests._support.rollout import (
    LINEAGE,
    NAME,
    Clock,
    artifact_dir,
    project,
    registry_with_versions,
    serve,
)
from tests._support.rollout_evidence import write_config


@pytest.fixture
def cfg(tmp_path: Path) -> MooringConfig:
    return project(tmp_path / "home", rollout={"steps": [10, 100]})


@pytest.fixture
def registry(cfg: MooringConfig) -> Iterator[Registry]:
    reg = registry_with_versions(cfg)
    yield reg
    reg.close()


def _rolled_back_by_the_monitor(cfg: MooringConfig, registry: Registry) -> None:
    """Canary v2 at 10% answers errors; the rollout controller rolls it back."""
    registry.deploy(NAME, production=1, canary=2, weight=10)
    metrics = ServingMetrics()
    controller = RolloutController(
        cfg, registry, metrics=metrics.render, alerts=AlertManager([]), clock=Clock()
    )
    controller.tick()
    serve(metrics, 1, 72)
    serve(metrics, 2, 8, errors=6)
    assert controller.tick().action == "rollback"


def test_a_version_the_monitor_rolled_back_needs_force_and_a_reason(
    cfg: MooringConfig, registry: Registry
) -> None:
    _rolled_back_by_the_monitor(cfg, registry)
    with pytest.raises(
        ConflictError,
        match=r"income@2 was rolled back as canary at 10% by mooring-monitor at \S+ \(audit "
        r"event \d+\): canary income@2 rolled back at 10%: errors .*--force -r REASON",
    ):
        registry.promote(NAME, version=2)
    with pytest.raises(UsageError, match=r"forcing income@2, which was rolled back.*-r REASON"):
        registry.promote(NAME, version=2, force=True)
    dep = registry.promote(NAME, version=2, force=True, reason="the errors were a bad client")
    assert dep.production == 2
    event = registry.history(NAME)[-1]
    assert event.action == "promote" and event.forced
    assert (event.reason or "").startswith(
        "the errors were a bad client [promoted although: income@2 was rolled back as canary"
    )


def test_a_version_deployed_again_after_its_rollback_may_be_promoted(
    cfg: MooringConfig, registry: Registry
) -> None:
    _rolled_back_by_the_monitor(cfg, registry)
    registry.deploy(NAME, production=1, canary=2, weight=10, reason="fixed the client")
    assert rolled_back(registry.history(NAME), 2) is None
    assert registry.promote(NAME, version=2).production == 2
    assert not registry.history(NAME)[-1].forced


def test_production_rolled_back_by_hand_needs_force_to_come_back(registry: Registry) -> None:
    registry.promote(NAME, version=1)
    registry.promote(NAME, version=2)
    registry.rollback(NAME, reason="latency")
    with pytest.raises(ConflictError, match=r"income@2 was rolled back as production by \S+"):
        registry.promote(NAME, version=2)
    # Another version, never rolled back, is not concerned.
    assert registry.promote(NAME, version=3).production == 3


def test_a_version_that_failed_a_gate_needs_force_and_a_reason(
    cfg: MooringConfig, registry: Registry
) -> None:
    failed = {
        "blessed": False,
        "gates": [{"name": "auc", "value": 0.6, "bound": 0.7, "passed": False}],
    }
    mv = register_judged(
        registry,
        name=NAME,
        artifact_dir=artifact_dir(cfg.home / "src", 9),
        record=VersionRecord(lineage=LINEAGE, gate=failed),
    )
    with pytest.raises(ChecksFailedError, match=r"failed gates: auc=0.6.*--force --reason"):
        registry.promote(NAME, version=mv.version)


def test_the_cli_names_the_rollback_and_the_fix(
    cfg: MooringConfig, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    _rolled_back_by_the_monitor(cfg, registry)
    url = ["-c", str(write_config(cfg.root / "mooring.toml", str(cfg.home)))]
    assert main(["models", "promote", NAME, "2", *url]) == 2  # a conflict, as a usage error
    err = capsys.readouterr().err
    assert "income@2 was rolled back as canary at 10% by mooring-monitor" in err
    assert "--force -r REASON" in err
    assert main(["models", "promote", NAME, "2", "--force", "-r", "bad client", *url]) == 0
    assert registry.deployment(NAME).production == 2
