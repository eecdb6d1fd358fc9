"""Alembic environment: runs on the connection preserve hands it, online only."""

from __future__ import annotations

from alembic import context

from preserve.catalog.schema import metadata, outside_metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  include_object=outside_metadata)
with context.begin_transaction():
    context.run_migrations()
