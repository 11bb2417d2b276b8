"""Artifacts attached to an existing version (e.g. TF Lite exports).

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_artifacts",
        sa.Column("model_name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("artifact", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("artifact_key", sa.String(512), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_name", "version"],
            ["versions.model_name", "versions.version"],
            name="fk_version_artifacts_version",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("version_artifacts")
