"""Captures found by their WARC file: ingest reads back the IDs of the captures it has
just written, and deletion removes a file's captures; both scanned the whole table.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_captures_warc_file_id", "captures", ["warc_file_id"])


def downgrade() -> None:
    op.drop_index("ix_captures_warc_file_id", "captures")
