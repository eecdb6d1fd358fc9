"""Catalog + storage -> a snapshot, its WARC record, its original payload.

A record is read by its offset and length with a ranged read, never by
scanning the file. Its block and payload digests are checked on the way out,
so a damaged record is reported rather than served.
"""

from __future__ import annotations

import io
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader
from warcio.exceptions import ArchiveLoadFailed

from preserve.capture.fetch import PARSE_LIMIT, SPOOL_IN_MEMORY
from preserve.catalog import (
    Hidden,
    SearchFilters,
    SearchHit,
    Snapshot,
    capture_by_id,
    captures_of,
    file_copies,
    nearest_capture,
    original_capture,
    related_records,
    search_captures,
)
from preserve.errors import BadInput, NotFound, PolicyError, PreserveError, WarcError
from preserve.fingerprint import NEAR_BITS, iter_chunks, simhash_distance
from preserve.index import surt_key
from preserve.numbers import is_digits
from preserve.policy import check_policy, policy_files
from preserve.storage import ObjectStore


@dataclass(frozen=True)
class Payload:
    """The original response body and the headers that came with it."""

    status: int | None
    headers: list[tuple[str, str]]
    body: IO[bytes]

    def entity_headers(self) -> dict[str, str]:
        """Content-Type (as it was, or application/octet-stream) and Content-Encoding (if
        any): what an answer serving the original bytes sends with them."""
        kept = {name.lower(): value for name, value in self.headers}
        headers = {"Content-Type": kept.get("content-type", "application/octet-stream")}
        if "content-encoding" in kept:
            headers["Content-Encoding"] = kept["content-encoding"]
        return headers


def find_snapshot(engine: Engine, url: str, at: datetime | None = None,
                  hidden: Hidden | None = None) -> Snapshot:
    """The capture of url nearest to ``at`` (default: the latest), of those not ``hidden``."""
    with engine.connect() as connection:
        snapshot = nearest_capture(connection, surt_key(url), at, hidden)
    if snapshot is None:
        raise NotFound(f"{url}: no capture of this URL in the catalog")
    return snapshot


def list_snapshots(engine: Engine, url: str, hidden: Hidden | None = None) -> list[Snapshot]:
    """Every capture of url, oldest first (but the ``hidden``)."""
    with engine.connect() as connection:
        return captures_of(connection, surt_key(url), hidden)


def text_changes(snapshots: Sequence[Snapshot]) -> list[str | None]:
    """For captures of one URL, oldest first: how each one's main text stands to the
    previous described capture's: ``first``, ``same``, ``near-identical`` (simhashes at
    most ``NEAR_BITS`` apart: a date, a counter, a typo) or ``changed``; None for a
    capture without a description."""
    marks: list[str | None] = []
    previous: Snapshot | None = None
    for snapshot in snapshots:
        if snapshot.text is None:
            marks.append(None)
            continue
        if previous is None:
            mark = "first"
        elif snapshot.text == previous.text:
            mark = "same"
        elif (snapshot.text_simhash and previous.text_simhash and simhash_distance(
                snapshot.text_simhash, previous.text_simhash) <= NEAR_BITS):
            mark = "near-identical"
        else:
            mark = "changed"
        marks.append(mark)
        previous = snapshot
    return marks


def search_snapshots(engine: Engine, url: str, match: str = "exact",
                     start: datetime | None = None, end: datetime | None = None,
                     limit: int = 10_000, hidden: Hidden | None = None) -> list[Snapshot]:
    """Captures of url (``exact``), of every URL under its path (``prefix``), or on its
    host (``host``), by SURT key as pywb's CDX server matches them; oldest first."""
    key = surt_key(url)
    if match == "host":
        key = key.split(")", 1)[0] + ")"
    elif match not in ("exact", "prefix"):
        raise BadInput(f"match must be exact, prefix or host, not {match!r}")
    with engine.connect() as connection:
        return captures_of(connection, key, hidden, prefix=match != "exact", start=start,
                           end=end, limit=limit)


def search(engine: Engine, words: str, filters: SearchFilters | None = None,
           limit: int = 20, offset: int = 0, hidden: Hidden | None = None,
           ) -> tuple[int, list[SearchHit]]:
    """Full-text search of the descriptions (see :func:`preserve.catalog.search_captures`)."""
    if not words.strip():
        raise BadInput("search: give some words to look for")
    with engine.connect() as connection:
        return search_captures(connection, words, filters or SearchFilters(), limit, offset,
                               hidden)


def get_snapshot(engine: Engine, snapshot_id: int, hidden: Hidden | None = None) -> Snapshot:
    """One snapshot by its ID; :class:`NotFound` if there is none (or it is ``hidden``)."""
    with engine.connect() as connection:
        snapshot = capture_by_id(connection, snapshot_id, hidden)
    if snapshot is None:
        raise NotFound(f"snapshot {snapshot_id}: no such snapshot")
    return snapshot


def copies_of(engine: Engine, snapshot: Snapshot) -> tuple[list[str], dict[str, str]]:
    """Where the snapshot's WARC file has a verified copy, and which copies are missing."""
    with engine.connect() as connection:
        return file_copies(connection, snapshot.warc_key)


def snapshot_detail(engine: Engine, snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as ``preserve get --json`` and ``/api/snapshots/{id}`` give it: with its
    copies and the records that belong with it."""
    data = snapshot_json(snapshot)
    with engine.connect() as connection:
        verified, missing = file_copies(connection, snapshot.warc_key)
        data["related"] = related_records(connection, snapshot.record_id)
    data["warc"].update(copies=verified, missing_copies=missing,
                        under_replicated=bool(missing))
    return data


def read_record(engine: Engine, stores: Mapping[str, ObjectStore], snapshot: Snapshot) -> bytes:
    """The stored bytes of the snapshot's WARC record (one gzip member, or a plain or ARC
    record in an imported file), from a good copy."""
    locations, _missing = copies_of(engine, snapshot)
    return read_range(stores, locations, snapshot.warc_key, snapshot.offset, snapshot.length,
                      lambda data: _check_record(data, snapshot))


def read_range(stores: Mapping[str, ObjectStore], locations: Sequence[str], key: str,
               offset: int, length: int,
               check: Callable[[bytes], None] | None = None) -> bytes:
    """Bytes of an object from the first of ``locations`` that gives them (and, with
    ``check``, whose bytes it accepts)."""
    problems = []
    for location in locations:
        store = stores.get(location)
        if store is None:
            continue
        try:
            data = store.read_range(key, offset, length)
            if check is not None:
                check(data)
            return data
        except PreserveError as exc:
            problems.append(str(exc))
    if not problems:
        raise NotFound(f"{key}: no configured location holds a copy "
                       f"(catalogued in: {', '.join(locations) or 'none'})")
    raise WarcError("; ".join(problems))


def payload_record(engine: Engine, stores: Mapping[str, ObjectStore],
                   snapshot: Snapshot) -> bytes:
    """The record that holds a snapshot's payload: its own, or a revisit's original."""
    if snapshot.record_type != "revisit":
        return read_record(engine, stores, snapshot)
    original = None
    if snapshot.payload_digest:
        with engine.connect() as connection:
            original = original_capture(connection, snapshot.payload_digest)
    if original is None:
        raise NotFound(f"{snapshot.url}: a revisit of payload {snapshot.payload_digest}, "
                       "whose original capture is not in the catalog")
    return read_record(engine, stores, original)


def read_payload(record: bytes) -> Payload:
    """The response body of a record, transfer-encoding removed, content-encoding kept.

    ``record`` comes from :func:`read_record`, which has already verified it.
    """
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
    parsed = next(iter(ArchiveIterator(io.BytesIO(record), arc2warc=True)))
    http = parsed.http_headers
    raw: Any = parsed.raw_stream
    if http is not None and (http.get_header("Transfer-Encoding") or "").lower() == "chunked":
        raw = ChunkedDataReader(raw, decomp_type=None)
    for chunk in iter_chunks(raw):
        body.write(chunk)
    body.seek(0)
    if http is None:
        return Payload(None, [], body)
    status = http.get_statuscode()
    return Payload(int(status) if is_digits(str(status)) else None, list(http.headers), body)


def read_content(record: bytes, limit: int = PARSE_LIMIT) -> bytes:
    """The response body decoded as a browser would (transfer and content coding undone)."""
    parsed = next(iter(ArchiveIterator(io.BytesIO(record), arc2warc=True)))
    return bytes(parsed.content_stream().read(limit))


def _check_record(data: bytes, snapshot: Snapshot) -> None:
    """Raise :class:`WarcError` unless data is exactly the catalogued record, digests holding.

    Every record preserve writes carries block and payload digests; a record from
    another tool without them is covered by the whole-file fixity check alone.

    The gzip member is inflated here, not by warcio, because warcio falls back
    to reading damaged gzip as plain bytes (and then as a digest-less ARC record).
    """
    where = f"{snapshot.warc_key} at offset {snapshot.offset}"
    if len(data) != snapshot.length:
        raise WarcError(f"{where}: record is truncated ({len(data)} of {snapshot.length} bytes)")
    plain = data
    if data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=31)
        try:
            plain = inflater.decompress(data)
        except zlib.error as exc:
            raise WarcError(f"{where}: damaged record (gzip: {exc})") from exc
        if not inflater.eof or inflater.unused_data:
            raise WarcError(f"{where}: damaged record (not one whole gzip member)")
    # An imported file may be plain, and an ARC file (whose records have no IDs: an
    # ARC record is known by its URL).
    arc = not plain.startswith(b"WARC/")
    try:
        record = next(iter(ArchiveIterator(io.BytesIO(plain), check_digests="raise",
                                           arc2warc=arc)))
        found = (record.rec_headers.get_header("WARC-Target-URI") if arc
                 else record.rec_headers.get_header("WARC-Record-ID"))
        for _chunk in iter_chunks(record.raw_stream):
            pass  # reading to the end is what makes warcio check the digests
    except (ArchiveLoadFailed, StopIteration, ValueError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split())[:200] or "unreadable"
        raise WarcError(f"{where}: damaged record ({reason})") from exc
    if found != (snapshot.url if arc else snapshot.record_id):
        raise WarcError(f"{where}: not the catalogued record {snapshot.record_id}")


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """A search result as the CLI and the API give it: the snapshot, its snippet, its score."""
    return {**snapshot_json(hit.snapshot), "snippet": hit.snippet, "score": hit.score}


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as ``preserve get --json`` and the API give it."""
    return {
        "id": snapshot.id, "url": snapshot.url,
        "capture_time": snapshot.capture_time.isoformat().replace("+00:00", "Z"),
        "collection": snapshot.collection, "status": snapshot.status, "mime": snapshot.mime,
        "publisher": snapshot.publisher, "title": snapshot.title, "author": snapshot.author,
        "published": snapshot.published, "modified": snapshot.modified,
        "language": snapshot.language, "canonical_url": snapshot.canonical_url,
        "text_simhash": snapshot.text_simhash, "text": snapshot.text,
        "payload_digest": snapshot.payload_digest, "record_type": snapshot.record_type,
        "warc": {"key": snapshot.warc_key, "offset": snapshot.offset,
                 "length": snapshot.length},
    }


def chunks_then_close(stream: IO[bytes]) -> Iterator[bytes]:
    """A stream's bytes in chunks, the stream closed after the last (for streamed answers)."""
    try:
        yield from iter_chunks(stream)
    finally:
        stream.close()


def timestamp_datetime(text: str) -> datetime:
    """A 4-14 digit archive timestamp (``YYYYMMDDhhmmss``, the rest filled with the
    earliest) as a UTC datetime; ValueError when it is not one."""
    if not is_digits(text) or not 4 <= len(text) <= 14:
        raise ValueError(f"{text!r} is not 4 to 14 digits")
    padded = text + "0101000000"[len(text) - 4:] if len(text) < 14 else text
    return datetime.strptime(padded, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


class Embargoes:
    """How long each collection's captures stay hidden from readers, as the policies say.

    ``access.embargo_days`` of every policy in the folder; the longest, when several
    policies fill one collection. Files are read again when they change. A file
    that turns broken keeps the embargo it had, so a typo never lifts one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[Path, tuple[float, str, int]] = {}  # mtime, collection, days
        self._lock = threading.Lock()

    def hidden(self, now: datetime) -> dict[str, datetime]:
        """Collection -> the latest capture time a reader may see now (embargoed ones only)."""
        with self._lock:
            self._refresh()
            days: dict[str, int] = {}
            for _mtime, collection, embargo in self._files.values():
                if embargo:
                    days[collection] = max(days.get(collection, 0), embargo)
        return {collection: now - timedelta(days=count) for collection, count in days.items()}

    def _refresh(self) -> None:
        try:
            paths = policy_files(self.folder)
        except PolicyError:
            return  # no folder now: what was read stands
        for gone in set(self._files) - set(paths):  # a policy deleted on purpose
            del self._files[gone]
        for path in paths:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            known = self._files.get(path)
            if known is not None and known[0] == mtime:
                continue
            policy, _problems = check_policy(path)
            if policy is not None:
                self._files[path] = (mtime, policy.collection, policy.embargo_days)
            elif known is not None:
                self._files[path] = (mtime, known[1], known[2])
