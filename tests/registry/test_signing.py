"""Signed versions: signed at registration, checked at promote, deploy and load, on SQLite
and PostgreSQL (keys made with cryptography; no model is trained)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import delete, update

from mooring.config import MooringConfig
from mooring.errors import (
    ChecksFailedError,
    ConfigError,
    IntegrityError,
    MissingExtraError,
    UsageError,
)
from mooring.formats._version_record import VersionRecord
from mooring.registry import Registry, _signing
from mooring.registry._judged import register_judged
from mooring.registry._manifest import build_manifest
from mooring.registry._signing import SIGNATURE_ARTIFACT, Signatures
from mooring.registry._sql.tables import version_artifacts, versions
from mooring.serving._sources import RegistrySource
from tests._support.artifacts import BLESSED, LINEAGE, make_model_dir, tamper
from tests._support.audit import chain_problems, run_sql, state_messages

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


def _pem_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


class Authority:
    """A certificate authority made with cryptography: a root, or an intermediate that
    ``parent`` issued; ``issue`` makes a signing certificate and its key as PEM files."""

    def __init__(self, folder: Path, name: str, parent: Authority | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        by = parent or self
        self.cert = by.certificate(self.subject, self.key.public_key(), ca=True)
        self.pem = folder / f"{name}.crt"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def certificate(
        self,
        subject: x509.Name,
        public: ec.EllipticCurvePublicKey,
        *,
        ca: bool,
        start: datetime = datetime(2000, 1, 1, tzinfo=UTC),
        end: datetime = datetime(2100, 1, 1, tzinfo=UTC),
    ) -> x509.Certificate:
        """A certificate this authority signs: a CA's, or one that may only sign."""
        off = dict.fromkeys(
            ["content_commitment", "key_encipherment", "data_encipherment", "key_agreement"],
            False,
        )
        usage = x509.KeyUsage(
            digital_signature=not ca,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
            **off,
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        name: str,
        start: datetime = datetime(2020, 1, 1, tzinfo=UTC),
        end: datetime = datetime(2090, 1, 1, tzinfo=UTC),
    ) -> Signer:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = self.certificate(subject, key.public_key(), ca=False, start=start, end=end)
        return Signer(self.folder, name, key, cert)


class Signer:
    """A signing key and the certificate issued for it, as PEM files."""

    def __init__(
        self, folder: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
    ) -> None:
        self.key = _pem_key(key, folder / f"{name}.pem")
        self.cert = folder / f"{name}.crt"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        self.subject = f"CN={name}"


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Authority, Authority, Signer]:
    """A root, an intermediate it issued, and a signing certificate from the intermediate."""
    root = Authority(tmp_path / "pki", "Mooring Root")
    intermediate = Authority(tmp_path / "pki", "Mooring Models CA", parent=root)
    return root, intermediate, intermediate.issue("ci-signer")


def _certified(signer: Signer, root: Authority, chain: Authority, **more: Any) -> Signatures:
    return Signatures(
        signing_key=signer.key,
        signing_certificate=signer.cert,
        certificate_chain=(chain.pem,),
        trusted_roots=(root.pem,),
        **more,
    )


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


def test_a_signature_removed_or_replaced_by_sql_is_named_by_audit_verify(
    registry: Registry, db_url: str, tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    key, _ = keys
    registry.signatures = Signatures(signing_key=key.private)
    first, second = _register(registry, tmp_path, 0), _register(registry, tmp_path, 1)
    [signed] = registry.version_artifacts(NAME, version=first)
    [other] = registry.version_artifacts(NAME, version=second)
    attached = {e.version: e.seq for e in registry.history(NAME) if e.action == "attach"}
    assert registry.verify_audit().ok
    row = (version_artifacts.c.model_name == NAME, version_artifacts.c.version == first)

    # Replaced by another version's bundle: the digest the chain holds is not the row's.
    swap = {
        "artifact_key": other.artifact_key,
        "manifest_sha256": other.manifest_sha256,
        "manifest": json.dumps(other.manifest),
    }
    run_sql(db_url, update(version_artifacts).where(*row).values(**swap))
    report = registry.verify_audit()
    assert chain_problems(report) == [] and not report.ok
    replaced = state_messages(report)
    assert [m.split(" in table")[0] for m in replaced] == [
        f"model '{NAME}': version {first}'s signature (attached artifact 'signature')'s "
        f"{field} is {value}" for field, value in (
            ("manifest_sha256", f"{other.manifest_sha256[:12]}…"),
            ("artifact_key", other.artifact_key),
        )
    ]  # fmt: skip
    assert (
        f"but event {attached[first]} (attach) recorded {signed.manifest_sha256[:12]}…"
        in (replaced[0])
    )

    # Deleted: the version reads as unsigned, and verify says which and what is missing.
    run_sql(db_url, delete(version_artifacts).where(*row))
    assert registry.signatures.state(registry, registry.get(NAME, version=first)).state == (
        "unsigned"
    )
    [missing] = state_messages(registry.verify_audit())
    assert missing == (
        f"model '{NAME}': version {first}'s signature (attached artifact 'signature') is "
        f"missing from table version_artifacts, but event {attached[first]} (attach) recorded "
        f"sha256 {signed.manifest_sha256[:12]}… of its manifest and no event removed it: it "
        "was deleted outside the registry (the version now reads as unsigned); restore the "
        "row from a backup of the database, or sign the version again (`mooring models sign "
        f"{NAME} {first} --replace -r REASON`), which audits it"
    )
    # Signing it again through the registry is an event: the state is explained again.
    registry.signatures.sign_existing(registry, NAME, first, actor="ana", reason="re-signed")
    assert registry.verify_audit().ok
    # A version deleted through the registry takes its signature with it, explained.
    registry.archive(NAME, version=second)
    registry.delete(NAME, version=second)
    assert registry.verify_audit().ok


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
        with pytest.raises(MissingExtraError, match=r"pip install 'mooring-ml\[signing\]'$"):
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


def test_a_certificate_signed_version_verifies_at_promote_deploy_and_load(
    registry: Registry, tmp_path: Path, pki: tuple[Authority, Authority, Signer]
) -> None:
    root, intermediate, signer = pki
    registry.signatures = _certified(signer, root, intermediate, required=True)
    first, second = _register(registry, tmp_path, 0), _register(registry, tmp_path, 1)

    # The certificate's subject and fingerprint are recorded beside the key's, and audited.
    [attached] = registry.version_artifacts(NAME, version=first)
    assert attached.details["cert_subject"] == "CN=ci-signer"
    assert attached.details["cert_sha256"] == signer.fingerprint
    [event, _] = [e for e in registry.history(NAME) if e.action == "attach"]
    assert f"signed with certificate 'CN=ci-signer' sha256:{signer.fingerprint}" in (
        event.reason or ""
    )
    state = registry.signatures.state(registry, registry.get(NAME, version=first))
    assert (state.state, state.subject, state.certificate) == (
        "verified",
        "CN=ci-signer",
        signer.fingerprint,
    )
    assert "chains to a trusted root" in state.detail
    registry.promote(NAME, version=first, reason="signed")
    registry.deploy(NAME, production=first, canary=second, weight=10, reason="signed canary")
    assert RegistrySource(registry, NAME).fetch(second).is_dir()

    # Verifying needs only the roots: no key, no certificate of the signer's.
    registry.signatures = Signatures(trusted_roots=(root.pem,), required=True)
    assert RegistrySource(registry, NAME).fetch(first).is_dir()


def test_a_certificate_from_a_root_not_trusted_is_refused_with_require_signatures(
    registry: Registry, tmp_path: Path, pki: tuple[Authority, Authority, Signer]
) -> None:
    root, intermediate, signer = pki
    registry.signatures = _certified(signer, root, intermediate)
    version = _register(registry, tmp_path)

    other = Authority(tmp_path / "pki", "Someone Else's Root")
    registry.signatures = Signatures(trusted_roots=(other.pem,), required=True)
    not_trusted = (
        r"signed by certificate 'CN=ci-signer' \(sha256:[0-9a-f]{16}\), whose chain \(issued "
        r"by 'CN=Mooring Models CA'\) does not lead to a trusted root \(.*Someone Else's Root"
    )
    with pytest.raises(ChecksFailedError, match=not_trusted):
        registry.promote(NAME, version=version)
    with pytest.raises(ChecksFailedError, match=r"add its root certificate \(PEM\) to \[regi"):
        registry.deploy(NAME, production=version)
    with pytest.raises(ChecksFailedError, match=r"refusing to load it: signed by certificate"):
        RegistrySource(registry, NAME).fetch(version)
    registry.signatures = Signatures(required=True)  # no root at all
    state = registry.signatures.state(registry, registry.get(NAME, version=version))
    assert (state.state, state.certificate) == ("untrusted", signer.fingerprint)
    assert state.detail.endswith("and [registry] trusted_roots is empty (no CA is trusted)")


def test_a_byte_changed_after_certificate_signing_is_refused(
    registry: Registry, tmp_path: Path, pki: tuple[Authority, Authority, Signer]
) -> None:
    root, intermediate, signer = pki
    registry.signatures = _certified(signer, root, intermediate)
    version = _register(registry, tmp_path)
    tamper(registry, NAME, version, "variables/variables.index")

    changed = r"certificate 'CN=ci-signer' .*\(changed since signing: variables/variables\.index"
    with pytest.raises(IntegrityError, match=rf"refusing to promote it: .*{changed}"):
        registry.promote(NAME, version=version, force=True, reason="force is not enough")
    with pytest.raises(IntegrityError, match=r"refusing to deploy it: its signature by certif"):
        registry.deploy(NAME, production=version, force=True, reason="nor here")
    state = registry.signatures.state(registry, registry.get(NAME, version=version))
    assert (state.state, state.changed) == ("invalid", ("variables/variables.index",))


def test_key_and_certificate_signed_versions_verify_side_by_side(
    registry: Registry,
    tmp_path: Path,
    keys: tuple[Key, Key],
    pki: tuple[Authority, Authority, Signer],
) -> None:
    """A migration from a key to certificates: old versions keep the key's signature (its
    public key in trusted_keys) until they are signed again with the certificate."""
    key, _ = keys
    root, intermediate, signer = pki
    registry.signatures = Signatures(signing_key=key.private, required=True)
    keyed = _register(registry, tmp_path, 0)

    registry.signatures = _certified(
        signer, root, intermediate, trusted_keys=(key.public,), required=True
    )
    certified = _register(registry, tmp_path, 1)
    states = [
        registry.signatures.state(registry, registry.get(NAME, version=v))
        for v in (keyed, certified)
    ]
    assert [(s.state, s.key, s.certificate) for s in states] == [
        ("verified", key.fingerprint, None),
        ("verified", states[1].key, signer.fingerprint),
    ]
    registry.deploy(NAME, production=keyed, canary=certified, weight=50, reason="both")

    # The key retired: its version is signed again with the certificate first.
    resigned = registry.signatures.sign_existing(
        registry, NAME, keyed, actor="ana", reason="moving to certificates", replace=True
    )
    assert (resigned.state, resigned.subject) == ("verified", "CN=ci-signer")
    registry.signatures = Signatures(trusted_roots=(root.pem,), required=True)
    assert RegistrySource(registry, NAME).fetch(keyed).is_dir()


def test_a_certificate_expired_when_the_signature_was_recorded_is_untrusted(
    registry: Registry,
    tmp_path: Path,
    pki: tuple[Authority, Authority, Signer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, intermediate, _ = pki
    old = intermediate.issue(
        "ci-2020", datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)
    )
    registry.signatures = _certified(old, root, intermediate, required=True)
    with pytest.raises(UsageError, match=r"signing_certificate = .*ci-2020\.crt' \(CN=ci-2020\) "):
        _register(registry, tmp_path)  # refused before anything is stored
    assert registry.models() == []

    class In2020(datetime):  # a clock gone wrong on the machine that signs
        @classmethod
        def now(cls, tz: Any = None) -> In2020:
            return cls(2020, 6, 1, tzinfo=tz)

    monkeypatch.setattr(_signing, "datetime", In2020)
    version = _register(registry, tmp_path, 1)  # recorded by the registry at today's time
    monkeypatch.undo()
    expired = (
        r"which is valid from 2020-01-01 00:00 UTC to 2021-01-01 00:00 UTC, not when the "
        r"signature was recorded \(\d{4}-.*\): it had expired or was not yet valid"
    )
    state = registry.signatures.state(registry, registry.get(NAME, version=version))
    assert state.state == "untrusted"
    assert re.search(expired, state.detail), state.detail
    with pytest.raises(ChecksFailedError, match=expired):
        registry.promote(NAME, version=version)

    # A certificate issued for another key does not sign either.
    stranger = intermediate.issue("stranger")
    registry.signatures = Signatures(
        signing_key=_certified(old, root, intermediate).signing_key,
        signing_certificate=stranger.cert,
        trusted_roots=(root.pem,),
    )
    with pytest.raises(UsageError, match=r"was not issued for signing_key = '.*ci-2020\.pem'"):
        registry.signatures.check_key()


def test_a_signing_certificate_needs_its_key_and_paths_are_read_from_the_files_folder(
    tmp_path: Path,
) -> None:
    project = {"project": {"name": "m"}, "data": {"train": "t.csv"}}
    with pytest.raises(ConfigError, match=r"signing_certificate = 'ci\.crt' needs signing_key"):
        MooringConfig.from_mapping(
            {**project, "registry": {"signing_certificate": "ci.crt"}}, root=tmp_path
        )
    cfg = MooringConfig.from_mapping(
        {
            **project,
            "registry": {
                "signing_key": "pki/ci.pem",
                "signing_certificate": "pki/ci.crt",
                "certificate_chain": ["pki/models-ca.crt"],
                "trusted_roots": ["pki/root.crt", "/etc/pki/root.crt"],
            },
        },
        root=tmp_path,
    )
    policy = Signatures.from_config(cfg)
    assert policy.signing_certificate == tmp_path.resolve() / "pki" / "ci.crt"
    assert policy.certificate_chain == (tmp_path.resolve() / "pki" / "models-ca.crt",)
    root = tmp_path.resolve() / "pki" / "root.crt"
    assert policy.trusted_roots == (root, Path("/etc/pki/root.crt"))
