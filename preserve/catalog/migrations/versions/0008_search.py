"""Full-text search over descriptions: SQLite FTS5, PostgreSQL tsvector.

On SQLite, an FTS5 index over the title, publisher and text of every
description, kept in step by triggers. On PostgreSQL, a generated tsvector
column (title weighted above publisher above text) with a GIN index. Both use
no stemming (``unicode61`` / ``simple``): an archive holds every language.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE VIRTUAL TABLE descriptions_search USING fts5(title, publisher, text, "
    "content='descriptions', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER descriptions_search_insert AFTER INSERT ON descriptions BEGIN "
    "INSERT INTO descriptions_search(rowid, title, publisher, text) "
    "VALUES (new.id, new.title, new.publisher, new.text); END",
    "CREATE TRIGGER descriptions_search_delete AFTER DELETE ON descriptions BEGIN "
    "INSERT INTO descriptions_search(descriptions_search, rowid, title, publisher, text) "
    "VALUES ('delete', old.id, old.title, old.publisher, old.text); END",
    "CREATE TRIGGER descriptions_search_update AFTER UPDATE ON descriptions BEGIN "
    "INSERT INTO descriptions_search(descriptions_search, rowid, title, publisher, text) "
    "VALUES ('delete', old.id, old.title, old.publisher, old.text); "
    "INSERT INTO descriptions_search(rowid, title, publisher, text) "
    "VALUES (new.id, new.title, new.publisher, new.text); END",
    "INSERT INTO descriptions_search(descriptions_search) VALUES ('rebuild')",
]
_POSTGRESQL = [
    "ALTER TABLE descriptions ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(publisher, '')), 'B') || "
    "to_tsvector('simple', coalesce(text, ''))) STORED",
    "CREATE INDEX ix_descriptions_search ON descriptions USING gin (search)",
]


def upgrade() -> None:
    for statement in _SQLITE if op.get_bind().dialect.name == "sqlite" else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER descriptions_search_{name}")
        op.execute("DROP TABLE descriptions_search")
    else:
        op.execute("DROP INDEX ix_descriptions_search")
        op.execute("ALTER TABLE descriptions DROP COLUMN search")
