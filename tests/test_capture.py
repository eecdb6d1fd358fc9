"""Capture the reference page from a loopback server, then check the WARC and the retrieval."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, update
from warcio.archiveiterator import ArchiveIterator

from preserve.catalog.schema import captures
from preserve.demo import REFERENCE_PATH, LoopbackSite
from preserve.fingerprint import simhash

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "financial-district-bachelet.expected.json").read_text())
WARCIO = Path(sys.executable).parent / "warcio"
# Reached only through the stylesheet: url() in site.css and its @import.
CSS_ONLY = ["/static/header-bg.png", "/static/print.css"]


@pytest.fixture
def captured(run: Any, site: LoopbackSite, home: Path, database_url: str) -> dict[str, Any]:
    """The reference page captured, on each catalog database."""
    result = run("capture", site.url(REFERENCE_PATH), "--collection", "news", "--json")
    assert result.status == 0, result.err
    report: dict[str, Any] = json.loads(result.out)
    report["url"] = site.url(REFERENCE_PATH)
    report["path"] = home / "objects" / report["warcs"][0]["key"]
    return report


def records(path: Path) -> list[dict[str, Any]]:
    found = []
    with path.open("rb") as stream:
        iterator = ArchiveIterator(stream)
        for record in iterator:
            body = record.content_stream().read()
            found.append({"type": record.rec_type, "headers": dict(record.rec_headers.headers),
                          "version": record.rec_headers.protocol, "body": body,
                          "offset": iterator.get_record_offset(),
                          "length": iterator.get_record_length()})
    return found


def test_capture_report_lists_the_stored_warc(captured: dict[str, Any]) -> None:
    assert set(captured) >= {"job", "collection", "pages", "records", "revisits", "bytes",
                             "warcs", "errors"}
    assert captured["collection"] == "news"
    assert captured["pages"] == 1
    assert captured["errors"] == []
    warc = captured["warcs"][0]
    assert warc["key"].endswith(".warc.gz") and warc["locations"] == ["local"]
    assert warc["size"] == captured["path"].stat().st_size
    assert warc["sha256"] == hashlib.sha256(captured["path"].read_bytes()).hexdigest()


def test_every_embedded_resource_is_captured(captured: dict[str, Any],
                                             site: LoopbackSite) -> None:
    for path in [*EXPECTED["embedded_resources"], *CSS_ONLY]:
        assert path in site.requests, f"{path} was not fetched"
    fetched = {r["url"] for r in captured["responses"]}
    for path in [*EXPECTED["embedded_resources"], *CSS_ONLY]:
        assert site.url(path) in fetched
    # Hyperlinks are not requisites: the navigation's pages were not fetched.
    assert "/all-the-news" not in site.requests
    assert len(site.requests) == len(set(site.requests)), "a URL was fetched twice"


def test_stored_warc_passes_warcio_check(captured: dict[str, Any]) -> None:
    check = subprocess.run([str(WARCIO), "check", "-v", str(captured["path"])],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "digest pass" in check.stdout
    assert "fail" not in check.stdout


def test_warc_is_1_1_with_one_gzip_member_per_record(captured: dict[str, Any]) -> None:
    found = records(captured["path"])
    assert {r["version"] for r in found} == {"WARC/1.1"}
    assert len(found) == captured["records"]
    # Every record is its own gzip member: each offset starts a member that holds one record.
    data = captured["path"].read_bytes()
    for record in found:
        member = gzip.decompress(data[record["offset"]:record["offset"] + record["length"]])
        assert member.startswith(b"WARC/1.1\r\n")
        assert member.count(b"WARC/1.1\r\n") == 1


def test_record_types_and_links_between_them(captured: dict[str, Any]) -> None:
    found = records(captured["path"])
    assert found[0]["type"] == "warcinfo"
    info = found[0]["body"].decode()
    from preserve import __version__
    from preserve.config import load_settings
    settings = load_settings()
    for field in (f"software: preserve/{__version__}\r\n", "format: WARC File Format 1.1",
                  "isPartOf: news", "policy: ad hoc (command line)",
                  f"operator: {settings.operator}\r\n", "job: " + captured["job"],
                  f"http-header-user-agent: {settings.capture.user_agent}\r\n"):
        assert field in info, field
    assert "WARC-Filename" in found[0]["headers"]
    responses = {r["headers"]["WARC-Record-ID"]: r for r in found if r["type"] == "response"}
    requests = [r for r in found if r["type"] == "request"]
    assert len(requests) == len(responses) == len(captured["responses"])
    for request in requests:
        response = responses[request["headers"]["WARC-Concurrent-To"]]
        assert response["headers"]["WARC-Target-URI"] == request["headers"]["WARC-Target-URI"]
        assert response["headers"]["WARC-Date"] == request["headers"]["WARC-Date"]
    for record in found[1:]:
        assert record["headers"]["WARC-Block-Digest"].startswith("sha1:")
    metadata = [r for r in found if r["type"] == "metadata"]
    assert len(metadata) == 1
    described = responses[metadata[0]["headers"]["WARC-Concurrent-To"]]
    assert described["headers"]["WARC-Target-URI"] == captured["url"]
    assert metadata[0]["headers"]["Content-Type"] == "application/json"


def test_metadata_record_holds_the_description(captured: dict[str, Any]) -> None:
    [metadata] = [r for r in records(captured["path"]) if r["type"] == "metadata"]
    document = json.loads(metadata["body"])
    assert set(document) == {"url", "capture_time", "publisher", "title", "author",
                             "published", "modified", "language", "language_detected",
                             "canonical_url", "text", "text_sha256", "text_simhash",
                             "extractor", "extractor_version"}
    assert document["text_simhash"] == simhash(document["text"])
    assert document["url"] == captured["url"]
    assert document["title"] == EXPECTED["title"]
    assert document["publisher"] == EXPECTED["publisher"]
    assert document["published"] == EXPECTED["published"]
    assert document["language"] == EXPECTED["language"]
    assert document["extractor"] == "trafilatura" and document["extractor_version"]
    assert document["text_sha256"] == hashlib.sha256(document["text"].encode()).hexdigest()
    assert document["capture_time"] == metadata["headers"]["WARC-Date"]


def test_get_payload_is_byte_exact(run: Any, captured: dict[str, Any], site: LoopbackSite,
                                   tmp_path: Path) -> None:
    result = run("get", captured["url"], "--payload")
    assert result.status == 0, result.err
    assert result.out == (DATA / "financial-district-bachelet.html").read_bytes()
    logo = run("get", site.url("/static/logo.png"), "--payload", "-o", tmp_path / "logo.png")
    assert logo.status == 0 and logo.out == b""
    assert (tmp_path / "logo.png").read_bytes() == site.routes["/static/logo.png"].body


def test_get_record_is_the_stored_record_read_by_offset(run: Any,
                                                        captured: dict[str, Any]) -> None:
    meta = json.loads(run("get", captured["url"], "--json").out)
    warc = meta["warc"]
    data = captured["path"].read_bytes()
    result = run("get", captured["url"], "--record")
    assert result.status == 0, result.err
    assert result.out == data[warc["offset"]:warc["offset"] + warc["length"]]
    [record] = list(ArchiveIterator(io.BytesIO(result.out)))
    assert record.rec_type == "response"
    assert record.rec_headers.get_header("WARC-Target-URI") == captured["url"]


def test_get_json_text_and_summary(run: Any, captured: dict[str, Any]) -> None:
    meta = json.loads(run("get", captured["url"], "--json").out)
    for key in ("url", "capture_time", "status", "mime", "publisher", "title", "author",
                "published", "language", "text", "payload_digest", "warc"):
        assert key in meta
    assert meta["status"] == 200 and meta["mime"] == "text/html"
    assert meta["payload_digest"].startswith("sha1:")
    text = run("get", captured["url"], "--text").out.decode()
    for paragraph in EXPECTED["text_must_include"]:
        assert paragraph in text
    for chrome in EXPECTED["text_must_exclude"]:
        assert chrome.lower() not in text.lower()
    assert text == meta["text"] + "\n"
    assert (meta["title"], meta["publisher"], meta["published"], meta["language"]) == (
        EXPECTED["title"], EXPECTED["publisher"], EXPECTED["published"], EXPECTED["language"])
    assert meta["author"] == "The Financial District"
    summary = run("get", captured["url"]).out.decode()
    assert EXPECTED["title"] in summary and "The Financial District" in summary


def test_list_and_get_at_pick_the_nearest_capture(run: Any, site: LoopbackSite) -> None:
    url = site.url(REFERENCE_PATH)
    first = json.loads(run("capture", url, "--collection", "news", "--json").out)
    second = json.loads(run("capture", url, "--collection", "news", "--json").out)
    listed = json.loads(run("list", url, "--json").out)["captures"]
    assert [c["warc"]["key"] for c in listed] == [first["warcs"][0]["key"],
                                                  second["warcs"][0]["key"]]
    early = listed[0]["capture_time"]
    late = listed[1]["capture_time"]
    assert json.loads(run("get", url, "--json").out)["capture_time"] == late
    assert json.loads(run("get", url, "--at", early, "--json").out)["capture_time"] == early
    assert json.loads(run("get", url, "--at", "2001-01-01", "--json").out
                      )["capture_time"] == early
    assert json.loads(run("get", url, "--at", "2999", "--json").out)["capture_time"] == late
    plain = run("list", url).out.decode().splitlines()
    assert len(plain) == 2 and EXPECTED["title"] in plain[0]


@pytest.mark.parametrize(("path", "status"), [("/gone", 404), ("/broken", 500)])
def test_error_answers_are_archived_and_reported(run: Any, site: LoopbackSite, path: str,
                                                 status: int, home: Path) -> None:
    result = run("capture", site.url(path), "--collection", "news")
    assert result.status == 0, result.err
    assert f"  page      {status}  {site.url(path)}  (archived as answered)" in result.text
    meta = json.loads(run("get", site.url(path), "--json").out)
    assert meta["status"] == status
    assert meta["title"] is None
    # Error pages are archived, not described: no metadata record in the WARC.
    warc = home / "objects" / meta["warc"]["key"]
    found = [(r["type"], r["headers"].get("WARC-Target-URI")) for r in records(warc)]
    assert [kind for kind, uri in found if uri != site.url("/robots.txt")] == [
        "warcinfo", "request", "response"]
    assert run("get", site.url(path), "--payload").out == site.routes[path].body


def test_redirect_is_recorded_and_followed(run: Any, site: LoopbackSite) -> None:
    report = json.loads(run("capture", site.url("/moved"), "--collection", "news",
                            "--json").out)
    roles = [(r["role"], r["status"]) for r in report["responses"] if r["role"] != "robots"]
    assert roles[:2] == [("redirect", 301), ("page", 200)]
    assert report["pages"] == 1
    assert json.loads(run("get", site.url("/moved"), "--json").out)["status"] == 301
    assert json.loads(run("get", site.url(REFERENCE_PATH), "--json").out
                      )["title"] == EXPECTED["title"]


def test_missing_requisite_is_archived_as_its_404(run: Any, site: LoopbackSite) -> None:
    del site.routes["/media/sweetmat.jpg"]
    report = json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "news",
                            "--json").out)
    # The server answered 404: that answer is archived like any other.
    statuses = {r["url"]: r["status"] for r in report["responses"]}
    assert statuses[site.url("/media/sweetmat.jpg")] == 404
    assert report["errors"] == []


def test_policy_supplies_collection_copies_and_limits(run: Any, site: LoopbackSite,
                                                      tmp_path: Path, home: Path) -> None:
    policy = tmp_path / "news.yaml"
    policy.write_text("collection: from-policy\n"
                      "capture: {requisites: false, max_resource_bytes: 50000}\n"
                      "preservation: {copies: [local]}\n")
    report = json.loads(run("capture", site.url(REFERENCE_PATH), "--policy", policy,
                            "--json").out)
    assert report["collection"] == "from-policy"
    assert [r["role"] for r in report["responses"]] == ["robots", "page"]
    warcinfo = records(home / "objects" / report["warcs"][0]["key"])[0]["body"].decode()
    assert f"policy: news ({policy})" in warcinfo
    policy.write_text("collection: from-policy\ncapture: {max_resource_bytes: 1000}\n")
    refused = run("capture", site.url(REFERENCE_PATH), "--policy", policy)
    assert refused.status == 2 and "limit of 1000 bytes" in refused.err
    policy.write_text("collection: c\npreservation: {copies: [offsite]}\n")
    unknown = run("capture", site.url(REFERENCE_PATH), "--policy", policy)
    assert unknown.status == 2 and "'offsite' is not configured" in unknown.err


def test_large_body_is_streamed_whole(run: Any, site: LoopbackSite, home: Path) -> None:
    # Regression: the connection must stay open until a large body is read whole
    # (http.client, which fetching once used, closed it early).
    import os

    from preserve.demo import Route
    body = os.urandom(5 * 1024 * 1024 + 3)
    site.routes["/big.bin"] = Route(body, "application/octet-stream")
    result = run("capture", site.url("/big.bin"), "--collection", "c", "--json")
    assert result.status == 0, result.err
    assert run("get", site.url("/big.bin"), "--payload").out == body


def _first_block_type(member: bytes) -> int:
    """The type of a gzip member's first deflate block: 0 stored, 1 fixed, 2 dynamic Huffman."""
    flags, at = member[3], 10
    if flags & 4:  # FEXTRA
        at += 2 + int.from_bytes(member[at:at + 2], "little")
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            at = member.index(b"\0", at) + 1
    if flags & 2:  # FHCRC
        at += 2
    return (member[at] >> 1) & 3


def test_a_body_that_does_not_compress_is_stored(run: Any, site: LoopbackSite,
                                                 home: Path) -> None:
    # ISA-L Huffman-codes noise into members four times slower to inflate than
    # stored blocks: such a record is written in stored blocks, HTML compressed.
    import os

    from preserve.demo import Route
    noise = os.urandom(200_000)
    site.routes["/noise.jpg"] = Route(noise, "image/jpeg")
    text = b"<html><body>" + b"<p>The same words again and again.</p>" * 5000 + b"</body></html>"
    site.routes["/words.html"] = Route(text)
    for path in ("/noise.jpg", "/words.html"):
        assert run("capture", site.url(path), "--collection", "c").status == 0
    members = {record["headers"]["WARC-Target-URI"]:
               path.read_bytes()[record["offset"]:record["offset"] + record["length"]]
               for path in (home / "objects").rglob("*.warc.gz")
               for record in records(path) if record["type"] == "response"}
    stored, compressed = members[site.url("/noise.jpg")], members[site.url("/words.html")]
    assert _first_block_type(stored) == 0
    assert len(noise) < len(stored) < len(noise) * 1.01
    assert _first_block_type(compressed) != 0
    assert len(compressed) < len(text) / 10
    assert run("get", site.url("/noise.jpg"), "--payload").out == noise


def test_international_urls_are_captured_as_a_browser_requests_them(
        run: Any, site: LoopbackSite) -> None:
    from preserve.demo import Route
    page = '<html><body><p>Grüße</p><img src="/bilder/straße 1.png"></body></html>'
    site.routes["/caf%C3%A9"] = Route(page.encode())
    site.routes["/bilder/stra%C3%9Fe%201.png"] = Route(b"png", "image/png")
    report = json.loads(run("capture", site.url("/café"), "--collection", "c", "--json").out)
    assert report["errors"] == []
    assert [r["url"] for r in report["responses"]] == [
        site.url("/robots.txt"), site.url("/caf%C3%A9"), site.url("/bilder/stra%C3%9Fe%201.png")]
    for spelling in ("/café", "/caf%C3%A9"):
        assert run("get", site.url(spelling), "--payload").out == page.encode()


def test_requisite_chains_and_counts_are_bounded(run: Any, site: LoopbackSite,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from preserve.capture import crawl
    from preserve.demo import Route
    # A stylesheet chain deeper than a browser page ever needs: 1 -> 2 -> 3 -> 4 -> 5.
    for level in range(1, 6):
        site.routes[f"/c{level}.css"] = Route(f'@import "/c{level + 1}.css";'.encode(),
                                              "text/css")
    site.routes["/deep"] = Route(b'<link rel="stylesheet" href="/c1.css">')
    report = json.loads(run("capture", site.url("/deep"), "--collection", "c", "--json").out)
    fetched = [r["url"] for r in report["responses"] if r["role"] == "requisite"]
    assert fetched == [site.url(f"/c{level}.css") for level in (1, 2, 3)]
    assert report["errors"] == [f"{site.url('/c4.css')}: not fetched, more than 3 requisites deep"]

    images = "".join(f'<img src="/i{n}.png">' for n in range(20))
    site.routes["/many"] = Route(f'<link rel="stylesheet" href="/c1.css">{images}'.encode())
    monkeypatch.setattr(crawl, "MAX_REQUISITES", 10)
    report = json.loads(run("capture", site.url("/many"), "--collection", "c", "--json").out)
    assert len([r for r in report["responses"] if r["role"] == "requisite"]) == 10
    # The page's first wave: the stylesheet and 20 images; 10 fetched, 11 left.
    assert report["errors"] == ["requisite limit of 10 reached: 11 more queued, not fetched"]


def test_redirect_to_another_scheme_is_archived_and_ends_there(run: Any,
                                                               site: LoopbackSite) -> None:
    from preserve.demo import Route
    site.routes["/to-ftp"] = Route(b"", status=302, headers=(("Location", "ftp://x/f"),))
    result = run("capture", site.url("/to-ftp"), "--collection", "c", "--json")
    assert result.status == 0, result.err
    assert [(r["status"], r["role"]) for r in json.loads(result.out)["responses"]] == [
        (404, "robots"), (302, "redirect")]


def test_invalid_timeouts_are_bad_input(run: Any, site: LoopbackSite) -> None:
    for value in ("nan", "inf", "0", "-1"):
        result = run("capture", site.url(REFERENCE_PATH), "--collection", "c", "--timeout", value)
        assert result.status == 2
        assert f"argument --timeout: must be a positive number, not '{value}'" in result.err


def test_an_extractor_failure_keeps_the_capture(run: Any, site: LoopbackSite,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import trafilatura

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(trafilatura, "bare_extraction", broken)
    result = run("capture", site.url(REFERENCE_PATH), "--collection", "c", "--json")
    assert result.status == 0, result.err
    report = json.loads(result.out)
    assert report["errors"] == [f"{site.url(REFERENCE_PATH)}: not described "
                                "(RecursionError: maximum recursion depth exceeded)"]
    assert report["pages"] == 1 and report["resources"] == 10  # all still archived
    assert json.loads(run("get", site.url(REFERENCE_PATH), "--json").out)["title"] is None


def test_redirect_loops_end_and_long_chains_are_refused(run: Any, site: LoopbackSite,
                                                        home: Path) -> None:
    from preserve.demo import Route
    site.routes["/loop-a"] = Route(b"", status=302, headers=(("Location", "/loop-b"),))
    site.routes["/loop-b"] = Route(b"", status=302, headers=(("Location", "/loop-a"),))
    report = json.loads(run("capture", site.url("/loop-a"), "--collection", "c", "--json").out)
    assert [r["url"] for r in report["responses"]] == [
        site.url("/robots.txt"), site.url("/loop-a"), site.url("/loop-b")]
    for hop in range(12):
        site.routes[f"/hop{hop}"] = Route(b"", status=302,
                                          headers=(("Location", f"/hop{hop + 1}"),))
    result = run("capture", site.url("/hop0"), "--collection", "long")
    assert result.status == 2 and "more than 10 redirects" in result.err
    assert not list((home / "objects" / "warcs").glob("long"))


def test_a_tampered_record_fails_its_digest_check_on_get(run: Any, captured: dict[str, Any],
                                                         database_url: str) -> None:
    # Well-formed gzip around changed content: only the WARC digests can tell.
    meta = json.loads(run("get", captured["url"], "--json").out)
    offset, length = meta["warc"]["offset"], meta["warc"]["length"]
    data = captured["path"].read_bytes()
    plain = gzip.decompress(data[offset:offset + length])
    forged = gzip.compress(plain.replace(b"Bachelet", b"Bachelot"), mtime=0)
    captured["path"].write_bytes(data[:offset] + forged + data[offset + length:])
    engine = create_engine(database_url)
    with engine.begin() as connection:  # the catalog points at the forged member exactly
        connection.execute(update(captures).where(captures.c.id == meta["id"])
                           .values(length=len(forged)))
    engine.dispose()
    result = run("get", captured["url"], "--payload")
    assert result.status == 1 and result.out == b""
    assert "payload digest failed" in result.err or "block digest failed" in result.err
