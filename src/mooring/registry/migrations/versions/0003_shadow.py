"""A deployment's shadow version and the share of requests mirrored to it.

Existing deployments read as having no shadow (``shadow_version`` NULL, rate 0).

Revision ID: 0003
Revises: 0002
Create Date: 2024-08-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("shadow_version", sa.Integer, nullable=True))
    op.add_column(
        "deployments",
        sa.Column("shadow_rate", sa.Float, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("shadow_rate")
        batch.drop_column("shadow_version")
