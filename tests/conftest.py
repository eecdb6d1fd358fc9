"""Shared fixtures: a clean environment, the loopback reference site, catalogs on both databases.

PostgreSQL tests talk to the real server at 127.0.0.1:5432 (override with
PRESERVE_TEST_POSTGRES_URL). Without a server they skip with the reason; in CI
(CI=true) a missing server is a failure, not a skip.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from preserve import cli
from preserve.demo import REFERENCE_PATH, LoopbackSite, Route, reference_site

DATA = Path(__file__).parent / "data"
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own PRESERVE_HOME and no PRESERVE_* settings from outside.

    Loopback capture is allowed, since the sites the tests capture are on 127.0.0.1.
    """
    for name in list(os.environ):
        if name.startswith("PRESERVE_") and name != "PRESERVE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("PRESERVE_HOME", str(home))
    monkeypatch.setenv("PRESERVE_ALLOW_PRIVATE_ADDRESSES", "1")
    # Retries keep their count, but wait milliseconds, not seconds.
    monkeypatch.setenv("PRESERVE_RETRY_BACKOFF_SECONDS", "0.01")
    return home


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may open a connection beyond this machine, even if the address guard broke."""
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host = str(address[0])
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {host}, beyond loopback")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


@pytest.fixture
def home(clean_environment: Path) -> Path:
    return clean_environment


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    """The reference news page (the copy in tests/data) with its resources, and error pages."""
    routes = reference_site()
    routes[REFERENCE_PATH] = Route((DATA / "financial-district-bachelet.html").read_bytes())
    routes["/gone"] = Route(b"<html><body><p>This page is gone.</p></body></html>", status=404)
    routes["/broken"] = Route(b"<html><body><p>Internal error.</p></body></html>", status=500)
    routes["/moved"] = Route(b"", status=301, headers=(("Location", REFERENCE_PATH),))
    with LoopbackSite(routes) as running:
        yield running


@dataclass
class Result:
    """What one CLI run gave."""

    status: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8")


@pytest.fixture
def run(capfdbinary: pytest.CaptureFixture[bytes]) -> object:
    """Run ``preserve ARGS...`` in-process and return its status and output."""

    def invoke(*args: str) -> Result:
        capfdbinary.readouterr()
        try:
            status = cli.main([str(arg) for arg in args])
        except SystemExit as exc:  # argparse's usage errors
            status = int(exc.code or 0)
        captured = capfdbinary.readouterr()
        return Result(status, captured.out, captured.err.decode("utf-8"))

    return invoke


def _postgres_admin_url() -> str:
    return os.environ.get("PRESERVE_TEST_POSTGRES_URL", POSTGRES_ADMIN_URL)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped afterwards."""
    admin_url = _postgres_admin_url()
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, ImportError) as exc:
        reason = f"PostgreSQL not reachable at {admin_url}: {exc}".splitlines()[0]
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    name = f"preserve_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
            ), {"name": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, home: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A catalog URL on SQLite and on the real PostgreSQL, each starting empty."""
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'catalog.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        engine = create_engine(url)
        with engine.begin() as connection:
            # Each test starts from an empty schema on the session's database.
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    monkeypatch.setenv("PRESERVE_DATABASE_URL", url)
    yield url
