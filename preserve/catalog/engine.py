"""Open the catalog database and bring its schema up to date.

SQLite is the embedded default; the same code runs on PostgreSQL. On SQLite a
:func:`write_transaction` starts with ``BEGIN IMMEDIATE``, so two writers queue
instead of both reading the ledger head and then colliding; reads stay deferred
and never wait for a writer (WAL).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from preserve.errors import BadInput, CatalogError, ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# The newest migration. A catalog already there skips Alembic (and its import, a
# third of a second on every command); a test holds this equal to Alembic's head.
SCHEMA_REVISION = "0011"
MIGRATION_LOCK = 0x70726573  # "pres": the advisory lock key migrations hold on PostgreSQL


def open_engine(url: str, existing: bool = False) -> Engine:
    """An engine on the catalog database at url, migrated to the newest schema.

    With ``existing``, a SQLite catalog that is not there yet is :class:`BadInput`
    rather than made: a command that only reads or audits, given a mistyped path
    (or a disk not mounted), would otherwise find a new, empty catalog, and say
    that all holds.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not valid") from exc
    database = parsed.database
    if (existing and parsed.get_backend_name() == "sqlite" and database
            and database != ":memory:" and not Path(database).is_file()):
        raise BadInput(f"no catalog at {database}: nothing has been captured or imported "
                       "with these settings (is PRESERVE_HOME or PRESERVE_DATABASE_URL "
                       "right?)")
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(url, parsed.database)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise ConfigError(f"database URL {parsed!r}: no driver for this database") from exc
    except ImportError as exc:
        raise ConfigError(f"database URL {parsed!r}: driver not installed ({exc.name})") from exc
    migrate(engine)
    return engine


def migrate(engine: Engine) -> None:
    """Run every migration the database has not had yet."""
    if _revision(engine) == SCHEMA_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                # Services starting together on an empty database migrate one at a time;
                # the others then find the schema current. (SQLite: BEGIN IMMEDIATE.)
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise CatalogError(f"catalog {engine.url!r}: cannot open or migrate: "
                           f"{catalog_reason(exc)}") from exc


def _revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None when it has none (or cannot say)."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def write_transaction(engine: Engine) -> AbstractContextManager[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at once."""
    return engine.execution_options(preserve_write=True).begin()


def catalog_reason(exc: SQLAlchemyError) -> str:
    """The database's own complaint, on one line, without SQLAlchemy's SQL dump."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return reason[0] if reason else type(exc).__name__


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"database {database}: cannot create its folder: "
                              f"{exc.strerror}") from exc
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writes = connection.get_execution_options().get("preserve_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine
