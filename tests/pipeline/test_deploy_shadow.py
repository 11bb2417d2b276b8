"""The deploy step with ``[rollout] start = "shadow"``: a later model becomes the shadow.

The step runs against a real SQLite registry holding real SavedModels; the run's context
is reduced to what the step reads (the registered version, the evaluation's blessing,
the config, the registry, the step cache).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mooring.config import load_config
from mooring.pipeline._cache import StepCache
from mooring.pipeline._record import StepRecord
from mooring.pipeline._steps import deploy
from mooring.registry import Registry
from tests._support.server import NAME, model_dirs, new_registry

__all__ = ["model_dirs"]  # a fixture, used by the tests here


def _context(tmp_path: Path, registry: Registry, version: int, rollout: str) -> Any:
    config = tmp_path / "mooring.toml"
    config.write_text(
        f'[project]\nname = "{NAME}"\n[data]\ntrain = "train.csv"\n{rollout}\n', encoding="utf-8"
    )

    def deployment() -> tuple[int | None, int | None, int]:
        dep = registry.deployment(NAME)
        return dep.production, dep.canary, dep.canary_weight

    return SimpleNamespace(
        outputs=SimpleNamespace(
            registered=SimpleNamespace(version=version),
            evaluated=SimpleNamespace(blessed=True),
        ),
        name=NAME,
        config=load_config(config),
        registry=registry,
        run_id="run-7",
        cache=StepCache(tmp_path / "cache"),
        deployment=deployment,
    )


@pytest.fixture
def registry(tmp_path: Path, model_dirs: dict[str, Path]) -> Any:
    reg = new_registry(tmp_path / "registry", model_dirs)
    reg.deploy(NAME, production=1)
    yield reg
    reg.close()


def test_a_later_model_becomes_the_shadow_at_the_configured_rate(
    tmp_path: Path, registry: Registry
) -> None:
    ctx = _context(
        tmp_path, registry, 2, '[rollout]\nstart = "shadow"\n[rollout.shadow]\nrate = 0.25'
    )
    record = StepRecord("deploy")
    out = deploy.run(ctx, record)
    assert out is not None and out.deployed_as == "shadow"
    dep = registry.deployment(NAME)
    # Production keeps every client; the candidate gets copies only, and no canary share.
    assert (dep.production, dep.canary, dep.canary_weight) == (1, None, 0)
    assert (dep.shadow, dep.shadow_rate) == (2, 0.25)
    assert record.status == "done" and "shadow of production 1" in record.message
    event = registry.history(NAME)[-1]
    assert event.action == "shadow" and event.version == 2
    assert event.reason is not None and "mooring run run-7" in event.reason
    # Run again: nothing changes, and the step says why.
    again = StepRecord("deploy")
    assert deploy.run(ctx, again) is not None
    assert again.status == "cached" and "already the shadow" in again.message
    assert registry.deployment(NAME).revision == dep.revision


def test_without_start_shadow_a_later_model_is_a_canary_and_no_shadow(
    tmp_path: Path, registry: Registry
) -> None:
    ctx = _context(tmp_path, registry, 2, "[rollout]\nsteps = [10, 100]")
    out = deploy.run(ctx, StepRecord("deploy"))
    assert out is not None and out.deployed_as == "canary"
    dep = registry.deployment(NAME)
    assert (dep.production, dep.canary, dep.canary_weight, dep.shadow) == (1, 2, 10, None)


def test_a_first_model_is_production_even_with_start_shadow(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    reg = new_registry(tmp_path / "empty", model_dirs)  # nothing deployed yet
    try:
        ctx = _context(tmp_path, reg, 1, '[rollout]\nstart = "shadow"')
        out = deploy.run(ctx, StepRecord("deploy"))
        assert out is not None and out.deployed_as == "production"
        dep = reg.deployment(NAME)
        assert (dep.production, dep.shadow) == (1, None)
    finally:
        reg.close()
