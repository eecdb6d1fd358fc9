"""A crawl's frontier and the URLs it has met, in memory that does not grow with the site.

The frontier (pages waiting, first in, first out) keeps the pages next in line
and the ones last found in memory, and what lies between in a temporary file,
BLOCK pages at a time: a breadth-first crawl of a large site finds pages far
faster than it fetches them. The file's space is reused as its blocks are read
back; where the file cannot be written (a full disk), the blocks stay in memory
and the crawl goes on. The URLs a crawl has met are kept as 64-bit
fingerprints, not as strings, as Heritrix keeps them.
"""

from __future__ import annotations

import pickle
import tempfile
from collections import deque
from collections.abc import Iterable
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
    """A set of strings kept as their 64-bit hashes (Python's ``hash``, SipHash, keyed
    for this process). A million URL keys took 69 MB so, 155 MB as strings. That two
    keys of one crawl share a hash has odds of about 1 in 37 million for a million
    keys, 1 in 370,000 for ten million; the second would then be taken as met.
    Heritrix's already-seen filter keeps 64-bit fingerprints too."""

    def __init__(self) -> None:
        self._hashes: set[int] = set()

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, key: object) -> bool:
        return hash(key) in self._hashes

    def add(self, key: str) -> None:
        self._hashes.add(hash(key))
