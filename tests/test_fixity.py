"""Fixity: every stored copy re-hashed against the catalog; damage is named, exit 1."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from preserve import fixity
from preserve.demo import REFERENCE_PATH, LoopbackSite, Route


@pytest.fixture
def stored(run: Any, site: LoopbackSite, home: Path, database_url: str) -> list[Path]:
    """Two captures, so damage to one must not hide the health of the other."""
    paths = []
    for path in (REFERENCE_PATH, "/gone"):
        report = json.loads(run("capture", site.url(path), "--collection", "c", "--json").out)
        paths.append(home / "objects" / report["warcs"][0]["key"])
    return paths


def audit(run: Any) -> tuple[int, dict[str, Any], str]:
    as_json = run("fixity", "run", "--json")
    plain = run("fixity", "run")
    assert plain.status == as_json.status
    return as_json.status, json.loads(as_json.out), plain.text


def key_of(path: Path, home: Path) -> str:
    return path.relative_to(home / "objects").as_posix()


def test_all_copies_hold(run: Any, stored: list[Path]) -> None:
    status, result, plain = audit(run)
    assert status == 0
    assert result["passed"] is True and result["findings"] == []
    assert result["objects"] == 2 and result["copies"] == 2
    assert result["bytes"] == sum(path.stat().st_size for path in stored)
    assert "all hold" in plain


def test_a_flipped_bit_is_corruption(run: Any, stored: list[Path], home: Path) -> None:
    data = bytearray(stored[0].read_bytes())
    data[len(data) // 2] ^= 0x01
    stored[0].write_bytes(bytes(data))
    status, result, plain = audit(run)
    assert status == 1
    [finding] = result["findings"]
    assert finding["kind"] == "corrupted"
    assert finding["key"] == key_of(stored[0], home) and finding["location"] == "local"
    assert finding["expected"].startswith("sha256:") and finding["found"].startswith("sha256:")
    assert finding["expected"] != finding["found"]
    assert key_of(stored[0], home) in plain and key_of(stored[1], home) not in plain


def test_a_truncated_file_is_a_size_mismatch(run: Any, stored: list[Path], home: Path) -> None:
    size = stored[1].stat().st_size
    with stored[1].open("r+b") as stream:
        stream.truncate(size - 7)
    status, result, _ = audit(run)
    assert status == 1
    [finding] = result["findings"]
    assert finding["kind"] == "size mismatch"
    assert finding["key"] == key_of(stored[1], home)
    assert finding["expected"] == f"{size} bytes"
    assert finding["found"].startswith(f"{size - 7} bytes")


def test_a_deleted_file_is_missing(run: Any, stored: list[Path], home: Path) -> None:
    stored[0].unlink()
    status, result, plain = audit(run)
    assert status == 1
    [finding] = result["findings"]
    assert finding["kind"] == "missing" and finding["key"] == key_of(stored[0], home)
    assert "missing" in plain


def test_every_damaged_object_is_named(run: Any, stored: list[Path], home: Path) -> None:
    stored[0].unlink()
    stored[1].write_bytes(b"x" * stored[1].stat().st_size)  # same size, other content
    status, result, _ = audit(run)
    assert status == 1
    assert sorted((f["kind"], f["key"]) for f in result["findings"]) == sorted([
        ("missing", key_of(stored[0], home)), ("corrupted", key_of(stored[1], home))])


def test_damaged_record_is_not_served(run: Any, stored: list[Path], site: LoopbackSite) -> None:
    meta = json.loads(run("get", site.url(REFERENCE_PATH), "--json").out)
    offset, length = meta["warc"]["offset"], meta["warc"]["length"]
    original = stored[0].read_bytes()
    # Past the gzip header's mtime/flags bytes, any flipped byte changes the record.
    for position in [*range(offset + 10, offset + length, 97), offset + length - 1]:
        data = bytearray(original)
        data[position] ^= 0xFF
        stored[0].write_bytes(bytes(data))
        for form in ("--payload", "--record"):
            result = run("get", site.url(REFERENCE_PATH), form)
            assert result.status == 1, f"byte {position - offset} of the record, {form}"
            assert result.out == b""
            assert "damaged record" in result.err and meta["warc"]["key"] in result.err
            assert len(result.err.strip().splitlines()) == 1
    stored[0].write_bytes(original)
    assert run("get", site.url(REFERENCE_PATH), "--payload").status == 0


def test_empty_catalog_passes(run: Any, database_url: str) -> None:
    from preserve.catalog import open_engine
    open_engine(database_url).dispose()  # made, as the first capture or import makes it
    status, result, _ = audit(run)
    assert status == 0 and result["objects"] == 0


def test_an_extended_file_is_a_size_mismatch(run: Any, stored: list[Path], home: Path) -> None:
    size = stored[0].stat().st_size
    with stored[0].open("ab") as stream:
        stream.write(b"appended")
    status, result, _ = audit(run)
    assert status == 1
    [finding] = result["findings"]
    assert (finding["kind"], finding["key"]) == ("size mismatch", key_of(stored[0], home))
    assert finding["found"].startswith(f"{size + 8} bytes")


def two_locations(home: Path) -> Path:
    mirror = home.parent / "mirror"
    home.mkdir(parents=True, exist_ok=True)
    (home / "preserve.yaml").write_text(
        "storage:\n  locations:\n"
        f"    local: {{type: filesystem, path: {home / 'objects'}}}\n"
        f"    mirror: {{type: filesystem, path: {mirror}}}\n"
        "  default_copies: [local, mirror]\n")
    return mirror


def test_every_copy_is_checked_and_a_good_copy_serves(run: Any, site: LoopbackSite,
                                                       home: Path, database_url: str) -> None:
    mirror = two_locations(home)
    report = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                            "--json").out)
    key = report["warcs"][0]["key"]
    assert report["warcs"][0]["locations"] == ["local", "mirror"]
    assert (mirror / key).read_bytes() == (home / "objects" / key).read_bytes()
    status, result, _ = audit(run)
    assert status == 0 and result["copies"] == 2

    (mirror / key).write_bytes(b"\0" * (mirror / key).stat().st_size)
    status, result, _ = audit(run)
    assert status == 1
    assert [(f["kind"], f["location"]) for f in result["findings"]] == [("corrupted", "mirror")]

    (home / "objects" / key).unlink()
    status, result, _ = audit(run)
    assert sorted((f["kind"], f["location"]) for f in result["findings"]) == [
        ("corrupted", "mirror"), ("missing", "local")]
    failed = run("get", site.url(REFERENCE_PATH), "--payload")
    assert failed.status == 1 and "damaged record" in failed.err


def test_get_falls_back_to_a_good_copy(run: Any, site: LoopbackSite, home: Path) -> None:
    mirror = two_locations(home)
    key = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                         "--json").out)["warcs"][0]["key"]
    (home / "objects" / key).write_bytes(b"\0" * (home / "objects" / key).stat().st_size)
    result = run("get", site.url(REFERENCE_PATH), "--payload")
    assert result.status == 0
    assert result.out == site.routes[REFERENCE_PATH].body
    assert (mirror / key).exists()


def test_a_catalogued_location_missing_from_settings_is_reported(
        run: Any, site: LoopbackSite, home: Path) -> None:
    two_locations(home)
    run("capture", site.url(REFERENCE_PATH), "--collection", "c")
    (home / "preserve.yaml").unlink()  # back to the single default location
    status, result, _ = audit(run)
    assert status == 1
    assert [(f["kind"], f["location"]) for f in result["findings"]] == [
        ("location not configured", "mirror")]


def test_a_record_is_read_by_its_range_only(run: Any, site: LoopbackSite, home: Path) -> None:
    from preserve import retrieve
    from preserve.catalog import open_engine
    from preserve.config import load_settings
    from preserve.storage import FilesystemStore

    class CountingStore(FilesystemStore):
        """The filesystem store, noting which reads it was asked for."""

        def __init__(self, root: Path) -> None:
            super().__init__("local", root)
            self.reads: list[tuple[str, int, int]] = []
            self.opened: list[str] = []

        def open(self, key: str) -> Any:
            self.opened.append(key)
            return super().open(key)

        def read_range(self, key: str, offset: int, length: int) -> bytes:
            self.reads.append((key, offset, length))
            with super().open(key) as stream:
                stream.seek(offset)
                return stream.read(length)

    run("capture", site.url(REFERENCE_PATH), "--collection", "c")
    engine = open_engine(load_settings().database_url)
    snapshot = retrieve.find_snapshot(engine, site.url(REFERENCE_PATH))
    store = CountingStore(home / "objects")
    record = retrieve.read_record(engine, {"local": store}, snapshot)
    engine.dispose()
    assert store.reads == [(snapshot.warc_key, snapshot.offset, snapshot.length)]
    assert store.opened == []
    assert len(record) == snapshot.length


# -- issue 5: scope, deep mode, repair, events, unexpected objects -------------------------


def damage_one_record(path: Path, target_suffix: str) -> tuple[str, int]:
    """Change one byte of one response record's payload, keeping the gzip member valid.

    Returns the record's URI and the offset of its member, as deep mode must name them.
    """
    import gzip
    import io

    from warcio.archiveiterator import ArchiveIterator

    data = path.read_bytes()
    with path.open("rb") as stream:
        iterator = ArchiveIterator(stream)
        for record in iterator:
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            if record.rec_type == "response" and uri.endswith(target_suffix):
                offset = iterator.get_record_offset()
                length = iterator.get_record_length()
                break
        else:
            raise AssertionError(f"no response for {target_suffix}")
    member = bytearray(gzip.decompress(data[offset:offset + length]))
    member[-10] ^= 0x20  # a payload byte, before the closing CRLF CRLF
    replaced = io.BytesIO()
    with gzip.GzipFile(fileobj=replaced, mode="wb") as out:
        out.write(bytes(member))
    path.write_bytes(data[:offset] + replaced.getvalue() + data[offset + length:])
    return uri, offset


@pytest.fixture(params=["threads", "processes"])
def deep_workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Deep audits on threads (few records) and in worker processes (many: here every
    audit, and two workers even on one core); how many process pools were made."""
    made: list[int] = []
    if request.param == "processes":
        real = fixity.process_pool

        def counted(workers: int) -> Any:
            made.append(workers)
            return real(workers)

        monkeypatch.setattr(fixity, "DEEP_PROCESS_RECORDS", 0)
        monkeypatch.setattr(fixity, "process_pool", counted)
        monkeypatch.setattr(fixity.os, "cpu_count", lambda: 2)
    return made


def test_deep_mode_names_the_damaged_record(run: Any, stored: list[Path], home: Path,
                                            site: LoopbackSite, deep_workers: list[int],
                                            request: pytest.FixtureRequest) -> None:
    clean = run("fixity", "run", "--deep", "--json")
    assert clean.status == 0
    assert json.loads(clean.out)["records"] > 20
    uri, offset = damage_one_record(stored[0], REFERENCE_PATH)
    result = run("fixity", "run", "--deep", "--json")
    assert result.status == 1
    findings = json.loads(result.out)["findings"]
    assert findings[0]["kind"] in ("corrupted", "size mismatch")
    record = [f for f in findings if f["kind"] == "record digest mismatch"]
    assert {(f["record"], f["offset"]) for f in record} == {(uri, offset)}
    assert {f["expected"].split(":")[0] for f in record} == {"sha1"}
    # A payload byte changed: both digests fail, and each finding says which it is.
    assert sorted(f["digest"] for f in record) == ["WARC-Block-Digest", "WARC-Payload-Digest"]
    text = run("fixity", "run", "--deep").text
    assert f"record {uri} at offset {offset}, its WARC-Payload-Digest (expected sha1:" in text
    in_processes = "processes" in request.node.callspec.id
    assert deep_workers == ([2, 2, 2] if in_processes else [])


def test_deep_mode_checks_revisit_records_too(run: Any, site: LoopbackSite, home: Path,
                                              database_url: str) -> None:
    first = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                           "--json").out)
    second = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                            "--json").out)
    assert second["revisits"] > 0 and first["warcs"][0]["key"] != second["warcs"][0]["key"]
    path = home / "objects" / second["warcs"][0]["key"]
    from warcio.archiveiterator import ArchiveIterator
    with path.open("rb") as stream:
        iterator = ArchiveIterator(stream)
        for record in iterator:
            if record.rec_type == "revisit":
                revisit_offset = iterator.get_record_offset()
                break
    import gzip
    import io
    data = path.read_bytes()
    end = data.index(b"\x1f\x8b", revisit_offset + 2)
    member = bytearray(gzip.decompress(data[revisit_offset:end]))
    member[-6] ^= 0x20  # the last byte of its HTTP headers' blank line region
    rewritten = io.BytesIO()
    with gzip.GzipFile(fileobj=rewritten, mode="wb") as out:
        out.write(bytes(member))
    path.write_bytes(data[:revisit_offset] + rewritten.getvalue() + data[end:])
    findings = json.loads(run("fixity", "run", "--deep", "--json").out)["findings"]
    # A revisit's block is its HTTP headers: the block digest fails, and only it.
    assert {(f["offset"], f["digest"]) for f in findings
            if f["kind"] == "record digest mismatch"} == {(revisit_offset, "WARC-Block-Digest")}


def test_a_location_whose_folder_is_gone_is_out_of_reach_not_emptied(
        run: Any, site: LoopbackSite, home: Path) -> None:
    # An unmounted disk, a folder moved away: its copies are out of reach, said once per
    # copy as such, not "missing" one by one, and no new folder is made in its place to
    # checkpoint or repair into.
    mirror = two_locations(home)
    for path in (REFERENCE_PATH, "/gone"):
        run("capture", site.url(path), "--collection", "c")
    mirror.rename(mirror.with_name("unmounted"))

    for command in (("fixity", "run", "--json"), ("fixity", "run", "--repair", "--json"),
                    ("reconcile", "--repair", "--json")):
        audit = run(*command)
        assert audit.status == 1, command
        found = json.loads(audit.out)
        kinds = {item["kind"] for item in found.get("findings", found.get("discrepancies", []))}
        assert "missing" not in kinds and kinds, (command, kinds)
        assert not mirror.exists(), command  # nothing made where the folder was
    audit_json = json.loads(run("fixity", "run", "--json").out)
    assert "mirror" in audit_json["out_of_reach"]
    assert "is not there (a disk not mounted? a folder moved?)" in audit_json["out_of_reach"][
        "mirror"]
    mirror.with_name("unmounted").rename(mirror)
    assert run("fixity", "run").status == 0  # back, and whole


def test_a_capture_does_not_make_anew_the_folder_of_a_location_not_in_place(
        run: Any, site: LoopbackSite, home: Path) -> None:
    # The disk of a location that holds copies is not mounted, while a capture runs: its
    # folder is not made again (on the disk beneath, where the copy would be hidden once
    # the disk is back): the copy there is missing, the file under-replicated, and a
    # repair makes it once the disk is back.
    mirror = two_locations(home)
    assert run("capture", site.url(REFERENCE_PATH), "--collection", "c").status == 0
    assert (mirror / ".preserve-location").is_file()
    mirror.rename(mirror.with_name("unmounted"))
    report = run("capture", site.url("/gone"), "--collection", "c", "--json")
    [warc] = json.loads(report.out)["warcs"]
    assert warc["locations"] == ["local"]
    assert "is not there (a disk not mounted?" in warc["missing"]["mirror"]
    assert not mirror.exists()  # neither the copy nor the ledger's checkpoint made it
    mirror.with_name("unmounted").rename(mirror)
    repaired = run("fixity", "run", "--repair")
    assert repaired.status == 0 and b"1 repaired" in repaired.out  # the copy under-replicated
    assert run("fixity", "run").status == 0
    assert (mirror / warc["key"]).is_file()


def test_an_empty_mount_point_is_out_of_reach_not_a_location_that_lost_everything(
        run: Any, site: LoopbackSite, home: Path) -> None:
    # The location's folder is the mount point itself: with its disk not mounted it is
    # there, and empty. Its copies are out of reach, not each "missing"; nothing is
    # repaired, checkpointed or captured into it.
    mirror = two_locations(home)
    assert run("capture", site.url(REFERENCE_PATH), "--collection", "c").status == 0
    mirror.rename(mirror.with_name("unmounted"))
    mirror.mkdir()  # the empty mount point
    for command in (("fixity", "run", "--repair", "--json"), ("reconcile", "--repair", "--json")):
        audit = run(*command)
        assert audit.status == 1, command
        found = json.loads(audit.out)
        kinds = {item["kind"] for item in found.get("findings", found.get("discrepancies", []))}
        assert "missing" not in kinds and kinds, (command, kinds)
    assert "is empty, though the catalog holds copies there (a disk not mounted?)" in (
        json.loads(run("fixity", "run", "--json").out)["out_of_reach"]["mirror"])
    capture = json.loads(run("capture", site.url("/gone"), "--collection", "c", "--json").out)
    assert "mirror" in capture["warcs"][0]["missing"]
    assert run("storage", "check").status != 0
    assert list(mirror.iterdir()) == []  # nothing written into it
    mirror.rmdir()
    mirror.with_name("unmounted").rename(mirror)
    repaired = run("fixity", "run", "--repair")  # the second capture's copy made
    assert repaired.status == 0 and b"1 repaired" in repaired.out
    assert run("fixity", "run").status == 0


def test_a_folder_location_from_before_its_marker_is_marked_on_its_next_write(
        run: Any, site: LoopbackSite, home: Path) -> None:
    mirror = two_locations(home)
    assert run("capture", site.url(REFERENCE_PATH), "--collection", "c").status == 0
    (mirror / ".preserve-location").unlink()  # as folders written before there was one
    assert run("fixity", "run").status == 0  # not empty: in place, and no object unexpected
    assert run("capture", site.url("/gone"), "--collection", "c").status == 0
    assert (mirror / ".preserve-location").is_file()
    assert run("fixity", "run").status == 0


def test_copies_the_policy_asks_for_are_counted_and_made(run: Any, site: LoopbackSite,
                                                         home: Path) -> None:
    # Under-replicated is measured against what is asked for now, not only against the
    # copies that failed at ingest: a location added to the defaults is filled by a
    # repair, and a copy the catalog lost track of is named where it lies.
    mirror = two_locations(home)
    key = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                         "--json").out)["warcs"][0]["key"]
    vault = home.parent / "vault"
    settings = (home / "preserve.yaml").read_text()
    (home / "preserve.yaml").write_text(
        settings.replace("  default_copies: [local, mirror]\n",
                         f"    vault: {{type: filesystem, path: {vault}}}\n"
                         "  default_copies: [local, mirror, vault]\n"))
    short = run("fixity", "run", "--json")
    assert short.status == 1
    [finding] = json.loads(short.out)["findings"]
    assert (finding["kind"], finding["location"], finding["found"]) == (
        "under-replicated", "vault", "none: never made here")
    filled = run("fixity", "run", "--repair", "--json")
    assert filled.status == 0
    assert json.loads(filled.out)["findings"][0]["repaired_from"] in ("local", "mirror")
    assert (vault / key).read_bytes() == (mirror / key).read_bytes()
    assert run("fixity", "run").status == 0

    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.begin() as connection:  # the catalog loses track of the mirror's copy
        connection.execute(text("DELETE FROM copies WHERE location = 'mirror'"))
    engine.dispose()
    lost = json.loads(run("fixity", "run", "--json").out)["findings"]
    assert sorted((f["kind"], f["location"], f["key"]) for f in lost) == [
        ("under-replicated", "mirror", key), ("unexpected", "mirror", key)]
    reconciled = json.loads(run("reconcile", "--json").out)["discrepancies"]
    assert [(d["kind"], d["location"], d["detail"]) for d in reconciled] == [
        ("unexpected", "mirror", f"{(mirror / key).stat().st_size} bytes that no catalogued "
                                 "copy here accounts for")]
    # A repair finds the copy there holding the ingest digest, and records it again.
    adopted = run("fixity", "run", "--repair")
    assert adopted.status == 0 and "0 problems, 1 repaired" in adopted.text
    assert run("fixity", "run").status == 0


def test_scope_by_location_and_collection(run: Any, site: LoopbackSite, home: Path) -> None:
    mirror = two_locations(home)
    report = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "news",
                            "--json").out)
    run("capture", site.url("/gone"), "--collection", "other")
    key = report["warcs"][0]["key"]
    (mirror / key).write_bytes(b"\0" * (mirror / key).stat().st_size)

    local = json.loads(run("fixity", "run", "--location", "local", "--json").out)
    assert local["passed"] and local["copies"] == 2
    only_other = json.loads(run("fixity", "run", "--collection", "other", "--json").out)
    assert only_other["passed"] and only_other["objects"] == 1
    news = run("fixity", "run", "--collection", "news", "--json")
    assert news.status == 1
    bad = run("fixity", "run", "--location", "tape")
    assert bad.status == 2 and "location 'tape' is not configured" in bad.err
    # A mistyped collection in a cron line must not pass for ever as "all hold".
    typo = run("fixity", "run", "--collection", "nwes")
    assert typo.status == 2 and typo.out == b""
    assert typo.err == ("preserve: error: fixity: the catalog holds no collection 'nwes', "
                        "and no policy fills one (it holds: news, other)\n")


def test_repair_from_the_good_copy_and_nothing_without_one(run: Any, site: LoopbackSite,
                                                           home: Path) -> None:
    mirror = two_locations(home)
    key = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                         "--json").out)["warcs"][0]["key"]
    good = (home / "objects" / key).read_bytes()
    (mirror / key).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, other bytes

    assert run("fixity", "run").status == 1
    assert len(json.loads(run("fixity", "report", "--json").out)["failing"]) == 1
    repaired = run("fixity", "run", "--repair", "--json")
    assert repaired.status == 0  # the finding is repaired: nothing is left open
    [finding] = json.loads(repaired.out)["findings"]
    assert (finding["kind"], finding["repaired_from"]) == ("corrupted", "local")
    assert (mirror / key).read_bytes() == good
    # the report agrees: a mended copy fails no more (it did until the next audit)
    mended = run("fixity", "report", "--json")
    assert json.loads(mended.out)["failing"] == [] and mended.status == 0
    # ... and so when reconcile mends it
    (mirror / key).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert run("fixity", "run").status == 1
    (mirror / key).unlink()  # reconcile mends what its listing shows: a copy gone
    assert run("reconcile", "--repair").status == 0
    assert json.loads(run("fixity", "report", "--json").out)["failing"] == []
    assert run("fixity", "run").status == 0

    (mirror / key).write_bytes(b"\0" * len(good))
    (home / "objects" / key).write_bytes(good[:100])
    both = run("fixity", "run", "--repair", "--json")
    assert both.status == 1
    findings = json.loads(both.out)["findings"]
    assert all(f["open"] and "no good copy" in f["repair_failed"] for f in findings)
    assert (home / "objects" / key).read_bytes() == good[:100]  # nothing "repaired"
    # ... and it is raised as critical: the file needs a person now
    assert all(f["critical"] for f in findings) and json.loads(both.out)["critical"] == [key]
    said = run("fixity", "run")
    assert said.text.splitlines()[0].endswith(", 1 file with no good copy left (CRITICAL)")
    assert all(line.startswith("  CRITICAL, no good copy left: ")
               for line in said.text.splitlines()[1:] if line.startswith("  "))
    # one good copy back: no longer critical, only damaged
    (mirror / key).write_bytes(good)
    one_left = json.loads(run("fixity", "run", "--json").out)
    assert one_left["critical"] == [] and not any(f["critical"] for f in one_left["findings"])
    assert run("ledger", "verify").status == 0


def test_an_unknown_object_is_unexpected(run: Any, stored: list[Path], home: Path) -> None:
    stray = home / "objects" / "warcs" / "c" / "stray.warc.gz"
    stray.write_bytes(b"left by a crash")
    status, result, _ = audit(run)
    assert status == 1
    assert [(f["kind"], f["key"]) for f in result["findings"]] == [
        ("unexpected", "warcs/c/stray.warc.gz")]


def test_every_check_is_a_premis_event_and_the_report_sums_them(
        run: Any, stored: list[Path], home: Path) -> None:
    before = run("fixity", "report", "--json")
    assert json.loads(before.out)["overdue"] == []  # written and verified today
    run("fixity", "run")
    data = bytearray(stored[0].read_bytes())
    data[100] ^= 0x01
    stored[0].write_bytes(bytes(data))
    run("fixity", "run")

    report = run("fixity", "report", "--json")
    assert report.status == 1
    summary = json.loads(report.out)
    assert summary["collections"]["c"] == {"checks": 4, "passed": 3, "failed": 1, "repairs": 0}
    [failing] = summary["failing"]
    assert failing["event_type"] == "fixity check" and failing["outcome"] == "fail"
    assert failing["object"] == key_of(stored[0], home) and failing["location"] == "local"
    assert failing["agent"].startswith("preserve/")
    rows = run("fixity", "report", "--csv").text.splitlines()
    assert rows[0] == "event_date,event_type,outcome,collection,object,location,detail,agent"
    assert len(rows) == 5
    page = run("fixity", "report", "--html").text
    assert page.startswith("<!doctype html>") and "<h1>Fixity report: findings</h1>" in page
    assert f"<td>{key_of(stored[0], home)}</td>" in page and "<td>c</td>" in page
    later = run("fixity", "report", "--since", "2999-01-01", "--json")
    assert json.loads(later.out)["collections"] == {}
    overdue = json.loads(run("fixity", "report", "--every-days", "1", "--json").out)
    assert overdue["overdue"] == []  # everything was checked just now


def test_copies_not_found_whole_in_time_are_overdue(run: Any, stored: list[Path], home: Path,
                                                    database_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from preserve.catalog import open_engine
    from preserve.fixity import fixity_report

    engine = open_engine(database_url)
    later = datetime.now(UTC) + timedelta(days=100)
    overdue = fixity_report(engine, every_days=90, now=lambda: later).overdue
    assert sorted(item["object"] for item in overdue) == sorted(key_of(p, home) for p in stored)
    assert all(item["last_passed"] for item in overdue)  # written and verified, long ago
    engine.dispose()
    assert "overdue (no whole check in 90 days): 0" in run("fixity", "report").text


def test_a_policy_s_fixity_every_days_says_when_a_copy_is_overdue(
        run: Any, stored: list[Path], home: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from preserve.catalog import open_engine
    from preserve.fixity import fixity_report
    from preserve.schedule import policies_ask

    # The collection's policy asks for a whole check every 5 days, not the 90 by default.
    policies = home / "policies"
    policies.mkdir()
    (policies / "c.yaml").write_text("collection: c\ntargets:\n  - url: http://c.test/\n"
                                     "preservation:\n  fixity_every_days: 5\n")
    monkeypatch.setenv("PRESERVE_POLICIES", str(policies))
    from preserve.config import load_settings
    days = policies_ask(load_settings()).every_days
    assert days == {"c": 5}
    engine = open_engine(database_url)
    later = datetime.now(UTC) + timedelta(days=10)
    assert len(fixity_report(engine, now=lambda: later, every_days_of=days).overdue) == 2
    assert fixity_report(engine, now=lambda: later).overdue == []  # 90 days: not yet
    # and a sample takes every file overdue by the policy's measure
    from preserve.fixity import run_fixity
    from preserve.storage import open_stores
    stores = open_stores(load_settings().locations)
    assert run_fixity(engine, stores, sample=0.5, now=lambda: later,
                      every_days_of=days).objects == 2  # by the default's, one: the sample
    engine.dispose()
    assert "overdue (no whole check in 5 days in c, 90 elsewhere): 0" in run(
        "fixity", "report").text



@pytest.fixture
def four_files(run: Any, site: LoopbackSite, home: Path, database_url: str) -> list[str]:
    keys = []
    for number in range(4):
        site.routes[f"/page/{number}"] = Route(
            f"<html><body><p>Page {number} of four.</p></body></html>".encode())
        report = json.loads(run("capture", site.url(f"/page/{number}"), "--collection", "c",
                                "--json").out)
        keys.append(report["warcs"][0]["key"])
    return keys


def events_per_object(run: Any) -> dict[str, int]:
    import csv
    import io
    counts: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(run("fixity", "report", "--csv").text)):
        counts[row["object"]] = counts.get(row["object"], 0) + 1
    return counts


def test_a_sample_checks_those_checked_longest_ago_first(run: Any, four_files: list[str]) -> None:
    assert run("fixity", "run").status == 0
    assert events_per_object(run) == dict.fromkeys(four_files, 1)
    first = json.loads(run("fixity", "run", "--sample", "0.5", "--json").out)
    assert first["objects"] == 2
    second = json.loads(run("fixity", "run", "--sample", "0.5", "--json").out)
    assert second["objects"] == 2
    assert events_per_object(run) == dict.fromkeys(four_files, 2)  # the other half, then
    assert run("fixity", "run", "--sample", "0").status == 2
    assert run("fixity", "run", "--sample", "1.5").status == 2


def test_a_sample_always_takes_the_overdue(run: Any, four_files: list[str],
                                           database_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from preserve.catalog import open_engine
    from preserve.config import load_settings
    from preserve.fixity import run_fixity
    from preserve.storage import open_stores

    engine = open_engine(database_url)
    later = datetime.now(UTC) + timedelta(days=100)
    result = run_fixity(engine, open_stores(load_settings().locations), sample=0.25,
                        every_days=90, now=lambda: later)
    assert result.objects == 4  # one for the sample, and all four are overdue
    engine.dispose()


def test_an_interrupted_audit_resumes_where_it_stopped(run: Any, four_files: list[str],
                                                       database_url: str) -> None:
    from preserve.catalog import open_engine
    from preserve.config import load_settings
    from preserve.fixity import run_fixity
    from preserve.storage import open_stores

    engine = open_engine(database_url)
    stores = open_stores(load_settings().locations)

    def killed_after_two(number: int, total: int, stored: Any) -> None:
        if number == 2:
            raise KeyboardInterrupt  # the audit is stopped midway

    with pytest.raises(KeyboardInterrupt):
        run_fixity(engine, stores, killed_after_two, workers=1)
    assert sum(events_per_object(run).values()) == 2
    resumed = json.loads(run("fixity", "run", "--json").out)
    assert resumed["resumed"] is True and resumed["skipped"] == 2 and resumed["copies"] == 2
    assert events_per_object(run) == dict.fromkeys(four_files, 1)  # none twice, none left out
    fresh = json.loads(run("fixity", "run", "--json").out)
    assert fresh["resumed"] is False and fresh["copies"] == 4
    engine.dispose()


def test_a_resumed_audit_still_names_what_the_interrupted_one_found(
        run: Any, four_files: list[str], home: Path, database_url: str) -> None:
    # A copy the interrupted audit found damaged is not skipped as "checked": the
    # resumed audit names it again (and exits 1), where it used to say "all hold".
    from preserve.catalog import open_engine
    from preserve.config import load_settings
    from preserve.fixity import run_fixity
    from preserve.storage import open_stores

    damaged = home / "objects" / four_files[0]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    engine = open_engine(database_url)
    stores = open_stores(load_settings().locations)

    def killed_after_two(number: int, total: int, stored: Any) -> None:
        if number == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fixity(engine, stores, killed_after_two, workers=1)
    engine.dispose()
    assert events_per_object(run)[four_files[0]] == 1  # checked (and failed) before the stop
    resumed = run("fixity", "run", "--json")
    report = json.loads(resumed.out)
    assert resumed.status == 1
    assert report["resumed"] is True and report["skipped"] == 1 and report["copies"] == 3
    assert [(f["kind"], f["key"]) for f in report["findings"]] == [("corrupted", four_files[0])]


def test_an_audit_still_running_is_not_taken_over_by_a_second(
        run: Any, four_files: list[str], database_url: str) -> None:
    # cron starts the same audit while the first still runs: the second must not take
    # the first for an interrupted run and resume it (checking the same copies twice).
    from preserve.catalog import open_engine
    from preserve.config import load_settings
    from preserve.fixity import run_fixity
    from preserve.storage import open_stores

    engine = open_engine(database_url)
    stores = open_stores(load_settings().locations)
    second: list[Any] = []

    def another_audit_meanwhile(number: int, total: int, stored: Any) -> None:
        if number == 2:
            second.append(run("fixity", "run", "--json"))

    first = run_fixity(engine, stores, another_audit_meanwhile, workers=1)
    assert first.passed and first.copies == 4 and not first.resumed
    [refused] = second
    assert refused.status == 2 and refused.out == b""
    assert "the same audit is running already (process" in refused.err
    assert "this one checked nothing" in refused.err
    assert events_per_object(run) == dict.fromkeys(four_files, 1)  # none checked twice
    assert [r["state"] for r in fixity.recent_runs(engine)] == ["finished"]
    assert json.loads(run("fixity", "run", "--json").out)["resumed"] is False
    engine.dispose()


def test_two_audits_starting_at_once_do_not_both_run(
        four_files: list[str], database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each start looks for an unfinished run, then makes its own: on PostgreSQL too (no
    # BEGIN IMMEDIATE there) the two starts take turns, so the second sees the first.
    import threading
    import time
    from datetime import UTC, datetime

    from preserve.catalog import open_engine
    from preserve.errors import BadInput

    engine = open_engine(database_url)
    holder = fixity._holder

    def slow_holder() -> str:  # between the look and the insert: the window widened
        time.sleep(0.3)
        return holder()

    monkeypatch.setattr(fixity, "_holder", slow_holder)
    outcomes: list[object] = []

    def start() -> None:
        try:
            outcomes.append(fixity._start_run(engine, '{"scope": "x"}', datetime.now(UTC)))
        except BadInput as exc:
            outcomes.append(exc)

    starts = [threading.Thread(target=start) for _ in range(2)]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join()
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["BadInput", "tuple"]
    [(run_id, resumed_from)] = [o for o in outcomes if isinstance(o, tuple)]
    assert resumed_from is None
    fixity._LIVE_RUNS.discard(run_id)
    engine.dispose()


@pytest.mark.parametrize(("holder", "minutes_ago", "resumed"), [
    ("this host, a process that is gone", 0, True),
    ("this host, an earlier process with this one's ID", 0, True),  # a worker restarted
    ("this host, a process that lives", 0, False),
    ("this host, another container", 0, False),  # its processes cannot be seen from here
    ("this host, another container", 11, True),
    ("another host", 0, False),
    ("another host", 11, True),  # not heard from for 10 minutes: its machine went down
])
def test_an_unfinished_audit_is_resumed_only_once_it_has_stopped(
        run: Any, four_files: list[str], database_url: str, holder: str, minutes_ago: int,
        resumed: bool) -> None:
    import socket
    import subprocess
    from datetime import UTC, datetime, timedelta

    from preserve.catalog import open_engine
    from preserve.catalog.schema import fixity_runs

    assert run("fixity", "run").status == 0
    engine = open_engine(database_url)
    here, space = socket.gethostname(), fixity._pid_space()
    lives = subprocess.Popen(["sleep", "60"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    holder = {
        "this host, a process that is gone": f"{here} {gone.pid} {space}:0123456789ab",
        "this host, an earlier process with this one's ID":
            f"{here} {os.getpid()} {space}:0123456789ab",
        "this host, a process that lives": f"{here} {lives.pid} {space}:0123456789ab",
        "this host, another container": f"{here} 4242 4026531836000:0123456789ab",
        "another host": "archive-2.example.org 4242 4026531836:0123456789ab",
    }[holder]
    with engine.begin() as connection:  # that audit's run, as a killed one leaves it
        connection.execute(fixity_runs.update().values(
            finished_at=None, holder=holder,
            alive_at=datetime.now(UTC) - timedelta(minutes=minutes_ago)))
    [state] = [r["state"] for r in fixity.recent_runs(engine)]
    assert state == ("interrupted" if resumed else "running")
    second = run("fixity", "run", "--json")
    if resumed:
        assert second.status == 0 and json.loads(second.out)["resumed"] is True
    else:
        assert second.status == 2
        assert f"(process {holder.split()[1]} on {holder.split()[0]}, started" in second.err
    lives.kill()
    lives.wait()
    engine.dispose()


def test_every_check_and_repair_is_in_the_ledger(run: Any, site: LoopbackSite, home: Path,
                                                 database_url: str) -> None:
    from preserve import ledger
    from preserve.catalog import open_engine

    mirror = two_locations(home)
    key = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                         "--json").out)["warcs"][0]["key"]
    (mirror / key).unlink()
    run("fixity", "run", "--repair")
    engine = open_engine(database_url)
    with engine.connect() as connection:
        entries = [(entry.event, entry.object) for entry in ledger.entries(connection)]
        assert ledger.verify(connection).passed
    engine.dispose()
    assert entries == [("ingest", key), ("fixity check", f"local:{key}"),
                       ("fixity check", f"mirror:{key}"), ("repair", f"mirror:{key}")]


def test_a_repair_is_a_premis_replication_event(run: Any, site: LoopbackSite,
                                               home: Path) -> None:
    # PREMIS 3's event types have no "repair": the copy made again, bit for bit the
    # ingested file, is a "replication", its detail saying it was a repair.
    import csv
    import io
    mirror = two_locations(home)
    key = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                         "--json").out)["warcs"][0]["key"]
    (mirror / key).unlink()
    assert run("fixity", "run", "--repair").status == 0
    rows = list(csv.DictReader(io.StringIO(run("fixity", "report", "--csv").text)))
    [made] = [row for row in rows if row["event_type"] != "fixity check"]
    assert (made["event_type"], made["outcome"], made["location"], made["object"]) == (
        "replication", "pass", "mirror", key)
    assert made["detail"].startswith("repair: written again from a copy with the ingest")
    report = json.loads(run("fixity", "report", "--json").out)
    assert report["collections"]["c"]["repairs"] == 1 and not report["failing"]


def test_a_whole_rewritten_chain_is_caught_by_the_checkpoint_in_storage(
        run: Any, stored: list[Path], home: Path, database_url: str) -> None:
    from sqlalchemy import delete, insert, select

    from preserve import ledger
    from preserve.catalog import open_engine
    from preserve.catalog.schema import ledger as ledger_table

    audited = run("fixity", "run")
    assert audited.status == 0 and "checkpointed to local" in audited.text
    checkpoints = sorted((home / "objects" / "ledger" / "checkpoints").iterdir())
    assert len(checkpoints) == 3  # one after each capture, one after the audit
    assert [len(json.loads(path.read_text())["entries"]) for path in checkpoints] == [1, 1, 2]
    assert run("fixity", "run").status == 0  # the checkpoint is not an "unexpected" object
    assert run("ledger", "verify").status == 0

    # Someone rewrites an early entry and recomputes every hash after it: the chain
    # itself is consistent again, and the catalog digests still match it.
    engine = open_engine(database_url)
    with engine.begin() as connection:
        rows = [dict(row._mapping) for row in connection.execute(
            select(ledger_table).order_by(ledger_table.c.seq))]
        rows[1]["actor"] = "someone else"
        prev = ledger.GENESIS_HASH
        for row in rows:
            row["prev_hash"] = prev
            row["hash"] = prev = ledger.entry_hash(
                row["seq"], row["time"], row["actor"], row["event"], row["object"],
                row["digest"], prev)
        connection.execute(delete(ledger_table))
        connection.execute(insert(ledger_table), rows)
        assert ledger.verify(connection).passed  # the chain alone cannot tell
    engine.dispose()
    result = run("ledger", "verify", "--json")
    assert result.status == 1
    problems = json.loads(result.out)["problems"]
    # Each checkpoint holds the entries since the one before; each names its first
    # rewritten entry (the first capture's checkpoint holds entry 1, which still holds).
    assert [problem.split(": ")[0] for problem in problems] == [
        "entry 2 was rewritten", "entry 3 was rewritten",
        f"entry {len(rows) - 1} was rewritten"]
    said = run("ledger", "verify").text.splitlines()  # each problem on a line of its own
    assert said[0].endswith(": 3 problems") and len(said) == 4

    # ... and so whoever rewrites the chain removes the checkpoints too: that is said.
    for path in (home / "objects" / "ledger" / "checkpoints").iterdir():
        path.unlink()
    gone = json.loads(run("ledger", "verify", "--json").out)
    assert gone["problems"] == ["no location holds a ledger checkpoint (ledger/checkpoints/): "
                                "the chain cannot be proven against storage"]


def test_deleting_needs_a_reason_and_leaves_a_tombstone(
        run: Any, site: LoopbackSite, home: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import select

    from preserve import ledger
    from preserve.catalog import open_engine
    from preserve.catalog.schema import captures, tombstones, warc_files

    mirror = two_locations(home)
    site.routes["/other"] = Route(b"<html><body><p>Another page entirely.</p></body></html>")
    doomed = json.loads(run("capture", site.url("/other"), "--collection", "c",
                            "--json").out)["warcs"][0]
    kept = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                          "--json").out)["warcs"][0]

    assert run("delete", doomed["key"]).status == 2  # argparse: --reason is required
    blank = run("delete", doomed["key"], "--reason", "  ")
    assert blank.status == 2 and "a reason is required" in blank.err
    unknown = run("delete", "warcs/none.warc.gz", "--reason", "x")
    assert unknown.status == 2 and "no catalogued WARC file" in unknown.err

    # A location that refuses midway: the file stays whole, not half deleted (half looked
    # whole to every check, and a repair would have brought back what was removed).
    from preserve.errors import StorageError
    from preserve.storage.filesystem import FilesystemStore

    real_delete = FilesystemStore.delete

    def refusing(self: FilesystemStore, key: str) -> None:
        if self.name == "mirror":
            raise StorageError("location 'mirror': cannot delete: Operation not permitted")
        real_delete(self, key)

    monkeypatch.setattr(FilesystemStore, "delete", refusing)
    refused = run("delete", doomed["key"], "--reason", "takedown request 42")
    monkeypatch.setattr(FilesystemStore, "delete", real_delete)
    assert refused.status == 1
    assert refused.err == (
        f"preserve: error: delete: {doomed['key']}: location 'mirror': cannot delete: "
        "Operation not permitted; nothing deleted: the copies already removed from local "
        "were written again, verified\n")
    assert (home / "objects" / doomed["key"]).read_bytes() == (mirror / doomed["key"]).read_bytes()
    assert run("fixity", "run").status == 0 and run("ledger", "verify").status == 0
    # A location out of reach (its disk not mounted) refuses too: nothing is deleted.
    mirror.rename(mirror.with_name("unmounted"))
    unmounted = run("delete", doomed["key"], "--reason", "takedown request 42")
    mirror.with_name("unmounted").rename(mirror)
    assert unmounted.status == 1 and "is not there (a disk not mounted?" in unmounted.err
    assert unmounted.err.endswith("; nothing deleted\n")
    assert (home / "objects" / doomed["key"]).exists() and (mirror / doomed["key"]).exists()
    assert run("fixity", "run").status == 0
    # A copy under retention (Object Lock) is asked about first: nothing is touched.
    from datetime import UTC, datetime, timedelta
    real_retention = FilesystemStore.retained_until
    monkeypatch.setattr(FilesystemStore, "retained_until", lambda self, key: (
        datetime.now(UTC) + timedelta(days=30) if self.name == "mirror" else None))
    locked = run("delete", doomed["key"], "--reason", "takedown request 42")
    monkeypatch.setattr(FilesystemStore, "retained_until", real_retention)
    assert locked.status == 2 and locked.err.startswith(
        f"preserve: error: delete: the copy of {doomed['key']} in mirror is retained until ")
    assert locked.err.endswith(" (Object Lock); nothing deleted\n")
    assert (home / "objects" / doomed["key"]).exists() and (mirror / doomed["key"]).exists()

    done = run("delete", doomed["key"], "--reason", "takedown request 42", "--json")
    assert done.status == 0, done.err
    tombstone = json.loads(done.out)
    assert tombstone["sha256"] == doomed["sha256"] and tombstone["size"] == doomed["size"]
    assert tombstone["locations"] == "local,mirror" and tombstone["captures"] >= 1
    assert not (home / "objects" / doomed["key"]).exists()
    assert not (mirror / doomed["key"]).exists()
    engine = open_engine(database_url)
    with engine.connect() as connection:
        assert [row.key for row in connection.execute(select(warc_files))] == [kept["key"]]
        assert connection.execute(select(tombstones.c.reason)).scalars().all() == [
            "takedown request 42"]
        assert not connection.execute(select(captures).where(
            captures.c.url == site.url("/other"))).all()
        deletion, why = list(ledger.entries(connection))[-2:]
        assert (deletion.event, deletion.object, deletion.digest) == (
            "delete", doomed["key"], f"sha256:{doomed['sha256']}")
        assert (why.event, why.object, why.digest) == (
            "delete reason", doomed["key"], ledger.reason_digest("takedown request 42"))
    engine.dispose()
    assert run("ledger", "verify").status == 0
    # The tombstone is held to what the ledger recorded: who, which digest, why.
    for change, said in (
            ("reason = 'routine cleanup'", "gives a reason other than the one recorded"),
            ("sha256 = '" + "1" * 64 + "'", f"has sha256:{'1' * 64}, the ledger recorded"),
            ("actor = 'someone else'", "names 'someone else' as who deleted it")):
        engine = open_engine(database_url)
        with engine.begin() as connection:
            saved = dict(connection.execute(select(tombstones)).one()._mapping)
            connection.execute(text(f"UPDATE tombstones SET {change}"))
        engine.dispose()
        tampered = run("ledger", "verify", "--json")
        assert tampered.status == 1
        assert json.loads(tampered.out)["problems"][0].startswith(
            f"tombstone of {doomed['key']} "), tampered.out
        assert said in tampered.out.decode()
        engine = open_engine(database_url)
        with engine.begin() as connection:
            connection.execute(tombstones.update().values(**saved))
        engine.dispose()
    engine = open_engine(database_url)
    with engine.begin() as connection:
        connection.execute(tombstones.delete())
    engine.dispose()
    assert json.loads(run("ledger", "verify", "--json").out)["problems"] == [
        f"deleted file {doomed['key']} has no tombstone (the ledger recorded its deletion)"]
    assert run("fixity", "run").status == 0
    assert run("get", site.url("/other")).status == 2


def test_a_file_other_files_revisits_stand_on_is_not_deleted(run: Any, site: LoopbackSite,
                                                             home: Path,
                                                             database_url: str) -> None:
    first = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                           "--json").out)["warcs"][0]
    assert json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "c",
                          "--json").out)["revisits"] > 0
    refused = run("delete", first["key"], "--reason", "duplicate")
    assert refused.status == 2 and "revisit record(s) in other files" in refused.err
    assert (home / "objects" / first["key"]).exists()
