"""``preserve reindex``: the catalog rebuilt from storage alone.

Storage holds the archive: the WARC files (captures, imports and the companion
WARCs of descriptions), the ledger's checkpoints (every entry of the chain, see
:mod:`preserve.ledger`) and the tombstones of deleted files. From them this
rebuilds every table that describes the archive: the files with their copies
and missing copies, every record (captures, descriptions and the others), the
tombstones and the ledger. The operational tables (fixity events and runs,
jobs) are kept as they are.

First the catalog's ledger is checkpointed, so that storage holds every entry
it has. Then each file is read from a copy that has its ingest digest (or, with
none, the best there is, and said so) into a working folder, and indexed as an
import is, before anything in the catalog changes. The catalog is then replaced
in one transaction, compared with what it replaced, and the differences are
reported; with ``check``, the transaction is rolled back and only the
comparison is left. A catalog whose ledger holds entries the checkpoints do not
(every copy of a checkpoint damaged) is not replaced: those entries would be lost.

Where storage does not say, the ledger does: a file's collection is in its key,
its time is its ingest entry's, a copy's verification time is its ingest or its
latest repair, a copy missing since ingest has an ``under-replicated`` entry. A
file that has no ingest entry in the checkpoints (its run stopped before it
could checkpoint) is catalogued with a new ingest entry, and reported.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from preserve import ledger
from preserve.catalog import record_warc_file, write_transaction
from preserve.catalog.schema import (
    captures,
    copies,
    descriptions,
    missing_copies,
    other_records,
    tombstones,
    warc_files,
)
from preserve.catalog.schema import (
    ledger as ledger_table,
)
from preserve.config import Settings
from preserve.deletion import tombstone_from_json
from preserve.errors import PreserveError
from preserve.fingerprint import sha256_copy
from preserve.index import WarcIndex
from preserve.ingest import UNDER_REPLICATED
from preserve.storage import ObjectStore, open_stores
from preserve.storage.base import INCOMING
from preserve.workdir import private_folder

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wacz")
# The tables rebuilt, children first (the order they are emptied in).
REBUILT = (descriptions, other_records, captures, missing_copies, copies, warc_files,
           tombstones, ledger_table)


@dataclass
class ReindexReport:
    """What was rebuilt, and how it compares with the catalog it replaced."""

    files: int = 0
    records: int = 0
    captures: int = 0
    descriptions: int = 0
    ledger_entries: int = 0
    tombstones: int = 0
    checked_only: bool = False
    # Why the catalog was left as it was (its ledger holds entries storage has lost).
    refused: str | None = None
    replaced_empty: bool = False  # the catalog had nothing (lost): there was nothing to compare
    # table -> rows the old catalog had that the rebuilt one has not, and the reverse
    differences: dict[str, dict[str, int]] = field(default_factory=dict)
    unledgered: list[str] = field(default_factory=list)  # given a new ingest entry
    problems: list[str] = field(default_factory=list)  # what storage could not give

    @property
    def equal(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "equal": self.equal}


@dataclass
class _File:
    """A WARC file as storage and the ledger give it."""

    key: str
    locations: dict[str, int]  # location -> size there
    ingest: ledger.LedgerEntry | None = None
    index: WarcIndex | None = None
    sha256: str = ""
    size: int = 0


def reindex(settings: Settings, engine: Engine, *, check: bool = False,
            progress: Callable[[int, int, str], None] | None = None,
            now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> ReindexReport:
    """Rebuild the catalog from storage (``check``: only compare); see the module."""
    stores = open_stores(settings.locations)
    report = ReindexReport(checked_only=check)
    ledger.checkpoint(engine, stores)
    chain = _stored_chain(stores, report)
    files = _stored_files(stores, chain, report)
    graves = _stored_tombstones(stores, report)
    for number, stored in enumerate(files, start=1):
        if progress is not None:
            progress(number, len(files), stored.key)
        _read(stored, stores, settings.work_dir, report)
    files = [stored for stored in files if stored.index is not None]
    try:
        with write_transaction(engine) as connection:
            before = catalog_contents(connection)
            report.refused = _ledger_lost(list(ledger.entries(connection)), chain)
            if report.refused:
                report.problems.append(report.refused)
                raise _CheckedOnly
            for table in REBUILT:
                connection.execute(delete(table))
            if chain:
                connection.execute(insert(ledger_table), [asdict(entry) for entry in chain])
            copy_events = _copy_events(chain)
            for stored in files:
                _record(connection, stored, copy_events.get(stored.key, []), settings.operator,
                        now, report)
            if graves:
                connection.execute(insert(tombstones), [asdict(grave) for grave in graves])
            report.replaced_empty = not any(before.values())
            if not report.replaced_empty:
                report.differences = _differences(before, catalog_contents(connection))
            if check:
                raise _CheckedOnly
    except _CheckedOnly:
        pass
    report.ledger_entries = len(chain) + len(report.unledgered)
    report.tombstones = len(graves)
    if not check and not report.refused:
        ledger.checkpoint(engine, stores)
    return report


def _ledger_lost(held: list[ledger.LedgerEntry], chain: list[ledger.LedgerEntry]) -> str | None:
    """Why the catalog must not be replaced: its ledger holds entries that the chain
    rebuilt from the checkpoints does not (they would be lost); None when it does not."""
    for at, entry in enumerate(held):
        if at >= len(chain):
            return (f"the catalog's ledger has {len(held)} entries and the checkpoints in "
                    f"storage only {len(chain)}: nothing was replaced (entry {entry.seq} on "
                    "would be lost; ledger verify names what is wrong in storage)")
        if chain[at].hash != entry.hash:
            return (f"ledger entry {entry.seq} in the catalog differs from the one the "
                    "checkpoints hold: nothing was replaced (ledger verify names which is "
                    "wrong)")
    return None


class _CheckedOnly(Exception):
    """Raised to roll back the rebuilt catalog of a ``check``."""


def _stored_chain(stores: Mapping[str, ObjectStore],
                  report: ReindexReport) -> list[ledger.LedgerEntry]:
    """The chain the checkpoints hold, from its first entry to the first gap or break; of
    an entry that locations hold differently, the one that follows the entry before."""
    found: dict[int, list[ledger.LedgerEntry]] = {}
    for name, store in sorted(stores.items()):
        try:
            for _key, entry in ledger.checkpointed_entries(store, report.problems):
                if entry.event:  # a checkpoint of the head alone, from before entries were kept
                    found.setdefault(entry.seq, []).append(entry)
        except PreserveError as exc:
            report.problems.append(f"ledger checkpoints in {name} cannot be read: {exc}")
    chain: list[ledger.LedgerEntry] = []
    prev_hash = ledger.GENESIS_HASH
    for seq in range(1, max(found, default=0) + 1):
        sound = [at for at in found.get(seq, []) if at.prev_hash == prev_hash
                 and at.hash == ledger.entry_hash(at.seq, at.time, at.actor, at.event,
                                                  at.object, at.digest, at.prev_hash)]
        if not sound:
            report.problems.append(f"ledger entry {seq} is "
                                   f"{'broken in' if seq in found else 'missing from'} the "
                                   f"checkpoints: the chain is rebuilt up to entry {seq - 1}")
            break
        chain.append(sound[0])
        prev_hash = sound[0].hash
    return chain


def _stored_files(stores: Mapping[str, ObjectStore], chain: list[ledger.LedgerEntry],
                  report: ReindexReport) -> list[_File]:
    """The WARC files in storage that the ledger has not seen deleted, in the order they
    were ingested (those the ledger does not know last, by key)."""
    found: dict[str, _File] = {}
    for name, store in sorted(stores.items()):
        try:
            for info in store.list():
                if info.key.startswith((INCOMING + "/", ledger.LEDGER)):
                    continue
                if not info.key.endswith(WARC_SUFFIXES):
                    report.problems.append(f"{name}: {info.key}: not a WARC, ARC or WACZ file; "
                                           "left out")
                    continue
                found.setdefault(info.key, _File(info.key, {})).locations[name] = info.size
        except PreserveError as exc:
            report.problems.append(f"location {name} cannot be listed: {exc}")
    last: dict[str, ledger.LedgerEntry] = {}
    for entry in chain:
        if entry.event in ("ingest", "delete"):
            last[entry.object] = entry
    ordered = sorted(found.values(), key=lambda stored: (
        last[stored.key].seq if stored.key in last else len(chain) + 1, stored.key))
    files = []
    for stored in ordered:
        known = last.get(stored.key)
        if known is not None and known.event == "delete":
            report.problems.append(f"{stored.key}: deleted (ledger entry {known.seq}) but still "
                                   f"in {', '.join(sorted(stored.locations))}; left out")
            continue
        stored.ingest = known
        files.append(stored)
    return files


def _stored_tombstones(stores: Mapping[str, ObjectStore],
                       report: ReindexReport) -> list[Any]:
    graves: dict[str, Any] = {}
    for name, store in sorted(stores.items()):
        try:
            keys = [info.key for info in store.list(ledger.TOMBSTONES)]
            for key in keys:
                if key.removeprefix(ledger.TOMBSTONES).removesuffix(".json") in graves:
                    continue
                with store.open(key) as stream:
                    grave = tombstone_from_json(json.loads(stream.read()))
                graves[grave.key] = grave
        except (PreserveError, ValueError, TypeError, KeyError) as exc:
            report.problems.append(f"tombstones in {name} cannot be read: {exc}")
    return sorted(graves.values(), key=lambda grave: (grave.deleted_at, grave.key))


def _read(stored: _File, stores: Mapping[str, ObjectStore], work_dir: Path,
          report: ReindexReport) -> None:
    """Index a file from a copy with its ingest digest (else from the first readable copy,
    and say so), staged in the working folder."""
    from preserve.importer import read_through

    expected = stored.ingest.digest.removeprefix("sha256:") if stored.ingest else None
    with private_folder(work_dir, "reindex-", "reindex: cannot make a folder in {work} to "
                        "read stored files in ({problem})") as folder:
        chosen: tuple[str, Path, str] | None = None
        for location in sorted(stored.locations):
            staged = folder / f"{location}-{Path(stored.key).name}"
            try:
                with stores[location].open(stored.key) as source, staged.open("wb") as out:
                    digest, _size = sha256_copy(source, out)
            except (PreserveError, OSError) as exc:
                report.problems.append(f"{stored.key}: its copy in {location} cannot be read "
                                       f"({exc})")
                continue
            if chosen is None or digest == expected:
                chosen = (location, staged, digest)
            if expected is None or digest == expected:
                break
        if chosen is None:
            report.problems.append(f"{stored.key}: no copy could be read; left out")
            return
        location, staged, digest = chosen
        if expected is not None and digest != expected:
            report.problems.append(f"{stored.key}: no copy has the ingest digest "
                                   f"sha256:{expected}; indexed from the copy in {location}")
        try:
            plan = read_through(staged, lambda _sha256: stored.key, lenient=True)
        except (PreserveError, OSError, zipfile.BadZipFile) as exc:
            report.problems.append(f"{stored.key}: cannot be indexed ({exc}); left out")
            return
    stored.index, stored.sha256, stored.size = plan.index, plan.sha256, plan.size
    if expected is not None:
        stored.sha256 = expected  # the ingest digest stands; fixity names a bad copy


def _copy_events(chain: list[ledger.LedgerEntry]) -> dict[str, list[ledger.LedgerEntry]]:
    """The ledger's entries about a file's copies (``repair``, ``under-replicated``: their
    object is ``LOCATION:KEY``), by key, in chain order."""
    events: dict[str, list[ledger.LedgerEntry]] = {}
    for entry in chain:
        if entry.event in ("repair", UNDER_REPLICATED):
            events.setdefault(entry.object.partition(":")[2], []).append(entry)
    return events


def _record(connection: Connection, stored: _File, copy_events: list[ledger.LedgerEntry],
            operator: str, now: Callable[[], datetime], report: ReindexReport) -> None:
    assert stored.index is not None
    key = stored.key
    if stored.ingest is None:
        created = now()
        ledger.append(connection, time=created, actor=f"preserve reindex ({operator})",
                      event="ingest", object=key, digest=f"sha256:{stored.sha256}")
        report.unledgered.append(key)
    else:
        created = datetime.fromisoformat(stored.ingest.time)
    verified = dict.fromkeys(stored.locations, created)
    missing: dict[str, str] = {}
    for entry in copy_events:
        location = entry.object.partition(":")[0]
        if entry.event == "repair":
            verified[location] = datetime.fromisoformat(entry.time)
            missing.pop(location, None)
        elif entry.event == UNDER_REPLICATED:
            # Never made, whatever the location holds under the key (other bytes, say).
            missing[location] = (f"no verified copy since ingest (ledger entry {entry.seq}); "
                                 "rebuilt by preserve reindex")
            verified.pop(location, None)
    verified = {location: when for location, when in verified.items()
                if location in stored.locations}
    parts = key.split("/")
    collection = parts[1] if len(parts) > 2 else "default"
    source = ("import" if key.startswith("imports/") else
              "redescribe" if stored.index.info.get("policy") == "redescribe" else "capture")
    record_warc_file(connection, key=key, collection=collection, sha256=stored.sha256,
                     size=stored.size, source=source, created_at=created, verified=verified,
                     index=stored.index, missing=missing)
    report.files += 1
    report.records += stored.index.records
    report.captures += len(stored.index.captures)
    report.descriptions += len(stored.index.descriptions)


def catalog_contents(connection: Connection) -> dict[str, Counter[tuple[Any, ...]]]:
    """The rebuilt tables' rows, without their own IDs (a file is known by its key, a
    capture by its record ID): what two catalogs of the same archive must share."""
    keys = dict(connection.execute(select(warc_files.c.id, warc_files.c.key)).all())
    record_ids = dict(connection.execute(select(captures.c.id, captures.c.record_id)).all())

    def rows(table: Any, replace: Mapping[str, Mapping[Any, Any]],
             leave: tuple[str, ...] = ()) -> Counter[tuple[Any, ...]]:
        names = [column.name for column in table.columns
                 if column.name != "id" and column.name not in leave]
        found: Counter[tuple[Any, ...]] = Counter()
        for row in connection.execute(select(*[table.c[name] for name in names])):
            found[tuple(replace[name].get(value, value) if name in replace else value
                        for name, value in zip(names, row, strict=True))] += 1
        return found

    by_file = {"warc_file_id": keys}
    return {
        "warc_files": rows(warc_files, {}),
        "copies": rows(copies, by_file),
        "missing_copies": rows(missing_copies, by_file, leave=("problem", "noted_at")),
        "captures": rows(captures, by_file),
        "other_records": rows(other_records, by_file),
        "descriptions": rows(descriptions, {"capture_id": record_ids}),
        "tombstones": rows(tombstones, {}),
        "ledger": rows(ledger_table, {}),
    }


def _differences(before: Mapping[str, Counter[tuple[Any, ...]]],
                 after: Mapping[str, Counter[tuple[Any, ...]]]) -> dict[str, dict[str, int]]:
    found = {}
    for table, old in before.items():
        new = after[table]
        gone, added = sum((old - new).values()), sum((new - old).values())
        if gone or added:
            found[table] = {"only_before": gone, "only_after": added}
    return found
