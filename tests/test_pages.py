"""The web pages: sign-in, search, a URL's timeline, a snapshot, audits; roles and embargo.

Through the ASGI app first; then in Debian's Chromium (Playwright) against
`preserve serve` and `preserve replay` on loopback: sign in, search, open a
snapshot, follow it to replay. Our pages are driven with JavaScript off;
pywb's replay needs it on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_TOKENS, api_client, free_port, started
from fastapi.testclient import TestClient

from preserve.demo import REFERENCE_PATH, LoopbackSite

TITLE = "Bachelet Ends Term As UN Rights Chief"


@pytest.fixture
def captured(run: Any, site: LoopbackSite, api_tokens: Path, policies: Path) -> str:
    (policies / "held.yaml").write_text("collection: held\naccess:\n  embargo_days: 30\n")
    url = site.url(REFERENCE_PATH)
    assert run("capture", url, "--collection", "news").status == 0
    assert run("capture", site.url("/moved"), "--collection", "held").status == 0
    assert run("fixity", "run").status == 0
    return url


@pytest.fixture
def client(captured: str) -> Iterator[TestClient]:
    yield from api_client()


def signed_in(client: TestClient, role: str) -> TestClient:
    answer = client.post("/login", data={"token": API_TOKENS[role], "next": "/"},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    return client


def snapshot_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'href="/snapshots/(\d+)"', html)]


def test_a_page_without_a_token_asks_to_sign_in_and_comes_back(client: TestClient) -> None:
    asked = client.get("/?q=Bachelet", follow_redirects=False)
    form = client.get(asked.headers["location"])
    wrong = client.post("/login", data={"token": "not-a-token", "next": "/?q=Bachelet"})
    right = client.post("/login", data={"token": API_TOKENS["researcher"],
                                        "next": "/?q=Bachelet"}, follow_redirects=False)
    elsewhere = client.post("/login", data={"token": API_TOKENS["researcher"],
                                            "next": "//evil.example/"}, follow_redirects=False)

    assert asked.status_code == 303
    assert asked.headers["location"] == "/login?next=%2F%3Fq%3DBachelet"
    assert form.status_code == 200 and 'name="next" value="/?q=Bachelet"' in form.text
    assert wrong.status_code == 401 and "This token is not known." in wrong.text
    assert right.status_code == 303 and right.headers["location"] == "/?q=Bachelet"
    assert elsewhere.headers["location"] == "/"  # never off to another site


def test_search_shows_ranked_results_with_marked_snippets(client: TestClient,
                                                         captured: str) -> None:
    page = signed_in(client, "researcher").get("/", params={"q": "Bachelet",
                                                            "collection": "news"})
    none = client.get("/", params={"q": "Bachelet", "collection": "elsewhere"})
    bad = client.get("/", params={"q": "Bachelet", "from": "yesterday"})

    assert page.status_code == 200
    assert "1 result," in page.text and TITLE in page.text and captured in page.text
    assert "<mark>Bachelet</mark>" in page.text
    assert "0 results" in none.text
    assert "from: &#39;yesterday&#39; is not a date (YYYY-MM-DD)" in bad.text


def test_timeline_and_snapshot_pages(client: TestClient, captured: str) -> None:
    signed_in(client, "researcher")
    timeline = client.get("/captures", params={"url": captured})
    (snapshot_id,) = snapshot_ids(timeline.text)
    snapshot = client.get(f"/snapshots/{snapshot_id}")
    payload = client.get(f"/api/snapshots/{snapshot_id}/payload")  # the cookie reads the API

    assert timeline.status_code == 200 and "1 capture," in timeline.text
    assert snapshot.status_code == 200 and TITLE in snapshot.text
    assert f'href="/api/snapshots/{snapshot_id}/record"' in snapshot.text
    replay = re.search(r'class="replay" href="([^"]+)"', snapshot.text)
    assert replay and re.fullmatch(r"http://127\.0\.0\.1:8090/replay/\d{14}/" + re.escape(captured),
                                   replay.group(1))
    # Its copy, verified at ingest, and the audit's check of it.
    assert re.search(r"<td>local</td><td>verified</td>\s*<td>[\d-]+ [\d:]+ UTC</td>\s*"
                     r'<td class="pass">pass</td>', snapshot.text)
    assert "Michelle Bachelet" in snapshot.text  # the extracted text
    assert payload.status_code == 200 and payload.content.startswith(b"<!")


def test_roles_and_embargo_on_the_pages(client: TestClient, captured: str,
                                        site: LoopbackSite) -> None:
    held = site.url("/moved")
    signed_in(client, "researcher")
    audits_refused = client.get("/audits")
    hidden = client.get("/captures", params={"url": held})
    post_by_cookie = client.post("/api/captures", json={"url": captured,
                                                        "collection": "news"})
    signed_in(client, "archivist")
    seen = client.get("/captures", params={"url": held})
    signed_in(client, "auditor")
    audits = client.get("/audits")
    client.post("/logout")
    after = client.get("/", follow_redirects=False)

    assert audits_refused.status_code == 403
    assert "res is researcher: this page needs auditor" in audits_refused.text
    assert "0 captures" in hidden.text
    assert post_by_cookie.status_code == 401  # the cookie only reads
    assert "1 capture," in seen.text and snapshot_ids(seen.text)
    assert audits.status_code == 200 and "Every copy holds." in audits.text
    assert re.search(r"<td>news</td><td>1</td><td>1</td><td>0</td><td>0</td>", audits.text)
    assert re.search(r"<td>every one</td><td>every one</td><td>fast</td><td>100.0%</td>"
                     r"<td>[\d-]+ [\d:]+ UTC</td><td>[\d-]+ [\d:]+ UTC</td>", audits.text)
    assert after.status_code == 303


def test_an_unknown_snapshot_is_a_page_not_json(client: TestClient) -> None:
    signed_in(client, "researcher")
    missing = client.get("/snapshots/999999")
    api = client.get("/api/snapshots/999999")

    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert api.status_code == 404 and api.json()["ok"] is False


def test_in_a_browser_search_open_a_snapshot_and_replay_it(
        captured: str, site: LoopbackSite, tools: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    api_port, replay_port = free_port(), free_port()
    env = {"PRESERVE_WAYBACK": str(tools / "wayback"),
           "PRESERVE_REPLAY_URL": f"http://127.0.0.1:{replay_port}"}
    base = f"http://127.0.0.1:{api_port}"
    with started(["serve", "--port", str(api_port), "--no-scheduler"], f"{base}/api/health",
                 env=env), \
            started(["replay", "--port", str(replay_port)], f"http://127.0.0.1:{replay_port}/",
                    env=env), \
            sync_playwright() as playwright:
        site.requests.clear()
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox"])
        try:
            plain = browser.new_context(java_script_enabled=False).new_page()
            plain.goto(f"{base}/?q=Uyghur")
            plain.fill("#token", API_TOKENS["researcher"])
            with plain.expect_navigation():  # the sign-in answers with the search again
                plain.click("button[type=submit]")
            plain.locator("ol.results li").first.wait_for()
            assert plain.locator("ol.results li").count() == 1
            assert plain.locator("ol.results mark").first.inner_text() == "Uyghur"
            with plain.expect_navigation():
                plain.click("ol.results a.title")
            assert plain.locator("h1").inner_text().startswith(TITLE)
            assert plain.locator("table.fixity td.pass").count() == 1
            # Each heading on one line: a digest in the detail must not squeeze the
            # other columns until their words break ("Locat-ion").
            lines = plain.locator("table.fixity th").evaluate_all(
                "cells => cells.map(cell => { const range = document.createRange();"
                " range.selectNodeContents(cell); return range.getClientRects().length; })")
            assert lines == [1] * 5, lines
            replay_url = plain.locator("a.replay").get_attribute("href")
            assert replay_url and replay_url.startswith(f"http://127.0.0.1:{replay_port}/replay/")
            plain.set_viewport_size({"width": 390, "height": 800})  # a phone: the table
            assert plain.evaluate(  # scrolls in its place, never the page sideways
                "document.documentElement.scrollWidth <= window.innerWidth")
            with plain.expect_navigation():  # nor does the timeline's form
                plain.click("text=All captures of this URL")
            assert plain.locator("ol.timeline li.year").count() == 1
            assert plain.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

            auditor = browser.new_context(java_script_enabled=False,
                                          viewport={"width": 390, "height": 800}).new_page()
            auditor.goto(f"{base}/audits")  # nor do the audits page's wide tables
            auditor.fill("#token", API_TOKENS["auditor"])
            with auditor.expect_navigation():
                auditor.click("button[type=submit]")
            assert auditor.locator(".wide table").count() >= 2
            assert auditor.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth")
            # The tables are wider than a phone: each scrolls sideways in its own place.
            assert auditor.locator(".wide").evaluate_all(
                "boxes => boxes.some(box => box.scrollWidth > box.clientWidth)")

            page = browser.new_context().new_page()  # pywb's replay runs JavaScript
            loaded: list[tuple[str, int]] = []
            page.on("response", lambda answer: loaded.append((answer.url, answer.status)))
            page.goto(replay_url)
            frame = page.frame_locator("iframe").first
            frame.locator("h1").first.wait_for(timeout=30_000)
            assert TITLE in frame.locator("h1").first.inner_text()
            image = frame.locator("img[alt='Michelle Bachelet and Xi Jinping']")
            image.wait_for()
            assert image.evaluate("img => img.complete && img.naturalWidth") == 640
            # The image came from pywb, out of the archive (wombat shows the page the
            # original URL, so the network says where it was fetched).
            assert any(url.startswith(f"http://127.0.0.1:{replay_port}/replay/")
                       and url.endswith("im_/" + site.url("/media/bachelet-xi.jpg"))
                       and status == 200 for url, status in loaded), loaded
        finally:
            browser.close()
    assert site.requests == []  # everything came from the archive
