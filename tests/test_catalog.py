"""The catalog on SQLite and on the real PostgreSQL: schema, ingest, lookups, ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, delete, insert, select, text, update

from preserve import ledger
from preserve.capture.warc import WarcFile
from preserve.catalog import (
    captures_of,
    nearest_capture,
    open_engine,
    record_warc_file,
    stored_files,
)
from preserve.catalog.engine import MIGRATIONS, SCHEMA_REVISION, migrate
from preserve.catalog.schema import (
    captures,
    copies,
    descriptions,
    metadata,
    outside_metadata,
    warc_files,
)
from preserve.catalog.schema import ledger as ledger_table
from preserve.demo import REFERENCE_PATH, LoopbackSite
from preserve.errors import CatalogError, StorageError
from preserve.index import CaptureEntry, WarcIndex, surt_key
from preserve.ingest import ingest
from preserve.storage import FilesystemStore


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def test_migrations_build_exactly_the_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(
            connection, opts={"include_object": outside_metadata}), metadata)
    assert differences == []


def test_the_known_schema_revision_is_alembics_head() -> None:
    """A catalog at SCHEMA_REVISION skips Alembic: it must be the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_0011_makes_the_repairs_recorded_before_it_premis_replication_events(
        tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
        connection.execute(text(
            "INSERT INTO events (event_type, event_date, outcome, detail, agent, object, "
            "collection, location) VALUES ('repair', '2026-01-02 03:04:05', 'pass', "
            "'written again from a copy with the ingest digest, verified', 'preserve/0.1', "
            "'warcs/c/a.warc.gz', 'c', 'mirror'), ('fixity check', '2026-01-02 03:04:05', "
            "'pass', 'sha256 as at ingest', 'preserve/0.1', 'warcs/c/a.warc.gz', 'c', 'local')"))
    migrate(engine)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT event_type, detail FROM events ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [
        ("replication", "repair: written again from a copy with the ingest digest, verified"),
        ("fixity check", "sha256 as at ingest")]
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0010")
        assert connection.execute(text("SELECT event_type, detail FROM events ORDER BY id")
                                  ).first() == ("repair", "written again from a copy with the "
                                                "ingest digest, verified")
    engine.dispose()


def test_migrating_twice_is_harmless(database_url: str, engine: Engine) -> None:
    again = open_engine(database_url)
    with again.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == SCHEMA_REVISION
        assert compare_metadata(MigrationContext.configure(
            connection, opts={"include_object": outside_metadata}), metadata) == []
    again.dispose()


def test_capture_fills_every_table(run: Any, site: LoopbackSite, engine: Engine) -> None:
    report = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "news",
                            "--json").out)
    with engine.connect() as connection:
        [stored] = connection.execute(select(warc_files)).all()
        assert stored.key == report["warcs"][0]["key"]
        assert stored.sha256 == report["warcs"][0]["sha256"]
        assert stored.size == report["warcs"][0]["size"]
        assert stored.records == report["records"] and stored.source == "capture"
        assert [row.location for row in connection.execute(select(copies))] == ["local"]
        rows = connection.execute(select(captures)).all()
        assert len(rows) == len(report["responses"])
        page = next(row for row in rows if row.url == site.url(REFERENCE_PATH))
        assert page.surt == surt_key(page.url) and page.surt.startswith("1,0,0,127:")
        assert page.status == 200 and page.mime == "text/html"
        assert page.capture_time.tzinfo is not None
        assert page.payload_digest.startswith("sha1:")
        [described] = connection.execute(select(descriptions)).all()
        assert described.capture_id == page.id
        assert described.publisher == "The Financial District"
        entries = list(ledger.entries(connection))
    assert [(e.seq, e.event, e.object) for e in entries] == [(1, "ingest", stored.key)]
    assert entries[0].digest == f"sha256:{stored.sha256}"
    assert entries[0].actor


def synthetic(engine: Engine, url: str, times: list[datetime]) -> None:
    entries = [CaptureEntry(url=url, surt=surt_key(url), capture_time=moment,
                            record_type="response", record_id=f"<urn:uuid:{i}>", status=200,
                            mime="text/html", payload_digest=None, offset=i * 100, length=100)
               for i, moment in enumerate(times)]
    with engine.begin() as connection:
        record_warc_file(connection, key=f"k-{url}", collection="c", sha256="0" * 64, size=1,
                         source="test", created_at=datetime.now(UTC),
                         verified={"local": datetime.now(UTC)},
                         index=WarcIndex(records=len(entries), captures=entries))


def test_nearest_capture_in_time(engine: Engine) -> None:
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    times = [base, base + timedelta(days=10), base + timedelta(days=11)]
    synthetic(engine, "http://example.com/a", times)
    synthetic(engine, "http://example.com/other", [base + timedelta(days=5)])
    key = surt_key("http://example.com/a")
    with engine.connect() as connection:
        def at(moment: datetime | None) -> datetime:
            found = nearest_capture(connection, key, moment)
            assert found is not None
            return found.capture_time

        assert at(None) == times[2]
        assert at(base - timedelta(days=300)) == times[0]
        assert at(base + timedelta(days=4)) == times[0]
        assert at(base + timedelta(days=6)) == times[1]
        assert at(base + timedelta(days=10, hours=13)) == times[2]
        assert at(times[1]) == times[1]
        assert [s.capture_time for s in captures_of(connection, key)] == times
        assert nearest_capture(connection, surt_key("http://example.com/none"), None) is None
        # SURT matching: scheme and www. do not split a URL's captures.
        assert len(captures_of(connection, surt_key("https://www.example.com/a"))) == 3


def test_ledger_detects_changes_removals_and_reordering(engine: Engine) -> None:
    with engine.begin() as connection:
        for number in range(4):
            ledger.append(connection, time=datetime.now(UTC), actor="test", event="ingest",
                          object=f"object-{number}", digest=f"sha256:{number:064x}")
    with engine.connect() as connection:
        check = ledger.verify(connection)
    assert check.passed and check.entries == 4

    with engine.begin() as connection:
        connection.execute(update(ledger_table).where(ledger_table.c.seq == 2)
                           .values(digest="sha256:" + "f" * 64))
        check = ledger.verify(connection)
    assert not check.passed and check.problems == ["entry 2 was altered: its hash does not match"]


def test_ledger_detects_reordered_entries(engine: Engine) -> None:
    with engine.begin() as connection:
        for number in range(3):
            ledger.append(connection, time=datetime.now(UTC), actor="test", event="ingest",
                          object=f"object-{number}", digest="sha256:" + "0" * 64)
        # Swap entries 2 and 3 (through a free number, the key being unique).
        for old, new in ((2, 99), (3, 2), (99, 3)):
            connection.execute(update(ledger_table).where(ledger_table.c.seq == old)
                               .values(seq=new))
        check = ledger.verify(connection)
    assert check.problems == ["entry 2 does not follow entry 1"]


def test_ledger_detects_a_removed_entry(run: Any, engine: Engine) -> None:
    with engine.begin() as connection:
        for number in range(3):
            ledger.append(connection, time=datetime.now(UTC), actor="test", event="ingest",
                          object=f"object-{number}", digest="sha256:" + "0" * 64)
    from preserve.config import load_settings
    from preserve.storage import open_stores
    ledger.checkpoint(engine, open_stores(load_settings().locations))  # as every command does
    assert run("ledger", "verify").status == 0
    with engine.begin() as connection:
        connection.execute(delete(ledger_table).where(ledger_table.c.seq == 2))
    result = run("ledger", "verify", "--json")
    assert result.status == 1
    problems = json.loads(result.out)["problems"]
    assert problems[0] == "entry 2 is missing (next is 3)"
    assert problems[1].startswith("entry 2 is gone: checkpoint ledger/checkpoints/")
    with engine.begin() as connection:
        connection.execute(delete(ledger_table).where(ledger_table.c.seq == 3))
        connection.execute(insert(ledger_table).values(
            seq=2, time="2020-01-01T00:00:00+00:00", actor="x", event="ingest", object="forged",
            digest="sha256:0", prev_hash="0" * 64, hash="0" * 64))
    assert "entry 2 does not follow entry 1" in run("ledger", "verify").text


def test_a_failed_catalog_write_leaves_no_object(engine: Engine, tmp_path: Path) -> None:
    warc = WarcFile(tmp_path / "x.warc.gz", {"software": "test"})
    sealed = warc.seal()
    store = FilesystemStore("local", tmp_path / "objects")
    with engine.begin() as connection:
        connection.execute(insert(warc_files).values(
            key="taken", collection="c", sha256="0" * 64, size=1, records=1, source="test",
            created_at=datetime.now(UTC)))
    with pytest.raises(CatalogError, match="cannot record taken"):
        ingest(sealed, key="taken", collection="c", source="test", engine=engine,
               stores=[store], actor="test")
    assert list(store.list()) == []
    with engine.connect() as connection:
        assert list(ledger.entries(connection)) == []


def test_ledger_verify_finds_an_edited_catalog_digest(run: Any, site: LoopbackSite,
                                                      engine: Engine) -> None:
    report = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "news",
                            "--json").out)
    key, sha256 = report["warcs"][0]["key"], report["warcs"][0]["sha256"]
    assert run("ledger", "verify").status == 0
    with engine.begin() as connection:
        connection.execute(update(warc_files).values(sha256="a" * 64))
    result = run("ledger", "verify", "--json")
    assert result.status == 1
    assert json.loads(result.out)["problems"] == [
        f"catalogued file {key} has sha256:{'a' * 64}, the ledger recorded sha256:{sha256}"]
    with engine.begin() as connection:
        connection.execute(update(warc_files).values(sha256=sha256))
        connection.execute(delete(ledger_table))
    problems = json.loads(run("ledger", "verify", "--json").out)["problems"]
    # The capture checkpointed its entry to storage: its removal is caught there too.
    assert problems[0] == f"catalogued file {key} has no ingest entry in the ledger"
    assert problems[1].startswith("entry 1 is gone: checkpoint ledger/checkpoints/000000000001-")
    assert len(problems) == 2


def broken_location_settings(home: Path, tmp_path: Path, local_broken: bool = False) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a location's folder should be")
    local = blocker / "local" if local_broken else home / "objects"
    home.mkdir(parents=True, exist_ok=True)
    (home / "preserve.yaml").write_text(
        "storage:\n"
        "  locations:\n"
        f"    local: {{type: filesystem, path: {local}}}\n"
        f"    mirror: {{type: filesystem, path: {blocker / 'objects'}}}\n"
        "  default_copies: [local, mirror]\n")


def test_a_copy_that_cannot_be_made_leaves_the_file_under_replicated(
        run: Any, site: LoopbackSite, home: Path, tmp_path: Path, engine: Engine) -> None:
    broken_location_settings(home, tmp_path)
    result = run("capture", site.url(REFERENCE_PATH), "--collection", "news")

    assert result.status == 1  # preserved, but not everywhere it was asked to be
    assert "under-replicated: no copy in mirror: location 'mirror'" in result.text
    with engine.connect() as connection:
        [stored] = stored_files(connection)
        assert stored.locations == ("local",)
        assert [location for location, _ in stored.missing] == ["mirror"]
        assert [(entry.event, entry.object) for entry in ledger.entries(connection)] == [
            ("ingest", stored.key), ("under-replicated", f"mirror:{stored.key}")]
    assert (home / "objects" / stored.key).is_file()

    got = json.loads(run("get", site.url(REFERENCE_PATH), "--json").out)
    assert got["warc"]["copies"] == ["local"] and got["warc"]["under_replicated"] is True
    assert "mirror" in got["warc"]["missing_copies"]
    assert "under-replicated: no copy in mirror" in run("get", site.url(REFERENCE_PATH)).text
    audit = run("fixity", "run", "--json")
    assert audit.status == 1
    [finding] = json.loads(audit.out)["findings"]
    assert (finding["kind"], finding["location"]) == ("under-replicated", "mirror")

    # Storage and the ledger say the same: a catalog rebuilt from them knows the copy
    # is missing.
    rebuilt = run("reindex", "--json")
    report = json.loads(rebuilt.out)
    assert rebuilt.status == 0 and report["equal"] and not report["problems"], report
    assert "mirror" in json.loads(run("get", site.url(REFERENCE_PATH), "--json").out)[
        "warc"]["missing_copies"]


def test_with_no_copy_at_all_nothing_is_catalogued(run: Any, site: LoopbackSite, home: Path,
                                                   tmp_path: Path, engine: Engine) -> None:
    broken_location_settings(home, tmp_path, local_broken=True)
    result = run("capture", site.url(REFERENCE_PATH), "--collection", "news")
    assert result.status == 1
    assert "location 'mirror'" in result.err and len(result.err.strip().splitlines()) == 1
    with engine.connect() as connection:
        assert connection.execute(select(warc_files)).all() == []
        assert list(ledger.entries(connection)) == []


class FlakyStore(FilesystemStore):
    """A folder whose first ``failures`` puts fail, as a network store's might."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__("flaky", root)
        self.failures = failures
        self.puts = 0

    def put(self, key: str, stream: Any, sha256: str, retain_until: Any = None) -> Any:
        self.puts += 1
        if self.puts <= self.failures:
            raise StorageError(f"location 'flaky': put {self.puts} failed")
        return super().put(key, stream, sha256, retain_until)


@pytest.mark.parametrize(("failures", "missing"), [(0, False), (2, False), (3, True)])
def test_a_failed_copy_is_tried_again(engine: Engine, tmp_path: Path, failures: int,
                                      missing: bool) -> None:
    warc = WarcFile(tmp_path / "x.warc.gz", {"software": "test"})
    sealed = warc.seal()
    local = FilesystemStore("local", tmp_path / "local")
    flaky = FlakyStore(tmp_path / "flaky", failures)
    waits: list[float] = []
    done = ingest(sealed, key="k/x.warc.gz", collection="c", source="test", engine=engine,
                  stores=[local, flaky], actor="test", backoff_seconds=0.5,
                  sleep=waits.append)

    assert flaky.puts == min(failures + 1, 3)
    assert waits == [0.5, 1.0][:min(failures, 2)]
    assert done.locations == (("local",) if missing else ("local", "flaky"))
    assert list(done.missing) == (["flaky"] if missing else [])
    with engine.connect() as connection:
        [stored] = stored_files(connection)
    assert stored.locations == tuple(sorted(done.locations))
    assert [location for location, _ in stored.missing] == list(done.missing)


def test_concurrent_captures_each_get_their_own_ledger_entry(site: LoopbackSite,
                                                             database_url: str) -> None:
    import threading

    from preserve.config import load_settings
    from preserve.jobs import run_capture

    settings = load_settings()
    failures: list[BaseException] = []

    def capture() -> None:
        engine = open_engine(database_url)
        try:
            for _ in range(3):
                run_capture([site.url(REFERENCE_PATH)], collection="race", settings=settings,
                            engine=engine)
        except BaseException as exc:
            failures.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=capture) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    engine = open_engine(database_url)
    with engine.connect() as connection:
        check = ledger.verify(connection)
        files = connection.execute(select(warc_files)).all()
    engine.dispose()
    assert check.passed, check.problems
    assert check.entries == len(files) == 9


def _corpus_urls() -> set[str]:
    """Every WARC-Target-URI in the WARC files of the test data that warcio reads."""
    from warcio.archiveiterator import ArchiveIterator

    found: set[str] = set()
    for path in (Path(__file__).parent / "data").rglob("*.warc*"):
        if path.suffix == ".lz4":
            continue
        try:
            with path.open("rb") as stream:
                for record in ArchiveIterator(stream):
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    if uri:
                        found.add(uri.strip("<>"))
        except Exception:  # a broken file of the corpus: the URIs read before it stopped
            continue
    return found


def test_surt_keys_told_without_the_surt_package_are_the_packages() -> None:
    # The plainest URLs get their SURT key without the surt package (it costs 27 µs a
    # URL): on every URL of the test data, and on thousands made to be awkward, the two
    # agree, and every URL the fast way refuses still gets the package's key.
    import itertools

    import surt

    from preserve.index import _plain_surt

    schemes = ["http", "https", "HTTP", "ftp"]
    hosts = ["example.com", "www.example.com", "WWW.Example.COM", "www2.news.example.org",
             "www.com", "www", "wwwx.example.com", "www22.example.com", "127.0.0.1", "0.0.0.0",
             "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1234", "1.2.3.com", "-a.com",
             "a-.com", "xn--bcher-kva.example", "example.com.", "a..b.com", "0x7f.1",
             "user@example.com"]
    ports = ["", ":80", ":443", ":8080", ":0", ":080", ":65535", ":65536", ":99999", ":"]
    paths = ["", "/", "/a", "/A/B/", "/a//b", "/./a", "/a/../b", "/.well-known/x",
             "/a.b/c~d_e-f", "/%41", "/a;jsessionid=1", "/(x)/y.aspx", "/index.HTML", "//x"]
    tails = ["", "?", "?b=2&a=1", "#frag", "?jsessionid=0123456789abcdef0123456789abcdef"]
    made = {f"{scheme}://{host}{port}{path}{tail}" for scheme, host, port, path, tail
            in itertools.product(schemes, hosts, ports, paths, tails)}
    urls = made | _corpus_urls()
    fast = 0
    for url in sorted(urls):
        plain = _plain_surt(url)
        try:
            expected = surt.surt(url)
        except (ValueError, TypeError, UnicodeError):
            expected = url
        if plain is not None:
            fast += 1
            assert plain == expected, url
        assert surt_key(url) == expected, url
    assert fast > 500  # the fast way was taken, on made and on real URLs alike
    assert sum(1 for url in _corpus_urls() if _plain_surt(url) is not None) > 20


def test_a_folder_location_not_in_place_is_not_asked_again_for_the_file(engine: Engine,
                                                                  tmp_path: Path) -> None:
    from preserve.errors import NotInPlace

    class Unmounted(FilesystemStore):
        puts = 0

        def put(self, key: str, stream: Any, sha256: str, retain_until: Any = None) -> Any:
            self.puts += 1
            raise NotInPlace("location 'mirror': its folder is not there")

    warc = WarcFile(tmp_path / "x.warc.gz", {"software": "test"})
    mirror = Unmounted("mirror", tmp_path / "mirror")
    waits: list[float] = []
    done = ingest(warc.seal(), key="k/x.warc.gz", collection="c", source="test",
                  engine=engine, stores=[FilesystemStore("local", tmp_path / "local"), mirror],
                  actor="test", sleep=waits.append)
    assert mirror.puts == 1 and waits == []
    assert "its folder is not there" in done.missing["mirror"]
