"""The ObjectStore protocol: what every storage backend offers.

Objects are immutable: a put names the SHA-256 the bytes must have, the store
verifies it before the object becomes visible, and a key that already holds
other bytes is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol

from preserve.errors import StorageError

# A key's first folder that no object may use: the filesystem store's workspace.
INCOMING = ".incoming"
# Where probes write (and remove again): never a valid object key.
PROBE_PREFIX = f"{INCOMING}/probe-"


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object without reading it."""

    key: str
    size: int
    retained_until: datetime | None = None  # set by a put that wrote a retention date


@dataclass
class LocationCheck:
    """What ``preserve storage check`` found out about one location by trying it."""

    location: str
    type: str
    where: str
    reachable: bool = False
    writable: bool = False
    versioning: str = "n/a"  # enabled, suspended, off; n/a for a folder
    object_lock: str = "n/a"  # enabled (with the mode), off; n/a for a folder
    checksums: str = ""  # who verifies a copy's bytes on arrival
    server_checksums: str = "n/a"  # does the server refuse a wrong x-amz-checksum-sha256?
    conditional_writes: str = "n/a"  # If-None-Match honoured, or a check before writing
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.reachable and self.writable and not self.problems

    @property
    def can_retain(self) -> bool:
        """Can objects here be written with a retention date (S3 Object Lock)?"""
        return self.object_lock.startswith("enabled")


class ObjectStore(Protocol):
    """A named place that keeps objects by key."""

    name: str

    def put(self, key: str, stream: BinaryIO, sha256: str,
            retain_until: datetime | None = None) -> ObjectInfo:
        """Store the stream under key, verified against sha256; never overwrite other bytes.

        With ``retain_until``, a store that can hold retention dates (S3 Object
        Lock) writes the object so that it cannot be deleted or changed before
        then; :attr:`ObjectInfo.retained_until` says whether it did.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """A readable stream of the whole object."""
        ...

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes starting at ``offset``, without reading the rest."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Size of the object, or None when there is none under key."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with prefix."""
        ...

    def retained_until(self, key: str) -> datetime | None:
        """The latest retention date any version of the object under key holds, if any
        (a deleted object's versions keep theirs), so a copy written again keeps it."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (deletion is a recorded, reasoned act; see the ledger)."""
        ...

    def probe(self) -> LocationCheck:
        """Try the location: reachable, writable, and what it offers; leaves no object."""
        ...


def key_parts(location: str, key: str) -> list[str]:
    """The folders and name of a valid key; :class:`StorageError` for any other.

    The same keys are valid in every store, so that any copy can stand in for
    any other: relative, ``/``-separated, no empty, ``.`` or ``..`` part, no
    backslash, and not under the reserved ``.incoming`` folder.
    """
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(
        part in ("", ".", "..") for part in parts
    ) or parts[0] == INCOMING:
        raise StorageError(f"location {location!r}: invalid object key {key!r}")
    return parts
