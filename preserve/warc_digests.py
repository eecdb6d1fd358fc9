"""Every record of a WARC file re-read in one pass, its block and payload digests verified.

This is deep fixity's reader. It takes the file as the chunks it is read in
(so the caller can hash the whole object from the same read), inflates each
gzip member with ISA-L (three times zlib's speed on HTML), splits the records
by their ``Content-Length`` and hashes their blocks and payloads from the
inflated bytes, never copying a block whole. ``.warc.gz`` files (one gzip
member per record, as WARC 1.1 recommends, or several records to a member) and
plain ``.warc`` files are read alike.

A record is named by its ``WARC-Target-URI`` (else its ``WARC-Record-ID``)
and its offset: the offset of the gzip member it starts in, which is what
indexes and ``warcio`` give, or its byte offset in a plain file. A revisit's
block is checked; its payload digest names the original's payload and is not,
where ``warcio check`` skips the record altogether. Memory stays bounded
whatever a record's size: inflated output is taken a slice at a time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from isal import isal_zlib

from preserve.errors import ObjectMissing, StorageError, Unreachable
from preserve.fingerprint import Tally, iter_chunks

if TYPE_CHECKING:
    from preserve.storage import ObjectStore

HEADER_LIMIT = 16 * 1024 * 1024  # WARC or HTTP headers longer than this are not headers
FEED = 64 * 1024  # compressed bytes given to the inflater at a time (what a member end copies)
SLICE = 1024 * 1024  # inflated bytes taken out at a time
HEADER_WINDOW = 8 * 1024  # inflated bytes searched at a time for the end of a record's headers
GZIP_MAGIC = b"\x1f\x8b"
# isal_zlib.error, the exception class (isal's stub types it as an instance).
BAD_GZIP = cast("type[Exception]", isal_zlib.error)
PAYLOAD_TYPES = (b"response", b"request", b"resource")
_FOLDED = re.compile(rb"\r\n[ \t]+")  # a header continued on the next line
# The end of a message's HTTP headers, past its status line: the first line that is
# empty once stripped (warcio's rule).
_HTTP_END = re.compile(rb"\n[ \t\r\x0b\x0c]*\n")
_CONSTRUCTORS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5,
                 "sha512": hashlib.sha512}
# RFC 4648's base32 alphabet, A-Z then 2-7 (and a-z as A-Z), as the digits int() reads
# in base 32.
_B32_TO_INT = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz",
                            "0123456789abcdefghijklmnopqrstuv0123456789abcdefghijklmnop")


@dataclass(frozen=True)
class RecordProblem:
    """A record whose digest does not hold, or where the file stops being readable."""

    uri: str
    offset: int
    expected: str
    found: str
    digest: str | None = None  # the header whose digest does not hold (None: unreadable)

    def __str__(self) -> str:
        return (f"offset {self.offset} ({self.uri}): "
                f"{self.digest + ' ' if self.digest else ''}expected {self.expected}, "
                f"found {self.found}")


@dataclass
class KeptRecord:
    """What an index needs of a record, kept as the record passed (``verify_records``'s
    ``keep``): where it starts (its gzip member, or its byte offset in a plain file),
    its WARC headers, and the first bytes of its block (the HTTP headers of a response
    or revisit; the whole block of a JSON metadata record or a warcinfo record)."""

    offset: int
    headers: dict[bytes, bytes]  # lower-case names, stripped values; the first of a name
    block: bytes
    whole: bool  # ``block`` is all of it
    size: int | None  # in a plain file, its headers and block; None in a gzipped one
    folded: bool = False  # a header continued on the next line (warcio reads it otherwise)


# Block bytes kept, by record type: enough for a response's HTTP headers; a description
# or warcinfo whole (up to the limit).
KEEP_HTTP = 16 * 1024
KEEP_WHOLE = 64 * 1024 * 1024


class Unreadable(Exception):
    """The file cannot be read on from here: the message says why, ``offset`` where
    (None: where the record being read starts)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class Keeper(Protocol):
    """What ``verify_records`` hands what it keeps of each record to (an indexer)."""

    def __call__(self, record: KeptRecord) -> None: ...

    def members(self, count: int) -> None:
        """How many gzip members the file held (0: a plain file), told at its end."""


def verify_records(chunks: Iterable[bytes], counter: RecordCheck | None = None,
                   keep: Keeper | None = None) -> Iterator[RecordProblem]:
    """A problem for every record whose block or payload digest does not hold.

    ``counter.records`` (when given) is kept to the number of records read, and
    ``keep`` (when given) is handed what an index needs of each record read whole. A
    file that cannot be read on (bad gzip data, a record cut short, something
    that is not a WARC record) ends with one problem there, naming the record it
    stopped in, or else the last one read.
    """
    records = _Records(keep)
    members = [0]
    try:
        for piece, offset in _inflated(chunks, members):
            records.feed(piece, offset)
            if records.problems:
                yield from records.problems
                records.problems.clear()
            if counter is not None:
                counter.records = records.records_read
        records.close()
        if keep is not None:
            keep.members(members[0])
    except Unreadable as exc:
        # Named: the record being read when the file stopped, else the one before.
        where = (records.uri if records.remaining >= 0
                 else f"the record after {records.last_uri or 'the start'}")
        yield RecordProblem(where, records.offset if exc.offset is None else exc.offset,
                            "readable records", f"unreadable ({exc})")


@dataclass
class CopyRead:
    """One read of a stored copy: its size and SHA-256 and, in deep mode, the records
    verified and those whose digests did not hold. ``missing``: there was no object;
    ``error``: storage failed, and nothing else is known (``unreachable``: the whole
    location could not be reached)."""

    missing: bool = False
    error: str | None = None
    unreachable: bool = False
    size: int = 0
    sha256: str = ""
    records: int = 0
    problems: list[RecordProblem] = field(default_factory=list)


def read_copy(store: ObjectStore, key: str, deep: bool) -> CopyRead:
    """Read one stored copy once: hash it whole and, with ``deep``, verify every record's
    digests from the same chunks (a WACZ's WARC files where they lie in the ZIP).

    Big deep audits run this in worker processes, which import this module (not
    the catalog's): it stays light to import.
    """
    counter = RecordCheck()
    verify = verify_wacz_records if key.endswith(".wacz") else verify_records
    try:
        with store.open(key) as stream:
            whole, problems = hashed_and_verified(
                stream, (lambda chunks: verify(chunks, counter)) if deep else None)
    except ObjectMissing:
        return CopyRead(missing=True)
    except StorageError as exc:
        return CopyRead(error=str(exc), unreachable=isinstance(exc, Unreachable))
    return CopyRead(size=whole.size, sha256=whole.hexdigest(), records=counter.records,
                    problems=problems)


def hashed_and_verified(stream: IO[bytes],
                        verify: Callable[[Iterator[bytes]], Iterable[RecordProblem]] | None
                        ) -> tuple[Tally, list[RecordProblem]]:
    """One read of a stream: hashed whole and, with ``verify``, its records' problems
    from the same chunks (what follows where the records stop is hashed too)."""
    whole = Tally()
    chunks = whole.passing(iter_chunks(stream))
    problems = list(verify(chunks)) if verify is not None else []
    for _rest in chunks:  # what a file unreadable part-way leaves to hash
        pass
    return whole, problems


def member_starts(path: Path, parts: int) -> list[int]:
    """Where to cut a gzipped WARC file into about ``parts`` parts that can be read apart:
    the start of the first gzip member (holding a WARC record) at or after each
    ``1/parts`` of its size; 0 and the size included. A place where none is found
    within a few MiB is not cut."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as stream:
        for part in range(1, parts):
            found = _member_after(stream, size * part // parts, size)
            if found is not None and found > cuts[-1]:
                cuts.append(found)
    return [*cuts, size]


def _member_after(stream: IO[bytes], start: int, size: int, window: int = 1024 * 1024,
                  tries: int = 8) -> int | None:
    for attempt in range(tries):
        at = start + attempt * window
        if at >= size:
            return None
        stream.seek(at)
        data = stream.read(window + 64 * 1024)
        found = data.find(GZIP_MAGIC + b"\x08")
        while 0 <= found < window:
            try:
                head = isal_zlib.decompressobj(31).decompress(data[found:found + 64 * 1024], 16)
            except BAD_GZIP:
                head = b""
            if head.startswith(b"WARC/"):
                return at + found
            found = data.find(GZIP_MAGIC + b"\x08", found + 1)
    return None


ZIP_ENTRY = b"PK\x03\x04"  # a ZIP local file header; the central directory ends the entries
ZIP_HEADER = 30  # the fixed part of a local file header; its name and extra field follow


def is_wacz_warc(name: str) -> bool:
    """Is this entry of a WACZ one of its WARC files?"""
    return name.startswith("archive/") and ".warc" in name


def zip_header_size(header: bytes) -> int:
    """The size of a ZIP local file header from its fixed part: where its data starts."""
    return (ZIP_HEADER + int.from_bytes(header[26:28], "little")
            + int.from_bytes(header[28:30], "little"))


def verify_wacz_records(chunks: Iterable[bytes], counter: RecordCheck | None = None
                        ) -> Iterator[RecordProblem]:
    """:func:`verify_records` for the WARC files inside a WACZ, read in the same single pass.

    A WACZ is a ZIP whose ``archive/`` entries are stored, not deflated, so each WARC
    lies in it byte for byte: each is verified where it lies, and its problems name
    offsets in the ZIP (where indexes point). Other entries pass unread. A WARC
    entry that is deflated, or whose size comes after its data, cannot be read in
    place: that is a problem of its own.
    """
    source = _Bytes(iter(chunks))
    records = 0
    while True:
        header = source.peek(ZIP_HEADER)
        if len(header) < ZIP_HEADER or not header.startswith(ZIP_ENTRY):
            break
        flags, method = int.from_bytes(header[6:8], "little"), int.from_bytes(header[8:10],
                                                                              "little")
        size = int.from_bytes(header[18:22], "little")
        start = source.position
        head = source.take(zip_header_size(header))
        name = head[ZIP_HEADER:ZIP_HEADER + int.from_bytes(header[26:28], "little")].decode(
            "utf-8", "replace")
        warc = is_wacz_warc(name)
        if warc and (method != 0 or flags & 0x08):
            yield RecordProblem(name, start, "a WARC entry stored in place",
                                "deflated, or its size after its data: unreadable in place")
            return
        data = source.position
        if not warc:
            source.skip(size)
            continue
        check = RecordCheck()
        for problem in verify_records(source.exactly(size), check):
            yield RecordProblem(problem.uri, problem.offset + data, problem.expected,
                                problem.found, problem.digest)
        source.skip(data + size - source.position)  # what a stop part-way left of it
        records += check.records
        if counter is not None:
            counter.records = records


class _Bytes:
    """A stream of chunks read by count: ``position`` is where the next byte lies."""

    def __init__(self, source: Iterator[bytes]) -> None:
        self.source = source
        self.buffer = bytearray()
        self.position = 0

    def peek(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = next(self.source, None)
            if chunk is None:
                break
            self.buffer += chunk
        return bytes(self.buffer[:count])

    def take(self, count: int) -> bytes:
        data = self.peek(count)
        del self.buffer[:len(data)]
        self.position += len(data)
        return data

    def exactly(self, count: int) -> Iterator[bytes]:
        """The next ``count`` bytes, a chunk at a time (fewer if the stream ends)."""
        while count > 0:
            if not self.buffer:
                chunk = next(self.source, None)
                if chunk is None:
                    return
                self.buffer += chunk
            piece = bytes(self.buffer[:count])
            del self.buffer[:len(piece)]
            self.position += len(piece)
            count -= len(piece)
            yield piece

    def skip(self, count: int) -> None:
        for _piece in self.exactly(count):
            pass


def _inflated(chunks: Iterable[bytes], members: list[int] | None = None
              ) -> Iterator[tuple[memoryview, int | None]]:
    """The file's bytes as WARC data: ``(data, member offset)`` for gzip, and
    ``(data, None)`` for a plain file, whose record offsets are counted in the data."""
    source = iter(chunks)
    first = next(source, b"")
    if not first:
        return
    if not first.startswith(GZIP_MAGIC[:len(first)]):
        yield memoryview(first), None
        for plain in source:
            yield memoryview(plain), None
        return
    position = 0  # compressed bytes consumed, over all chunks
    member = 0  # where the member being inflated starts
    inflater: Any = None
    chunk: bytes | None = first
    while chunk is not None:
        view = memoryview(chunk)
        at = 0
        while at < len(view):
            if inflater is None:
                member = position
                if members is not None:
                    members[0] += 1
                inflater = isal_zlib.decompressobj(31)
            feed = view[at:at + FEED]
            try:
                out = inflater.decompress(feed, SLICE)
                while True:
                    if out:
                        yield memoryview(out), member
                    if not inflater.unconsumed_tail:
                        break
                    tail = inflater.unconsumed_tail
                    used = len(feed) - len(tail)
                    at, position, feed = at + used, position + used, tail
                    out = inflater.decompress(feed, SLICE)
            except BAD_GZIP as exc:
                raise Unreadable(f"bad gzip data in the member at offset {member}: {exc}",
                                 member) from exc
            used = len(feed) - len(inflater.unused_data)
            at += used
            position += used
            if inflater.eof:
                inflater = None
        chunk = next(source, None)
    if inflater is not None:
        raise Unreadable(f"the gzip member at offset {member} is cut short", member)


class _Records:
    """Splits WARC data into records and hashes each one's block and payload as it passes."""

    def __init__(self, keep: Keeper | None = None) -> None:
        self.kept = keep  # None: nothing is kept for an index
        self.headers: dict[bytes, bytes] = {}  # the current record's WARC headers
        self.keep = 0  # block bytes still to keep of the current record
        self.keeping: list[bytes] = []
        self.keep_whole = False
        self.folded = False
        self.plain = False  # the record is in a plain (not gzipped) file
        self.size = 0  # its headers and block, with the blank line between
        self.pending = b""  # header bytes not yet complete, or separator bytes
        self.remaining = -1  # block bytes still to come; -1 between records
        self.offset = 0  # where the current record starts
        self.plain_at = 0  # bytes seen before this piece, in a plain file
        self.last_uri = ""
        self.uri = ""
        self.block: Any = None
        self.payload: Any = None
        self.block_digest = ""
        self.payload_digest = ""
        self.in_payload = False
        self.http_head = b""  # the HTTP headers read so far
        self.http_line = 0  # where the first line not yet read starts in them
        self.http_status_read = False
        self.problems: list[RecordProblem] = []
        self.records_read = 0
        self.last_offset = 0
        self.lost = False  # looking for the next record after a wrong Content-Length
        self.arc = False  # an ARC file: not read past its first line

    def feed(self, piece: memoryview, member: int | None) -> None:
        """Read a piece of WARC data on; damaged records go to ``problems``."""
        at = 0
        size = len(piece)
        while at < size and not self.arc:
            if self.remaining < 0:
                at = self._header(piece, at, member)
            else:
                take = min(self.remaining, size - at)
                if self.keep:
                    part = bytes(piece[at:at + min(take, self.keep)])
                    self.keeping.append(part)
                    self.keep -= len(part)
                self._hash(piece[at:at + take])
                at += take
                self.remaining -= take
            if self.remaining == 0:
                self._end()
        if member is None:
            self.plain_at += size

    def close(self) -> None:
        if self.remaining >= 0:
            raise Unreadable(f"the record {self.uri} at offset {self.offset} ends before "
                             f"its Content-Length")
        if self.lost or self.pending.strip(b"\r\n"):
            raise Unreadable(f"what follows offset {self.offset} is not a WARC record")

    def _header(self, piece: memoryview, at: int, member: int | None) -> int:
        """Read on from ``at`` into a record's headers; where the data after them starts."""
        if self.lost:
            return self._find_record(piece, at, member)
        if not self.pending:
            # Records are separated by CRLF CRLF; skip it (and any stray line ends).
            while at < len(piece) and piece[at] in (13, 10):
                at += 1
            if at == len(piece):
                return at
            self.offset = member if member is not None else self.plain_at + at
            self.plain = member is None
        # The headers are looked for a window at a time: the block after them is not copied.
        while at < len(piece):
            window = bytes(piece[at:at + HEADER_WINDOW])
            start = len(self.pending)
            self.pending += window
            if not self.pending.startswith(b"WARC/"[:len(self.pending)]):
                return self._not_a_record(piece, max(at - start, 0), member)
            end = self.pending.find(b"\r\n\r\n", max(0, start - 3))
            if end >= 0:
                headers = self.pending[:end]
                self.pending = b""
                self._begin(headers)
                return at + end + 4 - start
            if len(self.pending) > HEADER_LIMIT:
                raise Unreadable(f"no end to the WARC headers at offset {self.offset}")
            at += len(window)
        return at

    def _not_a_record(self, piece: memoryview, at: int, member: int | None) -> int:
        """Where a record should start (``pending``, from ``at`` in this piece), something
        else: an ARC file, something that is not WARC at all, or (after a record) a
        Content-Length that is wrong."""
        found = self.pending
        # What came before this piece is at most a few bytes of "WARC/" (checked as it
        # came): no record starts in it, so the search goes on from ``at`` in the piece.
        self.pending = b""
        if not self.records_read:
            if found.startswith(b"filedesc:"[:len(found)]):
                self.arc = True  # ARC records carry no digests: the file is checked whole
                return len(piece)
            raise Unreadable(f"no WARC record at offset {self.offset} (found {found[:40]!r})")
        self.problems.append(RecordProblem(
            self.last_uri, self.last_offset, "the next record right after Content-Length bytes",
            f"{found[:20]!r}... at offset {self.offset}, not a WARC record (its "
            f"Content-Length may be wrong); read on from the next WARC/ line"))
        self.lost = True
        return self._find_record(piece, at, member)

    def _find_record(self, piece: memoryview, at: int, member: int | None) -> int:
        """Skip to the next line that starts a WARC record (kept in ``pending``)."""
        carried = self.pending
        data = carried + bytes(piece[at:])
        found = data.find(b"\nWARC/1.")
        if found < 0:
            self.pending = data[-8:]
            return len(piece)
        self.lost = False
        start = found + 1
        self.pending = b""
        if start < len(carried):  # the marker began in what was carried over
            self.pending = carried[start:]
        else:
            at += start - len(carried)
        self.offset = member if member is not None else self.plain_at + at - len(self.pending)
        self.plain = member is None
        return at

    def _begin(self, raw: bytes) -> None:
        original = raw
        self.folded = b"\r\n " in raw or b"\r\n\t" in raw
        if self.folded:
            raw = _FOLDED.sub(b" ", raw)  # a header continued on the next line
        headers: dict[bytes, bytes] = {}
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers.setdefault(name.strip().lower(), value.strip())  # the first, as warcio
        length = headers.get(b"content-length", b"")
        if not length.isdigit():
            raise Unreadable(f"the record at offset {self.offset} has no valid "
                             f"Content-Length ({length[:40]!r})")
        self.remaining = int(length)
        self.uri = (headers.get(b"warc-target-uri") or headers.get(b"warc-record-id")
                    or b"").decode("utf-8", "replace")
        self.block_digest = headers.get(b"warc-block-digest", b"").decode("ascii", "replace")
        self.payload_digest = (headers.get(b"warc-payload-digest", b"").decode("ascii", "replace")
                               if headers.get(b"warc-type") in PAYLOAD_TYPES else "")
        self.block = _hasher(self.block_digest)
        self.payload = _hasher(self.payload_digest)
        # A record that is not an HTTP message has its block for payload.
        self.in_payload = not headers.get(b"content-type", b"").startswith(b"application/http")
        self.http_head = b""
        self.http_line = 0
        self.http_status_read = False
        if self.kept is not None:
            self.headers = headers
            self.size = len(original) + 4 + self.remaining
            self.keeping = []
            kind = headers.get(b"warc-type")
            limit = (KEEP_HTTP if kind in (b"response", b"revisit") else
                     KEEP_WHOLE if kind in (b"warcinfo", b"metadata") else 0)
            self.keep = min(self.remaining, limit)
            self.keep_whole = self.remaining <= limit
        if self.payload is not None and self.in_payload and self.block is not None and (
                self.payload.name == self.block.name):
            self.payload = _Same(self.block)  # one hash serves both

    def _hash(self, data: memoryview) -> None:
        if self.block is not None:
            self.block.update(data)
        if self.payload is None:
            return
        if self.in_payload:
            self.payload.update(data)
            return
        # The HTTP headers are looked for a window at a time, like the WARC headers.
        at = 0
        while at < len(data):
            window = bytes(data[at:at + HEADER_WINDOW])
            before = len(self.http_head)
            self.http_head += window
            end = self._http_header_end()
            if end is not None:
                self.in_payload = True
                self.payload.update(data[at + end - before:])
                self.http_head = b""
                return
            if len(self.http_head) > HEADER_LIMIT:
                self.payload = None  # no end to the HTTP headers: nothing to call a payload
                self.http_head = b""
                return
            at += len(window)

    def _http_header_end(self) -> int | None:
        """Where the HTTP headers end in ``http_head``: after the first line, past the
        status line, that is empty once stripped (warcio's rule, so our payload
        digests match ``warcio check``'s). Lines already read are not read again."""
        data = self.http_head
        if not self.http_status_read:
            end = data.find(b"\n")
            if end < 0:
                return None
            self.http_status_read = True
            self.http_line = end  # the line break before the next line
        found = _HTTP_END.search(data, self.http_line)
        if found is not None:
            return found.end()
        self.http_line = data.rfind(b"\n")  # a blank line may start there, and go on
        return None

    def _end(self) -> None:
        self.remaining = -1
        self.records_read += 1
        if self.kept is not None:
            self.kept(KeptRecord(self.offset, self.headers, b"".join(self.keeping),
                                 self.keep_whole, self.size if self.plain else None,
                                 self.folded))
            self.keeping = []
        self.last_uri = self.uri
        self.last_offset = self.offset
        for header, declared, hasher in (
                ("WARC-Block-Digest", self.block_digest, self.block),
                ("WARC-Payload-Digest", self.payload_digest, self.payload)):
            if declared and hasher is not None and not _same(declared, hasher.digest()):
                self.problems.append(RecordProblem(self.uri, self.offset, declared,
                                                   _label(declared, hasher), header))


class _Same:
    """The block's own hasher standing in as the payload's, when they are the same bytes."""

    def __init__(self, block: Any) -> None:
        self.block = block
        self.name = block.name

    def update(self, _data: Any) -> None:
        pass  # the block hasher has these bytes already

    def digest(self) -> bytes:
        return bytes(self.block.digest())


def _hasher(declared: str) -> Any:
    algorithm = declared.partition(":")[0].lower().replace("-", "")
    if not algorithm or algorithm == declared.lower():
        return None
    try:
        return _CONSTRUCTORS[algorithm]() if algorithm in _CONSTRUCTORS else hashlib.new(algorithm)
    except ValueError:
        return None  # an algorithm we cannot check is not reported as damage


def _same(declared: str, digest: bytes) -> bool:
    """Whether a digest header's value (base32, hex or base64) is this digest."""
    value = declared.partition(":")[2].strip()
    size = len(digest)
    if size == 20 and len(value) == 32:  # SHA-1 in base32, as nearly every WARC writes it
        try:
            return _b32decode(value, size) == digest
        except ValueError:
            return False
    bare = value.rstrip("=")
    decoders: list[Callable[[], bytes]] = []
    if len(value) == 2 * size:
        decoders.append(lambda: bytes.fromhex(value))
    if len(bare) == -(-size * 8 // 5):
        decoders.append(lambda: _b32decode(bare, size))
    if len(value) == 4 * -(-size // 3):
        decoders.append(lambda: binascii.a2b_base64(value))
    for decode in decoders:
        try:
            if decode() == digest:
                return True
        except (ValueError, binascii.Error):
            continue
    return False


def _b32decode(text: str, size: int) -> bytes:
    """Base32 (RFC 4648, unpadded) decoded by int(): base64.b32decode is Python, and slow.
    ValueError for what is not letters and digits (int() would take a sign, spaces, "_")."""
    if not text.isalnum():
        raise ValueError(f"not base32: {text[:40]!r}")
    value = int(text.translate(_B32_TO_INT), 32)
    return (value >> (5 * len(text) - 8 * size)).to_bytes(size, "big")


def _label(declared: str, hasher: Any) -> str:
    return f"{declared.split(':', 1)[0]}:{base64.b32encode(hasher.digest()).decode()}"


@dataclass
class RecordCheck:
    """Every record of one WARC file re-read with its block and payload digests checked."""

    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def check_record_digests(stream: IO[bytes], name: str) -> RecordCheck:
    """Every record re-read and its digests checked (revisits too, unlike ``warcio check``)."""
    check = RecordCheck()
    check.problems = [f"{name} {problem}"
                      for problem in verify_records(iter_chunks(stream), check)]
    return check
