"""Artifacts attached to an existing version (e.g. TF Lite exports) — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect

from mooring.errors import ConflictError, IntegrityError, NotFoundError, UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry._sql.store import SqlStore
from mooring.registry.migrations import LOCATION
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir


def _version(reg: Registry, tmp_path: Path, seed: int = 0) -> int:
    folder = make_model_dir(tmp_path / "src", seed)
    return register_judged(
        reg, name="income", artifact_dir=folder, record=VersionRecord(lineage=LINEAGE, gate=BLESSED)
    ).version


def _file(tmp_path: Path, payload: bytes, name: str = "model.tflite") -> Path:
    path = tmp_path / "out" / payload.hex()[:8] / name
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    return path


def test_attach_keeps_the_version_and_audits(registry: Registry, tmp_path: Path) -> None:
    version = _version(registry, tmp_path)
    before = registry.get("income", version=version)
    payload = b"TFL3" + bytes(range(256)) * 40
    path = _file(tmp_path, payload)

    item = registry.attach_artifact(
        "income",
        version=version,
        artifact="tflite-int8",
        path=path,
        details={"mode": "int8", "auc_delta": -0.002},
        actor="ana",
        reason="edge build",
    )

    sha = hashlib.sha256(payload).hexdigest()
    assert item.files == {"model.tflite": sha}
    assert (item.model, item.version, item.artifact, item.created_by) == (
        "income",
        version,
        "tflite-int8",
        "ana",
    )
    assert item.size_bytes == len(payload)
    assert item.details == {"mode": "int8", "auc_delta": -0.002}
    assert item.ref == f"income@{version}:tflite-int8"
    # The version itself is untouched: same manifest, same card, same artifact key.
    after = registry.get("income", version=version)
    assert after.manifest == before.manifest
    assert after.manifest_sha256 == before.manifest_sha256
    assert after.model_card == before.model_card
    assert after.artifact_key == before.artifact_key != item.artifact_key
    registry.verify("income", version=version)
    # Listed, loadable and verified; audited in the hash chain.
    assert [a.artifact for a in registry.version_artifacts("income", version=version)] == [
        "tflite-int8"
    ]
    folder = registry.load_artifact("income", "tflite-int8", version=version)
    assert (folder / "model.tflite").read_bytes() == payload
    event = registry.history("income")[-1]
    assert (event.action, event.version, event.actor, event.reason) == (
        "attach",
        version,
        "ana",
        "edge build",
    )
    assert event.before is None
    assert event.after is not None and event.after["artifact"] == "tflite-int8"
    assert registry.verify_audit().ok
    assert item.to_dict()["files"] == {"model.tflite": sha}


def test_same_name_is_refused_unless_replaced(registry: Registry, tmp_path: Path) -> None:
    version = _version(registry, tmp_path)
    first = registry.attach_artifact(
        "income", version=version, artifact="tflite-dynamic", path=_file(tmp_path, b"one")
    )
    with pytest.raises(ConflictError, match=r"tflite-dynamic already exists.*replace=True"):
        registry.attach_artifact(
            "income", version=version, artifact="tflite-dynamic", path=_file(tmp_path, b"two")
        )
    assert registry.version_artifacts("income", version=version)[0].artifact_key == (
        first.artifact_key
    )

    second = registry.attach_artifact(
        "income",
        version=version,
        artifact="tflite-dynamic",
        path=_file(tmp_path, b"three"),
        replace=True,
    )
    assert second.files["model.tflite"] == hashlib.sha256(b"three").hexdigest()
    listed = registry.version_artifacts("income", version=version)
    assert [a.artifact_key for a in listed] == [second.artifact_key]
    assert first.artifact_key not in registry.artifacts.list_keys()
    event = registry.history("income")[-1]
    assert event.before is not None and event.after is not None
    assert event.before["manifest_sha256"] == first.manifest_sha256
    assert event.after["manifest_sha256"] == second.manifest_sha256
    assert registry.verify_audit().ok


def test_unknowns_and_bad_names(registry: Registry, tmp_path: Path) -> None:
    version = _version(registry, tmp_path)
    path = _file(tmp_path, b"x")
    with pytest.raises(NotFoundError, match="has no version 9"):
        registry.attach_artifact("income", version=9, artifact="tflite-int8", path=path)
    with pytest.raises(UsageError, match="artifact name 'TF Lite' is not valid"):
        registry.attach_artifact("income", version=version, artifact="TF Lite", path=path)
    with pytest.raises(UsageError, match="neither a file nor a folder"):
        registry.attach_artifact(
            "income", version=version, artifact="tflite-int8", path=tmp_path / "nope"
        )
    with pytest.raises(NotFoundError, match=r"has no artifact 'tflite-int8' \(attached: none\)"):
        registry.load_artifact("income", "tflite-int8", version=version)
    # Nothing was left behind by the refused attachments.
    assert registry.version_artifacts("income", version=version) == []
    assert registry.collect_garbage(older_than=0.0) == []


def test_garbage_collection_keeps_and_delete_removes(registry: Registry, tmp_path: Path) -> None:
    old = _version(registry, tmp_path, 0)
    current = _version(registry, tmp_path, 1)
    registry.promote("income", version=current)
    kept = registry.attach_artifact(
        "income", version=current, artifact="tflite-float16", path=_file(tmp_path, b"keep")
    )
    gone = registry.attach_artifact(
        "income", version=old, artifact="tflite-float16", path=_file(tmp_path, b"gone")
    )
    assert registry.collect_garbage(older_than=0.0) == []
    assert kept.artifact_key in registry.artifacts.list_keys()

    registry.delete("income", version=old, reason="superseded")
    keys = registry.artifacts.list_keys()
    assert gone.artifact_key not in keys and kept.artifact_key in keys
    with pytest.raises(NotFoundError, match="has no version"):
        registry.version_artifacts("income", version=old)
    assert [a.artifact for a in registry.version_artifacts("income", alias="production")] == [
        "tflite-float16"
    ]


def test_tampered_attachment_refuses_to_load(registry: Registry, tmp_path: Path) -> None:
    version = _version(registry, tmp_path)
    item = registry.attach_artifact(
        "income", version=version, artifact="tflite-int8", path=_file(tmp_path, b"original")
    )
    stored = registry.artifacts.local_path(item.artifact_key) / "model.tflite"
    stored.write_bytes(b"modified")
    with pytest.raises(IntegrityError, match=r"tflite-int8: the stored files do not match.*chang"):
        registry.load_artifact("income", "tflite-int8", version=version)


def test_a_registry_from_the_first_schema_is_upgraded(db_url: str, tmp_path: Path) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(LOCATION))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with engine.connect() as conn:
        assert not inspect(conn).has_table("version_artifacts")
    engine.dispose()

    with Registry.open(db_url, artifacts=tmp_path / "artifacts") as reg:
        version = _version(reg, tmp_path)
        reg.attach_artifact(
            "income", version=version, artifact="tflite-int8", path=_file(tmp_path, b"up")
        )
    SqlStore(db_url).close()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert inspect(conn).has_table("version_artifacts")
    engine.dispose()


def test_attach_and_load_through_s3(tmp_path: Path, s3_options: dict[str, Any]) -> None:
    import s3fs

    bucket = f"mooring-{tmp_path.name.lower().replace('_', '-')[:40]}"
    s3fs.S3FileSystem(**s3_options).mkdir(bucket)
    with Registry.open(
        f"sqlite:///{tmp_path / 'registry.db'}",
        artifacts=f"s3://{bucket}/registry",
        storage_options=s3_options,
        cache_dir=tmp_path / "cache",
    ) as reg:
        version = _version(reg, tmp_path)
        payload = b"TFL3-remote" * 100
        reg.attach_artifact(
            "income", version=version, artifact="tflite-int8", path=_file(tmp_path, payload)
        )
        folder = reg.load_artifact("income", "tflite-int8", version=version)
        assert folder.is_relative_to(tmp_path / "cache")
        assert (folder / "model.tflite").read_bytes() == payload
        assert reg.load_artifact("income", "tflite-int8", version=version) == folder
        assert reg.collect_garbage(older_than=0.0) == []
