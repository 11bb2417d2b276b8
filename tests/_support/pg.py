"""A real PostgreSQL server for the registry tests, started without root by ``pgserver``.

One server per machine, shared by every test process (pytest-xdist workers
included): pgserver keeps a lock and a list of the processes using a data
folder, and stops the server when the last of them exits. Each test gets its
own database, dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

_DATA_DIR = Path(tempfile.gettempdir()) / "mooring-test-postgres"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def start_server() -> str:
    """Start (or join) the shared server; return its admin URI (``postgresql://…``)."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(_DATA_DIR, cleanup_mode="stop")
        uri: str = server.get_uri()
    except Exception as exc:
        message = f"PostgreSQL (pgserver) could not start: {type(exc).__name__}: {exc}"
        if in_ci():
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return uri


def sqlalchemy_url(admin_uri: str, database: str) -> str:
    """``postgresql://postgres:@/postgres?host=/sock`` → psycopg URL for another database."""
    parsed = urlparse(admin_uri)
    host = parse_qs(parsed.query).get("host", [""])[0]
    user = parsed.username or "postgres"
    if host:
        return f"postgresql+psycopg://{user}@/{database}?host={host}"
    return f"postgresql+psycopg://{user}@{parsed.hostname}:{parsed.port}/{database}"


@contextmanager
def fresh_database(admin_uri: str) -> Iterator[str]:
    """A new empty database on the shared server, dropped on exit."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy_url(admin_uri, name)
    finally:
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
