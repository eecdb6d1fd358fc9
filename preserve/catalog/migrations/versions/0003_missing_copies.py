"""Copies a policy asked for that could not be made: the file is under-replicated.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "missing_copies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("warc_file_id", sa.Integer, sa.ForeignKey("warc_files.id"), nullable=False),
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("problem", sa.Text, nullable=False),
        sa.Column("noted_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("warc_file_id", "location", name="uq_missing_copies_file_location"),
    )


def downgrade() -> None:
    op.drop_table("missing_copies")
