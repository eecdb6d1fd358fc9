"""The embedded default store: objects as files under one folder.

A put writes to a temporary file in the store's own ``.incoming`` folder (same
filesystem), fsyncs it, reads the file back to verify its SHA-256, and only then
links it to its key. Linking fails if the key exists, so an object is never
overwritten, even by two writers racing.

Where the system allows it (Linux's ``O_DIRECT``), the copy is written and read
back past the page cache: the read-back then hashes the bytes as the disk holds
them, not the kernel's memory of what was sent, and a preservation copy, seldom
read again, does not push what is in use out of memory. (Filling page cache
the system has not used yet is also slow on virtual machines: 3 s of CPU per GiB
here, against 0.3 s written past it.) Elsewhere (macOS, tmpfs) the copy goes
through the page cache.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from preserve.errors import (
    DigestMismatch,
    NotInPlace,
    ObjectExists,
    ObjectMissing,
    StorageError,
    Unreachable,
)
from preserve.fingerprint import sha256_file
from preserve.storage.base import INCOMING, LocationCheck, ObjectInfo, key_parts

# Written in a location's folder with its first object: a folder that the catalog holds
# copies in but that is empty (no marker, no objects) is a mount point whose disk is
# not mounted, not a new location.
MARKER = ".preserve-location"
DIRECT_BUFFER = 8 * 1024 * 1024  # bytes moved at a time past the page cache
BLOCK = 4096  # what O_DIRECT writes come in multiples of (any disk's logical block divides it)

__all__ = ["INCOMING", "FilesystemStore"]


class FilesystemStore:
    """An :class:`~preserve.storage.base.ObjectStore` on a local folder."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        # The catalog holds copies here (see :func:`preserve.storage.expect_copies`): then
        # a folder that is not there, or empty, is out of reach, never made anew.
        self.holds_copies = False

    def put(self, key: str, stream: BinaryIO, sha256: str,
            retain_until: datetime | None = None) -> ObjectInfo:
        """Store a stream under key after verifying it on disk (a folder holds no retention)."""
        final = self._path(key)
        if final.exists() or final.is_symlink():
            return self._same_or_refuse(key, final, sha256)
        self._in_place(writing=True)
        temp = self.root / INCOMING / f"{uuid.uuid4().hex}.part"
        try:
            try:
                self._mark()
                temp.parent.mkdir(parents=True, exist_ok=True)
                final.parent.mkdir(parents=True, exist_ok=True)
                _write(stream, temp)
            except OSError as exc:
                raise StorageError(f"location {self.name!r}: cannot write {key!r}: {exc}") from exc
            try:
                # The copy is verified as it lies on disk (what was sent, changed on the
                # way or after, cannot pass this).
                on_disk, size, _past_cache = _read_back(temp)
            except OSError as exc:
                raise StorageError(f"location {self.name!r}: cannot read back {key!r}: {exc}"
                                   ) from exc
            if on_disk != sha256:
                raise DigestMismatch(self.name, key, sha256, on_disk)
            try:
                self._link(temp, final)
            except FileExistsError:
                return self._same_or_refuse(key, final, sha256)
            except OSError as exc:
                raise StorageError(f"location {self.name!r}: cannot store {key!r}: {exc}") from exc
            try:
                _fsync_dir(final.parent)
            except OSError as exc:
                final.unlink(missing_ok=True)
                raise StorageError(f"location {self.name!r}: cannot make {key!r} durable: {exc}"
                                   ) from exc
        finally:
            with suppress(OSError):  # no temp file, or no folder for one: nothing to remove
                temp.unlink()
        return ObjectInfo(key, size)

    def open(self, key: str) -> BinaryIO:
        """The whole object as a binary stream."""
        path = self._path(key)
        self._in_place()
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectMissing(self.name, key) from exc
        except OSError as exc:
            raise StorageError(f"location {self.name!r}: cannot read {key!r}: {exc}") from exc

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes ``offset`` to ``offset + length`` of the object."""
        with self.open(key) as stream:
            stream.seek(offset)
            return stream.read(length)

    def head(self, key: str) -> ObjectInfo | None:
        """Size of the object under key, or None (also when the folder is not there: a new
        location's first put asks)."""
        path = self._path(key)
        try:
            return ObjectInfo(key, path.stat().st_size) if path.is_file() else None
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"location {self.name!r}: cannot look at {key!r}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every stored object whose key starts with prefix, in key order (none when the
        folder is not there: it may never have been written to; :class:`NotInPlace` if the
        catalog holds copies here)."""
        if self.holds_copies:
            self._in_place()
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if (path.is_file() and not key.startswith(INCOMING + "/") and key != MARKER
                    and key.startswith(prefix)):
                yield ObjectInfo(key, path.stat().st_size)

    def retained_until(self, key: str) -> datetime | None:
        """A folder holds no retention dates."""
        return None

    def delete(self, key: str) -> None:
        """Remove the object under key."""
        path = self._path(key)
        self._in_place()
        if not path.is_file():
            raise ObjectMissing(self.name, key)
        try:
            path.unlink()
        except OSError as exc:
            raise StorageError(f"location {self.name!r}: cannot delete {key!r}: {exc}") from exc
        # Folders it leaves empty go too (a refused import's ``imports/C/YYYY/MM``).
        folder = path.parent
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (or in use): what is above it is not either
                break
            folder = folder.parent

    def probe(self) -> LocationCheck:
        """Write a small file, fsync it, find out whether it can be read back past the page
        cache, and remove it: the folder is left as it was found (not marked, nor made:
        an empty folder may be a mount point whose disk is not mounted, and a check run
        without the catalog cannot tell; the first copy stored marks it)."""
        check = LocationCheck(self.name, "filesystem", str(self.root),
                              conditional_writes="hard links, which never replace a file")
        probe = self.root / INCOMING / f"probe-{uuid.uuid4().hex}"
        made = [folder for folder in (self.root, self.root / INCOMING) if not folder.exists()]
        try:
            self._in_place(writing=True)
            probe.parent.mkdir(parents=True, exist_ok=True)
            check.reachable = True
            with probe.open("xb") as out:
                out.write(b"preserve storage check\n")
                os.fsync(out.fileno())
            check.writable = True
            try:
                past_cache = _read_back(probe)[2]
            except OSError:  # as a copy could not be read back that way either
                past_cache = False
            check.checksums = ("read back past the page cache (O_DIRECT: what the storage "
                               "holds, not a cached copy) and hashed here after every write"
                               if past_cache else
                               "read back through the page cache (this file system takes no "
                               "O_DIRECT) and hashed here after every write")
        except Unreachable as exc:
            check.problems.append(str(exc))
        except OSError as exc:
            check.problems.append(f"cannot write in {self.root}: {exc.strerror or exc}")
        finally:
            with suppress(OSError):
                probe.unlink()
            for folder in reversed(made):
                with suppress(OSError):
                    folder.rmdir()
        return check

    def _reachable(self) -> None:
        """:class:`NotInPlace` when the location's folder is not there: a disk that is not
        mounted, a folder moved away. Its objects are then out of reach, not each missing
        (nor is a new folder made in its place to repair them into)."""
        if not self.root.is_dir():
            raise NotInPlace(f"location {self.name!r}: its folder {self.root} is "
                              f"{'not a folder' if self.root.exists() else 'not there'} "
                              "(a disk not mounted? a folder moved?)")

    def _in_place(self, writing: bool = False) -> None:
        """:class:`NotInPlace` when the folder is not there (a new location's first write
        makes it) or, where the catalog holds copies, when it is empty (no marker, no
        object): the mount point of a disk that is not mounted. What was written there
        would land on the disk beneath, hidden once the disk is mounted again; what was
        read would all be "missing"."""
        if not self.holds_copies:
            if not writing:
                self._reachable()
            return
        self._reachable()
        if next(self.root.iterdir(), None) is None:  # not even the marker
            raise NotInPlace(f"location {self.name!r}: its folder {self.root} is empty, "
                              "though the catalog holds copies there (a disk not mounted?)")

    def _mark(self) -> None:
        """Make the folder if need be, and mark it as this location's (once)."""
        marker = self.root / MARKER
        if marker.is_file():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError), marker.open("x") as out:
            out.write(f"preserve storage location {self.name!r}: objects are kept "
                      "under this folder; do not remove this file\n")

    @staticmethod
    def _link(temp: Path, final: Path) -> None:
        """Link the verified copy to its key; its folder made again if a deletion has
        just removed it as empty."""
        for attempt in range(3):
            try:
                os.link(temp, final)
                return
            except FileNotFoundError:
                if attempt == 2 or not temp.exists():
                    raise
                final.parent.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key_parts(self.name, key))

    def _same_or_refuse(self, key: str, path: Path, sha256: str) -> ObjectInfo:
        if not path.is_file():
            raise ObjectExists(self.name, key)
        try:
            found, size = sha256_file(path)
        except OSError as exc:
            raise StorageError(f"location {self.name!r}: cannot read {key!r}: {exc}") from exc
        if found != sha256:
            raise ObjectExists(self.name, key)
        return ObjectInfo(key, size)


def _write(stream: BinaryIO, path: Path) -> None:
    """Write the stream into a new file and sync it: past the page cache where the
    system allows, through it where it does not."""
    # A file system without O_DIRECT (tmpfs before Linux 6.6) may have created the file
    # all the same before refusing: then it is opened again without O_EXCL (its name is ours).
    fd, direct = _open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                       os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        buffer = memoryview(mmap.mmap(-1, DIRECT_BUFFER))  # page-aligned, as O_DIRECT asks
        while filled := _fill(stream, buffer):
            whole = filled - filled % BLOCK if direct else filled
            direct = _write_all(fd, buffer[:whole], direct)
            if whole < filled:  # the end of the stream, not a whole block: through the cache
                direct = _through_cache(fd)
                _write_all(fd, buffer[whole:filled], direct)
            if filled < len(buffer):
                break
        os.fsync(fd)
    finally:
        os.close(fd)


def _open(path: Path, flags: int, refused: int) -> tuple[int, int]:
    """The file opened past the page cache (``flags`` and O_DIRECT) where the system
    allows, else with ``refused`` where the file system refuses O_DIRECT: its descriptor
    and the O_DIRECT flag it was opened with (0: through the cache)."""
    direct = _direct_flag()
    try:
        return os.open(path, flags | direct, 0o644), direct
    except OSError as exc:
        if not direct or exc.errno != errno.EINVAL:
            raise
    return os.open(path, refused, 0o644), 0


def _direct_flag() -> int:
    return getattr(os, "O_DIRECT", 0)


def _fill(stream: BinaryIO, buffer: memoryview) -> int:
    """Read the stream into the buffer until it is full or the stream ends; bytes read."""
    readinto = getattr(stream, "readinto", None)  # files and io's streams have it
    filled = 0
    while filled < len(buffer):
        if readinto is not None:
            got = readinto(buffer[filled:])
        else:
            data = stream.read(len(buffer) - filled)
            got = len(data)
            buffer[filled:filled + got] = data
        if not got:
            break
        filled += got
    return filled


def _write_all(fd: int, data: memoryview, direct: int) -> int:
    """Write all of data; the O_DIRECT flag still set (0 once the file system refused it)."""
    while data:
        try:
            written = os.write(fd, data)
        except OSError as exc:
            if not direct or exc.errno != errno.EINVAL:
                raise
            direct = _through_cache(fd)  # O_DIRECT opened but not written: through the cache
            continue
        data = data[written:]
    return direct


def _through_cache(fd: int) -> int:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_direct_flag())
    return 0


def _read_back(path: Path) -> tuple[str, int, bool]:
    """SHA-256 and size of a file as the storage holds it, read past the page cache where
    the system allows; and whether it was, the whole way."""
    fd, direct = _open(path, os.O_RDONLY, os.O_RDONLY)
    digest = hashlib.sha256()
    size = 0
    try:
        buffer = memoryview(mmap.mmap(-1, DIRECT_BUFFER))
        while True:
            try:
                got = os.readv(fd, [buffer])
            except OSError as exc:
                if not direct or exc.errno != errno.EINVAL:
                    raise
                direct = _through_cache(fd)  # not readable that way (from here): through it
                continue
            if not got:
                break
            digest.update(buffer[:got])
            size += got
    finally:
        os.close(fd)
    return digest.hexdigest(), size, bool(direct)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
