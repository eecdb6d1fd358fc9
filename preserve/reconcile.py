"""Reconcile: compare every storage location with the catalog, and repair copies.

For each configured location, what it holds is listed and set beside what the
catalog says it should hold:

- ``missing``: the catalog records a verified copy here, and there is no object;
- ``under-replicated``: a copy asked for at ingest was never made here;
- ``size mismatch``: the object's size is not the catalogued size;
- ``metadata mismatch``: the object's own ``sha256`` metadata (S3) is not the
  catalogued digest;
- ``unreachable``: the location cannot be listed (the others are still compared);
- ``unexpected``: an object no catalog row knows (an ingest that crashed
  between storing and cataloguing leaves one). Reported, never deleted here:
  a deletion needs a recorded reason.

Listing and metadata are cheap; contents are not re-hashed (that is
``preserve fixity run``). With ``repair``, every copy found missing, damaged or
never made is written again from another location whose bytes hash to the
digest recorded at ingest (re-hashed before they are used), verified where it
lands, recorded in the catalog (PREMIS event ``replication``) and in the ledger
(event ``repair``). With no good copy anywhere, nothing is touched and the finding
stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, update

from preserve import __version__, ledger
from preserve.catalog import StoredFile, stored_files, write_transaction
from preserve.catalog.schema import copies, events, missing_copies
from preserve.errors import PreserveError, StorageError, Unreachable
from preserve.fingerprint import iter_chunks, sha256_chunks
from preserve.ledger import LEDGER
from preserve.storage import ObjectStore, expect_copies
from preserve.storage.base import INCOMING

AGENT = f"preserve/{__version__}"  # the software that checks and repairs (PREMIS agent)
# PREMIS 3 event types (id.loc.gov/vocabulary/preservation/eventType): a check, and a
# repair, which makes a copy bit for bit identical to the ingested file ("replication").
FIXITY_CHECK = "fixity check"
REPAIR_EVENT = "replication"
MISSING = "missing"
UNDER_REPLICATED = "under-replicated"
SIZE_MISMATCH = "size mismatch"
METADATA_MISMATCH = "metadata mismatch"
UNEXPECTED = "unexpected"
UNREACHABLE = "unreachable"
REPAIRABLE = (MISSING, UNDER_REPLICATED, SIZE_MISMATCH, METADATA_MISMATCH)


@dataclass
class Discrepancy:
    """One way a location and the catalog disagree, and what was done about it."""

    kind: str
    location: str
    key: str
    detail: str
    repaired_from: str | None = None  # the location the good bytes came from
    repair_failed: str | None = None

    @property
    def open(self) -> bool:
        return self.repaired_from is None

    def __str__(self) -> str:
        return with_repair(f"{self.kind}: {self.key} in {self.location} ({self.detail})",
                           self.repaired_from, self.repair_failed)


def with_repair(text: str, repaired_from: str | None, repair_failed: str | None) -> str:
    """A finding's text, and what its repair did, if one was tried."""
    if repaired_from:
        return f"{text}: repaired from {repaired_from}"
    if repair_failed:
        return f"{text}: not repaired: {repair_failed}"
    return text


def held_objects(store: ObjectStore) -> dict[str, int]:
    """The objects a location holds, key to size, that a catalogued file should account for.

    Its workspace (``.incoming/``) and what the ledger keeps (``ledger/``) are not such
    objects.
    """
    return {info.key: info.size for info in store.list()
            if not info.key.startswith((INCOMING + "/", LEDGER))}


@dataclass
class ReconcileResult:
    """What was compared, what disagreed, what was repaired."""

    locations: list[str] = field(default_factory=list)
    objects: int = 0  # objects listed across the locations
    catalogued: int = 0  # catalogued files
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Does everything agree now (after any repairs)?"""
        return not any(item.open for item in self.discrepancies)

    def summary(self) -> str:
        repaired = sum(1 for item in self.discrepancies if not item.open)
        found = len(self.discrepancies)
        verdict = ("every location agrees with the catalog" if not found else
                   f"{found} discrepanc{'y' if found == 1 else 'ies'}"
                   f" ({repaired} repaired, {found - repaired} open)")
        return (f"{len(self.locations)} location{'' if len(self.locations) == 1 else 's'}, "
                f"{self.objects} objects, {self.catalogued} catalogued files: {verdict}")

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "locations": self.locations, "objects": self.objects,
                "catalogued": self.catalogued,
                "discrepancies": [{**asdict(item), "open": item.open}
                                  for item in self.discrepancies]}


def reconcile(engine: Engine, stores: Mapping[str, ObjectStore], *, repair: bool = False,
              actor: str = "preserve", now: Callable[[], datetime] = lambda: datetime.now(UTC),
              progress: Callable[[str], None] | None = None) -> ReconcileResult:
    """Compare every location with the catalog; with ``repair``, fix what can be fixed."""
    expect_copies(engine, stores.values())
    with engine.connect() as connection:
        files = stored_files(connection)
    by_key = {stored.key: stored for stored in files}
    result = ReconcileResult(locations=sorted(stores), catalogued=len(files))
    out_of_reach: dict[str, str] = {}  # location: why (nothing is written there)
    for name in result.locations:
        if progress is not None:
            progress(name)
        result.discrepancies.extend(_compare(stores[name], files, by_key, result,
                                             out_of_reach))
    if repair:
        for item in result.discrepancies:
            if item.kind in REPAIRABLE:
                item.repaired_from, item.repair_failed = repair_copy(
                    engine, stores, by_key[item.key], item.location, actor, now, out_of_reach)
        ledger.checkpoint(engine, stores, out_of_reach)
    return result


def _compare(store: ObjectStore, files: list[StoredFile], by_key: Mapping[str, StoredFile],
             result: ReconcileResult, out_of_reach: dict[str, str]) -> Iterator[Discrepancy]:
    name = store.name
    try:
        # (A folder whose disk is not mounted says so: expect_copies told it to.)
        listed = held_objects(store)
    except StorageError as exc:  # the others are still compared
        if isinstance(exc, Unreachable):  # not merely unlistable: no copy is written there
            out_of_reach[name] = str(exc)
        yield Discrepancy(UNREACHABLE, name, "", f"cannot list: {exc}")
        for stored in files:
            if name in dict(stored.missing):
                yield Discrepancy(UNDER_REPLICATED, name, stored.key,
                                  f"never made: {dict(stored.missing)[name]}")
        return
    result.objects += len(listed)
    here = {stored.key for stored in files if name in stored.places}
    for key in sorted(set(listed) - here):
        yield Discrepancy(UNEXPECTED, name, key, f"{listed[key]} bytes that no catalogued "
                          f"{'copy here' if key in by_key else 'file'} accounts for")
    metadata = getattr(store, "metadata_sha256", None)
    for stored in files:
        if name in dict(stored.missing):
            yield Discrepancy(UNDER_REPLICATED, name, stored.key,
                              f"never made: {dict(stored.missing)[name]}")
            continue
        if name not in stored.locations:
            continue
        if stored.key not in listed:
            yield Discrepancy(MISSING, name, stored.key, "catalogued here, no object")
        elif listed[stored.key] != stored.size:
            yield Discrepancy(SIZE_MISMATCH, name, stored.key,
                              f"catalogued {stored.size} bytes, found {listed[stored.key]}")
        elif metadata is not None:
            found = metadata(stored.key)
            if found is not None and found != stored.sha256:
                yield Discrepancy(METADATA_MISMATCH, name, stored.key,
                                  f"catalogued sha256:{stored.sha256}, metadata says "
                                  f"sha256:{found}")


def repair_copy(engine: Engine, stores: Mapping[str, ObjectStore], stored: StoredFile,
                location: str, actor: str, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                out_of_reach: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """Write a file's copy in ``location`` again from a copy that hashes to the ingest digest.

    Returns the location the good bytes came from, or why nothing was done.
    The repair is recorded in the catalog (a verified copy) and in the ledger.
    Locations found ``out_of_reach`` (name: why) are not asked, as target or source:
    each would cost the storage client's retries and timeouts.
    """
    down = out_of_reach or {}
    target = stores.get(location)
    if target is None:
        return None, f"location {location!r} is not configured"
    if location in down:
        return None, f"not tried: out of reach ({down[location]})"
    sources = [name for name in stored.locations if name != location and name in stores]
    problems = [f"{name}: not tried: out of reach" for name in sources if name in down]
    for name in (name for name in sources if name not in down):
        try:
            _check_source(stores[name], stored)
        except PreserveError as exc:
            problems.append(f"{name}: {exc}")
            continue
        try:
            retain_until = _retention_held(stores, stored, location, now(), down)
            if target.head(stored.key) is not None:
                # A damaged copy makes way for a good one: the one replacement objects
                # ever see, recorded below as a repair.
                target.delete(stored.key)
            with stores[name].open(stored.key) as stream:
                target.put(stored.key, stream, stored.sha256, retain_until=retain_until)
        except PreserveError as exc:
            return None, f"copy from {name} failed: {exc}"
        _record_repair(engine, stored, location, actor, now)
        return name, None
    return None, "no good copy to repair from" + (f" ({'; '.join(problems)})" if problems
                                                    else "")


def _retention_held(stores: Mapping[str, ObjectStore], stored: StoredFile, location: str,
                    moment: datetime, down: Mapping[str, str]) -> datetime | None:
    """The latest retention date still to come that any copy of the file holds (the
    damaged or deleted one too, in its versions): a repaired copy is given it again.
    Locations out of reach (``down``) are not asked."""
    names = {location, *stored.places}
    dates = [stores[name].retained_until(stored.key) for name in sorted(names)
             if name in stores and name not in down]
    latest = max((date for date in dates if date is not None), default=None)
    return latest if latest is not None and latest > moment else None


def _check_source(store: ObjectStore, stored: StoredFile) -> None:
    """Raise unless the store's copy has the ingest digest (re-hashed, not trusted)."""
    with store.open(stored.key) as stream:
        digest, size = sha256_chunks(iter_chunks(stream))
    if digest != stored.sha256 or size != stored.size:
        raise StorageError(f"its copy has sha256:{digest} ({size} bytes), "
                           f"not the ingest digest sha256:{stored.sha256}")


def _record_repair(engine: Engine, stored: StoredFile, location: str, actor: str,
                   now: Callable[[], datetime]) -> None:
    moment = now()
    with write_transaction(engine) as connection:
        connection.execute(delete(missing_copies).where(
            missing_copies.c.warc_file_id == stored.id, missing_copies.c.location == location))
        updated = connection.execute(update(copies).where(
            copies.c.warc_file_id == stored.id, copies.c.location == location
        ).values(verified_at=moment)).rowcount
        if not updated:
            connection.execute(insert(copies).values(warc_file_id=stored.id, location=location,
                                                     verified_at=moment))
        ledger.append(connection, time=moment, actor=actor, event="repair",
                      object=f"{location}:{stored.key}", digest=f"sha256:{stored.sha256}")
        # The PREMIS event too, whoever repaired (an audit, reconcile, an undone deletion):
        # the fixity report closes the copy's failure on it.
        connection.execute(insert(events).values(
            event_type=REPAIR_EVENT, event_date=moment, outcome="pass",
            detail="repair: written again from a copy with the ingest digest, verified",
            agent=AGENT, object=stored.key,
            collection=stored.collection, location=location))

