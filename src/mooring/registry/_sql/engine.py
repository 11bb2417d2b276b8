"""Opening a registry database: the engine for a URL, SQLite's settings, Alembic migrations.

SQLite gets a busy timeout (writers wait instead of failing), foreign keys, WAL (readers
never block the writer, and a killed process leaves no torn state) and ``BEGIN
IMMEDIATE`` for write transactions; PostgreSQL gets ``postgresql+psycopg``. Opening runs
the migrations up to the newest revision, one process at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from mooring.errors import UsageError
from mooring.registry._sql.tx import mask_url
from mooring.registry.migrations import HEAD

__all__ = [
    "Connected",
    "connect",
    "current_revision",
    "default_artifacts",
    "migrate",
    "missing_sqlite_file",
    "parse_url",
]

BUSY_TIMEOUT_S = 60
# Arbitrary constant shared by every process: the advisory lock taken while migrating.
PG_MIGRATION_LOCK = 0x6D6F6F72


@dataclass(frozen=True)
class Connected:
    """An engine for a registry URL, the URL with its password masked, and the password."""

    engine: Engine
    url: str
    password: str | None
    sqlite: bool


def parse_url(url: str) -> URL:
    """A registry URL, parsed.

    Raises:
        UsageError: not a database URL.
    """
    try:
        return make_url(url)
    except ArgumentError:
        raise UsageError(
            f"registry URL {url!r} is not a database URL; use sqlite:///path/registry.db "
            "or postgresql+psycopg://user@host:5432/dbname"
        ) from None


def connect(url: str) -> Connected:
    """The engine for ``url`` (``sqlite:///path`` or ``postgresql[+psycopg]://…``).

    Raises:
        UsageError: not a database URL, an in-memory SQLite, a driver that is not
            installed, or another database.
    """
    parsed = parse_url(url)
    masked = mask_url(parsed)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, masked)
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except NoSuchModuleError:
            raise UsageError(
                f"registry URL '{masked}' names a driver that is not installed; use "
                "postgresql+psycopg://… and install it with pip install 'mooring-ml[postgres]'"
            ) from None
    else:
        raise UsageError(
            f"registry URL '{masked}' uses the unsupported database '{backend}'; "
            "use sqlite:///path/registry.db or postgresql+psycopg://user@host/dbname"
        )
    return Connected(engine, masked, parsed.password, backend == "sqlite")


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` that does not exist yet; ``None`` for one that does,
    or for another database."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database).expanduser()
    return None if path.is_file() else path


def _sqlite_engine(parsed: URL, masked: str) -> Engine:
    database = parsed.database
    if not database or database == ":memory:":
        raise UsageError(
            f"registry URL '{masked}' names no database file; an in-memory registry "
            "cannot be shared between connections; use sqlite:///path/registry.db"
        )
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL: readers never block the writer and a killed process leaves no torn state.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def migrate(engine: Engine, *, sqlite: bool) -> None:
    """Run the Alembic migrations up to the newest revision (once, under a lock)."""
    with engine.connect() as conn:
        if current_revision(conn) == HEAD:
            return
    from alembic import command
    from alembic.config import Config

    from mooring.registry.migrations import LOCATION

    with engine.connect() as conn:
        if sqlite:
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if not sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            if current_revision(conn) == HEAD:
                return
            config = Config()
            config.set_main_option("script_location", str(LOCATION))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


def current_revision(conn: Connection) -> str | None:
    """The database's Alembic revision (None before the first migration)."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def default_artifacts(url: str) -> Path:
    """``artifacts/`` next to a SQLite file; other databases need an explicit location."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise UsageError(
            f"registry '{mask_url(parsed)}' needs an artifacts location; pass artifacts= "
            "(a folder or URL such as s3://bucket/mooring) or set [project] artifacts"
        )
    return Path(parsed.database).expanduser().parent / "artifacts"
