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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from mooring.errors import (
    ChecksFailedError,
    ConflictError,
    MooringError,
    NotFoundError,
    RegistryUnavailableError,
    UsageError,
)
from mooring.registry.attached import attach, attached_keys, select_artifacts
from mooring.registry.audit import verify_chain
from mooring.registry.migrations import HEAD
from mooring.registry.records import (
    AuditEvent,
    AuditReport,
    Deployment,
    ModelSummary,
    ModelVersion,
    VersionArtifact,
)
from mooring.registry.sqltx import WriteTransaction, dumps, loads, mask_url, now
from mooring.registry.store import NewArtifact, NewVersion, Store
from mooring.registry.tables import (
    aliases,
    audit_events,
    audit_head,
    deployments,
    models,
    versions,
)

__all__ = ["SqlStore", "mask_url"]

_BUSY_TIMEOUT_S = 60
_MAX_PREVIOUS = 50
# Arbitrary constant shared by every process: the advisory lock taken while migrating.
_PG_MIGRATION_LOCK = 0x6D6F6F72


class SqlStore(Store):
    """:class:`Store` on SQLite or PostgreSQL through SQLAlchemy.

    Example:
        >>> store = SqlStore("sqlite:///.mooring/registry.db")  # doctest: +SKIP
        >>> store.list_models()  # doctest: +SKIP
        []
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise UsageError(
                f"registry URL {url!r} is not a database URL; use sqlite:///path/registry.db "
                "or postgresql+psycopg://user@host:5432/dbname"
            ) from None
        self.url = mask_url(parsed)
        self._password = parsed.password
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            self._engine = self._sqlite_engine(parsed)
        elif backend == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            try:
                self._engine = create_engine(parsed, pool_pre_ping=True)
            except NoSuchModuleError:
                raise UsageError(
                    f"registry URL '{self.url}' names a driver that is not installed; use "
                    "postgresql+psycopg://… and install it with pip install 'mooring[postgres]'"
                ) from None
        else:
            raise UsageError(
                f"registry URL '{self.url}' uses the unsupported database '{backend}'; "
                "use sqlite:///path/registry.db or postgresql+psycopg://user@host/dbname"
            )
        self._sqlite = backend == "sqlite"
        with self._guard():
            self._migrate()

    # -- connections ------------------------------------------------------------
    def _sqlite_engine(self, parsed: URL) -> Engine:
        database = parsed.database
        if not database or database == ":memory:":
            raise UsageError(
                f"registry URL '{self.url}' names no database file; an in-memory registry "
                "cannot be shared between connections; use sqlite:///path/registry.db"
            )
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": _BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take over transaction control from the driver so BEGIN IMMEDIATE is possible.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # WAL: readers never block the writer and a killed process leaves no torn state.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

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
        with self._guard(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[WriteTransaction]:
        with self._guard(), self._engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                head = conn.execute(
                    select(audit_head.c.seq, audit_head.c.hash)
                    .where(audit_head.c.id == 1)
                    .with_for_update()
                ).one()
                tx = WriteTransaction(conn, head.seq, head.hash)
                yield tx
                tx.close()

    def _migrate(self) -> None:
        with self._engine.connect() as conn:
            if self._current_revision(conn) == HEAD:
                return
        from alembic import command
        from alembic.config import Config

        from mooring.registry.migrations import LOCATION

        with self._engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if not self._sqlite:
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                if self._current_revision(conn) == HEAD:
                    return
                config = Config()
                config.set_main_option("script_location", str(LOCATION))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    @staticmethod
    def _current_revision(conn: Connection) -> str | None:
        from sqlalchemy import inspect

        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def close(self) -> None:
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

    @staticmethod
    def _record(row: RowMapping, alias_names: list[str], *, heavy: bool) -> ModelVersion:
        return ModelVersion(
            name=row["model_name"],
            version=row["version"],
            status=row["status"],
            created_at=row["created_at"],
            created_by=row["created_by"],
            artifact_key=row["artifact_key"],
            manifest_sha256=row["manifest_sha256"],
            file_count=row["file_count"],
            size_bytes=row["size_bytes"],
            blessed=bool(row["blessed"]),
            parent_version=row["parent_version"],
            description=row["description"],
            lineage=loads(row["lineage"]),
            metrics=loads(row["metrics"]),
            gate=loads(row["gate"]),
            params=loads(row["params"]),
            run_record=loads(row["run_record"]),
            aliases=tuple(alias_names),
            manifest=loads(row["manifest"]) if heavy else None,
            statistics=loads(row["statistics"]) if heavy else None,
            model_card=row["model_card"] if heavy else None,
        )

    @staticmethod
    def _deployment(name: str, row: RowMapping | None) -> Deployment:
        if row is None:
            return Deployment(name=name)
        return Deployment(
            name=name,
            production=row["production_version"],
            canary=row["canary_version"],
            canary_weight=row["canary_weight"],
            revision=row["revision"],
            updated_at=row["updated_at"],
            previous=tuple(loads(row["previous"])),
        )

    def _deployment_row(self, conn: Connection, name: str) -> RowMapping | None:
        return (
            conn.execute(select(deployments).where(deployments.c.model_name == name))
            .mappings()
            .first()
        )

    # -- reads -------------------------------------------------------------------
    def get_version(self, *, name: str, version: int, heavy: bool = True) -> ModelVersion:
        with self._read() as conn:
            row = self._version_row(conn, name, version)
            return self._record(row, self._aliases_of(conn, name).get(version, []), heavy=heavy)

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
        counts = (
            select(versions.c.model_name, func.count().label("n"))
            .group_by(versions.c.model_name)
            .subquery()
        )
        latest = (
            select(versions.c.model_name, func.max(versions.c.version).label("latest"))
            .where(versions.c.status == "ready")
            .group_by(versions.c.model_name)
            .subquery()
        )
        query = (
            select(
                models.c.name,
                models.c.created_at,
                counts.c.n,
                latest.c.latest,
                deployments.c.production_version,
                deployments.c.canary_version,
                deployments.c.canary_weight,
            )
            .select_from(models)
            .outerjoin(counts, counts.c.model_name == models.c.name)
            .outerjoin(latest, latest.c.model_name == models.c.name)
            .outerjoin(deployments, deployments.c.model_name == models.c.name)
            .order_by(models.c.name)
        )
        with self._read() as conn:
            return [
                ModelSummary(
                    name=row.name,
                    created_at=row.created_at,
                    latest_version=row.latest,
                    versions=row.n or 0,
                    production=row.production_version,
                    canary=row.canary_version,
                    canary_weight=row.canary_weight or 0,
                )
                for row in conn.execute(query)
            ]

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
            return [self._record(r, alias_map.get(r["version"], []), heavy=False) for r in rows]

    def get_deployment(self, *, name: str) -> Deployment:
        with self._read() as conn:
            self._require_model(conn, name)
            return self._deployment(name, self._deployment_row(conn, name))

    def audit_events(
        self, *, name: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        query = select(audit_events).order_by(audit_events.c.seq.desc())
        if name is not None:
            query = query.where(audit_events.c.model_name == name)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEvent(
                seq=r["seq"],
                created_at=r["created_at"],
                actor=r["actor"],
                action=r["action"],
                model=r["model_name"],
                version=r["version"],
                reason=r["reason"],
                forced=bool(r["forced"]),
                before=loads(r["before"]),
                after=loads(r["after"]),
                prev_hash=r["prev_hash"],
                hash=r["hash"],
            )
            for r in reversed(rows)
        ]

    def verify_audit(self) -> AuditReport:
        with self._read() as conn, conn.begin():
            head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().one()
            rows = [
                {**dict(r), "model": r["model_name"], "forced": bool(r["forced"])}
                for r in conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings()
            ]
        return verify_chain(rows, head_seq=head["seq"], head_hash=head["hash"])

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
            return self._record(row, [], heavy=True)

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

    def _check_deployable(
        self, conn: Connection, name: str, version: int, role: str, force: bool, reason: str | None
    ) -> bool:
        """Raise unless ``version`` may take ``role``; return True when force was needed."""
        row = self._version_row(conn, name, version)
        if row["status"] != "ready":
            raise ConflictError(
                f"{name}@{version} is archived and cannot become {role}; restore it first "
                f"(Registry.restore) or choose another version"
            )
        if row["blessed"]:
            return False
        if not force:
            gate = loads(row["gate"])
            failed = [
                f"{g.get('name')}={g.get('value')} (bound {g.get('bound')})"
                for g in (gate or {}).get("gates", [])
                if isinstance(g, dict) and not g.get("passed")
            ]
            why = (
                f"failed gates: {', '.join(failed)}"
                if failed
                else (
                    "no gate decision was recorded" if gate is None else "its gate did not bless it"
                )
            )
            raise ChecksFailedError(
                f"{name}@{version} is not blessed ({why}), so it cannot become {role}; fix the "
                "model, or override with force=True and a reason (CLI: --force --reason TEXT)"
            )
        if not (reason and reason.strip()):
            raise UsageError(
                f"forcing unblessed {name}@{version} to {role} needs a reason; pass "
                "reason='…' (CLI: --reason TEXT) so the audit log records why"
            )
        return True

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
            before = self._deployment(name, row)
            forced = False
            if production is not None and production != before.production:
                forced |= self._check_deployable(
                    conn, name, production, "production", force, reason
                )
            if canary is not None and canary != before.canary:
                forced |= self._check_deployable(conn, name, canary, "canary", force, reason)
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
                before=_deployment_state(before),
                after=_deployment_state(after),
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
        values = {
            "production_version": production,
            "canary_version": canary,
            "canary_weight": weight,
            "revision": (row["revision"] if row else 0) + 1,
            "updated_at": now(),
            "previous": dumps(previous),
        }
        if row is None:
            conn.execute(insert(deployments).values(model_name=name, **values))
        else:
            conn.execute(
                update(deployments).where(deployments.c.model_name == name).values(**values)
            )
        self._move_alias(conn, name, "production", production)
        self._move_alias(conn, name, "canary", canary)
        return self._deployment(name, self._deployment_row(conn, name))

    def rollback(self, *, name: str, actor: str, reason: str | None) -> Deployment:
        with self._write() as tx:
            conn = tx.conn
            self._require_model(conn, name)
            row = self._deployment_row(conn, name)
            before = self._deployment(name, row)
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
                before=_deployment_state(before),
                after=_deployment_state(after),
            )
            return after

    def _in_service(self, conn: Connection, name: str, version: int, verb: str) -> None:
        current = self._deployment(name, self._deployment_row(conn, name))
        for role, number in (("production", current.production), ("canary", current.canary)):
            if number == version:
                raise ConflictError(
                    f"cannot {verb} {name}@{version}: it is the {role} version; deploy or "
                    f"promote another version first (or rollback)"
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
            return self._record(
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


def _deployment_state(dep: Deployment) -> dict[str, Any]:
    return {"production": dep.production, "canary": dep.canary, "weight": dep.canary_weight}
