"""Register, get, load, aliases, deployments and their rules — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mooring.errors import (
    ChecksFailedError,
    ConflictError,
    IntegrityError,
    NoRegistryError,
    NotFoundError,
    UsageError,
)
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry._manifest import build_manifest, canonical_json
from tests._support.artifacts import (
    BLESSED,
    LINEAGE,
    NOT_BLESSED,
    SKIPPED_ONLY,
    UNGATED,
    make_model_dir,
)


def _register(reg: Registry, tmp_path: Path, seed: int = 0, **kwargs: object) -> int:
    kwargs.setdefault("gate", BLESSED)
    folder = make_model_dir(tmp_path / "src", seed)
    outer = {k: kwargs.pop(k) for k in ("reason", "render_card", "created_by") if k in kwargs}
    record = VersionRecord(lineage=LINEAGE, **kwargs)  # type: ignore[arg-type]
    mv = register_judged(reg, name="income", artifact_dir=folder, record=record, **outer)  # type: ignore[arg-type]
    return mv.version


def test_register_records_everything(registry: Registry, tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path, 1)
    stats = {"num_rows": 100, "columns": {"age": {"mean": 38.5}}}
    mv = register_judged(
        registry,
        name="income",
        artifact_dir=folder,
        record=VersionRecord(
            lineage=LINEAGE,
            metrics={"overall": {"auc": 0.91}, "slices": {"sex": {"F": {"auc": 0.9}}}},
            gate=BLESSED,
            statistics=stats,
            params={"epochs": 3, "hidden": [8]},
            run=RunRecord.read({"seed": 42, "duration_s": 1.5}),
            description="first model",
        ),
        created_by="ana",
    )
    assert (mv.name, mv.version, mv.status, mv.created_by) == ("income", 1, "ready", "ana")
    assert mv.blessed is True
    assert mv.file_count == 4
    assert mv.manifest_sha256 == build_manifest(folder).sha256
    got = registry.get("income", version=1)
    assert got.lineage.data_fingerprint == LINEAGE["data_fingerprint"]
    assert got.lineage.code_version == "0123abc"
    assert got.lineage.tensorflow_version and got.lineage.keras_version
    assert got.lineage.mooring_version
    expected_stats_hash = hashlib.sha256(canonical_json(stats).encode()).hexdigest()
    assert got.lineage.statistics_hash == expected_stats_hash
    assert got.statistics == stats
    assert got.params == {"epochs": 3, "hidden": [8]}
    assert got.run_record == {"seed": 42, "duration_s": 1.5}
    assert got.metrics["overall"]["auc"] == 0.91
    assert got.gate == BLESSED
    assert got.manifest is not None and "mooring.json" in got.manifest["files"]


def test_the_card_is_the_callers_renderers_once_the_number_is_known(
    registry: Registry, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []

    def render(**facts: Any) -> str:
        seen.append(facts)
        return f"card of v{facts['version']} at {facts['created_at']}"

    first = _register(registry, tmp_path / "a", 1)
    mv = register_judged(
        registry,
        name="income",
        artifact_dir=make_model_dir(tmp_path / "b", 2),
        record=VersionRecord(
            lineage=LINEAGE,
            gate=BLESSED,
            parent_version=first,
            intended_use="scoring tests",
            limitations=["none known"],
        ),
        created_by="ana",
        render_card=render,
    )
    [facts] = seen
    assert (facts["name"], facts["version"], facts["created_by"]) == ("income", 2, "ana")
    assert (facts["parent_version"], facts["gate"]) == (1, BLESSED)
    assert (facts["intended_use"], facts["limitations"]) == ("scoring tests", ["none known"])
    assert facts["lineage"]["mooring_version"]  # the stamped lineage, as stored
    assert registry.model_card("income", version=2) == f"card of v2 at {mv.created_at}"


def test_without_a_renderer_a_version_has_no_card(registry: Registry, tmp_path: Path) -> None:
    _register(registry, tmp_path, 1, description="first model")
    assert registry.get("income", version=1).model_card == ""
    assert registry.model_card("income") == ""
    with pytest.raises(UsageError, match="intended_use and limitations are written only on"):
        _register(registry, tmp_path / "again", 2, intended_use="scoring tests")
    assert [mv.version for mv in registry.versions("income")] == [1]


def test_numbers_grow_and_are_never_reused(registry: Registry, tmp_path: Path) -> None:
    assert [_register(registry, tmp_path / str(i), i) for i in range(3)] == [1, 2, 3]
    registry.delete("income", version=3, reason="bad export")
    assert _register(registry, tmp_path / "again", 9) == 4
    assert [mv.version for mv in registry.versions("income")] == [1, 2, 4]
    with pytest.raises(NotFoundError, match=r"no version 3 \(existing: 1, 2, 4\)"):
        registry.get("income", version=3)


def test_load_returns_verified_copy(registry: Registry, tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path, 2)
    register_judged(
        registry,
        name="income",
        artifact_dir=folder,
        record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
    )
    path = registry.load("income", version=1)
    assert (path / "mooring.json").read_text() == (folder / "mooring.json").read_text()
    assert (path / "assets").is_dir()
    assert registry.load("income") == path  # latest
    # The source folder is independent of the stored copy.
    (folder / "saved_model.pb").write_bytes(b"changed later")
    registry.verify("income", version=1)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            lambda p: (p / "variables" / "variables.index").write_bytes(b"evil"),
            r"changed: variables/variables\.index",
        ),
        (lambda p: (p / "saved_model.pb").unlink(), r"missing: saved_model\.pb"),
        (
            lambda p: (p / "variables" / "payload.py").write_text("import os"),
            r"extra: variables/payload\.py",
        ),
    ],
    ids=["changed", "missing", "extra"],
)
def test_tampered_artifact_refuses_to_load(
    registry: Registry, tmp_path: Path, tamper: object, expected: str
) -> None:
    _register(registry, tmp_path)
    path = registry.load("income", version=1)
    tamper(path)  # type: ignore[operator]
    with pytest.raises(IntegrityError, match=expected):
        registry.load("income", version=1)
    with pytest.raises(IntegrityError, match=r"refusing to load a modified model"):
        registry.verify("income", version=1)


def test_aliases(registry: Registry, tmp_path: Path) -> None:
    for i in range(2):
        _register(registry, tmp_path / str(i), i)
    registry.set_alias("income", "champion", version=1, actor="ana", reason="best so far")
    assert registry.get("income", alias="champion").version == 1
    registry.set_alias("income", "champion", version=2)
    assert registry.aliases("income") == {"champion": 2}
    assert registry.get("income", version=2).aliases == ("champion",)
    registry.remove_alias("income", "champion")
    with pytest.raises(NotFoundError, match=r"no alias 'champion'"):
        registry.get("income", alias="champion")
    with pytest.raises(UsageError, match=r"alias 'production' cannot be set directly"):
        registry.set_alias("income", "production", version=1)
    with pytest.raises(UsageError, match=r"alias 'bad alias!' is not allowed"):
        registry.set_alias("income", "bad alias!", version=1)
    with pytest.raises(UsageError, match=r"alias '7' is not allowed"):
        registry.set_alias("income", "7", version=1)
    with pytest.raises(UsageError, match=r"either version= or alias="):
        registry.get("income", version=1, alias="latest")


def test_promote_requires_blessing_or_forced_reason(registry: Registry, tmp_path: Path) -> None:
    _register(registry, tmp_path / "a", 0)
    _register(registry, tmp_path / "b", 1, gate=NOT_BLESSED)
    _register(registry, tmp_path / "c", 2, gate=None)
    dep = registry.promote("income", version=1, actor="ana", reason="first")
    assert (dep.production, dep.canary, dep.revision) == (1, None, 1)
    with pytest.raises(ChecksFailedError, match=r"income@2 is not blessed \(failed gates: auc"):
        registry.promote("income", version=2)
    with pytest.raises(
        ChecksFailedError, match=r"is unevaluated \(registered without mooring.s evaluation\)"
    ):
        registry.promote("income", version=3)
    with pytest.raises(UsageError, match=r"needs a reason"):
        registry.promote("income", version=2, force=True)
    assert registry.deployment("income").production == 1
    dep = registry.promote("income", version=2, force=True, reason="hotfix", actor="bob")
    assert dep.production == 2 and dep.previous == (1,)
    assert registry.get("income", alias="production").version == 2
    event = registry.history("income")[-1]
    assert (event.action, event.forced, event.reason, event.actor) == (
        "promote",
        True,
        "hotfix",
        "bob",
    )
    assert event.before == {"production": 1, "canary": None, "weight": 0}
    assert event.after == {"production": 2, "canary": None, "weight": 0}


def test_an_ungated_version_is_not_blessed_and_deploys_only_by_force(
    registry: Registry, tmp_path: Path
) -> None:
    _register(registry, tmp_path / "a", 0)
    _register(registry, tmp_path / "b", 1, gate=UNGATED)
    _register(registry, tmp_path / "c", 2, gate=SKIPPED_ONLY)
    _register(registry, tmp_path / "d", 3, gate=NOT_BLESSED)
    verdicts = [(mv.blessed, mv.ungated, mv.verdict) for mv in registry.versions("income")]
    assert verdicts == [
        (True, False, "blessed"),
        (False, True, "ungated"),
        (False, True, "ungated"),
        (False, False, "not blessed"),
    ]
    assert registry.get("income", version=2).to_dict()["ungated"] is True
    for version in (2, 3):
        with pytest.raises(
            ChecksFailedError,
            match=rf"income@{version} is not blessed \(ungated: no gate judged it\)",
        ):
            registry.promote("income", version=version)
    registry.promote("income", version=1, reason="first")
    with pytest.raises(ChecksFailedError, match=r"ungated: no gate judged it.*--force"):
        registry.deploy("income", production=1, canary=2, weight=10)
    dep = registry.promote("income", version=2, force=True, reason="gates off on purpose")
    assert dep.production == 2


def test_promote_and_deploy_refuse_an_artifact_that_fails_verification(
    registry: Registry, tmp_path: Path
) -> None:
    for i in range(3):
        _register(registry, tmp_path / str(i), i)
    registry.promote("income", version=1)
    stored = registry.load("income", version=2)
    (stored / "variables" / "variables.index").write_bytes(b"changed")
    with pytest.raises(IntegrityError, match=r"income@2.*variables/variables.index.*--force"):
        registry.promote("income", version=2)
    with pytest.raises(IntegrityError, match=r"income@2.*variables/variables.index"):
        registry.deploy("income", production=1, canary=2, weight=10)
    with pytest.raises(UsageError, match=r"needs a reason.*variables/variables.index.*--reason"):
        registry.promote("income", version=2, force=True)
    with pytest.raises(UsageError, match=r"needs a reason, got ' '"):
        registry.deploy("income", production=2, force=True, reason=" ")
    assert registry.deployment("income").production == 1
    # A healthy canary next to the current production is not held up by it.
    registry.deploy("income", production=1, canary=3, weight=10)
    dep = registry.promote("income", version=2, force=True, reason="incident 42", actor="bob")
    assert dep.production == 2
    event = registry.history("income")[-1]
    assert event.forced and event.actor == "bob"
    assert event.reason is not None and event.reason.startswith("incident 42 [deployed although")
    assert "variables/variables.index" in event.reason


def test_deploy_canary_and_rollback(registry: Registry, tmp_path: Path) -> None:
    for i in range(3):
        _register(registry, tmp_path / str(i), i)
    registry.deploy("income", production=1)
    dep = registry.deploy("income", production=1, canary=2, weight=10, reason="try v2")
    assert (dep.production, dep.canary, dep.canary_weight) == (1, 2, 10)
    assert registry.aliases("income") == {"production": 1, "canary": 2}
    dep = registry.promote("income", version=2)
    assert (dep.production, dep.canary, dep.canary_weight) == (2, None, 0)
    registry.promote("income", version=3)
    assert registry.deployment("income").previous == (1, 2)
    dep = registry.rollback("income", reason="latency")
    assert (dep.production, dep.canary) == (2, None)
    dep = registry.rollback("income")
    assert dep.production == 1
    with pytest.raises(ConflictError, match=r"no earlier production version"):
        registry.rollback("income")
    assert registry.aliases("income") == {"production": 1}
    for bad, message in [
        ({"production": 1, "canary": 1, "weight": 5}, r"both production and canary"),
        ({"production": 1, "canary": None, "weight": 5}, r"without a canary version"),
        ({"production": 1, "canary": 2, "weight": 101}, r"weight 101 is not valid"),
        ({"production": None, "canary": 2, "weight": 5}, r"needs a production version"),
    ]:
        with pytest.raises(UsageError, match=message):
            registry.deploy("income", **bad)  # type: ignore[arg-type]


def test_archive_and_delete_rules(registry: Registry, tmp_path: Path) -> None:
    for i in range(3):
        _register(registry, tmp_path / str(i), i)
    registry.deploy("income", production=1, canary=2, weight=5)
    with pytest.raises(ConflictError, match=r"cannot delete income@1: it is the production"):
        registry.delete("income", version=1)
    with pytest.raises(ConflictError, match=r"cannot archive income@2: it is the canary"):
        registry.archive("income", version=2)
    registry.set_alias("income", "old", version=3)
    mv = registry.archive("income", version=3, reason="superseded")
    assert mv.status == "archived"
    assert registry.get("income", alias="latest").version == 2
    with pytest.raises(ConflictError, match=r"income@3 is archived"):
        registry.promote("income", version=3)
    registry.load("income", version=3)  # archived versions stay loadable
    registry.restore("income", version=3)
    assert registry.get("income").version == 3
    key = registry.get("income", version=3).artifact_key
    registry.delete("income", version=3, reason="cleanup")
    assert "old" not in registry.aliases("income")
    assert not (Path(registry.artifacts.root) / key).exists()
    actions = [e.action for e in registry.history("income")]
    assert actions[-4:] == ["alias", "archive", "restore", "delete"]


def test_bad_names_and_unknowns(registry: Registry, tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path)
    for name in ["../x", "a/b", "", "x y", "-lead", "a..b"]:
        with pytest.raises(UsageError, match=r"model name .* is not allowed"):
            register_judged(
                registry, name=name, artifact_dir=folder, record=VersionRecord(lineage={})
            )
    with pytest.raises(NotFoundError, match=r"model 'nope' is not in the registry"):
        registry.get("nope", version=1)
    with pytest.raises(UsageError, match=r"artifact_dir '.*missing' is not a folder"):
        register_judged(
            registry,
            name="income",
            artifact_dir=tmp_path / "missing",
            record=VersionRecord(lineage={}),
        )
    with pytest.raises(UsageError, match=r"version 0 is not valid"):
        registry.get("income", version=0)
    with pytest.raises(UsageError, match=r"lineage is not JSON-serializable"):
        register_judged(
            registry,
            name="income",
            artifact_dir=folder,
            record=VersionRecord(lineage={"x": object()}),
        )
    # A failed registration leaves nothing behind.
    assert registry.models() == []
    assert registry.artifacts.list_keys() == []


def test_models_listing(registry: Registry, tmp_path: Path) -> None:
    _register(registry, tmp_path / "a", 0)
    _register(registry, tmp_path / "b", 1)
    register_judged(
        registry,
        name="churn",
        artifact_dir=make_model_dir(tmp_path / "c", 3),
        record=VersionRecord(lineage={}),
    )
    registry.promote("income", version=2)
    summaries = {s.name: s for s in registry.models()}
    assert summaries["income"].to_dict() | {"created_at": None} == {
        "name": "income",
        "created_at": None,
        "latest_version": 2,
        "versions": 2,
        "production": 2,
        "canary": None,
        "canary_weight": 0,
    }
    assert summaries["churn"].production is None


def test_parent_version_must_exist(registry: Registry, tmp_path: Path) -> None:
    _register(registry, tmp_path / "a", 0)
    assert _register(registry, tmp_path / "b", 1, parent_version=1) == 2
    assert registry.get("income", version=2).parent_version == 1
    with pytest.raises(NotFoundError, match=r"no version 9"):
        _register(registry, tmp_path / "c", 2, parent_version=9)
    assert sorted(registry.artifacts.list_keys()) == sorted(
        registry.get("income", version=v).artifact_key for v in (1, 2)
    )


def test_collect_garbage_removes_only_unreferenced(registry: Registry, tmp_path: Path) -> None:
    _register(registry, tmp_path)
    root = Path(registry.artifacts.root)
    (root / "staging" / "deadbeef").mkdir(parents=True)
    (root / "staging" / "deadbeef" / "f").write_text("partial")
    (root / "models" / "income" / "orphan").mkdir(parents=True)
    assert registry.collect_garbage(older_than=3600) == []  # too young
    removed = registry.collect_garbage(older_than=0)
    assert sorted(removed) == ["models/income/orphan", "staging/deadbeef"]
    registry.load("income", version=1)


def test_reopen_keeps_state(db_url: str, tmp_path: Path) -> None:
    with Registry.open(db_url, artifacts=tmp_path / "art") as reg:
        _register(reg, tmp_path)
    with Registry.open(db_url, artifacts=tmp_path / "art") as reg:
        assert reg.get("income").version == 1
        assert reg.verify_audit().ok


def test_json_shapes(registry: Registry, tmp_path: Path) -> None:
    _register(registry, tmp_path)
    registry.promote("income", version=1)
    mv = registry.get("income", version=1)
    json.dumps(mv.to_dict(heavy=True))
    assert "statistics" not in mv.to_dict()
    assert mv.to_dict()["aliases"] == ["production"]
    json.dumps(registry.deployment("income").to_dict())
    json.dumps([e.to_dict() for e in registry.history()])


def test_a_registry_opened_without_create_leaves_no_file_and_reads_the_one_made_later(
    tmp_path: Path,
) -> None:
    """A server started before the first run: it lists nothing and creates nothing, and
    reads the registry once a run has created it (migrated, with its first version)."""
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    artifacts = tmp_path / "home" / "artifacts"
    follower = Registry.open(url, artifacts=artifacts, create=False)
    assert follower.models() == []
    with pytest.raises(NoRegistryError, match=r"nothing is in the registry .* yet"):
        follower.deployment("income")
    with pytest.raises(NotFoundError, match="`mooring run` or `mooring models import`"):
        follower.get("income", version=1)
    assert not (tmp_path / "home").exists()
    with Registry.open(url, artifacts=artifacts) as creator:
        version = _register(creator, tmp_path)
        creator.deploy("income", production=version)
    assert [m.name for m in follower.models()] == ["income"]
    assert follower.deployment("income").production == version
    assert follower.load("income", version=version).is_dir()
    follower.close()


def test_a_registry_opened_without_create_is_created_by_its_first_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry.open(url, artifacts=tmp_path / "artifacts", create=False) as registry:
        version = _register(registry, tmp_path)
        assert registry.get("income", version=version).blessed
    assert (tmp_path / "registry.db").is_file()
