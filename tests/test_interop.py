"""Tools we did not write read our WARCs: warcio check, cdxj-indexer, pywb replay.

The tools live in their own environment (`make test` builds `.venv-tools` and
passes its bin folder as PRESERVE_TEST_TOOLS). Without it these tests skip with
the reason; in CI (CI=true) a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import api_client, bearer
from warcio.archiveiterator import ArchiveIterator

from preserve.demo import REFERENCE_PATH, LoopbackSite

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "financial-district-bachelet.expected.json").read_text())
WARCIO = Path(sys.executable).parent / "warcio"


@pytest.fixture
def crawled(run: Any, site: LoopbackSite, home: Path) -> dict[str, Any]:
    """The reference page crawled twice, so the second WARC holds revisits."""
    reports = [json.loads(run("capture", site.url(REFERENCE_PATH), "--collection", "interop",
                              "--json").out) for _ in range(2)]
    paths = [home / "objects" / report["warcs"][0]["key"] for report in reports]
    return {"url": site.url(REFERENCE_PATH), "paths": paths, "reports": reports}


def record_types(path: Path) -> list[str]:
    with path.open("rb") as stream:
        return [record.rec_type for record in ArchiveIterator(stream)]


def test_warcio_check_passes_on_every_file(crawled: dict[str, Any]) -> None:
    assert "revisit" in record_types(crawled["paths"][1])
    for path in crawled["paths"]:
        check = subprocess.run([str(WARCIO), "check", "-v", str(path)], capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_cdxj_indexer_indexes_every_record(tools: Path, crawled: dict[str, Any]) -> None:
    for path in crawled["paths"]:
        indexed = subprocess.run([str(tools / "cdxj-indexer"), str(path)], capture_output=True,
                                 text=True, check=True).stdout.splitlines()
        # Requests are folded into their responses; every other record has its line.
        types = [kind for kind in record_types(path) if kind not in ("warcinfo", "request")]
        assert len(indexed) == len(types)
        entries = [json.loads(line.split(" ", 2)[2]) for line in indexed]
        assert crawled["url"] in [entry["url"] for entry in entries]
        assert all(entry["filename"] == path.name for entry in entries)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pywb(tools: Path, crawled: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """pywb serving a collection built from the crawl's WARCs; its base URL."""
    root = tmp_path / "pywb"
    root.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([str(tools / "wb-manager"), "init", "preserved"], cwd=root, env=env,
                   check=True, capture_output=True)
    subprocess.run([str(tools / "wb-manager"), "add", "preserved",
                    *map(str, crawled["paths"])], cwd=root, env=env, check=True,
                   capture_output=True)
    port = free_port()
    server = subprocess.Popen([str(tools / "wayback"), "-p", str(port), "-b", "127.0.0.1"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, "pywb exited while starting"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/preserved"
    finally:
        server.terminate()
        server.wait(timeout=20)


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


def test_pywb_replays_the_captured_page(pywb: str, crawled: dict[str, Any],
                                        site: LoopbackSite) -> None:
    status, content_type, body = fetch(f"{pywb}/2026mp_/{crawled['url']}")
    assert status == 200 and content_type.startswith("text/html")
    text = body.decode("utf-8")
    for paragraph in EXPECTED["text_must_include"][:3]:
        assert paragraph in text
    # Requisites come from the archive, rewritten to pywb's own URLs.
    assert "/preserved/" in text and "/static/site.css" in text
    status, _, logo = fetch(f"{pywb}/2026id_/{site.url('/static/logo.png')}")
    assert status == 200 and logo == site.routes["/static/logo.png"].body


def test_pywb_replays_a_revisit_from_its_original(pywb: str, crawled: dict[str, Any],
                                                  site: LoopbackSite) -> None:
    # The second capture of the stylesheet is a revisit: pywb resolves it by digest.
    second = crawled["reports"][1]
    assert second["revisits"] >= 10
    status, _, css = fetch(f"{pywb}/2999id_/{site.url('/static/site.css')}")
    assert status == 200 and css == site.routes["/static/site.css"].body


def test_tools_folder_is_not_the_project_environment(tools: Path) -> None:
    # The tools' pins (old redis, gevent) must never land in the project's own venv.
    assert tools.resolve() != Path(sys.executable).parent.resolve()
    assert shutil.which("wayback", path=str(Path(sys.executable).parent)) is None


def test_the_cdx_endpoint_lists_what_cdxj_indexer_writes(
        tools: Path, crawled: dict[str, Any], api_tokens: Path) -> None:
    """Our /cdx answer for the host equals cdxj-indexer's lines for the same WARC records
    (response and revisit records; not the requests or our metadata records)."""
    indexed: list[str] = []
    for path in crawled["paths"]:
        lines = subprocess.run([str(tools / "cdxj-indexer"), str(path)], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        indexed += [line for line in lines
                    if not line.startswith("urn:") and '"mime": "warc/request"' not in line]
    host = crawled["url"].split("/post/")[0] + "/"

    for client in api_client():
        cdxj = client.get("/cdx", params={"url": host, "matchType": "host"},
                          headers=bearer("researcher"))
        as_json = client.get("/cdx", params={"url": host + "*", "output": "json", "limit": "3"},
                             headers=bearer("researcher"))
        one = client.get("/cdx", params={"url": crawled["url"], "from": "2000", "to": "2999"},
                         headers=bearer("researcher"))
        none = client.get("/cdx", params={"url": crawled["url"], "to": "2000"},
                          headers=bearer("researcher"))

    def parsed(line: str) -> tuple[str, str, dict[str, Any]]:
        key, stamp, fields = line.split(" ", 2)
        return key, stamp, json.loads(fields)

    def order(entry: tuple[str, str, dict[str, Any]]) -> tuple[str, str, str]:
        return entry[0], entry[1], json.dumps(entry[2], sort_keys=True)

    ours = sorted((parsed(line) for line in cdxj.text.splitlines()), key=order)
    theirs = sorted((parsed(line) for line in indexed), key=order)
    assert cdxj.status_code == 200 and cdxj.headers["content-type"].startswith("text/x-cdxj")
    assert ours == theirs
    assert {fields["mime"] for _, _, fields in ours} >= {"text/html", "warc/revisit"}
    rows = [json.loads(line) for line in as_json.text.splitlines()]
    assert len(rows) == 3 and set(rows[0]) >= {"urlkey", "timestamp", "url", "mime", "digest",
                                               "length", "offset", "filename"}
    assert [json.loads(line.split(" ", 2)[2])["url"] for line in one.text.splitlines()] == [
        crawled["url"]] * 2
    assert none.text == ""


def test_the_cdx_endpoint_sorts_as_pywb_asks(crawled: dict[str, Any], api_tokens: Path) -> None:
    """pywb asks for ``sort=closest&closest=TS`` (with a limit) when it replays."""
    url = crawled["url"]

    def stamps(client: Any, **params: str) -> list[str]:
        answer = client.get("/cdx", params={"url": url, **params}, headers=bearer("researcher"))
        assert answer.status_code == 200, answer.text
        return [line.split(" ")[1] for line in answer.text.splitlines()]

    for client in api_client():
        oldest_first = stamps(client)
        newest = stamps(client, sort="closest", closest=oldest_first[-1], limit="1")
        near_first = stamps(client, sort="closest", closest=oldest_first[0])
        reverse = stamps(client, sort="reverse")
        bogus = client.get("/cdx", params={"url": url, "sort": "sideways"},
                           headers=bearer("researcher"))
        alone = client.get("/cdx", params={"url": url, "sort": "closest"},
                           headers=bearer("researcher"))

    assert len(oldest_first) == 2 and oldest_first == sorted(oldest_first)
    assert newest == oldest_first[-1:]
    assert near_first == oldest_first  # the first is closest to itself
    assert reverse == oldest_first[::-1]
    assert bogus.status_code == 400 and "sort must be closest or reverse" in bogus.text
    assert alone.status_code == 400 and "sort=closest needs closest=TIMESTAMP" in alone.text
