"""`preserve replay`: pywb replays from our storage through our CDX index.

pywb (from the tools environment) is started by the command; the page, its
image and its styles must come from the archive, with the site that was
captured no longer asked for anything, and a capture under embargo must not
replay.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, started
from fastapi.testclient import TestClient

from preserve.catalog import open_engine
from preserve.config import load_settings
from preserve.demo import REFERENCE_PATH, LoopbackSite
from preserve.replay import index_app

IMAGE = "/media/bachelet-xi.jpg"


@pytest.fixture
def captured(run: Any, site: LoopbackSite, policies: Path) -> dict[str, str]:
    (policies / "held.yaml").write_text("collection: held\naccess:\n  embargo_days: 30\n")
    url = site.url(REFERENCE_PATH)
    assert run("capture", url, "--collection", "news").status == 0
    held = site.url("/moved")  # a page of its own, captured under embargo
    assert run("capture", held, "--collection", "held").status == 0
    site.requests.clear()
    return {"url": url, "held": held}


@pytest.fixture
def replay(captured: dict[str, str], tools: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with started(["replay", "--port", str(port)], f"{base}/",
                 env={"PRESERVE_WAYBACK": str(tools / "wayback")}):
        yield f"{base}/replay"


def fetch(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read(), answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_pywb_replays_the_page_and_its_image_from_the_archive(
        replay: str, captured: dict[str, str], site: LoopbackSite) -> None:
    status, page, _ = fetch(f"{replay}/2030mp_/{captured['url']}")
    image_status, image, image_type = fetch(f"{replay}/2030im_/{site.url(IMAGE)}")

    assert status == 200
    assert b"Bachelet Ends Term As UN Rights Chief" in page
    # Links are rewritten into the archive, not to the live site.
    assert b'src="/replay/' in page and f"im_/{site.url(IMAGE)}".encode() in page
    assert image_status == 200 and image_type == "image/jpeg"
    assert image == site.routes[IMAGE].body
    assert site.requests == []  # nothing came from the live site


def test_an_embargoed_capture_does_not_replay(replay: str, captured: dict[str, str]) -> None:
    status, _, _ = fetch(f"{replay}/2030id_/{captured['held']}")
    shown, _, _ = fetch(f"{replay}/2030id_/{captured['url']}")

    assert (status, shown) == (404, 200)


def test_the_index_pywb_reads(captured: dict[str, str], home: Path) -> None:
    settings = load_settings()
    engine = open_engine(settings.database_url)
    with TestClient(index_app(settings, engine)) as client:
        lines = client.get("/cdx", params={"url": captured["url"], "closest": "2030",
                                           "sort": "closest", "limit": "5"}).text.splitlines()
        held = client.get("/cdx", params={"url": captured["held"]}).text
        fields = json.loads(lines[0].split(" ", 2)[2])
        name, offset, length = fields["filename"], int(fields["offset"]), int(fields["length"])
        ranged = client.get(f"/warcs/{name}",
                            headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        whole = client.get(f"/warcs/{name}")
        unknown = client.get("/warcs/nothing.warc.gz")
        beyond = client.get(f"/warcs/{name}", headers={"Range": "bytes=99999999-"})
    engine.dispose()
    (stored,) = [p for p in (home / "objects").rglob(name)]
    data = stored.read_bytes()
    assert len(lines) == 1 and held == ""  # the embargoed capture is not in the index
    assert ranged.status_code == 206 and ranged.content == data[offset:offset + length]
    assert ranged.headers["content-range"] == f"bytes {offset}-{offset + length - 1}/{len(data)}"
    assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == \
        hashlib.sha256(data).hexdigest()
    assert unknown.status_code == 404 and "no single catalogued WARC file" in unknown.text
    assert beyond.status_code == 416


def test_replay_without_pywb_says_what_to_install(run: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESERVE_WAYBACK", str(tmp_path / "no-such-wayback"))
    result = run("replay", "--port", str(free_port()))

    assert result.status == 2
    assert result.err.startswith("preserve: error: replay: pywb's wayback command was not "
                                 f"found at {tmp_path / 'no-such-wayback'}; install pywb")
    assert len(result.err.splitlines()) == 1


def test_a_revisit_replays_from_its_original(run: Any, site: LoopbackSite, home: Path,
                                             tools: Path) -> None:
    url = site.url(REFERENCE_PATH)
    reports = [json.loads(run("capture", url, "--collection", "news", "--json").out)
               for _ in range(2)]
    assert reports[1]["revisits"] > 0
    settings = load_settings()
    engine = open_engine(settings.database_url)
    with TestClient(index_app(settings, engine)) as client:
        lines = client.get("/cdx", params={"url": url}).text.splitlines()
    engine.dispose()
    second = lines[-1].split(" ", 2)
    assert json.loads(second[2])["mime"] == "warc/revisit"
    site.requests.clear()
    port = free_port()
    with started(["replay", "--port", str(port)], f"http://127.0.0.1:{port}/",
                 env={"PRESERVE_WAYBACK": str(tools / "wayback")}):
        status, body, _ = fetch(f"http://127.0.0.1:{port}/replay/{second[1]}id_/{url}")

    assert status == 200 and body == site.routes[REFERENCE_PATH].body
    assert site.requests == []
