"""`preserve import`: other tools' WARC and ARC files, byte for byte, strict or lenient.

Every WARC-family file of tests/data/corpus (from the test suites of warcio,
pywb, py-wacz, FastWARC, jwarc, webarchive-commons, webarchive-discovery and
outbackcdx; see its MANIFEST.json) is imported, and each must be taken in or
refused exactly as expected.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from warcio.archiveiterator import ArchiveIterator

from preserve import importer
from preserve.catalog.schema import captures, other_records, warc_files
from preserve.errors import BadInput
from preserve.fingerprint import iter_chunks
from preserve.index import KeptIndexer, index_warc
from preserve.storage.filesystem import INCOMING, MARKER
from preserve.warc_digests import member_starts, verify_records

CORPUS = Path(__file__).parent / "data" / "corpus"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())
# Files refused by a strict import, and what the refusal must say; every other file is
# imported.
REFUSED = {
    "chatnoir-eu__chatnoir-resiliparse__block-sized-records.warc.lz4":
        "compressed with LZ4: unsupported",
    "chatnoir-eu__chatnoir-resiliparse__clipped.warc.gz":
        "offset 0 (http://www.houstonpress.com/music/a-humble-chance-the-rapper-leads-a-"
        "spiritual-awakening-at-revention-8866723): expected readable records, found "
        "unreadable (the gzip member at offset 0 is cut short)",
    "iipc__webarchive-commons__link-extraction-test.warc": "offset 3605",
    "ukwa__webarchive-discovery__IAH-20080430204825-00000-blackbook-truncated.arc":
        "offset 1459 (record 2): expected readable records, found unreadable",
    "webrecorder__pywb__example.warc":
        "offset 4061 (http://example.com?example=1): expected the next record right after "
        "Content-Length bytes",
    "webrecorder__warcio__example-bad-non-chunked.warc.gz":
        "offset 0 (http://example.com/): WARC-Block-Digest expected "
        "sha1:DVRKRZEWKT4QEWGQOSFOA5KY5VDIWJLW, "
        "found sha1:W5NMHSQVKVJVH3GFFGY7J7SJNY7GMGGO",
    "webrecorder__warcio__example-digest.warc":
        "offset 0 (http://example.com/): WARC-Payload-Digest expected "
        "sha1:1112H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ, "
        "found sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ (and 1 more)",
}


def catalogued(home: Path) -> tuple[int, int]:
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as connection:
        counts = (connection.execute(select(func.count()).select_from(warc_files)).scalar_one(),
                  connection.execute(select(func.count()).select_from(captures)).scalar_one())
    engine.dispose()
    return counts


def stored_objects(home: Path) -> list[Path]:
    """The objects in the default location (its marker, which names the folder, is none)."""
    return sorted(path for path in (home / "objects").rglob("*")
                  if path.is_file() and path.name != MARKER) \
        if (home / "objects").exists() else []


def test_the_corpus_copy_is_what_its_manifest_says() -> None:
    for entry in MANIFEST:
        data = (CORPUS / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
    assert set(REFUSED) <= {entry["file"] for entry in MANIFEST}


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_every_corpus_file_is_imported_or_refused_as_expected(run: Any, home: Path,
                                                              entry: dict[str, Any]) -> None:
    path = CORPUS / entry["file"]
    result = run("import", path, "--collection", "corpus", "--json")

    if entry["file"] in REFUSED:
        assert result.status == 2, result.text
        assert result.err.startswith(f"preserve: error: import: {path}: ")
        assert REFUSED[entry["file"]] in result.err
        assert len(result.err.splitlines()) == 1
        assert catalogued(home) == (0, 0) and stored_objects(home) == []  # nothing written
        return
    assert result.status == 0, result.err
    (report,) = json.loads(result.out)["files"]
    assert report["imported"] and report["sha256"] == entry["sha256"]
    stored = home / "objects" / report["key"]
    assert stored.read_bytes() == path.read_bytes()  # byte for byte
    assert report["format"] == ("ARC" if ".arc" in entry["file"] else
                                "WACZ" if entry["file"].endswith(".wacz") else "WARC")
    files, indexed = catalogued(home)
    assert files == 1 + len(report["descriptions_warcs"])
    assert indexed >= report["captures"]


WARC_FILES = [entry["file"] for entry in MANIFEST
              if entry["file"].endswith((".warc", ".warc.gz")) and entry["file"] not in REFUSED]


@pytest.mark.parametrize("name", WARC_FILES)
def test_the_index_built_in_the_verifying_read_is_warcios(name: str) -> None:
    """Import indexes a WARC file from the same read that verifies it; the index must be
    the one warcio's reading gives, or (where it cannot tell) none, and warcio reads."""
    path = CORPUS / name
    indexer = KeptIndexer(name)
    with path.open("rb") as stream:
        assert list(verify_records(iter_chunks(stream), keep=indexer)) == []
    fast = indexer.finish(path.stat().st_size)
    with path.open("rb") as stream:
        slow = index_warc(stream, name)

    assert fast is None or fast == slow
    if name in ("webrecorder__pywb__iana.warc.gz", "iipc__jwarc__cc.warc.gz",
                "webrecorder__warcio__example-iana.org-chunked.warc"):
        assert fast is not None  # the common case takes the one read


@pytest.mark.parametrize("damaged", [False, True])
def test_a_large_file_is_read_in_parts_with_the_same_outcome(
        damaged: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large gzipped WARC file is verified and indexed in parts, one per core (here every
    file is "large"): the same index as one reading, or, with a problem in a part, one
    reading names it."""
    path = tmp_path / "iana.warc.gz"
    data = bytearray((CORPUS / "webrecorder__pywb__iana.warc.gz").read_bytes())
    if damaged:
        data[len(data) * 3 // 4] ^= 0xFF  # in the compressed bytes of a member of the last part
    path.write_bytes(bytes(data))
    monkeypatch.setattr(importer, "PARALLEL_BYTES", 10 ** 12)

    def outcome() -> Any:
        try:
            plan = importer.read_through(path, lambda sha256: f"k/{sha256}", lenient=False)
        except BadInput as exc:
            return str(exc)
        return plan.sha256, plan.size, plan.index

    whole = outcome()
    monkeypatch.setattr(importer, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(importer.os, "cpu_count", lambda: 3)
    cuts = member_starts(path, 3)
    told: list[str] = []
    parted = importer._verified_in_parts(path, told.append)

    assert len(cuts) == 4 and cuts[0] == 0 < cuts[1] < cuts[2] < cuts[3] == len(data)
    assert told == [hashlib.sha256(data).hexdigest()]  # before the parts were read, damaged too
    assert outcome() == whole
    if damaged:
        assert isinstance(whole, str) and "gzip" in whole and parted is None
    else:
        assert parted == whole


def test_a_strict_refusal_writes_nothing_and_checks_every_file_first(run: Any,
                                                                     home: Path) -> None:
    good = CORPUS / "webrecorder__pywb__example.warc.gz"
    bad = CORPUS / "webrecorder__warcio__example-digest.warc"

    result = run("import", good, bad, "--collection", "corpus")

    assert result.status == 2
    assert result.err == (f"preserve: error: import: {bad}: {REFUSED[bad.name]}; nothing "
                          "imported (--lenient keeps the file and catalogues its sound "
                          "records)\n")
    assert catalogued(home) == (0, 0) and stored_objects(home) == []
    # nor the folders of the copy made early and removed (imports/corpus/YYYY/MM)
    assert [path for path in (home / "objects").rglob("*")
            if path.is_dir() and INCOMING not in path.parts] == []


SEVERAL = [CORPUS / name for name in ("webrecorder__pywb__example.warc.gz",
                                       "webrecorder__pywb__iana.warc.gz",
                                       "webrecorder__pywb__example.arc.gz")]


def test_several_files_wait_for_their_turn_on_disk_not_in_memory(
        run: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every file is read through before the first is catalogued; the indexes of those
    # waiting are kept in a folder of the work folder (on the data's disk, where /tmp
    # may be memory), so memory holds one file's at a time.
    work = home / "work"
    seen: list[tuple[int, list[str]]] = []
    import_one = importer._import_one

    def importing(plan: Any, **kwargs: Any) -> Any:
        [folder] = work.glob("preserve-import-*")
        seen.append((plan.index.records, sorted(path.name for path in folder.iterdir())))
        return import_one(plan, **kwargs)

    left: list[list[Path]] = []
    checkpoint = importer.ledger.checkpoint

    def checkpointing(*args: Any, **kwargs: Any) -> Any:  # the import's last step
        left.append(list(work.glob("preserve-import-*")))
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(importer, "_import_one", importing)
    monkeypatch.setattr(importer.ledger, "checkpoint", checkpointing)
    result = run("import", *SEVERAL, "--collection", "corpus", "--json")

    assert result.status == 0, result.err
    reports = json.loads(result.out)["files"]
    # each file's whole index came back for its turn; the others' waited in files
    assert [records for records, _waiting in seen] == [report["records"] for report in reports]
    assert all(records > 0 for records, _waiting in seen)
    assert [waiting for _records, waiting in seen] == [
        ["1.index", "2.index"], ["2.index"], []]
    assert left[-1] == []  # the folder was removed before the import ended
    assert catalogued(home)[1] == sum(report["captures"] for report in reports)


@pytest.mark.parametrize("fails", ["folder", "write"])
def test_no_room_to_set_an_index_aside_is_one_clear_error_and_nothing_imported(
        run: Any, home: Path, monkeypatch: pytest.MonkeyPatch, fails: str) -> None:
    import errno

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if fails == "folder":
        from preserve import workdir
        monkeypatch.setattr(workdir.tempfile, "mkdtemp", full)
    else:
        monkeypatch.setattr(importer.pickle, "dump", full)
    result = run("import", *SEVERAL, "--collection", "corpus")

    assert result.status == 1
    work = home / "work"
    said = (f"preserve: error: import: cannot make a folder in {work} for the indexes of the "
            "files waiting their turn" if fails == "folder" else
            f"preserve: error: import: cannot set the index of {SEVERAL[0]} aside in "
            f"{work}/preserve-import-")
    assert result.err.startswith(said), result.err
    assert result.err.endswith("(No space left on device); nothing imported\n")
    assert catalogued(home) == (0, 0)
    assert not [path for path in stored_objects(home) if "imports" in path.parts]
    assert list(work.glob("preserve-import-*")) == []


def test_copies_made_while_a_file_is_read_are_removed_when_it_is_refused(
        run: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A large file's copies are made as soon as its digest is known, while its parts are
    # still being verified: one refused then (a part damaged) leaves nothing stored.
    from preserve import ingest

    made: list[str] = []
    store_copies = ingest.store_copies

    def recording(*args: Any, **kwargs: Any) -> Any:
        made.append(args[2])
        return store_copies(*args, **kwargs)

    monkeypatch.setattr(importer, "store_copies", recording)
    monkeypatch.setattr(importer, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(importer.os, "cpu_count", lambda: 2)
    damaged = tmp_path / "iana.warc.gz"
    data = bytearray((CORPUS / "webrecorder__pywb__iana.warc.gz").read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF
    damaged.write_bytes(bytes(data))
    good = CORPUS / "webrecorder__pywb__iana.warc.gz"

    refused = run("import", good, damaged, "--collection", "corpus")

    assert refused.status == 2 and f"import: {damaged}: " in refused.err
    # Copies of both were made: the good file's once it was read, the damaged one's once
    # its digest was known (before its parts were verified).
    assert [Path(key).name.split("-", 1)[1] for key in made] == [good.name, damaged.name]
    assert catalogued(home) == (0, 0) and stored_objects(home) == []
    imported = run("import", good, "--collection", "corpus", "--json")
    assert imported.status == 0
    (report,) = json.loads(imported.out)["files"]
    assert home / "objects" / report["key"] in stored_objects(home)
    assert (home / "objects" / report["key"]).read_bytes() == good.read_bytes()


def test_copies_made_early_are_removed_when_the_import_stops_before_cataloguing(
        run: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The catalog fails between the copies and the cataloguing (here: when asked whether
    # the bytes are known already): the copies made early do not stay behind.
    from preserve.errors import CatalogError

    asked: list[str] = []
    known = importer._known

    def failing(engine: Any, sha256: str) -> str | None:
        asked.append(sha256)
        if len(asked) > 1:
            raise CatalogError("catalog: the database went away")
        return known(engine, sha256)

    monkeypatch.setattr(importer, "_known", failing)
    result = run("import", CORPUS / "webrecorder__pywb__example.warc.gz", "--collection", "c")

    assert result.status != 0 and "the database went away" in result.err
    assert len(asked) == 2  # the copies were made: the first asking said "not known"
    assert catalogued(home) == (0, 0)
    assert not [path for path in stored_objects(home) if "imports" in path.parts]


def test_catalog_times_are_written_as_sqlalchemy_writes_them(run: Any, home: Path) -> None:
    # Rows go in by the driver's executemany: on SQLite a time must still be the text
    # SQLAlchemy writes (with microseconds), or comparisons in SQL miss it.
    import re
    import sqlite3

    assert run("import", CORPUS / "webrecorder__pywb__example.warc.gz", "--collection", "c",
               "--no-describe").status == 0
    with sqlite3.connect(home / "catalog.db") as connection:
        times = [row[0] for table, column in (("captures", "capture_time"),
                                              ("other_records", "record_time"),
                                              ("warc_files", "created_at"))
                 for row in connection.execute(f"SELECT {column} FROM {table}")
                 if row[0] is not None]
    assert len(times) > 3
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", moment)
               for moment in times), times


def test_catalog_rows_convert_each_distinct_value_once() -> None:
    from preserve.catalog.records import _converted

    calls = []

    def processor(value: Any) -> str:
        calls.append(value)
        return f"<{value}>"

    from zoneinfo import ZoneInfo

    first, second = datetime(2024, 1, 2, 3, 4, 5, 6), datetime(2024, 1, 2, 3, 4, 6)
    # Equal, yet not the same: the second is an hour later (New York's clocks went back).
    early = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    late = early.replace(fold=1)
    rows = [(1, first, "a"), (2, first, "b"), (3, second, "c"), (4, [7], "d"), (5, [7], "e"),
            (6, early, "f"), (7, late, "g"), (8, 1, "h"), (9, True, "i")]

    assert _converted(rows, [(1, processor)]) == [
        (1, f"<{first}>", "a"), (2, f"<{first}>", "b"), (3, f"<{second}>", "c"),
        (4, "<[7]>", "d"), (5, "<[7]>", "e"), (6, f"<{early}>", "f"), (7, f"<{late}>", "g"),
        (8, "<1>", "h"), (9, "<True>", "i")]
    # Each distinct value once; what cannot be looked up, each time.
    assert calls == [first, second, [7], [7], early, late, 1, True]


def test_lenient_keeps_the_file_and_catalogues_its_sound_records(run: Any, home: Path) -> None:
    path = CORPUS / "webrecorder__pywb__example.warc"
    result = run("import", path, "--collection", "corpus", "--lenient", "--json")

    assert result.status == 1  # imported, with problems reported
    (report,) = json.loads(result.out)["files"]
    assert (home / "objects" / report["key"]).read_bytes() == path.read_bytes()
    assert report["problems"][0].startswith("offset 4061 (http://example.com?example=1): ")
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as connection:
        offsets = connection.execute(select(captures.c.offset).join(
            warc_files, warc_files.c.id == captures.c.warc_file_id).where(
            warc_files.c.key == report["key"])).scalars().all()
    engine.dispose()
    assert offsets and 4061 not in offsets
    # The file is kept as it came: a deep audit finds it whole, and a repair has nothing
    # to mend (it used to fail every deep audit, and --repair rewrote intact copies).
    audit = run("fixity", "run", "--deep", "--repair", "--json")
    assert audit.status == 0, audit.out
    assert json.loads(audit.out)["findings"] == []
    stored = home / "objects" / report["key"]
    stored.write_bytes(stored.read_bytes().replace(b"Example Domain", b"Example Domains", 1))
    changed = json.loads(run("fixity", "run", "--deep", "--json").out)["findings"]
    assert changed[0]["kind"] == "size mismatch" and len(changed) > 1  # and its records
    plain = run("import", CORPUS / "chatnoir-eu__chatnoir-resiliparse__clipped.warc.gz",
                "--collection", "corpus", "--lenient")
    assert plain.status == 1 and "left out: offset 0 (http://www.houstonpress.com/" in plain.text


def test_the_same_file_twice_is_imported_once(run: Any, home: Path) -> None:
    path = CORPUS / "webrecorder__pywb__example.warc.gz"
    first = json.loads(run("import", path, "--collection", "corpus", "--json").out)
    counts = catalogued(home)
    again = run("import", path, "--collection", "other")

    (report,) = first["files"]
    assert again.status == 0
    assert again.text == (f"{path}: already preserved as {report['key']} "
                          f"(sha256:{report['sha256']}); nothing to do\n")
    assert catalogued(home) == counts


def test_descriptions_go_into_a_companion_warc_that_refers_to_the_originals(
        run: Any, home: Path) -> None:
    path = CORPUS / "webrecorder__pywb__iana.warc.gz"
    (report,) = json.loads(run("import", path, "--collection", "corpus", "--json").out)["files"]
    (companion,) = report["descriptions_warcs"]
    responses = {}
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                responses[record.rec_headers.get_header("WARC-Record-ID")] = (
                    record.rec_headers.get_header("WARC-Target-URI"))
    with (home / "objects" / companion).open("rb") as stream:
        metadata = [record.rec_headers for record in ArchiveIterator(stream)
                    if record.rec_type == "metadata"]
    got = run("get", "http://www.iana.org/", "--json")

    assert report["described"] == len(metadata) > 10
    for headers in metadata:
        refers = headers.get_header("WARC-Refers-To")
        assert headers.get_header("WARC-Target-URI") == (
            "urn:preserve:description:" + responses[refers])
    assert (home / "objects" / report["key"]).read_bytes() == path.read_bytes()
    assert got.status == 0 and json.loads(got.out)["title"]


@pytest.mark.parametrize("name", ["webrecorder__pywb__iana.warc.gz",
                                  "webrecorder__pywb__example.arc.gz",
                                  "webrecorder__py-wacz__example-warcinfo-metadata.warc",
                                  "iipc__jwarc__cc.warc.gz"])
def test_every_record_is_indexed(run: Any, home: Path, name: str) -> None:
    path = CORPUS / name
    with path.open("rb") as stream:
        kinds = sorted(record.rec_type for record in ArchiveIterator(stream, arc2warc=True))
    assert run("import", path, "--collection", "corpus", "--no-describe").status == 0
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as connection:
        indexed = sorted([*connection.execute(select(captures.c.record_type)).scalars(),
                          *connection.execute(select(other_records.c.record_type)).scalars()])
        records = connection.execute(select(warc_files.c.records)).scalar_one()
    engine.dispose()

    assert indexed == kinds and records == len(kinds)


def test_a_captures_request_and_descriptions_are_found_with_it(run: Any, home: Path) -> None:
    assert run("import", CORPUS / "webrecorder__pywb__iana.warc.gz",
               "--collection", "corpus").status == 0
    got = json.loads(run("get", "http://www.iana.org/", "--json").out)

    kinds = [record["record_type"] for record in got["related"]]
    assert kinds.count("request") == 1 and kinds.count("metadata") == 1
    request = next(r for r in got["related"] if r["record_type"] == "request")
    assert request["warc"]["key"] == got["warc"]["key"] and request["warc"]["length"] > 0


def test_an_arc_file_is_retrieved_and_described(run: Any, home: Path) -> None:
    for name in ("webrecorder__pywb__example.arc", "webrecorder__pywb__example.arc.gz"):
        result = run("import", CORPUS / name, "--collection", name.rsplit(".", 1)[-1])
        assert result.status == 0, result.err
        assert "1 pages described" in result.text
    payload = run("get", "http://example.com/", "--payload")
    record = run("get", "http://example.com/", "--record")

    assert payload.status == 0 and b"<title>Example Domain</title>" in payload.out
    assert record.status == 0 and record.out.startswith(b"\x1f\x8b")  # the .arc.gz's member


def test_what_is_not_a_warc_is_named(run: Any, tmp_path: Path, home: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, these are notes\n")
    absent = tmp_path / "absent.warc.gz"

    plain = run("import", text, "--collection", "corpus")
    missing = run("import", absent, "--collection", "corpus")
    no_collection = run("import", text, "--collection", "../x")

    assert plain.status == 2 and plain.err == (
        f"preserve: error: import: {text}: not a WARC or ARC file (it starts with "
        "'hello, these are notes\\\\n')\n")
    assert missing.status == 2 and missing.err == (
        f"preserve: error: import: {absent}: no such file\n")
    assert no_collection.status == 2
    assert catalogued(home) == (0, 0)


def test_an_imported_revisit_gives_its_originals_bytes(run: Any, home: Path) -> None:
    assert run("import", CORPUS / "webrecorder__pywb__example.warc.gz",
               "--collection", "corpus").status == 0
    listed = json.loads(run("list", "http://example.com/?example=1", "--json").out)["captures"]
    revisit = next(s for s in listed if s["record_type"] == "revisit")
    original = next(s for s in listed if s["record_type"] == "response")
    at_revisit = run("get", "http://example.com/?example=1", "--at", revisit["capture_time"],
                     "--payload")
    at_original = run("get", "http://example.com/?example=1", "--at",
                      original["capture_time"], "--payload")

    assert at_revisit.status == 0 and at_revisit.out == at_original.out
    assert b"Example Domain" in at_revisit.out


def test_a_wacz_is_indexed_where_its_warcs_lie_and_audited_deep(run: Any, home: Path) -> None:
    path = CORPUS / "webrecorder__py-wacz__valid_example_1.wacz"
    (report,) = json.loads(run("import", path, "--collection", "w", "--json").out)["files"]
    stored = home / "objects" / report["key"]
    got = json.loads(run("get", "http://www.example.com/", "--json").out)
    record = run("get", "http://www.example.com/", "--record")
    clean = run("fixity", "run", "--deep", "--json")

    assert report["format"] == "WACZ" and stored.read_bytes() == path.read_bytes()
    assert got["warc"]["key"] == report["key"] and got["title"] == "Example Domain"
    # Read where it lies in the ZIP: one gzip member (py-wacz gzips the records of its
    # archive/example-collection.warc).
    assert record.status == 0 and gzip.decompress(record.out).startswith(b"WARC/1.")
    assert clean.status == 0 and json.loads(clean.out)["records"] >= 4
    offset, length = got["warc"]["offset"], got["warc"]["length"]
    data = bytearray(stored.read_bytes())
    data[offset + length // 2] ^= 0x01  # inside that record's gzip member
    stored.write_bytes(bytes(data))
    damaged = json.loads(run("fixity", "run", "--deep", "--json").out)["findings"]
    # Named where it lies in the ZIP (the member no longer inflates, so by its place).
    assert [(f["kind"], f["offset"]) for f in damaged if f["kind"] != "corrupted"] == [
        ("record digest mismatch", offset)]


def test_a_wacz_whose_files_do_not_match_its_datapackage_is_refused(run: Any, home: Path,
                                                                   tmp_path: Path) -> None:
    import zipfile

    source = CORPUS / "webrecorder__py-wacz__valid_example_2.wacz"
    changed, deflated = tmp_path / "changed.wacz", tmp_path / "deflated.wacz"
    with zipfile.ZipFile(source) as package, \
            zipfile.ZipFile(changed, "w") as out, zipfile.ZipFile(deflated, "w") as packed:
        for info in package.infolist():
            data = package.read(info)
            out.writestr(info, data.replace(b"Example", b"Exemple")
                         if info.filename == "pages/pages.jsonl" else data)
            packed.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED
                            if info.filename.startswith("archive/") else info.compress_type)

    mismatch = run("import", changed, "--collection", "w")
    unreadable = run("import", deflated, "--collection", "w")

    assert mismatch.status == 2
    assert f"import: {changed}: offset " in mismatch.err
    assert "(pages/pages.jsonl): expected sha256:" in mismatch.err
    assert unreadable.status == 2 and "(archive/example-collection.warc): expected a WARC " \
        "entry stored in place, found deflated" in unreadable.err
    assert catalogued(home) == (0, 0) and stored_objects(home) == []


def test_an_arc_file_with_a_long_name_is_catalogued(run: Any, tmp_path: Path,
                                                    database_url: str) -> None:
    """An ARC record's ID holds its file's key (name and all): PostgreSQL must take it."""
    path = tmp_path / ("an-arc-file-named-at-length-by-the-crawler-that-wrote-it-" * 3 + ".arc.gz")
    path.write_bytes((CORPUS / "webrecorder__pywb__example.arc.gz").read_bytes())

    result = run("import", path, "--collection", "corpus")

    assert result.status == 0, result.err
    assert run("get", "http://example.com/", "--json").status == 0


def test_where_the_verifying_read_cannot_tell_warcio_reads(tmp_path: Path) -> None:
    """An empty gzip member (BGZF's end block) after a record, and a folded header: the
    index is warcio's, never one with a wrong length or URL."""
    source = (CORPUS / "webrecorder__pywb__iana.warc.gz").read_bytes()
    plain = gzip.decompress(source)
    first_end = plain.index(b"\r\n\r\nWARC/") + 4
    folded = plain[:first_end].replace(b"WARC-Date:", b"WARC-Note: one\r\n two\r\nWARC-Date:",
                                       1) + plain[first_end:]
    cases = {"empty-member.warc.gz": source + gzip.compress(b""),
             "folded.warc": folded}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        indexer = KeptIndexer(name)
        with path.open("rb") as stream:
            assert list(verify_records(iter_chunks(stream), keep=indexer)) == []
        with path.open("rb") as stream:
            slow = index_warc(stream, name)
        plan = importer.read_through(path, lambda _sha256, key=name: key, lenient=False)

        assert indexer.finish(len(data)) is None, name
        assert plan.index == slow, name


def test_a_waczs_other_records_are_indexed(run: Any, home: Path) -> None:
    assert run("import", CORPUS / "webrecorder__py-wacz__valid_example_1.wacz",
               "--collection", "corpus", "--no-describe").status == 0
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as connection:
        records = connection.execute(select(warc_files.c.records)).scalar_one()
        indexed = (connection.execute(select(func.count()).select_from(captures)).scalar_one()
                   + connection.execute(select(func.count()).select_from(other_records))
                   .scalar_one())
    engine.dispose()

    assert indexed == records > 1


def test_a_wacz_with_a_damaged_entry_is_refused_not_a_crash(run: Any, home: Path,
                                                           tmp_path: Path) -> None:
    source = CORPUS / "webrecorder__py-wacz__valid_example_1.wacz"
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as package:
        [entry] = [info for info in package.infolist() if info.filename.startswith("archive/")]
    at = entry.header_offset + 30 + len(entry.filename) + len(entry.extra)
    data[at + entry.compress_size // 2] ^= 0x01  # inside the stored WARC entry's bytes
    path = tmp_path / "damaged.wacz"
    path.write_bytes(bytes(data))

    result = run("import", path, "--collection", "corpus")

    assert result.status == 2 and len(result.err.splitlines()) == 1, result.err
    assert result.err.startswith(f"preserve: error: import: {path}: ")
    assert catalogued(home) == (0, 0)


def test_a_page_that_breaks_the_extractor_is_imported_with_the_failure_recorded(
        run: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Description never stops an import: the file is catalogued whole, the page that
    # broke the extractor is named, the others are described.
    from concurrent.futures import ThreadPoolExecutor

    import trafilatura

    from preserve import jobs

    extract = trafilatura.bare_extraction
    asked: list[str] = []

    def breaking(*args: Any, **kwargs: Any) -> Any:  # on the first page it is given
        asked.append(kwargs["url"])
        if len(asked) == 1:
            raise RecursionError("maximum recursion depth exceeded")
        return extract(*args, **kwargs)

    # Threads instead of worker processes, so that the broken extractor is the one used.
    monkeypatch.setattr(jobs, "process_pool", lambda workers: ThreadPoolExecutor(workers))
    monkeypatch.setattr(trafilatura, "bare_extraction", breaking)
    result = run("import", CORPUS / "webrecorder__pywb__example.warc.gz", "--collection", "c",
                 "--json")

    assert result.status == 0, result.err
    (report,) = json.loads(result.out)["files"]
    assert report["imported"] and report["captures"] == 3
    assert len(asked) == 2 and report["described"] == 1  # its response and its revisit
    assert report["not_described"] == [f"{asked[0]}: not described "
                                       "(RecursionError: maximum recursion depth exceeded)"]
    assert catalogued(home) == (2, 3)  # the file, and the companion WARC of the description
