"""preserve reconcile: every location against the catalog (a folder and an S3 bucket on
moto's server), and repairs from a copy that still has the ingest digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import S3Endpoint, local_and_s3_settings

from preserve.demo import REFERENCE_PATH, LoopbackSite, Route


def client(endpoint: S3Endpoint) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=endpoint.url,
                                          region_name="us-east-1")


def capture(run: Any, site: LoopbackSite, path: str) -> dict[str, Any]:
    result = run("capture", site.url(path), "--collection", "news", "--json")
    warc: dict[str, Any] = json.loads(result.out)["warcs"][0]
    return warc


def reconciled(run: Any, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = run("reconcile", "--json", *args)
    return result.status, json.loads(result.out)["discrepancies"]


@pytest.fixture
def two_captures(run: Any, site: LoopbackSite, home: Path,
                 s3_endpoint: S3Endpoint) -> tuple[dict[str, Any], dict[str, Any]]:
    local_and_s3_settings(home, s3_endpoint)
    site.routes["/second"] = Route(b"<html><body><p>Another page.</p></body></html>")
    first, second = capture(run, site, REFERENCE_PATH), capture(run, site, "/second")
    assert run("reconcile").status == 0
    return first, second


def test_reconcile_finds_every_kind_of_disagreement_and_repairs_from_good_copies(
        run: Any, home: Path, s3_endpoint: S3Endpoint,
        two_captures: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, second = two_captures
    s3 = client(s3_endpoint)
    s3.delete_object(Bucket=s3_endpoint.bucket, Key=first["key"])  # lost offsite
    local_second = home / "objects" / second["key"]
    local_second.write_bytes(local_second.read_bytes()[:-10])  # cut short on disk
    s3.put_object(Bucket=s3_endpoint.bucket, Key="warcs/news/stray.warc.gz", Body=b"left over")

    status, found = reconciled(run)
    assert status == 1
    assert sorted((d["kind"], d["location"], d["key"]) for d in found) == sorted([
        ("missing", "offsite", first["key"]),
        ("size mismatch", "local", second["key"]),
        ("unexpected", "offsite", "warcs/news/stray.warc.gz"),
    ])

    status, found = reconciled(run, "--repair")
    assert status == 1  # the stray object stays: deleting needs a recorded reason
    repaired = {(d["kind"], d["repaired_from"]) for d in found if not d["open"]}
    assert repaired == {("missing", "local"), ("size mismatch", "offsite")}
    status, found = reconciled(run)
    assert [d["kind"] for d in found] == ["unexpected"]
    audit = json.loads(run("fixity", "run", "--json").out)  # fixity sees the stray one too
    assert [(f["kind"], f["key"]) for f in audit["findings"]] == [
        ("unexpected", "warcs/news/stray.warc.gz")]
    verified = run("ledger", "verify", "--json")
    # 2 ingests, 2 repairs, and the audit's checks of 2 files in 2 locations
    assert verified.status == 0 and json.loads(verified.out)["entries"] == 2 + 2 + 4


def test_metadata_that_disagrees_with_the_catalog_is_found_and_the_copy_rewritten(
        run: Any, s3_endpoint: S3Endpoint,
        two_captures: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = two_captures
    s3 = client(s3_endpoint)
    body = s3.get_object(Bucket=s3_endpoint.bucket, Key=first["key"])["Body"].read()
    s3.put_object(Bucket=s3_endpoint.bucket, Key=first["key"], Body=body,
                  Metadata={"sha256": "0" * 64})

    status, found = reconciled(run, "--repair")
    assert [(d["kind"], d["repaired_from"]) for d in found] == [("metadata mismatch", "local")]
    head = s3.head_object(Bucket=s3_endpoint.bucket, Key=first["key"])
    assert status == 0 and head["Metadata"]["sha256"] == first["sha256"]


def test_with_no_good_copy_left_nothing_is_touched(
        run: Any, home: Path, s3_endpoint: S3Endpoint,
        two_captures: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = two_captures
    client(s3_endpoint).delete_object(Bucket=s3_endpoint.bucket, Key=first["key"])
    local = home / "objects" / first["key"]
    damaged = local.read_bytes()[:-1] + b"!"
    local.write_bytes(damaged)  # same size, other bytes: only re-hashing can tell

    status, found = reconciled(run, "--repair")
    assert status == 1
    [missing] = [d for d in found if d["kind"] == "missing"]
    assert missing["open"] and "no good copy to repair from" in missing["repair_failed"]
    assert "not the ingest digest" in missing["repair_failed"]
    assert local.read_bytes() == damaged


def test_an_under_replicated_file_gets_its_copy_once_the_location_works(
        run: Any, site: LoopbackSite, home: Path, s3_endpoint: S3Endpoint) -> None:
    local_and_s3_settings(home, s3_endpoint, bucket=f"{s3_endpoint.bucket}-later")
    assert run("capture", site.url(REFERENCE_PATH), "--collection", "news").status == 1
    status, found = reconciled(run, "--repair")  # the bucket is not there yet
    assert status == 1 and [d["kind"] for d in found] == ["unreachable", "under-replicated"]
    assert "does not exist" in found[0]["detail"] and found[1]["repair_failed"]

    s3 = client(s3_endpoint)
    s3.create_bucket(Bucket=f"{s3_endpoint.bucket}-later")
    try:
        status, found = reconciled(run, "--repair")
        assert status == 0 and found[0]["repaired_from"] == "local"
        got = json.loads(run("get", site.url(REFERENCE_PATH), "--json").out)
        assert got["warc"]["copies"] == ["local", "offsite"]
        assert got["warc"]["under_replicated"] is False
        assert run("fixity", "run").status == 0
    finally:
        for item in s3.list_objects_v2(Bucket=f"{s3_endpoint.bucket}-later").get("Contents", []):
            s3.delete_object(Bucket=f"{s3_endpoint.bucket}-later", Key=item["Key"])
        s3.delete_bucket(Bucket=f"{s3_endpoint.bucket}-later")
