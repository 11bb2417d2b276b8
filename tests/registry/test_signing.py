"""Signed versions: signed at registration, checked at promote, deploy and load, on SQLite
and PostgreSQL (keys made with cryptography; no model is trained)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import update

from mooring.config import MooringConfig
from mooring.errors import ChecksFailedError, IntegrityError, MissingExtraError, UsageError
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry
from mooring.registry._judged import register_judged
from mooring.registry._manifest import build_manifest
from mooring.registry._signing import SIGNATURE_ARTIFACT, Signatures
from mooring.registry._sql.tables import versions
from mooring.serving._sources import RegistrySource
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir, tamper
from tests._support.audit import run_sql

NAME = "income"


class Key:
    """An elliptic-curve key pair written as PEM files, and its fingerprint."""

    def __init__(self, folder: Path, name: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        self.private = folder / f"{name}.pem"
        self.public = folder / f"{name}.pub"
        folder.mkdir(parents=True, exist_ok=True)
        self.private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public.write_bytes(pem)
        self.fingerprint = hashlib.sha256(pem).hexdigest()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Key, Key]:
    return Key(tmp_path / "keys", "old"), Key(tmp_path / "keys", "new")


def _register(reg: Registry, tmp_path: Path, seed: int = 0) -> int:
    folder = make_model_dir(tmp_path / "src", seed)
    record = VersionRecord(lineage=LINEAGE, gate=BLESSED)
    return register_judged(reg, NAME, folder, record).version


def test_a_signed_version_verifies_at_promote_deploy_and_load(
    registry: Registry, tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    key, _ = keys
    registry.signatures = Signatures(signing_key=key.private, required=True)
    first, second = _register(registry, tmp_path, 0), _register(registry, tmp_path, 1)

    # Signed beside the version: its manifest, hashes and files are those of the folder.
    mv = registry.get(NAME, version=first)
    assert mv.manifest_sha256 == build_manifest(tmp_path / "src" / "model-0").sha256
    [attached] = registry.version_artifacts(NAME, version=first)
    assert attached.artifact == SIGNATURE_ARTIFACT
    assert attached.details["key_sha256"] == key.fingerprint
    # The key's fingerprint is in the audit event of the signature, in the hash chain.
    events = [e for e in registry.history(NAME) if e.action == "attach"]
    assert [e.version for e in events] == [first, second]
    assert f"signed with key sha256:{key.fingerprint}" in (events[0].reason or "")
    assert registry.verify_audit().ok

    state = registry.signatures.state(registry, mv)
    assert (state.state, state.key, state.changed) == ("verified", key.fingerprint, ())
    registry.promote(NAME, version=first, reason="signed")
    registry.deploy(NAME, production=first, canary=second, weight=10, reason="signed canary")
    assert RegistrySource(registry, NAME).fetch(second).is_dir()


def test_a_byte_changed_after_signing_is_refused_even_without_require_signatures(
    registry: Registry, tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    key, _ = keys
    registry.signatures = Signatures(signing_key=key.private)
    version = _register(registry, tmp_path)
    tamper(registry, NAME, version, "variables/variables.index")

    with pytest.raises(IntegrityError, match=r"income@1: refusing to promote it: .*changed since "):
        registry.promote(NAME, version=version, force=True, reason="force is not enough")
    with pytest.raises(IntegrityError, match=r"changed since signing: variables/variables\.index"):
        registry.deploy(NAME, production=version, force=True, reason="nor here")
    state = registry.signatures.state(registry, registry.get(NAME, version=version))
    assert (state.state, state.changed) == ("invalid", ("variables/variables.index",))

    # A file gone and one added are named as well.
    stored = registry.artifacts.local_path(registry.get(NAME, version=version).artifact_key)
    (stored / "mooring.json").unlink()
    (stored / "assets" / "extra.txt").write_text("added")
    state = registry.signatures.state(registry, registry.get(NAME, version=version))
    assert state.changed == ("assets/extra.txt", "mooring.json", "variables/variables.index")


def test_files_and_their_recorded_manifest_edited_together_are_refused_at_load(
    registry: Registry, db_url: str, tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    """Someone with write access to the store and the database: the manifest check passes,
    the signature (which covers both) names what changed."""
    key, _ = keys
    registry.signatures = Signatures(signing_key=key.private)
    version = _register(registry, tmp_path)
    tamper(registry, NAME, version, "saved_model.pb")
    stored = registry.artifacts.local_path(registry.get(NAME, version=version).artifact_key)
    forged = build_manifest(stored)
    run_sql(
        db_url,
        update(versions)
        .where(versions.c.version == version)
        .values(manifest=json.dumps(forged.to_dict()), manifest_sha256=forged.sha256),
    )
    registry.verify(NAME, version=version)  # the files match the edited manifest

    # Where the server loads a version: refused, with the reason it logs.
    with pytest.raises(IntegrityError, match=r"refusing to load it: .*saved_model\.pb") as caught:
        RegistrySource(registry, NAME).fetch(version)
    assert "the manifest recorded in the registry" in str(caught.value)


def test_another_keys_signature_is_refused_with_require_signatures(
    registry: Registry, tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    theirs, ours = keys
    registry.signatures = Signatures(signing_key=theirs.private)
    version = _register(registry, tmp_path)

    registry.signatures = Signatures(signing_key=ours.private, required=True)
    unknown = rf"signed by key sha256:{theirs.fingerprint[:16]}, which is not a trusted key"
    with pytest.raises(ChecksFailedError, match=unknown):
        registry.promote(NAME, version=version)
    with pytest.raises(ChecksFailedError, match=r"add its public key \(PEM\) to \[registry\]"):
        registry.deploy(NAME, production=version)
    with pytest.raises(ChecksFailedError, match=r"refusing to load it: signed by key"):
        RegistrySource(registry, NAME).fetch(version)
    # Without the requirement a key nobody trusts proves nothing, and refuses nothing.
    registry.signatures = Signatures(signing_key=ours.private)
    state = registry.signatures.state(registry, registry.get(NAME, version=version))
    assert (state.state, state.key) == ("untrusted", theirs.fingerprint)
    registry.promote(NAME, version=version)


def test_an_unsigned_version_is_refused_with_require_signatures(
    registry: Registry, tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    key, _ = keys
    version = _register(registry, tmp_path)  # no signing key: unsigned, as before
    assert registry.version_artifacts(NAME, version=version) == []

    registry.signatures = Signatures(trusted_keys=(key.public,), required=True)
    with pytest.raises(ChecksFailedError, match=r"income@1: refusing to promote it: it has no"):
        registry.promote(NAME, version=version, force=True, reason="force does not sign it")
    with pytest.raises(ChecksFailedError, match=r"require_signatures = true; sign it"):
        registry.deploy(NAME, production=version)
    with pytest.raises(ChecksFailedError, match=r"refusing to load it: it has no signature"):
        RegistrySource(registry, NAME).fetch(version)

    # Signed afterwards (its files checked against its manifest first): accepted.
    registry.signatures = Signatures(signing_key=key.private, required=True)
    signed = registry.signatures.sign_existing(
        registry, NAME, version, actor="ana", reason="signing came later"
    )
    assert signed.state == "verified"
    registry.promote(NAME, version=version)
    # Without the requirement, an unsigned version passes as it always did.
    registry.signatures = Signatures()
    registry.deploy(NAME, production=_register(registry, tmp_path, 1))


def test_rotation_keeps_old_versions_valid_while_the_old_key_is_trusted(
    registry: Registry, tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    old, new = keys
    registry.signatures = Signatures(signing_key=old.private, required=True)
    before = _register(registry, tmp_path, 0)

    registry.signatures = Signatures(
        signing_key=new.private, trusted_keys=(old.public,), required=True
    )
    after = _register(registry, tmp_path, 1)
    [signature] = registry.version_artifacts(NAME, version=after)
    assert signature.details["key_sha256"] == new.fingerprint
    registry.promote(NAME, version=before)
    registry.deploy(NAME, production=before, canary=after, weight=50)

    # The old key retired from trusted_keys: its versions stop passing.
    registry.signatures = Signatures(signing_key=new.private, required=True)
    with pytest.raises(ChecksFailedError, match=rf"sha256:{old.fingerprint[:16]}, which is not"):
        RegistrySource(registry, NAME).fetch(before)
    assert RegistrySource(registry, NAME).fetch(after).is_dir()


def test_the_config_paths_are_read_from_the_files_folder(tmp_path: Path) -> None:
    cfg = MooringConfig.from_mapping(
        {
            "project": {"name": "m"},
            "data": {"train": "t.csv"},
            "registry": {
                "signing_key": "keys/new.pem",
                "trusted_keys": ["keys/old.pub", "/abs/old.pub"],
                "require_signatures": True,
            },
        },
        root=tmp_path,
    )
    policy = Signatures.from_config(cfg)
    assert policy.signing_key == tmp_path.resolve() / "keys" / "new.pem"
    assert policy.trusted_keys == (tmp_path.resolve() / "keys" / "old.pub", Path("/abs/old.pub"))
    assert policy.required


def test_a_key_that_cannot_sign_stops_the_registration_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with Registry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "art") as reg:
        reg.signatures = Signatures(signing_key=bad)
        with pytest.raises(UsageError, match=r"signing_key = '.*bad\.pem' is not an unencrypted"):
            _register(reg, tmp_path)
        assert reg.models() == []


def test_without_the_extra_signing_says_which_to_install(
    tmp_path: Path, keys: tuple[Key, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in [m for m in sys.modules if m.split(".")[0] == "model_signing"] or [
        "model_signing"
    ]:
        monkeypatch.setitem(sys.modules, module, None)
    with Registry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "art") as reg:
        reg.signatures = Signatures(signing_key=keys[0].private)
        with pytest.raises(MissingExtraError, match=r"pip install 'mooring\[signing\]'$"):
            _register(reg, tmp_path)


def test_a_version_in_an_object_store_is_signed_and_checked(
    tmp_path: Path, s3_options: dict[str, Any], keys: tuple[Key, Key]
) -> None:
    import s3fs

    bucket = f"mooring-{tmp_path.name.lower().replace('_', '-')[:40]}"
    s3fs.S3FileSystem(**s3_options).mkdir(bucket)
    with Registry.open(
        f"sqlite:///{tmp_path / 'registry.db'}",
        artifacts=f"s3://{bucket}/registry",
        storage_options=s3_options,
        cache_dir=tmp_path / "cache",
    ) as reg:
        reg.signatures = Signatures(signing_key=keys[0].private, required=True)
        version = _register(reg, tmp_path)
        assert not reg.artifacts.is_local
        reg.promote(NAME, version=version)
        folder = RegistrySource(reg, NAME).fetch(version)
        assert folder.is_relative_to(tmp_path / "cache")
        reg.signatures = Signatures(signing_key=keys[1].private, required=True)
        with pytest.raises(ChecksFailedError, match=r"refusing to load it: signed by key"):
            RegistrySource(reg, NAME).fetch(version)


def test_an_attachment_named_signature_that_mooring_did_not_write_is_no_signature(
    registry: Registry, tmp_path: Path
) -> None:
    version = _register(registry, tmp_path)
    other = tmp_path / "notes" / "signature.txt"
    other.parent.mkdir()
    other.write_text("signed off by the review board")
    registry.attach_artifact(NAME, version=version, artifact=SIGNATURE_ARTIFACT, path=other)
    state = registry.signatures.state(registry, registry.get(NAME, version=version))
    assert (state.state, state.detail) == (
        "unsigned",
        "its attachment 'signature' is not a signature",
    )
    assert RegistrySource(registry, NAME).fetch(version).is_dir()  # loads as before


def test_a_signing_that_fails_after_the_commit_says_the_version_is_unsigned(
    tmp_path: Path, keys: tuple[Key, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Signatures, "_attach", full_disk)
    with Registry.open(f"sqlite:///{tmp_path / 'r.db'}", artifacts=tmp_path / "art") as reg:
        reg.signatures = Signatures(signing_key=keys[0].private)
        with pytest.raises(
            ChecksFailedError,
            match=r"income@1 was registered but not signed \(OSError: .*No space left.*\); "
            r"once that is fixed, sign it with `mooring models sign income 1`",
        ):
            _register(reg, tmp_path)
        assert reg.signatures.state(reg, reg.get(NAME, version=1)).state == "unsigned"
