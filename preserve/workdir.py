"""The work folder (``PRESERVE_HOME/work``): what commands write there while they run,
and what one that stopped without finishing left behind.

A WARC file being written (or ingested) and a private folder of an import or a
reindex are each held with a lock (``flock``) for as long as their process runs;
the system lets go of it when the process ends, however it ends. So what no one
holds, and has not been touched for a while, was left by a process that was
killed, ran out of memory or went down with its machine:

- a folder holds only what can be made again (indexes set aside, copies being
  read), and is removed;
- a WARC file holds responses fetched once, perhaps never to be fetched again:
  it is kept, and named, so that ``preserve import --lenient`` can take the
  records that are whole in it (the last may be cut short), or the archivist can
  delete it. An empty one holds nothing and is removed.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from preserve.errors import PreserveError

# Untouched this long, and held by no one: left behind. (A file or folder is held
# moments after it is made; this only keeps a sweep off one in those moments.)
QUIET_SECONDS = 60.0
# The folders commands make in the work folder, by the start of their names.
FOLDER_PREFIXES = ("preserve-import-", "reindex-")


def hold(descriptor: int) -> None:
    """Mark an open file or folder of the work folder as in use for as long as it stays
    open (by its descriptor)."""
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold a file of the work folder (a sealed WARC being ingested) while the block runs."""
    with path.open("rb") as file:
        hold(file.fileno())
        yield


@contextmanager
def private_folder(work: Path, prefix: str, refusal: str) -> Iterator[Path]:
    """A new folder in ``work`` that only this user can open, held while the block runs
    and removed after it. If it cannot be made: :class:`PreserveError`, its message
    ``refusal`` with ``{work}`` and ``{problem}`` filled in."""
    assert prefix in FOLDER_PREFIXES, f"{prefix}: sweep() would not know this folder"
    try:
        work.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=work))
    except OSError as exc:
        raise PreserveError(refusal.format(work=work, problem=exc.strerror or exc)) from exc
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        hold(descriptor)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(descriptor)


@dataclass(frozen=True)
class LeftWarc:
    """A WARC file that a capture stopped writing (or could not preserve) and left."""

    path: Path
    size: int
    modified: datetime
    collection: str | None  # from its warcinfo record, when that can be read
    policy: str | None = None  # the same ("redescribe" for a redescribe's descriptions)

    def note(self) -> str:
        collection = self.collection or "COLLECTION"
        made_by = ("a redescribe (descriptions only; running it again makes them anew)"
                   if self.policy == "redescribe" else "a capture")
        return (f"{self.path} ({self.size:,} bytes, last written "
                f"{self.modified:%Y-%m-%d %H:%M} UTC) was left by {made_by} that did not "
                f"finish: `preserve import --lenient {shlex.quote(str(self.path))} --collection "
                f"{collection}` "
                "keeps its whole records; delete it then, or if it is not wanted")


def sweep(work: Path, now: float | None = None) -> list[LeftWarc]:
    """Remove the folders stopped commands left in ``work``; the WARC files they left."""
    now = time.time() if now is None else now
    left = []
    try:
        entries = sorted(work.iterdir())
    except OSError:  # none yet, or not a folder we can read: the command itself will say
        return []
    for entry in entries:
        try:
            status = entry.lstat()
        except OSError:  # its command finished meanwhile
            continue
        if now - status.st_mtime < QUIET_SECONDS or _in_use(entry):
            continue
        if entry.is_dir() and entry.name.startswith(FOLDER_PREFIXES):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and entry.name.endswith(".warc.gz"):
            if status.st_size == 0:
                with suppress(OSError):
                    entry.unlink()
                continue
            info = _warcinfo(entry)
            left.append(LeftWarc(entry, status.st_size,
                                 datetime.fromtimestamp(status.st_mtime, UTC),
                                 info.get("isPartOf"), info.get("policy")))
    return left


def _in_use(path: Path) -> bool:
    """Does a running process hold this file or folder?"""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # gone, or not ours to open: not ours to remove either
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def _warcinfo(path: Path) -> dict[str, str]:
    """The fields of a WARC file's warcinfo record (``isPartOf``: its collection), as far
    as they can be read."""
    try:
        with path.open("rb") as stream:
            first = zlib.decompressobj(31).decompress(stream.read(64 * 1024), 64 * 1024)
    except (OSError, zlib.error):
        return {}
    head, _, block = first.partition(b"\r\n\r\n")
    if b"WARC-Type: warcinfo" not in head:
        return {}
    fields: dict[str, str] = {}
    for line in block.partition(b"\r\n\r\n")[0].decode("utf-8", errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.strip() and value.strip():
            fields.setdefault(name.strip(), value.strip())
    return fields
