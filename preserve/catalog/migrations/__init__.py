"""Alembic migrations of the catalog, run by :func:`preserve.catalog.engine.migrate`."""
