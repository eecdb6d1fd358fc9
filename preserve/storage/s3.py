"""S3 object storage through boto3: AWS, Ceph RGW, Garage, SeaweedFS, MinIO, any S3 endpoint.

Every put is a verified copy:

- The SHA-256 taken while the WARC was written goes with the upload as
  ``x-amz-checksum-sha256`` (per part on a multipart upload, where S3 only
  knows a composite SHA-256), so a server that checks it refuses damaged
  bytes on arrival; it is also kept as the object's ``sha256`` metadata.
- Not every server checks (moto stores a wrong checksum without a word), so
  the copy is then verified here: by the ETag the server answers with, which
  S3 servers compute as the MD5 of the bytes they received (of each part's
  MD5s for a multipart upload) and which we compute too; where the ETag is
  not such an MD5 or does not match, by reading the object back and hashing
  it. Only an object whose bytes have the expected digest counts as a copy;
  one that does not is deleted and the put fails.
- Nothing is overwritten: the upload carries ``If-None-Match: *`` where the
  server supports conditional writes, and a key found taken with other bytes
  is refused (:class:`ObjectExists`). A multipart upload that fails is aborted,
  so no partial object ever becomes visible.

boto3 1.36 and later compute a CRC32 of every upload by default and send it as
an aws-chunked trailer, which several non-AWS servers reject. The client here
is told ``request_checksum_calculation="when_required"`` and
``response_checksum_validation="when_required"``: we send the checksum we chose
(SHA-256, the archive's own digest) and verify reads ourselves.

Credentials come from boto3's standard chain (``AWS_*`` variables, profiles,
instance roles), never from our settings. botocore's errors become the
project's own here and nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from preserve.config import Location
from preserve.errors import (
    ConfigError,
    DigestMismatch,
    ObjectExists,
    ObjectMissing,
    StorageError,
    Unreachable,
)
from preserve.fingerprint import iter_chunks
from preserve.storage.base import PROBE_PREFIX, LocationCheck, ObjectInfo, key_parts

MULTIPART_THRESHOLD = 64 * 1024 * 1024  # larger objects go up in parts
PART_SIZE = 8 * 1024 * 1024  # S3 wants at least 5 MiB per part but the last
READ_BUFFER = 1024 * 1024
UPLOAD_THREADS = 8  # parts in flight at once: memory is PART_SIZE times this
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
T = TypeVar("T")


def sha256_checksum(hex_digest: str) -> str:
    """The base64 form S3 wants in ``x-amz-checksum-sha256``."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


class S3Store:
    """An :class:`~preserve.storage.base.ObjectStore` on a bucket (and key prefix)."""

    def __init__(self, location: Location, client: Any = None) -> None:
        self.name = location.name
        self.location = location
        self.bucket = location.bucket
        self.prefix = location.prefix
        self._client = client
        self._conditional_writes = True  # until the server says it has none
        self._can_retain: bool | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _make_client(self.location)
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        """A store sent to a worker process goes without its client (boto3's cannot be
        pickled); the worker makes its own when it first needs one."""
        return {**self.__dict__, "_client": None}

    # -- writing -----------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, sha256: str,
            retain_until: datetime | None = None) -> ObjectInfo:
        """Upload the stream under key and verify it; never overwrite other bytes.

        With ``retain_until`` and a bucket with Object Lock, the object is
        written with that retention date in the location's ``retention_mode``.
        """
        name = self._name(key)
        if self.head(key) is not None:
            return self._same_or_refuse(key, sha256)
        size = _remaining(stream)
        lock: dict[str, Any] = {}
        if retain_until is not None and self.can_retain():
            lock = {"ObjectLockMode": self.location.retention_mode,
                    "ObjectLockRetainUntilDate": retain_until}
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}, **lock}
        try:
            if size is not None and size <= MULTIPART_THRESHOLD:
                sent = self._put_whole(key, name, stream, size, sha256, extra)
            else:
                sent = self._put_parts(key, name, stream, sha256, extra)
        except _Taken:
            return self._same_or_refuse(key, sha256)
        retained = retain_until if lock else None
        if sent.etag_matches():  # the server hashed exactly the bytes we hold
            return ObjectInfo(key, sent.size, retained)
        found, stored = self._digest(key)
        if found != sha256:
            with suppress(StorageError):  # the mismatch is the error to report
                self._call("delete", key, lambda: self.client.delete_object(
                    Bucket=self.bucket, Key=name))
            raise DigestMismatch(self.name, key, sha256, found)
        return ObjectInfo(key, stored, retained)

    def _put_whole(self, key: str, name: str, stream: BinaryIO, size: int, sha256: str,
                   extra: dict[str, Any]) -> _Sent:
        body = stream.read(size)
        digest = hashlib.sha256(body).hexdigest()
        if digest != sha256:  # the bytes in hand are not the ones to store: nothing is sent
            raise DigestMismatch(self.name, key, sha256, digest)
        arguments = {"Bucket": self.bucket, "Key": name, "Body": body, "ContentLength": size,
                     "ChecksumAlgorithm": "SHA256", "ChecksumSHA256": sha256_checksum(sha256),
                     **extra}
        answer = self._conditional("put", key, lambda condition: self.client.put_object(
            **arguments, **condition))
        return _Sent(len(body), _md5(body).hexdigest(), answer.get("ETag"))

    def _put_parts(self, key: str, name: str, stream: BinaryIO, sha256: str,
                   extra: dict[str, Any]) -> _Sent:
        upload = self._call("start upload of", key, lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=name, ChecksumAlgorithm="SHA256", **extra))
        upload_id = upload["UploadId"]
        try:
            whole = hashlib.sha256()
            parts, md5s, size = self._upload_parts(key, name, upload_id, stream, whole)
            if whole.hexdigest() != sha256:  # not the bytes to store: the upload is dropped
                raise DigestMismatch(self.name, key, sha256, whole.hexdigest())
            answer = self._conditional("complete upload of", key,
                                       lambda condition: self.client.complete_multipart_upload(
                                           Bucket=self.bucket, Key=name, UploadId=upload_id,
                                           MultipartUpload={"Parts": parts}, **condition))
        except BaseException:  # interrupted too: a failed upload leaves no object
            with suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                   UploadId=upload_id)
            raise
        # S3's multipart ETag: the MD5 of the parts' MD5s, and how many parts there were.
        composite = f"{_md5(b''.join(md5s)).hexdigest()}-{len(md5s)}"
        return _Sent(size, composite, answer.get("ETag"))

    def _upload_parts(self, key: str, name: str, upload_id: str, stream: BinaryIO,
                      whole: Any) -> tuple[list[dict[str, Any]], list[bytes], int]:
        """Send the stream in parts, side by side; the parts, their MD5s, and the size.

        ``whole`` (a hash) sees every byte in order, for the object's SHA-256.
        """
        def send(number: int, data: bytes) -> tuple[dict[str, Any], bytes]:
            checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
            answer = self._call(f"upload part {number} of", key, lambda: self.client.upload_part(
                Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number,
                Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum))
            return ({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum},
                    _md5(data).digest())

        sent: list[tuple[dict[str, Any], bytes]] = []
        size = 0
        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            pending = []
            number = 0
            while True:
                data = stream.read(PART_SIZE)
                if not data and number:
                    break
                number += 1
                whole.update(data)
                size += len(data)
                pending.append(pool.submit(send, number, data))
                if not data:  # an empty object is one empty part
                    break
                if len(pending) >= UPLOAD_THREADS:  # memory: only the parts in flight
                    sent.append(pending.pop(0).result())
            sent.extend(future.result() for future in pending)
        return [part for part, _ in sent], [md5 for _, md5 in sent], size

    def _conditional(self, action: str, key: str, request: Callable[[dict[str, str]], Any]
                     ) -> dict[str, Any]:
        """Send a write with ``If-None-Match: *``, or without where the server has none."""
        if self._conditional_writes:
            try:
                answer: dict[str, Any] = self._call(
                    action, key, lambda: request({"IfNoneMatch": "*"}), conditional=True)
                return answer
            except _Unconditional:
                self._conditional_writes = False
            # Without conditional writes, the HEAD before the upload is the check.
        answer = self._call(action, key, lambda: request({}))
        return answer

    def _same_or_refuse(self, key: str, sha256: str) -> ObjectInfo:
        found, size = self._digest(key)
        if found != sha256:
            raise ObjectExists(self.name, key)
        return ObjectInfo(key, size)

    # -- reading -----------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """The whole object as a stream (read as it is consumed)."""
        name = self._name(key)
        answer = self._call("read", key, lambda: self.client.get_object(
            Bucket=self.bucket, Key=name))
        return io.BufferedReader(_Body(answer["Body"], self, key), READ_BUFFER)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` by one ranged GET; fewer at the object's end."""
        name = self._name(key)
        if length <= 0:
            self._exists_or_missing(key)
            return b""
        try:
            answer = self._call("read", key, lambda: self.client.get_object(
                Bucket=self.bucket, Key=name, Range=f"bytes={offset}-{offset + length - 1}"))
        except _OutOfRange:
            self._exists_or_missing(key)
            return b""
        with io.BufferedReader(_Body(answer["Body"], self, key), READ_BUFFER) as body:
            data = body.read()
        return data[:length]

    def head(self, key: str) -> ObjectInfo | None:
        """Size of the object under key, or None when there is none."""
        name = self._name(key)
        try:
            answer = self._call("look at", key, lambda: self.client.head_object(
                Bucket=self.bucket, Key=name))
        except ObjectMissing:
            return None
        return ObjectInfo(key, int(answer["ContentLength"]))

    def metadata_sha256(self, key: str) -> str | None:
        """The SHA-256 the object's metadata says it has (written at upload), if any."""
        name = self._name(key)
        answer = self._call("look at", key, lambda: self.client.head_object(
            Bucket=self.bucket, Key=name))
        value = answer.get("Metadata", {}).get("sha256")
        return str(value) if value else None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with prefix, in key order (S3 lists in that order)."""
        pages = self._call("list", prefix or "/", lambda: self.client.get_paginator(
            "list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix))
        with self._translated("list", prefix or "/"):
            for page in pages:
                for item in page.get("Contents", ()):
                    yield ObjectInfo(item["Key"][len(self.prefix):], int(item["Size"]))

    def retained_until(self, key: str) -> datetime | None:
        """The latest Object Lock date of the key's versions (a deleted object's included)."""
        if not self.can_retain():
            return None
        name = self._name(key)
        listed = self._call("list the versions of", key, lambda: self.client.list_object_versions(
            Bucket=self.bucket, Prefix=name))
        dates = [self._retention_of(key, version["VersionId"])
                 for version in listed.get("Versions", ()) if version.get("Key") == name]
        return max((date for date in dates if date is not None), default=None)

    def _retention_of(self, key: str, version: str) -> datetime | None:
        answer = self._call("look at", key, lambda: self.client.head_object(
            Bucket=self.bucket, Key=self._name(key), VersionId=version))
        date = answer.get("ObjectLockRetainUntilDate")
        return date if isinstance(date, datetime) else None

    def delete(self, key: str) -> None:
        """Remove the object under key (S3 would not say that there was none: we look first)."""
        name = self._name(key)
        self._exists_or_missing(key)
        self._call("delete", key, lambda: self.client.delete_object(
            Bucket=self.bucket, Key=name))

    # -- probing -----------------------------------------------------------------------------

    def probe(self) -> LocationCheck:
        """Try the bucket: reach it, write to it, and find out what it verifies and keeps.

        The probe object lives under the reserved ``.incoming/`` prefix, which no
        object key may use, and is removed again. On a bucket with Object Lock a
        probe object could not be removed, so there only a multipart upload is
        started and aborted (which proves write access and leaves nothing).
        """
        check = LocationCheck(self.name, "s3", self.location.describe())
        try:
            self._call("reach bucket", "/", lambda: self.client.head_bucket(Bucket=self.bucket))
            check.reachable = True
            check.versioning = self._versioning()
            check.object_lock = self._object_lock()
            if check.can_retain:
                self._probe_upload()
                check.writable = True
                check.server_checksums = "not probed"
                by_server = "not probed (Object Lock would keep the probe)"
                check.conditional_writes = "not probed"
            else:
                verified, check.conditional_writes = self._probe_writes()
                check.writable = True
                check.server_checksums = "yes" if verified else "no"
                by_server = ("x-amz-checksum-sha256 verified by the server" if verified else
                             "not verified by the server (it stored a wrong checksum)")
            check.checksums = (f"{by_server}; every copy verified here (the server's MD5 "
                               "ETag, else a read-back)")
        except (StorageError, ConfigError) as exc:
            check.problems.append(str(exc))
        return check

    def can_retain(self) -> bool:
        """Does the bucket have Object Lock, so objects can carry retention dates? (Asked once.)"""
        if self._can_retain is None:
            self._can_retain = self._object_lock().startswith("enabled")
        return self._can_retain

    def _versioning(self) -> str:
        answer = self._call("read versioning of", "/", lambda: self.client.get_bucket_versioning(
            Bucket=self.bucket))
        return str(answer.get("Status") or "off").lower()

    def _object_lock(self) -> str:
        try:
            answer = self._call("read Object Lock of", "/",
                                lambda: self.client.get_object_lock_configuration(
                                    Bucket=self.bucket))
        except StorageError:  # no configuration (or no support): no retention here
            return "off"
        config = answer.get("ObjectLockConfiguration", {})
        if config.get("ObjectLockEnabled") != "Enabled":
            return "off"
        default = config.get("Rule", {}).get("DefaultRetention", {})
        return f"enabled (default {default['Mode']})" if default.get("Mode") else "enabled"

    def _probe_upload(self) -> None:
        name = self.prefix + f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        upload = self._call("write to", name, lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=name))
        self._call("write to", name, lambda: self.client.abort_multipart_upload(
            Bucket=self.bucket, Key=name, UploadId=upload["UploadId"]))

    def _probe_writes(self) -> tuple[bool, str]:
        """Does the server refuse a wrong checksum, and honour If-None-Match?"""
        from botocore.exceptions import ClientError

        name = self.prefix + f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        body = b"preserve storage check\n"
        right = sha256_checksum(hashlib.sha256(body).hexdigest())
        wrong = sha256_checksum(hashlib.sha256(b"other bytes").hexdigest())

        def refused(**arguments: Any) -> int | None:
            """The HTTP status of a refused put; None when the put was accepted."""
            try:
                self.client.put_object(Bucket=self.bucket, Key=name, Body=body, **arguments)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status not in (400, 409, 412, 501):
                    raise
                return int(status)
            return None

        with self._translated("write to", name):
            try:
                verified = refused(ChecksumSHA256=wrong) is not None
                self.client.put_object(Bucket=self.bucket, Key=name, Body=body,
                                       ChecksumSHA256=right)
                conditional = ("If-None-Match honoured"
                               if refused(ChecksumSHA256=right, IfNoneMatch="*") in (409, 412)
                               else "not honoured: a look before every write instead")
            finally:
                with suppress(Exception):
                    self.client.delete_object(Bucket=self.bucket, Key=name)
        return verified, conditional

    # -- helpers -----------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        key_parts(self.name, key)
        return self.prefix + key

    def _exists_or_missing(self, key: str) -> None:
        if self.head(key) is None:
            raise ObjectMissing(self.name, key)

    def _digest(self, key: str) -> tuple[str, int]:
        """SHA-256 and size of the stored bytes, read back in full."""
        digest = hashlib.sha256()
        size = 0
        with self.open(key) as body:
            for chunk in iter_chunks(body):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def _call(self, action: str, key: str, request: Callable[[], T],
              conditional: bool = False) -> T:
        with self._translated(action, key, conditional):
            return request()
        raise AssertionError("unreachable")  # pragma: no cover (the context re-raises)

    @contextmanager
    def _translated(self, action: str, key: str, conditional: bool = False) -> Iterator[None]:
        """botocore's exceptions, as the project's own errors, each naming location and key."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )

        where = f"location {self.name!r} ({self.location.describe()})"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in MISSING_CODES:
                raise ObjectMissing(self.name, key) from exc
            if conditional and (code in ("PreconditionFailed", "ConditionalRequestConflict")
                                or status in (409, 412)):
                raise _Taken from exc
            if conditional and (code == "NotImplemented" or status == 501):
                raise _Unconditional from exc
            if code == "InvalidRange" or status == 416:
                raise _OutOfRange from exc
            if code == "NoSuchBucket":
                raise StorageError(f"{where}: bucket {self.bucket!r} does not exist") from exc
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StorageError(f"{where}: cannot {action} {key!r}: access denied ({code}); "
                                   "check the AWS credentials") from exc
            message = error.get("Message") or code or str(exc)
            raise StorageError(f"{where}: cannot {action} {key!r}: {message}") from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ConfigError(f"{where}: no AWS credentials (set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)") from exc
        except NoRegionError as exc:
            raise ConfigError(f"{where}: no region (set region in the location, "
                              "or AWS_DEFAULT_REGION)") from exc
        except EndpointConnectionError as exc:  # connection refused or timed out, DNS
            raise Unreachable(f"{where}: cannot reach the endpoint to {action} {key!r}"
                              ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"{where}: cannot {action} {key!r}: {exc}") from exc


@dataclass(frozen=True)
class _Sent:
    """What an upload sent, and the ETag the server answered with."""

    size: int
    md5: str  # the ETag S3 computes from the bytes it received (composite for parts)
    etag: str | None

    def etag_matches(self) -> bool:
        """Did the server hash exactly the bytes we sent?

        AWS S3, Ceph, MinIO, Garage, SeaweedFS and moto make an object's ETag the
        MD5 of the bytes they received (of each part's MD5s for a multipart
        upload). Where it is something else (SSE-KMS, some gateways), this is
        False and the caller reads the object back instead.
        """
        return self.etag is not None and self.etag.strip('"').lower() == self.md5


def _md5(data: bytes) -> Any:
    return hashlib.md5(data, usedforsecurity=False)  # S3's ETag, not a security digest


class _Taken(Exception):
    """A conditional write found the key taken."""


class _Unconditional(Exception):
    """The server does not do conditional writes."""


class _OutOfRange(Exception):
    """A ranged read started past the object's end."""


class _Body(io.RawIOBase):
    """An object's body as a binary stream; read errors become :class:`StorageError`."""

    def __init__(self, body: Any, store: S3Store, key: str) -> None:
        self._body = body
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._store._translated("read", self._key):
            data = self._body.read(len(buffer))
        count = len(data)
        memoryview(buffer)[:count] = data
        return count

    def close(self) -> None:
        with suppress(Exception):
            self._body.close()
        super().close()


def _remaining(stream: BinaryIO) -> int | None:
    """Bytes left in a seekable stream; None when it cannot say."""
    try:
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (OSError, ValueError, AttributeError):
        return None
    return end - here


def _make_client(location: Location) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        # Our own SHA-256, not boto3's default CRC32 trailer (see the module's docstring).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # The body's integrity is our x-amz-checksum-sha256 and our verification, so
        # SigV4 need not hash every body once more (it would over plain http).
        s3={"addressing_style": location.addressing_style, "payload_signing_enabled": False},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10, read_timeout=60,
    )
    region = location.region or (None if location.endpoint_url is None else "us-east-1")
    return boto3.session.Session().client("s3", endpoint_url=location.endpoint_url,
                                          region_name=region, config=config)

