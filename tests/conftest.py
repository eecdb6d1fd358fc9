"""Shared fixtures: a clean environment, the loopback reference site, catalogs on both
databases, S3 endpoints.

PostgreSQL tests talk to the real server at 127.0.0.1:5432 (override with
PRESERVE_TEST_POSTGRES_URL). Without a server they skip with the reason; in CI
(CI=true) a missing server is a failure, not a skip.

S3 tests run against moto's server mode, started here on loopback as its own
process (a real HTTP S3 endpoint, not in-process patching), and also against
the endpoint in PRESERVE_TEST_S3_ENDPOINT when one is given (its credentials
from the usual AWS_* variables).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from preserve import cli
from preserve.config import load_settings
from preserve.demo import REFERENCE_PATH, LoopbackSite, Route, reference_site

DATA = Path(__file__).parent / "data"
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own PRESERVE_HOME and no PRESERVE_* settings from outside.

    Loopback capture is allowed, since the sites the tests capture are on 127.0.0.1.
    """
    for name in list(os.environ):
        if name.startswith("PRESERVE_") and not name.startswith("PRESERVE_TEST_"):
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
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: Any) -> None:
        if isinstance(address, tuple):  # an internet address (a Unix socket is a path)
            host = str(address[0])
            if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
                raise AssertionError(f"a test tried to connect to {host}, beyond loopback")

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        check(address)
        return real(address, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> None:
        check(address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "create_connection", guarded)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


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


@pytest.fixture(scope="session")
def tools() -> Path:
    """The bin folder of the tools we did not write (pywb, cdxj-indexer, py-wacz), which
    `make test` builds in .venv-tools and passes as PRESERVE_TEST_TOOLS. Without them the
    tests that use them skip with the reason; in CI (CI=true) that is a failure."""
    folder = Path(os.environ.get("PRESERVE_TEST_TOOLS")
                  or Path(__file__).parent.parent / ".venv-tools" / "bin")
    missing = [name for name in ("cdxj-indexer", "wb-manager", "wayback", "wacz")
               if not (folder / name).exists()]
    if missing:
        reason = f"{', '.join(missing)} not found in {folder} (run `make test`)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the interoperability tests must run")
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, which the browser tests drive through Playwright. Without it
    they skip with the reason; in CI (CI=true) that is a failure."""
    found = os.environ.get("PRESERVE_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        reason = "chromium not found (apt-get install chromium, or PRESERVE_TEST_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the browser tests must run")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def started(arguments: list[str], ready: str, seconds: float = 60,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``preserve ARGUMENTS`` running until the block ends (then SIGTERM), once ``ready``
    (a URL) answers at all. Its output goes to a file (``process.output()`` reads it), so
    a chatty server never blocks on a full pipe."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed at the end, in finally)
    process = subprocess.Popen([str(Path(sys.executable).parent / "preserve"), *arguments],
                               env={**os.environ, **(env or {})}, stdout=log,
                               stderr=subprocess.STDOUT)

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")

    process.output = output  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                urllib.request.urlopen(ready, timeout=5).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"preserve {' '.join(arguments)} did not start: "
                                         f"{output()}") from None
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


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


MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "preserve-test", "AWS_SECRET_ACCESS_KEY": "preserve-test",
                    "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the whole session."""
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        reason = f"moto's server is not installed ({server}); pip install 'moto[server]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: S3 tests must run)")
        pytest.skip(reason)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"moto_server did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class S3Endpoint:
    """An S3 endpoint to test against, with a fresh bucket of its own."""

    url: str
    bucket: str


def local_and_s3_settings(home: Path, endpoint: S3Endpoint, bucket: str | None = None,
                          prefix: str = "") -> None:
    """preserve.yaml with a folder and a bucket, both copies of every capture."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "preserve.yaml").write_text(f"""
storage:
  locations:
    local: {{type: filesystem, path: {home / "objects"}}}
    offsite: {{type: s3, bucket: {bucket or endpoint.bucket}, prefix: "{prefix}",
              endpoint_url: "{endpoint.url}", addressing_style: path}}
  default_copies: [local, offsite]
""")


# Where S3 tests run: moto always, and the endpoint given in the environment, if any.
S3_TARGETS = ["moto"] + (["given"] if os.environ.get("PRESERVE_TEST_S3_ENDPOINT") else [])


@contextmanager
def s3_bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
              target: str) -> Iterator[S3Endpoint]:
    """A new, empty bucket on the target endpoint, removed afterwards with what it holds."""
    import boto3

    if target == "moto":
        url = request.getfixturevalue("moto_endpoint")
        for name, value in MOTO_CREDENTIALS.items():
            monkeypatch.setenv(name, value)
    else:
        url = os.environ["PRESERVE_TEST_S3_ENDPOINT"]
    bucket = f"preserve-test-{uuid.uuid4().hex[:12]}"
    client = boto3.session.Session().client(
        "s3", endpoint_url=url, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    client.create_bucket(Bucket=bucket)
    try:
        yield S3Endpoint(url, bucket)
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", ()):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)


@pytest.fixture(params=S3_TARGETS)
def s3_endpoint(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[S3Endpoint]:
    """A new, empty bucket on moto, and on PRESERVE_TEST_S3_ENDPOINT when one is given."""
    with s3_bucket(request, monkeypatch, request.param) as endpoint:
        yield endpoint


BROKERS = {"redis": ("PRESERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
           "rabbitmq": ("PRESERVE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")}


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The machine's Redis, then its RabbitMQ, as the workers' broker, on a queue of this
    test's own; the broker URL.

    Without a server the test skips with the reason; in CI (CI=true) it fails.
    """
    import kombu

    variable, default = BROKERS[request.param]
    url = os.environ.get(variable, default)
    try:
        with kombu.Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # no server, or one that refuses us
        reason = f"{request.param} not reachable at {url}: {exc}".splitlines()[0]
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: broker tests must run)")
        pytest.skip(reason)
    queue = f"preserve-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PRESERVE_WORKERS_BACKEND", "celery")
    monkeypatch.setenv("PRESERVE_BROKER_URL", url)
    monkeypatch.setenv("PRESERVE_WORKERS_QUEUE", queue)
    try:
        yield url
    finally:
        with kombu.Connection(url, connect_timeout=3) as connection:
            if request.param == "redis":
                # The queue, and what Celery keeps of messages a killed worker held
                # (this database is the tests' own).
                client = connection.default_channel.client
                client.delete(queue, "unacked", "unacked_index", "unacked_mutex")
            else:
                connection.default_channel.queue_delete(queue)


def page(number: int, links: list[str]) -> bytes:
    """A small article page linking on (the scheduling tests' site: /a/1 -> /a/2 -> ...)."""
    anchors = "".join(f'<a href="{link}">next</a>' for link in links)
    return (f"<html><head><title>Page {number}</title></head><body><article><h1>Page "
            f"{number}</h1><p>{'Words of the page. ' * 40}</p>{anchors}</article></body>"
            "</html>").encode()


@pytest.fixture
def policies(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty policies folder, the one the settings name."""
    folder = home.parent / "policies"
    folder.mkdir()
    monkeypatch.setenv("PRESERVE_POLICIES", str(folder))
    return folder


def write_policy(folder: Path, site: LoopbackSite, schedule: str = "every 1h",
                 name: str = "site") -> Path:
    """A policy crawling the site from /a/1 on the schedule, without politeness delays."""
    path = folder / f"{name}.yaml"
    path.write_text(f"""\
collection: {name}
targets:
  - url: {site.url("/a/1")}
    schedule: "{schedule}"
    scope: prefix
    depth: 5
capture:
  delay_seconds: 0
""")
    return path


API_TOKENS = {role: f"{role}-secret-token" for role in ("researcher", "archivist", "auditor")}


def bearer(role: str) -> dict[str, str]:
    """The Authorization header of the test token with this role."""
    return {"Authorization": f"Bearer {API_TOKENS[role]}"}


@pytest.fixture
def api_tokens(home: Path) -> Path:
    """Settings (preserve.yaml in the home) with one API token per role."""
    entries = "".join(f"    - {{name: {role[:3]}, role: {role}, "
                      f"sha256: {hashlib.sha256(token.encode()).hexdigest()}}}\n"
                      for role, token in API_TOKENS.items())
    home.mkdir(parents=True, exist_ok=True)
    config = home / "preserve.yaml"
    config.write_text(f"auth:\n  tokens:\n{entries}")
    return config


def api_client() -> Iterator[Any]:
    """A test client of the API over the settings' catalog (yielded; closed after)."""
    from fastapi.testclient import TestClient

    from preserve.api.app import create_app
    from preserve.catalog import open_engine

    settings = load_settings()
    engine = open_engine(settings.database_url)
    with TestClient(create_app(settings, engine)) as client:
        yield client
    engine.dispose()


def wait_until(ready: Callable[[], bool], seconds: float, step: float = 0.05) -> None:
    """Poll until ready() holds or the seconds are up (the caller asserts what it needs)."""
    deadline = time.monotonic() + seconds
    while not ready() and time.monotonic() < deadline:
        time.sleep(step)


def assert_nothing_catalogued(engine: Any, home: Path) -> None:
    """No capture and no WARC file in the catalog, and none in the home's store."""
    from preserve.catalog.schema import captures, warc_files
    with engine.connect() as connection:
        assert connection.execute(select(captures)).first() is None  # no half capture
        assert connection.execute(select(warc_files)).first() is None
    assert not list((home / "objects").rglob("*.warc.gz"))


def catalogued_urls(engine: Any, home: Path) -> set[str]:
    """The URLs the catalog holds captures of, once the ledger verifies and the store holds
    exactly the WARC files the catalog knows."""
    from preserve import ledger
    from preserve.catalog.schema import captures, warc_files
    with engine.connect() as connection:
        urls = {row.url for row in connection.execute(select(captures))}
        stored = {row.key for row in connection.execute(select(warc_files))}
        assert ledger.verify(connection).passed
    assert {p.relative_to(home / "objects").as_posix()
            for p in (home / "objects").rglob("*.warc.gz")} == stored
    return urls
