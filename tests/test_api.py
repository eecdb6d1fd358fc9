"""The HTTP API through its ASGI app, and `preserve serve` on loopback: roles, the error
shape, retrieval of the reference page, captures asked for over HTTP and their jobs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx  # httpx's maintained successor, which TestClient prefers
import pytest
from conftest import api_client, bearer
from fastapi.testclient import TestClient
from warcio.archiveiterator import ArchiveIterator

from preserve.api.app import create_app
from preserve.catalog import open_engine
from preserve.config import load_settings
from preserve.demo import REFERENCE_PATH, LoopbackSite
from preserve.schedule import get_job, list_jobs, run_job
from preserve.workers.local import LocalWorkers


@pytest.fixture
def captured(run: Any, site: LoopbackSite, api_tokens: Path) -> str:
    url = site.url(REFERENCE_PATH)
    assert run("capture", url, "--collection", "news").status == 0
    return url


@pytest.fixture
def client(api_tokens: Path) -> Iterator[TestClient]:
    yield from api_client()


def assert_error(answer: httpx.Response, status: int, containing: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["ok"] is False and body["status"] == status, body
    assert containing in body["error"], body


def test_health_needs_no_token(client: TestClient) -> None:
    answer = client.get("/api/health")
    assert answer.status_code == 200 and answer.json()["ok"] is True


def test_no_token_is_401_a_wrong_role_403_in_one_shape(client: TestClient,
                                                       captured: str) -> None:
    missing = client.get("/api/captures", params={"url": captured})
    unknown = client.get("/api/captures", params={"url": captured},
                         headers={"Authorization": "Bearer nobody-knows-this"})
    researcher = client.post("/api/captures", json={"url": captured, "collection": "news"},
                             headers=bearer("researcher"))
    auditor_reads = client.get("/api/captures", params={"url": captured},
                               headers=bearer("auditor"))

    assert_error(missing, 401, "bearer token is required")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert_error(unknown, 401, "not known")
    assert_error(researcher, 403, "res is researcher: this needs archivist")
    assert auditor_reads.status_code == 200


def test_a_capture_is_found_and_retrieved(client: TestClient, captured: str,
                                          site: LoopbackSite) -> None:
    nearest = client.get("/api/captures/nearest", params={"url": captured},
                         headers=bearer("researcher"))
    assert nearest.status_code == 200, nearest.text
    found = nearest.json()
    assert found["url"] == captured and found["status"] == 200
    assert found["warc"]["copies"] == ["local"] and found["warc"]["under_replicated"] is False
    assert "Bachelet" in (found["title"] or "")

    snapshot_id = found["id"]
    metadata = client.get(f"/api/snapshots/{snapshot_id}", headers=bearer("researcher")).json()
    text = client.get(f"/api/snapshots/{snapshot_id}/text", headers=bearer("researcher"))
    payload = client.get(f"/api/snapshots/{snapshot_id}/payload", headers=bearer("researcher"))
    record = client.get(f"/api/snapshots/{snapshot_id}/record", headers=bearer("researcher"))

    assert metadata == found
    assert text.headers["content-type"].startswith("text/plain") and text.text == found["text"]
    assert payload.content == site.routes[REFERENCE_PATH].body
    assert payload.headers["content-type"] == "text/html; charset=utf-8"
    assert record.headers["content-type"] == "application/warc"
    (parsed,) = list(ArchiveIterator(io.BytesIO(record.content)))
    assert parsed.rec_headers.get_header("WARC-Target-URI") == captured


def test_captures_by_url_prefix_and_host(client: TestClient, captured: str,
                                         site: LoopbackSite) -> None:
    def urls(**params: str) -> list[str]:
        answer = client.get("/api/captures", params=params, headers=bearer("researcher"))
        assert answer.status_code == 200, answer.text
        return [capture["url"] for capture in answer.json()["captures"]]

    exact = urls(url=captured)
    host = urls(url=site.url("/"), match="host")
    under_post = urls(url=site.url("/post/"), match="prefix")

    assert exact == [captured]
    assert captured in host and len(host) > 5  # the page and its requisites
    assert under_post == [captured]
    assert urls(url=captured, to="2000-01-01T00:00:00Z") == []
    assert urls(url=captured, **{"from": "2000-01-01T00:00:00Z"}) == [captured]


def test_bad_requests_are_400_and_missing_things_404(client: TestClient,
                                                     captured: str) -> None:
    assert_error(client.get("/api/captures", params={"url": captured, "match": "domain"},
                            headers=bearer("researcher")), 400, "match")
    assert_error(client.get("/api/snapshots/999999", headers=bearer("researcher")), 404,
                 "snapshot 999999: no such snapshot")
    assert_error(client.get("/api/captures/nearest", params={"url": "http://nowhere.test/"},
                            headers=bearer("researcher")), 404, "no capture of this URL")
    assert_error(client.get("/api/jobs/nope", headers=bearer("archivist")), 404,
                 "job nope: no such job")
    for body, says in (({"url": captured, "collection": "../etc"}, "not a valid name"),
                       ({"url": captured, "collection": "news", "scope": "site"},
                        "scope: must be one of"),
                       ({"url": captured, "collection": "news", "depth": -1}, "depth"),
                       ({"url": "ftp://x.test/", "collection": "news"}, "not supported"),
                       ({"collection": "news"}, "url")):
        assert_error(client.post("/api/captures", json=body, headers=bearer("archivist")),
                     400, says)


def test_a_capture_asked_for_over_http_becomes_a_job(client: TestClient, site: LoopbackSite,
                                                     api_tokens: Path) -> None:
    url = site.url(REFERENCE_PATH)
    asked = client.post("/api/captures", json={"url": url, "collection": "asked"},
                        headers=bearer("archivist"))

    assert asked.status_code == 202, asked.text
    job_id = asked.json()["job"]
    queued = client.get(f"/api/jobs/{job_id}", headers=bearer("archivist")).json()
    assert (queued["state"], queued["kind"], queued["target"]) == ("queued", "capture", url)
    assert queued["params"] == {"collection": "asked", "scope": "page", "depth": 0}
    settings = load_settings()
    engine = open_engine(settings.database_url)
    run_job(job_id, settings, engine)  # as a scheduler's runner would
    engine.dispose()
    done = client.get(f"/api/jobs/{job_id}", headers=bearer("archivist")).json()
    assert done["state"] == "succeeded" and done["result"]["pages"] == 1
    found = client.get("/api/captures/nearest", params={"url": url},
                       headers=bearer("researcher")).json()
    assert found["collection"] == "asked"


def test_with_local_workers_the_job_runs_at_once(site: LoopbackSite, api_tokens: Path) -> None:
    settings = load_settings()
    engine = open_engine(settings.database_url)
    workers = LocalWorkers(settings, engine, threads=1)
    with TestClient(create_app(settings, engine, workers)) as test_client:
        asked = test_client.post("/api/captures", json={"url": site.url(REFERENCE_PATH),
                                                        "collection": "now"},
                                 headers=bearer("archivist"))
        job_id = asked.json()["job"]
        deadline = time.monotonic() + 30
        while get_job(engine, job_id).state in ("queued", "running") and (
                time.monotonic() < deadline):
            time.sleep(0.05)
    workers.shutdown()
    assert get_job(engine, job_id).state == "succeeded"
    engine.dispose()


def test_preserve_serve_on_loopback(captured: str, api_tokens: Path, policies: Path) -> None:
    """The API answers, and the scheduler inside runs a policy's capture on its threads."""
    (policies / "news.yaml").write_text(
        f"collection: scheduled\ntargets:\n  - url: {captured}\n    schedule: every 1h\n"
        "capture:\n  delay_seconds: 0\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "preserve"), "serve", "--port", str(port),
         "--every", "0.5"], env=os.environ.copy(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        found = httpx.get(f"{base}/api/captures/nearest", params={"url": captured},
                          headers=bearer("researcher"))
        docs = httpx.get(f"{base}/openapi.json")
        settings = load_settings()
        engine = open_engine(settings.database_url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            scheduled = [job for job in list_jobs(engine) if job.kind == "capture"]
            if scheduled and scheduled[0].state == "succeeded":
                break
            time.sleep(0.1)
        engine.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert found.status_code == 200, found.text
    assert found.json()["url"] == captured
    assert "/api/captures/nearest" in json.loads(docs.text)["paths"]
    (job,) = scheduled
    assert job.state == "succeeded" and job.policy == "news"
    assert job.worker and job.worker.split(":")[1] == str(server.pid)  # run inside serve
    assert server.returncode == 0, err.decode()
    assert out.decode().startswith(f"serve: http://127.0.0.1:{port}/ (API documentation at "
                                   "/docs), scheduler looking every 0.5 s\n")


def test_serve_on_a_port_in_use_says_so_in_one_line(run: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port))

    assert result.status == 2
    assert result.err == (f"preserve: error: serve: cannot listen on 127.0.0.1:{port}: "
                          "address already in use\n")


def test_token_new_makes_a_token_the_settings_accept(run: Any, home: Path) -> None:
    made = run("token", "new", "ana", "--role", "archivist", "--json")

    assert made.status == 0
    token = json.loads(made.out)
    assert hashlib.sha256(token["token"].encode()).hexdigest() == token["sha256"]
    home.mkdir(parents=True, exist_ok=True)
    (home / "preserve.yaml").write_text(
        f"auth:\n  tokens:\n    - {{name: ana, role: archivist, sha256: {token['sha256']}}}\n")
    settings = load_settings()
    engine = open_engine(settings.database_url)
    with TestClient(create_app(settings, engine)) as test_client:
        answer = test_client.get("/api/jobs/none",
                                 headers={"Authorization": f"Bearer {token['token']}"})
    engine.dispose()
    assert answer.status_code == 404  # known, allowed, and the job is not there
    text = run("token", "new", "bo", "--role", "researcher").text
    assert text.splitlines()[2].startswith("  - {name: bo, role: researcher, sha256: ")


@pytest.mark.parametrize(("stamp", "upper", "expected"), [
    ("2014", False, "2014-01-01T00:00:00"), ("2014", True, "2014-12-31T23:59:59"),
    ("201402", True, "2014-02-28T23:59:59"), ("201602", True, "2016-02-29T23:59:59"),
    ("20140615", False, "2014-06-15T00:00:00"), ("2014061512", True, "2014-06-15T12:59:59"),
    ("20140615123456", True, "2014-06-15T12:34:56"), ("2", False, "2000-01-01T00:00:00"),
])
def test_cdx_from_and_to_are_padded_as_pywb_pads_them(stamp: str, upper: bool,
                                                      expected: str) -> None:
    from preserve.api.cdx import _bound
    bound = _bound(stamp, upper)
    assert bound is not None
    assert bound.isoformat() == expected + (".999999" if upper else "") + "+00:00"


def test_cdx_refuses_what_it_does_not_do(client: TestClient, captured: str) -> None:
    for params, says in (({"url": captured, "matchType": "everything"}, "matchType"),
                         ({"url": captured, "output": "link"}, "output"),
                         ({"url": captured, "from": "20xx"}, "timestamp"),
                         ({"url": captured, "limit": "0"}, "limit")):
        assert_error(client.get("/cdx", params=params, headers=bearer("researcher")), 400, says)
    assert client.get("/cdx", params={"url": captured}).status_code == 401


def test_an_unexpected_error_keeps_the_error_shape(captured: str) -> None:
    settings = load_settings()
    engine = open_engine(settings.database_url)
    # As a real server answers: the error handled, not raised into the test.
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        answer = client.get("/api/snapshots/99999999999999999999999",
                            headers=bearer("researcher"))
    engine.dispose()

    assert answer.status_code == 500
    assert answer.json() == {"ok": False, "status": 500,
                             "error": "internal error (OverflowError); the server's log has "
                                      "more"}


def test_cdx_to_includes_the_whole_second_it_names(client: TestClient, captured: str) -> None:
    nearest = client.get("/api/captures/nearest", params={"url": captured},
                         headers=bearer("researcher")).json()
    second = nearest["capture_time"][:19].replace("-", "").replace("T", "").replace(":", "")

    answer = client.get("/cdx", params={"url": captured, "from": second, "to": second},
                        headers=bearer("researcher"))

    assert len(answer.text.splitlines()) == 1


def test_a_snapshot_gives_the_fixity_of_its_copies(client: TestClient, captured: str,
                                                   run: Any, home: Path) -> None:
    def fixity() -> list[dict[str, Any]]:
        found = client.get("/api/captures/nearest", params={"url": captured},
                           headers=bearer("researcher")).json()
        return list(found["warc"]["fixity"])

    before = fixity()
    assert run("fixity", "run").status == 0
    held = fixity()
    (stored,) = list((home / "objects").rglob("*.warc.gz"))
    stored.write_bytes(stored.read_bytes()[:-10])
    assert run("fixity", "run").status == 1
    (broken,) = fixity()

    assert before == []  # never audited yet
    (check,) = held
    assert (check["location"], check["outcome"], check["event_type"]) == (
        "local", "pass", "fixity check")
    assert (broken["outcome"], broken["location"]) == ("fail", "local")
    assert "size" in broken["detail"] or "truncat" in broken["detail"]
