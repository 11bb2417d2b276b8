"""``project_status`` keeps the last rollback in view: when, which version, by whom and why,
from the registry's audit log (``rollout.json`` keeps only the last change)."""

from __future__ import annotations

from pathlib import Path

from mooring.monitoring._rollout import ACTOR
from mooring.monitoring._rollout_view import rollout_path
from mooring.pipeline._status import REASON_CHARS, last_rollback, project_status
from tests._support.rollout import NAME, registry_with_versions
from tests._support.rollout_evidence import rolled_back_then_next, rollout_project


def test_the_controllers_rollback_stays_shown_after_the_next_deployment(tmp_path: Path) -> None:
    cfg = rollout_project(tmp_path)
    # A person then tries the next version: no rollback, and the rollout state moves on.
    rolled_back_then_next(cfg)
    rollout_path(cfg.home, NAME).unlink()

    status = project_status(cfg)
    rollback = status.last_rollback
    assert rollback is not None
    assert (rollback["version"], rollback["actor"], rollback["production_after"]) == (2, ACTOR, 1)
    assert rollback["at"] and "rolled back at 10%" in rollback["reason"]
    assert rollback["line"].startswith(f"v2 at {rollback['at']} by {ACTOR}: canary income@2 ")
    assert "errors" in rollback["line"]
    assert status.to_dict()["last_rollback"] == rollback


def test_a_manual_rollback_counts_and_a_long_reason_is_cut(tmp_path: Path) -> None:
    cfg = rollout_project(tmp_path)
    reason = "latency doubled after the deploy; " * 20
    with registry_with_versions(cfg, 2) as registry:
        registry.deploy(NAME, production=1)
        registry.deploy(NAME, production=2)
        registry.rollback(NAME, actor="ana", reason=reason)
        rollback = last_rollback(registry.history(NAME))
    assert rollback is not None
    assert (rollback["version"], rollback["actor"], rollback["production_after"]) == (2, "ana", 1)
    assert rollback["reason"] == reason  # the whole reason in the JSON
    shown = rollback["line"].split(": ", 1)[1]
    assert shown == " ".join(reason.split())[:REASON_CHARS] + "…"


def test_no_rollback_is_none_and_a_promotion_or_a_dropped_canary_is_no_rollback(
    tmp_path: Path,
) -> None:
    cfg = rollout_project(tmp_path)
    assert project_status(cfg).last_rollback is None  # nothing registered yet
    with registry_with_versions(cfg, 3) as registry:
        registry.deploy(NAME, production=1, canary=2, weight=10)
        assert last_rollback(registry.history(NAME)) is None
        registry.promote(NAME, version=2, actor=ACTOR, reason="all guardrails passed")
        registry.deploy(NAME, production=2, canary=3, weight=10)
        registry.deploy(NAME, production=2, actor="ana", reason="not today")
        assert last_rollback(registry.history(NAME)) is None
    assert project_status(cfg).last_rollback is None
