"""The append-only, hash-chained event log.

Each entry is ``{seq, time, actor, event, object, digest, prev_hash, hash}``;
``hash`` is the SHA-256 of the entry's other fields in canonical JSON, and
``prev_hash`` is the previous entry's hash (64 zeros for the first). Changing,
removing or reordering any entry breaks every hash after it, which
:func:`verify` finds and names.

A chain rewritten whole, every hash recomputed, would still be consistent.
So the head of the chain is checkpointed to object storage after each audit
(:func:`write_checkpoint`: an immutable object per checkpoint, under
``ledger/checkpoints/``), and :func:`verify_checkpoints` proves that the chain
still holds every checkpointed entry with the hash it had then.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, insert, select, text

from preserve.catalog.schema import ledger, warc_files
from preserve.errors import PreserveError

if TYPE_CHECKING:
    from preserve.storage import ObjectStore

GENESIS_HASH = "0" * 64
CHECKPOINTS = "ledger/checkpoints/"


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


def entries(connection: Connection) -> Iterator[LedgerEntry]:
    """Every entry, in sequence order."""
    for row in connection.execute(select(ledger).order_by(ledger.c.seq)):
        yield LedgerEntry(**row._mapping)


def verify(connection: Connection) -> LedgerCheck:
    """Prove the chain and the catalog: name what was changed, removed or reordered.

    The chain is walked to its first broken entry. Then every catalogued WARC
    file must have an ingest entry whose digest is the catalog's digest, so an
    edited catalog row is found even when the chain itself is intact.
    """
    check = LedgerCheck()
    ingested: dict[str, str] = {}
    prev_hash = GENESIS_HASH
    expected_seq = 1
    for entry in entries(connection):
        check.entries += 1
        if entry.event == "ingest":
            ingested[entry.object] = entry.digest
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
    return check


def head(connection: Connection) -> LedgerEntry | None:
    """The newest entry, or None for an empty ledger."""
    row = connection.execute(select(ledger).order_by(ledger.c.seq.desc()).limit(1)).first()
    return LedgerEntry(**row._mapping) if row else None


def checkpoint(engine: Engine, stores: Mapping[str, ObjectStore],
               ) -> tuple[LedgerEntry | None, list[str]]:
    """Checkpoint the ledger's head to every location, where a rewrite of the whole
    chain cannot reach it (after each audit); the head and the keys written."""
    with engine.connect() as connection:
        newest = head(connection)
    return newest, write_checkpoint(stores, newest) if newest else []


def write_checkpoint(stores: Mapping[str, ObjectStore], entry: LedgerEntry) -> list[str]:
    """Store the head's seq and hash in every location; the keys written (one per location).

    A checkpoint already there is kept (the same bytes); a location that cannot
    take it is left out, and the caller hears which did.
    """
    body = json.dumps({"seq": entry.seq, "hash": entry.hash, "time": entry.time},
                      sort_keys=True).encode()
    key = f"{CHECKPOINTS}{entry.seq:012d}-{entry.hash}.json"
    written = []
    for name, store in sorted(stores.items()):
        try:
            store.put(key, io.BytesIO(body), hashlib.sha256(body).hexdigest())
        except PreserveError:
            continue
        written.append(name)
    return written


def verify_checkpoints(connection: Connection, stores: Mapping[str, ObjectStore]
                       ) -> list[str]:
    """Problems: checkpointed entries the chain no longer holds with the same hash."""
    hashes = {seq: digest for seq, digest in connection.execute(select(ledger.c.seq,
                                                                       ledger.c.hash))}
    problems = []
    for name, store in sorted(stores.items()):
        try:
            keys = [info.key for info in store.list(CHECKPOINTS)]
        except PreserveError as exc:
            problems.append(f"checkpoints in {name} cannot be listed: {exc}")
            continue
        for key in keys:
            seq_text, _, rest = key.removeprefix(CHECKPOINTS).partition("-")
            checkpointed = rest.removesuffix(".json")
            if not seq_text.isdigit():
                continue
            seq = int(seq_text)
            if seq not in hashes:
                problems.append(f"entry {seq} is gone: checkpoint {key} in {name} holds it")
            elif hashes[seq] != checkpointed:
                problems.append(f"entry {seq} was rewritten: checkpoint {key} in {name} "
                                f"recorded hash {checkpointed}, the ledger has {hashes[seq]}")
    return problems
