"""Fixity audits: re-hash every copy of every stored object against the catalog.

Results are data, not exceptions: a :class:`FixityResult` lists typed
findings, and the command turns them into an exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from sqlalchemy import Engine
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from preserve.catalog import StoredFile, stored_files
from preserve.errors import StorageError
from preserve.fingerprint import iter_chunks, sha256_chunks
from preserve.storage import ObjectStore

MISSING = "missing"
CORRUPTED = "corrupted"
SIZE_MISMATCH = "size mismatch"
UNREADABLE = "unreadable"
NOT_CONFIGURED = "location not configured"
UNDER_REPLICATED = "under-replicated"


@dataclass(frozen=True)
class Finding:
    """One copy that did not hold."""

    kind: str
    key: str
    location: str
    expected: str
    found: str

    def __str__(self) -> str:
        return (f"{self.kind}: {self.key} in {self.location} "
                f"(expected {self.expected}, found {self.found})")


@dataclass
class FixityResult:
    """What an audit checked and what it found."""

    objects: int = 0
    copies: int = 0
    bytes: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        """One line: what was checked, and whether it held."""
        files = f"{self.objects} WARC file{'' if self.objects == 1 else 's'}"
        copies = f"{self.copies} cop{'y' if self.copies == 1 else 'ies'}"
        verdict = ("all hold" if self.passed else
                   f"{len(self.findings)} problem{'' if len(self.findings) == 1 else 's'}")
        return f"{files}, {copies}, {self.bytes} bytes checked: {verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "objects": self.objects, "copies": self.copies,
                "bytes": self.bytes, "findings": [asdict(f) for f in self.findings]}


def run_fixity(engine: Engine, stores: Mapping[str, ObjectStore],
               progress: Callable[[int, int, StoredFile], None] | None = None) -> FixityResult:
    """Check every copy of every catalogued object; never stop at the first finding."""
    with engine.connect() as connection:
        files = stored_files(connection)
    result = FixityResult(objects=len(files))
    for number, stored in enumerate(files, start=1):
        for location in stored.locations:
            result.copies += 1
            finding = check_copy(stored, location, stores.get(location), result)
            if finding is not None:
                result.findings.append(finding)
        result.findings.extend(
            Finding(UNDER_REPLICATED, stored.key, location, "a verified copy (asked for at "
                    "ingest)", f"none: {problem}") for location, problem in stored.missing)
        if progress is not None:
            progress(number, len(files), stored)
    return result


def check_copy(stored: StoredFile, location: str, store: ObjectStore | None,
               result: FixityResult) -> Finding | None:
    """Re-hash one copy; a Finding when it is missing, resized or changed."""
    def finding(kind: str, expected: str, found: str) -> Finding:
        return Finding(kind, stored.key, location, expected, found)

    if store is None:
        return finding(NOT_CONFIGURED, "a configured location", "no such location in settings")
    info = store.head(stored.key)
    if info is None:
        return finding(MISSING, f"{stored.size} bytes", "no object")
    try:
        with store.open(stored.key) as stream:
            digest, size = sha256_chunks(iter_chunks(stream))
    except StorageError as exc:
        return finding(UNREADABLE, f"sha256:{stored.sha256}", str(exc))
    result.bytes += size
    if size != stored.size:
        return finding(SIZE_MISMATCH, f"{stored.size} bytes", f"{size} bytes, sha256:{digest}")
    if digest != stored.sha256:
        return finding(CORRUPTED, f"sha256:{stored.sha256}", f"sha256:{digest}")
    return None


@dataclass
class RecordCheck:
    """Every record of one WARC file re-read with its block and payload digests checked."""

    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def check_record_digests(stream: IO[bytes], name: str) -> RecordCheck:
    """What ``warcio check`` does: read every record, verify every digest it declares."""
    check = RecordCheck()
    iterator = ArchiveIterator(stream, check_digests=True)
    try:
        for record in iterator:
            check.records += 1
            for _chunk in iter_chunks(record.raw_stream):
                pass
            offset = iterator.get_record_offset()
            for problem in record.digest_checker.problems:
                check.problems.append(f"{name} offset {offset}: {problem}")
    except (ArchiveLoadFailed, ValueError, EOFError, OSError) as exc:
        check.problems.append(f"{name} after record {check.records}: unreadable ({exc})")
    return check
