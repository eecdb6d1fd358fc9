"""Tombstones: what a deleted WARC file was, why it went, and who deleted it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tombstones",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(512), nullable=False, unique=True),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("captures", sa.Integer, nullable=False),
        sa.Column("locations", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("deleted_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tombstones")
