"""`preserve reindex`: the catalog rebuilt from storage alone equals the one it replaced.

The archive built here has what a catalog must know: captures with revisits,
descriptions written with the capture and later (redescribe), imported WARC,
ARC and WACZ files (one damaged, kept with --lenient), two locations, a copy
damaged and repaired, and a deleted file's tombstone. It runs on SQLite and on
the real PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import S3Endpoint, local_and_s3_settings
from sqlalchemy import create_engine, text
from test_fixity import two_locations

from preserve.demo import REFERENCE_PATH, LoopbackSite, Route
from preserve.reindex import catalog_contents

CORPUS = Path(__file__).parent / "data" / "corpus"


def contents(database_url: str) -> dict[str, Counter[tuple[Any, ...]]]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = catalog_contents(connection)
    engine.dispose()
    return found


def lose_the_catalog(database_url: str, home: Path) -> None:
    if database_url.startswith("sqlite"):
        for path in home.glob("catalog.db*"):
            path.unlink()
        return
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def build_an_archive(run: Any, site: LoopbackSite, home: Path) -> Path:
    mirror = two_locations(home)
    page = site.url(REFERENCE_PATH)
    site.routes["/doomed"] = Route(b"<html><body><p>Taken down.</p></body></html>")
    assert run("capture", page, "--collection", "news").status == 0
    assert run("capture", page, "--collection", "news", "--no-describe").status == 0
    assert run("redescribe").status == 0
    imported = run("import", CORPUS / "webrecorder__pywb__iana.warc.gz",
                   CORPUS / "webrecorder__pywb__example.arc.gz",
                   CORPUS / "webrecorder__py-wacz__valid_example_1.wacz",
                   "--collection", "corpus")
    assert imported.status == 0, imported.err
    assert run("import", CORPUS / "webrecorder__warcio__example-digest.warc",
               "--collection", "broken", "--lenient").status == 1
    doomed = json.loads(run("capture", site.url("/doomed"), "--collection", "gone",
                            "--json").out)["warcs"][0]["key"]
    assert run("delete", doomed, "--reason", "takedown request 7").status == 0
    damaged = mirror / json.loads(run("get", page, "--json").out)["warc"]["key"]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    repaired = run("fixity", "run", "--repair")
    assert repaired.status == 0 and b"1 repaired" in repaired.out
    return mirror


def test_reindex_rebuilds_the_catalog_it_replaces(run: Any, site: LoopbackSite, home: Path,
                                                  database_url: str) -> None:
    build_an_archive(run, site, home)
    before = contents(database_url)
    assert all(before[table] for table in before if table != "missing_copies"), \
        "every rebuilt table has rows to compare"

    checked = run("reindex", "--check", "--json")
    rebuilt = run("reindex", "--json")

    assert checked.status == 0, checked.out
    report = json.loads(rebuilt.out)
    assert rebuilt.status == 0 and report["equal"] and report["problems"] == [], report
    assert report["files"] == len(before["warc_files"]) and report["tombstones"] == 1
    assert contents(database_url) == before
    assert "the rebuilt catalog equals the one it replaced" in run("reindex").text


def test_a_lost_catalog_is_rebuilt_from_storage_alone(run: Any, site: LoopbackSite,
                                                      home: Path, database_url: str) -> None:
    build_an_archive(run, site, home)
    before = contents(database_url)
    lose_the_catalog(database_url, home)

    rebuilt = run("reindex", "--json")

    report = json.loads(rebuilt.out)
    assert rebuilt.status == 0 and report["replaced_empty"] and report["problems"] == [], report
    assert contents(database_url) == before
    assert run("ledger", "verify").status == 0
    assert run("fixity", "run").status == 0  # every object accounted for, every copy good
    got = json.loads(run("get", "http://www.iana.org/", "--json").out)
    assert got["title"] and got["related"]


def test_what_storage_does_not_hold_is_reported(run: Any, site: LoopbackSite, home: Path,
                                                database_url: str) -> None:
    mirror = build_an_archive(run, site, home)
    key = json.loads(run("get", "http://www.iana.org/", "--json").out)["warc"]["key"]
    (mirror / key).unlink()  # a copy gone behind the catalog's back

    result = run("reindex", "--json")

    report = json.loads(result.out)
    assert result.status == 1
    assert report["differences"] == {"copies": {"only_before": 1, "only_after": 0}}
    assert json.loads(run("get", "http://www.iana.org/", "--json").out)["warc"]["copies"] == [
        "local"]


def test_a_catalog_is_rebuilt_from_an_s3_location_alone(run: Any, site: LoopbackSite,
                                                       home: Path, s3_endpoint: S3Endpoint,
                                                       database_url: str) -> None:
    """The folder is gone too: the bucket (moto's S3 server on loopback) holds the archive."""
    local_and_s3_settings(home, s3_endpoint)
    assert run("capture", site.url(REFERENCE_PATH), "--collection", "news").status == 0
    assert run("import", CORPUS / "webrecorder__pywb__iana.warc.gz",
               "--collection", "corpus").status == 0
    before = contents(database_url)
    lose_the_catalog(database_url, home)
    shutil.rmtree(home / "objects")
    settings = (home / "preserve.yaml").read_text()
    (home / "preserve.yaml").write_text(settings.replace("default_copies: [local, offsite]",
                                                         "default_copies: [offsite]"))

    rebuilt = run("reindex", "--json")

    report = json.loads(rebuilt.out)
    assert rebuilt.status == 0 and report["replaced_empty"] and not report["problems"], report
    after = contents(database_url)
    # Everything as it was, but the copies in the folder that is gone.
    assert {table: rows for table, rows in after.items() if table != "copies"} == {
        table: rows for table, rows in before.items() if table != "copies"}
    assert {row[1] for row in after["copies"]} == {"offsite"}
    assert len(after["copies"]) == len(before["copies"]) // 2
    assert json.loads(run("get", "http://www.iana.org/", "--json").out)["title"]
    assert run("ledger", "verify").status == 0


def test_a_damaged_checkpoint_is_named_and_a_good_copy_serves(
        run: Any, site: LoopbackSite, home: Path, database_url: str) -> None:
    mirror = build_an_archive(run, site, home)
    before = contents(database_url)
    checkpoints = sorted((home / "objects" / "ledger" / "checkpoints").iterdir())
    checkpoints[0].write_text("{not json")  # in the folder; the mirror's copy holds
    body = json.loads(checkpoints[1].read_text())
    body["entries"][0]["actor"] = "someone else"  # altered, its hash kept
    checkpoints[1].write_text(json.dumps(body))
    lose_the_catalog(database_url, home)

    rebuilt = run("reindex", "--json")
    verified = run("ledger", "verify", "--json")

    report = json.loads(rebuilt.out)
    assert rebuilt.status == 1  # rebuilt, and the damaged checkpoint named
    assert [problem.split(" (")[0] for problem in report["problems"]] == [
        f"ledger checkpoint ledger/checkpoints/{checkpoints[0].name} cannot be read"]
    assert contents(database_url) == before
    assert verified.status == 1 and any(
        checkpoints[0].name in problem for problem in json.loads(verified.out)["problems"])
    assert (mirror / "ledger" / "checkpoints" / checkpoints[0].name).is_file()


def test_a_catalog_whose_ledger_storage_lost_is_not_replaced(
        run: Any, site: LoopbackSite, home: Path, database_url: str) -> None:
    mirror = build_an_archive(run, site, home)
    before = contents(database_url)
    for folder in (home / "objects", mirror):  # one checkpoint damaged in every location
        sorted((folder / "ledger" / "checkpoints").iterdir())[1].write_text("{not json")

    result = run("reindex")

    assert result.status == 1  # the entries it held are in the catalog alone: kept
    assert result.err.startswith("preserve: the catalog's ledger has ")
    assert "nothing was replaced" in result.err and len(result.err.splitlines()) == 1
    assert contents(database_url) == before
