"""Every record is indexed: the records that are not captures (warcinfo, request,
metadata, conversion, continuation) get their own table. Descriptions gain the
text's simhash, the modified date and the canonical URL. A capture's record ID may be
as long as an ARC record's (``<urn:preserve:arc:KEY#OFFSET>``, the key holding the
file's name): 600 characters on PostgreSQL (SQLite holds to no VARCHAR's length).

Files catalogued before this revision have no rows and fields here until
``preserve reindex``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "other_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("warc_file_id", sa.Integer, sa.ForeignKey("warc_files.id"), nullable=False),
        sa.Column("record_type", sa.String(20), nullable=False),
        sa.Column("record_id", sa.String(600), nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("record_time", sa.DateTime, nullable=True),
        sa.Column("refers_to", sa.String(600), nullable=True),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_other_records_warc_file_id", "other_records", ["warc_file_id"])
    op.create_index("ix_other_records_refers_to", "other_records", ["refers_to"])
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("captures", "record_id", type_=sa.String(600),
                        existing_type=sa.String(100), existing_nullable=False)
    # Plain ALTERs (SQLite's too): a batch copy of the table would drop the full-text
    # search triggers 0008 made on it.
    op.add_column("descriptions", sa.Column("text_simhash", sa.String(16), nullable=True))
    op.add_column("descriptions", sa.Column("modified", sa.String(40), nullable=True))
    op.add_column("descriptions", sa.Column("canonical_url", sa.Text, nullable=True))


def downgrade() -> None:
    for column in ("canonical_url", "modified", "text_simhash"):
        op.drop_column("descriptions", column)
    op.drop_table("other_records")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("captures", "record_id", type_=sa.String(100),
                        existing_type=sa.String(600), existing_nullable=False)
