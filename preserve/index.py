"""Read a WARC file into index entries: one per capture, one per description.

This is how the catalog learns what a WARC holds, for captures and imports
alike, and how it can be rebuilt from storage: everything here comes from the
records themselves (their headers, offsets and lengths, and the JSON of our
``metadata`` records), nothing from the process that wrote them.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecordLoader

from preserve.capture.fetch import media_type
from preserve.errors import WarcError
from preserve.fingerprint import iter_chunks
from preserve.numbers import is_digits
from preserve.warc_digests import KeptRecord, RecordProblem, verify_records

CAPTURE_TYPES = ("response", "revisit", "resource")
DESCRIPTION_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class DescriptionEntry:
    """A description (``metadata`` record) and the response record it describes."""

    describes: str
    record_id: str
    offset: int
    length: int
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
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

    def extend(self, part: WarcIndex) -> None:
        """Add the entries of a later part of the same file (its first warcinfo's fields
        where this part has none)."""
        self.records += part.records
        self.captures += part.captures
        self.descriptions += part.descriptions
        self.others += part.others
        self.info = self.info or part.info


@lru_cache(maxsize=65536)  # a crawl asks about the same links over and over
def surt_key(url: str) -> str:
    """The SURT key of a URL, as pywb and CDX indexes write it."""
    plain = _plain_surt(url)
    if plain is not None:
        return plain
    # Imported here: the package (with tldextract and requests, which it imports) takes
    # 90 ms to load, which a process that meets only plain URLs need not spend.
    import surt as surt_lib

    try:
        return str(surt_lib.surt(url))
    except (ValueError, TypeError, UnicodeError):
        return url


# A URL of the plainest kind, whose SURT key is told here without the surt package
# (27 µs a URL; a crawl or an import asks for one per record): http or https, a host of
# letters, digits and hyphens (or a dotted-quad IPv4 address), a port without leading
# zeros, a path of unreserved characters with no empty, "." or ".." segment, and no
# user, query or fragment. What the package does to such a URL comes down to: host and
# path lower-cased, a leading "www", "www2"... label dropped, the default port dropped,
# a trailing slash dropped (but not the root's), the host's labels reversed and joined
# by commas. A test holds the two equal on every URL of the test data and on thousands
# made to be awkward; anything else goes to the package.
_PLAIN_URL = re.compile(
    r"(https?)://((?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*|"
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))"
    r"(?::([1-9][0-9]{0,4}))?((?:/[A-Za-z0-9_.~-]+)*/?)")
_WWW = re.compile(r"www[0-9]*\.")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _plain_surt(url: str) -> str | None:
    match = _PLAIN_URL.fullmatch(url)
    if match is None:
        return None
    scheme, host, port, path = match.groups()
    if "/." in path or int(port or 0) > 65535:
        return None
    host = host.lower()
    if (www := _WWW.match(host)) is not None:
        host = host[www.end():]
    path = path.lower()
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    port = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return ",".join(reversed(host.split("."))) + port + ")" + (path or "/")


@lru_cache(maxsize=4096)  # records written in the same second share one, and its object
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
            kind = record.rec_type
            # A description's or warcinfo's block is read before the offset is asked
            # for: warcio reads a record to its end to tell where it lies.
            block = (record.content_stream().read(DESCRIPTION_LIMIT)
                     if _block_wanted(kind, record.rec_headers, index) else b"")
            _enter(index, kind, record.rec_headers, record.http_headers, block,
                   iterator.get_record_offset(), iterator.get_record_length(), name, arc)
    except (ArchiveLoadFailed, ValueError, EOFError, OSError) as exc:
        raise Unindexable(f"{name}: cannot read WARC record {index.records}: {exc}",
                          _failed_at(iterator), index) from exc
    return index


class KeptIndexer:
    """The index of a WARC file built from what ``verify_records`` keeps of each record
    as it reads it (give it as ``keep``), the same that :func:`index_warc` gives,
    without reading the file again. A record is entered when the next one starts (its
    length is the distance), so only one is held at a time.

    :meth:`finish` gives None where the index cannot be told from what was kept
    (several records in one gzip member, HTTP headers longer than was kept, headers
    warcio would read otherwise): then the file is to be read with :func:`index_warc`.
    """

    def __init__(self, name: str, base: int = 0) -> None:
        self.name = name
        self.base = base  # where the bytes read start in the file
        self.index: WarcIndex | None = WarcIndex()
        self._pending: KeptRecord | None = None
        self._starts = 0  # the records' distinct starts (gzip members, in a gzipped file)
        self._last_start = -1

    def members(self, count: int) -> None:
        """A gzip member that holds no record (an empty one, BGZF's end block) would be
        counted in the length of the record before it: warcio's reading decides."""
        if count and count != self._starts:
            self.index = None

    def __call__(self, record: KeptRecord) -> None:
        if record.offset != self._last_start:
            self._starts += 1
            self._last_start = record.offset
        if self.base:
            record = replace(record, offset=record.offset + self.base)
        if self._pending is not None:
            self._enter(self._pending, record.offset, followed=True)
        self._pending = record

    def finish(self, end: int) -> WarcIndex | None:
        """The index, ``end`` being the file's size (where its last record ends)."""
        if self._pending is not None:
            self._enter(self._pending, end, followed=False)
            self._pending = None
        return self.index

    def _enter(self, record: KeptRecord, next_offset: int, followed: bool) -> None:
        if self.index is None:
            return
        if followed and record.size is not None and (
                next_offset - record.offset - record.size < 4):
            self.index = None  # not followed by its blank lines: warcio tells what follows
            return
        # In a gzipped file a record's length is its member's (to the next one); in a
        # plain file, its headers and block, without the blank lines after them.
        length = record.size if record.size is not None else next_offset - record.offset
        try:
            entered = self._entered(self.index, record, length)
        except Exception:  # whatever it is, warcio's own reading decides
            entered = False
        if not entered:
            self.index = None

    def _entered(self, index: WarcIndex, record: KeptRecord, length: int) -> bool:
        if length <= 0 or record.folded:
            return False  # a record that shares its gzip member; headers warcio unfolds
        headers = _Fields(record.headers)
        kind = headers.get_header("WARC-Type")
        if kind is None:
            return False
        uri = _target_uri(headers)
        http = None
        if (kind in ("response", "revisit") and headers.get_header("Content-Length") != "0"
                and uri.startswith(ArcWarcRecordLoader.HTTP_SCHEMES)):
            http = _http_head(record.block, record.whole)
            if http is None and not (kind == "revisit" and not record.block.strip()):
                return False
        if _block_wanted(kind, headers, index) and not record.whole:
            return False
        _enter(index, kind, headers, http, record.block, record.offset, length, self.name,
               arc=False)
        return True


def indexed_part(path: str, start: int, end: int) -> tuple[list[RecordProblem],
                                                         WarcIndex | None]:
    """The record problems and the index (see :class:`KeptIndexer`) of the part of a
    gzipped WARC file from ``start`` to ``end`` (gzip member starts, as
    ``member_starts`` gives them), offsets as in the whole file: one core's share of a
    large file, in a worker process."""
    indexer = KeptIndexer(path, base=start)
    with open(path, "rb") as stream:
        stream.seek(start)
        problems = [replace(problem, offset=problem.offset + start) for problem in
                    verify_records(iter_chunks(stream, limit=end - start), keep=indexer)]
    return problems, None if problems else indexer.finish(end)


class _Fields:
    """WARC headers as ``verify_records`` keeps them, asked for as warcio's are."""

    def __init__(self, fields: dict[bytes, bytes]) -> None:
        self.fields = fields
        self.replaced: dict[str, str] = {}

    def get_header(self, name: str) -> str | None:
        if name in self.replaced:
            return self.replaced[name]
        value = self.fields.get(name.lower().encode("ascii"))
        return None if value is None else _decoded(value)

    def replace_header(self, name: str, value: str) -> None:
        self.replaced[name] = value


class _HttpHead:
    """An HTTP response's status code and Content-Type, as warcio's headers give them."""

    def __init__(self, status: str, content_type: str | None) -> None:
        self.status = status
        self.content_type = content_type

    def get_statuscode(self) -> str:
        return self.status

    def get_header(self, name: str) -> str | None:
        return self.content_type if name.lower() == "content-type" else None


def _decoded(value: bytes) -> str:
    """A header as warcio decodes it: UTF-8, else ISO-8859-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("iso-8859-1")


def _http_head(block: bytes, whole: bool) -> _HttpHead | None:
    """The status and Content-Type of the HTTP response at the start of ``block``, read as
    warcio reads them (an HTTP/1.0 or 1.1 status line; header lines to the first blank
    one); None where warcio would read it otherwise, or it does not end in ``block``."""
    lines = block.split(b"\n")
    if not whole:
        lines.pop()  # cut at the end of what was kept
    if not lines or not lines[0].rstrip():
        return None
    status_line = _decoded(lines[0]).rstrip()
    if not status_line.upper().startswith(("HTTP/1.0", "HTTP/1.1")):
        return None
    content_type: str | None = None
    for line in lines[1:]:
        text = _decoded(line).rstrip()
        if not text:
            return _HttpHead(status_line[8:].strip().split(" ", 1)[0], content_type)
        if text.startswith((" ", "\t")):
            return None  # a folded header line: warcio's own reading decides
        name, colon, value = text.partition(":")
        if colon and content_type is None and name.rstrip(" \t").lower() == "content-type":
            content_type = value.lstrip()
    return None if not whole else _HttpHead(status_line[8:].strip().split(" ", 1)[0],
                                            content_type)


def _target_uri(headers: Any) -> str:
    """WARC-Target-URI as warcio gives it (angle brackets and spaces mended)."""
    uri = headers.get_header("WARC-Target-URI")
    if uri is not None and uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1]
        headers.replace_header("WARC-Target-URI", uri)
    if uri is not None and " " in uri:
        uri = uri.replace(" ", "%20")
        headers.replace_header("WARC-Target-URI", uri)
    return uri or ""


def _block_wanted(kind: str, headers: Any, index: WarcIndex) -> bool:
    """Is the record's block read for the index: a description's JSON, the first
    warcinfo's fields?"""
    return (kind == "metadata" and _is_description(headers)) or (
        kind == "warcinfo" and not index.info)


def _enter(index: WarcIndex, kind: str, headers: Any, http: Any, block: bytes, offset: int,
           length: int, name: str, arc: bool) -> None:
    """Enter one record: a capture, or another record (and a description, a warcinfo's
    fields, from ``block``)."""
    index.records += 1
    # An ARC record has no ID (warcio makes a new one at each reading): it is known by
    # its file and offset.
    record_id = (f"<urn:preserve:arc:{name}#{offset}>" if arc
                 else headers.get_header("WARC-Record-ID"))
    if kind in CAPTURE_TYPES:
        url = headers.get_header("WARC-Target-URI")
        status = http.get_statuscode() if http is not None and kind != "resource" else None
        mime = media_type(http.get_header("Content-Type") if http is not None
                          and kind != "resource" else headers.get_header("Content-Type"))
        index.captures.append(CaptureEntry(
            url=url, surt=surt_key(url),
            capture_time=parse_warc_date(headers.get_header("WARC-Date")),
            # One string for each kind and media type, not one a record: an index holds
            # a file's every record until it is catalogued.
            record_type=sys.intern(kind), record_id=record_id,
            status=int(status) if status and is_digits(str(status)) else None,
            mime=None if mime is None else sys.intern(mime),
            payload_digest=headers.get_header("WARC-Payload-Digest"),
            offset=offset, length=length))
        return
    refers_to = (headers.get_header("WARC-Concurrent-To")
                 or headers.get_header("WARC-Refers-To"))
    if kind == "metadata" and _is_description(headers):
        fields = _read_json(block, record_id, name)
        if fields is not None:
            index.descriptions.append(DescriptionEntry(
                describes=refers_to, record_id=record_id, offset=offset, length=length,
                fields=fields))
    elif kind == "warcinfo" and not index.info:
        index.info = _warcinfo_fields(block)
    date = headers.get_header("WARC-Date")
    index.others.append(RecordEntry(
        record_type=kind, record_id=record_id, url=headers.get_header("WARC-Target-URI"),
        record_time=parse_warc_date(date) if date else None, refers_to=refers_to,
        offset=offset, length=length))


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


def _is_description(headers: Any) -> bool:
    content_type = headers.get_header("Content-Type") or ""
    return (content_type.startswith("application/json")
            and bool(headers.get_header("WARC-Concurrent-To")
                     or headers.get_header("WARC-Refers-To")))


def _read_json(data: bytes, record_id: str, name: str) -> dict[str, Any] | None:
    try:
        fields = json.loads(data)
    except ValueError as exc:
        raise WarcError(f"{name}: metadata record {record_id} is not valid JSON") from exc
    return fields if isinstance(fields, dict) and "extractor" in fields else None
