"""Deleting a stored WARC file: a recorded, reasoned act that leaves a tombstone.

Nothing is deleted without a reason. A file whose payloads other files'
revisit records stand on is refused (deleting it would leave them pointing at
nothing), and so is one with a copy under retention (Object Lock). Every copy is
removed first; if a location refuses midway, the copies already removed are
written again from one still held, so the file is whole or gone, and the error
stands. When every copy is gone, one transaction replaces the file's
catalog rows with a tombstone (key, digests, size, records, where it was, why,
who, when) and appends a ``delete`` entry to the ledger. The tombstone is kept in
storage too (``ledger/tombstones/``), for ``preserve reindex``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, select

from preserve import ledger
from preserve.catalog import StoredFile, stored_files, write_transaction
from preserve.catalog.schema import (
    captures,
    copies,
    descriptions,
    missing_copies,
    other_records,
    tombstones,
    warc_files,
)
from preserve.errors import BadInput, NotFound, ObjectMissing, PreserveError, restated
from preserve.storage import ObjectStore, expect_copies


@dataclass(frozen=True)
class Tombstone:
    """What is left of a deleted file."""

    key: str
    collection: str
    sha256: str
    size: int
    records: int
    captures: int
    locations: str
    reason: str
    actor: str
    deleted_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deleted_at"] = self.deleted_at.isoformat().replace("+00:00", "Z")
        return data


def delete_file(engine: Engine, stores: Mapping[str, ObjectStore], key: str, reason: str,
                actor: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                ) -> Tombstone:
    """Delete every copy of a catalogued WARC file and leave its tombstone."""
    reason = " ".join(reason.split())
    if not reason:
        raise BadInput("delete: a reason is required (--reason)")
    expect_copies(engine, stores.values())
    with engine.connect() as connection:
        found = stored_files(connection, key=key)
        if not found:
            raise NotFound(f"delete: no catalogued WARC file {key!r}")
        stored = found[0]
        row = connection.execute(select(warc_files.c.records).where(
            warc_files.c.id == stored.id)).one()
        count = connection.execute(select(func.count()).select_from(captures).where(
            captures.c.warc_file_id == stored.id)).scalar_one()
        dependents = _dependent_revisits(connection, stored.id)
    if dependents:
        raise BadInput(f"delete: {dependents} revisit record(s) in other files stand on "
                       f"payloads of {key}; deleting it would leave them without their bytes")
    for location in stored.locations:
        if location not in stores:
            raise BadInput(f"delete: location {location!r} holds a copy of {key} but is "
                           "not configured; nothing deleted")
    for location in stored.locations:  # every location reachable, before anything goes
        try:
            stores[location].open(key).close()
        except ObjectMissing:
            continue  # gone already: nothing to delete there
        except PreserveError as exc:
            raise restated(exc, f"{_refused(key, exc)}; nothing deleted") from exc
    for location in stored.locations:  # a copy held under retention refuses: ask first
        retained = stores[location].retained_until(key)
        if retained is not None and retained > now():
            raise BadInput(f"delete: the copy of {key} in {location} is retained until "
                           f"{retained:%Y-%m-%d} (Object Lock); nothing deleted")
    deleted: list[str] = []
    try:
        for location in stored.locations:
            # Asked to delete, not whether it is there: a location out of reach (a disk
            # not mounted) must refuse, not pass for one whose copy is gone already.
            with suppress(ObjectMissing):
                stores[location].delete(key)
            deleted.append(location)
    except PreserveError as exc:
        raise _undone(engine, stores, stored, deleted, actor, now, exc) from exc
    moment = now()
    tombstone = Tombstone(key=key, collection=stored.collection, sha256=stored.sha256,
                          size=stored.size, records=row.records, captures=count,
                          locations=",".join(deleted), reason=reason, actor=actor,
                          deleted_at=moment)
    keep_tombstone(stores, tombstone)
    with write_transaction(engine) as connection:
        ids = select(captures.c.id).where(captures.c.warc_file_id == stored.id)
        connection.execute(delete(descriptions).where(descriptions.c.capture_id.in_(ids)))
        connection.execute(delete(captures).where(captures.c.warc_file_id == stored.id))
        connection.execute(delete(other_records).where(
            other_records.c.warc_file_id == stored.id))
        connection.execute(delete(copies).where(copies.c.warc_file_id == stored.id))
        connection.execute(delete(missing_copies).where(
            missing_copies.c.warc_file_id == stored.id))
        connection.execute(delete(warc_files).where(warc_files.c.id == stored.id))
        connection.execute(insert(tombstones).values(**asdict(tombstone)))
        ledger.append(connection, time=moment, actor=actor, event="delete", object=key,
                      digest=f"sha256:{stored.sha256}")
        ledger.append(connection, time=moment, actor=actor, event=ledger.DELETE_REASON,
                      object=key, digest=ledger.reason_digest(reason))
    ledger.checkpoint(engine, stores)
    return tombstone


def _undone(engine: Engine, stores: Mapping[str, ObjectStore], stored: StoredFile,
            deleted: list[str], actor: str, now: Callable[[], datetime],
            refused: PreserveError) -> PreserveError:
    """A deletion a location refused midway is undone: the copies already removed are
    written again from one still held (verified, recorded as repairs), so the file is
    whole or gone, never half (a half-deleted file looked whole to every check, and a
    repair would have brought back what a takedown removed). The error to raise."""
    from preserve.reconcile import repair_copy

    said = _refused(stored.key, refused)
    if not deleted:
        return restated(refused, f"{said}; nothing deleted")
    lost = {}
    for location in deleted:
        source, failure = repair_copy(engine, stores, stored, location, actor, now)
        if source is None:
            lost[location] = failure or "not written again"
    if not lost:
        return restated(refused, f"{said}; nothing deleted: the copies already removed from "
                                 f"{', '.join(deleted)} were written again, verified")
    with write_transaction(engine) as connection:  # the catalog says what is really there
        connection.execute(delete(copies).where(
            copies.c.warc_file_id == stored.id, copies.c.location.in_(sorted(lost))))
        ledger.append(connection, time=now(), actor=actor, event="delete refused midway",
                      object=stored.key, digest=f"sha256:{stored.sha256}")
    ledger.checkpoint(engine, stores)
    return restated(refused, f"{said}; the copies removed from {', '.join(sorted(lost))} "
                             f"could not be written again ({'; '.join(lost.values())}): the "
                             "file is under-replicated, and the deletion unfinished")


def _refused(key: str, error: PreserveError) -> str:
    """What a location's refusal says, on one line, for the file being deleted."""
    return f"delete: {key}: {' '.join(str(error).split())}"


def keep_tombstone(stores: Mapping[str, ObjectStore], tombstone: Tombstone) -> None:
    """Write the tombstone into every location that takes it (``ledger/tombstones/KEY.json``),
    so that a catalog rebuilt from storage still knows what was deleted, and why."""
    body = json.dumps(tombstone.as_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")
    for store in stores.values():
        with suppress(PreserveError):  # the file is gone already; other locations may hold it
            store.put(f"{ledger.TOMBSTONES}{tombstone.key}.json", io.BytesIO(body),
                      hashlib.sha256(body).hexdigest())


def tombstone_from_json(data: Mapping[str, Any]) -> Tombstone:
    """A tombstone as :func:`keep_tombstone` wrote it."""
    return Tombstone(**{**data, "deleted_at": datetime.fromisoformat(data["deleted_at"])})


def _dependent_revisits(connection: Any, file_id: int) -> int:
    """Revisits in other files whose payload digest is only held, in full, by this file."""
    here = captures.alias("here")
    elsewhere = captures.alias("elsewhere")
    other_full = captures.alias("other_full")
    held_elsewhere = select(other_full.c.id).where(
        other_full.c.payload_digest == elsewhere.c.payload_digest,
        other_full.c.record_type == "response", other_full.c.warc_file_id != file_id)
    return int(connection.execute(
        select(func.count(func.distinct(elsewhere.c.id))).select_from(elsewhere).join(here, and_(
            here.c.payload_digest == elsewhere.c.payload_digest,
            here.c.warc_file_id == file_id, here.c.record_type == "response"))
        .where(elsewhere.c.record_type == "revisit", elsewhere.c.warc_file_id != file_id,
               ~held_elsewhere.exists())).scalar_one())
