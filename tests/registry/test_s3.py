"""The object-store path: artifacts in S3 (moto's server on 127.0.0.1) through fsspec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mooring.errors import IntegrityError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir


@pytest.fixture
def s3_registry(tmp_path: Path, s3_options: dict[str, Any]) -> Registry:
    import s3fs

    fs = s3fs.S3FileSystem(**s3_options)
    bucket = f"mooring-{tmp_path.name.lower().replace('_', '-')[:40]}"
    fs.mkdir(bucket)
    return Registry.open(
        f"sqlite:///{tmp_path / 'registry.db'}",
        artifacts=f"s3://{bucket}/registry",
        storage_options=s3_options,
        cache_dir=tmp_path / "cache",
    )


def test_register_and_load_through_s3(s3_registry: Registry, tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path / "src", 5)
    mv = register_judged(
        s3_registry,
        name="income",
        artifact_dir=folder,
        record=VersionRecord(lineage=LINEAGE, gate=BLESSED),
    )
    assert not s3_registry.artifacts.is_local
    assert mv.artifact_key.startswith("models/income/")
    s3_registry.verify("income", version=1)
    path = s3_registry.load("income", version=1)
    assert path.is_relative_to(tmp_path / "cache")
    for rel in ("saved_model.pb", "variables/variables.index", "mooring.json"):
        assert (path / rel).read_bytes() == (folder / rel).read_bytes()
    assert (path / "assets").is_dir()  # empty folders survive the object store
    assert s3_registry.load("income", version=1) == path  # cached copy, verified again


def test_tampered_object_refuses_to_load(s3_registry: Registry, tmp_path: Path) -> None:
    register_judged(
        s3_registry,
        name="income",
        artifact_dir=make_model_dir(tmp_path / "src", 6),
        record=VersionRecord(lineage=LINEAGE),
    )
    key = s3_registry.get("income", version=1).artifact_key
    fs = s3_registry.artifacts.fs
    fs.pipe(s3_registry.artifacts.path(f"{key}/saved_model.pb"), b"tampered")
    with pytest.raises(IntegrityError, match=r"changed: saved_model\.pb"):
        s3_registry.verify("income", version=1)
    with pytest.raises(IntegrityError, match=r"changed: saved_model\.pb"):
        s3_registry.load("income", version=1)


def test_garbage_collection_on_s3(s3_registry: Registry, tmp_path: Path) -> None:
    register_judged(
        s3_registry,
        name="income",
        artifact_dir=make_model_dir(tmp_path / "src", 7),
        record=VersionRecord(lineage=LINEAGE),
    )
    fs = s3_registry.artifacts.fs
    fs.pipe(s3_registry.artifacts.path("models/income/orphan/saved_model.pb"), b"partial")
    assert s3_registry.collect_garbage(older_than=0) == ["models/income/orphan"]
    s3_registry.load("income", version=1)
