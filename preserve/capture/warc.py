"""WARC 1.1 writing: warcinfo, request, response, revisit and metadata records.

Each record is its own gzip member, as the standard's annex recommends and as
replay tools expect. Records are serialised here rather than by warcio's
writer: the HTTP messages go in as the raw bytes that crossed the socket (warcio
would re-serialise the HTTP headers), and warcio's writer, which compresses
every record at level 9 and flushes the file after each, cost a third of a
crawl's CPU. Records are compressed with ISA-L (see ``COMPRESSION_LEVEL``), and
a record whose block does not compress (an image, a video, a gzipped body) is
stored in deflate's stored blocks instead (see ``_compressor``): the members
are ordinary gzip either way, which every reader takes. warcio still reads every
file we write (indexing, retrieval, fixity, and ``warcio check`` in the tests).

While it writes, the file keeps its SHA-256 (sealing costs no second read) and
the index the catalog needs (offsets and lengths included), so ingest does not
read the file again. That index is the one :func:`preserve.index.index_warc`
reads from the sealed file: a test holds the two equal, so the catalog can
still be rebuilt from storage alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from isal import isal_zlib

from preserve.capture.fetch import Exchange, media_type
from preserve.errors import WarcError
from preserve.fingerprint import http_digests, warc_digest_label
from preserve.index import (
    CAPTURE_TYPES,
    CaptureEntry,
    DescriptionEntry,
    RecordEntry,
    WarcIndex,
    parse_warc_date,
    surt_key,
)
from preserve.workdir import hold

WARC_VERSION = "WARC/1.1"
HTTP_REQUEST_TYPE = "application/http; msgtype=request"
HTTP_RESPONSE_TYPE = "application/http; msgtype=response"
DESCRIPTION_URN = "urn:preserve:description:"
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
# ISA-L's highest level. Measured on the extraction benchmark's 109 news pages
# (163 KB each): 0.63 ms a page for 22.4% of the size, where zlib's default
# level took 3.1 ms for 20.1%. Setting up a zlib compressor also costs 58 µs
# (it clears its tables), twice per page, which ISA-L's does not.
COMPRESSION_LEVEL = 3
GZIP_WBITS = isal_zlib.MAX_WBITS | 16
# A block that deflate cannot shrink by a tenth is stored, not compressed. ISA-L does
# not fall back to stored blocks as zlib does: it Huffman-codes noise, at 0.15 GB/s,
# into a member that inflates at 0.35 GB/s, where stored blocks (zlib's level 0)
# are written at 0.44 GB/s and inflate at 5 GB/s (64 MiB of random bytes). Every
# later read of the record (deep fixity, import, replay) pays for it. Whether a
# block compresses is tried on a sample from its first chunk, after the HTTP
# headers a response starts with; blocks under twice the sample are not tried.
STORE_SAMPLE = 8 * 1024
STORE_RATIO = 0.9
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Revisit:
    """The earlier capture whose payload a revisit record stands for."""

    target_uri: str
    date: str
    record_id: str | None = None


@dataclass(frozen=True)
class SealedWarc:
    """A closed WARC file on local disk, with the digest taken while writing it.

    ``index`` is what the writer recorded; None for a file someone else wrote,
    which ingest then reads to index.
    """

    path: Path
    sha256: str
    size: int
    records: int
    index: WarcIndex | None = None


def warc_date(moment: datetime) -> str:
    """W3C-DTF in UTC with microseconds, as WARC 1.1 allows."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _RandomIds:
    """Version 4 UUIDs from the system's random source, drawn 256 at a time.

    Each draw is a system call, and on a crawl's writing thread a system call
    lets the fetching threads take the interpreter lock for a while: drawn one
    by one, record IDs cost the writer a twentieth of its time.
    """

    BATCH = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: list[bytes] = []
        # A forked child must not hand out the IDs its parent already holds.
        os.register_at_fork(after_in_child=self._pool.clear)

    def __call__(self) -> uuid.UUID:
        with self._lock:
            if not self._pool:
                drawn = os.urandom(16 * self.BATCH)
                self._pool.extend(drawn[at:at + 16] for at in range(0, len(drawn), 16))
            return uuid.UUID(bytes=self._pool.pop(), version=4)


_random_id = _RandomIds()


def new_record_id() -> str:
    """A fresh ``<urn:uuid:...>`` record identifier."""
    return f"<urn:uuid:{_random_id()}>"


class WarcFile:
    """A ``.warc.gz`` being written. Seal it to use it; discard it to drop it."""

    def __init__(self, path: Path, info: Mapping[str, str]) -> None:
        self.path = path
        self.index = WarcIndex()
        self.size = 0  # bytes written so far (compressed)
        self._sha256 = hashlib.sha256()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("xb")
            hold(self._file.fileno())  # left behind if this process dies: preserve.workdir
        except OSError as exc:
            raise WarcError(f"{path}: cannot create the WARC file: {exc.strerror}") from exc
        fields = "".join(f"{name}: {value}\r\n" for name, value in info.items()).encode()
        self.index.info = {name: str(value) for name, value in info.items()}
        self._record("warcinfo", [("WARC-Record-ID", new_record_id()),
                                  ("WARC-Date", warc_date(datetime.now(UTC))),
                                  ("WARC-Filename", path.name),
                                  ("WARC-Block-Digest", warc_digest_label(hashlib.sha1(fields)))],
                     "application/warc-fields", io.BytesIO(fields), len(fields))

    @property
    def records(self) -> int:
        return self.index.records

    def write_exchange(self, exchange: Exchange, revisit: Revisit | None = None) -> str:
        """Write the request and response records of one exchange; return the response's ID.

        With ``revisit``, the response is written as a ``revisit`` record
        (identical-payload-digest profile) holding the HTTP headers only.
        """
        response_id = new_record_id()
        date = warc_date(exchange.date)
        common = [("WARC-Target-URI", exchange.url), ("WARC-Date", date),
                  ("WARC-IP-Address", exchange.ip)]

        request = io.BytesIO(exchange.request)
        block, payload = http_digests(request, _header_end(exchange.request))
        self._record("request", [("WARC-Record-ID", new_record_id()), *common,
                                 ("WARC-Concurrent-To", response_id),
                                 ("WARC-Block-Digest", block), ("WARC-Payload-Digest", payload)],
                     HTTP_REQUEST_TYPE, request, len(exchange.request))

        block, payload = exchange.digests
        headers = [("WARC-Record-ID", response_id), *common]
        if revisit is None:
            headers += [("WARC-Block-Digest", block), ("WARC-Payload-Digest", payload)]
            if exchange.truncated:
                headers.append(("WARC-Truncated", exchange.truncated))
            kind, stream, length = "response", exchange.response, exchange.response_size
        else:
            exchange.response.seek(0)
            head = exchange.response.read(exchange.header_size)
            headers += [("WARC-Block-Digest", warc_digest_label(hashlib.sha1(head))),
                        ("WARC-Payload-Digest", payload)]
            if exchange.truncated:
                headers.append(("WARC-Truncated", exchange.truncated))
            headers += [("WARC-Profile", REVISIT_PROFILE),
                        ("WARC-Refers-To-Target-URI", revisit.target_uri),
                        ("WARC-Refers-To-Date", revisit.date)]
            if revisit.record_id:
                headers.append(("WARC-Refers-To", revisit.record_id))
            kind, stream, length = "revisit", io.BytesIO(head), len(head)
        offset, size = self._record(kind, headers, HTTP_RESPONSE_TYPE, stream, length)
        exchange.response.seek(0)
        self.index.captures.append(CaptureEntry(
            url=exchange.url, surt=surt_key(exchange.url), capture_time=exchange.date,
            record_type=kind, record_id=response_id, status=exchange.status,
            mime=media_type(exchange.header("Content-Type")), payload_digest=payload,
            offset=offset, length=size))
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
        offset, size = self._record(
            "metadata", [("WARC-Record-ID", record_id), ("WARC-Target-URI", DESCRIPTION_URN + url),
                         ("WARC-Date", warc_date(date)), (relation, concurrent_to),
                         ("WARC-Block-Digest", warc_digest_label(hashlib.sha1(data)))],
            "application/json", io.BytesIO(data), len(data))
        if "extractor" in document:  # what makes a metadata record a description to the index
            self.index.descriptions.append(DescriptionEntry(
                describes=concurrent_to, record_id=record_id, offset=offset, length=size,
                fields=json.loads(data)))
        return record_id

    def flush(self) -> None:
        """Hand what is written to the system: a process that dies keeps it in the file."""
        try:
            self._file.flush()
        except OSError as exc:
            raise WarcError(f"{self.path}: cannot write the WARC file: {exc.strerror}") from exc

    def seal(self) -> SealedWarc:
        """Flush, fsync and close the file; return its path, SHA-256, size and index."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise WarcError(f"{self.path}: cannot seal the WARC file: {exc.strerror}") from exc
        return SealedWarc(self.path, self._sha256.hexdigest(), self.size, self.records,
                          self.index)

    def discard(self) -> None:
        """Close and delete an unfinished file (a sealed one is no longer this object's)."""
        if self._file.closed:
            return
        self._file.close()
        self.path.unlink(missing_ok=True)

    def _record(self, kind: str, headers: list[tuple[str, str]], content_type: str,
                block: IO[bytes], length: int) -> tuple[int, int]:
        """Write one record as one gzip member; return its offset and compressed length.

        The block is read from the start of ``block`` and must give ``length``
        bytes: a record never declares a length it does not hold.
        """
        head = "".join(f"{name}: {value}\r\n" for name, value in headers)
        offset = self.size
        try:
            block.seek(0)
            chunks = _exactly(block, length, kind, self.path)
            first = next(chunks, b"")
            compressor = _compressor(first)
            self._emit(compressor.compress(
                f"{WARC_VERSION}\r\nWARC-Type: {kind}\r\n{head}Content-Type: {content_type}\r\n"
                f"Content-Length: {length}\r\n\r\n".encode()))
            self._emit(compressor.compress(first))
            for chunk in chunks:
                self._emit(compressor.compress(chunk))
            self._emit(compressor.compress(b"\r\n\r\n") + compressor.flush())
        except OSError as exc:
            raise WarcError(f"{self.path}: cannot write record: {exc.strerror or exc}") from exc
        self.index.records += 1
        if kind not in CAPTURE_TYPES:
            named = dict(headers)
            date = named.get("WARC-Date")
            self.index.others.append(RecordEntry(
                record_type=kind, record_id=named["WARC-Record-ID"],
                url=named.get("WARC-Target-URI"),
                record_time=parse_warc_date(date) if date else None,
                refers_to=named.get("WARC-Concurrent-To") or named.get("WARC-Refers-To"),
                offset=offset, length=self.size - offset))
        return offset, self.size - offset

    def _emit(self, data: bytes) -> None:
        if data:
            self._file.write(data)
            self._sha256.update(data)
            self.size += len(data)


def _compressor(first: bytes) -> Any:
    """A gzip compressor for a record whose block starts with ``first``: ISA-L's, or
    stored blocks when a sample from the end of ``first`` does not compress."""
    if len(first) >= 2 * STORE_SAMPLE:
        sample = first[-STORE_SAMPLE:]
        if len(isal_zlib.compress(sample, 1)) > STORE_RATIO * len(sample):
            return zlib.compressobj(0, zlib.DEFLATED, GZIP_WBITS)
    return isal_zlib.compressobj(COMPRESSION_LEVEL, isal_zlib.DEFLATED, GZIP_WBITS)


def _exactly(stream: IO[bytes], length: int, kind: str, path: Path) -> Iterator[bytes]:
    left = length
    while left > 0:
        chunk = stream.read(min(CHUNK_SIZE, left))
        if not chunk:
            raise WarcError(f"{path}: {kind} record block ended {left} bytes short of its "
                            f"Content-Length {length}")
        left -= len(chunk)
        yield chunk


def _header_end(message: bytes) -> int:
    end = message.find(b"\r\n\r\n")
    return len(message) if end < 0 else end + 4
