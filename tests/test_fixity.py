"""Fixity: every stored copy re-hashed against the catalog; damage is named, exit 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preserve.demo import REFERENCE_PATH, LoopbackSite


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
