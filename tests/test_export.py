"""`preserve export jsonl`: one line per described capture, streamed, written whole or not
at all; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from preserve import export
from preserve.demo import REFERENCE_PATH, LoopbackSite


@pytest.fixture
def captured(run: Any, site: LoopbackSite, database_url: str) -> str:
    url = site.url(REFERENCE_PATH)
    for collection in ("news", "other"):
        assert run("capture", url, "--collection", collection).status == 0
    return url


def test_one_line_per_described_capture(run: Any, captured: str, tmp_path: Path) -> None:
    out = tmp_path / "news.jsonl"

    result = run("export", "jsonl", "--collection", "news", "--out", out)
    everything = run("export", "jsonl", "--out", "-")

    assert result.status == 0 and result.text == f"export: 1 captures written to {out}\n"
    (line,) = out.read_text(encoding="utf-8").splitlines()
    row = json.loads(line)
    assert (row["url"], row["collection"], row["status"]) == (captured, "news", 200)
    assert "Bachelet" in row["title"] and len(row["text"]) > 500
    assert set(row["warc"]) == {"key", "offset", "length"}
    rows = [json.loads(line) for line in everything.text.splitlines()]
    assert [r["collection"] for r in rows] == ["news", "other"]  # oldest first


def test_a_failed_export_leaves_no_file(run: Any, captured: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "all.jsonl"
    calls: list[int] = []

    def breaking(snapshot: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("no space left on device")
        return {"url": snapshot.url}

    monkeypatch.setattr(export, "snapshot_json", breaking)
    result = run("export", "jsonl", "--out", out)

    assert result.status == 1
    assert result.err == f"preserve: error: export: cannot write {out}: no space left on device\n"
    assert list(folder.iterdir()) == []  # neither the file nor its temporary


def test_export_into_a_missing_folder(run: Any, captured: str, tmp_path: Path) -> None:
    result = run("export", "jsonl", "--out", tmp_path / "absent" / "x.jsonl")

    assert result.status == 2 and result.err == (
        f"preserve: error: export: {tmp_path / 'absent'} is not a folder\n")


def test_a_bag_of_a_collection_that_bagit_validates(run: Any, captured: str, home: Path,
                                                    tmp_path: Path) -> None:
    import bagit

    out = tmp_path / "news-bag"
    result = run("export", "bag", "--collection", "news", "--out", out)

    assert result.status == 0, result.err
    assert result.text == f"export: a bag of 1 WARC files of news at {out}\n"
    bag = bagit.Bag(str(out))
    bag.validate()  # every payload file against both manifests
    assert set(bag.algorithms) == {"sha256", "sha512"}
    (warc,) = sorted((out / "data" / "warcs").rglob("*.warc.gz"))
    key = warc.relative_to(out / "data" / "warcs").as_posix()
    assert warc.read_bytes() == (home / "objects" / key).read_bytes()
    (line,) = (out / "data" / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["warc"]["key"] == key
    assert "preserve" in bag.info["Bag-Software-Agent"]


def test_a_bag_is_refused_over_a_folder_or_from_damaged_copies(
        run: Any, captured: str, home: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    unknown = run("export", "bag", "--collection", "nothing", "--out", tmp_path / "x")
    over = run("export", "bag", "--collection", "news", "--out", taken)
    (stored,) = [p for p in (home / "objects").rglob("*.warc.gz") if "/news/" in p.as_posix()]
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 1
    stored.write_bytes(bytes(data))
    damaged = run("export", "bag", "--collection", "news", "--out", tmp_path / "bag")

    assert unknown.status == 2 and "collection 'nothing' has no stored WARC files" in unknown.err
    assert over.status == 2 and "exists already" in over.err
    assert damaged.status == 1 and "no good copy of" in damaged.err
    assert "not the ingest digest" in damaged.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "taken"]  # nothing half-made


def test_a_wacz_of_a_collection_that_py_wacz_validates(run: Any, captured: str, home: Path,
                                                       tmp_path: Path, tools: Path) -> None:
    out = tmp_path / "news.wacz"
    result = run("export", "wacz", "--collection", "news", "--out", out)

    assert result.status == 0, result.err
    assert result.text == f"export: a WACZ of 1 WARC files of news at {out}\n"
    check = subprocess.run([str(tools / "wacz"), "validate", "-f", str(out)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    with zipfile.ZipFile(out) as package:
        names = package.namelist()
        (warc,) = [name for name in names if name.startswith("archive/")]
        assert package.getinfo(warc).compress_type == zipfile.ZIP_STORED
        (stored,) = [p for p in (home / "objects").rglob(warc.rsplit("/", 1)[-1])]
        assert package.read(warc) == stored.read_bytes()
        index = package.read("indexes/index.cdxj").decode().splitlines()
        header, *pages = [json.loads(line) for line in
                          package.read("pages/pages.jsonl").decode().splitlines()]
        datapackage = json.loads(package.read("datapackage.json"))
    assert sorted(names) == sorted([warc, "indexes/index.cdxj", "pages/pages.jsonl",
                                    "datapackage.json", "datapackage-digest.json"])
    # The index is the CDX server's: every record of the page and its requisites.
    assert index == sorted(index) and len(index) > 1
    assert all(json.loads(line.split(" ", 2)[2])["filename"] == warc.split("/")[1]
               for line in index)
    assert header["format"] == "json-pages-1.0"
    (page_entry,) = pages
    assert page_entry["url"] == captured and "Bachelet" in page_entry["title"]
    assert datapackage["wacz_version"] == "1.1.1"
    assert {r["path"] for r in datapackage["resources"]} == set(names) - {
        "datapackage.json", "datapackage-digest.json"}


def test_a_wacz_is_whole_or_not_at_all(run: Any, captured: str, home: Path,
                                       tmp_path: Path) -> None:
    (stored,) = [p for p in (home / "objects").rglob("*.warc.gz") if "/news/" in p.as_posix()]
    data = bytearray(stored.read_bytes())
    data[len(data) // 3] ^= 1
    stored.write_bytes(bytes(data))
    taken = tmp_path / "taken.wacz"
    taken.write_bytes(b"mine")

    damaged = run("export", "wacz", "--collection", "news", "--out", tmp_path / "news.wacz")
    over = run("export", "wacz", "--collection", "news", "--out", taken)
    unknown = run("export", "wacz", "--collection", "nothing", "--out", tmp_path / "x.wacz")

    assert damaged.status == 1 and "no good copy of" in damaged.err
    assert over.status == 2 and "exists already" in over.err and taken.read_bytes() == b"mine"
    assert unknown.status == 2 and "collection 'nothing' has no stored WARC files" in unknown.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "taken.wacz"]
