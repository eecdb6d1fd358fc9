"""Fixity audits: re-hash every copy of every stored object against the catalog.

Results are data, not exceptions: a :class:`FixityResult` lists typed
findings (each naming object and location; in deep mode the record too), and
the command turns them into an exit status. Every copy checked, and every
repair, is recorded as a PREMIS 3 event (``fixity check``, or ``replication``
for a repair; date, outcome, detail, agent, object, location) in the catalog's
``events`` table.

Fast mode re-hashes whole objects (SHA-256) against the digest taken at
ingest, which an audit never overwrites. Deep mode also re-verifies every WARC
record's block digest, and the payload digest of every record that holds its
payload (a revisit's payload is elsewhere: its block is still checked, where
``warcio check`` skips the record altogether). With ``repair``, a copy found
damaged, missing or never made is written again from a copy that hashes to the
ingest digest (see :func:`preserve.reconcile.repair_copy`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import Engine, Select, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from preserve import ledger
from preserve.catalog import StoredFile, stored_files, write_transaction
from preserve.catalog.schema import copies, events, fixity_runs, tombstones, warc_files
from preserve.errors import BadInput, StorageError
from preserve.processes import process_pool
from preserve.reconcile import (
    AGENT,
    FIXITY_CHECK,
    MISSING,
    REPAIR_EVENT,
    SIZE_MISMATCH,
    UNDER_REPLICATED,
    UNEXPECTED,
    held_objects,
    repair_copy,
    with_repair,
)
from preserve.storage import ObjectStore, expect_copies
from preserve.warc_digests import CopyRead, read_copy

CORRUPTED = "corrupted"
UNREADABLE = "unreadable"
NOT_CONFIGURED = "location not configured"
RECORD_DAMAGED = "record digest mismatch"
# What a copy that no longer holds is found to be (not merely unreadable just now).
LOST = (MISSING, CORRUPTED, SIZE_MISMATCH, RECORD_DAMAGED)
REPAIRABLE = (MISSING, CORRUPTED, SIZE_MISMATCH, UNREADABLE, UNDER_REPLICATED, RECORD_DAMAGED)
DEFAULT_EVERY_DAYS = 90
# A deep audit of at least this many records runs in worker processes (see run_fixity).
DEEP_PROCESS_RECORDS = 8_000
# A running audit tells the catalog it is alive this often; one not heard from for
# STALE_RUN has stopped (its machine went down), and the next audit resumes it.
HEARTBEAT = timedelta(seconds=30)
STALE_RUN = timedelta(minutes=10)


@dataclass
class Finding:
    """One copy that did not hold (in deep mode, one record of it)."""

    kind: str
    key: str
    location: str
    expected: str
    found: str
    record: str | None = None  # deep mode: the record's target URI
    offset: int | None = None  # deep mode: where its gzip member starts
    digest: str | None = None  # deep mode: WARC-Block-Digest or WARC-Payload-Digest
    repaired_from: str | None = None
    repair_failed: str | None = None
    # No copy of the file holds any more (every one damaged or gone; none out of reach):
    # nothing can repair it, and it needs a person now.
    critical: bool = False

    @property
    def open(self) -> bool:
        return self.repaired_from is None

    def __str__(self) -> str:
        where = (f" record {self.record} at offset {self.offset}" if self.offset is not None
                 else "") + (f", its {self.digest}" if self.digest else "")
        alarm = "CRITICAL, no good copy left: " if self.critical else ""
        return with_repair(f"{alarm}{self.kind}: {self.key} in {self.location}{where} "
                           f"(expected {self.expected}, found {self.found})",
                           self.repaired_from, self.repair_failed)


@dataclass
class FixityResult:
    """What an audit checked and what it found."""

    objects: int = 0
    copies: int = 0
    bytes: int = 0
    records: int = 0  # deep mode
    findings: list[Finding] = field(default_factory=list)
    resumed: bool = False  # this run took over one that was interrupted
    skipped: int = 0  # copies the interrupted run had found whole already
    # Locations found out of reach (location: why): asked no more in this audit, nor
    # for its ledger checkpoint.
    out_of_reach: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Does everything hold now (after any repairs)?"""
        return not any(finding.open for finding in self.findings)

    def summary(self) -> str:
        """One line: what was checked, and whether it held."""
        files = f"{self.objects} WARC file{'' if self.objects == 1 else 's'}"
        copies = f"{self.copies} cop{'y' if self.copies == 1 else 'ies'}"
        records = f", {self.records} records" if self.records else ""
        repaired = sum(1 for finding in self.findings if not finding.open)
        left = len(self.findings) - repaired
        critical = len({finding.key for finding in self.findings if finding.critical})
        verdict = ("all hold" if not self.findings else
                   f"{left} problem{'' if left == 1 else 's'}"
                   + (f", {repaired} repaired" if repaired else "")
                   + (f", {critical} file{'' if critical == 1 else 's'} with no good copy "
                      "left (CRITICAL)" if critical else ""))
        return f"{files}, {copies}{records}, {self.bytes} bytes checked: {verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "objects": self.objects, "copies": self.copies,
                "records": self.records, "bytes": self.bytes, "resumed": self.resumed,
                "skipped": self.skipped, "out_of_reach": self.out_of_reach,
                "critical": sorted({f.key for f in self.findings if f.critical}),
                "findings": [{**asdict(f), "open": f.open} for f in self.findings]}


def run_fixity(engine: Engine, stores: Mapping[str, ObjectStore],
               progress: Callable[[int, int, StoredFile], None] | None = None, *,
               collection: str | None = None, location: str | None = None,
               deep: bool = False, repair: bool = False, sample: float = 1.0,
               every_days: int = DEFAULT_EVERY_DAYS, workers: int | None = None,
               actor: str = "preserve",
               now: Callable[[], datetime] = lambda: datetime.now(UTC),
               copies_asked: Callable[[str], Sequence[str]] | None = None,
               every_days_of: Mapping[str, int] | None = None) -> FixityResult:
    """Check every copy of every catalogued object; never stop at the first finding.

    Copies are hashed side by side (``workers``, one per core by default:
    hashlib lets go of the interpreter lock). With ``sample`` below 1, that
    fraction of the files is checked, those checked longest ago first, and
    every file not found whole for ``every_days`` (its collection's in ``every_days_of``,
    a policy's ``fixity_every_days``) besides. With ``copies_asked``
    (a collection's locations, as its policies ask now), a file without a copy in
    one of them is under-replicated too. A run that is
    interrupted is resumed by the next run of the same scope: copies it already
    found whole are skipped (those it found wrong are checked again).
    """
    if location is not None and location not in stores:
        raise BadInput(f"fixity: location {location!r} is not configured "
                       f"(configured: {', '.join(sorted(stores))})")
    if not 0 < sample <= 1:
        raise BadInput(f"fixity: --sample must be above 0 and at most 1, not {sample:g}")
    scope = json.dumps({"collection": collection, "location": location, "deep": deep,
                        "sample": sample}, sort_keys=True)
    expect_copies(engine, stores.values())
    with engine.connect() as connection:
        catalogued = stored_files(connection, collection=collection)
        # Only a sample needs to know when each file was last found whole.
        files = catalogued if sample >= 1 else _choose(
            catalogued, _last_whole(connection), sample, every_days, now(), every_days_of or {})
    run_id, resumed_from = _start_run(engine, scope, now())
    beat = _Heartbeat(engine, run_id, now)
    try:
        done = _checked_since(engine, resumed_from) if resumed_from else set()
        result = FixityResult(objects=len(files), resumed=resumed_from is not None)
        jobs = [(stored, name) for stored in files for name in stored.locations
                if (location is None or name == location) and (stored.key, name) not in done]
        result.skipped = sum(1 for stored in files for name in stored.locations
                             if (location is None or name == location)
                             and (stored.key, name) in done)
        by_file: dict[str, list[tuple[str, list[Finding], int, int]]] = {}
        remaining: dict[str, int] = dict.fromkeys((stored.key for stored in files), 0)
        for stored, _name in jobs:
            remaining[stored.key] += 1
        number = 0
        threads = workers or os.cpu_count() or 1
        # Deep checks parse every record in Python, which holds the interpreter lock: an
        # audit of many records runs in worker processes, one per core. Hashing and
        # inflating let go of the lock, so fast mode, and a deep audit of few records
        # (large bodies, or too few to be worth starting processes for), use threads.
        to_parse = sum(stored.records for stored, _name in jobs)
        pool: Executor = (process_pool(threads)
                          if deep and threads > 1 and to_parse >= DEEP_PROCESS_RECORDS
                          else ThreadPoolExecutor(max_workers=threads,
                                                  thread_name_prefix="fixity"))
        down = result.out_of_reach  # locations found out of reach: not asked again
        try:
            # Files with nothing to hash here (every copy elsewhere, or checked by the
            # interrupted run): only their missing copies are reported.
            for stored in files:
                if remaining[stored.key] == 0:
                    number += 1
                    _finish_file(engine, stores, stored, [], location, deep, repair, actor,
                                 now, result, down, copies_asked)
                    if progress is not None:
                        progress(number, len(files), stored)
            for stored, name, found, size, records in _checked_copies(
                    pool, threads * 2, jobs, stores, deep, down):
                result.copies += 1
                result.bytes += size
                result.records += records
                by_file.setdefault(stored.key, []).append((name, found, size, records))
                remaining[stored.key] -= 1
                if remaining[stored.key] == 0:
                    number += 1
                    _finish_file(engine, stores, stored, by_file.pop(stored.key), location,
                                 deep, repair, actor, now, result, down, copies_asked)
                    if progress is not None:
                        progress(number, len(files), stored)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if collection is None:  # then every catalogued copy is known here
            known = _copies_known(catalogued)
            for finding in result.findings:  # and those this audit made
                if finding.repaired_from is not None:
                    known.setdefault(finding.location, set()).add(finding.key)
            result.findings.extend(_unexpected(known, stores, location, down))
    except BaseException:
        beat.stopped()  # interrupted: the next run resumes it
        raise
    beat.stop()
    _finish_run(engine, run_id, now())
    return result


def _checked_copies(pool: Executor, window: int, jobs: list[tuple[StoredFile, str]],
                    stores: Mapping[str, ObjectStore], deep: bool, down: dict[str, str]
                    ) -> Iterator[tuple[StoredFile, str, list[Finding], int, int]]:
    """Read the copies side by side, ``window`` at most in flight, yielding each one's
    findings, bytes hashed and records verified, in order.

    A location found out of reach is not asked again in this audit (``down``: location,
    why): its other copies are unreadable at once, not each after the storage client's
    retries and timeouts.
    """
    pending: deque[tuple[StoredFile, str, Future[CopyRead] | CopyRead | None]] = deque()

    def first() -> tuple[StoredFile, str, list[Finding], int, int]:
        stored, name, reading = pending.popleft()
        if reading is None:
            return stored, name, [Finding(NOT_CONFIGURED, stored.key, name, "a configured "
                                          "location", "no such location in settings")], 0, 0
        read = reading if isinstance(reading, CopyRead) else reading.result()
        if read.unreachable and read.error is not None:
            down.setdefault(name, read.error)
        return stored, name, copy_findings(stored, name, read), read.size, read.records

    def start(stored: StoredFile, name: str) -> Future[CopyRead] | CopyRead | None:
        store = stores.get(name)
        if store is None:
            return None
        if name in down:
            return CopyRead(error=_not_asked(down[name]), unreachable=True)
        return pool.submit(read_copy, store, stored.key, deep)

    for stored, name in jobs:
        pending.append((stored, name, start(stored, name)))
        if len(pending) >= window:
            yield first()
    while pending:
        yield first()


def _finish_file(engine: Engine, stores: Mapping[str, ObjectStore], stored: StoredFile,
                 copies_checked: list[tuple[str, list[Finding], int, int]],
                 location: str | None, deep: bool, repair: bool, actor: str,
                 now: Callable[[], datetime], result: FixityResult,
                 down: Mapping[str, str],
                 copies_asked: Callable[[str], Sequence[str]] | None) -> None:
    """Record a file's checks, add its missing copies, repair what may be repaired."""
    found = [finding for _, findings, _, _ in copies_checked for finding in findings]
    found.extend(
        Finding(UNDER_REPLICATED, stored.key, name, "a verified copy (asked for at ingest)",
                f"none: {problem}")
        for name, problem in stored.missing if location is None or name == location)
    found.extend(
        Finding(UNDER_REPLICATED, stored.key, name, "a verified copy (asked for by the "
                f"{stored.collection!r} collection's policy or storage.default_copies)",
                "none: never made here")
        for name in (copies_asked(stored.collection) if copies_asked else ())
        if name not in stored.places and (location is None or name == location))
    _record_checks(engine, stored, [(name, findings[0] if findings else None, records)
                                    for name, findings, _, records in copies_checked],
                   deep, now(), actor)
    if repair:
        _repair(engine, stores, stored, found, actor, now, down)
    if location is None and found and not any(name in down for name in stored.locations):
        damaged = {finding.location for finding in found
                   if finding.open and finding.kind in LOST}
        if all(name in damaged for name in stored.locations):
            for finding in found:
                finding.critical = True
    result.findings.extend(found)


def _last_whole(connection: Any) -> dict[str, datetime]:
    """When each file was last found whole: its copy found whole longest ago."""
    oldest: dict[str, datetime] = {}
    for (key, _location), moment in _whole_copies(connection).items():
        oldest[key] = min(moment, oldest.get(key, moment))
    return oldest


def _whole_copies(connection: Any) -> dict[tuple[str, str], datetime]:
    """When each copy, (key, location), was last found whole: written and verified (a copy
    is verified when it is written), or since then by a passing fixity check."""
    moments: dict[tuple[str, str], datetime] = {
        (key, location): moment for key, location, moment in connection.execute(
            select(warc_files.c.key, copies.c.location, copies.c.verified_at)
            .join(warc_files, warc_files.c.id == copies.c.warc_file_id))}
    for key, location, moment in connection.execute(
            select(events.c.object, events.c.location, func.max(events.c.event_date))
            .where(events.c.event_type == FIXITY_CHECK, events.c.outcome == "pass")
            .group_by(events.c.object, events.c.location)):
        moment = _utc(moment)
        if (key, location) not in moments or moment > moments[(key, location)]:
            moments[(key, location)] = moment
    return moments


def _utc(moment: Any) -> datetime:
    """An aggregate's datetime as UTC (SQLite gives max() back as text, untyped)."""
    parsed: datetime = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _choose(files: list[StoredFile], last_whole: Mapping[str, datetime], sample: float,
            every_days: int, moment: datetime, every_days_of: Mapping[str, int]
            ) -> list[StoredFile]:
    """A sample of the files: longest unchecked first, and every overdue one besides."""
    never = moment - timedelta(days=365 * 1000)
    ordered = sorted(files, key=lambda stored: last_whole.get(stored.key, never))
    count = math.ceil(sample * len(ordered))
    return [stored for number, stored in enumerate(ordered)
            if number < count or last_whole.get(stored.key, never)
            <= _overdue_since(moment, stored.collection, every_days, every_days_of)]


def _overdue_since(moment: datetime, collection: str, every_days: int,
                   every_days_of: Mapping[str, int]) -> datetime:
    """A copy of the collection's not found whole since this is overdue (its policy's
    ``fixity_every_days``, in ``every_days_of``, else ``every_days``)."""
    return moment - timedelta(days=every_days_of.get(collection, every_days))


def check_collection_known(engine: Engine, collection: str, named: Iterable[str]) -> None:
    """A collection to audit that the catalog has never held and no policy ``named`` is a
    typo (in a cron line, say), not an audit that passed: :class:`BadInput`."""
    with engine.connect() as connection:
        held = {name for (name,) in connection.execute(
            select(warc_files.c.collection).union(select(tombstones.c.collection)))}
    if collection not in held and collection not in set(named):
        known = ", ".join(sorted(held)[:20]) or "none yet"
        raise BadInput(f"fixity: the catalog holds no collection {collection!r}, and no "
                       f"policy fills one (it holds: {known})")


def _start_run(engine: Engine, scope: str, moment: datetime) -> tuple[int, datetime | None]:
    """This run's ID, and the start of the interrupted run it resumes (None if none).

    An unfinished run of the same scope that is still running (another audit, started
    by cron while this one was, or on another machine) is not taken over:
    :class:`BadInput`, naming it, and nothing is checked.
    """
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            # Two audits starting together take turns here, as SQLite's BEGIN IMMEDIATE
            # makes them: neither may find no run (or the same stopped one) and go on.
            key = int.from_bytes(hashlib.sha256(scope.encode()).digest()[:8], "big", signed=True)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        unfinished = connection.execute(
            select(fixity_runs.c.id, fixity_runs.c.started_at, fixity_runs.c.holder,
                   fixity_runs.c.alive_at)
            .where(fixity_runs.c.scope == scope, fixity_runs.c.finished_at.is_(None))
            .order_by(fixity_runs.c.id.desc()).limit(1)).first()
        if unfinished is not None and _running(unfinished.id, unfinished.holder,
                                               unfinished.alive_at, moment):
            host, pid, _process = _holder_parts(unfinished.holder)
            raise BadInput(
                f"fixity: the same audit is running already (process {pid} on {host}, "
                f"started {_iso(unfinished.started_at)}, last heard from "
                f"{_iso(unfinished.alive_at)}); this one checked nothing")
        if unfinished is not None:
            connection.execute(update(fixity_runs).where(fixity_runs.c.id == unfinished.id)
                               .values(holder=_holder(), alive_at=moment))
            _LIVE_RUNS.add(int(unfinished.id))  # before another start can look
            return int(unfinished.id), unfinished.started_at
        run_id = connection.execute(insert(fixity_runs).values(
            scope=scope, started_at=moment, holder=_holder(), alive_at=moment)
            .returning(fixity_runs.c.id)).scalar_one()
        _LIVE_RUNS.add(int(run_id))
    return int(run_id), None


def _pid_space() -> str:
    """The process ID namespace this process sees (containers on one host each have one)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


# This process, told apart from an earlier one that had its host name and process ID (a
# container restarted, its worker PID 1 again): its PID namespace and a random part.
_PROCESS = f"{_pid_space()}:{uuid.uuid4().hex[:12]}"
_LIVE_RUNS: set[int] = set()  # the runs this process is running now


def _holder() -> str:
    return f"{socket.gethostname()} {os.getpid()} {_PROCESS}"


def _holder_parts(holder: str) -> tuple[str, str, str]:
    """Host name, process ID and process of a run's holder."""
    host, pid, process = ([*holder.split(" "), "", ""])[:3]
    return host, pid, process


def _running(run_id: int, holder: str | None, alive_at: datetime | None,
             moment: datetime) -> bool:
    """Is the unfinished run that ``holder`` runs still going? Not if it stopped and said
    so (no holder), nor if it has not reported for ``STALE_RUN`` (a machine gone down);
    in this process, only while it runs it; elsewhere on this machine (in the same PID
    namespace), only while its process lives."""
    if holder is None or alive_at is None or moment - alive_at > STALE_RUN:
        return False
    host, pid, process = _holder_parts(holder)
    if host != socket.gethostname():
        return True
    if process == _PROCESS:
        return run_id in _LIVE_RUNS
    if process.partition(":")[0] != _PROCESS.partition(":")[0] or not pid.isdigit():
        return True  # another PID namespace (a container): only its reports tell
    if int(pid) == os.getpid():
        return False  # an earlier process that had this one's ID: gone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False  # killed: interrupted
    except PermissionError:
        return True  # another user's process
    return True


class _Heartbeat:
    """Tells the catalog every ``HEARTBEAT``, from a thread of its own (a copy may take
    longer than that to read), that the run is still going, until it is stopped."""

    def __init__(self, engine: Engine, run_id: int, now: Callable[[], datetime]) -> None:
        self.engine, self.run_id, self.now = engine, run_id, now
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="fixity-heartbeat",
                                       daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        while not self.done.wait(HEARTBEAT.total_seconds()):
            with suppress(SQLAlchemyError), write_transaction(self.engine) as connection:
                connection.execute(update(fixity_runs).where(fixity_runs.c.id == self.run_id)
                                   .values(alive_at=self.now()))

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        _LIVE_RUNS.discard(self.run_id)

    def stopped(self) -> None:
        """The run stopped before its end (Ctrl-C, an error): the next one resumes it. (If
        the catalog cannot be told, the error that stopped the run is the one to report;
        the run's process is gone soon, or its reports stop.)"""
        self.stop()
        with suppress(SQLAlchemyError), write_transaction(self.engine) as connection:
            connection.execute(update(fixity_runs).where(fixity_runs.c.id == self.run_id)
                               .values(holder=None))


def _checked_since(engine: Engine, moment: datetime) -> set[tuple[str, str]]:
    """The copies found whole since ``moment``: those that failed are checked again, so
    the resumed audit names exactly what is wrong (and may repair it)."""
    with engine.connect() as connection:
        return {(key, location) for key, location in connection.execute(
            select(events.c.object, events.c.location).where(
                events.c.event_type == FIXITY_CHECK, events.c.outcome == "pass",
                events.c.event_date >= moment))}


def _finish_run(engine: Engine, run_id: int, moment: datetime) -> None:
    with write_transaction(engine) as connection:
        connection.execute(update(fixity_runs).where(fixity_runs.c.id == run_id)
                           .values(finished_at=moment, holder=None, alive_at=moment))


def copy_findings(stored: StoredFile, location: str, read: CopyRead) -> list[Finding]:
    """What one read of a copy found wrong: a Finding when it is missing, unreadable,
    resized or changed, first; in deep mode, one per damaged record after it (those of a
    changed copy say which records the change hit). A copy with the ingest digest holds."""
    def finding(kind: str, expected: str, found: str) -> Finding:
        return Finding(kind, stored.key, location, expected, found)

    if read.missing:
        return [finding(MISSING, f"{stored.size} bytes", "no object")]
    if read.error is not None:
        return [finding(UNREADABLE, f"sha256:{stored.sha256}", read.error)]
    damaged = [Finding(RECORD_DAMAGED, stored.key, location, problem.expected, problem.found,
                       record=problem.uri, offset=problem.offset, digest=problem.digest)
               for problem in read.problems]
    if read.size != stored.size:
        return [finding(SIZE_MISMATCH, f"{stored.size} bytes",
                        f"{read.size} bytes, sha256:{read.sha256}"), *damaged]
    if read.sha256 != stored.sha256:
        return [finding(CORRUPTED, f"sha256:{stored.sha256}", f"sha256:{read.sha256}"),
                *damaged]
    # Byte for byte what was ingested: records whose digests do not hold were so when it
    # came in (an import with --lenient lists them then), not damage to this copy, and no
    # other copy could mend them.
    return []


def _record_checks(engine: Engine, stored: StoredFile,
                   checked: list[tuple[str, Finding | None, int]], deep: bool,
                   moment: datetime, actor: str) -> None:
    """One PREMIS ``fixity check`` event per copy checked, and one ledger entry."""
    if not checked:
        return
    rows = [{"event_type": FIXITY_CHECK, "event_date": moment,
             "outcome": "pass" if finding is None else "fail",
             "detail": (str(finding) if finding is not None else
                        f"sha256:{stored.sha256} matches the ingest digest"
                        + (f"; {records} records' digests verified" if deep else "")),
             "agent": AGENT, "object": stored.key, "collection": stored.collection,
             "location": location}
            for location, finding, records in checked]
    with write_transaction(engine) as connection:
        connection.execute(insert(events), rows)
        for location, finding, _records in checked:
            # The digest found: the ingest digest when the copy held, else what was there.
            found = f"sha256:{stored.sha256}" if finding is None else finding.found
            ledger.append(connection, time=moment, actor=actor, event="fixity check",
                          object=f"{location}:{stored.key}", digest=found[:100])


def _repair(engine: Engine, stores: Mapping[str, ObjectStore], stored: StoredFile,
            found: list[Finding], actor: str, now: Callable[[], datetime],
            down: Mapping[str, str]) -> None:
    """Repair each damaged copy once (a copy may have several record findings); locations
    found out of reach in this audit (``down``) are not asked, as target or source."""
    outcome: dict[str, tuple[str | None, str | None]] = {}
    for finding in found:
        if finding.kind not in REPAIRABLE:
            continue
        if finding.location not in outcome:
            outcome[finding.location] = repair_copy(engine, stores, stored, finding.location,
                                                    actor, now, down)
            source, failure = outcome[finding.location]
            if source is None:  # (a repair made is recorded by repair_copy, event and all)
                with write_transaction(engine) as connection:
                    connection.execute(insert(events).values(
                        event_type=REPAIR_EVENT, event_date=now(), outcome="fail",
                        detail=f"repair: not repaired: {failure}", agent=AGENT, object=stored.key,
                        collection=stored.collection, location=finding.location))
        finding.repaired_from, finding.repair_failed = outcome[finding.location]


def _not_asked(why: str) -> str:
    """What is found of a location found out of reach earlier in the audit."""
    return f"not asked: out of reach earlier in this audit ({why})"


def _copies_known(files: list[StoredFile]) -> dict[str, set[str]]:
    """The keys the catalog accounts for a copy of (StoredFile.places), by location."""
    known: dict[str, set[str]] = {}
    for stored in files:
        for name in stored.places:
            known.setdefault(name, set()).add(stored.key)
    return known


def _unexpected(known: Mapping[str, set[str]], stores: Mapping[str, ObjectStore],
                location: str | None, down: Mapping[str, str]) -> Iterator[Finding]:
    """Objects in a location that no catalogued copy there (``known``, by location)
    accounts for: a stray file, or a copy whose catalog row is gone. A location found
    out of reach (``down``) is not asked again."""
    for name, store in sorted(stores.items()):
        if location is not None and name != location:
            continue
        if name in down:
            yield Finding(UNREADABLE, "", name, "a location that can be listed",
                          _not_asked(down[name]))
            continue
        try:
            listed = held_objects(store)
        except StorageError as exc:
            yield Finding(UNREADABLE, "", name, "a location that can be listed", str(exc))
            continue
        for key in sorted(set(listed) - known.get(name, set())):
            yield Finding(UNEXPECTED, key, name, f"no object (none is catalogued in {name})",
                          f"{listed[key]} bytes")


EVENT_COLUMNS = ("event_date", "event_type", "outcome", "collection", "object", "location",
                 "detail", "agent")


@dataclass
class FixityReport:
    """The audit history: totals per collection, what failed, what is overdue."""

    since: datetime | None
    every_days: int
    collections: dict[str, dict[str, int]]
    failing: list[dict[str, Any]]  # copies whose latest check failed
    overdue: list[dict[str, Any]]  # copies not found whole (written or checked) in every_days
    events: list[dict[str, Any]]
    every_days_of: dict[str, int] = field(default_factory=dict)  # by collection (policies)

    @property
    def period(self) -> str:
        """How long a copy may go without a whole check, in words."""
        other = {name: days for name, days in self.every_days_of.items()
                 if days != self.every_days}
        if not other:
            return f"{self.every_days} days"
        return (", ".join(f"{days} days in {name}" for name, days in sorted(other.items()))
                + f", {self.every_days} elsewhere")

    @property
    def passed(self) -> bool:
        return not self.failing and not self.overdue

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "since": self.since, "every_days": self.every_days,
                "every_days_of": self.every_days_of,
                "collections": self.collections, "failing": self.failing,
                "overdue": self.overdue, "events": len(self.events)}

    def text(self) -> str:
        period = f"since {self.since.isoformat()}" if self.since else "all time"
        lines = [f"fixity report ({period}): {len(self.events)} events"]
        for name, totals in sorted(self.collections.items()):
            lines.append(f"  {name}: {totals['checks']} checks, {totals['passed']} passed, "
                         f"{totals['failed']} failed, {totals['repairs']} repairs")
        lines.append(f"failing now: {len(self.failing)}")
        lines.extend(f"  {item['object']} in {item['location']} ({item['event_date']}): "
                     f"{item['detail']}" for item in self.failing)
        lines.append(f"overdue (no whole check in {self.period}): {len(self.overdue)}")
        lines.extend(f"  {item['object']} in {item['location']} (last found whole: "
                     f"{item['last_passed'] or 'never'})" for item in self.overdue[:50])
        if len(self.overdue) > 50:
            lines.append(f"  ... and {len(self.overdue) - 50} more")
        return "\n".join(lines)

    def html(self) -> str:
        """A page an auditor can file or mail: totals, failing and overdue copies."""
        def cell(value: Any) -> str:
            return f"<td>{escape(str(value if value is not None else ''))}</td>"

        def table(headings: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
            head = "".join(f"<th>{escape(heading)}</th>" for heading in headings)
            body = "".join("<tr>" + "".join(cell(value) for value in row) + "</tr>"
                           for row in rows) or (f'<tr><td colspan="{len(headings)}">none'
                                                "</td></tr>")
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        period = f"since {self.since.isoformat()}" if self.since else "all time"
        verdict = "every copy holds" if self.passed else "findings"
        return "\n".join([
            "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Fixity report ({escape(period)})</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
            "margin-bottom:2em}td,th{border:1px solid #999;padding:.3em .6em;text-align:left}"
            "</style></head><body>",
            f"<h1>Fixity report: {escape(verdict)}</h1>",
            f"<p>{escape(period)}; {len(self.events)} events; agent {escape(AGENT)}</p>",
            "<h2>Per collection</h2>",
            table(("collection", "checks", "passed", "failed", "repairs"),
                  [(name, t["checks"], t["passed"], t["failed"], t["repairs"])
                   for name, t in sorted(self.collections.items())]),
            "<h2>Failing now</h2>",
            table(("object", "location", "checked", "detail"),
                  [(f["object"], f["location"], f["event_date"], f["detail"])
                   for f in self.failing]),
            f"<h2>Overdue (no whole check in {escape(self.period)})</h2>",
            table(("object", "location", "collection", "last found whole"),
                  [(o["object"], o["location"], o["collection"], o["last_passed"] or "never")
                   for o in self.overdue]),
            "</body></html>"])


def fixity_report(engine: Engine, since: datetime | None = None,
                  every_days: int = DEFAULT_EVERY_DAYS,
                  now: Callable[[], datetime] = lambda: datetime.now(UTC),
                  every_days_of: Mapping[str, int] | None = None) -> FixityReport:
    """What the recorded fixity events say, and which catalogued copies are overdue (not
    found whole in their collection's ``every_days_of``, else ``every_days``).

    A copy fails now when its latest check failed and no repair has mended it since
    (or its latest repair failed); a deleted file's copies fail no more."""
    query = select(events).order_by(events.c.event_date, events.c.id)
    if since is not None:
        query = query.where(events.c.event_date >= since)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
        files = stored_files(connection)
        catalogued = {stored.key for stored in files}
        failing = [_event_json(dict(row._mapping)) for row in connection.execute(
            select(events).where(events.c.id.in_(_latest_checks(with_repairs=True)),
                                 events.c.outcome == "fail")
            .order_by(events.c.event_date, events.c.id)) if row.object in catalogued]
        last_passed = _whole_copies(connection)
    collections: dict[str, dict[str, int]] = {}
    for row in rows:
        totals = collections.setdefault(row["collection"] or "(uncatalogued)",
                                        {"checks": 0, "passed": 0, "failed": 0, "repairs": 0})
        if row["event_type"] == REPAIR_EVENT:
            totals["repairs"] += row["outcome"] == "pass"
        else:
            totals["checks"] += 1
            totals["passed" if row["outcome"] == "pass" else "failed"] += 1
    moment = now()
    days = every_days_of or {}
    never = moment - timedelta(days=365 * 1000)
    overdue = [{"object": stored.key, "location": location, "collection": stored.collection,
                "last_passed": _iso(last_passed.get((stored.key, location)))}
               for stored in files for location in stored.locations
               if last_passed.get((stored.key, location), never)
               <= _overdue_since(moment, stored.collection, every_days, days)]
    return FixityReport(since, every_days, collections, failing, overdue,
                        [_event_json(row) for row in rows], dict(days))


def object_fixity(engine: Engine, key: str) -> list[dict[str, Any]]:
    """The latest fixity check of each copy of an object (one per location), by location."""
    with engine.connect() as connection:
        return [_event_json(dict(row._mapping)) for row in connection.execute(
            select(events).where(events.c.id.in_(_latest_checks(events.c.object == key)))
            .order_by(events.c.location))]


def _latest_checks(*where: Any, with_repairs: bool = False) -> Select[Any]:
    """The IDs of the latest fixity check of each copy (of those ``where`` keeps); with
    ``with_repairs``, of its latest check or repair, whichever came last."""
    kinds = (FIXITY_CHECK, REPAIR_EVENT) if with_repairs else (FIXITY_CHECK,)
    return select(func.max(events.c.id)).where(
        events.c.event_type.in_(kinds), *where).group_by(events.c.object, events.c.location)


def recent_runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The latest audits, newest first: scope (collection, location, deep, sample), start,
    end (None: running, or interrupted) and state ("finished", "running" or
    "interrupted": the next audit of its scope resumes it)."""
    moment = datetime.now(UTC)
    with engine.connect() as connection:
        return [{"scope": json.loads(row.scope), "started_at": _iso(row.started_at),
                 "finished_at": _iso(row.finished_at),
                 "state": "finished" if row.finished_at is not None else
                 "running" if _running(row.id, row.holder, row.alive_at, moment)
                 else "interrupted"}
                for row in connection.execute(
                    select(fixity_runs).order_by(fixity_runs.c.id.desc()).limit(limit))]


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**{key: row[key] for key in EVENT_COLUMNS}, "event_date": _iso(row["event_date"])}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
