"""SQL for artifacts attached to an existing version (the ``version_artifacts`` table).

Used by :class:`~mooring.registry._sql.store.SqlStore` inside its read and write
transactions; kept apart so the store module stays one concept.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, RowMapping, delete, insert, select

from mooring.errors import ConflictError
from mooring.registry._records import VersionArtifact
from mooring.registry._sql.tables import version_artifacts
from mooring.registry._sql.tx import WriteTransaction, dumps, loads, now
from mooring.registry._store import NewArtifact

__all__ = ["attach", "attached_keys", "select_artifacts"]


def _record(row: RowMapping) -> VersionArtifact:
    return VersionArtifact(
        model=row["model_name"],
        version=row["version"],
        artifact=row["artifact"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        artifact_key=row["artifact_key"],
        manifest=loads(row["manifest"]),
        manifest_sha256=row["manifest_sha256"],
        size_bytes=row["size_bytes"],
        details=loads(row["details"]),
    )


def _where(name: str, version: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return version_artifacts.c.model_name == name, version_artifacts.c.version == version


def select_artifacts(
    conn: Connection, name: str, version: int, artifact: str | None = None
) -> list[VersionArtifact]:
    """The artifacts of one version (one of them when ``artifact`` is given), by name."""
    query = select(version_artifacts).where(*_where(name, version))
    if artifact is not None:
        query = query.where(version_artifacts.c.artifact == artifact)
    rows = conn.execute(query.order_by(version_artifacts.c.artifact)).mappings().all()
    return [_record(row) for row in rows]


def attach(
    tx: WriteTransaction, new: NewArtifact, *, reason: str | None, replace: bool
) -> tuple[VersionArtifact, str | None]:
    """Insert (or, with ``replace``, swap) one attached artifact and audit it.

    Returns the stored record and the replaced artifact's key (to remove its files).
    """
    conn = tx.conn
    found = select_artifacts(conn, new.name, new.version, new.artifact)
    old = found[0] if found else None
    if old is not None:
        if not replace:
            raise ConflictError(
                f"{old.ref} already exists (sha256 of its manifest {old.manifest_sha256[:12]}…, "
                f"attached {old.created_at[:19]}); pass replace=True (CLI: --replace) to swap it"
            )
        conn.execute(
            delete(version_artifacts).where(
                *_where(new.name, new.version), version_artifacts.c.artifact == new.artifact
            )
        )
    conn.execute(
        insert(version_artifacts).values(
            model_name=new.name,
            version=new.version,
            artifact=new.artifact,
            created_at=now(),
            created_by=new.created_by,
            artifact_key=new.artifact_key,
            manifest=dumps(new.manifest),
            manifest_sha256=new.manifest_sha256,
            size_bytes=new.size_bytes,
            details=dumps(new.details),
        )
    )

    def state(item: VersionArtifact | NewArtifact) -> dict[str, object]:
        return {
            "artifact": item.artifact,
            "manifest_sha256": item.manifest_sha256,
            "size_bytes": item.size_bytes,
            "artifact_key": item.artifact_key,
        }

    tx.audit(
        actor=new.created_by,
        action="attach",
        model=new.name,
        version=new.version,
        reason=reason,
        before=None if old is None else state(old),
        after=state(new),
    )
    stored = select_artifacts(conn, new.name, new.version, new.artifact)[0]
    return stored, None if old is None else old.artifact_key


def attached_keys(conn: Connection) -> set[str]:
    """Artifact keys referenced by attached artifacts."""
    return set(conn.execute(select(version_artifacts.c.artifact_key)).scalars())
