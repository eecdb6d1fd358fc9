"""Read side of the catalog: captures of a URL, the nearest one, stored files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Integer,
    Select,
    String,
    Text,
    and_,
    func,
    or_,
    select,
    text,
)

from preserve.catalog.schema import (
    UTCDateTime,
    captures,
    copies,
    descriptions,
    missing_copies,
    other_records,
    warc_files,
)


@dataclass(frozen=True)
class Snapshot:
    """One capture with where its record lives and what its page says."""

    id: int
    url: str
    capture_time: datetime
    collection: str
    record_type: str
    record_id: str
    status: int | None
    mime: str | None
    payload_digest: str | None
    warc_key: str
    offset: int
    length: int
    title: str | None
    publisher: str | None
    author: str | None
    published: str | None
    language: str | None
    text: str | None
    modified: str | None = None
    canonical_url: str | None = None
    text_simhash: str | None = None


@dataclass(frozen=True)
class StoredFile:
    """A catalogued WARC file, the locations holding a verified copy, and copies missing."""

    id: int
    key: str
    collection: str
    sha256: str
    size: int
    locations: tuple[str, ...]
    missing: tuple[tuple[str, str], ...] = ()  # (location, why) of copies never made
    records: int = 0  # WARC records in the file

    @property
    def places(self) -> frozenset[str]:
        """The locations the catalog has the file in, or knows its copy there was never
        made: the copies it accounts for."""
        return frozenset((*self.locations, *(name for name, _why in self.missing)))


def _snapshots() -> Select[Any]:
    return (
        select(
            captures.c.id, captures.c.url, captures.c.capture_time, captures.c.collection,
            captures.c.record_type, captures.c.record_id, captures.c.status, captures.c.mime,
            captures.c.payload_digest, warc_files.c.key.label("warc_key"), captures.c.offset,
            captures.c.length, descriptions.c.title, descriptions.c.publisher,
            descriptions.c.author, descriptions.c.published, descriptions.c.language,
            descriptions.c.text, descriptions.c.modified, descriptions.c.canonical_url,
            descriptions.c.text_simhash,
        )
        .join(warc_files, warc_files.c.id == captures.c.warc_file_id)
        .outerjoin(descriptions, descriptions.c.capture_id == captures.c.id)
    )


# Collection -> the latest capture time a reader may see (the embargoed are later).
Hidden = Mapping[str, datetime]


def _visible(query: Select[Any], hidden: Hidden | None) -> Select[Any]:
    """The query without the captures an embargo still hides."""
    for collection, cutoff in sorted((hidden or {}).items()):
        query = query.where(~and_(captures.c.collection == collection,
                                  captures.c.capture_time > cutoff))
    return query


def _between(query: Select[Any], start: datetime | None, end: datetime | None) -> Select[Any]:
    """The query kept to captures made from ``start`` to ``end`` (either open)."""
    if start is not None:
        query = query.where(captures.c.capture_time >= start)
    if end is not None:
        query = query.where(captures.c.capture_time <= end)
    return query


def captures_of(connection: Connection, surt: str, hidden: Hidden | None = None, *,
                prefix: bool = False, start: datetime | None = None,
                end: datetime | None = None, limit: int | None = None) -> list[Snapshot]:
    """Every capture with this SURT key (with ``prefix``, whose key starts with it: a
    URL's path, or its host), oldest first, made from ``start`` to ``end``."""
    matching = (captures.c.surt.startswith(surt, autoescape=True) if prefix
                else captures.c.surt == surt)
    query = _between(_visible(_snapshots(), hidden).where(matching), start, end)
    query = query.order_by(captures.c.capture_time, captures.c.id).limit(limit)
    return [Snapshot(**row._mapping) for row in connection.execute(query)]


@dataclass(frozen=True)
class IndexEntry:
    """One line of a CDX index: a capture by SURT key and time, and where its record is."""

    urlkey: str
    capture_time: datetime
    url: str
    record_type: str
    mime: str | None
    status: int | None
    payload_digest: str | None
    warc_key: str
    offset: int
    length: int

    @property
    def filename(self) -> str:
        """The WARC file's name, as CDX lines and WACZ packages give it."""
        return self.warc_key.rsplit("/", 1)[-1]

    def line(self, output: str = "cdxj") -> str:
        """The line as ``cdxj-indexer`` writes it (``output="json"``: one JSON object)."""
        fields: dict[str, Any] = {
            "url": self.url,
            "mime": "warc/revisit" if self.record_type == "revisit" else (self.mime or "unk"),
        }
        if self.status is not None:
            fields["status"] = str(self.status)
        if self.payload_digest:
            fields["digest"] = self.payload_digest
        fields.update(length=str(self.length), offset=str(self.offset), filename=self.filename)
        timestamp = self.capture_time.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        if output == "json":
            return json.dumps({"urlkey": self.urlkey, "timestamp": timestamp, **fields})
        return f"{self.urlkey} {timestamp} {json.dumps(fields)}"


def index_entries(connection: Connection, urlkey: str, match: str, start: datetime | None,
                  end: datetime | None, limit: int | None, hidden: Hidden | None = None,
                  ) -> list[IndexEntry]:
    """Captures by SURT key, in key then time order, as a CDX server lists them.

    ``match``: ``exact`` (the key itself), ``prefix`` (keys starting with it),
    or ``domain`` (the host key, ``com,example``, and every host under it).
    """
    query = _index_query(hidden)
    if match == "exact":
        query = query.where(captures.c.surt == urlkey)
    elif match == "prefix":
        query = query.where(captures.c.surt.startswith(urlkey, autoescape=True))
    else:
        query = query.where(captures.c.surt.startswith(urlkey + ")", autoescape=True)
                            | captures.c.surt.startswith(urlkey + ",", autoescape=True))
    query = _between(query, start, end).limit(limit)
    return [IndexEntry(**row._mapping) for row in connection.execute(query)]


def collection_index(connection: Connection, collection: str,
                     batch: int = 1000) -> Iterator[IndexEntry]:
    """Every capture of a collection as a CDX index lists it, streamed in batches."""
    rows = connection.execution_options(stream_results=True, yield_per=batch).execute(
        _index_query(None).where(captures.c.collection == collection))
    for row in rows:
        yield IndexEntry(**row._mapping)


def _index_query(hidden: Hidden | None) -> Select[Any]:
    return _visible(
        select(captures.c.surt.label("urlkey"), captures.c.capture_time, captures.c.url,
               captures.c.record_type, captures.c.mime, captures.c.status,
               captures.c.payload_digest, warc_files.c.key.label("warc_key"),
               captures.c.offset, captures.c.length)
        .join(warc_files, warc_files.c.id == captures.c.warc_file_id), hidden,
    ).order_by(captures.c.surt, captures.c.capture_time, captures.c.id)


@dataclass(frozen=True)
class SearchHit:
    """A capture whose description matched, how well, and where (the match marked)."""

    snapshot: Snapshot
    score: float
    snippet: str


@dataclass(frozen=True)
class SearchFilters:
    """What a search keeps: a collection, a publisher (any case), a capture time range,
    an HTTP status, a media type."""

    collection: str | None = None
    publisher: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    status: int | None = None
    mime: str | None = None


MARK = ("«", "»")  # around the matched words in a snippet
_PHRASE = re.compile(r'"([^"]*)"|(\S+)')


def search_captures(connection: Connection, words: str, filters: SearchFilters = SearchFilters(),
                    limit: int = 20, offset: int = 0, hidden: Hidden | None = None,
                    ) -> tuple[int, list[SearchHit]]:
    """Captures whose title, publisher or text hold every word (and "quoted phrase"),
    best first; and how many there are in all.

    SQLite ranks with FTS5's BM25 (title weighted 8, publisher 4, text 1),
    PostgreSQL with ts_rank_cd over a tsvector weighted the same way.
    """
    terms = [phrase or word for phrase, word in _PHRASE.findall(words)]
    terms = [term.strip() for term in terms if term.strip()]
    if not terms:
        return 0, []
    if connection.dialect.name == "sqlite" and filters == SearchFilters() and not hidden:
        return _search_fts_first(connection, terms, limit, offset)
    if connection.dialect.name == "sqlite":
        hits = text(
            "SELECT d.capture_id AS id, -bm25(descriptions_search, 8.0, 4.0, 1.0) AS score, "
            "snippet(descriptions_search, 2, :open, :close, ' … ', 24) AS snippet "
            "FROM descriptions_search JOIN descriptions d ON d.id = descriptions_search.rowid "
            "WHERE descriptions_search MATCH :query"
        ).bindparams(query=_fts_query(terms), open=MARK[0], close=MARK[1])
    else:
        hits = text(
            "SELECT d.capture_id AS id, ts_rank_cd(d.search, q) AS score, "
            "ts_headline('simple', d.text, q, :options) AS snippet "
            "FROM descriptions d, websearch_to_tsquery('simple', :query) q "
            "WHERE d.search @@ q"
        ).bindparams(query=" ".join(f'"{term}"' if " " in term else term for term in terms),
                     options=f"StartSel={MARK[0]}, StopSel={MARK[1]}, MaxWords=30, "
                             "MinWords=10, MaxFragments=1")
    matched = hits.columns(id=Integer, score=Float, snippet=Text).subquery("hits")
    query = _visible(_snapshots(), hidden).join(matched, matched.c.id == captures.c.id)
    if filters.collection:
        query = query.where(captures.c.collection == filters.collection)
    if filters.publisher:
        query = query.where(func.lower(descriptions.c.publisher) == filters.publisher.lower())
    query = _between(query, filters.start, filters.end)
    if filters.status:
        query = query.where(captures.c.status == filters.status)
    if filters.mime:
        query = query.where(captures.c.mime == filters.mime)
    total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = connection.execute(
        query.add_columns(matched.c.score, matched.c.snippet)
        .order_by(matched.c.score.desc(), captures.c.capture_time.desc(), captures.c.id)
        .limit(limit).offset(offset))
    found = []
    for row in rows:
        values = dict(row._mapping)
        score, snippet = float(values.pop("score")), values.pop("snippet") or ""
        found.append(SearchHit(Snapshot(**values), round(score, 6), " ".join(snippet.split())))
    return total, found


def _fts_query(terms: list[str]) -> str:
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _search_fts_first(connection: Connection, terms: list[str], limit: int, offset: int,
                      ) -> tuple[int, list[SearchHit]]:
    """An unfiltered search on SQLite: counted and ranked inside FTS5, and only the page's
    rows joined and given snippets. (Joining every match to the catalog to count and
    sort them cost seconds for a common word in a million captures.) Every description
    has its capture, so the counts agree with the joined form."""
    query = _fts_query(terms)
    total = connection.execute(text(
        "SELECT count(*) FROM descriptions_search WHERE descriptions_search MATCH :query"
    ), {"query": query}).scalar_one()
    ranked = connection.execute(text(
        "SELECT rowid, -bm25(descriptions_search, 8.0, 4.0, 1.0) AS score "
        "FROM descriptions_search WHERE descriptions_search MATCH :query "
        "ORDER BY bm25(descriptions_search, 8.0, 4.0, 1.0), rowid DESC "
        "LIMIT :limit OFFSET :offset"), {"query": query, "limit": limit, "offset": offset}
    ).all()
    if not ranked:
        return total, []
    ids = [row.rowid for row in ranked]
    snippets: dict[int, str] = dict(connection.execute(text(
        "SELECT rowid, snippet(descriptions_search, 2, :open, :close, ' … ', 24) "
        "FROM descriptions_search WHERE descriptions_search MATCH :query "
        f"AND rowid IN ({', '.join(str(int(rowid)) for rowid in ids)})"),
        {"query": query, "open": MARK[0], "close": MARK[1]}).all())
    # By capture ID: a condition on the outer-joined descriptions would scan every capture.
    capture_of = dict(connection.execute(
        select(descriptions.c.id, descriptions.c.capture_id).where(descriptions.c.id.in_(ids)))
        .all())
    snapshots = {row.id: Snapshot(**row._mapping) for row in connection.execute(
        _snapshots().where(captures.c.id.in_(capture_of.values())))}
    return total, [SearchHit(snapshots[capture_of[row.rowid]], round(float(row.score), 6),
                             " ".join((snippets.get(row.rowid) or "").split()))
                   for row in ranked if capture_of.get(row.rowid) in snapshots]


def described_captures(connection: Connection, collection: str | None = None,
                       batch: int = 1000) -> Iterator[Snapshot]:
    """Every capture that has a description, oldest first, streamed in batches."""
    query = _snapshots().where(descriptions.c.id.is_not(None))
    if collection is not None:
        query = query.where(captures.c.collection == collection)
    rows = connection.execution_options(stream_results=True, yield_per=batch).execute(
        query.order_by(captures.c.capture_time, captures.c.id))
    for row in rows:
        yield Snapshot(**row._mapping)


def capture_by_id(connection: Connection, capture_id: int, hidden: Hidden | None = None,
                  ) -> Snapshot | None:
    """One capture by its catalog ID."""
    row = connection.execute(_visible(_snapshots(), hidden)
                             .where(captures.c.id == capture_id)).first()
    return Snapshot(**row._mapping) if row else None


def nearest_capture(connection: Connection, surt: str, at: datetime | None,
                    hidden: Hidden | None = None) -> Snapshot | None:
    """The capture closest in time to ``at`` (the latest when ``at`` is None)."""
    base = _visible(_snapshots(), hidden).where(captures.c.surt == surt)
    latest_first = (captures.c.capture_time.desc(), captures.c.id.desc())
    if at is None:
        row = connection.execute(base.order_by(*latest_first).limit(1)).first()
        return Snapshot(**row._mapping) if row else None
    before = connection.execute(
        base.where(captures.c.capture_time <= at).order_by(*latest_first).limit(1)).first()
    after = connection.execute(
        base.where(captures.c.capture_time > at)
        .order_by(captures.c.capture_time, captures.c.id).limit(1)).first()
    candidates = [Snapshot(**row._mapping) for row in (before, after) if row is not None]
    if not candidates:
        return None
    return min(candidates, key=lambda snap: abs((snap.capture_time - at).total_seconds()))


@dataclass(frozen=True)
class Original:
    """The first full capture of a payload: what a revisit record refers to."""

    url: str
    capture_time: datetime
    record_id: str


_FIRST_CAPTURE = (
    "SELECT url, capture_time, record_id FROM captures WHERE payload_digest = {{0}}{within}"
    " AND record_type = 'response' AND status = 200 ORDER BY capture_time, id LIMIT 1")
_FIRST_CAPTURE_OF_PAYLOAD = _FIRST_CAPTURE.format(within="")
_FIRST_CAPTURE_STATEMENT = text(_FIRST_CAPTURE_OF_PAYLOAD.format(":digest")).columns(
    url=Text, capture_time=UTCDateTime, record_id=String)
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
# The same within one collection: a crawl deduplicates against its own collection only,
# so that each collection holds (and exports, and deletes) the bytes of its revisits.
_FIRST_IN_COLLECTION = _FIRST_CAPTURE.format(within=" AND collection = {1}")
_FIRST_IN_COLLECTION_STATEMENT = text(
    _FIRST_IN_COLLECTION.format(":digest", ":collection")).columns(
    url=Text, capture_time=UTCDateTime, record_id=String)


def first_capture_of_payload(connection: Connection, payload_digest: str) -> Original | None:
    """Where a payload was first captured in full."""
    row = connection.execute(_FIRST_CAPTURE_STATEMENT, {"digest": payload_digest}).first()
    return Original(*row) if row else None


class PayloadFinder:
    """:func:`first_capture_of_payload` in one collection, for a whole crawl, on one
    connection and read transaction.

    A crawl asks once per new payload, thousands of times a minute; through
    the database driver's own cursor the question costs a tenth of what
    SQLAlchemy's statement execution adds to it on SQLite. Captures that other
    crawls ingest meanwhile are not seen (they are only not deduplicated against).
    """

    def __init__(self, engine: Engine, collection: str) -> None:
        self._engine = engine
        self._collection = collection
        self._connection: Connection | None = None
        self._sql = ""

    def __call__(self, payload_digest: str) -> Original | None:
        if self._connection is None:
            self._connection = self._engine.connect()
            placeholder = _PLACEHOLDERS.get(self._engine.dialect.paramstyle)
            self._sql = (_FIRST_IN_COLLECTION.format(placeholder, placeholder)
                         if placeholder else "")
        if not self._sql:  # a driver whose parameter style we do not write by hand
            row = self._connection.execute(_FIRST_IN_COLLECTION_STATEMENT, {
                "digest": payload_digest, "collection": self._collection}).first()
            return Original(*row) if row else None
        cursor = self._connection.connection.cursor()
        try:
            cursor.execute(self._sql, (payload_digest, self._collection))
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        url, moment, record_id = row
        if isinstance(moment, str):  # SQLite keeps datetimes as ISO text
            moment = datetime.fromisoformat(moment)
        return Original(url, moment.replace(tzinfo=UTC), record_id)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def original_capture(connection: Connection, payload_digest: str) -> Snapshot | None:
    """The earliest full (200, non-revisit) response with this payload digest, in full."""
    first = first_capture_of_payload(connection, payload_digest)
    if first is None:
        return None
    row = connection.execute(
        _snapshots().where(captures.c.record_id == first.record_id).limit(1)).first()
    return Snapshot(**row._mapping) if row else None


def pages_to_describe(connection: Connection, collection: str | None = None,
                      surt: str | None = None, warc_key: str | None = None, *,
                      current_version: str | None = None, every: bool = False
                      ) -> list[Snapshot]:
    """HTML pages answered 2xx that have no description yet (with ``current_version``,
    also those described by another extractor version; with ``every``, all of them),
    oldest first."""
    query = _snapshots().where(
        captures.c.record_type.in_(("response", "revisit")),
        captures.c.status >= 200, captures.c.status < 300,
        captures.c.mime.in_(("text/html", "application/xhtml+xml")))
    if not every:
        query = query.where(descriptions.c.id.is_(None) if current_version is None else or_(
            descriptions.c.id.is_(None), descriptions.c.extractor_version != current_version))
    if collection is not None:
        query = query.where(captures.c.collection == collection)
    if surt is not None:
        query = query.where(captures.c.surt == surt)
    if warc_key is not None:
        query = query.where(warc_files.c.key == warc_key)
    return [Snapshot(**row._mapping) for row in connection.execute(
        query.order_by(captures.c.capture_time, captures.c.id))]


def stored_files(connection: Connection, *, key: str | None = None,
                 collection: str | None = None) -> list[StoredFile]:
    """Catalogued WARC files (all, the one with ``key``, or a collection's) with their
    verified locations and missing copies, in key order."""
    files = select(warc_files.c.id)
    if key is not None:
        files = files.where(warc_files.c.key == key)
    if collection is not None:
        files = files.where(warc_files.c.collection == collection)
    filtered = key is not None or collection is not None

    def chosen(query: Select[Any], column: Any) -> Select[Any]:
        return query.where(column.in_(files)) if filtered else query

    locations: dict[int, list[str]] = {}
    for file_id, location in connection.execute(chosen(
            select(copies.c.warc_file_id, copies.c.location).order_by(copies.c.location),
            copies.c.warc_file_id)):
        locations.setdefault(file_id, []).append(location)
    missing: dict[int, list[tuple[str, str]]] = {}
    for file_id, location, problem in connection.execute(chosen(
            select(missing_copies.c.warc_file_id, missing_copies.c.location,
                   missing_copies.c.problem).order_by(missing_copies.c.location),
            missing_copies.c.warc_file_id)):
        missing.setdefault(file_id, []).append((location, problem))
    rows = connection.execute(chosen(
        select(warc_files.c.id, warc_files.c.key, warc_files.c.collection,
               warc_files.c.sha256, warc_files.c.size, warc_files.c.records)
        .order_by(warc_files.c.key),
        warc_files.c.id))
    return [StoredFile(row.id, row.key, row.collection, row.sha256, row.size,
                       locations=tuple(locations.get(row.id, ())),
                       missing=tuple(missing.get(row.id, ())), records=row.records)
            for row in rows]


def file_copies(connection: Connection, key: str) -> tuple[list[str], dict[str, str]]:
    """The locations with a verified copy of a file, and the missing ones with the reason."""
    verified = connection.execute(
        select(copies.c.location).join(warc_files, warc_files.c.id == copies.c.warc_file_id)
        .where(warc_files.c.key == key).order_by(copies.c.location)).scalars().all()
    missing = connection.execute(
        select(missing_copies.c.location, missing_copies.c.problem)
        .join(warc_files, warc_files.c.id == missing_copies.c.warc_file_id)
        .where(warc_files.c.key == key).order_by(missing_copies.c.location)).all()
    return list(verified), {location: problem for location, problem in missing}


def related_records(connection: Connection, record_id: str) -> list[dict[str, Any]]:
    """The other records that belong with a capture (its request, its descriptions and
    other metadata, conversions), oldest first, each with where it lies."""
    rows = connection.execute(
        select(other_records.c.record_type, other_records.c.record_id,
               other_records.c.record_time, warc_files.c.key, other_records.c.offset,
               other_records.c.length)
        .join(warc_files, warc_files.c.id == other_records.c.warc_file_id)
        .where(other_records.c.refers_to == record_id)
        .order_by(other_records.c.record_time, other_records.c.id))
    return [{"record_type": row.record_type, "record_id": row.record_id,
             "record_time": (row.record_time.isoformat().replace("+00:00", "Z")
                             if row.record_time else None),
             "warc": {"key": row.key, "offset": row.offset, "length": row.length}}
            for row in rows]


def locations_holding_copies(connection: Connection, names: Iterable[str]) -> set[str]:
    """Those of the named locations that the catalog holds at least one copy in."""
    return {name for name in names if connection.execute(
        select(copies.c.id).where(copies.c.location == name).limit(1)).first() is not None}
