"""The embedded default store: objects as files under one folder.

A put writes to a temporary file in the store's own ``.incoming`` folder (same
filesystem), hashes while writing, fsyncs, reads the file back to verify its
SHA-256, and only then links it to its key. Linking fails if the key exists, so
an object is never overwritten, even by two writers racing.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from preserve.errors import DigestMismatch, ObjectExists, ObjectMissing, StorageError
from preserve.fingerprint import iter_chunks, sha256_file
from preserve.storage.base import INCOMING, LocationCheck, ObjectInfo, key_parts

SENDFILE_BYTES = 64 * 1024 * 1024  # copied by the kernel at a time

__all__ = ["INCOMING", "FilesystemStore"]


class FilesystemStore:
    """An :class:`~preserve.storage.base.ObjectStore` on a local folder."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root

    def put(self, key: str, stream: BinaryIO, sha256: str,
            retain_until: datetime | None = None) -> ObjectInfo:
        """Store a stream under key after verifying it on disk (a folder holds no retention)."""
        final = self._path(key)
        if final.exists() or final.is_symlink():
            return self._same_or_refuse(key, final, sha256)
        temp = self.root / INCOMING / f"{uuid.uuid4().hex}.part"
        try:
            try:
                temp.parent.mkdir(parents=True, exist_ok=True)
                final.parent.mkdir(parents=True, exist_ok=True)
                with temp.open("xb") as out:
                    _copy(stream, out)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                raise StorageError(f"location {self.name!r}: cannot write {key!r}: {exc}") from exc
            try:
                # The copy is verified as it lies on disk (what was sent, changed on the
                # way or after, cannot pass this).
                on_disk, size = sha256_file(temp)
            except OSError as exc:
                raise StorageError(f"location {self.name!r}: cannot read back {key!r}: {exc}"
                                   ) from exc
            if on_disk != sha256:
                raise DigestMismatch(self.name, key, sha256, on_disk)
            try:
                os.link(temp, final)
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
        """Size of the object under key, or None."""
        path = self._path(key)
        try:
            return ObjectInfo(key, path.stat().st_size) if path.is_file() else None
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"location {self.name!r}: cannot look at {key!r}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every stored object whose key starts with prefix, in key order."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not key.startswith(INCOMING + "/") and key.startswith(prefix):
                yield ObjectInfo(key, path.stat().st_size)

    def delete(self, key: str) -> None:
        """Remove the object under key."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(self.name, key)
        try:
            path.unlink()
        except OSError as exc:
            raise StorageError(f"location {self.name!r}: cannot delete {key!r}: {exc}") from exc

    def probe(self) -> LocationCheck:
        """Create the folder if need be, write a small file, fsync it and remove it."""
        check = LocationCheck(self.name, "filesystem", str(self.root),
                              checksums="read back and hashed here after every write",
                              conditional_writes="hard links, which never replace a file")
        probe = self.root / INCOMING / f"probe-{uuid.uuid4().hex}"
        try:
            probe.parent.mkdir(parents=True, exist_ok=True)
            check.reachable = True
            with probe.open("xb") as out:
                out.write(b"preserve storage check\n")
                os.fsync(out.fileno())
            check.writable = True
        except OSError as exc:
            check.problems.append(f"cannot write in {self.root}: {exc.strerror or exc}")
        finally:
            with suppress(OSError):
                probe.unlink()
        return check

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


def _copy(stream: BinaryIO, out: BinaryIO) -> None:
    """Copy a stream into a file: in the kernel when the stream is a file too."""
    try:
        source = stream.fileno()
        start = stream.tell()
    except (AttributeError, OSError, ValueError):
        source = -1
    if source >= 0 and stat.S_ISREG(os.fstat(source).st_mode):
        out.flush()
        offset = start
        try:
            while sent := os.sendfile(out.fileno(), source, offset, SENDFILE_BYTES):
                offset += sent
        except OSError:
            if offset != start:  # some bytes went: what failed is the copy
                raise
            # Not between these files, here (macOS sends to sockets only): by chunks.
        else:
            stream.seek(offset)
            out.seek(0, os.SEEK_END)
            return
    for chunk in iter_chunks(stream):
        out.write(chunk)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
