"""The registry's tables (SQLAlchemy Core). The migrations create exactly these.

Timestamps are ISO-8601 UTC text and structured fields are canonical JSON text,
so both backends store byte-identical values and audit hashes recompute exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

__all__ = [
    "aliases",
    "audit_events",
    "audit_head",
    "deployments",
    "metadata",
    "models",
    "version_artifacts",
    "versions",
    "webhook_cursors",
]

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_at", String(40), nullable=False),
    # Highest number ever given; versions are never renumbered, even after delete.
    Column("last_version", Integer, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("model_name", String(128), ForeignKey("models.name"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("artifact_key", String(512), nullable=False),
    Column("manifest", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("blessed", Boolean, nullable=False),
    Column("parent_version", Integer, nullable=True),
    Column("description", Text, nullable=True),
    Column("lineage", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("gate", Text, nullable=True),
    Column("params", Text, nullable=False),
    Column("run_record", Text, nullable=False),
    Column("statistics", Text, nullable=True),
    Column("model_card", Text, nullable=False),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_name", String(128), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),
    ForeignKeyConstraint(
        ["model_name", "version"],
        ["versions.model_name", "versions.version"],
        name="fk_aliases_version",
        ondelete="CASCADE",
    ),
)

deployments = Table(
    "deployments",
    metadata,
    Column("model_name", String(128), ForeignKey("models.name"), primary_key=True),
    Column("production_version", Integer, nullable=True),
    Column("canary_version", Integer, nullable=True),
    Column("canary_weight", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),
    # Earlier production versions, newest last (JSON list): the rollback stack.
    Column("previous", Text, nullable=False),
    # A version that gets a copy of shadow_rate of the requests, never answering them.
    Column("shadow_version", Integer, nullable=True),
    Column("shadow_rate", Float, nullable=False, server_default=text("0")),
)

# Files attached to a version after registration (e.g. a TF Lite conversion): stored
# under their own artifact key with their own manifest, so the version's row and its
# manifest never change.
version_artifacts = Table(
    "version_artifacts",
    metadata,
    Column("model_name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("artifact", String(64), primary_key=True),
    Column("created_at", String(40), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("artifact_key", String(512), nullable=False),
    Column("manifest", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("details", Text, nullable=False),
    ForeignKeyConstraint(
        ["model_name", "version"],
        ["versions.model_name", "versions.version"],
        name="fk_version_artifacts_version",
        ondelete="CASCADE",
    ),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("created_at", String(40), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(32), nullable=False),
    Column("model_name", String(128), nullable=True),
    Column("version", Integer, nullable=True),
    Column("reason", Text, nullable=True),
    Column("forced", Boolean, nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

# One row: the last sequence number and hash. Every write transaction locks it
# first, which serializes writers on PostgreSQL the way BEGIN IMMEDIATE does on SQLite.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row per receiver of the audit events ([[registry.webhooks]], by URL): the last seq it
# acknowledged, and the failures of the event after it (mooring.registry._webhooks).
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("receiver", String(2048), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
)
