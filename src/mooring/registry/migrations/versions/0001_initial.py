"""Initial registry schema: models, versions, aliases, deployments, audit log.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("model_name", sa.String(128), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("artifact_key", sa.String(512), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("blessed", sa.Boolean, nullable=False),
        sa.Column("parent_version", sa.Integer, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("gate", sa.Text, nullable=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("run_record", sa.Text, nullable=False),
        sa.Column("statistics", sa.Text, nullable=True),
        sa.Column("model_card", sa.Text, nullable=False),
    )
    op.create_table(
        "aliases",
        sa.Column("model_name", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_name", "version"],
            ["versions.model_name", "versions.version"],
            name="fk_aliases_version",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "deployments",
        sa.Column("model_name", sa.String(128), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("production_version", sa.Integer, nullable=True),
        sa.Column("canary_version", sa.Integer, nullable=True),
        sa.Column("canary_weight", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.Column("previous", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    for table in ("audit_head", "audit_events", "deployments", "aliases", "versions", "models"):
        op.drop_table(table)
