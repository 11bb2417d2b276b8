"""The registry: immutable model versions, aliases, deployments and their audit log.

``Registry`` joins the database (:class:`~mooring.registry._store.Store`) and the
artifact store (:class:`~mooring.registry._artifacts.ArtifactStore`):

* ``register`` hashes the model folder, uploads it to a fresh location, checks
  the upload against the hashes, and only then commits the version row. A crash
  at any point leaves either a complete, verified version or nothing visible
  (unreferenced files are removed by :meth:`Registry.collect_garbage`).
* ``load`` returns a local folder only after every file matched its sha256;
  a changed, missing or extra file raises :class:`IntegrityError` naming it.

Examples:
    >>> reg = Registry.open("sqlite:///.mooring/registry.db")  # doctest: +SKIP
    >>> mv = reg.register("income", export_dir, VersionRecord(lineage=lineage),
    ...                   render_card=render_model_card)  # doctest: +SKIP
    >>> reg.promote("income", version=mv.version, reason="beats v2 on AUC")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mooring.errors import MooringError, NotFoundError, UsageError
from mooring.formats._gate import DecisionRecord
from mooring.formats._lineage import Lineage
from mooring.formats._model import read_metadata
from mooring.formats._version_record import RunRecord, VersionRecord
from mooring.registry._approval import Approvals, ReleaseRules
from mooring.registry._artifacts import ArtifactStore
from mooring.registry._attachments import Attachments
from mooring.registry._audit import AuditKey, key_file
from mooring.registry._audit_trail import AuditTrail
from mooring.registry._clients import Door, door_of
from mooring.registry._local import (
    check_version_files,
    version_folder,
    version_manifest,
)
from mooring.registry._manifest import build_manifest
from mooring.registry._names import check_alias, check_model_name, check_version
from mooring.registry._policy import check_artifacts, check_inputs
from mooring.registry._provenance import (
    default_actor,
    plain_json,
    stamped_lineage,
    warn_on_other_versions,
)
from mooring.registry._records import (
    Deployment,
    ModelSummary,
    ModelVersion,
)
from mooring.registry._rolled_back import check_not_rolled_back
from mooring.registry._signing import Signatures
from mooring.registry._sql.deploy import check_shadow_rate
from mooring.registry._sql.engine import default_artifacts
from mooring.registry._sql.store import SqlStore
from mooring.registry._store import CardRenderer, NewVersion, Store
from mooring.registry._webhooks import deliver_after_writes

if TYPE_CHECKING:
    from mooring.config import MooringConfig

__all__ = ["STAGING_GRACE_S", "Registry", "default_actor"]

#: How long an unreferenced upload is left alone: a registration may still be writing it.
STAGING_GRACE_S = 3600.0


class Registry(Attachments, AuditTrail, Approvals):
    """Model versions with lineage, aliases, deployments and a tamper-evident audit log."""

    signatures: Signatures = Signatures()  # [registry] signing keys (from_config sets them)

    def __init__(self, store: Store, artifacts: ArtifactStore, *, cache_dir: Path) -> None:
        self.store = store
        self.artifacts = artifacts
        self.cache_dir = cache_dir

    # -- opening -----------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str,
        *,
        artifacts: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        audit_key: bytes | None = None,
        audit_key_file: str | os.PathLike[str] | None = None,
        create: bool = True,
    ) -> Registry:
        """Open (and migrate) the registry at a SQLAlchemy ``url``.

        ``artifacts`` is a folder or fsspec URL; by default ``artifacts/`` next to a
        SQLite database (required for PostgreSQL). ``storage_options`` go to fsspec
        (e.g. ``{"client_kwargs": {"endpoint_url": ...}}`` for S3). ``cache_dir``
        holds verified downloads from remote stores. The audit chain is an HMAC chain
        keyed by ``audit_key``, else ``MOORING_AUDIT_KEY``, else ``audit_key_file`` (both
        64 hex digits, the same text; the file is created, mode 0600, by the first write
        to a log that is not keyed yet); with
        none of them events are chained with plain sha256 and a keyed log refuses writes
        (:class:`~mooring.registry._audit.AuditKey`).

        ``create=False`` (a server, a dashboard): a SQLite registry that does not exist yet
        is not created, nor its artifacts folder; it lists no model, and is read once the
        first `mooring run` has created it.
        """
        if artifacts is None:
            artifacts = default_artifacts(url)
        key_at = None if audit_key_file is None else Path(audit_key_file)
        store = SqlStore(url, audit_key=AuditKey(given=audit_key, path=key_at), create=create)
        art = ArtifactStore(
            os.fspath(artifacts), storage_options=storage_options, create=store.exists
        )
        if cache_dir is None:
            cache = (
                (Path(art.root).parent / "cache")
                if art.is_local
                else (Path(tempfile.gettempdir()) / "mooring-artifact-cache")
            )
        else:
            cache = Path(cache_dir)
        registry = cls(store, art, cache_dir=cache)
        if store.exists:
            with contextlib.suppress(OSError):  # uploads of killed registrations, an hour on
                registry.collect_garbage(older_than=STAGING_GRACE_S, staging_only=True)
        return registry

    @classmethod
    def from_config(
        cls,
        cfg: MooringConfig,
        *,
        storage_options: Mapping[str, Any] | None = None,
        create: bool = True,
    ) -> Registry:
        """Open the registry a project file names (defaults under ``[project] home``);
        ``create`` as in :meth:`open`."""
        home = cfg.home
        url = cfg.project.registry or f"sqlite:///{home / 'registry.db'}"
        artifacts = cfg.project.artifacts
        if artifacts is None:
            artifacts = str(home / "artifacts")
        elif "://" not in artifacts:
            artifacts = str(cfg.path(artifacts))
        registry = cls.open(
            url,
            artifacts=artifacts,
            storage_options=storage_options,
            cache_dir=home / "cache",
            audit_key_file=key_file(cfg),
            create=create,
        )
        registry.release = ReleaseRules.from_config(cfg.registry, cfg.rollout.steps[0])
        deliver_after_writes(registry, cfg)  # [[registry.webhooks]]: each event, signed
        registry.signatures = Signatures.from_config(cfg)
        return registry

    def close(self) -> None:
        """Release database connections."""
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- register ----------------------------------------------------------------
    def register(
        self,
        name: str,
        artifact_dir: str | os.PathLike[str],
        record: VersionRecord,
        *,
        reason: str | None = None,
        render_card: CardRenderer | None = None,
        created_by: str | None = None,
    ) -> ModelVersion:
        """Store ``artifact_dir`` as the next immutable version of ``name``, described by
        ``record`` (:class:`~mooring.formats._version_record.VersionRecord`), *unevaluated*.

        A version's gate decision is computed by mooring's evaluation from data (``mooring
        run``), never passed in: a record with a ``gate`` is refused, and a version
        registered here is not blessed, so deploying it takes ``force`` and a reason (the
        audit log records both). Missing lineage entries for the mooring / TensorFlow /
        Keras versions and the statistics hash are filled in. ``render_card`` writes the
        version's model card, stored with it once; without one the version has no card
        (an empty one), and ``intended_use`` and ``limitations``, which only a card
        shows, are refused.

        Raises:
            UsageError: the record carries a gate decision.

        Example::

            reg.register("income", export_dir, VersionRecord(lineage=lineage),
                         reason="imported from the research team", render_card=render_model_card)
        """
        if record.gate is not None:
            raise UsageError(
                f"model '{name}': record.gate = {record.gate!r} is refused: a version's gate "
                "decision is computed by mooring's evaluation from data, never passed in; "
                "leave gate out to register the version unevaluated (deploying it then needs "
                "force=True and a reason), or let `mooring run` train, evaluate and register it"
            )
        return self._add(name, artifact_dir, record, reason, render_card, created_by)

    def _add(
        self,
        name: str,
        artifact_dir: str | os.PathLike[str],
        record: VersionRecord,
        reason: str | None,
        render_card: CardRenderer | None,
        created_by: str | None,
    ) -> ModelVersion:
        """Store a version: :meth:`register`, or with its evaluation's gate decision
        :func:`~mooring.registry._judged.register_judged`."""
        check_model_name(name)
        described = _described(name, record, render_card)
        folder = Path(artifact_dir)
        manifest = build_manifest(folder)
        actor = created_by or default_actor()

        def card(version: int, created_at: str) -> str:
            if render_card is None:
                return ""
            run = record.run
            # Only when recorded: a renderer written before these keywords keeps working.
            threshold: dict[str, Any] = (
                {"threshold": run.operating_threshold, "threshold_source": run.threshold_source}
                if run.operating_threshold is not None
                else {}
            )
            return render_card(
                **threshold,
                name=name,
                version=version,
                created_at=created_at,
                created_by=actor,
                lineage=described.lineage,
                metrics=described.metrics,
                gate=described.gate,
                statistics=described.statistics,
                params=described.params,
                description=record.description,
                intended_use=record.intended_use,
                limitations=record.limitations,
                parent_version=record.parent_version,
            )

        self.signatures.check_key()  # a key that cannot sign fails before anything is stored
        key = self.artifacts.upload(folder, manifest, name=name)
        try:
            mv = self.store.add_version(
                new=NewVersion(
                    name=name,
                    artifact_key=key,
                    manifest=manifest.to_dict(),
                    manifest_sha256=manifest.sha256,
                    file_count=len(manifest.files),
                    size_bytes=manifest.size_bytes,
                    blessed=bool(described.decision and described.decision.blessed),
                    parent_version=record.parent_version,
                    description=record.description,
                    lineage=described.lineage,
                    metrics=described.metrics,
                    gate=described.gate,
                    params=described.params,
                    run_record=described.run_record,
                    statistics=described.statistics,
                    created_by=actor,
                    render_card=card,
                ),
                reason=reason,
            )
        except BaseException:
            # Not committed: the upload is unreferenced and must not linger.
            self.artifacts.remove(key)
            raise
        return self.signatures.sign(self, mv, folder)

    # -- read --------------------------------------------------------------------
    def _resolve(self, name: str, version: int | None, alias: str | None) -> int:
        check_model_name(name)
        if version is not None and alias is not None:
            raise UsageError(
                f"pass either version= or alias= for model '{name}', not both "
                f"(got version={version}, alias={alias!r})"
            )
        if version is not None:
            return check_version(version)
        return self.store.resolve_alias(name=name, alias=check_alias(alias or "latest"))

    def get(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ModelVersion:
        """A version with everything it records; by number, by alias, or the latest."""
        number = self._resolve(name, version, alias)
        return self.store.get_version(name=name, version=number)

    def models(self) -> list[ModelSummary]:
        """Every model with its latest version and deployment."""
        return self.store.list_models()

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first."""
        return self.store.list_versions(name=check_model_name(name))

    def model_card(self, name: str, *, version: int | None = None, alias: str | None = None) -> str:
        """The Markdown model card of a version."""
        card = self.get(name, version=version, alias=alias).model_card
        return card or ""

    def verify(self, name: str, *, version: int | None = None, alias: str | None = None) -> None:
        """Check a stored artifact against its manifest; raise :class:`IntegrityError` if not."""
        mv = self.get(name, version=version, alias=alias)
        diff = self.artifacts.diff(mv.artifact_key, version_manifest(mv))
        check_version_files(mv, diff, "stored")

    def load(self, name: str, *, version: int | None = None, alias: str | None = None) -> Path:
        """A local folder holding the version's artifact, verified file by file.

        On a local store this is the stored folder itself; on a remote store a
        verified copy in the cache. Example::

            path = registry.load("income", alias="production")
            model = tf.saved_model.load(str(path))
        """
        return self.load_version(self.get(name, version=version, alias=alias))

    def load_version(self, mv: ModelVersion) -> Path:
        """:meth:`load` for a record already fetched with :meth:`get`."""
        manifest = version_manifest(mv)
        warn_on_other_versions(mv)
        folder = version_folder(self.artifacts, self.cache_dir, mv, manifest)
        return self.signatures.loaded(self, mv, folder)  # refuses a failing signature

    # -- aliases and deployments -------------------------------------------------
    def set_alias(
        self,
        name: str,
        alias: str,
        *,
        version: int,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Point a user-defined alias at a version (atomic; audited)."""
        check_model_name(name)
        self.check_alias_move(name, alias, actor)
        self.store.set_alias(
            name=name,
            alias=check_alias(alias, allow_reserved=False),
            version=check_version(version),
            actor=actor or default_actor(),
            reason=reason,
        )

    def remove_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str | None = None
    ) -> None:
        """Delete a user-defined alias (audited)."""
        check_model_name(name)
        self.check_alias_move(name, alias, actor)
        self.store.remove_alias(
            name=name,
            alias=check_alias(alias, allow_reserved=False),
            actor=actor or default_actor(),
            reason=reason,
        )

    def aliases(self, name: str) -> dict[str, int]:
        """Alias → version for one model (including ``production`` and ``canary``)."""
        return {a: mv.version for mv in self.versions(name) for a in mv.aliases}

    def deployment(self, name: str) -> Deployment:
        """The deployment record of a model."""
        return self.store.get_deployment(name=check_model_name(name))

    def deploy(
        self,
        name: str,
        *,
        production: int | None,
        canary: int | None = None,
        weight: int = 0,
        actor: str | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> Deployment:
        """Set what serves ``name``: production version, optional canary and its weight (0-100).

        A version newly put into production or canary must be blessed, not archived, and
        its stored artifact must verify against its manifest; a new canary (or production
        version) must answer the requests production's clients send, as the server's own
        decoder judges them (:func:`~mooring.registry._policy.check_inputs`). Each
        can be overridden with ``force=True`` and a ``reason`` (recorded in the audit log,
        with what failed).
        """
        check_model_name(name)
        production = None if production is None else check_version(production)
        canary = None if canary is None else check_version(canary)
        current = self.store.get_deployment(name=name)
        reason = self.check_release(name, production, current.production, actor, reason)
        if (
            canary is not None
            and weight >= 100
            and (canary, 100) != (current.canary, current.canary_weight)
        ):
            # A canary given every request answers as production does: the same release rule.
            reason = self.check_release(name, canary, current.production, actor, reason)
        # Below 100%, an unapproved canary serves no more than the first rollout step.
        self.check_canary_weight(
            name, canary, weight, (current.canary, current.canary_weight), actor
        )
        fresh = [
            v
            for v, now in ((production, current.production), (canary, current.canary))
            if v is not None and v != now
        ]
        self.signatures.check(self, name, fresh, "deploy")
        reason, forced = check_artifacts(partial(self.verify, name), fresh, force, reason)
        serving = production if production is not None else current.production
        fresh_canary = (
            [(canary, "canary")] if canary is not None and canary != current.canary else []
        )
        reason, mismatched = check_inputs(
            partial(self._door, name), serving, fresh_canary, force, reason
        )
        if production is not None and production != current.production:
            # Production's clients are answered by the new production version from now on.
            reason, replaced = check_inputs(
                partial(self._door, name),
                current.production,
                [(production, "production")],
                force,
                reason,
            )
            mismatched = mismatched or replaced
        return self.store.deploy(
            name=name,
            production=production,
            canary=canary,
            weight=weight,
            actor=actor or default_actor(),
            reason=reason,
            force=force,
            forced=forced or mismatched,
        )

    def _door(self, name: str, version: int) -> Door | None:
        """The door ``name@version`` would open with on a server (:func:`door_of`): its
        signature from the verified artifact's ``mooring.json``, else its run record."""
        try:
            mv = self.store.get_version(name=name, version=version, heavy=True)
        except NotFoundError:
            return None  # the store names the missing version
        try:
            folder = version_folder(self.artifacts, self.cache_dir, mv, version_manifest(mv))
            metadata = read_metadata(folder, required=False)
        except MooringError:
            metadata = {}  # refused elsewhere (check_artifacts, signatures): the record says
        return door_of(metadata, mv.record.run, mv.statistics)

    def set_shadow(
        self,
        name: str,
        *,
        version: int | None,
        rate: float = 0.1,
        actor: str | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> Deployment:
        """Mirror a share ``rate`` (0 < rate <= 1) of the requests production answers to
        ``version``, after each answer and never delaying it; ``version=None`` clears it.

        Refuses the production or canary version, an archived one, and a model without a
        production version; the version need not be blessed (it answers no client).
        The shadow stays through deploy, promote and rollback unless it becomes production
        or canary. A new revision, audited as ``shadow``. A version whose inputs differ from
        production's is refused unless ``force=True`` with a ``reason`` (every mirrored
        request would fail), as a canary is by :meth:`deploy`.
        """
        check_model_name(name)
        number = None if version is None else check_version(version)
        rate = check_shadow_rate(number, rate)
        if number is not None:
            production = self.store.get_deployment(name=name).production
            reason, _ = check_inputs(
                partial(self._door, name), production, [(number, "shadow")], force, reason
            )
        return self.store.set_shadow(
            name=name, version=number, rate=rate, actor=actor or default_actor(), reason=reason
        )

    def promote(
        self,
        name: str,
        *,
        version: int,
        actor: str | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> Deployment:
        """Make ``version`` the production version (100% of traffic).

        Refuses a version that is not blessed (a gate failed), that was rolled back
        (:func:`~mooring.registry._rolled_back.rolled_back`: by the rollout monitor or
        ``rollback``) and not deployed since, or that the server would answer production's
        clients 400 from (:func:`~mooring.registry._policy.check_inputs`, as :meth:`deploy`
        checks a canary; the canary itself was checked when it became one), unless
        ``force=True`` and a reason is given; the audit reason then says what was
        overridden. A canary is kept unless it is the
        promoted version itself.
        """
        check_model_name(name)
        check_version(version)
        current = self.store.get_deployment(name=name)
        reason = self.check_release(name, version, current.production, actor, reason)
        canary = None if current.canary == version else current.canary
        checked = [version] if version != current.production else []
        if checked:
            reason, was_rolled_back = check_not_rolled_back(
                name, version, self.history(name), force, reason
            )
        else:
            was_rolled_back = False
        self.signatures.check(self, name, checked, "promote")
        reason, forced = check_artifacts(partial(self.verify, name), checked, force, reason)
        reason, mismatched = check_inputs(
            partial(self._door, name),
            current.production,
            # The canary was judged so when it became canary (or forced, with a reason).
            [(v, "production") for v in checked if v != current.canary],
            force,
            reason,
        )
        forced = forced or was_rolled_back or mismatched
        return self.store.deploy(
            name=name,
            production=version,
            canary=canary,
            weight=current.canary_weight if canary is not None else 0,
            actor=actor or default_actor(),
            reason=reason,
            force=force,
            action="promote",
            forced=forced,
        )

    def rollback(
        self, name: str, *, actor: str | None = None, reason: str | None = None
    ) -> Deployment:
        """Restore the previous production version in one step and drop the canary."""
        self.check_alias_move(name, "production", actor)
        return self.store.rollback(
            name=check_model_name(name), actor=actor or default_actor(), reason=reason
        )

    def demote(
        self,
        name: str,
        *,
        version: int,
        reason: str | None,
        to: int | None = None,
        actor: str | None = None,
        archive: bool = False,
    ) -> Deployment:
        """Take production ``version`` out of service, for a ``reason`` (audited as ``demote``).

        ``to`` serves instead (checked as a deploy checks a new production version: ready,
        blessed, released, answering production's clients); without it the newest earlier
        production version still ready does; with neither, nothing serves the model and its
        canary is dropped. The demoted version leaves the rollback stack. With ``archive``
        it is also archived, in the same write (:mod:`mooring.registry._sql.demote`).

        Example::

            registry.demote("loans", version=1, reason="v1 reads `reject`, a leak")
        """
        check_model_name(name)
        check_version(version)
        if reason is None or not reason.strip():
            raise UsageError(
                f"taking production {name}@{version} out of service needs a reason; pass "
                "reason='…' (CLI: -r TEXT) so the audit log records why"
            )
        who = actor or default_actor()
        self.check_alias_move(name, "production", who)
        if to is not None:
            check_version(to)
            current = self.store.get_deployment(name=name)
            reason = self.check_release(name, to, current.production, who, reason) or reason
            self.signatures.check(self, name, [to], "deploy")
            check_artifacts(partial(self.verify, name), [to], False, reason)
            check_inputs(
                partial(self._door, name), current.production, [(to, "production")], False, reason
            )
        return self.store.demote(
            name=name, version=version, to=to, archive=archive, actor=who, reason=reason
        )

    def archive(
        self,
        name: str,
        *,
        version: int,
        actor: str | None = None,
        reason: str | None = None,
        to: int | None = None,
    ) -> ModelVersion:
        """Retire a version: kept and loadable, but no longer deployable or ``latest``.

        The production version is archived with a ``reason`` only: it is first demoted
        (:meth:`demote`, ``to`` or the previous production version serves instead, or
        nothing), in the same write, so no server is left pointing at an archived version.
        A canary or shadow is refused: deploy without it first.
        """
        check_model_name(name)
        check_version(version)
        if self.store.get_deployment(name=name).production == version:
            self.demote(name, version=version, reason=reason, to=to, actor=actor, archive=True)
            return self.store.get_version(name=name, version=version, heavy=False)
        if to is not None:
            raise UsageError(
                f"--to names what serves instead of production, and {name}@{version} is not "
                "production; leave --to out"
            )
        return self.store.set_status(
            name=name,
            version=version,
            status="archived",
            actor=actor or default_actor(),
            reason=reason,
        )

    def restore(
        self, name: str, *, version: int, actor: str | None = None, reason: str | None = None
    ) -> ModelVersion:
        """Undo :meth:`archive`."""
        check_model_name(name)
        return self.store.set_status(
            name=name,
            version=check_version(version),
            status="ready",
            actor=actor or default_actor(),
            reason=reason,
        )

    def delete(
        self, name: str, *, version: int, actor: str | None = None, reason: str | None = None
    ) -> None:
        """Delete a version and its aliases; refused while it is production or canary.

        Its number is never given out again.
        """
        check_model_name(name)
        attached = self.store.list_artifacts(name=name, version=check_version(version))
        key = self.store.delete_version(
            name=name, version=check_version(version), actor=actor or default_actor(), reason=reason
        )
        self.artifacts.remove(key)
        for item in attached:
            self.artifacts.remove(item.artifact_key)

    def collect_garbage(
        self, *, older_than: float = STAGING_GRACE_S, staging_only: bool = False
    ) -> list[str]:
        """Remove uploads no version references (left by crashes); return their keys.

        Only keys untouched for ``older_than`` seconds go, so a registration in progress
        is never disturbed; ``staging_only``: unfinished uploads only (as on opening).
        """
        return self.artifacts.collect(
            self.store.artifact_keys, older_than=older_than, staging_only=staging_only
        )


@dataclass(frozen=True)
class _Described:
    """A record's mappings as plain JSON, as the store keeps them."""

    lineage: dict[str, Any]
    metrics: dict[str, Any]
    gate: dict[str, Any] | None
    statistics: dict[str, Any] | None
    params: dict[str, Any]
    run_record: dict[str, Any]

    @property
    def decision(self) -> DecisionRecord | None:
        """The gate decision, typed."""
        return DecisionRecord.of(self.gate)


def _described(name: str, record: VersionRecord, render_card: CardRenderer | None) -> _Described:
    """``record`` checked and copied as JSON; raises :class:`UsageError` naming the field."""
    if not isinstance(record, VersionRecord):
        raise UsageError(
            f"model '{name}': record must be a VersionRecord, got {type(record).__name__}; "
            "pass VersionRecord(lineage=..., metrics=..., gate=...) "
            "(from mooring.formats._version_record)"
        )
    if not isinstance(record.run, RunRecord):
        raise UsageError(
            f"model '{name}': run must be a RunRecord, got {type(record.run).__name__}; "
            "wrap a stored mapping as RunRecord.read(mapping)"
        )
    if render_card is None and (record.intended_use or record.limitations):
        raise UsageError(
            f"model '{name}': intended_use and limitations are written only on the model "
            f"card; pass render_card= (e.g. mooring.dashboard._card.render_model_card)"
        )
    if record.parent_version is not None:
        check_version(record.parent_version)
    statistics = record.statistics
    decision = record.decision
    if decision is None and record.gate is not None:
        raise UsageError(f"gate must be a mapping (dict), got {type(record.gate).__name__}")
    statistics_d = plain_json(statistics, "statistics") if statistics is not None else None
    return _Described(
        lineage=stamped_lineage(
            Lineage.read(plain_json(record.lineage.to_dict(), "lineage")), statistics_d
        ).to_dict(),
        metrics=plain_json(record.metrics, "metrics"),
        gate=None if decision is None else plain_json(decision.to_dict(), "gate"),
        statistics=statistics_d,
        params=plain_json(record.params, "params"),
        run_record=plain_json(record.run.to_dict(), "run_record"),
    )
