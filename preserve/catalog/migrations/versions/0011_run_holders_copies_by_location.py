"""Fixity runs say who runs them and when they last reported, so that a second audit
of the same scope started while the first still runs does not take it for one that
was interrupted and resume it. Copies are indexed by location: whether the catalog
holds any copy in a location is asked before each write there (a folder location
that does must be in place, not an empty mount point). A repair's PREMIS event is of
the vocabulary's type "replication" (a bit-wise identical copy made), no longer
"repair", which PREMIS does not have; its detail says it was a repair.

Runs left unfinished before this revision have neither, and count as interrupted.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fixity_runs", sa.Column("holder", sa.String(300), nullable=True))
    op.add_column("fixity_runs", sa.Column("alive_at", sa.DateTime, nullable=True))
    op.create_index("ix_copies_location", "copies", ["location"])
    op.execute("UPDATE events SET event_type = 'replication', detail = 'repair: ' || detail "
               "WHERE event_type = 'repair'")


def downgrade() -> None:
    op.execute("UPDATE events SET event_type = 'repair', detail = substr(detail, 9) "
               "WHERE event_type = 'replication' AND detail LIKE 'repair: %'")
    op.drop_index("ix_copies_location", "copies")
    op.drop_column("fixity_runs", "alive_at")
    op.drop_column("fixity_runs", "holder")
