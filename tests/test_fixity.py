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
