"""The append-only, hash-chained event log.

Each entry is ``{seq, time, actor, event, object, digest, prev_hash, hash}``;
``hash`` is the SHA-256 of the entry's other fields in canonical JSON, and
``prev_hash`` is the previous entry's hash (64 zeros for the first). Changing,
removing or reordering any entry breaks every hash after it, which
:func:`verify` finds and names.

A chain rewritten whole, every hash recomputed, would still be consistent.
So the chain is checkpointed to object storage after every command and job that
adds to it (:func:`checkpoint`): an immutable object per checkpoint, under
``ledger/checkpoints/``, holding the head's seq and hash and every entry since
the location's previous checkpoint. :func:`verify_checkpoints` proves that the
chain still holds every checkpointed entry with the hash it had then, and
``preserve reindex`` rebuilds the chain from them.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, insert, select, text

from preserve.catalog.schema import ledger, tombstones, warc_files
from preserve.errors import PreserveError
from preserve.numbers import is_digits

if TYPE_CHECKING:
    from preserve.storage import ObjectStore

GENESIS_HASH = "0" * 64
LEDGER = "ledger/"  # in every location: what the ledger keeps there, not WARC files
CHECKPOINTS = f"{LEDGER}checkpoints/"
DELETE_REASON = "delete reason"  # the entry after a deletion's: its reason's digest
TOMBSTONES = f"{LEDGER}tombstones/"  # what deleted files were, for a rebuilt catalog
CHECKPOINT_ENTRIES = 10_000  # at most this many entries in one checkpoint object
# A checkpoint holding its entries; one without (from before they were kept) holds the head.
WITH_ENTRIES = ".entries.json"


@dataclass(frozen=True)
class LedgerEntry:
    """One event in the chain."""

    seq: int
    time: str
    actor: str
    event: str
    object: str
    digest: str
    prev_hash: str
    hash: str


@dataclass
class LedgerCheck:
    """The result of walking the chain: passed, and what broke where."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def entry_hash(seq: int, time: str, actor: str, event: str, object: str, digest: str,
               prev_hash: str) -> str:
    """SHA-256 of an entry's fields in canonical JSON."""
    body = {"seq": seq, "time": time, "actor": actor, "event": event, "object": object,
            "digest": digest, "prev_hash": prev_hash}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append(connection: Connection, *, time: datetime, actor: str, event: str, object: str,
           digest: str) -> LedgerEntry:
    """Append one entry inside the caller's transaction."""
    if connection.dialect.name == "postgresql":
        # One appender at a time: the head read below must still be the head at insert.
        connection.execute(text("LOCK TABLE ledger IN EXCLUSIVE MODE"))
    head = connection.execute(
        select(ledger.c.seq, ledger.c.hash).order_by(ledger.c.seq.desc()).limit(1)
    ).first()
    seq = head.seq + 1 if head else 1
    prev_hash = head.hash if head else GENESIS_HASH
    stamp = time.isoformat()
    entry = LedgerEntry(seq, stamp, actor, event, object, digest, prev_hash,
                        entry_hash(seq, stamp, actor, event, object, digest, prev_hash))
    connection.execute(insert(ledger).values(**asdict(entry)))
    return entry


def entries(connection: Connection, after: int = 0) -> Iterator[LedgerEntry]:
    """Every entry (after seq ``after``), in sequence order."""
    for row in connection.execute(select(ledger).where(ledger.c.seq > after)
                                  .order_by(ledger.c.seq)):
        yield LedgerEntry(**row._mapping)


def verify(connection: Connection) -> LedgerCheck:
    """Prove the chain and the catalog: name what was changed, removed or reordered.

    The chain is walked to its first broken entry. Then every catalogued WARC
    file must have an ingest entry whose digest is the catalog's digest, so an
    edited catalog row is found even when the chain itself is intact.
    """
    check = LedgerCheck()
    ingested: dict[str, str] = {}
    deleted: dict[str, LedgerEntry] = {}
    reasons: dict[str, str] = {}
    prev_hash = GENESIS_HASH
    expected_seq = 1
    for entry in entries(connection):
        check.entries += 1
        if entry.event == "ingest":
            ingested[entry.object] = entry.digest
        elif entry.event == "delete":
            deleted[entry.object] = entry
        elif entry.event == DELETE_REASON:
            reasons[entry.object] = entry.digest
        if entry.seq != expected_seq:
            check.problems.append(f"entry {expected_seq} is missing (next is {entry.seq})")
        elif entry.prev_hash != prev_hash:
            check.problems.append(f"entry {entry.seq} does not follow entry {entry.seq - 1}")
        elif entry.hash != entry_hash(entry.seq, entry.time, entry.actor, entry.event,
                                      entry.object, entry.digest, entry.prev_hash):
            check.problems.append(f"entry {entry.seq} was altered: its hash does not match")
        if check.problems:
            return check
        prev_hash = entry.hash
        expected_seq += 1
    for key, sha256 in connection.execute(
            select(warc_files.c.key, warc_files.c.sha256).order_by(warc_files.c.key)):
        recorded = ingested.get(key)
        if recorded is None:
            check.problems.append(f"catalogued file {key} has no ingest entry in the ledger")
        elif recorded != f"sha256:{sha256}":
            check.problems.append(f"catalogued file {key} has sha256:{sha256}, "
                                  f"the ledger recorded {recorded}")
    check.problems.extend(_tombstone_problems(connection, deleted, reasons))
    return check


def reason_digest(reason: str) -> str:
    """What the ledger keeps of a deletion's reason (its ``delete reason`` entry)."""
    return f"sha256:{hashlib.sha256(reason.encode('utf-8')).hexdigest()}"


def _tombstone_problems(connection: Connection, deleted: Mapping[str, LedgerEntry],
                        reasons: Mapping[str, str]) -> Iterator[str]:
    """Each tombstone as its deletion's ledger entries recorded it (digest, who, why), and
    a tombstone for each deletion: a tombstone edited or removed is named."""
    stones = {row.key: row for row in connection.execute(select(tombstones))}
    for key, entry in sorted(deleted.items()):
        row = stones.get(key)
        if row is None:
            yield f"deleted file {key} has no tombstone (the ledger recorded its deletion)"
            continue
        if entry.digest != f"sha256:{row.sha256}":
            yield (f"tombstone of {key} has sha256:{row.sha256}, the ledger recorded "
                   f"{entry.digest}")
        if entry.actor != row.actor:
            yield (f"tombstone of {key} names {row.actor!r} as who deleted it, the ledger "
                   f"{entry.actor!r}")
        # (deletions recorded before reasons were chained have no such entry)
        if key in reasons and reasons[key] != reason_digest(row.reason):
            yield f"tombstone of {key} gives a reason other than the one recorded"
    for key in sorted(set(stones) - set(deleted)):
        yield f"tombstone of {key} has no deletion in the ledger"


def head(connection: Connection) -> LedgerEntry | None:
    """The newest entry, or None for an empty ledger."""
    row = connection.execute(select(ledger).order_by(ledger.c.seq.desc()).limit(1)).first()
    return LedgerEntry(**row._mapping) if row else None


def checkpoint(engine: Engine, stores: Mapping[str, ObjectStore],
               out_of_reach: Collection[str] = (),
               ) -> tuple[LedgerEntry | None, list[str]]:
    """Checkpoint the chain to every location, where a rewrite of the whole chain cannot
    reach it; the head and the locations that hold it now.

    Each location gets the entries since its own newest checkpoint, in objects of at
    most ``CHECKPOINT_ENTRIES``. A location that cannot take them is left out, and
    the caller hears which did; so is one the caller found ``out_of_reach`` already
    (not asked, which would cost the client's retries and timeouts once more).
    """
    from preserve.storage import expect_copies

    expect_copies(engine, stores.values())  # a folder not in place is not made anew
    with engine.connect() as connection:
        newest = head(connection)
        if newest is None:
            return None, []
        written = []
        for name, store in sorted(stores.items()):
            if name in out_of_reach:
                continue
            try:
                since = max((seq for seq, key in _checkpoint_keys(store)
                             if key.endswith(WITH_ENTRIES)), default=0)
                pending = list(entries(connection, after=since))
                for start in range(0, len(pending), CHECKPOINT_ENTRIES):
                    _write_checkpoint(store, pending[start:start + CHECKPOINT_ENTRIES])
            except PreserveError:
                continue
            written.append(name)
    return newest, written


def _write_checkpoint(store: ObjectStore, chunk: list[LedgerEntry]) -> None:
    last = chunk[-1]
    body = json.dumps({"seq": last.seq, "hash": last.hash, "time": last.time,
                       "entries": [asdict(entry) for entry in chunk]},
                      sort_keys=True, ensure_ascii=False).encode("utf-8")
    store.put(f"{CHECKPOINTS}{last.seq:012d}-{last.hash}{WITH_ENTRIES}", io.BytesIO(body),
              hashlib.sha256(body).hexdigest())


def _checkpoint_keys(store: ObjectStore) -> Iterator[tuple[int, str]]:
    """The (seq, key) of each checkpoint in a location."""
    for info in store.list(CHECKPOINTS):
        seq_text, _, _rest = info.key.removeprefix(CHECKPOINTS).partition("-")
        if is_digits(seq_text):
            yield int(seq_text), info.key


def checkpointed_entries(store: ObjectStore, problems: list[str]
                         ) -> Iterator[tuple[str, LedgerEntry]]:
    """Every entry a location's checkpoints hold, with the checkpoint's key (a checkpoint
    written before entries were kept in them gives its head alone, with no fields but
    seq and hash). A checkpoint that cannot be read is named in ``problems`` and the
    others are read on."""
    for _seq, key in sorted(_checkpoint_keys(store)):
        try:
            with store.open(key) as stream:
                body = json.loads(stream.read())
            if "entries" not in body:
                found = [LedgerEntry(int(body["seq"]), str(body.get("time", "")), "", "", "",
                                     "", "", str(body["hash"]))]
            else:
                found = [LedgerEntry(**fields) for fields in body["entries"]]
        except (PreserveError, ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"ledger checkpoint {key} cannot be read ({type(exc).__name__}: "
                            f"{exc})")
            continue
        for entry in found:
            yield key, entry


def verify_checkpoints(connection: Connection, stores: Mapping[str, ObjectStore]
                       ) -> list[str]:
    """Problems: checkpointed entries the chain no longer holds with the same hash (for
    each checkpoint, the first such entry)."""
    hashes = {seq: digest for seq, digest in connection.execute(select(ledger.c.seq,
                                                                       ledger.c.hash))}
    problems: list[str] = []
    holding: set[str] = set()  # the locations that hold a checkpoint
    for name, store in sorted(stores.items()):
        named: set[str] = set()
        try:
            for key, entry in checkpointed_entries(store, problems):
                holding.add(name)
                if key in named:
                    continue
                if entry.seq not in hashes:
                    problems.append(f"entry {entry.seq} is gone: checkpoint {key} in {name} "
                                    "holds it")
                elif hashes[entry.seq] != entry.hash:
                    problems.append(f"entry {entry.seq} was rewritten: checkpoint {key} in "
                                    f"{name} recorded hash {entry.hash}, the ledger has "
                                    f"{hashes[entry.seq]}")
                else:
                    continue
                named.add(key)
        except PreserveError as exc:
            problems.append(f"checkpoints in {name} cannot be read: {exc}")
            holding.add(name)  # named already
    # Every command that adds to the chain checkpoints it to every location it reaches:
    # a chain with entries and no checkpoint anywhere cannot be proven (a rewritten chain
    # would verify), and a location without one lost them, or was never reached.
    if hashes and not holding:
        problems.append("no location holds a ledger checkpoint (ledger/checkpoints/): the "
                        "chain cannot be proven against storage")
    elif hashes:
        problems.extend(f"{name} holds no ledger checkpoint (ledger/checkpoints/): removed, "
                        "or never reached since the chain began" for name in sorted(stores)
                        if name not in holding)
    return problems
