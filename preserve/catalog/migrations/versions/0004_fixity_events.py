"""Preservation events in PREMIS 3 terms: every fixity check and repair of a copy.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("event_date", sa.DateTime, nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("agent", sa.String(100), nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("collection", sa.String(200), nullable=True),
        sa.Column("location", sa.String(100), nullable=False),
    )
    op.create_index("ix_events_object_location", "events", ["object", "location"])
    op.create_index("ix_events_date", "events", ["event_date"])


def downgrade() -> None:
    op.drop_table("events")
