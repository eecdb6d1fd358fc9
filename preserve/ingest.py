"""Sealed WARC -> every location, verified -> catalog -> ledger.

The one place that turns a sealed WARC into a preserved, catalogued object,
for captures and imports alike. The order is the guarantee: the file is read
and indexed, written to every location and verified there, and only then
recorded in the catalog with a ledger entry, in one transaction. If the
catalog write fails, the objects this ingest created are removed again, so
neither the store nor the catalog is left half-written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from preserve import ledger
from preserve.capture.warc import SealedWarc
from preserve.catalog import catalog_reason, record_warc_file, write_transaction
from preserve.errors import CatalogError, PreserveError
from preserve.index import index_warc
from preserve.storage import ObjectStore


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


def ingest(sealed: SealedWarc, *, key: str, collection: str, source: str, engine: Engine,
           stores: Sequence[ObjectStore], actor: str,
           now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Ingested:
    """Store a sealed WARC in every location, verified, then catalogue it."""
    index = sealed.index
    if index is None:  # a file we did not write: read it
        with sealed.path.open("rb") as stream:
            index = index_warc(stream, sealed.path.name)
    verified: dict[str, datetime] = {}
    created: list[ObjectStore] = []
    try:
        for store in stores:
            existed = store.head(key) is not None
            with sealed.path.open("rb") as stream:
                store.put(key, stream, sealed.sha256)
            if not existed:
                created.append(store)
            verified[store.name] = now()
        with write_transaction(engine) as connection:
            record_warc_file(connection, key=key, collection=collection, sha256=sealed.sha256,
                             size=sealed.size, source=source, created_at=now(),
                             verified=verified, index=index)
            ledger.append(connection, time=now(), actor=actor, event="ingest", object=key,
                          digest=f"sha256:{sealed.sha256}")
    except BaseException as exc:  # interrupted too: nothing stored stays uncatalogued
        for store in created:
            with suppress(PreserveError):  # the first error is the one to report
                store.delete(key)
        if isinstance(exc, SQLAlchemyError):
            raise CatalogError(f"catalog: cannot record {key}: {catalog_reason(exc)}") from exc
        raise
    return Ingested(key=key, sha256=sealed.sha256, size=sealed.size, records=index.records,
                    captures=len(index.captures), descriptions=len(index.descriptions),
                    locations=tuple(verified))
