"""Fixity audits: re-hash every copy of every stored object against the catalog.

Results are data, not exceptions: a :class:`FixityResult` lists typed
findings, and the command turns them into an exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine

from preserve.catalog import StoredFile, stored_files
from preserve.errors import StorageError
from preserve.fingerprint import iter_chunks, sha256_chunks
from preserve.storage import ObjectStore

MISSING = "missing"
CORRUPTED = "corrupted"
SIZE_MISMATCH = "size mismatch"
UNREADABLE = "unreadable"
NOT_CONFIGURED = "location not configured"


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
