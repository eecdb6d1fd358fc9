"""WARC 1.1 writing: warcinfo, request, response and metadata records.

Records are written by warcio's ``WARCWriter`` (asked for WARC/1.1, one gzip
member per record). The HTTP messages are handed over as the raw bytes that
crossed the socket, with their SHA-1 base32 block and payload digests computed
here, because warcio would otherwise re-serialise the HTTP headers and the
archive would no longer hold what the server sent.

The file's SHA-256 is computed while it is written, so sealing costs no
second read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from preserve.capture.fetch import Exchange
from preserve.errors import WarcError
from preserve.fingerprint import http_digests, warc_digest_label

WARC_VERSION = "WARC/1.1"
HTTP_REQUEST_TYPE = "application/http; msgtype=request"
HTTP_RESPONSE_TYPE = "application/http; msgtype=response"
DESCRIPTION_URN = "urn:preserve:description:"
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"


@dataclass(frozen=True)
class Revisit:
    """The earlier capture whose payload a revisit record stands for."""

    target_uri: str
    date: str
    record_id: str | None = None


@dataclass(frozen=True)
class SealedWarc:
    """A closed WARC file on local disk, with the digest taken while writing it."""

    path: Path
    sha256: str
    size: int
    records: int


def warc_date(moment: datetime) -> str:
    """W3C-DTF in UTC with microseconds, as WARC 1.1 allows."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_record_id() -> str:
    """A fresh ``<urn:uuid:...>`` record identifier."""
    return f"<urn:uuid:{uuid.uuid4()}>"


class WarcFile:
    """A ``.warc.gz`` being written. Seal it to use it; discard it to drop it."""

    def __init__(self, path: Path, info: Mapping[str, str]) -> None:
        self.path = path
        self.records = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("xb")
        except OSError as exc:
            raise WarcError(f"{path}: cannot create the WARC file: {exc.strerror}") from exc
        self._hashing = _HashingWriter(self._file)
        self._writer = WARCWriter(self._hashing, gzip=True, warc_version=WARC_VERSION)
        self._write(self._writer.create_warcinfo_record(path.name, dict(info)))

    def write_exchange(self, exchange: Exchange, revisit: Revisit | None = None) -> str:
        """Write the request and response records of one exchange; return the response's ID.

        With ``revisit``, the response is written as a ``revisit`` record
        (identical-payload-digest profile) holding the HTTP headers only.
        """
        response_id = new_record_id()
        request_id = new_record_id()
        date = warc_date(exchange.date)
        common = {"WARC-Target-URI": exchange.url, "WARC-Date": date,
                  "WARC-IP-Address": exchange.ip}

        request = io.BytesIO(exchange.request)
        block, payload = http_digests(request, _header_end(exchange.request))
        self._write_raw("request", request, len(exchange.request), HTTP_REQUEST_TYPE, {
            "WARC-Record-ID": request_id, **common, "WARC-Concurrent-To": response_id,
            "WARC-Block-Digest": block, "WARC-Payload-Digest": payload,
        })

        block, payload = exchange.digests
        headers = {"WARC-Record-ID": response_id, **common, "WARC-Block-Digest": block,
                   "WARC-Payload-Digest": payload}
        if exchange.truncated:
            headers["WARC-Truncated"] = "length"
        if revisit is None:
            self._write_raw("response", exchange.response, exchange.response_size,
                            HTTP_RESPONSE_TYPE, headers)
            return response_id
        exchange.response.seek(0)
        head = exchange.response.read(exchange.header_size)
        exchange.response.seek(0)
        headers.update({
            "WARC-Block-Digest": warc_digest_label(hashlib.sha1(head)),
            "WARC-Profile": REVISIT_PROFILE,
            "WARC-Refers-To-Target-URI": revisit.target_uri,
            "WARC-Refers-To-Date": revisit.date,
        })
        if revisit.record_id:
            headers["WARC-Refers-To"] = revisit.record_id
        self._write_raw("revisit", io.BytesIO(head), len(head), HTTP_RESPONSE_TYPE, headers)
        return response_id

    def write_metadata(self, url: str, date: datetime, concurrent_to: str,
                       document: Mapping[str, Any],
                       relation: str = "WARC-Concurrent-To") -> str:
        """Write a JSON ``metadata`` record about the response ``concurrent_to``.

        Its target is ``urn:preserve:description:URL``, not the page's URL:
        replay tools index metadata records too, and pywb would otherwise answer
        a request for the page with its description. A description written
        later than the capture refers to it with ``relation="WARC-Refers-To"``.
        """
        record_id = new_record_id()
        data = json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
        record = self._writer.create_warc_record(
            DESCRIPTION_URN + url, "metadata", payload=io.BytesIO(data), length=len(data),
            warc_content_type="application/json",
            warc_headers_dict={"WARC-Record-ID": record_id, "WARC-Date": warc_date(date),
                               relation: concurrent_to},
        )
        self._write(record)
        return record_id

    @property
    def size(self) -> int:
        """Bytes written so far (compressed)."""
        return self._hashing.size

    def seal(self) -> SealedWarc:
        """Flush, fsync and close the file; return its path, SHA-256 and size."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise WarcError(f"{self.path}: cannot seal the WARC file: {exc.strerror}") from exc
        return SealedWarc(self.path, self._hashing.hexdigest(), self._hashing.size, self.records)

    def discard(self) -> None:
        """Close and delete an unfinished file."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def _write_raw(self, kind: str, stream: IO[bytes], length: int, content_type: str,
                   headers: Mapping[str, str]) -> None:
        stream.seek(0)
        warc_headers = StatusAndHeaders("", [("WARC-Type", kind), *headers.items()],
                                        protocol=WARC_VERSION)
        # http_headers=None: the block is written byte for byte from the stream,
        # and warcio keeps the digests it finds in the headers.
        record = ArcWarcRecord("warc", kind, warc_headers, stream, None, content_type, length)
        self._write(record)
        stream.seek(0)

    def _write(self, record: ArcWarcRecord) -> None:
        try:
            self._writer.write_record(record)
        except OSError as exc:
            raise WarcError(f"{self.path}: cannot write record: {exc.strerror or exc}") from exc
        self.records += 1


def _header_end(message: bytes) -> int:
    end = message.find(b"\r\n\r\n")
    return len(message) if end < 0 else end + 4


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._sha256.update(view)
        self._target.write(view)
        self.size += len(view)
        return len(view)

    def flush(self) -> None:
        if not self._target.closed:
            self._target.flush()

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()
