"""Read a WARC file into index entries: one per capture, one per description.

This is how the catalog learns what a WARC holds, for captures and imports
alike, and how it can be rebuilt from storage: everything here comes from the
records themselves (their headers, offsets and lengths, and the JSON of our
``metadata`` records), nothing from the process that wrote them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any

import surt as surt_lib
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from preserve.capture.fetch import media_type
from preserve.errors import WarcError

CAPTURE_TYPES = ("response", "revisit", "resource")
DESCRIPTION_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class CaptureEntry:
    """Where one captured URL lives in a WARC file."""

    url: str
    surt: str
    capture_time: datetime
    record_type: str
    record_id: str
    status: int | None
    mime: str | None
    payload_digest: str | None
    offset: int
    length: int


@dataclass(frozen=True)
class DescriptionEntry:
    """A description (``metadata`` record) and the response record it describes."""

    describes: str
    record_id: str
    offset: int
    length: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class RecordEntry:
    """Any other record (warcinfo, request, metadata, conversion, continuation): where it
    lies, and the record it belongs with (``WARC-Concurrent-To`` or ``WARC-Refers-To``)."""

    record_type: str
    record_id: str
    url: str | None
    record_time: datetime | None
    refers_to: str | None
    offset: int
    length: int


@dataclass
class WarcIndex:
    """Everything the catalog needs from one WARC file: every record is in ``captures``
    or ``others`` (a description is in ``descriptions`` too); ``info`` holds the fields
    of its first warcinfo record."""

    records: int = 0
    captures: list[CaptureEntry] = field(default_factory=list)
    descriptions: list[DescriptionEntry] = field(default_factory=list)
    others: list[RecordEntry] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=65536)  # a crawl asks about the same links over and over
def surt_key(url: str) -> str:
    """The SURT key of a URL, as pywb and CDX indexes write it."""
    try:
        return str(surt_lib.surt(url))
    except (ValueError, TypeError, UnicodeError):
        return url


def parse_warc_date(value: str) -> datetime:
    """A WARC-Date (W3C-DTF, UTC) as an aware datetime; a date without a zone is UTC too."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Unindexable(WarcError):
    """A WARC (or ARC) file that cannot be read on: ``offset`` is where the record that
    failed starts, ``index`` what was read before it."""

    def __init__(self, message: str, offset: int, index: WarcIndex) -> None:
        super().__init__(message)
        self.offset = offset
        self.index = index


def index_warc(stream: IO[bytes], name: str, arc: bool = False) -> WarcIndex:
    """Index every record of a WARC stream (with ``arc``, an ARC file's, as WARC records).
    ``name`` is used in error messages."""
    index = WarcIndex()
    iterator = ArchiveIterator(stream, arc2warc=arc)
    try:
        for record in iterator:
            index.records += 1
            kind = record.rec_type
            headers = record.rec_headers
            if kind not in CAPTURE_TYPES:
                index.others.append(_other(record, kind, iterator, name, arc, index))
                continue
            url = headers.get_header("WARC-Target-URI")
            http = record.http_headers
            status = http.get_statuscode() if http is not None and kind != "resource" else None
            mime = media_type(http.get_header("Content-Type") if http is not None
                              and kind != "resource" else headers.get_header("Content-Type"))
            offset = iterator.get_record_offset()
            index.captures.append(CaptureEntry(
                url=url,
                surt=surt_key(url),
                capture_time=parse_warc_date(headers.get_header("WARC-Date")),
                record_type=kind,
                # An ARC record has no ID (warcio makes a new one at each reading): it is
                # known by its file and offset.
                record_id=(f"<urn:preserve:arc:{name}#{offset}>" if arc
                           else headers.get_header("WARC-Record-ID")),
                status=int(status) if status and str(status).isdigit() else None,
                mime=mime,
                payload_digest=headers.get_header("WARC-Payload-Digest"),
                offset=offset,
                length=iterator.get_record_length(),
            ))
    except (ArchiveLoadFailed, ValueError, EOFError, OSError) as exc:
        raise Unindexable(f"{name}: cannot read WARC record {index.records}: {exc}",
                          _failed_at(iterator), index) from exc
    return index


def _other(record: Any, kind: str, iterator: Any, name: str, arc: bool,
           index: WarcIndex) -> RecordEntry:
    """A record that is not a capture, read for the index (a description's JSON, the
    first warcinfo's fields) and entered in ``index.descriptions``/``info`` as it is.
    Its block is read before its offset is asked for: warcio reads a record to its end
    to tell where it lies."""
    headers = record.rec_headers
    refers_to = (headers.get_header("WARC-Concurrent-To")
                 or headers.get_header("WARC-Refers-To"))
    fields = _read_json(record, name) if kind == "metadata" and _is_description(record) \
        else None
    if kind == "warcinfo" and not index.info:
        index.info = _warcinfo_fields(record.content_stream().read(DESCRIPTION_LIMIT))
    offset, length = iterator.get_record_offset(), iterator.get_record_length()
    record_id = (f"<urn:preserve:arc:{name}#{offset}>" if arc
                 else headers.get_header("WARC-Record-ID"))
    if fields is not None:
        index.descriptions.append(DescriptionEntry(
            describes=refers_to, record_id=record_id, offset=offset, length=length,
            fields=fields))
    date = headers.get_header("WARC-Date")
    return RecordEntry(record_type=kind, record_id=record_id,
                       url=headers.get_header("WARC-Target-URI"),
                       record_time=parse_warc_date(date) if date else None,
                       refers_to=refers_to, offset=offset, length=length)


def _warcinfo_fields(block: bytes) -> dict[str, str]:
    """A warcinfo block's ``name: value`` lines (WARC 1.1, annex C)."""
    fields: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip() and name.strip() not in fields:
            fields[name.strip()] = value.strip()
    return fields


def _failed_at(iterator: Any) -> int:
    """Where the record being read when reading failed starts (as far as warcio knows)."""
    try:
        return int(iterator.offset)
    except (AttributeError, TypeError, ValueError):
        return 0


def _is_description(record: Any) -> bool:
    content_type = record.rec_headers.get_header("Content-Type") or ""
    return (content_type.startswith("application/json")
            and bool(record.rec_headers.get_header("WARC-Concurrent-To")
                     or record.rec_headers.get_header("WARC-Refers-To")))


def _read_json(record: Any, name: str) -> dict[str, Any] | None:
    data = record.content_stream().read(DESCRIPTION_LIMIT)
    try:
        fields = json.loads(data)
    except ValueError as exc:
        raise WarcError(f"{name}: metadata record {record.rec_headers.get_header('WARC-Record-ID')}"
                        f" is not valid JSON") from exc
    return fields if isinstance(fields, dict) and "extractor" in fields else None
