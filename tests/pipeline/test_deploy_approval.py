"""The deploy step under ``[registry] production_requires = "approval"``: a model that would
become production unapproved is registered, not deployed, and the step says what releases
it; once approved, the next run deploys it. A SQLite registry of small folders.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mooring.config import load_config
from mooring.formats._version_record import VersionRecord
from mooring.pipeline._cache import StepCache
from mooring.pipeline._record import StepRecord
from mooring.pipeline._steps import deploy
from mooring.registry import Registry
from mooring.registry._approval import ReleaseRules
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir


def _context(tmp_path: Path, registry: Registry) -> Any:
    config = tmp_path / "mooring.toml"
    config.write_text('[project]\nname = "income"\n[data]\ntrain = "train.csv"\n')

    def deployment() -> tuple[int | None, int | None, int]:
        dep = registry.deployment("income")
        return dep.production, dep.canary, dep.canary_weight

    return SimpleNamespace(
        outputs=SimpleNamespace(
            registered=SimpleNamespace(version=1), evaluated=SimpleNamespace(blessed=True)
        ),
        name="income",
        config=load_config(config),
        registry=registry,
        run_id="run-3",
        cache=StepCache(tmp_path / "cache"),
        deployment=deployment,
    )


def test_an_unapproved_first_model_is_registered_not_deployed(tmp_path: Path) -> None:
    with Registry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "a") as registry:
        registry.release = ReleaseRules(production_requires="approval")
        folder = make_model_dir(tmp_path / "m", 1)
        record = VersionRecord(lineage=LINEAGE, gate=BLESSED)
        register_judged(registry, "income", folder, record, created_by="ana")
        ctx = _context(tmp_path, registry)
        record_1 = StepRecord("deploy")
        assert deploy.run(ctx, record_1) is None
        assert record_1.status == "skipped"
        assert record_1.message.startswith(
            "version 1 is registered, not production: income@1 cannot become production"
        )
        assert "mooring models approve income 1 -r REASON" in record_1.message
        assert registry.deployment("income").production is None

        registry.approve("income", version=1, reason="report read", actor="bob")
        record_2 = StepRecord("deploy")
        out = deploy.run(ctx, record_2)
        assert out is not None and out.deployed_as == "production"
        assert registry.deployment("income").production == 1
