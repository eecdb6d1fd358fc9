"""Embargo (access.embargo_days): captures hidden from researchers and auditors until the
embargo ends, everywhere they could look; seen by archivists all along."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import api_client, bearer
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, update

from preserve.catalog.schema import captures
from preserve.config import load_settings
from preserve.demo import REFERENCE_PATH, LoopbackSite
from preserve.retrieve import Embargoes


@pytest.fixture
def embargoed(run: Any, site: LoopbackSite, api_tokens: Path, policies: Path) -> str:
    (policies / "news.yaml").write_text("collection: news\naccess:\n  embargo_days: 30\n")
    url = site.url(REFERENCE_PATH)
    assert run("capture", url, "--collection", "news").status == 0
    return url


@pytest.fixture
def client(api_tokens: Path, policies: Path) -> Iterator[TestClient]:
    yield from api_client()


def looks(client: TestClient, url: str, role: str) -> dict[str, Any]:
    """What a token with this role finds of url, route by route."""
    headers = bearer(role)
    listed = client.get("/api/captures", params={"url": url}, headers=headers).json()
    nearest = client.get("/api/captures/nearest", params={"url": url}, headers=headers)
    timemap = client.get(f"/timemap/link/{url}", headers=headers)
    cdx = client.get("/cdx", params={"url": url}, headers=headers)
    return {"listed": len(listed["captures"]), "nearest": nearest.status_code,
            "timemap": timemap.status_code, "cdx": len(cdx.text.splitlines())}


def test_an_embargoed_capture_is_hidden_from_readers_but_not_from_its_keepers(
        client: TestClient, embargoed: str) -> None:
    archivist = looks(client, embargoed, "archivist")
    snapshot_id = client.get("/api/captures/nearest", params={"url": embargoed},
                             headers=bearer("archivist")).json()["id"]

    assert archivist == {"listed": 1, "nearest": 200, "timemap": 200, "cdx": 1}
    for role in ("researcher", "auditor"):
        assert looks(client, embargoed, role) == {"listed": 0, "nearest": 404, "timemap": 404,
                                                  "cdx": 0}
        for part in ("", "/text", "/payload", "/record"):
            answer = client.get(f"/api/snapshots/{snapshot_id}{part}", headers=bearer(role))
            assert answer.status_code == 404, part
            assert answer.json()["error"] == f"snapshot {snapshot_id}: no such snapshot"
    memento = client.get(f"/timegate/{embargoed}", headers=bearer("researcher"))
    assert memento.status_code == 404


def test_the_embargo_ends_after_its_days(client: TestClient, embargoed: str,
                                         home: Path) -> None:
    engine = create_engine(load_settings().database_url)
    with engine.begin() as connection:  # captured 31 days ago
        connection.execute(update(captures).values(
            capture_time=datetime.now(UTC) - timedelta(days=31)))
    engine.dispose()

    assert looks(client, embargoed, "researcher") == {"listed": 1, "nearest": 200,
                                                      "timemap": 200, "cdx": 1}


def test_a_policy_edit_takes_effect_but_a_broken_one_lifts_nothing(
        client: TestClient, embargoed: str, policies: Path) -> None:
    policy = policies / "news.yaml"
    assert looks(client, embargoed, "researcher")["listed"] == 0  # the policy read, sound
    policy.write_text("collection: news\naccess:\n  embargo_days: [30\n")  # broken YAML
    os.utime(policy, (time.time() + 5, time.time() + 5))
    assert looks(client, embargoed, "researcher")["listed"] == 0

    policy.write_text("collection: news\naccess:\n  embargo_days: 0\n")
    os.utime(policy, (time.time() + 10, time.time() + 10))
    assert looks(client, embargoed, "researcher")["listed"] == 1


def test_embargoes_take_the_longest_of_a_collections_policies(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("collection: news\naccess:\n  embargo_days: 7\n")
    (tmp_path / "b.yaml").write_text("collection: news\naccess:\n  embargo_days: 30\n")
    (tmp_path / "c.yaml").write_text("collection: open\n")
    now = datetime(2026, 11, 28, tzinfo=UTC)

    assert Embargoes(tmp_path).hidden(now) == {"news": now - timedelta(days=30)}
