"""A crawl's frontier and the URLs it has met, in memory that does not grow with the site.

The frontier (pages waiting, first in, first out) keeps the pages next in line
and the ones last found in memory, and what lies between in a temporary file,
BLOCK pages at a time: a breadth-first crawl of a large site finds pages far
faster than it fetches them. The file's space is reused as its blocks are read
back; where the file cannot be written (a full disk), the blocks stay in memory
and the crawl goes on. The URLs a crawl has met are kept as 64-bit
fingerprints, not as strings, as Heritrix keeps them: the newest in a set, the
rest in sorted runs, the large ones in temporary files too.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from heapq import merge
from itertools import islice
from pathlib import Path
from typing import IO, Generic, TypeVar

T = TypeVar("T")

BLOCK = 10_000  # pages written to, and read back from, the file at a time
COPY = 1024 * 1024  # bytes moved at a time when the file's read space is given back


class Frontier(Generic[T]):
    """A first-in, first-out queue holding at most about 2 * BLOCK items in memory."""

    def __init__(self, items: Iterable[T] = (), directory: Path | None = None) -> None:
        self._directory = directory  # of the temporary file (None: the system's)
        self._head: deque[T] = deque()  # taken from
        # In order: (offset, length) of a block in the file, or a block kept in memory.
        self._blocks: deque[tuple[int, int] | list[T]] = deque()
        self._tail: list[T] = []  # added to
        self._file: IO[bytes] | None = None
        self._end = 0  # where the next block goes
        self._length = 0
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return self._length

    def append(self, item: T) -> None:
        self._tail.append(item)
        self._length += 1
        if len(self._tail) >= BLOCK:
            if not self._head and not self._blocks:  # nothing before it: taken next
                self._refill()
            else:
                self._spill(self._tail)
                self._tail = []

    def extend(self, items: list[T]) -> None:
        for item in items:
            self.append(item)

    def popleft(self) -> T:
        if not self._head:
            self._refill()
        item = self._head.popleft()  # IndexError when empty, as deque's
        self._length -= 1
        return item

    def next_in_line(self, count: int) -> list[T]:
        """Up to ``count`` items that come out next (fewer where a block ends)."""
        if not self._head:
            self._refill()
        return list(islice(self._head, count))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _spill(self, items: list[T]) -> None:
        data = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(  # noqa: SIM115 (closed by close())
                    prefix="preserve-frontier-", dir=self._directory)
            self._file.seek(self._end)
            self._file.write(data)
        except OSError:  # no room for it: kept in memory, the crawl goes on
            self._blocks.append(items)
            return
        self._blocks.append((self._end, len(data)))
        self._end += len(data)

    def _refill(self) -> None:
        if self._blocks:
            block = self._blocks.popleft()
            if isinstance(block, list):
                self._head.extend(block)
            else:
                assert self._file is not None
                offset, length = block
                self._file.seek(offset)
                self._head.extend(pickle.loads(self._file.read(length)))
                self._reuse(offset + length)
        elif self._tail:
            self._head.extend(self._tail)
            self._tail = []

    def _reuse(self, read: int) -> None:
        """Give back the space of blocks read (up to ``read``) once it is half the file."""
        assert self._file is not None
        pending = [block for block in self._blocks if isinstance(block, tuple)]
        if not pending:  # all read back: the file starts over
            self._file.seek(0)
            self._file.truncate()
            self._end = 0
            return
        if read < self._end // 2:
            return
        start = pending[0][0]
        for at in range(start, self._end, COPY):  # moved forward a mebibyte at a time
            self._file.seek(at)
            chunk = self._file.read(min(COPY, self._end - at))
            self._file.seek(at - start)
            self._file.write(chunk)
        self._end -= start
        self._file.truncate(self._end)
        self._blocks = deque(block if isinstance(block, list) else (block[0] - start, block[1])
                             for block in self._blocks)


class Fingerprints:
    """A set of strings kept as their 64-bit hashes, in memory that stays bounded.

    Hashes are Python's ``hash`` (SipHash, keyed for this process). That two keys
    of one crawl share a hash has odds of about 1 in 37 million for a million keys,
    1 in 370,000 for ten million; the second would then be taken as met. Heritrix's
    already-seen filter keeps 64-bit fingerprints too.

    The newest RECENT hashes are a set (and up to RECENT more, met again after
    they were written to a file, another). Older ones are sorted runs, merged two by
    two as they grow (so there are few of them), held as arrays of 8 bytes a hash
    up to RUN_IN_MEMORY hashes each, and in temporary files beyond that, with one
    hash of each PAGE of the file in memory to find the page to read. Five
    million keys took 24 MB of memory (as a set, a million took 69 MB); past
    that, memory grows by 8 bytes for each PAGE of keys.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory  # of the temporary files (None: the system's)
        self._recent: set[int] = set()
        self._runs: list[_Run] = []  # oldest and largest first
        # Hashes found in a file lately (the links on every page), at hand; never
        # sealed into a run again, and forgotten when there are RECENT of them.
        self._hits: set[int] = set()

    def __contains__(self, key: object) -> bool:
        fingerprint = hash(key)
        if fingerprint in self._recent or fingerprint in self._hits:
            return True
        for run in reversed(self._runs):  # the small ones, in memory, first
            if fingerprint in run:
                if run.on_disk:
                    if len(self._hits) >= RECENT:
                        self._hits.clear()
                    self._hits.add(fingerprint)
                return True
        return False

    def add(self, key: str) -> None:
        self._recent.add(hash(key))
        if len(self._recent) >= RECENT:
            self._seal()

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs = []

    def _seal(self) -> None:
        self._runs.append(_Run(array("q", sorted(self._recent))))
        self._recent = set()
        # Merged while the one before is not over twice as large: the runs' sizes
        # halve from the first to the last, and a hash is merged log2(n) times.
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newer = self._runs.pop()
            older = self._runs.pop()
            self._runs.append(_Run.merged(older, newer, self._directory))
            older.close()
            newer.close()


RECENT = 65_536  # hashes kept as a set (about 5 MB), and at most as many hits
RUN_IN_MEMORY = 1 << 20  # hashes a run keeps in memory (8 MiB); larger runs are files
PAGE = 512  # hashes (4 KiB) read from a run's file to look one up
_MERGE_READ = 64 * PAGE  # hashes read at a time from each run merged


class _Run:
    """Sorted hashes: an array in memory, or a temporary file and every PAGE-th hash."""

    def __init__(self, hashes: array[int] | None = None, file: IO[bytes] | None = None,
                 firsts: array[int] | None = None, length: int = 0) -> None:
        self._hashes = hashes
        self._file = file
        self._firsts = firsts if firsts is not None else array("q")
        self._length = len(hashes) if hashes is not None else length

    def __len__(self) -> int:
        return self._length

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def __contains__(self, fingerprint: int) -> bool:
        if self._hashes is not None:
            return _holds(self._hashes, fingerprint)
        page = bisect_right(self._firsts, fingerprint) - 1
        if page < 0:
            return False
        assert self._file is not None
        data = os.pread(self._file.fileno(), PAGE * 8, page * PAGE * 8)
        return _holds(memoryview(data).cast("q"), fingerprint)

    def __iter__(self) -> Iterator[int]:
        if self._hashes is not None:
            yield from self._hashes
            return
        assert self._file is not None
        for offset in range(0, self._length * 8, _MERGE_READ * 8):
            yield from memoryview(os.pread(self._file.fileno(), _MERGE_READ * 8,
                                           offset)).cast("q")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    @classmethod
    def merged(cls, older: _Run, newer: _Run, directory: Path | None) -> _Run:
        """One run of both runs' hashes (none twice), in memory or, if large, in a file."""
        length = len(older) + len(newer)
        hashes = _unique(merge(older, newer))
        if length <= RUN_IN_MEMORY:
            return cls(array("q", hashes))
        file = None
        try:
            file = tempfile.TemporaryFile(  # noqa: SIM115 (closed by close())
                prefix="preserve-seen-", dir=directory)
            firsts: array[int] = array("q")
            written = 0
            for chunk in _chunks(hashes, _MERGE_READ):
                firsts.extend(chunk[::PAGE])
                file.write(chunk.tobytes())
                written += len(chunk)
            file.flush()  # read back with os.pread, past the file object's buffer
            return cls(file=file, firsts=firsts, length=written)
        except OSError:  # no room for it: kept in memory, the crawl goes on
            if file is not None:
                file.close()
            return cls(array("q", _unique(merge(older, newer))))


def _holds(hashes: Sequence[int], fingerprint: int) -> bool:
    """Is the fingerprint among these sorted hashes?"""
    at = bisect_left(hashes, fingerprint)
    return at < len(hashes) and hashes[at] == fingerprint


def _unique(hashes: Iterable[int]) -> Iterator[int]:
    previous = None
    for fingerprint in hashes:
        if fingerprint != previous:
            yield fingerprint
            previous = fingerprint


def _chunks(hashes: Iterator[int], size: int) -> Iterator[array[int]]:
    """Arrays of ``size`` hashes (PAGE-aligned, as size is a multiple of PAGE), the last shorter."""
    while chunk := array("q", islice(hashes, size)):
        yield chunk
