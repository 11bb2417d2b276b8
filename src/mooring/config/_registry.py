"""``[registry]``: who may put a version in production, and what proves where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from mooring.config._base import Section


class WebhookConfig(Section):
    """``[[registry.webhooks]]``: one HTTP receiver of the registry's audit events.

    Examples:
        >>> WebhookConfig(url="https://hooks.example.com/mooring", secret_env="HOOK_KEY").url
        'https://hooks.example.com/mooring'
    """

    url: str = Field(description="http:// or https:// URL each event is POSTed to.")
    secret_env: str = Field(
        min_length=1,
        description="Environment variable holding the shared secret the events are signed "
        "with (HMAC-SHA256); the secret itself never goes in mooring.toml.",
    )
    timeout_s: float = Field(5.0, gt=0.0, description="Longest wait for one delivery.")
    max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="Deliveries tried per event by `mooring audit deliver`, with exponential "
        "backoff, before that run leaves the event (and the ones after it) for the next run.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http:// or https:// URL such as 'https://host/hook'")
        return value


class RegistryConfig(Section):
    """``[registry]``: signatures and release rules. Every key is off by default.

    Examples:
        >>> RegistryConfig(production_requires="approval", approvers=["ana"]).approvers
        ['ana']
    """

    signing_key: Path | None = Field(
        None,
        description="Private key (PEM, elliptic curve) every registered or imported version "
        "is signed with; relative to mooring.toml. Unset: versions are not signed.",
    )
    trusted_keys: list[Path] = Field(
        default_factory=list,
        description="Public keys (PEM) whose signatures are accepted; the signing key's own "
        "public key is always trusted. Keep an old key here while rotating.",
    )
    signing_certificate: Path | None = Field(
        None,
        description="Certificate (PEM) of signing_key: versions are then signed with the "
        "certificate, verified against trusted_roots; relative to mooring.toml. Needs "
        "signing_key.",
    )
    certificate_chain: list[Path] = Field(
        default_factory=list,
        description="Intermediate CA certificates (PEM) sent with each signature, between "
        "signing_certificate and a trusted root. Needs signing_certificate.",
    )
    trusted_roots: list[Path] = Field(
        default_factory=list,
        description="Root CA certificates (PEM): a version signed with a certificate that "
        "chains to one of them, valid when the signature was recorded, is trusted.",
    )
    require_signatures: bool = Field(
        False,
        description="Refuse to promote, deploy or serve a version that is unsigned or signed "
        "by a key or certificate that is not trusted (a trusted signature that no longer "
        "matches is refused either way).",
    )
    production_requires: Literal["nothing", "approval"] = Field(
        "nothing",
        description='"approval": a version reaches production only once an actor other than '
        "the one who registered it has approved it (mooring models approve).",
    )
    approvers: list[str] = Field(
        default_factory=list,
        description="Actors who may approve a release and move protected aliases; empty: any "
        "actor other than the version's registrant.",
    )
    protected_aliases: list[str] = Field(
        default_factory=list,
        description="Aliases only approvers may set, move or remove; 'production' here: "
        "only approvers change the production version (rollbacks too). Needs approvers.",
    )
    webhooks: list[WebhookConfig] = Field(
        default_factory=list,
        description="Receivers of every audit event as a signed CloudEvent "
        "([[registry.webhooks]]).",
    )

    @model_validator(mode="after")
    def _certificate_needs_its_key(self) -> RegistryConfig:
        if self.signing_certificate is not None and self.signing_key is None:
            raise ValueError(
                f"signing_certificate = '{self.signing_certificate}' needs signing_key, the "
                "private key (PEM) the certificate was issued for; add signing_key = "
                "'KEY.pem' or drop signing_certificate"
            )
        if self.certificate_chain and self.signing_certificate is None:
            raise ValueError(
                f"certificate_chain = {[str(p) for p in self.certificate_chain]} is sent "
                "with a certificate's signatures and needs signing_certificate; add "
                "signing_certificate = 'CERT.pem' or drop certificate_chain"
            )
        return self

    @model_validator(mode="after")
    def _protected_needs_approvers(self) -> RegistryConfig:
        if self.protected_aliases and not self.approvers:
            raise ValueError(
                f"protected_aliases = {self.protected_aliases} needs approvers: only they may "
                "move a protected alias; add approvers = ['NAME', ...] or drop the aliases"
            )
        return self
