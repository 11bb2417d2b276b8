"""The ``Store`` interface: everything the registry keeps in its database.

Each mutating method is one atomic transaction that also appends its audit
event, and checks its preconditions (blessed, in production, exists) inside
that transaction, so concurrent writers cannot slip between check and change.
All methods are keyword-only. :class:`~mooring.registry._sql.store.SqlStore` is the
implementation for SQLite and PostgreSQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mooring.registry._records import (
    AuditEvent,
    AuditReport,
    Deployment,
    ModelSummary,
    ModelVersion,
    VersionArtifact,
)

__all__ = ["CardRenderer", "NewArtifact", "NewVersion", "Store"]


class CardRenderer(Protocol):
    """Renders a version's Markdown model card from what its registration records.

    The registry renders nothing itself: :meth:`~mooring.registry.Registry.register`
    calls the renderer its caller passes, once the version number and time are known.
    ``mooring.dashboard._card.render_model_card`` is the one mooring ships. A version
    whose run records an operating threshold is also given ``threshold`` and
    ``threshold_source`` (a renderer written without them still renders the others).
    """

    def __call__(  # noqa: PLR0913 - one keyword per part of the card
        self,
        *,
        name: str,
        version: int,
        created_at: str,
        created_by: str,
        lineage: Mapping[str, Any],
        metrics: Mapping[str, Any] | None,
        gate: Mapping[str, Any] | None,
        statistics: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: Sequence[str] | None = None,
        parent_version: int | None = None,
        threshold: float | None = None,
        threshold_source: str | None = None,
    ) -> str:
        """The card's Markdown."""
        ...


@dataclass(frozen=True)
class NewVersion:
    """Everything about a version except its number, which the store assigns.

    ``render_card(version, created_at)`` produces the model card once the number is known
    (an empty string when the registration passed no :class:`CardRenderer`).
    """

    name: str
    artifact_key: str
    manifest: dict[str, Any]
    manifest_sha256: str
    file_count: int
    size_bytes: int
    blessed: bool
    parent_version: int | None
    description: str | None
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    gate: dict[str, Any] | None
    params: dict[str, Any]
    run_record: dict[str, Any]
    statistics: dict[str, Any] | None
    created_by: str
    render_card: Callable[[int, str], str]


@dataclass(frozen=True)
class NewArtifact:
    """An uploaded file set to attach to an existing version under the name ``artifact``."""

    name: str
    version: int
    artifact: str
    artifact_key: str
    manifest: dict[str, Any]
    manifest_sha256: str
    size_bytes: int
    details: dict[str, Any]
    created_by: str


class Store(ABC):
    """Persistent state of the registry: versions, aliases, deployments, audit log."""

    #: The database URL with any password masked (safe for logs and errors).
    url: str

    @abstractmethod
    def add_version(self, *, new: NewVersion, reason: str | None) -> ModelVersion:
        """Give ``new`` the next number of its model and store it (with its audit event)."""

    @abstractmethod
    def get_version(self, *, name: str, version: int, heavy: bool = True) -> ModelVersion:
        """One version; ``heavy`` also loads manifest, statistics and model card."""

    @abstractmethod
    def resolve_alias(self, *, name: str, alias: str) -> int:
        """The version an alias points at (``latest``: newest version not archived)."""

    @abstractmethod
    def list_models(self) -> list[ModelSummary]:
        """Every model with its latest version and deployment."""

    @abstractmethod
    def list_versions(self, *, name: str) -> list[ModelVersion]:
        """Every version of one model, oldest first (light records)."""

    @abstractmethod
    def set_alias(
        self, *, name: str, alias: str, version: int, actor: str, reason: str | None
    ) -> None:
        """Point ``alias`` at ``version`` (creating or moving it)."""

    @abstractmethod
    def remove_alias(self, *, name: str, alias: str, actor: str, reason: str | None) -> None:
        """Delete an alias."""

    @abstractmethod
    def get_deployment(self, *, name: str) -> Deployment:
        """The deployment record of a model (empty when never deployed)."""

    @abstractmethod
    def deploy(
        self,
        *,
        name: str,
        production: int | None,
        canary: int | None,
        weight: int,
        actor: str,
        reason: str | None,
        force: bool,
        action: str = "deploy",
        forced: bool = False,
    ) -> Deployment:
        """Replace the deployment record; refuse unblessed or archived versions unless forced.

        ``forced`` records the event as forced whatever this check finds (the caller
        already needed ``force``, e.g. for an artifact that fails verification).
        """

    @abstractmethod
    def set_shadow(
        self, *, name: str, version: int | None, rate: float, actor: str, reason: str | None
    ) -> Deployment:
        """Set the shadow version and its rate (``None``: clear it); a new revision, audited."""

    @abstractmethod
    def rollback(self, *, name: str, actor: str, reason: str | None) -> Deployment:
        """Restore the previous production version and clear the canary."""

    @abstractmethod
    def demote(
        self, *, name: str, version: int, to: int | None, archive: bool, actor: str, reason: str
    ) -> Deployment:
        """Take production ``version`` out of service: ``to`` serves instead, else the
        newest earlier production version still ready, else nothing; with ``archive`` the
        version is archived in the same write (:mod:`mooring.registry._sql.demote`)."""

    @abstractmethod
    def set_status(
        self, *, name: str, version: int, status: str, actor: str, reason: str | None
    ) -> ModelVersion:
        """Archive (``archived``) or restore (``ready``) a version."""

    @abstractmethod
    def delete_version(self, *, name: str, version: int, actor: str, reason: str | None) -> str:
        """Delete a version and its aliases; return its artifact key for removal."""

    @abstractmethod
    def add_artifact(
        self, *, new: NewArtifact, reason: str | None, replace: bool
    ) -> tuple[VersionArtifact, str | None]:
        """Attach ``new`` to its version (with its audit event).

        An artifact of the same name is refused unless ``replace``; the replaced
        one's artifact key is returned for removal.
        """

    @abstractmethod
    def list_artifacts(self, *, name: str, version: int) -> list[VersionArtifact]:
        """The artifacts attached to one version, by name."""

    @abstractmethod
    def audit_events(
        self, *, name: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        """Audit events, oldest first (the last ``limit`` when given)."""

    @abstractmethod
    def verify_audit(
        self, *, expect_head: tuple[int, str] | None = None, require_key: bool = False
    ) -> AuditReport:
        """Check the audit log's hash chain (and that ``expect_head`` is still in it), then
        that the versions, deployments and aliases are what its events explain, from one
        snapshot; ``require_key``: refuse (UsageError, saying how to provide it) without
        the key."""

    @abstractmethod
    def audit_head(self) -> tuple[int, str]:
        """The chain's head: the last event's sequence number and hash (IntegrityError
        when its row is missing)."""

    @abstractmethod
    def seal_audit(self, *, actor: str, reason: str | None) -> AuditReport:
        """Append a keyed event (creating the key file if needed): it binds the plain
        sha256 events written before the registry had a key."""

    @abstractmethod
    def record_event(
        self,
        *,
        action: str,
        model: str,
        actor: str,
        reason: str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        version: int | None = None,
    ) -> None:
        """Append an event about a model that changes none of its versions (a change of
        its data contract; an approval of ``version``), in the audit chain like every other."""

    @abstractmethod
    def artifact_keys(self) -> set[str]:
        """Artifact keys referenced by any version or attached artifact."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
