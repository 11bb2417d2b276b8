"""The SQLAlchemy implementation of :class:`Store`, for SQLite and PostgreSQL.

Chosen by URL: ``sqlite:///path/registry.db`` (the embedded default) or
``postgresql+psycopg://user@host/db`` (teams; ``postgresql://`` also works).
Opening a store runs the Alembic migrations up to the newest revision.

Writers are serialized: on SQLite every write transaction starts with
``BEGIN IMMEDIATE`` (other writers wait up to the busy timeout instead of
failing); on PostgreSQL it locks the single audit-head row ``FOR UPDATE``.
Every write appends its audit event in the same transaction, so the state and
its history change together or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from mooring.errors import (
    ConflictError,
    MooringError,
    NoRegistryError,
    NotFoundError,
    RegistryUnavailableError,
    UsageError,
)
from mooring.registry._audit import AuditKey, writer_key
from mooring.registry._policy import check_deployable
from mooring.registry._records import (
    AuditEvent,
    AuditReport,
    Deployment,
    ModelSummary,
    ModelVersion,
    VersionArtifact,
)
from mooring.registry._sql.attached import attach, attached_keys, select_artifacts
from mooring.registry._sql.audit import (
    audit_rows,
    head_row,
    lock_head,
    require_head,
    select_events,
    verify_rows,
)
from mooring.registry._sql.demote import write_demotion
from mooring.registry._sql.deploy import deployment_row, write_deployment, write_shadow
from mooring.registry._sql.engine import connect, migrate, missing_sqlite_file, parse_url
from mooring.registry._sql.rows import (
    deployment_record,
    deployment_state,
    model_summaries,
    version_record,
)
from mooring.registry._sql.tables import (
    aliases,
    deployments,
    models,
    versions,
)
from mooring.registry._sql.tx import WriteTransaction, dumps, loads, mask_url, now
from mooring.registry._store import NewArtifact, NewVersion, Store

__all__ = ["SqlStore", "mask_url"]

_MAX_PREVIOUS = 50


class SqlStore(Store):
    """:class:`Store` on SQLite or PostgreSQL through SQLAlchemy.

    Examples:
        >>> store = SqlStore("sqlite:///.mooring/registry.db")  # doctest: +SKIP
        >>> store.list_models()  # doctest: +SKIP
        []
    """

    def __init__(self, url: str, *, audit_key: AuditKey | None = None, create: bool = True) -> None:
        """``create=False``: a SQLite file that does not exist yet is not created; reads
        raise :class:`~mooring.errors.NoRegistryError` (an empty model list) until another
        process creates it, and the first write creates it."""
        #: Called after each committed write (the audit webhooks' immediate delivery).
        self.after_write: Callable[[], None] | None = None
        self._audit_key = audit_key or AuditKey()
        self._given = url
        self._opening = threading.Lock()
        self._engine: Engine | None = None
        self._missing = None if create else missing_sqlite_file(url)
        parsed = parse_url(url)
        self.url = mask_url(parsed)
        self._password = parsed.password
        self._sqlite = parsed.get_backend_name() == "sqlite"
        if self._missing is None:
            self._open()

    @property
    def exists(self) -> bool:
        """Whether the database exists (``False`` only for a SQLite file not created yet)."""
        return self._engine is not None or self._missing is None or self._missing.is_file()

    def _open(self) -> Engine:
        with self._opening:
            if self._engine is None:
                connection = connect(self._given)
                self.url = connection.url
                engine = connection.engine
                with self._guard():
                    migrate(engine, sqlite=connection.sqlite)
                self._engine = engine
            return self._engine

    def _ready(self, *, create: bool) -> Engine:
        if self._engine is not None:
            return self._engine
        if not create and not self.exists:
            raise NoRegistryError(
                f"nothing is in the registry '{self.url}' yet: the file does not exist; "
                "`mooring run` or `mooring models import` creates it with the first version"
            )
        return self._open()

    def _message(self, exc: BaseException) -> str:
        detail = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
        first = detail[0] if detail else type(exc).__name__
        if self._password:
            first = first.replace(self._password, "***")
        return first

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except MooringError:
            raise
        except (OperationalError, DBAPIError) as exc:
            raise RegistryUnavailableError(
                f"registry database '{self.url}' cannot be used: {self._message(exc)}; check that "
                "the server is running, the URL and credentials are right, and the file is "
                "writable"
            ) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        engine = self._ready(create=False)
        with self._guard(), engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[WriteTransaction]:
        engine = self._ready(create=True)
        with self._guard(), engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                head = lock_head(conn)  # writers append one at a time
                rows = partial(audit_rows, conn)  # read only when there is no key yet
                key = writer_key(self._audit_key, head_row(conn, head.seq), rows)
                tx = WriteTransaction(conn, head.seq, head.hash, key)
                yield tx
                tx.close()
        if self.after_write is not None:
            self.after_write()

    @contextmanager
    def side_transaction(self) -> Iterator[Connection]:
        """A transaction outside the audit chain, for bookkeeping no event records (the
        webhook cursors): it neither locks the chain's head nor calls ``after_write``; on
        SQLite it waits for the writers as they do (``BEGIN IMMEDIATE``)."""
        engine = self._ready(create=True)
        with self._guard(), engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # -- rows → records ----------------------------------------------------------
    def _require_model(self, conn: Connection, name: str) -> None:
        if conn.execute(select(models.c.name).where(models.c.name == name)).first() is None:
            known: Sequence[str] = (
                conn.execute(select(models.c.name).order_by(models.c.name)).scalars().all()
            )
            listing = ", ".join(known[:10]) if known else "none yet"
            raise NotFoundError(
                f"model '{name}' is not in the registry '{self.url}' (registered: {listing}); "
                "check the name or register the model first"
            )

    def _version_row(self, conn: Connection, name: str, version: int) -> RowMapping:
        row = (
            conn.execute(
                select(versions).where(versions.c.model_name == name, versions.c.version == version)
            )
            .mappings()
            .first()
        )
        if row is None:
            self._require_model(conn, name)
            numbers: Sequence[int] = (
                conn.execute(
                    select(versions.c.version)
                    .where(versions.c.model_name == name)
                    .order_by(versions.c.version)
                )
                .scalars()
                .all()
            )
            listing = ", ".join(str(n) for n in numbers[-10:]) if numbers else "none"
            raise NotFoundError(
                f"model '{name}' has no version {version} (existing: {listing}); "
                f"list them with `mooring models list {name}`"
            )
        return row

    def _aliases_of(self, conn: Connection, name: str) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for row in conn.execute(
            select(aliases.c.alias, aliases.c.version)
            .where(aliases.c.model_name == name)
            .order_by(aliases.c.alias)
        ):
            found.setdefault(row.version, []).append(row.alias)
        return found

    def _deployment_row(self, conn: Connection, name: str) -> RowMapping | None:
        return deployment_row(conn, name)

    # -- reads -------------------------------------------------------------------
    def get_version(self, *, name: str, version: int, heavy: bool = True) -> ModelVersion:
        with self._read() as conn:
            row = self._version_row(conn, name, version)
            return version_record(row, self._aliases_of(conn, name).get(version, []), heavy=heavy)

    def resolve_alias(self, *, name: str, alias: str) -> int:
        with self._read() as conn:
            if alias == "latest":
                number = conn.execute(
                    select(func.max(versions.c.version)).where(
                        versions.c.model_name == name, versions.c.status == "ready"
                    )
                ).scalar()
            else:
                number = conn.execute(
                    select(aliases.c.version).where(
                        aliases.c.model_name == name, aliases.c.alias == alias
                    )
                ).scalar()
            if number is None:
                self._require_model(conn, name)
                known = sorted(a for names in self._aliases_of(conn, name).values() for a in names)
                raise NotFoundError(
                    f"model '{name}' has no alias '{alias}' (aliases: "
                    f"{', '.join(known) if known else 'none'}); set it with set_alias or deploy"
                )
            return int(number)

    def list_models(self) -> list[ModelSummary]:
        if not self.exists:
            return []
        with self._read() as conn:
            return model_summaries(conn)

    def list_versions(self, *, name: str) -> list[ModelVersion]:
        with self._read() as conn:
            self._require_model(conn, name)
            alias_map = self._aliases_of(conn, name)
            rows = (
                conn.execute(
                    select(versions)
                    .where(versions.c.model_name == name)
                    .order_by(versions.c.version)
                )
                .mappings()
                .all()
            )
            return [version_record(r, alias_map.get(r["version"], []), heavy=False) for r in rows]

    def get_deployment(self, *, name: str) -> Deployment:
        with self._read() as conn:
            self._require_model(conn, name)
            return deployment_record(name, self._deployment_row(conn, name))

    def audit_events(
        self, *, name: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        with self._read() as conn:
            return select_events(conn, name, limit)

    def verify_audit(
        self, *, expect_head: tuple[int, str] | None = None, require_key: bool = False
    ) -> AuditReport:
        keys = self._audit_key.keys()
        if not keys and require_key:
            raise UsageError(f"cannot verify the audit log: {self._audit_key.missing()}")
        with self._read() as conn:
            if not self._sqlite:  # the events and the tables from one snapshot
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return verify_rows(conn, keys, expect_head)

    def audit_head(self) -> tuple[int, str]:
        with self._read() as conn:
            return require_head(conn)

    def seal_audit(self, *, actor: str, reason: str | None) -> AuditReport:
        with self._write() as tx:
            if tx.key is None:
                raise UsageError(f"cannot seal the audit log: {self._audit_key.missing()}")
            tx.audit(actor=actor, action="seal_audit", model=None, version=None, reason=reason)
        return self.verify_audit()

    def record_event(self, **event: Any) -> None:
        with self._write() as tx:
            tx.audit(**{"version": None, **event})

    def artifact_keys(self) -> set[str]:
        with self._read() as conn:
            keys: set[str] = set(conn.execute(select(versions.c.artifact_key)).scalars())
            return keys | attached_keys(conn)

    def list_artifacts(self, *, name: str, version: int) -> list[VersionArtifact]:
        with self._read() as conn:
            self._version_row(conn, name, version)
            return select_artifacts(conn, name, version)

    # -- writes ------------------------------------------------------------------
    def add_version(self, *, new: NewVersion, reason: str | None) -> ModelVersion:
        with self._write() as tx:
            conn = tx.conn
            created_at = now()
            last = conn.execute(
                select(models.c.last_version).where(models.c.name == new.name)
            ).scalar()
            if last is None:
                number = 1
                conn.execute(
                    insert(models).values(name=new.name, created_at=created_at, last_version=number)
                )
            else:
                number = last + 1
                conn.execute(
                    update(models).where(models.c.name == new.name).values(last_version=number)
                )
            if new.parent_version is not None:
                self._version_row(conn, new.name, new.parent_version)
            conn.execute(
                insert(versions).values(
                    model_name=new.name,
                    version=number,
                    status="ready",
                    created_at=created_at,
                    created_by=new.created_by,
                    artifact_key=new.artifact_key,
                    manifest=dumps(new.manifest),
                    manifest_sha256=new.manifest_sha256,
                    file_count=new.file_count,
                    size_bytes=new.size_bytes,
                    blessed=new.blessed,
                    parent_version=new.parent_version,
                    description=new.description,
                    lineage=dumps(new.lineage),
                    metrics=dumps(new.metrics),
                    gate=None if new.gate is None else dumps(new.gate),
                    params=dumps(new.params),
                    run_record=dumps(new.run_record),
                    statistics=None if new.statistics is None else dumps(new.statistics),
                    model_card=new.render_card(number, created_at),
                )
            )
            tx.audit(
                actor=new.created_by,
                action="register",
                model=new.name,
                version=number,
                reason=reason,
                after={
                    "version": number,
                    "manifest_sha256": new.manifest_sha256,
                    "blessed": new.blessed,
                    "artifact_key": new.artifact_key,
                },
            )
            row = self._version_row(conn, new.name, number)
            return version_record(row, [], heavy=True)

    def add_artifact(
        self, *, new: NewArtifact, reason: str | None, replace: bool
    ) -> tuple[VersionArtifact, str | None]:
        with self._write() as tx:
            self._version_row(tx.conn, new.name, new.version)
            return attach(tx, new, reason=reason, replace=replace)

    def set_alias(
        self, *, name: str, alias: str, version: int, actor: str, reason: str | None
    ) -> None:
        with self._write() as tx:
            row = self._version_row(tx.conn, name, version)
            if row["status"] != "ready":
                raise ConflictError(
                    f"{name}@{version} is archived; restore it before pointing alias "
                    f"'{alias}' at it"
                )
            old = self._move_alias(tx.conn, name, alias, version)
            tx.audit(
                actor=actor,
                action="alias",
                model=name,
                version=version,
                reason=reason,
                before={"alias": alias, "version": old},
                after={"alias": alias, "version": version},
            )

    def _move_alias(
        self, conn: Connection, name: str, alias: str, version: int | None
    ) -> int | None:
        old = conn.execute(
            select(aliases.c.version).where(aliases.c.model_name == name, aliases.c.alias == alias)
        ).scalar()
        if old is not None:
            conn.execute(
                delete(aliases).where(aliases.c.model_name == name, aliases.c.alias == alias)
            )
        if version is not None:
            conn.execute(
                insert(aliases).values(
                    model_name=name, alias=alias, version=version, updated_at=now()
                )
            )
        return old

    def remove_alias(self, *, name: str, alias: str, actor: str, reason: str | None) -> None:
        with self._write() as tx:
            old = self._move_alias(tx.conn, name, alias, None)
            if old is None:
                self._require_model(tx.conn, name)
                raise NotFoundError(f"model '{name}' has no alias '{alias}'; nothing to remove")
            tx.audit(
                actor=actor,
                action="alias",
                model=name,
                version=old,
                reason=reason,
                before={"alias": alias, "version": old},
                after={"alias": alias, "version": None},
            )

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
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise UsageError(f"canary weight {weight!r} is not valid; use an integer from 0 to 100")
        if canary is None and weight:
            raise UsageError(
                f"canary weight {weight} given without a canary version; pass canary=VERSION "
                "or weight=0"
            )
        if canary is not None and canary == production:
            raise UsageError(
                f"version {canary} cannot be both production and canary; choose another canary "
                "or none"
            )
        if canary is not None and production is None:
            raise UsageError(
                f"a canary ({name}@{canary}) needs a production version to split traffic with; "
                "pass production=VERSION"
            )
        with self._write() as tx:
            conn = tx.conn
            self._require_model(conn, name)
            row = self._deployment_row(conn, name)
            before = deployment_record(name, row)
            if production is not None and production != before.production:
                row_p = self._version_row(conn, name, production)
                forced |= check_deployable(row_p, name, production, "production", force, reason)
            if canary is not None and canary != before.canary:
                forced |= check_deployable(
                    self._version_row(conn, name, canary), name, canary, "canary", force, reason
                )
            previous = list(before.previous)
            if before.production is not None and production != before.production:
                previous = [*previous, before.production][-_MAX_PREVIOUS:]
            after = self._write_deployment(
                conn, name, row, production, canary, weight if canary is not None else 0, previous
            )
            tx.audit(
                actor=actor,
                action=action,
                model=name,
                version=production,
                reason=reason,
                forced=forced,
                before=deployment_state(before),
                after=deployment_state(after),
            )
            return after

    def _write_deployment(
        self,
        conn: Connection,
        name: str,
        row: RowMapping | None,
        production: int | None,
        canary: int | None,
        weight: int,
        previous: list[int],
    ) -> Deployment:
        return write_deployment(
            conn, name, row, production, canary, weight, previous, self._move_alias
        )

    def set_shadow(
        self, *, name: str, version: int | None, rate: float, actor: str, reason: str | None
    ) -> Deployment:
        with self._write() as tx:
            self._require_model(tx.conn, name)
            status = None if version is None else self._version_row(tx.conn, name, version)
            return write_shadow(
                tx, name, version, None if status is None else status["status"], rate, actor, reason
            )

    def rollback(self, *, name: str, actor: str, reason: str | None) -> Deployment:
        with self._write() as tx:
            conn = tx.conn
            self._require_model(conn, name)
            row = self._deployment_row(conn, name)
            before = deployment_record(name, row)
            previous = [v for v in before.previous if v != before.production]
            if not previous:
                raise ConflictError(
                    f"model '{name}' has no earlier production version to roll back to "
                    f"(production: {before.production}); deploy a version explicitly"
                )
            target = previous.pop()
            after = self._write_deployment(conn, name, row, target, None, 0, previous)
            tx.audit(
                actor=actor,
                action="rollback",
                model=name,
                version=target,
                reason=reason,
                before=deployment_state(before),
                after=deployment_state(after),
            )
            return after

    def demote(
        self, *, name: str, version: int, to: int | None, archive: bool, actor: str, reason: str
    ) -> Deployment:
        with self._write() as tx:
            self._require_model(tx.conn, name)
            return write_demotion(
                tx,
                name=name,
                version=version,
                to=to,
                archive=archive,
                actor=actor,
                reason=reason,
                version_row=self._version_row,
                move_alias=self._move_alias,
                check_to=lambda row: check_deployable(
                    row, name, row["version"], "production", False, reason
                ),
            )

    def _in_service(self, conn: Connection, name: str, version: int, verb: str) -> None:
        current = deployment_record(name, self._deployment_row(conn, name))
        for role, number in (
            ("production", current.production),
            ("canary", current.canary),
            ("shadow", current.shadow),
        ):
            if number == version:
                fix = (
                    f"clear it first (mooring models shadow {name} --off)"
                    if role == "shadow"
                    else "deploy or promote another version first (or rollback)"
                )
                raise ConflictError(
                    f"cannot {verb} {name}@{version}: it is the {role} version; {fix}"
                )

    def set_status(
        self, *, name: str, version: int, status: str, actor: str, reason: str | None
    ) -> ModelVersion:
        if status not in ("ready", "archived"):
            raise UsageError(f"status {status!r} is not valid; use 'ready' or 'archived'")
        with self._write() as tx:
            row = self._version_row(tx.conn, name, version)
            if status == "archived":
                self._in_service(tx.conn, name, version, "archive")
            if row["status"] != status:
                tx.conn.execute(
                    update(versions)
                    .where(versions.c.model_name == name, versions.c.version == version)
                    .values(status=status)
                )
                tx.audit(
                    actor=actor,
                    action="archive" if status == "archived" else "restore",
                    model=name,
                    version=version,
                    reason=reason,
                    before={"status": row["status"]},
                    after={"status": status},
                )
            fresh = self._version_row(tx.conn, name, version)
            return version_record(
                fresh, self._aliases_of(tx.conn, name).get(version, []), heavy=False
            )

    def delete_version(self, *, name: str, version: int, actor: str, reason: str | None) -> str:
        with self._write() as tx:
            conn = tx.conn
            row = self._version_row(conn, name, version)
            self._in_service(conn, name, version, "delete")
            removed = self._aliases_of(conn, name).get(version, [])
            conn.execute(
                delete(aliases).where(aliases.c.model_name == name, aliases.c.version == version)
            )
            conn.execute(
                delete(versions).where(versions.c.model_name == name, versions.c.version == version)
            )
            dep = self._deployment_row(conn, name)
            if dep is not None:
                kept = [v for v in loads(dep["previous"]) if v != version]
                conn.execute(
                    update(deployments)
                    .where(deployments.c.model_name == name)
                    .values(previous=dumps(kept))
                )
            tx.audit(
                actor=actor,
                action="delete",
                model=name,
                version=version,
                reason=reason,
                before={
                    "version": version,
                    "status": row["status"],
                    "aliases": removed,
                    "manifest_sha256": row["manifest_sha256"],
                },
            )
            return str(row["artifact_key"])
