"""The catalog's tables (SQLAlchemy Core). Migrations in ``migrations/`` build them.

The catalog is an index: every row here can be rebuilt from the WARC files in
storage. Times are stored as naive UTC and handed back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC on every database, returned with tzinfo=UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("catalog times must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

warc_files = Table(
    "warc_files", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(512), nullable=False, unique=True),
    Column("collection", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("records", Integer, nullable=False),
    Column("source", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

copies = Table(
    "copies", metadata,
    Column("id", Integer, primary_key=True),
    Column("warc_file_id", Integer, ForeignKey("warc_files.id"), nullable=False),
    Column("location", String(100), nullable=False),
    Column("verified_at", UTCDateTime, nullable=False),
    UniqueConstraint("warc_file_id", "location", name="uq_copies_file_location"),
    Index("ix_copies_location", "location"),
)

# A copy the policy asked for that could not be written and verified (after
# retries): the file is under-replicated until a repair makes the copy.
missing_copies = Table(
    "missing_copies", metadata,
    Column("id", Integer, primary_key=True),
    Column("warc_file_id", Integer, ForeignKey("warc_files.id"), nullable=False),
    Column("location", String(100), nullable=False),
    Column("problem", Text, nullable=False),
    Column("noted_at", UTCDateTime, nullable=False),
    UniqueConstraint("warc_file_id", "location", name="uq_missing_copies_file_location"),
)

captures = Table(
    "captures", metadata,
    Column("id", Integer, primary_key=True),
    Column("warc_file_id", Integer, ForeignKey("warc_files.id"), nullable=False),
    Column("collection", String(200), nullable=False),
    Column("url", Text, nullable=False),
    Column("surt", Text, nullable=False),
    Column("capture_time", UTCDateTime, nullable=False),
    Column("record_type", String(20), nullable=False),
    # As long as an ARC record's ID, which holds its file's key; SQLite holds to no length.
    Column("record_id", String(100).with_variant(String(600), "postgresql"), nullable=False),
    Column("status", Integer, nullable=True),
    Column("mime", String(200), nullable=True),
    Column("payload_digest", String(100), nullable=True),
    Column("offset", BigInteger, nullable=False),
    Column("length", BigInteger, nullable=False),
    Index("ix_captures_surt_time", "surt", "capture_time"),
    Index("ix_captures_payload_digest", "payload_digest"),
    Index("ix_captures_record_id", "record_id"),
    Index("ix_captures_warc_file_id", "warc_file_id"),
)

# Every record that is not a capture (warcinfo, request, metadata, conversion,
# continuation), so that the catalog knows all of a file: a request or a
# description is found through the capture it belongs with (``refers_to``).
other_records = Table(
    "other_records", metadata,
    Column("id", Integer, primary_key=True),
    Column("warc_file_id", Integer, ForeignKey("warc_files.id"), nullable=False),
    Column("record_type", String(20), nullable=False),
    Column("record_id", String(600), nullable=False),
    Column("url", Text, nullable=True),
    Column("record_time", UTCDateTime, nullable=True),
    Column("refers_to", String(600), nullable=True),
    Column("offset", BigInteger, nullable=False),
    Column("length", BigInteger, nullable=False),
    Index("ix_other_records_warc_file_id", "warc_file_id"),
    Index("ix_other_records_refers_to", "refers_to"),
)

descriptions = Table(
    "descriptions", metadata,
    Column("id", Integer, primary_key=True),
    Column("capture_id", Integer, ForeignKey("captures.id"), nullable=False, unique=True),
    Column("record_id", String(100), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("title", Text, nullable=True),
    Column("publisher", Text, nullable=True),
    Column("author", Text, nullable=True),
    Column("published", String(40), nullable=True),
    Column("language", String(40), nullable=True),
    Column("text", Text, nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("text_simhash", String(16), nullable=True),
    Column("modified", String(40), nullable=True),
    Column("canonical_url", Text, nullable=True),
    Column("extractor", String(100), nullable=False),
    Column("extractor_version", String(40), nullable=False),
)

# PREMIS 3 events (eventType, eventDateTime, eventOutcome, eventOutcomeDetail,
# linking agent and object): every fixity check and repair of one copy.
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("event_type", String(40), nullable=False),  # "fixity check", "replication"
    Column("event_date", UTCDateTime, nullable=False),
    Column("outcome", String(10), nullable=False),  # "pass" or "fail"
    Column("detail", Text, nullable=False),
    Column("agent", String(100), nullable=False),  # software and version
    Column("object", Text, nullable=False),  # the object's key
    Column("collection", String(200), nullable=True),  # None for an object nobody catalogued
    Column("location", String(100), nullable=False),
    Index("ix_events_object_location", "object", "location"),
    Index("ix_events_date", "event_date"),
)

# An audit in progress (finished_at NULL) is resumed by the next one of the same scope.
fixity_runs = Table(
    "fixity_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # "HOST PID PROCESS" of the process running it, and when it last said it was (None
    # once it has stopped, or for runs made before revision 0011).
    Column("holder", String(300), nullable=True),
    Column("alive_at", UTCDateTime, nullable=True),
)

# Scheduled work: one row per (kind, policy, target, scheduled time), however many
# schedulers there are. Operations, not archive: a rebuilt catalog starts with none.
jobs = Table(
    "jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(20), nullable=False),  # capture | fixity
    Column("policy", String(200), nullable=False),
    Column("target", Text, nullable=False),  # the URL, or the collection audited
    Column("scheduled_for", UTCDateTime, nullable=False),
    Column("state", String(20), nullable=False),  # queued running succeeded failed cancelled
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("params", Text, nullable=True),  # JSON: what an ad hoc capture asked for
    Column("result", Text, nullable=True),  # JSON summary of what the run did
    Column("worker", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),  # a retry waits until then
    Column("dispatched_at", UTCDateTime, nullable=True),  # sent to a distributed worker
    Column("started_at", UTCDateTime, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    UniqueConstraint("kind", "policy", "target", "scheduled_for", name="uq_jobs_run"),
    Index("ix_jobs_state", "state", "not_before"),
)

def outside_metadata(obj: Any, name: str | None, type_: str, reflected: bool,
                     compare_to: Any) -> bool:
    """For Alembic's comparisons: False for the full-text search objects migration 0008
    makes by hand (an FTS5 table and its shadow tables on SQLite; a generated tsvector
    column and its GIN index on PostgreSQL), which these tables do not declare."""
    if type_ == "table" and (name or "").startswith("descriptions_search"):
        return False
    if type_ == "index" and name == "ix_descriptions_search":
        return False
    return not (type_ == "column" and name == "search"
                and getattr(getattr(obj, "table", None), "name", "") == "descriptions")


# What a deleted WARC file was (its digests), why it went and who deleted it.
tombstones = Table(
    "tombstones", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(512), nullable=False, unique=True),
    Column("collection", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("records", Integer, nullable=False),
    Column("captures", Integer, nullable=False),
    Column("locations", Text, nullable=False),  # where copies were deleted, comma-separated
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("deleted_at", UTCDateTime, nullable=False),
)

ledger = Table(
    "ledger", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("event", String(40), nullable=False),
    Column("object", Text, nullable=False),
    Column("digest", String(100), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
