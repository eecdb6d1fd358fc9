"""Sealed WARC -> every location, verified -> catalog -> ledger.

The one place that turns a sealed WARC into a preserved, catalogued object,
for captures and imports alike. The order is the guarantee: the file is read
and indexed, written to every location and verified there, and only then
recorded in the catalog with a ledger entry, in one transaction. If the
catalog write fails, the objects this ingest created are removed again, so
neither the store nor the catalog is left half-written.

A copy that fails is tried again (``copy_attempts`` in all, the wait doubling
each time). One that still fails does not lose the file when another copy
holds: the file is catalogued with the copies that were verified and the
missing one noted with its reason (under-replicated, which ``get`` and
``fixity`` report) until a repair makes it. With no copy at all, nothing is
catalogued and the error stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from preserve import ledger
from preserve.capture.warc import SealedWarc
from preserve.catalog import catalog_reason, record_warc_file, write_transaction
from preserve.errors import (
    CatalogError,
    NotInPlace,
    ObjectExists,
    PreserveError,
    StorageError,
)
from preserve.index import index_warc
from preserve.storage import ObjectInfo, ObjectStore

COPY_ATTEMPTS = 3
# The ledger event of a copy asked for that could not be made (a ``repair`` makes it).
UNDER_REPLICATED = "under-replicated"


@dataclass(frozen=True)
class Ingested:
    """A WARC file that is now preserved and catalogued."""

    key: str
    sha256: str
    size: int
    records: int
    captures: int
    descriptions: int
    locations: tuple[str, ...]
    missing: dict[str, str] = field(default_factory=dict)  # location -> why there is no copy
    # Asked to retain: location -> the retention date it holds, or None where it cannot.
    retention: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Copies:
    """A file's copies: the locations written and verified, the ones that could not be
    (with why), the retention dates held, and the stores where this put a new object
    (what :func:`discard` removes again)."""

    verified: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    retention: dict[str, str | None] = field(default_factory=dict)
    created: list[ObjectStore] = field(default_factory=list)


def store_copies(path: Path, sha256: str, key: str, stores: Sequence[ObjectStore], *,
                 copy_attempts: int = COPY_ATTEMPTS, backoff_seconds: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep,
                 retain_until: datetime | None = None) -> Copies:
    """Write the file under key in every location and verify each copy; the last
    storage error when no copy could be made (then nothing is left behind).

    With ``retain_until`` (a policy's ``retention_years``), locations that can
    hold retention dates write the objects with it; ``retention`` says which did.
    """
    copies = Copies()
    try:
        for store in stores:
            try:
                existed = store.head(key) is not None
            except StorageError:  # out of reach now: the copy is tried all the same, and a
                existed = True    # failed ingest leaves an object it may not have made
            copied = _copy(path, sha256, key, store, copy_attempts, backoff_seconds, sleep,
                           retain_until)
            if isinstance(copied, StorageError):
                copies.missing[store.name] = str(copied)
                if not copies.verified and len(copies.missing) == len(stores):
                    raise copied
                continue
            if not existed:
                copies.created.append(store)
            copies.verified.append(store.name)
            if retain_until is not None:
                copies.retention[store.name] = (copied.retained_until.isoformat()
                                                if copied.retained_until else None)
    except BaseException:  # interrupted too: what this put in place goes again
        discard(copies, key)
        raise
    return copies


def discard(copies: Copies, key: str) -> None:
    """Remove the objects a :func:`store_copies` created (the file is not to be kept)."""
    for store in copies.created:
        with suppress(PreserveError):  # the first error is the one to report
            store.delete(key)


def ingest(sealed: SealedWarc, *, key: str, collection: str, source: str, engine: Engine,
           stores: Sequence[ObjectStore], actor: str,
           now: Callable[[], datetime] = lambda: datetime.now(UTC),
           copy_attempts: int = COPY_ATTEMPTS, backoff_seconds: float = 1.0,
           sleep: Callable[[float], None] = time.sleep,
           retain_until: datetime | None = None, copies: Copies | None = None) -> Ingested:
    """Store a sealed WARC in every location, verified, then catalogue it.

    With ``retain_until`` (a policy's ``retention_years``), locations that can
    hold retention dates write the objects with it; which did is returned.
    ``copies``, when given, are the copies already made (by :func:`store_copies`,
    while the file was still being read): they are catalogued, not made again.
    """
    index = sealed.index
    if index is None:  # a file we did not write: read it
        with sealed.path.open("rb") as stream:
            index = index_warc(stream, sealed.path.name)
    try:
        if copies is None:
            copies = store_copies(sealed.path, sealed.sha256, key, stores,
                                  copy_attempts=copy_attempts, backoff_seconds=backoff_seconds,
                                  sleep=sleep, retain_until=retain_until)
        # One moment for the file, its copies and its ledger entries: what a catalog
        # rebuilt from storage (the copies and the ledger's checkpoints) will say.
        moment = now()
        digest = f"sha256:{sealed.sha256}"
        with write_transaction(engine) as connection:
            record_warc_file(connection, key=key, collection=collection, sha256=sealed.sha256,
                             size=sealed.size, source=source, created_at=moment,
                             verified=dict.fromkeys(copies.verified, moment), index=index,
                             missing=copies.missing)
            ledger.append(connection, time=moment, actor=actor, event="ingest", object=key,
                          digest=digest)
            for location in sorted(copies.missing):
                ledger.append(connection, time=moment, actor=actor, event=UNDER_REPLICATED,
                              object=f"{location}:{key}", digest=digest)
    except BaseException as exc:  # interrupted too: nothing stored stays uncatalogued
        if copies is not None:
            discard(copies, key)
        if isinstance(exc, SQLAlchemyError):
            raise CatalogError(f"catalog: cannot record {key}: {catalog_reason(exc)}") from exc
        raise
    return Ingested(key=key, sha256=sealed.sha256, size=sealed.size, records=index.records,
                    captures=len(index.captures), descriptions=len(index.descriptions),
                    locations=tuple(copies.verified), missing=copies.missing,
                    retention=copies.retention)


def _copy(path: Path, sha256: str, key: str, store: ObjectStore, attempts: int,
          backoff: float, sleep: Callable[[float], None], retain_until: datetime | None
          ) -> ObjectInfo | StorageError:
    """Put one verified copy, trying again after storage errors: the object, or the last error."""
    failure = StorageError(f"location {store.name!r}: no attempt to copy {key}")
    for attempt in range(1, attempts + 1):
        try:
            with path.open("rb") as stream:
                return store.put(key, stream, sha256, retain_until=retain_until)
        except ObjectExists as exc:  # other bytes under our key: trying again cannot help
            return exc
        except NotInPlace as exc:  # a folder whose disk is not mounted: not in seconds
            return exc
        except StorageError as exc:
            failure = exc
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    return failure
