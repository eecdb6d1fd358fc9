"""Memento (RFC 7089) through the API: the TimeGate, both TimeMaps and mementos, their
headers checked field by field."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import api_client, bearer
from fastapi.testclient import TestClient

from preserve.demo import REFERENCE_PATH, LoopbackSite
from preserve.retrieve import list_snapshots


@pytest.fixture
def two_captures(run: Any, site: LoopbackSite, api_tokens: Path) -> tuple[str, list[Any]]:
    url = site.url(REFERENCE_PATH)
    for _ in range(2):
        assert run("capture", url, "--collection", "news").status == 0
        time.sleep(1.1)  # mementos are named to the second
    from preserve.catalog import open_engine
    from preserve.config import load_settings
    engine = open_engine(load_settings().database_url)
    snapshots = list_snapshots(engine, url)
    engine.dispose()
    return url, snapshots


@pytest.fixture
def client(api_tokens: Path) -> Iterator[TestClient]:
    yield from api_client()


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def links(header: str) -> list[dict[str, str]]:
    """A Link header or link-format body as a list of {uri, param: value}."""
    found = []
    for match in re.finditer(r'<([^>]*)>((?:\s*;\s*[\w-]+="[^"]*")*)', header):
        entry = {"uri": match.group(1)}
        entry.update(re.findall(r'([\w-]+)="([^"]*)"', match.group(2)))
        found.append(entry)
    return found


def test_the_timegate_redirects_to_the_memento_nearest_accept_datetime(
        client: TestClient, two_captures: tuple[str, list[Any]]) -> None:
    url, (first, second) = two_captures
    base = "http://testserver"

    answer = client.get(f"/timegate/{url}", follow_redirects=False,
                        headers={**bearer("researcher"),
                                 "Accept-Datetime": http_date(first.capture_time)})

    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{base}/web/{stamp(first.capture_time)}id_/{url}"
    assert answer.headers["Vary"] == "accept-datetime"
    assert links(answer.headers["Link"]) == [
        {"uri": url, "rel": "original"},
        {"uri": f"{base}/timemap/link/{url}", "rel": "timemap",
         "type": "application/link-format"},
        {"uri": answer.headers["Location"], "rel": "memento",
         "datetime": http_date(first.capture_time)}]
    latest = client.get(f"/timegate/{url}", follow_redirects=False, headers=bearer("researcher"))
    assert latest.headers["Location"].endswith(f"/web/{stamp(second.capture_time)}id_/{url}")
    later = client.get(f"/timegate/{url}", follow_redirects=False,
                       headers={**bearer("researcher"), "Accept-Datetime": http_date(
                           second.capture_time + timedelta(days=365))})
    assert later.headers["Location"] == latest.headers["Location"]


def test_the_link_format_timemap(client: TestClient,
                                 two_captures: tuple[str, list[Any]]) -> None:
    url, (first, second) = two_captures
    base = "http://testserver"

    answer = client.get(f"/timemap/link/{url}", headers=bearer("researcher"))

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/link-format")
    assert links(answer.text) == [
        {"uri": url, "rel": "original"},
        {"uri": f"{base}/timegate/{url}", "rel": "timegate"},
        {"uri": f"{base}/timemap/link/{url}", "rel": "self",
         "type": "application/link-format", "from": http_date(first.capture_time),
         "until": http_date(second.capture_time)},
        {"uri": f"{base}/web/{stamp(first.capture_time)}id_/{url}", "rel": "first memento",
         "datetime": http_date(first.capture_time)},
        {"uri": f"{base}/web/{stamp(second.capture_time)}id_/{url}", "rel": "last memento",
         "datetime": http_date(second.capture_time)}]
    for entry in links(answer.text):
        if "datetime" in entry:  # RFC 1123, in GMT
            assert parsedate_to_datetime(entry["datetime"]).tzinfo is not None
            assert entry["datetime"].endswith(" GMT")


def test_the_json_timemap(client: TestClient, two_captures: tuple[str, list[Any]]) -> None:
    url, (first, second) = two_captures

    body = client.get(f"/timemap/json/{url}", headers=bearer("researcher")).json()

    assert body["original_uri"] == url
    assert body["timegate_uri"] == f"http://testserver/timegate/{url}"
    assert [m["uri"] for m in body["mementos"]["list"]] == [
        f"http://testserver/web/{stamp(s.capture_time)}id_/{url}" for s in (first, second)]
    assert body["mementos"]["first"] == body["mementos"]["list"][0]
    assert body["mementos"]["last"] == body["mementos"]["list"][-1]


def test_a_memento_is_the_original_bytes_with_its_headers(
        client: TestClient, two_captures: tuple[str, list[Any]], site: LoopbackSite) -> None:
    url, (first, second) = two_captures
    base = "http://testserver"

    answer = client.get(f"/web/{stamp(second.capture_time)}id_/{url}",
                        headers=bearer("researcher"))

    assert answer.status_code == 200
    assert answer.content == site.routes[REFERENCE_PATH].body  # the second is a revisit
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["Memento-Datetime"] == http_date(second.capture_time)
    assert links(answer.headers["Link"]) == [
        {"uri": url, "rel": "original"},
        {"uri": f"{base}/timegate/{url}", "rel": "timegate"},
        {"uri": f"{base}/timemap/link/{url}", "rel": "timemap",
         "type": "application/link-format"}]
    near = client.get(f"/web/{stamp(first.capture_time)[:8]}id_/{url}", follow_redirects=False,
                      headers=bearer("researcher"))
    assert near.status_code == 302
    assert near.headers["Location"] == f"{base}/web/{stamp(first.capture_time)}id_/{url}"


def test_memento_errors(client: TestClient, two_captures: tuple[str, list[Any]]) -> None:
    url, _ = two_captures

    unknown = client.get("/timemap/link/http://nowhere.test/", headers=bearer("researcher"))
    bad_date = client.get(f"/timegate/{url}", headers={**bearer("researcher"),
                                                        "Accept-Datetime": "yesterday"})
    bad_stamp = client.get(f"/web/20xxid_/{url}", headers=bearer("researcher"))
    no_token = client.get(f"/timemap/link/{url}")

    assert unknown.status_code == 404 and unknown.json()["ok"] is False
    assert bad_date.status_code == 400 and "RFC 1123" in bad_date.json()["error"]
    assert bad_stamp.status_code == 400 and "timestamp" in bad_stamp.json()["error"]
    assert no_token.status_code == 401


def test_timegate_answers_head_and_escapes_and_types_stay_as_they_were(
        run: Any, site: LoopbackSite, api_tokens: Path) -> None:
    from preserve.demo import Route
    site.routes["/a%20b/%E2%98%83"] = Route(b"<html><body>caf\xe9</body></html>", "text/html")
    url = site.url("/a%20b/%E2%98%83")
    assert run("capture", url, "--collection", "news").status == 0

    for client in api_client():
        head = client.head(f"/timegate/{url}", headers=bearer("researcher"),
                           follow_redirects=False)
        timemap = client.get(f"/timemap/link/{url}", headers=bearer("researcher"))
        memento = client.get(head.headers["Location"], headers=bearer("researcher"))

    assert head.status_code == 302
    assert links(timemap.text)[0] == {"uri": url, "rel": "original"}
    assert memento.headers["content-type"] == "text/html"  # no charset added
    assert memento.content == b"<html><body>caf\xe9</body></html>"
