"""Signed versions: who produced a version, proved with the OpenSSF ``model-signing`` library.

With ``[registry] signing_key`` set, every version registered or imported is signed with
that elliptic-curve private key; with ``signing_certificate`` too, with that key's X.509
certificate (and ``certificate_chain``'s intermediates), which the bundle carries. The
signature covers the version's files *and* the manifest mooring recorded for it (its
canonical JSON), so editing the files, or editing the files and the recorded manifest
together, both break it. The signature bundle (a
Sigstore bundle, ``model.sig``) is stored as the version's attached artifact
``signature``: it travels with the version and changes none of its hashes. The
attachment's audit event records the key's fingerprint (and the certificate's subject
and fingerprint).

A signature is checked at promote, deploy and every load (a server's included). A key's
against the trusted keys: ``[registry] trusted_keys`` plus the signing key's own public
key. A certificate's against ``[registry] trusted_roots``: its chain must lead to one of
them, every certificate valid when the registry recorded the signature. Both kinds verify
side by side (a migration from keys to certificates). A trusted signature that no longer
matches is always refused (tampering); an unsigned version, or one whose signer is not
trusted, is refused only with ``[registry] require_signatures = true``.

Examples:
    >>> policy = Signatures.from_config(load_config("mooring.toml"))  # doctest: +SKIP
    >>> policy.state(registry, registry.get("income", version=3)).state  # doctest: +SKIP
    'verified'
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mooring.errors import (
    ChecksFailedError,
    ConflictError,
    IntegrityError,
    MooringError,
    UsageError,
    import_extra,
)
from mooring.registry._local import artifact_folder, version_folder, version_manifest
from mooring.registry._manifest import canonical_json
from mooring.registry._provenance import default_actor
from mooring.registry._records import ModelVersion, VersionArtifact

if TYPE_CHECKING:
    from mooring.config import MooringConfig
    from mooring.registry._registry import Registry

__all__ = [
    "BUNDLE_FILE",
    "SIGNATURE_ARTIFACT",
    "SignatureState",
    "Signatures",
    "certificate_fingerprint",
    "key_fingerprint",
]

#: The attached artifact holding a version's signature bundle, and the bundle's file name.
SIGNATURE_ARTIFACT = "signature"
BUNDLE_FILE = "model.sig"
#: Inside the folder that is signed: the version's files, and mooring's manifest of them.
_FILES = "model"
_MANIFEST = "mooring-manifest.json"
#: Recorded in the attachment's details: what wrote the bundle.
_LIBRARY = "model-signing"

State = Literal["unsigned", "verified", "untrusted", "invalid"]


def _short(fingerprint: str | None) -> str:
    return "unknown key" if not fingerprint else f"key sha256:{fingerprint[:16]}"


def _short_cert(subject: str, fingerprint: str) -> str:
    return f"certificate '{subject}' (sha256:{fingerprint[:16]})"


@dataclass(frozen=True)
class SignatureState:
    """What a version's signature says, and on what evidence.

    ``state``: ``unsigned`` (no signature), ``verified`` (a trusted key's signature that
    matches the stored files and manifest), ``untrusted`` (signed by a key that is not
    trusted: not checked), ``invalid`` (a trusted key's signature that does not match, or
    an unreadable one). ``key`` is the signing key's fingerprint (sha256 of its public
    key, PEM); for a certificate's signature, ``certificate`` is the certificate's
    fingerprint (sha256 of its DER) and ``subject`` its subject (RFC 4514); ``changed`` the
    files that differ from what was signed.
    """

    ref: str
    state: State
    detail: str
    key: str | None = None
    certificate: str | None = None
    subject: str | None = None
    signed_at: str | None = None
    signed_by: str | None = None
    changed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        data = asdict(self)
        data["changed"] = list(self.changed)
        return data


def _crypto() -> Any:
    """cryptography's key serialization (installed with the ``signing`` extra)."""
    import_extra(
        "model_signing", extra="signing", needed_for="signed versions ([registry] signing_key)"
    )
    from cryptography.hazmat.primitives import serialization

    return serialization


def _public_pem(key: Any) -> bytes:
    serialization = _crypto()
    pem: bytes = key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return pem


def _x509() -> Any:
    """cryptography's X.509 module (installed with the ``signing`` extra)."""
    _crypto()
    from cryptography import x509

    return x509


def certificate_fingerprint(cert: Any) -> str:
    """sha256 hex of a certificate's DER encoding (what ``openssl x509 -fingerprint
    -sha256`` prints, without the colons)."""
    from cryptography.hazmat.primitives import hashes

    return bytes(cert.fingerprint(hashes.SHA256())).hex()


def _subject(cert: Any) -> str:
    return str(cert.subject.rfc4514_string()) or "(no subject)"


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _recorded_at(text: str) -> datetime:
    """The time the registry recorded (ISO 8601; UTC when it names no zone)."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def key_fingerprint(public_pem: bytes) -> str:
    """sha256 hex of a public key's PEM (SubjectPublicKeyInfo): the key hint the
    ``model-signing`` library writes into every bundle it signs with that key."""
    return hashlib.sha256(public_pem).hexdigest()


def _hashing() -> Any:
    """How the signed folder is hashed: per file, sha256, every file (git's too), and the
    links the signed folder is made of followed."""
    hashing = import_extra("model_signing.hashing", extra="signing", needed_for="signed versions")
    return (
        hashing.Config()
        .set_ignored_paths(paths=[], ignore_git_paths=False)
        .set_allow_symlinks(True)
    )


def _signed_folder(
    root: Path, source: Path, files: Iterable[str], manifest: Mapping[str, Any]
) -> Path:
    """The folder that is signed and verified: ``model/`` links to each file of
    ``source``, ``mooring-manifest.json`` the version's manifest (canonical JSON)."""
    view = root / "signed"
    (view / _FILES).mkdir(parents=True)
    base = source.resolve()
    for rel in files:
        target = view / _FILES / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(base / rel, target)
        except OSError:  # no symlinks here (some Windows accounts): a copy hashes the same
            shutil.copyfile(base / rel, target)
    (view / _MANIFEST).write_text(canonical_json(dict(manifest)), encoding="utf-8")
    return view


def _present(folder: Path) -> list[str]:
    """Relative POSIX paths of the files under ``folder`` (what is there, not what should be)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


_HASH_MISMATCH = re.compile(r"Hash mismatch for '([^']+)'")
_LISTED = re.compile(r"(?:Extra files found|Missing files) in model '[^']*': ([^\"\]]+)")


def _changed_files(message: str) -> tuple[str, ...]:
    """The files the library's mismatch message names, as paths in the version."""
    found = _HASH_MISMATCH.findall(message)
    for listed in _LISTED.findall(message):
        found.extend(part.strip().strip("'") for part in listed.split(","))
    named = []
    for item in found:
        if item == _MANIFEST:
            named.append("(the manifest recorded in the registry)")
        elif item.startswith(f"{_FILES}/"):
            named.append(item[len(_FILES) + 1 :])
    return tuple(sorted(set(named)))


def _may_sign(cert: Any) -> bool:
    """Whether a certificate allows signing: KeyUsage digitalSignature or ExtendedKeyUsage
    codeSigning (the rule model-signing's verifier applies)."""
    x509 = _x509()
    try:
        if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bool(x509.oid.ExtendedKeyUsageOID.CODE_SIGNING in usage)


@dataclass(frozen=True)
class _Signer:
    """Who made a signature, as its bundle says, and why it is or is not trusted."""

    named: str  # "key sha256:…" or "certificate 'CN=…' (sha256:…)"
    key: str
    certificate: str | None = None
    subject: str | None = None
    public_pem: bytes | None = None  # the trusted public key a key's signature is checked with
    trusted_as: str = ""
    distrust: str | None = None  # why it is not trusted (None: trusted)


@dataclass(frozen=True)
class Signatures:
    """The ``[registry]`` signing settings: the key (and certificate) versions are signed
    with, the keys and root CAs whose signatures are accepted, and whether a version must
    carry one.

    Every setting is off by default: nothing is signed, and only a signature that a
    trusted key made and that no longer matches is refused.

    Examples:
        >>> Signatures().required
        False
    """

    signing_key: Path | None = None
    trusted_keys: tuple[Path, ...] = ()
    required: bool = False
    signing_certificate: Path | None = None
    certificate_chain: tuple[Path, ...] = ()
    trusted_roots: tuple[Path, ...] = ()

    @classmethod
    def from_config(cls, cfg: MooringConfig) -> Signatures:
        """The settings of a project file, paths read from the file's folder."""
        section = cfg.registry
        return cls(
            signing_key=None if section.signing_key is None else cfg.path(str(section.signing_key)),
            trusted_keys=tuple(cfg.path(str(p)) for p in section.trusted_keys),
            required=section.require_signatures,
            signing_certificate=None
            if section.signing_certificate is None
            else cfg.path(str(section.signing_certificate)),
            certificate_chain=tuple(cfg.path(str(p)) for p in section.certificate_chain),
            trusted_roots=tuple(cfg.path(str(p)) for p in section.trusted_roots),
        )

    # -- keys ------------------------------------------------------------------------
    def _signing_public(self) -> bytes | None:
        """The signing key's public key (PEM), the key checked loadable; None when unset."""
        if self.signing_key is None:
            return None
        serialization = _crypto()
        path = self.signing_key
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise UsageError(
                f"[registry] signing_key = '{path}' cannot be read ({exc.strerror or exc}); "
                "point it at an elliptic-curve private key (PEM), or remove the key to "
                "register unsigned versions"
            ) from None
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"[registry] signing_key = '{path}' is not an unencrypted PEM private key "
                f"({exc}); create one with `openssl ecparam -name prime256v1 -genkey -noout "
                "-out signing.pem` (or decrypt it with `openssl ec -in KEY -out signing.pem`)"
            ) from None
        curve = getattr(getattr(key, "curve", None), "name", None)
        if curve not in ("secp256r1", "secp384r1", "secp521r1"):
            raise UsageError(
                f"[registry] signing_key = '{path}' is a {curve or type(key).__name__} key; "
                "model signing takes an elliptic-curve key on P-256, P-384 or P-521 (e.g. "
                "`openssl ecparam -name prime256v1 -genkey -noout -out signing.pem`)"
            )
        return _public_pem(key.public_key())

    def trusted(self) -> dict[str, bytes]:
        """Fingerprint → public key (PEM) of every key whose signatures are accepted."""
        keys: dict[str, bytes] = {}
        own = self._signing_public()
        if own is not None:
            keys[key_fingerprint(own)] = own
        if not self.trusted_keys:
            return keys
        serialization = _crypto()
        for path in self.trusted_keys:
            try:
                public = serialization.load_pem_public_key(path.read_bytes())
            except OSError as exc:
                raise UsageError(
                    f"[registry] trusted_keys entry '{path}' cannot be read "
                    f"({exc.strerror or exc}); fix the path or remove the entry"
                ) from None
            except (TypeError, ValueError) as exc:
                raise UsageError(
                    f"[registry] trusted_keys entry '{path}' is not a PEM public key ({exc}); "
                    "export one from its private key with `openssl ec -in KEY -pubout -out "
                    "KEY.pub`"
                ) from None
            pem = _public_pem(public)
            keys[key_fingerprint(pem)] = pem
        return keys

    def check_key(self) -> None:
        """Fail before anything is stored when the signing key (or certificate) cannot sign."""
        own = self._signing_public()
        if own is not None:
            self._signing_cert(own)

    # -- certificates ------------------------------------------------------------------
    def _certificates(self, key: str, path: Path) -> list[Any]:
        """The PEM certificates in ``path``; a UsageError naming the ``[registry]`` key."""
        x509 = _x509()
        try:
            certs: list[Any] = x509.load_pem_x509_certificates(path.read_bytes())
        except OSError as exc:
            raise UsageError(
                f"[registry] {key} '{path}' cannot be read ({exc.strerror or exc}); fix the "
                "path or remove it"
            ) from None
        except ValueError as exc:
            raise UsageError(
                f"[registry] {key} '{path}' holds no PEM certificate ({exc}); point it at a "
                "file that begins with -----BEGIN CERTIFICATE-----"
            ) from None
        return certs

    def _signing_cert(self, own: bytes) -> Any:
        """The signing certificate, checked to sign now (None without one): it is the
        signing key's, valid today, allowed to sign, and its chain loads."""
        if self.signing_certificate is None:
            return None
        path = self.signing_certificate
        cert = self._certificates("signing_certificate =", path)[0]
        named = f"[registry] signing_certificate = '{path}' ({_subject(cert)})"
        if _public_pem(cert.public_key()) != own:
            raise UsageError(
                f"{named} was not issued for signing_key = '{self.signing_key}' (their public "
                "keys differ); point signing_certificate at the key's certificate, or "
                "signing_key at the certificate's key"
            )
        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise UsageError(
                f"{named} is valid from {_day(cert.not_valid_before_utc)} to "
                f"{_day(cert.not_valid_after_utc)}, not now; versions signed with it would be "
                "untrusted: have a current certificate issued for the key"
            )
        if not _may_sign(cert):
            raise UsageError(
                f"{named} does not allow signing (neither KeyUsage digitalSignature nor "
                "ExtendedKeyUsage codeSigning); have one issued with digitalSignature"
            )
        for chained in self.certificate_chain:
            self._certificates("certificate_chain entry", chained)
        return cert

    def _roots(self) -> list[Any]:
        """The trusted root certificates of ``[registry] trusted_roots``."""
        roots: list[Any] = []
        for path in self.trusted_roots:
            roots.extend(self._certificates("trusted_roots entry", path))
        return roots

    # -- signing -----------------------------------------------------------------------
    def sign(self, registry: Registry, mv: ModelVersion, source: Path) -> ModelVersion:
        """Sign a just-registered version with the signing key (nothing without one) and
        attach the bundle; ``source`` is the folder it was registered from (signed when
        the store is remote; a local store's own copy is signed otherwise)."""
        if self.signing_key is None:
            return mv
        folder = (
            registry.artifacts.local_path(mv.artifact_key)
            if registry.artifacts.is_local
            else source
        )
        try:
            self._attach(registry, mv, folder, actor=mv.created_by, reason=None, replace=False)
        except Exception as exc:
            said = str(exc) if isinstance(exc, MooringError) else f"{type(exc).__name__}: {exc}"
            raise ChecksFailedError(
                f"{mv.ref} was registered but not signed ({said}); once that is fixed, sign "
                f"it with `mooring models sign {mv.name} {mv.version}`"
            ) from exc
        return mv

    def sign_existing(
        self,
        registry: Registry,
        name: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
        replace: bool = False,
    ) -> SignatureState:
        """Sign a version registered before signing was set up (or, with ``replace``,
        sign it again with the current key), once its stored files still match the
        manifest recorded at registration. Audited as ``attach``.

        Example::

            Signatures.from_config(cfg).sign_existing(registry, "income", 3, actor="ana",
                                                      reason="signing predates the key")
        """
        if self.signing_key is None:
            raise UsageError(
                f"signing {name}@{version} needs a key: set [registry] signing_key to an "
                "elliptic-curve private key (PEM) in mooring.toml (and signing_certificate "
                "to its certificate to sign with the certificate)"
            )
        mv = registry.get(name, version=version)
        current = self.state(registry, mv)
        if current.state == "invalid":
            raise IntegrityError(
                f"{mv.ref} will not be signed again: {current.detail}; signing it would vouch "
                "for files changed since they were signed: restore them from a backup or "
                "register the model again"
            )
        if current.state != "unsigned" and not replace:
            raise ConflictError(
                f"{mv.ref} is already signed ({current.state}: {current.detail}); pass "
                "replace=True (CLI: --replace) to sign it again with the current key"
            )
        folder = version_folder(registry.artifacts, registry.cache_dir, mv, version_manifest(mv))
        who = actor or default_actor()
        self._attach(registry, mv, folder, actor=who, reason=reason, replace=replace)
        return self.state(registry, mv, folder)

    def _attach(
        self,
        registry: Registry,
        mv: ModelVersion,
        folder: Path,
        *,
        actor: str,
        reason: str | None,
        replace: bool,
    ) -> None:
        """Sign ``folder`` (``mv``'s files) and ``mv``'s manifest; attach the bundle, the
        key's fingerprint in its audit event."""
        own = self._signing_public()
        if own is None or self.signing_key is None:
            return
        signing = import_extra(
            "model_signing.signing", extra="signing", needed_for="[registry] signing_key"
        )
        manifest = version_manifest(mv)
        fingerprint = key_fingerprint(own)
        details = {"key_sha256": fingerprint, "library": _LIBRARY}
        said = f"signed with key sha256:{fingerprint} (model files and manifest)"
        cert = self._signing_cert(own)
        if cert is not None:
            details["cert_sha256"] = certificate_fingerprint(cert)
            details["cert_subject"] = _subject(cert)
            said = (
                f"signed with certificate '{details['cert_subject']}' "
                f"sha256:{details['cert_sha256']}, key sha256:{fingerprint} "
                "(model files and manifest)"
            )
        with tempfile.TemporaryDirectory(prefix="mooring-sign-") as tmp:
            view = _signed_folder(Path(tmp), folder, sorted(manifest.files), manifest.to_dict())
            bundle = Path(tmp) / "bundle" / BUNDLE_FILE
            bundle.parent.mkdir()
            config = signing.Config()
            if self.signing_certificate is None:
                config.use_elliptic_key_signer(private_key=self.signing_key)
            else:
                # model-signing 1.1 cannot read an empty chain: the certificate itself stands
                # in (verification skips it, it is the chain's first certificate already).
                config.use_certificate_signer(
                    private_key=self.signing_key,
                    signing_certificate=self.signing_certificate,
                    certificate_chain=list(self.certificate_chain) or [self.signing_certificate],
                )
            config.set_hashing_config(_hashing()).sign(view, bundle)
            registry.attach_artifact(
                mv.name,
                version=mv.version,
                artifact=SIGNATURE_ARTIFACT,
                path=bundle,
                details=details,
                actor=actor,
                reason=said if not reason else f"{reason} [{said}]",
                replace=replace,
            )

    # -- verifying ---------------------------------------------------------------------
    def state(
        self, registry: Registry, mv: ModelVersion, folder: Path | None = None
    ) -> SignatureState:
        """What ``mv``'s signature says about the files in ``folder`` (default: the
        stored copy; on a remote store, the verified download)."""
        found = {
            a.artifact: a for a in registry.store.list_artifacts(name=mv.name, version=mv.version)
        }
        item = found.get(SIGNATURE_ARTIFACT)
        if item is None:
            return SignatureState(mv.ref, "unsigned", "no signature is attached")
        if item.details.get("library") != _LIBRARY:  # an attachment of that name from elsewhere
            return SignatureState(
                mv.ref, "unsigned", f"its attachment '{SIGNATURE_ARTIFACT}' is not a signature"
            )
        return self._checked(registry, mv, item, folder)

    def _checked(
        self, registry: Registry, mv: ModelVersion, item: VersionArtifact, folder: Path | None
    ) -> SignatureState:
        at, by = item.created_at, item.created_by
        try:
            bundle = artifact_folder(registry.artifacts, registry.cache_dir, item) / BUNDLE_FILE
            material = json.loads(bundle.read_text(encoding="utf-8"))["verificationMaterial"]
            if "x509CertificateChain" in material:
                signer = self._certificate_signer(material["x509CertificateChain"], at)
            else:
                signer = self._key_signer(str(material["publicKey"]["hint"]))
        except (IntegrityError, OSError, ValueError, KeyError, TypeError) as exc:
            return SignatureState(
                mv.ref,
                "invalid",
                f"its signature bundle cannot be read ({exc})",
                signed_at=at,
                signed_by=by,
            )

        def said(state: State, detail: str, changed: tuple[str, ...] = ()) -> SignatureState:
            return SignatureState(
                mv.ref,
                state,
                detail,
                key=signer.key,
                certificate=signer.certificate,
                subject=signer.subject,
                signed_at=at,
                signed_by=by,
                changed=changed,
            )

        if signer.distrust is not None:
            return said("untrusted", signer.distrust)
        verifying = import_extra(
            "model_signing.verifying", extra="signing", needed_for=f"checking {mv.ref}'s signature"
        )
        if folder is None:
            folder = (
                registry.artifacts.local_path(mv.artifact_key)
                if registry.artifacts.is_local
                else version_folder(
                    registry.artifacts, registry.cache_dir, mv, version_manifest(mv)
                )
            )
        manifest = version_manifest(mv).to_dict()
        with tempfile.TemporaryDirectory(prefix="mooring-verify-") as tmp:
            view = _signed_folder(Path(tmp), folder, _present(folder), manifest)
            config = verifying.Config()
            if signer.public_pem is not None:
                public = Path(tmp) / "key.pub"
                public.write_bytes(signer.public_pem)
                config.use_elliptic_key_verifier(public_key=public)
            else:
                config.use_certificate_verifier(certificate_chain=list(self.trusted_roots))
            try:
                config.set_hashing_config(_hashing()).verify(view, bundle)
            except Exception as exc:  # ValueError, or cryptography's InvalidSignature
                changed = _changed_files(str(exc))
                what = (
                    f"changed since signing: {', '.join(changed)}"
                    if changed
                    else f"the signature itself does not verify ({type(exc).__name__}: {exc})"
                )
                return said(
                    "invalid", f"its signature by {signer.named} does not match ({what})", changed
                )
        return said(
            "verified",
            f"signed by {signer.named} ({signer.trusted_as}) and every file and the manifest match",
        )

    def _key_signer(self, key: str) -> _Signer:
        """Who signed with a bare key (its fingerprint, the bundle's hint), and whether
        that key is trusted."""
        trusted = self.trusted()
        if key in trusted:
            return _Signer(_short(key), key, public_pem=trusted[key], trusted_as="trusted")
        return _Signer(
            _short(key),
            key,
            distrust=f"signed by {_short(key)}, which is not a trusted key (trusted: "
            + (", ".join(_short(k) for k in trusted) or "none")
            + ")",
        )

    def _certificate_signer(self, chain: Mapping[str, Any], recorded: str) -> _Signer:
        """Who signed with the bundle's certificate chain, and whether it is trusted: the
        chain leads to one of ``trusted_roots``, every certificate in it valid when the
        registry recorded the signature (no timestamp authority vouches for a time), and the
        certificate may sign."""
        x509 = _x509()
        ders = [base64.b64decode(c["rawBytes"]) for c in chain["certificates"]]
        leaf = x509.load_der_x509_certificate(ders[0])
        given = [x509.load_der_x509_certificate(d) for d in dict.fromkeys(ders[1:]) if d != ders[0]]
        subject, fingerprint = _subject(leaf), certificate_fingerprint(leaf)
        named = _short_cert(subject, fingerprint)
        key = key_fingerprint(_public_pem(leaf.public_key()))

        def distrusted(why: str) -> _Signer:
            return _Signer(named, key, fingerprint, subject, distrust=f"signed by {named}, {why}")

        roots = self._roots()
        if not roots:
            return distrusted("and [registry] trusted_roots is empty (no CA is trusted)")
        when = _recorded_at(recorded)
        for cert in [leaf, *given]:
            if when > cert.not_valid_after_utc or when < cert.not_valid_before_utc:
                whose = "which" if cert is leaf else f"whose chain's '{_subject(cert)}'"
                return distrusted(
                    f"{whose} is valid from {_day(cert.not_valid_before_utc)} to "
                    f"{_day(cert.not_valid_after_utc)}, not when the signature was recorded "
                    f"({_day(when)}): it had expired or was not yet valid"
                )
        crypto = import_extra("OpenSSL.crypto", extra="signing", needed_for="certificate chains")
        store = crypto.X509Store()
        for root in roots:
            store.add_cert(crypto.X509.from_cryptography(root))
        store.set_time(when)
        context = crypto.X509StoreContext(
            store,
            crypto.X509.from_cryptography(leaf),
            [crypto.X509.from_cryptography(c) for c in given],
        )
        try:
            context.verify_certificate()
        except crypto.X509StoreContextError as exc:
            trusted = ", ".join(f"'{_subject(r)}'" for r in roots)
            return distrusted(
                f"whose chain (issued by '{leaf.issuer.rfc4514_string()}') does not lead to a "
                f"trusted root ({exc}; trusted_roots: {trusted})"
            )
        if not _may_sign(leaf):
            return distrusted(
                "which does not allow signing (neither KeyUsage digitalSignature nor "
                "ExtendedKeyUsage codeSigning)"
            )
        return _Signer(named, key, fingerprint, subject, trusted_as="chains to a trusted root")

    def refusal(self, found: SignatureState, action: str) -> Exception | None:
        """The error that refuses to ``action`` a version in ``found``'s state (None: allowed)."""
        if found.state == "invalid":
            return IntegrityError(
                f"{found.ref}: refusing to {action} it: {found.detail}; the version was "
                "modified after it was signed: restore its files (and its registry row) from a "
                "backup, or register the model again; --force does not override a signature"
            )
        if not self.required or found.state == "verified":
            return None
        if found.state == "unsigned":
            return ChecksFailedError(
                f"{found.ref}: refusing to {action} it: it has no signature and [registry] "
                "require_signatures = true; sign it (`mooring models sign "
                f"{found.ref.replace('@', ' ')}` with [registry] signing_key set) or register "
                "the model again with signing_key set"
            )
        if found.certificate is not None:
            return ChecksFailedError(
                f"{found.ref}: refusing to {action} it: {found.detail} and [registry] "
                "require_signatures = true; if you trust the CA that issued it, add its root "
                "certificate (PEM) to [registry] trusted_roots, else sign the version again "
                "with a current certificate from a trusted CA (`mooring models sign "
                f"{found.ref.replace('@', ' ')} --replace`)"
            )
        return ChecksFailedError(
            f"{found.ref}: refusing to {action} it: {found.detail} and [registry] "
            "require_signatures = true; if you trust that key, add its public key (PEM) to "
            "[registry] trusted_keys (keep an old key there after a rotation), else sign the "
            "version again with a trusted key"
        )

    def check(self, registry: Registry, name: str, versions: Iterable[int], action: str) -> None:
        """Refuse to ``action`` (promote, deploy) any of ``versions`` whose signature fails."""
        for version in versions:
            mv = registry.get(name, version=version)
            refused = self.refusal(self.state(registry, mv), action)
            if refused is not None:
                raise refused

    def loaded(self, registry: Registry, mv: ModelVersion, folder: Path) -> Path:
        """``folder`` (``mv``'s verified files) once its signature passes; else the refusal."""
        refused = self.refusal(self.state(registry, mv, folder), "load")
        if refused is not None:
            raise refused
        return folder
