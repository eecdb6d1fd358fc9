"""Object stores: one contract for the filesystem store and S3 (moto's server on loopback,
and PRESERVE_TEST_S3_ENDPOINT when given): verified, immutable puts; reads by key and
range; listing; deletion. Then what only one backend has."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import MOTO_CREDENTIALS, S3_TARGETS, S3Endpoint, local_and_s3_settings, s3_bucket

from preserve import ledger
from preserve.config import Location
from preserve.errors import ConfigError, DigestMismatch, ObjectExists, ObjectMissing, StorageError
from preserve.storage import FilesystemStore, ObjectInfo, ObjectStore, open_store
from preserve.storage import s3 as s3_module
from preserve.storage.filesystem import INCOMING
from preserve.storage.s3 import S3Store, sha256_checksum

DATA = b"WARC/1.1\r\n" + bytes(range(256)) * 40


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def s3_location(endpoint: S3Endpoint, name: str = "offsite", prefix: str = "") -> Location:
    return Location(name, "s3", bucket=endpoint.bucket, prefix=prefix,
                    endpoint_url=endpoint.url, addressing_style="path")


@pytest.fixture(params=["filesystem", *(f"s3-{target}" for target in S3_TARGETS)])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    """The same contract, on every backend."""
    if request.param == "filesystem":
        (tmp_path / "objects").mkdir()  # as a bucket is there before its first object
        yield FilesystemStore("local", tmp_path / "objects")
        return
    with s3_bucket(request, monkeypatch, request.param.removeprefix("s3-")) as endpoint:
        yield open_store(s3_location(endpoint))


@pytest.fixture
def fs_store(tmp_path: Path) -> FilesystemStore:
    (tmp_path / "objects").mkdir()
    return FilesystemStore("local", tmp_path / "objects")


def put(store: ObjectStore, key: str, data: bytes, digest: str | None = None) -> ObjectInfo:
    return store.put(key, io.BytesIO(data), sha(data) if digest is None else digest)


def incoming_files(store: ObjectStore) -> list[Path]:
    if not isinstance(store, FilesystemStore):
        return []
    folder = store.root / INCOMING
    return sorted(folder.iterdir()) if folder.exists() else []


def test_put_stores_the_bytes_under_the_key(store: ObjectStore) -> None:
    info = put(store, "warcs/c/a.warc.gz", DATA)

    assert info == ObjectInfo("warcs/c/a.warc.gz", len(DATA))
    with store.open("warcs/c/a.warc.gz") as stream:
        assert stream.read() == DATA
    assert list(store.list()) == [info]
    assert incoming_files(store) == []


def test_the_filesystem_store_keeps_objects_as_files(fs_store: ObjectStore) -> None:
    put(fs_store, "warcs/c/a.warc.gz", DATA)
    assert (fs_store.root / "warcs" / "c" / "a.warc.gz").read_bytes() == DATA


def test_put_with_the_wrong_digest_is_refused_and_leaves_nothing(
        store: ObjectStore) -> None:
    wrong = sha(b"other bytes")

    with pytest.raises(DigestMismatch) as caught:
        put(store, "warcs/c/a.warc.gz", DATA, wrong)

    assert caught.value.expected == wrong
    assert caught.value.found == sha(DATA)
    assert "warcs/c/a.warc.gz" in str(caught.value)
    assert store.head("warcs/c/a.warc.gz") is None
    assert incoming_files(store) == []
    assert list(store.list()) == []


def test_putting_identical_bytes_again_is_accepted(store: ObjectStore) -> None:
    put(store, "k/object", DATA)

    again = put(store, "k/object", DATA)

    assert again == ObjectInfo("k/object", len(DATA))
    assert store.read_range("k/object", 0, len(DATA)) == DATA
    assert incoming_files(store) == []


def test_putting_other_bytes_to_an_existing_key_is_refused(store: ObjectStore) -> None:
    put(store, "k/object", DATA)
    other = b"a different object"

    with pytest.raises(ObjectExists) as caught:
        put(store, "k/object", other)

    assert caught.value.key == "k/object"
    assert store.read_range("k/object", 0, len(DATA) + 1) == DATA
    assert store.head("k/object") == ObjectInfo("k/object", len(DATA))
    assert incoming_files(store) == []


def test_open_of_a_missing_key_raises_object_missing(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing) as caught:
        store.open("warcs/none.warc.gz")
    assert caught.value.key == "warcs/none.warc.gz"
    assert caught.value.location == store.name


def test_read_range_returns_the_exact_slice(store: ObjectStore) -> None:
    put(store, "k/object", DATA)

    assert store.read_range("k/object", 0, 10) == DATA[:10]
    assert store.read_range("k/object", 1000, 37) == DATA[1000:1037]
    assert store.read_range("k/object", len(DATA) - 5, 5) == DATA[-5:]
    assert store.read_range("k/object", len(DATA) - 5, 100) == DATA[-5:]


def test_read_range_of_a_missing_key_raises_object_missing(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing):
        store.read_range("k/none", 0, 1)


def test_head_gives_the_size_or_none(store: ObjectStore) -> None:
    put(store, "k/object", DATA)
    put(store, "k/empty", b"")

    assert store.head("k/object") == ObjectInfo("k/object", len(DATA))
    assert store.head("k/empty") == ObjectInfo("k/empty", 0)
    assert store.head("k/none") is None


def test_head_of_a_key_prefix_is_none(store: ObjectStore) -> None:
    put(store, "warcs/c/a.warc.gz", DATA)

    assert store.head("warcs/c") is None


@pytest.mark.parametrize("operation", ["put onto a folder", "delete a folder",
                                       "put below an object", "open a folder"])
def test_keys_that_clash_with_folders_raise_storage_errors(fs_store: FilesystemStore,
                                                           operation: str) -> None:
    put(fs_store, "warcs/c/a.warc.gz", DATA)

    with pytest.raises(StorageError):
        if operation == "put onto a folder":
            put(fs_store, "warcs/c", DATA)
        elif operation == "delete a folder":
            fs_store.delete("warcs/c")
        elif operation == "put below an object":
            put(fs_store, "warcs/c/a.warc.gz/x", DATA)
        else:
            fs_store.open("warcs/c")


def test_head_below_an_object_is_none(store: ObjectStore) -> None:
    put(store, "warcs/c/a.warc.gz", DATA)
    assert store.head("warcs/c/a.warc.gz/x") is None


def test_list_gives_keys_by_prefix_and_never_the_incoming_folder(
        store: ObjectStore) -> None:
    assert list(store.list()) == []  # no root folder yet
    put(store, "warcs/b/2.warc.gz", b"two")
    put(store, "warcs/a/1.warc.gz", b"one")
    put(store, "other/x", b"xx")
    if isinstance(store, FilesystemStore):
        (store.root / INCOMING).mkdir(exist_ok=True)
        (store.root / INCOMING / "leftover.part").write_bytes(b"partial")

    assert list(store.list()) == [
        ObjectInfo("other/x", 2),
        ObjectInfo("warcs/a/1.warc.gz", 3),
        ObjectInfo("warcs/b/2.warc.gz", 3),
    ]
    assert [info.key for info in store.list("warcs/")] == [
        "warcs/a/1.warc.gz", "warcs/b/2.warc.gz"]
    assert [info.key for info in store.list("warcs/b")] == ["warcs/b/2.warc.gz"]
    assert list(store.list("nothing/")) == []


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", ".incoming/x", "", "a/../b", "./a",
                                 "a/", "a\\b"])
def test_invalid_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(StorageError, match="invalid object key"):
        put(store, key, DATA)
    with pytest.raises(StorageError, match="invalid object key"):
        store.open(key)
    with pytest.raises(StorageError, match="invalid object key"):
        store.head(key)
    with pytest.raises(StorageError, match="invalid object key"):
        store.delete(key)
    assert list(store.list()) == []
    assert not Path("/abs").exists()


def test_delete_removes_the_object(store: ObjectStore) -> None:
    put(store, "k/object", DATA)
    put(store, "k/kept", b"kept")

    store.delete("k/object")

    assert store.head("k/object") is None
    assert [info.key for info in store.list()] == ["k/kept"]
    with pytest.raises(ObjectMissing):
        store.open("k/object")
    with pytest.raises(ObjectMissing):
        store.delete("k/object")
    # The key can be used again after a deletion.
    put(store, "k/object", b"new")
    assert store.read_range("k/object", 0, 10) == b"new"


def test_open_store_on_a_filesystem_location(tmp_path: Path) -> None:
    location = Location("offsite", "filesystem", tmp_path / "offsite")

    store = open_store(location)
    store.put("k/object", io.BytesIO(DATA), sha(DATA))

    assert store.name == "offsite"
    assert (tmp_path / "offsite" / "k" / "object").read_bytes() == DATA


def test_open_store_refuses_an_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported type 'tape'"):
        open_store(Location("cloud", "tape", tmp_path / "cloud"))


# -- S3 only -------------------------------------------------------------------------------


class _Meddling:
    """A boto3 client that passes everything on, except what a test overrides."""

    def __init__(self, real: Any, **overrides: Any) -> None:
        self._real = real
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._real, name)


def s3_store(endpoint: S3Endpoint, prefix: str = "", **overrides: Any) -> S3Store:
    plain = S3Store(s3_location(endpoint, prefix=prefix))
    return S3Store(plain.location, client=_Meddling(plain.client, **overrides))


def recording(endpoint: S3Endpoint, method: str) -> tuple[S3Store, list[dict[str, Any]]]:
    """A store whose client keeps the arguments of every call of one method."""
    calls: list[dict[str, Any]] = []
    real = getattr(S3Store(s3_location(endpoint)).client, method)

    def record(**arguments: Any) -> Any:
        calls.append(arguments)
        return real(**arguments)

    return s3_store(endpoint, **{method: record}), calls


def flipped(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart above 6 MiB, in parts of 5 MiB (S3's smallest but the last)."""
    monkeypatch.setattr(s3_module, "MULTIPART_THRESHOLD", 6 * 1024 * 1024)
    monkeypatch.setattr(s3_module, "PART_SIZE", 5 * 1024 * 1024)


BIG = bytes(range(256)) * (13 * 1024 * 1024 // 256)  # 13 MiB: three parts


def test_boto3_computes_no_checksum_of_its_own_and_validates_none_we_did_not_ask_for(
        s3_endpoint: S3Endpoint) -> None:
    # boto3 1.36+ sends a CRC32 of every upload as an aws-chunked trailer, which several
    # non-AWS servers reject: we send the SHA-256 we chose and verify reads ourselves.
    config = S3Store(s3_location(s3_endpoint)).client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"


def test_one_record_is_read_by_a_ranged_get_never_the_whole_object(
        s3_endpoint: S3Endpoint) -> None:
    store, reads = recording(s3_endpoint, "get_object")
    put(store, "warcs/c/a.warc.gz", DATA)
    assert store.read_range("warcs/c/a.warc.gz", 3, 5) == DATA[3:8]
    assert [read.get("Range") for read in reads] == ["bytes=3-7"]


def test_a_server_without_conditional_writes_still_never_has_an_object_overwritten(
        s3_endpoint: S3Endpoint) -> None:
    from botocore.exceptions import ClientError

    real = S3Store(s3_location(s3_endpoint)).client
    conditional: list[bool] = []

    def put_object(**arguments: Any) -> Any:
        conditional.append("IfNoneMatch" in arguments)
        if "IfNoneMatch" in arguments:  # as a server that has no conditional writes answers
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "no"},
                               "ResponseMetadata": {"HTTPStatusCode": 501}}, "PutObject")
        return real.put_object(**arguments)

    store = s3_store(s3_endpoint, put_object=put_object)
    assert put(store, "k/object", DATA) == ObjectInfo("k/object", len(DATA))
    assert put(store, "k/object", DATA) == ObjectInfo("k/object", len(DATA))  # the same: fine
    with pytest.raises(ObjectExists):
        put(store, "k/object", b"other bytes")
    assert conditional == [True, False]  # asked once; then the look before writing decides
    assert store.read_range("k/object", 0, len(DATA)) == DATA


def test_an_s3_copy_that_fails_then_recovers_is_made_and_verified(
        s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    from botocore.exceptions import EndpointConnectionError

    from preserve.ingest import store_copies

    real = S3Store(s3_location(s3_endpoint)).client
    attempts: list[str] = []

    def put_object(**arguments: Any) -> Any:
        attempts.append(arguments["Key"])
        if len(attempts) == 1:
            raise EndpointConnectionError(endpoint_url=s3_endpoint.url)
        return real.put_object(**arguments)

    store = s3_store(s3_endpoint, put_object=put_object)
    path = tmp_path / "a.warc.gz"
    path.write_bytes(DATA)
    waits: list[float] = []
    copies = store_copies(path, sha(DATA), "warcs/c/a.warc.gz", [store], sleep=waits.append)
    assert copies.verified == ["offsite"] and copies.missing == {}
    assert len(attempts) == 2 and waits == [1.0]
    assert store.read_range("warcs/c/a.warc.gz", 0, len(DATA)) == DATA


def test_a_large_object_goes_up_in_parts_with_checksums(s3_endpoint: S3Endpoint,
                                                        small_parts: None) -> None:
    sent: list[dict[str, Any]] = []
    store = s3_store(s3_endpoint)
    real_part = store.client._real.upload_part

    def upload_part(**arguments: Any) -> Any:
        sent.append(arguments)
        return real_part(**arguments)

    store = s3_store(s3_endpoint, upload_part=upload_part)
    info = put(store, "warcs/big.warc.gz", BIG)

    assert info == ObjectInfo("warcs/big.warc.gz", len(BIG))
    assert sorted(part["PartNumber"] for part in sent) == [1, 2, 3]
    for part in sent:
        assert part["ChecksumSHA256"] == base64.b64encode(
            hashlib.sha256(part["Body"]).digest()).decode()
    assert store.metadata_sha256("warcs/big.warc.gz") == sha(BIG)
    assert store.read_range("warcs/big.warc.gz", 6 * 1024 * 1024 - 3, 7) == (
        BIG[6 * 1024 * 1024 - 3:6 * 1024 * 1024 + 4])


def test_a_single_put_sends_the_sha256_and_keeps_it_in_metadata(
        s3_endpoint: S3Endpoint) -> None:
    store, seen = recording(s3_endpoint, "put_object")
    put(store, "k/object", DATA)

    assert seen[0]["ChecksumSHA256"] == sha256_checksum(sha(DATA))
    assert seen[0]["IfNoneMatch"] == "*"
    assert store.metadata_sha256("k/object") == sha(DATA)


@pytest.mark.parametrize("size", ["single", "multipart"])
def test_a_copy_damaged_on_the_way_is_caught_by_reading_it_back(
        s3_endpoint: S3Endpoint, small_parts: None, size: str) -> None:
    # moto stores what it is sent, checksum header or not: only our read-back can tell.
    real = S3Store(s3_location(s3_endpoint)).client

    def put_object(**arguments: Any) -> Any:
        return real.put_object(**{**arguments, "Body": flipped(arguments["Body"])})

    def upload_part(**arguments: Any) -> Any:
        return real.upload_part(**{**arguments, "Body": flipped(arguments["Body"])})

    store = s3_store(s3_endpoint, put_object=put_object, upload_part=upload_part)
    data = DATA if size == "single" else BIG

    with pytest.raises(DigestMismatch) as caught:
        put(store, "k/object", data)

    assert caught.value.expected == sha(data)
    assert caught.value.found != sha(data)
    assert store.head("k/object") is None  # the bad copy does not stay


def test_a_key_taken_between_look_and_write_is_not_overwritten(s3_endpoint: S3Endpoint) -> None:
    # Another writer stores the key after our HEAD found nothing: If-None-Match refuses ours.
    plain = S3Store(s3_location(s3_endpoint))
    put(plain, "k/object", DATA)
    missing = plain.client.exceptions.ClientError(
        {"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
    calls = {"head": 0}

    def head_object(**arguments: Any) -> Any:
        calls["head"] += 1
        if calls["head"] == 1:
            raise missing
        return plain.client.head_object(**arguments)

    store = s3_store(s3_endpoint, head_object=head_object)
    with pytest.raises(ObjectExists):
        put(store, "k/object", b"other bytes")

    assert plain.read_range("k/object", 0, len(DATA) + 1) == DATA


def test_an_interrupted_multipart_upload_leaves_no_object(s3_endpoint: S3Endpoint,
                                                          small_parts: None) -> None:
    real = S3Store(s3_location(s3_endpoint)).client

    def upload_part(**arguments: Any) -> Any:
        if arguments["PartNumber"] == 2:
            raise KeyboardInterrupt  # the process is stopped mid-upload
        return real.upload_part(**arguments)

    store = s3_store(s3_endpoint, upload_part=upload_part)
    with pytest.raises(KeyboardInterrupt):
        put(store, "k/big", BIG)

    assert store.head("k/big") is None
    assert real.list_multipart_uploads(Bucket=s3_endpoint.bucket).get("Uploads", []) == []


def test_a_location_prefix_is_kept_out_of_keys(s3_endpoint: S3Endpoint) -> None:
    store = s3_store(s3_endpoint, prefix="archive/")
    put(store, "k/object", DATA)

    raw = store.client.list_objects_v2(Bucket=s3_endpoint.bucket)
    assert [item["Key"] for item in raw["Contents"]] == ["archive/k/object"]
    assert list(store.list()) == [ObjectInfo("k/object", len(DATA))]


def test_s3_errors_name_the_location_and_say_what_is_wrong(
        s3_endpoint: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    nowhere = S3Store(Location("cold", "s3", bucket="b", endpoint_url=f"http://127.0.0.1:{closed}",
                               addressing_style="path"))
    monkeypatch.setattr(nowhere.client.meta.config, "retries", {"max_attempts": 1})
    with pytest.raises(StorageError, match=r"location 'cold' .*cannot reach the endpoint"):
        nowhere.head("k/object")

    no_bucket = S3Store(Location("offsite", "s3", bucket="no-such-bucket-here",
                                 endpoint_url=s3_endpoint.url, addressing_style="path"))
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        put(no_bucket, "k/object", DATA)

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                 "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    anonymous = S3Store(s3_location(s3_endpoint))
    with pytest.raises(ConfigError, match="no AWS credentials"):
        anonymous.head("k/object")


def test_a_capture_is_preserved_in_a_filesystem_and_an_s3_location(
        run: Any, site: Any, home: Path, s3_endpoint: S3Endpoint) -> None:
    from preserve.demo import REFERENCE_PATH

    local_and_s3_settings(home, s3_endpoint, prefix="archive")
    captured = run("capture", site.url(REFERENCE_PATH), "--collection", "news", "--json")
    assert captured.status == 0, captured.err
    [warc] = json.loads(captured.out)["warcs"]
    assert warc["locations"] == ["local", "offsite"]

    offsite = S3Store(s3_location(s3_endpoint, prefix="archive/"))
    assert offsite.metadata_sha256(warc["key"]) == warc["sha256"]
    assert offsite.head(warc["key"]) == ObjectInfo(warc["key"], warc["size"])
    assert run("fixity", "run").status == 0

    # With the local copy gone, the page is read from S3 by a ranged GET.
    (home / "objects" / warc["key"]).unlink()
    got = run("get", site.url(REFERENCE_PATH), "--payload")
    assert got.status == 0, got.err
    assert got.out == site.routes[REFERENCE_PATH].body
    audit = run("fixity", "run")
    assert audit.status == 1 and "local" in audit.text


def with_a_locked_vault(home: Path, s3_endpoint: S3Endpoint, moto_endpoint: str,
                        retention_mode: str | None = None) -> tuple[Any, str, str]:
    """preserve.yaml with a folder, the test bucket, and a bucket with Object Lock on moto
    ("vault"); returns a boto3 client, the locked bucket's name and the settings written."""
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=moto_endpoint,
                                             region_name="us-east-1")
    locked = f"{s3_endpoint.bucket}-locked"
    client.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    mode = f", retention_mode: {retention_mode}" if retention_mode else ""
    home.mkdir(parents=True, exist_ok=True)
    settings = f"""
storage:
  locations:
    local: {{type: filesystem, path: {home / "objects"}}}
    offsite: {{type: s3, bucket: {s3_endpoint.bucket}, endpoint_url: "{s3_endpoint.url}",
              addressing_style: path}}
    vault: {{type: s3, bucket: {locked}, endpoint_url: "{moto_endpoint}",
            addressing_style: path{mode}}}
  default_copies: [local]
"""
    (home / "preserve.yaml").write_text(settings)
    return client, locked, settings


def test_storage_check_tries_every_location_and_leaves_nothing(
        run: Any, home: Path, s3_endpoint: S3Endpoint, moto_endpoint: str) -> None:
    client, locked, settings = with_a_locked_vault(home, s3_endpoint, moto_endpoint)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = run("storage", "check", "--json")
    assert result.status == 0, result.text
    checks = {check["location"]: check for check in json.loads(result.out)}
    assert all(check["usable"] for check in checks.values())
    assert checks["offsite"]["versioning"] == "off"
    assert checks["offsite"]["can_retain"] is False
    assert checks["vault"]["can_retain"] is True and checks["vault"]["versioning"] == "enabled"
    if s3_endpoint.url == moto_endpoint:
        # moto stores a wrong checksum, and honours If-None-Match: the probe finds out.
        assert checks["offsite"]["checksums"].startswith("not verified by the server")
        assert checks["offsite"]["server_checksums"] == "no"
        assert checks["offsite"]["conditional_writes"] == "If-None-Match honoured"
    assert checks["vault"]["server_checksums"] == "not probed"  # a locked probe would stay
    assert checks["local"]["server_checksums"] == "n/a"
    offsite = S3Store(s3_location(s3_endpoint)).client  # on the given endpoint, if one is
    for bucket_client, bucket in ((offsite, s3_endpoint.bucket), (client, locked)):
        assert bucket_client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
        assert bucket_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert list(FilesystemStore("local", home / "objects").list()) == []
    table = run("storage", "check").text
    assert "location" in table and "vault" in table and "retention" in table
    assert "server checksums" in table.splitlines()[0]

    (home / "preserve.yaml").write_text(settings.replace(
        "  default_copies", f"    cold: {{type: s3, bucket: b, endpoint_url: "
                            f"'http://127.0.0.1:{closed}'}}\n  default_copies"))
    result = run("storage", "check")
    assert result.status == 1
    assert "cold" in result.text and "problem: location 'cold'" in result.text
    client.delete_bucket(Bucket=locked)


def test_a_bucket_that_cannot_take_the_copy_leaves_the_capture_under_replicated(
        run: Any, site: Any, home: Path, s3_endpoint: S3Endpoint) -> None:
    from preserve.demo import REFERENCE_PATH

    local_and_s3_settings(home, s3_endpoint, bucket="no-such-bucket")
    captured = run("capture", site.url(REFERENCE_PATH), "--collection", "news", "--json")
    assert captured.status == 1
    [warc] = json.loads(captured.out)["warcs"]
    assert warc["locations"] == ["local"]
    assert "bucket 'no-such-bucket' does not exist" in warc["missing"]["offsite"]
    got = json.loads(run("get", site.url(REFERENCE_PATH), "--json").out)
    assert got["warc"]["under_replicated"] is True
    assert "under-replicated" in run("fixity", "run").text


def test_an_endpoint_out_of_reach_leaves_the_capture_under_replicated(
        run: Any, site: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from preserve.demo import REFERENCE_PATH

    for name, value in MOTO_CREDENTIALS.items():  # credentials, so the endpoint is asked
        monkeypatch.setenv(name, value)

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    local_and_s3_settings(home, S3Endpoint(f"http://127.0.0.1:{closed}", "offsite-bucket"))
    captured = run("capture", site.url(REFERENCE_PATH), "--collection", "news", "--json")
    assert captured.status == 1, captured.err
    [warc] = json.loads(captured.out)["warcs"]
    assert warc["locations"] == ["local"]
    assert "offsite" in warc["missing"]
    got = json.loads(run("get", site.url(REFERENCE_PATH), "--json").out)
    assert got["warc"]["under_replicated"] is True
    assert run("get", site.url(REFERENCE_PATH), "--payload").status == 0
    # Nor does a repair try to write there while it is out of reach (each try would cost
    # the client's retries and timeouts); the discrepancy says why it stays open.
    repaired = run("reconcile", "--repair", "--json")
    assert repaired.status == 1
    [never_made] = [item for item in json.loads(repaired.out)["discrepancies"]
                    if item["kind"] == "under-replicated"]
    assert never_made["repair_failed"].startswith("not tried: out of reach")


@pytest.mark.parametrize("size", ["single", "multipart"])
@pytest.mark.parametrize("etag", ["the server's", "not an MD5"])
def test_the_servers_md5_etag_verifies_a_copy_or_it_is_read_back(
        s3_endpoint: S3Endpoint, small_parts: None, size: str, etag: str) -> None:
    real = S3Store(s3_location(s3_endpoint)).client
    reads: list[dict[str, Any]] = []

    def answer(result: dict[str, Any]) -> dict[str, Any]:
        return result if etag == "the server's" else {**result, "ETag": '"opaque-kms-etag"'}

    def get_object(**arguments: Any) -> Any:
        reads.append(arguments)
        return real.get_object(**arguments)

    store = s3_store(
        s3_endpoint, get_object=get_object,
        put_object=lambda **arguments: answer(real.put_object(**arguments)),
        complete_multipart_upload=lambda **arguments: answer(
            real.complete_multipart_upload(**arguments)))
    data = DATA if size == "single" else BIG
    assert put(store, "k/object", data) == ObjectInfo("k/object", len(data))
    assert len(reads) == (0 if etag == "the server's" else 1)  # a full read only when needed
    assert store.read_range("k/object", 0, len(data) + 1) == data


def test_parts_that_do_not_hash_to_the_digest_are_never_completed(
        s3_endpoint: S3Endpoint, small_parts: None) -> None:
    store = s3_store(s3_endpoint)
    with pytest.raises(DigestMismatch):
        put(store, "k/big", BIG, digest=sha(b"something else"))
    assert store.head("k/big") is None
    assert store.client.list_multipart_uploads(Bucket=s3_endpoint.bucket).get("Uploads", []) == []


def test_a_policys_retention_is_written_where_object_lock_allows_it(
        run: Any, site: Any, home: Path, s3_endpoint: S3Endpoint, moto_endpoint: str,
        tmp_path: Path) -> None:
    from preserve.demo import REFERENCE_PATH

    client, locked, _ = with_a_locked_vault(home, s3_endpoint, moto_endpoint,
                                            retention_mode="compliance")
    policy = tmp_path / "kept.yaml"
    policy.write_text("collection: kept\n"
                      "capture: {delay_seconds: 0}\n"  # our own loopback site: no pause needed
                      "preservation: {copies: [local, vault, offsite], retention_years: 10}\n")
    captured = run("capture", site.url(REFERENCE_PATH), "--policy", str(policy), "--json")
    assert captured.status == 0, json.loads(captured.out)["warcs"][0]["missing"]
    [warc] = json.loads(captured.out)["warcs"]
    retention = warc["retention"]
    assert retention["local"] is None and retention["offsite"] is None
    assert retention["vault"] is not None
    held = client.head_object(Bucket=locked, Key=warc["key"])
    assert held["ObjectLockMode"] == "COMPLIANCE"
    assert held["ObjectLockRetainUntilDate"].year == int(retention["vault"][:4])
    assert int(retention["vault"][:4]) - 10 == datetime.now(UTC).year or (
        int(retention["vault"][:4]) - 10 == datetime.now(UTC).year - 1)  # a run at New Year
    version = held["VersionId"]
    with pytest.raises(client.exceptions.ClientError):  # locked: not even we can delete it
        client.delete_object(Bucket=locked, Key=warc["key"], VersionId=version)
    printed = run("capture", site.url(REFERENCE_PATH), "--policy", str(policy)).text
    assert "no retention date in offsite" in printed and "retained in vault until" in printed

    # Deleted in the vault (a delete marker hides it; its locked version stays): the
    # repaired copy, made from the folder's, which holds no date, is given the same date.
    client.delete_object(Bucket=locked, Key=warc["key"])
    repaired = run("reconcile", "--repair", "--json")
    fixed = [d for d in json.loads(repaired.out)["discrepancies"] if d["key"] == warc["key"]]
    assert [(d["kind"], d["location"], d["open"]) for d in fixed] == [
        ("missing", "vault", False)]
    again = client.head_object(Bucket=locked, Key=warc["key"])
    assert again["VersionId"] != version
    assert again["ObjectLockMode"] == "COMPLIANCE"
    assert again["ObjectLockRetainUntilDate"] == held["ObjectLockRetainUntilDate"]


def test_a_store_goes_to_a_worker_process_and_reads_there(store: ObjectStore) -> None:
    """Deep audits send stores to worker processes (spawned, so pickled): a store that has
    been used (an S3 store then holds its boto3 client) must go, and work there."""
    import pickle

    from preserve.processes import process_pool

    put(store, "warcs/c/a.warc.gz", DATA)
    assert store.read_range("warcs/c/a.warc.gz", 3, 5) == DATA[3:8]
    copy = pickle.loads(pickle.dumps(store))
    with process_pool(1) as pool:
        there = pool.submit(_read_range, store, "warcs/c/a.warc.gz", 3, 5).result(timeout=60)

    assert copy.read_range("warcs/c/a.warc.gz", 0, 4) == DATA[:4]
    assert there == DATA[3:8]


def _read_range(store: ObjectStore, key: str, offset: int, length: int) -> bytes:
    return store.read_range(key, offset, length)


def _uneven(size: int) -> bytes:
    """Bytes of a size that is no multiple of a disk block, none alike."""
    return hashlib.shake_256(b"uneven").digest(size)


@pytest.mark.parametrize("size", [0, 1, 4096, 3 * 8192 + 123])
def test_copies_are_written_and_read_back_past_the_page_cache_where_the_system_allows(
        fs_store: FilesystemStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        size: int) -> None:
    """Linux's O_DIRECT: the read-back hashes what the disk holds. The buffer is made
    small here, so objects span several buffers and end part-way into a block."""
    import fcntl
    import os

    from preserve.storage import filesystem

    if not hasattr(os, "O_DIRECT"):
        pytest.skip("this system has no O_DIRECT: copies go through the page cache")
    probe = tmp_path / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644))
    except OSError:
        pytest.skip(f"the file system under {tmp_path} takes no O_DIRECT")
    monkeypatch.setattr(filesystem, "DIRECT_BUFFER", 8192)
    opened: list[int] = []
    real_open = os.open

    def spying_open(path: Any, flags: int, *args: Any) -> int:
        if INCOMING in str(path):
            opened.append(flags)
        return real_open(path, flags, *args)

    # Each write and read, with whether the file was still past the cache at that moment.
    calls: list[tuple[str, int, bool]] = []
    real_write, real_readv = os.write, os.readv

    def direct(fd: int) -> bool:
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)

    def spying_write(fd: int, data: Any) -> int:
        calls.append(("write", len(data), direct(fd)))
        return real_write(fd, data)

    def spying_readv(fd: int, buffers: Any) -> int:
        got = real_readv(fd, buffers)
        calls.append(("read", got, direct(fd)))
        return got

    monkeypatch.setattr(os, "open", spying_open)
    monkeypatch.setattr(os, "write", spying_write)
    monkeypatch.setattr(os, "readv", spying_readv)
    data = _uneven(size)
    assert put(fs_store, "warcs/c/a.warc.gz", data) == ObjectInfo("warcs/c/a.warc.gz", size)
    assert (fs_store.root / "warcs" / "c" / "a.warc.gz").read_bytes() == data
    written, read_back = opened
    assert written & os.O_DIRECT and written & os.O_WRONLY
    assert read_back & os.O_DIRECT and not read_back & (os.O_WRONLY | os.O_RDWR)
    # Whole blocks went past the cache, and only the tail that is no whole block did not;
    # every read of the copy was past it.
    writes = [(length, past) for call, length, past in calls if call == "write"]
    assert sum(length for length, _ in writes) == size
    assert all(past for length, past in writes if length % 4096 == 0)
    assert [length for length, past in writes if not past] == ([size % 4096] if size % 4096
                                                              else [])
    reads = [(length, past) for call, length, past in calls if call == "read"]
    assert sum(length for length, _ in reads) == size and all(past for _, past in reads)


def test_storage_check_says_whether_a_folder_verifies_copies_from_the_disk(
        fs_store: FilesystemStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from preserve.storage import filesystem

    probe = tmp_path / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644))
    except (AttributeError, OSError):
        pytest.skip(f"the file system under {tmp_path} takes no O_DIRECT")
    check = fs_store.probe()
    assert check.usable
    assert check.checksums.startswith("read back past the page cache (O_DIRECT")
    monkeypatch.setattr(filesystem, "_direct_flag", lambda: 0)  # as on macOS
    check = fs_store.probe()
    assert check.usable and check.checksums.startswith("read back through the page cache")
    assert list(fs_store.root.iterdir()) == []  # nothing left: not even its .incoming


def test_a_stream_that_can_only_be_read_is_stored(fs_store: FilesystemStore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from preserve.storage import filesystem

    class ReadOnly:
        """A stream with ``read`` and nothing else, giving a few bytes at a time."""

        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self.data.read(min(size, 1000))

    monkeypatch.setattr(filesystem, "DIRECT_BUFFER", 8192)
    data = _uneven(3 * 8192 + 123)
    fs_store.put("warcs/c/a.warc.gz", ReadOnly(data), sha(data))  # type: ignore[arg-type]
    assert (fs_store.root / "warcs" / "c" / "a.warc.gz").read_bytes() == data


@pytest.mark.parametrize("refused", ["open", "write", "read"])
def test_a_copy_where_the_file_system_refuses_o_direct_goes_through_the_page_cache(
        fs_store: FilesystemStore, monkeypatch: pytest.MonkeyPatch, refused: str) -> None:
    """tmpfs refused O_DIRECT when the file was opened (before Linux 6.6, after creating
    it); other file systems take the flag and refuse the first write or read (EINVAL);
    macOS has none (tested by its absence)."""
    import errno
    import fcntl
    import os

    from preserve.storage import filesystem

    direct = getattr(os, "O_DIRECT", 0o40000)
    monkeypatch.setattr(filesystem, "_direct_flag", lambda: direct)
    monkeypatch.setattr(filesystem, "DIRECT_BUFFER", 8192)
    real = {"open": os.open, "write": os.write, "read": os.readv, "fcntl": fcntl.fcntl}
    refusals = []
    # The flag is kept out of the real calls (this file system may take it); the calls
    # see it set on a file until preserve clears it with fcntl.
    still_direct: set[int] = set()

    def einval(call: str) -> OSError:
        refusals.append(call)
        return OSError(errno.EINVAL, "Invalid argument")

    def opening(path: Any, flags: int, *args: Any) -> int:
        if refused == "open" and flags & direct:
            if flags & os.O_CREAT:  # as Linux did before tmpfs took O_DIRECT: made, refused
                os.close(real["open"](path, flags & ~direct, *args))
            raise einval("open")
        fd = real["open"](path, flags & ~direct, *args)
        if flags & direct:
            still_direct.add(fd)
        return fd

    def setting_flags(fd: int, command: int, *args: Any) -> Any:
        if command == fcntl.F_GETFL:
            return real["fcntl"](fd, command) | (direct if fd in still_direct else 0)
        if command == fcntl.F_SETFL and not args[0] & direct:
            still_direct.discard(fd)
        return real["fcntl"](fd, command, *args)

    def writing(fd: int, data: Any) -> int:
        if refused == "write" and fd in still_direct:
            raise einval("write")
        return real["write"](fd, data)

    def reading(fd: int, buffers: Any) -> int:
        if refused == "read" and fd in still_direct:
            raise einval("read")
        return real["read"](fd, buffers)

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "write", writing)
    monkeypatch.setattr(os, "readv", reading)
    monkeypatch.setattr(fcntl, "fcntl", setting_flags)
    data = _uneven(3 * 8192 + 123)
    assert put(fs_store, "warcs/c/a.warc.gz", data) == ObjectInfo("warcs/c/a.warc.gz",
                                                                   len(data))
    assert (fs_store.root / "warcs" / "c" / "a.warc.gz").read_bytes() == data
    # Refused once each time the file is opened (to write, to read back), then never
    # asked that way again.
    assert refusals == (["open", "open"] if refused == "open" else [refused])


@pytest.mark.parametrize("deep", [False, True])
def test_an_audit_names_a_location_out_of_reach_and_checks_the_rest(
        run: Any, site: Any, home: Path, s3_endpoint: S3Endpoint, deep: bool) -> None:
    from preserve.demo import REFERENCE_PATH

    local_and_s3_settings(home, s3_endpoint)
    assert run("capture", site.url(REFERENCE_PATH), "--collection", "news").status == 0
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    local_and_s3_settings(home, S3Endpoint(f"http://127.0.0.1:{closed}", s3_endpoint.bucket))
    audit = run("fixity", "run", "--json", *(["--deep"] if deep else []))
    assert audit.status == 1, audit.err
    report = json.loads(audit.out)
    assert [(f["kind"], f["location"], f["key"]) for f in report["findings"]] == [
        ("unreadable", "offsite", report["findings"][0]["key"]),  # the copy
        ("unreadable", "offsite", "")]  # and the look for objects no catalog row knows
    assert report["findings"][0]["key"].endswith(".warc.gz")
    assert str(closed) in report["findings"][0]["found"]
    assert report["copies"] == 2 and report["bytes"] > 0  # the local copy was read whole
    assert report["out_of_reach"].keys() == {"offsite"}
    if not deep:  # the ledger is checkpointed where it can be, and says where it was not
        said = run("fixity", "run")
        assert said.status == 1
        assert (b"checkpointed to local; not to offsite (out of reach in this audit)"
                in said.out)


def test_a_location_out_of_reach_is_not_asked_again_in_the_same_audit(
        run: Any, site: Any, home: Path, s3_endpoint: S3Endpoint) -> None:
    # Each copy there would cost the client's retries and timeouts (a minute, where
    # packets are dropped): after the first, the others are unreadable at once.
    from preserve.catalog import open_engine
    from preserve.config import load_settings
    from preserve.demo import REFERENCE_PATH
    from preserve.fixity import run_fixity
    from preserve.storage import open_stores

    local_and_s3_settings(home, s3_endpoint)
    for path in (REFERENCE_PATH, "/gone", "/robots.txt"):
        assert run("capture", site.url(path), "--collection", "news").status in (0, 1)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    local_and_s3_settings(home, S3Endpoint(f"http://127.0.0.1:{closed}", s3_endpoint.bucket))
    damaged = sorted((home / "objects").rglob("*.warc.gz"))[-1]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    settings = load_settings()
    engine = open_engine(settings.database_url)
    stores = open_stores(settings.locations)
    asked: list[str] = []
    stores["offsite"] = _Asked(stores["offsite"], asked)
    try:  # one worker: two copies in flight, so the third file's is asked after the first's
        result = run_fixity(engine, stores, workers=1, repair=True)
        # Nor is it asked for the ledger's checkpoint at the end.
        assert ledger.checkpoint(engine, stores, result.out_of_reach)[1] == ["local"]
    finally:
        engine.dispose()
    assert result.out_of_reach.keys() == {"offsite"}
    # the first copy's, and the second's already in flight: never a listing, never a write
    assert len(asked) <= 2 and set(asked) <= {"head", "open"}, asked
    [listing] = [f for f in result.findings if f.location == "offsite" and not f.key]
    assert listing.found.startswith("not asked: out of reach earlier in this audit")
    offsite = [f for f in result.findings if f.location == "offsite" and f.key]
    assert [f.kind for f in offsite] == ["unreadable"] * 3
    assert "cannot reach the endpoint to read" in offsite[0].found
    assert offsite[-1].found.startswith("not asked: out of reach earlier in this audit")
    assert result.copies == 6
    # Nor is a copy written there to repair one, nor read there to repair the damaged one.
    assert all(f.repair_failed and f.repair_failed.startswith("not tried: out of reach")
               for f in offsite), [f.repair_failed for f in offsite]
    [local] = [f for f in result.findings if f.location == "local"]
    assert local.kind == "corrupted" and local.key.endswith(damaged.name)
    assert local.repair_failed == ("no good copy to repair from (offsite: not tried: "
                                   "out of reach)")


class _Asked:
    """A store that notes the name of each of its methods called."""

    def __init__(self, store: Any, asked: list[str]) -> None:
        self._store, self._asked = store, asked

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        def asking(*args: Any, **kwargs: Any) -> Any:
            self._asked.append(name)
            return found(*args, **kwargs)
        return asking


def test_a_folder_location_whose_folder_is_gone_is_unreachable(tmp_path: Path) -> None:
    from preserve.errors import Unreachable

    root = tmp_path / "objects"
    store = FilesystemStore("mirror", root)
    put(store, "a/b.warc.gz", b"bytes")  # a new location's folder is made by its first put
    root.rename(tmp_path / "elsewhere")
    for ask in (lambda: store.open("a/b.warc.gz"), lambda: store.delete("a/b.warc.gz")):
        with pytest.raises(Unreachable, match=f"location 'mirror': its folder {root} is not "
                                              "there"):
            ask()
    # A folder never written to holds nothing: a new location's first put asks so.
    assert list(store.list()) == [] and store.head("a/b.warc.gz") is None
    root.write_text("a file where the folder was")
    with pytest.raises(Unreachable, match="is not a folder"):
        store.open("a/b.warc.gz")


def test_a_deletion_removes_the_folders_it_empties_and_no_more(fs_store: FilesystemStore
                                                               ) -> None:
    put(fs_store, "imports/c/2026/11/a.warc.gz", DATA)
    put(fs_store, "imports/c/2026/10/b.warc.gz", DATA + b"b")
    fs_store.delete("imports/c/2026/11/a.warc.gz")
    assert not (fs_store.root / "imports" / "c" / "2026" / "11").exists()
    assert (fs_store.root / "imports" / "c" / "2026" / "10" / "b.warc.gz").is_file()
    fs_store.delete("imports/c/2026/10/b.warc.gz")
    assert not (fs_store.root / "imports").exists() and fs_store.root.is_dir()
    put(fs_store, "imports/c/2026/11/a.warc.gz", DATA)  # its folders made again
    assert fs_store.open("imports/c/2026/11/a.warc.gz").read() == DATA


def test_a_copy_is_linked_even_if_a_deletion_empties_its_folder_meanwhile(
        fs_store: FilesystemStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    real_link = os.link
    removed: list[Path] = []

    def link_after_a_deletion(source: Path, target: Path) -> None:
        if not removed:  # another command's deletion prunes the folder just made
            removed.append(Path(target).parent)
            Path(target).parent.rmdir()
        real_link(source, target)

    monkeypatch.setattr(os, "link", link_after_a_deletion)
    put(fs_store, "warcs/c/a.warc.gz", DATA)
    assert removed and fs_store.open("warcs/c/a.warc.gz").read() == DATA


def test_a_storage_check_leaves_a_folder_as_it_found_it(tmp_path: Path) -> None:
    # An empty folder may be the mount point of a disk that is not mounted: a check run
    # without the catalog (which would say the location holds copies) must not write
    # there, or the folder would look like a location in place from then on.
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    check = FilesystemStore("disk", mount_point).probe()
    assert check.usable and list(mount_point.iterdir()) == []
    new = tmp_path / "new" / "objects"
    assert FilesystemStore("new", new).probe().usable and not new.exists()
